"""Meta Marketing API: DELETE usersofanyaudience / {audience}/users with a hashed payload."""

import json
import re
import urllib.parse
from typing import Any

from local.sandbox.checks import is_sha256_hex
from local.sandbox.wire import SandboxRequest, SandboxResponse, bearer, json_response

PATH = re.compile(r"^/v\d+\.\d+/(?:act_\d+/usersofanyaudience|\d+/users)$")
SCHEMAS = {"EMAIL_SHA256", "PHONE_SHA256"}
MAX_ENTRIES = 10_000


def graph_error(
    status: int, code: int, message: str, kind: str = "OAuthException"
) -> SandboxResponse:
    return json_response(
        status, {"error": {"message": message, "type": kind, "code": code, "fbtrace_id": "sandbox"}}
    )


class Meta:
    def __init__(self, secrets: dict[str, Any]) -> None:
        self.access_token = secrets.get("access_token")
        self.sessions = 0

    def handle(self, request: SandboxRequest) -> SandboxResponse:
        path = urllib.parse.urlsplit(request.path).path
        if request.method != "DELETE" or not PATH.match(path):
            return graph_error(404, 803, "Unknown path components", "GraphMethodException")
        if not self.access_token or bearer(request) != self.access_token:
            return graph_error(401, 190, "Invalid OAuth access token.")
        form = dict(urllib.parse.parse_qsl(request.body.decode()))
        try:
            payload = json.loads(form.get("payload", ""))
        except ValueError:
            return graph_error(400, 100, "(#100) param payload must be JSON")
        data = payload.get("data") if isinstance(payload, dict) else None
        if (
            not isinstance(payload, dict)
            or payload.get("schema") not in SCHEMAS
            or not isinstance(data, list)
            or not data
            or len(data) > MAX_ENTRIES
        ):
            return graph_error(400, 100, "(#100) Invalid parameter")
        invalid = [d for d in data if not is_sha256_hex(d)]
        self.sessions += 1
        return json_response(
            200,
            {
                "session_id": str(self.sessions),
                "num_received": len(data),
                "num_invalid_entries": len(invalid),
                "invalid_entry_samples": {},
            },
        )
