"""Meta Marketing API: DELETE act_{id}/usersofanyaudience and {audience}/users.

The expected request is built by Meta's own SDK (PyPI `facebook-business`, a test
dependency): for the schema and hashes received, the sandbox asks the SDK's
AdAccount.opt_out_user_from_targeting / CustomAudience.remove_users to make the same call
(captured, never sent) and refuses ours unless method, path and `payload` are what the SDK
would send. Meta reads parameters from the query string or the form body alike; ours are in
the body (hashes stay out of URLs), the SDK's in the query string: both are accepted.

The ad account: GET /{v}/act_{id}?fields=... answers the fields asked for (each must be one of
the SDK's AdAccount fields) from a modelled account: `business` ({id, name}) while a business
portfolio owns it (`business_owned`) and `tos_accepted` ({"custom_audience_tos": 1, ...}, the
SDK's map<string, int>) while its Custom Audience Terms are accepted (`terms_accepted`); the
Graph API leaves an unset field out. On such an unusable account `usersofanyaudience` answers as
usual and removes nothing: Meta documents that the call may then process nothing, not its
answer, so the sandbox models the worst case (a 2xx that looks like any other).

The app: with an `app_secret` in the sandbox's secret, the app is set to "Require App Secret"
(Meta, "Secure Graph API Calls"): every call must carry `appsecret_proof`, the HMAC-SHA256
hex of the access token keyed with the app secret, in the form body or the query string;
one without it, or with another value, is refused with HTTP 400, type GraphMethodException,
code 100 and no subcode, as Meta's answers quoted whole in issue threads read (docs/vendors.md,
"Meta"; no Meta page documents it).

Versions: a version past its end of life (optout.connectors.versions, from Meta's version
history) is answered as Meta answers it, HTTP 400 with error code 2635 ("You are calling a
deprecated version of the Ads API"); a version Meta has not released is an unknown path.
"""

import hashlib
import hmac
import json
import re
import urllib.parse
from datetime import UTC, datetime
from typing import Any

from facebook_business.adobjects.adaccount import AdAccount  # type: ignore[import-untyped]
from facebook_business.adobjects.customaudience import (  # type: ignore[import-untyped]
    CustomAudience,
)
from facebook_business.api import FacebookAdsApi  # type: ignore[import-untyped]

from local.sandbox.wire import SandboxRequest, SandboxResponse, bearer, json_response
from optout.connectors.versions import KNOWN, expired

PATH = re.compile(r"^/(v\d+\.\d+)/(act_\d+/usersofanyaudience|\d+/users)$")
ACCOUNT_PATH = re.compile(r"^/(v\d+\.\d+)/(act_\d+)$")
ACCOUNT_FIELDS = frozenset(
    value for name, value in vars(AdAccount.Field).items() if not name.startswith("_")
)
BUSINESS = {"id": "900000000000001", "name": "Sandbox business portfolio"}
SCHEMAS = {CustomAudience.Schema.email_hash, CustomAudience.Schema.phone_hash}
MAX_ENTRIES = 10_000


def graph_error(
    status: int, code: int, message: str, kind: str = "OAuthException", **more: Any
) -> SandboxResponse:
    error = {"message": message, "type": kind, "code": code, "fbtrace_id": "sandbox", **more}
    return json_response(status, {"error": error})


class _Captured:
    """Stands in for requests.Session: records the SDK's call instead of sending it."""

    GRAPH = "https://graph.facebook.com"

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, dict[str, Any]]] = []
        self.requests = self
        self.timeout = None

    def request(self, method: str, url: str, **kwargs: Any) -> Any:
        self.calls.append((method, url, dict(kwargs.get("params") or kwargs.get("data") or {})))

        class Answer:
            text = "{}"
            headers: dict[str, str] = {}  # noqa: RUF012 - a throwaway stand-in
            status_code = 200

        return Answer()


def sdk_call(version: str, node: str, schema: str, data: list[str]) -> tuple[str, str, Any]:
    """(method, path, payload) the official SDK sends to remove these hashes from `node`."""
    session = _Captured()
    api = FacebookAdsApi(session, api_version=version)
    if node.endswith("/usersofanyaudience"):
        AdAccount(node.split("/", maxsplit=1)[0], api=api).opt_out_user_from_targeting(
            schema, data, pre_hashed=True
        )
    else:
        CustomAudience(node.split("/", maxsplit=1)[0], api=api).remove_users(
            schema, data, pre_hashed=True
        )
    ((method, url, params),) = session.calls
    return method, urllib.parse.urlsplit(url).path, json.loads(params["payload"])


