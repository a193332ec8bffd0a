"""A request's aggregate status (optout.status.aggregate)."""

from typing import Any

from optout.status import aggregate

RID = "6b1f0c3e-2d4a-4b5c-9e8f-7a6b5c4d3e2f"
EVENT = {
    "pk": f"REQ#{RID}",
    "sk": "EVENT",
    "received_at": "2026-11-29T03:12:00.000Z",
    "deadline": "2026-12-18",
}
RESOLUTION = {"pk": f"REQ#{RID}", "sk": "RESOLUTION", "resolved_at": "2026-11-29T03:12:01.000Z"}


def _job(system: str, status: str, completed_at: str | None = None) -> dict[str, Any]:
    job: dict[str, Any] = {"pk": f"REQ#{RID}", "sk": f"JOB#{system}", "status": status}
    if completed_at:
        job["completed_at"] = completed_at
    return job


def test_no_event_means_no_request() -> None:
    assert aggregate(RID, []) is None
    assert aggregate(RID, [RESOLUTION, _job("crm", "done")]) is None


def test_event_without_resolution_is_received() -> None:
    status = aggregate(RID, [EVENT])
    assert status is not None
    assert status.model_dump() == {
        "request_id": RID,
        "status": "received",
        "received_at": "2026-11-29T03:12:00.000Z",
        "deadline": "2026-12-18",
        "completed_at": None,
        "systems_total": 0,
        "systems_done": 0,
        "systems_failed": 0,
    }


def test_resolved_with_pending_jobs_is_processing() -> None:
    items = [EVENT, RESOLUTION, _job("crm", "done", "2026-11-29T04:00:00.000Z"),
             _job("ads", "pending"), _job("cdp", "failed")]  # fmt: skip
    status = aggregate(RID, items)
    assert status is not None
    assert (status.status, status.systems_total, status.systems_done, status.systems_failed) == (
        "processing", 3, 1, 1,
    )  # fmt: skip
    assert status.completed_at is None


def test_all_jobs_done_or_no_record_is_completed_at_the_latest_receipt() -> None:
    items = [EVENT, RESOLUTION, _job("crm", "done", "2026-11-29T05:00:00.000Z"),
             _job("ads", "no_record", "2026-11-29T06:00:00.000Z")]  # fmt: skip
    status = aggregate(RID, items)
    assert status is not None
    assert (status.status, status.systems_done, status.systems_failed) == ("completed", 2, 0)
    assert status.completed_at == "2026-11-29T06:00:00.000Z"


def test_any_failed_job_once_all_are_final_is_failed() -> None:
    items = [EVENT, RESOLUTION, _job("crm", "done", "2026-11-29T05:00:00.000Z"),
             _job("ads", "failed")]  # fmt: skip
    status = aggregate(RID, items)
    assert status is not None
    assert (status.status, status.systems_total, status.systems_done, status.systems_failed) == (
        "failed", 2, 1, 1,
    )  # fmt: skip
    assert status.completed_at is None


def test_resolved_with_no_systems_to_notify_is_completed_at_resolution() -> None:
    status = aggregate(RID, [EVENT, RESOLUTION])
    assert status is not None
    assert status.status == "completed"
    assert status.completed_at == "2026-11-29T03:12:01.000Z"
    assert status.systems_total == 0
