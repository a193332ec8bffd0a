"""Segment: the HTTP Tracking API batch endpoint and the Public API's regulations."""

from typing import Any

from local.sandbox.checks import str_list
from local.sandbox.wire import (
    SandboxRequest,
    SandboxResponse,
    basic_user,
    bearer,
    json_response,
    parse_json,
)

REGULATION_TYPES = {"SUPPRESS_ONLY", "SUPPRESS_AND_DELETE", "DELETE_ONLY", "UNSUPPRESS"}
MAX_SUBJECTS = 5000


class Segment:
    def __init__(self, secrets: dict[str, Any]) -> None:
        self.write_key = secrets.get("write_key")
        self.token = secrets.get("token")
        self.count = 0

    def handle(self, request: SandboxRequest) -> SandboxResponse:
        if request.method == "POST" and request.path == "/v1/batch":
            return self._batch(request)
        if request.method == "POST" and request.path == "/regulations":
            return self._regulation(request)
        return json_response(404, {"errors": [{"type": "not-found", "message": "Not Found"}]})

    def _batch(self, request: SandboxRequest) -> SandboxResponse:
        if not self.write_key or basic_user(request) != self.write_key:
            return json_response(401, {"success": False, "message": "invalid write key"})
        body = parse_json(request)
        events = body.get("batch") if isinstance(body, dict) else None
        if not isinstance(events, list) or not events or not all(map(valid_event, events)):
            return json_response(400, {"success": False, "message": "invalid batch"})
        return json_response(200, {"success": True})

    def _regulation(self, request: SandboxRequest) -> SandboxResponse:
        if not self.token or bearer(request) != self.token:
            return json_response(
                401, {"errors": [{"type": "unauthorized", "message": "Unauthorized"}]}
            )
        if request.headers.get("content-type") != "application/vnd.segment.v1+json":
            return json_response(415, {"errors": [{"type": "unsupported-media-type"}]})
        body = parse_json(request)
        ok = (
            isinstance(body, dict)
            and body.get("regulationType") in REGULATION_TYPES
            and body.get("subjectType") in ("USER_ID", "OBJECT_ID")
            and str_list(body.get("subjectIds"))
            and len(body["subjectIds"]) <= MAX_SUBJECTS
        )
        if not ok:
            return json_response(
                400, {"errors": [{"type": "validation", "message": "Bad Request"}]}
            )
        self.count += 1
        return json_response(200, {"data": {"regulateId": f"reg_{self.count}"}})


def valid_event(event: Any) -> bool:
    if not isinstance(event, dict) or event.get("type") != "track" or not event.get("event"):
        return False
    if not (event.get("userId") or event.get("anonymousId")) or not event.get("messageId"):
        return False
    consent = event.get("context", {}).get("consent", {})
    preferences = consent.get("categoryPreferences") if isinstance(consent, dict) else None
    return isinstance(preferences, dict) and all(isinstance(v, bool) for v in preferences.values())