class Meta:
    def __init__(self, secrets: dict[str, Any]) -> None:
        self.access_token = secrets.get("access_token")
        self.app_secret = secrets.get("app_secret")  # set: the app requires appsecret_proof
        self.sessions = 0
        self.removed: list[str] = []  # hashes removed, in order (tests look here)
        # Audience ids Meta has flagged (its `operation_status` 471): a removal is refused with
        # code 100, subcode 1713230, "Audience Upload Blocked", as Meta documents it.
        self.flagged: set[str] = set()
        # Tests: hashes Meta counts in `num_invalid_entries`, and a cap on `num_received` (Meta
        # reports what it took in these counts: the connector must read them).
        self.invalid: set[str] = set()
        self.receive_at_most: int | None = None
        # The ad account (every act_ id is this one): tests unset either to model an account
        # on which usersofanyaudience processes nothing.
        self.business_owned = True
        self.terms_accepted = True
        # Tests: (HTTP status, Graph error code) the account's read is refused with, e.g. (403,
        # 200) for a token that may not read it (a guess: unconfirmed); removals answer as usual
        self.account_refused: tuple[int, int] | None = None

    def handle(self, request: SandboxRequest) -> SandboxResponse:
        parts = urllib.parse.urlsplit(request.path)
        match = PATH.match(parts.path)
        account = ACCOUNT_PATH.match(parts.path)
        if request.method == "GET" and account:
            version = account.group(1)
        elif request.method == "DELETE" and match:
            version = match.group(1)
        else:
            return graph_error(404, 803, "Unknown path components", "GraphMethodException")
        if ("meta", version) not in KNOWN:
            return graph_error(400, 2635, f"(#2635) Unknown version {version}.")
        if expired("meta", version, datetime.now(UTC).date()):
            latest = max((v for (vendor, v) in KNOWN if vendor == "meta"), key=_version_key)
            return graph_error(
                400,
                2635,
                "(#2635) You are calling a deprecated version of the Ads API. "
                f"Please update to the latest version: {latest}.",
            )
        if not self.access_token or bearer(request) != self.access_token:
            return graph_error(401, 190, "Invalid OAuth access token.")
        refused = self._unproven(request, parts.query)
        if refused is not None:
            return refused
        if account and self.account_refused is not None:
            status, code = self.account_refused
            return graph_error(status, code, f"(#{code}) refused")
        if account:
            return self._account(account.group(2), urllib.parse.parse_qs(parts.query))
        assert match is not None  # a DELETE of a removal path, as checked above
        node = match.group(2)
        if node.split("/")[0] in self.flagged:
            return graph_error(
                400, 100, "Invalid parameter", error_subcode=1713230,
                error_user_title="Audience Upload Blocked",
                error_user_msg="resolve the audience's integrity restrictions first",
            )  # fmt: skip
        form = dict(urllib.parse.parse_qsl(request.body.decode()))
        form.update(dict(urllib.parse.parse_qsl(parts.query)))
        try:
            payload = json.loads(form.get("payload", ""))
        except ValueError:
            return graph_error(400, 100, "(#100) param payload must be JSON")
        schema = payload.get("schema") if isinstance(payload, dict) else None
        data = payload.get("data") if isinstance(payload, dict) else None
        if (
            schema not in SCHEMAS
            or not isinstance(data, list)
            or not data
            or len(data) > MAX_ENTRIES
        ):
            return graph_error(400, 100, "(#100) Invalid parameter")
        expected = sdk_call(version, node, str(schema), [str(d) for d in data])
        if (request.method, parts.path, payload) != expected:
            return graph_error(400, 100, "(#100) Invalid parameter: not the SDK's request")
        if self.receive_at_most is not None:
            data = data[: self.receive_at_most]
        invalid = [d for d in data
                   if not re.fullmatch(r"[0-9a-f]{64}", str(d)) or d in self.invalid]  # fmt: skip
        self.sessions += 1
        # an unusable account: a 2xx, and nothing processed (see the module's docstring)
        if self.usable() or not node.endswith("/usersofanyaudience"):
            self.removed.extend(str(d) for d in data if d not in invalid)
        return json_response(
            200,
            {
                "session_id": str(self.sessions),
                "num_received": len(data),
                "num_invalid_entries": len(invalid),
                "invalid_entry_samples": {},
            },
        )

    def _unproven(self, request: SandboxRequest, query: str) -> SandboxResponse | None:
        """The refusal of a call without the right appsecret_proof, when the app requires one."""
        if not self.app_secret:
            return None
        params = dict(urllib.parse.parse_qsl(request.body.decode()))
        params.update(urllib.parse.parse_qsl(query))
        given = params.get("appsecret_proof")
        if given is None:
            return graph_error(400, 100, "API calls from the server require an appsecret_proof "
                               "argument", "GraphMethodException")  # fmt: skip
        token = str(self.access_token).encode()
        wanted = hmac.new(str(self.app_secret).encode(), token, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(given, wanted):
            return graph_error(400, 100, "Invalid appsecret_proof provided in the API argument",
                               "GraphMethodException")  # fmt: skip
        return None

    def usable(self) -> bool:
        return self.business_owned and self.terms_accepted

    def _account(self, node: str, query: dict[str, list[str]]) -> SandboxResponse:
        fields = [f for f in ",".join(query.get("fields", [])).split(",") if f]
        unknown = sorted(set(fields) - ACCOUNT_FIELDS)
        if unknown:
            return graph_error(
                400, 100, f"(#100) Tried accessing nonexisting field ({unknown[0]}) on node "
                "type (AdAccount)", "GraphMethodException",
            )  # fmt: skip
        known: dict[str, Any] = {"account_id": node.removeprefix("act_")}
        if self.business_owned:
            known["business"] = dict(BUSINESS)
        if self.terms_accepted:
            known["tos_accepted"] = {"custom_audience_tos": 1, "web_custom_audience_tos": 1}
        return json_response(200, {**{f: known[f] for f in fields if f in known}, "id": node})


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in version.lstrip("v").split("."))
