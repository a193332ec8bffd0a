"""`GET /_local/requests?limit=N`: recent requests and their per-system status, for the demo.
`GET /_local/requests/ids`: the id of every request the table holds, for counting (the load
test compares it with what the API accepted).

Newest first. Only ids, times, sources, statuses and receipt codes: never identifier values.
A local-only route: production answers these questions through the IAM-protected admin API.
"""

from typing import Any

from local.http_types import Incoming, Outgoing, error_answer, json_answer
from optout.status import aggregate
from optout.store import keys
from optout.store.codec import deserialize
from optout.store.proof import load_with_proof
from optout.store.table import Table

PATH = "/_local/requests"
IDS_PATH = f"{PATH}/ids"
DEFAULT_LIMIT = 20
MAX_LIMIT = 200


class RequestsView:
    def __init__(self, table: Table) -> None:
        self._table = table

    def serve(self, request: Incoming) -> Outgoing:
        if request.path == IDS_PATH:
            ids = [event["request_id"] for event in self._events()]
            return json_answer(200, {"count": len(ids), "request_ids": ids})
        raw = request.query_params().get("limit", str(DEFAULT_LIMIT))
        if not raw.isdigit() or not 1 <= int(raw) <= MAX_LIMIT:
            return error_answer(422, "invalid_field", f"limit must be 1-{MAX_LIMIT}")
        return json_answer(200, self.recent(int(raw)))

    def recent(self, limit: int) -> list[dict[str, Any]]:
        events = sorted(self._events(), key=lambda e: e["received_at"], reverse=True)[:limit]
        return [self._summary(event) for event in events]

    def _events(self) -> list[dict[str, Any]]:
        # A scan is fine for a demo table; the projection keeps identifiers out of memory.
        found: list[dict[str, Any]] = []
        pages = self._table.client.get_paginator("scan").paginate(
            TableName=self._table.name,
            FilterExpression="sk = :event",
            ExpressionAttributeValues={":event": {"S": keys.EVENT_SK}},
            ProjectionExpression="request_id, received_at, #source, event_type",
            ExpressionAttributeNames={"#source": "source"},
        )
        for page in pages:
            found.extend(deserialize(raw) for raw in page.get("Items", []))
        return found

    def _summary(self, event: dict[str, Any]) -> dict[str, Any]:
        request_id = event["request_id"]
        items, covering = load_with_proof(self._table, request_id)
        status = aggregate(request_id, items, covering)
        jobs = [item for item in items if item["sk"].startswith(keys.JOB_PREFIX)]
        return {
            "request_id": request_id,
            "received_at": event["received_at"],
            "source": event.get("source"),
            "event_type": event.get("event_type"),
            "status": status.status if status else "received",
            "systems": [
                {
                    "system": job.get("system"),
                    "status": job.get("status"),
                    "attempts": job.get("attempts", 0),
                    "http_status": (job.get("receipt") or {}).get("http_status"),
                    "completed_at": job.get("completed_at"),
                }
                for job in sorted(jobs, key=lambda j: str(j.get("system")))
            ],
        }
