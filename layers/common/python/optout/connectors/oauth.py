"""OAuth 2.0 access tokens for connectors that need one, cached until shortly before expiry.

A 401 from the API with a cached token means it was revoked or expired early: the session
fetches a fresh token and repeats the call once, so only a second 401 is a real auth failure.
A token endpoint that refuses the client (invalid_client, invalid_grant, unauthorized_client)
raises an auth DeliveryError: the connector then re-reads its credentials once (a rotation).
A token endpoint's refusal carries no API `errorCode`: it answers RFC 6749 §5.2's `error`
(`{"error": "invalid_grant", "error_description": ...}`, Salesforce's and Google's alike), and
the reason keeps that code when it is one (`salesforce token: HTTP 400 invalid_grant`), never
`error_description` (free text).
An `error` that says the endpoint is throttling us (Salesforce's `rate_limit_exceeded`, too
many logins) is retried whatever the status: an RFC 6749 error answer is a 400 unless said
otherwise, and which status Salesforce gives it is not documented; read as a 400's final
refusal, it failed the batch for good where a wait would have done (vendor37).
"""

import re
import time
import urllib.parse
from collections.abc import Callable

from optout.connectors.errors import DeliveryError
from optout.connectors.http import HttpClient, HttpResponse, asked_wait, status_error

EXPIRY_MARGIN_SECONDS = 60
REFUSED_CLIENT = frozenset({"invalid_client", "invalid_grant", "unauthorized_client"})
# An OAuth `error` as the reason may carry it: RFC 6749's codes and the vendors' own
# (Salesforce's `inactive_user`, `rate_limit_exceeded`) are short lower-case words.
OAUTH_ERROR_CODE = re.compile(r"[a-z][a-z_]{0,39}")
# A token endpoint's own throttling codes: a wait helps, so retried at any status. Salesforce's
# (its OAuth error table as third parties list it: docs/vendors.md "Salesforce"); Google's
# OAuth names the same code for its authorization rate limit (with a 403).
THROTTLED = frozenset({"rate_limit_exceeded"})


class BearerSession:
    def __init__(
        self,
        http: HttpClient,
        token_url: str,
        form: dict[str, str],
        step: str,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.http = http
        self.token_url = token_url
        self.form = form
        self.step = step
        self.clock = clock
        self._token: str | None = None
        self._expires = 0.0

    def token(self) -> str:
        if self._token is None or self.clock() >= self._expires:
            answer = self.http.send(
                "POST",
                self.token_url,
                step=f"{self.step} token",
                headers={"Content-Type": "application/x-www-form-urlencoded"},
                body=urllib.parse.urlencode(self.form).encode(),
                raise_for_status=False,
            )
            payload = answer.json()
            if not 200 <= answer.status < 300:
                error = payload.get("error") if isinstance(payload, dict) else None
                code = error if isinstance(error, str) and OAUTH_ERROR_CODE.fullmatch(error) else ""
                failure = status_error(f"{self.step} token", answer, detail=code)
                # `code`, a str: `error` may be an object, which no frozenset can hold
                failure.auth = failure.auth or code in REFUSED_CLIENT
                if code in THROTTLED and not failure.retryable:
                    failure.retryable, failure.retry_after = True, asked_wait(answer)
                raise failure
            if not isinstance(payload, dict) or not isinstance(payload.get("access_token"), str):
                raise DeliveryError(f"{self.step} token: malformed answer", retryable=True)
            self._token = payload["access_token"]
            self._expires = (
                self.clock() + float(payload.get("expires_in", 3600)) - EXPIRY_MARGIN_SECONDS
            )
        return self._token

    def send(
        self,
        method: str,
        url: str,
        *,
        step: str,
        headers: dict[str, str] | None = None,
        body: bytes | None = None,
        raise_for_status: bool = True,
        once: bool = False,
    ) -> HttpResponse:
        """One API call with a bearer token; raises DeliveryError for a non-2xx unless told not
        to (the caller then classifies the answer itself: a 401 is still retried here, it
        applied nothing). `once`: no other retry (HttpClient.send)."""
        try:
            answer = self._send_once(method, url, step, headers, body, once)
        except DeliveryError as error:  # the token endpoint's own refusal
            if error.http_status != 401:
                raise
            answer = None
        if answer is None or answer.status == 401:
            self._token = None  # revoked or expired early: one fresh token, one more try
            answer = self._send_once(method, url, step, headers, body, once)
        if raise_for_status and not 200 <= answer.status < 300:
            raise status_error(step, answer)
        return answer

    def _send_once(
        self,
        method: str,
        url: str,
        step: str,
        headers: dict[str, str] | None,
        body: bytes | None,
        once: bool = False,
    ) -> HttpResponse:
        auth = {"Authorization": f"Bearer {self.token()}", **(headers or {})}
        return self.http.send(
            method, url, step=step, headers=auth, body=body, raise_for_status=False, once=once
        )
