"""A minimal JSON-over-HTTPS client on the standard library (no extra dependency in the layer).

Every non-2xx answer becomes a DeliveryError classified once, here: 429 (with Retry-After),
408 and 5xx and transport failures are retryable; every other 4xx is permanent.
"""

import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

from optout.connectors.errors import DeliveryError

RETRYABLE_4XX = frozenset({408, 429})


@dataclass(frozen=True)
class HttpResponse:
    status: int
    headers: dict[str, str]  # lower-case names
    body: bytes

    def json(self) -> Any:
        if not self.body:
            return None
        try:
            return json.loads(self.body)
        except ValueError:
            return None


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    # A redirect would resend credentials to wherever the vendor points: treat it as an answer.
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


class HttpClient:
    def __init__(self, timeout_seconds: float) -> None:
        self.timeout = timeout_seconds
        self._opener = urllib.request.build_opener(_NoRedirect)

    def send(
        self,
        method: str,
        url: str,
        *,
        step: str,
        headers: dict[str, str] | None = None,
        body: bytes | None = None,
        raise_for_status: bool = True,
    ) -> HttpResponse:
        """One call; raises DeliveryError for a non-2xx unless told not to (the caller then
        classifies the answer itself). `step` names the call in errors."""
        if not url.startswith(("https://", "http://")):
            raise DeliveryError(f"{step}: base_url must be http(s)", retryable=False)
        request = urllib.request.Request(url, data=body, method=method, headers=headers or {})  # noqa: S310 - scheme checked above
        try:
            with self._opener.open(request, timeout=self.timeout) as answer:
                response = HttpResponse(answer.status, _lower(answer.headers), answer.read())
        except urllib.error.HTTPError as error:
            response = HttpResponse(error.code, _lower(error.headers), error.read())
        except TimeoutError:
            raise DeliveryError(f"{step}: timed out", retryable=True) from None
        except urllib.error.URLError as error:
            if isinstance(error.reason, TimeoutError):
                raise DeliveryError(f"{step}: timed out", retryable=True) from None
            raise DeliveryError(f"{step}: connection failed", retryable=True) from None
        except (ConnectionError, OSError):
            raise DeliveryError(f"{step}: connection failed", retryable=True) from None
        if 200 <= response.status < 300 or not raise_for_status:
            return response
        raise status_error(step, response)


def status_error(step: str, response: HttpResponse) -> DeliveryError:
    status = response.status
    retryable = status in RETRYABLE_4XX or status >= 500
    retry_after = parse_retry_after(response.headers.get("retry-after")) if retryable else None
    return DeliveryError(
        f"{step}: HTTP {status}",
        retryable=retryable,
        http_status=status,
        retry_after=retry_after,
        auth=status == 401,
    )


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Retry-After is either delta-seconds or an HTTP date (RFC 9110 §10.2.3)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def json_body(payload: Any) -> bytes:
    return json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()


def _lower(headers: Any) -> dict[str, str]:
    return {str(k).lower(): str(v) for k, v in (headers.items() if headers else [])}
