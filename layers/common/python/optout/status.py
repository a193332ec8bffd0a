"""A request's aggregate status, from its event, the resolver's outcome and its jobs."""

from typing import Final

from optout.api_models import RequestStatus, RequestStatusOut
from optout.store import keys
from optout.store.codec import Item

DONE: Final = frozenset({"done", "no_record"})  # "no record" is a receipt, not an error
FAILED: Final = "failed"


def aggregate(request_id: str, items: list[Item]) -> RequestStatusOut | None:
    by_sk = {item["sk"]: item for item in items}
    event = by_sk.get(keys.EVENT_SK)
    if event is None:
        return None
    resolution = by_sk.get(keys.RESOLUTION_SK)
    jobs = [item for item in items if item["sk"].startswith(keys.JOB_PREFIX)]
    done = sum(1 for job in jobs if job.get("status") in DONE)
    failed = sum(1 for job in jobs if job.get("status") == FAILED)
    status: RequestStatus
    completed_at: str | None = None
    if resolution is None:
        status = "received"
    elif done + failed < len(jobs):
        status = "processing"
    elif failed:
        status = "failed"
    else:
        status = "completed"
        stamps = [job["completed_at"] for job in jobs if job.get("completed_at")]
        completed_at = max(stamps) if stamps else resolution.get("resolved_at")
    return RequestStatusOut(
        request_id=request_id,
        status=status,
        received_at=event["received_at"],
        deadline=event["deadline"],
        completed_at=completed_at,
        systems_total=len(jobs),
        systems_done=done,
        systems_failed=failed,
    )
