"""Segment: the HTTP Tracking API batch endpoint and the Public API's regulations.

Tracking: consent events must name the workspace's own consent categories (this sandbox's
workspace has CATEGORIES); a purpose name such as "sale" matches no category and is refused,
the way a wrong key would silently change nothing at Segment. An unknown write key is answered
200, as Segment answers it (its edge does not check keys), and the batch is dropped and
counted in `dropped`: a test can show that a 200 proves nothing about the key.
Regulations: `regulationType` is Segment's enum (there is no SUPPRESS_AND_DELETE); a
regulation starts INITIALIZED and reads RUNNING, then FINISHED on successive
GET /regulations/{id} (`fail_next` makes the next one FAILED), as Segment runs them
asynchronously. A suppressing regulation adds its subjects to `suppressed` when accepted.
`unsupported_destination` is a workspace with a destination that cannot delete: as Segment
documents, a regulation forwarded to destinations (SUPPRESS_WITH_DELETE, DELETE_ONLY) then
ends FAILED overall, its `streamStatus[].destinationStatus[]` saying NOT_SUPPORTED, though
the suppression is in place; a Segment-only type (SUPPRESS_ONLY, ...) is not forwarded.
"""

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

# A workspace regulation's types, as Segment's Public API SDK types POST /regulations's body
# (CreateWorkspaceRegulationV1Input; tests/unit/connectors/test_segment_sdk.py): no
# DELETE_ARCHIVE_ONLY, a source-scoped type only.
REGULATION_TYPES = {
    "SUPPRESS_ONLY",
    "UNSUPPRESS",
    "SUPPRESS_WITH_DELETE",
    "SUPPRESS_WITH_DELETE_INTERNAL",
    "DELETE_INTERNAL",
    "DELETE_ONLY",
}
CATEGORIES = {"C0001", "C0002", "C0003", "C0004", "C0005"}
LIFECYCLE = ("INITIALIZED", "RUNNING", "FINISHED")
# "Segment & Destination regulations" (segment.com/docs/privacy/user-deletion-and-suppression/)
FORWARDED = {"SUPPRESS_WITH_DELETE", "DELETE_ONLY"}
SUPPRESSING = {"SUPPRESS_ONLY", "SUPPRESS_WITH_DELETE", "SUPPRESS_WITH_DELETE_INTERNAL"}
MAX_SUBJECTS = 5000
PUBLIC_API_JSON = "application/vnd.segment.v1+json"


class Segment:
    def __init__(self, secrets: dict[str, Any]) -> None:
        self.write_key = secrets.get("write_key")
        self.token = secrets.get("token")
        self.regulations: dict[str, dict[str, Any]] = {}
        self.fail_next = False
        self.unsupported_destination = False
        self.suppressed: set[str] = set()  # userIds on the workspace's suppression list
        self.dropped = 0  # batches answered 200 for an unknown write key, then dropped

    def handle(self, request: SandboxRequest) -> SandboxResponse:
        if request.method == "POST" and request.path == "/v1/batch":
            return self._batch(request)
        if request.path == "/regulations" or request.path.startswith("/regulations/"):
            if not self.token or bearer(request) != self.token:
                return json_response(
                    401, {"errors": [{"type": "unauthorized", "message": "Unauthorized"}]}
                )
            if request.method == "POST" and request.path == "/regulations":
                return self._regulation(request)
            if request.method == "GET":
                return self._status(request.path.removeprefix("/regulations/"))
        return json_response(404, {"errors": [{"type": "not-found", "message": "Not Found"}]})

    def _batch(self, request: SandboxRequest) -> SandboxResponse:
        if not self.write_key or basic_user(request) != self.write_key:
            self.dropped += 1  # as Segment: 200 to an unknown write key, the events dropped
            return json_response(200, {"success": True})
        body = parse_json(request)
        events = body.get("batch") if isinstance(body, dict) else None
        if not isinstance(events, list) or not events or not all(map(valid_event, events)):
            return json_response(400, {"success": False, "message": "invalid batch"})
        return json_response(200, {"success": True})

    def _regulation(self, request: SandboxRequest) -> SandboxResponse:
        if request.headers.get("content-type") != PUBLIC_API_JSON:
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
        regulate_id = f"reg_{len(self.regulations) + 1}"
        unsupported = self.unsupported_destination and body["regulationType"] in FORWARDED
        self.regulations[regulate_id] = {"reads": 0, "failed": self.fail_next, "body": body,
                                         "unsupported": unsupported}  # fmt: skip
        if body["regulationType"] in SUPPRESSING:
            self.suppressed.update(body["subjectIds"])
        self.fail_next = False
        return json_response(200, {"data": {"regulateId": regulate_id}})

    def _status(self, regulate_id: str) -> SandboxResponse:
        regulation = self.regulations.get(regulate_id)
        if regulation is None:
            return json_response(404, {"errors": [{"type": "not-found", "message": "Not Found"}]})
        status = LIFECYCLE[min(regulation["reads"], len(LIFECYCLE) - 1)]
        regulation["reads"] += 1
        destination = "FINISHED" if status == "FINISHED" else "RUNNING"
        if status == "FINISHED" and regulation["unsupported"]:
            status, destination = "FAILED", "NOT_SUPPORTED"
        if status == "FINISHED" and regulation["failed"]:
            status = "FAILED"
        # finishedAt once final (Segment's SDK types it on Regulation and DestinationStatusV1)
        final = status in ("FINISHED", "FAILED")
        finished = {"finishedAt": "2026-11-30T00:00:00Z"} if final else {}
        streams = []
        if regulation["body"]["regulationType"] in FORWARDED:
            dest = {"id": "dest_1", "name": "Sandbox Destination", "status": destination,
                    "errString": "", **finished}  # fmt: skip
            # StreamStatusV1 (Segment's SDK) has only these two fields: no name, no status
            streams = [{"id": "stream_1", "destinationStatus": [dest]}]
        return json_response(
            200,
            {
                "data": {
                    "regulation": {
                        "id": regulate_id,
                        "workspaceId": "sandbox",
                        "overallStatus": status,
                        "createdAt": "2026-11-29T00:00:00Z",
                        **finished,
                        "streamStatus": streams,
                    }
                }
            },
        )


def valid_event(event: Any) -> bool:
    if not isinstance(event, dict) or event.get("type") != "track" or not event.get("event"):
        return False
    if not (event.get("userId") or event.get("anonymousId")) or not event.get("messageId"):
        return False
    consent = event.get("context", {}).get("consent", {})
    preferences = consent.get("categoryPreferences") if isinstance(consent, dict) else None
    return (
        isinstance(preferences, dict)
        and bool(preferences)
        and set(preferences) <= CATEGORIES
        and all(isinstance(v, bool) for v in preferences.values())
    )
