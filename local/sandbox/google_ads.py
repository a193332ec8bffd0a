"""Google Ads API (REST): OAuth token, OfflineUserDataJob create / addOperations / run."""

import re
import urllib.parse
from typing import Any

from local.sandbox.checks import is_sha256_hex
from local.sandbox.wire import SandboxRequest, SandboxResponse, bearer, json_response, parse_json

TOKEN = "ya29.sandbox-fake-access-token"  # noqa: S105 - fake, sandbox only
CREATE = re.compile(r"^/v\d+/customers/(\d+)/offlineUserDataJobs:create$")
JOB = re.compile(r"^/v\d+/(customers/(\d+)/offlineUserDataJobs/(\d+)):(addOperations|run)$")
IDENTIFIER_KEYS = {"hashedEmail", "hashedPhoneNumber"}


def google_error(status: int, code: str, message: str) -> SandboxResponse:
    return json_response(status, {"error": {"code": status, "message": message, "status": code}})


class GoogleAds:
    def __init__(self, secrets: dict[str, Any]) -> None:
        self.secrets = secrets
        self.jobs: dict[str, dict[str, Any]] = {}  # resource name -> {user_list, operations, ran}

    def handle(self, request: SandboxRequest) -> SandboxResponse:
        if request.method == "POST" and request.path == "/token":
            return self._token(request)
        if request.method != "POST":
            return google_error(404, "NOT_FOUND", "not found")
        if bearer(request) != TOKEN:
            return google_error(
                401, "UNAUTHENTICATED", "Request had invalid authentication credentials."
            )
        if request.headers.get("developer-token") != self.secrets.get("developer_token"):
            return google_error(401, "UNAUTHENTICATED", "The developer token is not valid.")
        body = parse_json(request)
        if (match := CREATE.match(request.path)) is not None:
            return self._create(match.group(1), body)
        if (match := JOB.match(request.path)) is not None:
            job = self.jobs.get(match.group(1))
            if job is None:
                return google_error(404, "NOT_FOUND", "Requested entity was not found.")
            if match.group(4) == "addOperations":
                return self._add(job, body)
            return self._run(match.group(1), job)
        return google_error(404, "NOT_FOUND", "not found")

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

    def _create(self, customer: str, body: Any) -> SandboxResponse:
        job = body.get("job") if isinstance(body, dict) else None
        metadata = job.get("customerMatchUserListMetadata", {}) if isinstance(job, dict) else {}
        user_list = metadata.get("userList", "") if isinstance(metadata, dict) else ""
        if (
            not isinstance(job, dict)
            or job.get("type") != "CUSTOMER_MATCH_USER_LIST"
            or not re.fullmatch(rf"customers/{customer}/userLists/\d+", str(user_list))
        ):
            return google_error(400, "INVALID_ARGUMENT", "Request contains an invalid argument.")
        name = f"customers/{customer}/offlineUserDataJobs/{len(self.jobs) + 1}"
        self.jobs[name] = {"user_list": user_list, "operations": [], "ran": False}
        return json_response(200, {"resourceName": name})

    def _add(self, job: dict[str, Any], body: Any) -> SandboxResponse:
        operations = body.get("operations") if isinstance(body, dict) else None
        if job["ran"] or not isinstance(operations, list) or not operations:
            return google_error(400, "INVALID_ARGUMENT", "Request contains an invalid argument.")
        for operation in operations:
            if not valid_operation(operation):
                return google_error(
                    400, "INVALID_ARGUMENT", "Request contains an invalid argument."
                )
        job["operations"].extend(operations)
        return json_response(200, {})

    def _run(self, name: str, job: dict[str, Any]) -> SandboxResponse:
        if job["ran"] or not job["operations"]:
            return google_error(400, "FAILED_PRECONDITION", "The job cannot be run.")
        job["ran"] = True
        customer = name.split("/")[1]
        return json_response(
            200, {"name": f"customers/{customer}/operations/{name.rsplit('/', 1)[1]}"}
        )


def valid_operation(operation: Any) -> bool:
    if not isinstance(operation, dict) or len(operation) != 1:
        return False
    ((kind, user_data),) = operation.items()
    identifiers = user_data.get("userIdentifiers") if isinstance(user_data, dict) else None
    if kind not in ("create", "remove") or not isinstance(identifiers, list) or not identifiers:
        return False
    for identifier in identifiers:
        if not isinstance(identifier, dict) or len(identifier) != 1:
            return False
        ((key, value),) = identifier.items()
        if key not in IDENTIFIER_KEYS or not is_sha256_hex(value):
            return False
    return True
