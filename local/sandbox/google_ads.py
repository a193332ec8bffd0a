"""Google Data Manager API (REST): OAuth token, audienceMembers:remove, requestStatus:retrieve.

Requests are parsed with the official client's own types (PyPI `google-ads-datamanager`,
a test dependency): an unknown field, a wrong type or a bad enum is refused exactly where
Google's transcoding would refuse it. On top, the rules the API documents for user data:
destinations and audience members are required, `encoding` is required for UserData and the
identifiers must be SHA-256 hashes in that encoding.

Removal is asynchronous, as at Google: a request starts PROCESSING and reports SUCCESS on its
`checks_until_done`-th status read (2 by default); `fail_next` makes the next request FAILED
with an error reason. Answers are built with the same types (RetrieveRequestStatusResponse).
Paths of the retired Google Ads API (/v21/customers/...) answer 404, as a sunset version does.
"""

import re
import urllib.parse
import uuid
from typing import Any

from google.ads.datamanager_v1.types import (
    Destination,
    Encoding,
    ErrorCount,
    ErrorInfo,
    ProcessingErrorReason,
    RemoveAudienceMembersRequest,
    RequestStatusPerDestination,
    RetrieveRequestStatusResponse,
)
from google.protobuf.json_format import ParseError  # type: ignore[import-untyped]

from local.sandbox.wire import SandboxRequest, SandboxResponse, bearer, json_response

TOKEN = "ya29.sandbox-fake-access-token"  # noqa: S105 - fake, sandbox only
HEX64 = re.compile(r"^[0-9a-f]{64}$")
MAX_USER_IDENTIFIERS = 10  # per audience member (UserData.user_identifiers, Google's docs)
Status = RequestStatusPerDestination.RequestStatus


def google_error(status: int, code: str, message: str) -> SandboxResponse:
    return json_response(status, {"error": {"code": status, "message": message, "status": code}})


class GoogleAds:
    def __init__(self, secrets: dict[str, Any], checks_until_done: int = 2) -> None:
        self.secrets = secrets
        self.checks_until_done = checks_until_done
        self.fail_next = False
        # requestId -> {destinations, members, reads, failed}
        self.requests: dict[str, dict[str, Any]] = {}

    def handle(self, request: SandboxRequest) -> SandboxResponse:
        path, _, query = request.path.partition("?")
        if request.method == "POST" and path == "/token":
            return self._token(request)
        if bearer(request) != TOKEN:
            return google_error(
                401, "UNAUTHENTICATED", "Request had invalid authentication credentials."
            )
        if request.method == "POST" and path == "/v1/audienceMembers:remove":
            return self._remove(request)
        if request.method == "GET" and path == "/v1/requestStatus:retrieve":
            return self._status(dict(urllib.parse.parse_qsl(query)).get("requestId", ""))
        return google_error(404, "NOT_FOUND", "Requested entity was not found.")

    def _token(self, request: SandboxRequest) -> SandboxResponse:
        form = dict(urllib.parse.parse_qsl(request.body.decode()))
        wanted = {k: self.secrets.get(k) for k in ("client_id", "client_secret", "refresh_token")}
        if form.get("grant_type") != "refresh_token" or any(
            form.get(k) != v for k, v in wanted.items()
        ):
            return json_response(
                400, {"error": "invalid_grant", "error_description": "Bad Request"}
            )
        return json_response(
            200, {"access_token": TOKEN, "expires_in": 3599, "token_type": "Bearer"}
        )

    def _remove(self, request: SandboxRequest) -> SandboxResponse:
        try:
            parsed = RemoveAudienceMembersRequest.from_json(
                request.body.decode("utf-8", "replace"), ignore_unknown_fields=False
            )
        except (ParseError, ValueError) as error:
            return google_error(400, "INVALID_ARGUMENT", f"Invalid JSON payload: {error}"[:300])
        problem = invalid(parsed)
        if problem:
            return google_error(400, "INVALID_ARGUMENT", problem)
        request_id = str(uuid.uuid4())
        self.requests[request_id] = {
            "destinations": list(parsed.destinations),
            "members": len(parsed.audience_members),
            "reads": 0,
            "failed": self.fail_next,
        }
        self.fail_next = False
        return json_response(200, {"requestId": request_id})

    def _status(self, request_id: str) -> SandboxResponse:
        known = self.requests.get(request_id)
        if known is None:
            return google_error(404, "NOT_FOUND", "Requested entity was not found.")
        known["reads"] += 1
        if known["reads"] < self.checks_until_done:
            status, errors = Status.PROCESSING, None
        elif known["failed"]:
            reason = ProcessingErrorReason.PROCESSING_ERROR_REASON_KEK_PERMISSION_DENIED
            errors = ErrorInfo(
                error_counts=[ErrorCount(record_count=known["members"], reason=reason)]
            )
            status = Status.FAILED
        else:
            status, errors = Status.SUCCESS, None
        answer = RetrieveRequestStatusResponse(
            request_status_per_destination=[
                RequestStatusPerDestination(
                    destination=Destination(destination), request_status=status, error_info=errors
                )
                for destination in known["destinations"]
            ]
        )
        body = RetrieveRequestStatusResponse.to_json(
            answer, use_integers_for_enums=False, indent=None
        )
        return SandboxResponse(200, {"content-type": "application/json"}, body.encode())


def invalid(parsed: RemoveAudienceMembersRequest) -> str | None:
    """The documented rules the types alone do not enforce; None when the request is good."""
    if not parsed.destinations:
        return "destinations: at least one destination is required"
    for destination in parsed.destinations:
        account = destination.operating_account
        if not account.account_id or not account.account_type:
            return "destinations.operating_account: account_id and account_type are required"
        if not destination.product_destination_id.isdigit():
            return "destinations.product_destination_id: a user list id is required"
    if not parsed.audience_members:
        return "audience_members: at least one audience member is required"
    if parsed.encoding != Encoding.HEX:
        return "encoding: HEX or BASE64 is required for UserData (this sandbox takes HEX)"
    for member in parsed.audience_members:
        identifiers = member.user_data.user_identifiers
        if not identifiers:
            return "audience_members.user_data: user identifiers are required"
        if len(identifiers) > MAX_USER_IDENTIFIERS:
            return (
                "audience_members.user_data.user_identifiers: at most "
                f"{MAX_USER_IDENTIFIERS} user identifiers per audience member"
            )
        for identifier in identifiers:
            value = identifier.email_address or identifier.phone_number
            if not HEX64.match(value):
                return "audience_members.user_data.user_identifiers: not a hex SHA-256 hash"
    return None
