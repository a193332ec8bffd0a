"""A request complied with in part whose last open system was retired after the others
answered reads `processing` until the retirement (past its deadline here): it is answered then,
as `status.aggregate` dates a completion (review s34b F2-a: it was dated at its last job
receipt). A retirement of a system whose job had already failed answers nothing."""

from optout.ops.contribution import contribution_of
from optout.status import aggregate

RID = "2d5f8922-2d4a-4b5c-9e8f-7a6b5c4d3e2f"
PK = f"REQ#{RID}"


def job(system: str, status: str, completed: str | None) -> dict:
    found = {
        "pk": PK,
        "sk": f"JOB#{system}",
        "job_id": f"{RID}:{system}",
        "request_id": RID,
        "system": system,
        "status": status,
        "created_at": "2026-12-01T10:00:01.000Z",
        "identifiers": [{"type": "email", "key": "e1"}],
        "purposes": ["sale"],
    }
    if completed:
        found["completed_at"] = completed
    return found


def _request(last: tuple[str, str | None]) -> list[dict]:
    event = {
        "pk": PK,
        "sk": "EVENT",
        "request_id": RID,
        "event_type": "opt_out",
        "source": "webform",
        "received_at": "2026-12-01T10:00:00.000Z",
        "deadline": "2026-12-22",
        "opt_out": {"sale": True},
        "evidence": {},
        "identifiers": [{"type": "email", "key": "e1", "value": "x"}],
    }
    resolution = {
        "pk": PK,
        "sk": "RESOLUTION",
        "resolved_at": "2026-12-01T10:00:01.000Z",
        "jobs_total": 3,
    }
    return [
        event,
        resolution,
        job("braze", "done", "2026-12-01T10:00:05.000Z"),
        job("meta", "failed", "2026-12-01T11:00:00.000Z"),
        job("segment", *last),
    ]


def test_retired_last_system_dates_the_partial_answer() -> None:
    items = _request(("pending", None))
    retired_at = "2026-12-28T09:00:00.000Z"  # past the deadline (12-22)
    covering = {
        ("RETIRED", "segment"): {"pk": "RETIRED", "sk": "segment", "retired_at": retired_at}
    }
    before = aggregate(RID, items, {})
    assert before is not None and before.status == "processing"  # until segment's retirement
    status = aggregate(RID, items, covering)
    assert status is not None and status.status == "failed"
    found = contribution_of(items, covering)
    assert found is not None and found.outcome == "complied_part"
    # it read processing until 12-28: answered then (late), not at meta's failure on the 1st
    assert found.responded_at == retired_at, found.responded_at


def test_a_retirement_after_a_system_had_failed_answers_nothing_later() -> None:
    # segment failed on the 1st (12:00), then was retired weeks later: answered at that failure
    items = _request(("failed", "2026-12-01T12:00:00.000Z"))
    covering = {
        ("RETIRED", "segment"): {
            "pk": "RETIRED",
            "sk": "segment",
            "retired_at": "2026-12-28T09:00:00.000Z",
        }
    }
    found = contribution_of(items, covering)
    assert found is not None and found.outcome == "complied_part"
    assert found.responded_at == "2026-12-01T12:00:00.000Z", found.responded_at


def test_a_re_open_that_settled_a_system_dates_the_partial_answer() -> None:
    # segment answered on the 1st, but a re-open on the 10th is what settled it for this request
    # (RESOLUTION.reopens): the request is answered then, as a completion would be
    items = _request(("done", "2026-12-01T10:00:06.000Z"))
    reopened = "2026-12-10T08:00:00.000Z"
    items[1]["reopens"] = [{"at": reopened, "systems": ["segment"]}]
    found = contribution_of(items, {})
    assert found is not None and found.outcome == "complied_part"
    assert found.responded_at == reopened, found.responded_at
