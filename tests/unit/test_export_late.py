"""Whether an exported request is `late` (optout.ops.export.is_late): answered after its
deadline's day, or not answered and that day has passed; days in UTC, as the watch counts."""

from datetime import date
from typing import Any

import pytest

from optout.api_models import RequestStatusOut
from optout.ops.export import is_late, request_records

DEADLINE = "2026-12-21"


def status(state: str, **times: Any) -> RequestStatusOut:
    return RequestStatusOut(request_id="r", status=state, received_at="2026-11-30T18:00:00Z",  # type: ignore[arg-type]
                            deadline=DEADLINE, systems_total=1, systems_done=1,
                            systems_failed=0, **times)  # fmt: skip


@pytest.mark.parametrize(
    ("state", "times", "today", "late"),
    [
        # completed on its deadline day (UTC), or before it: not late, whenever exported
        ("completed", {"completed_at": "2026-12-21T23:59:59.999Z"}, date(2027, 6, 1), False),
        ("completed", {"completed_at": "2026-12-02T10:00:00Z"}, date(2026, 12, 3), False),
        # completed the day after: late, also when exported before its deadline passed
        ("completed", {"completed_at": "2026-12-22T00:00:00Z"}, date(2026, 12, 22), True),
        # an offset is read in UTC: 16:30 PST on the deadline day is the 22nd in UTC
        ("completed", {"completed_at": "2026-12-21T16:30:00-08:00"}, date(2027, 1, 5), True),
        # a denial is the answer: late when given after the deadline's day
        ("denied", {"denied_at": "2026-12-23T09:00:00Z"}, date(2027, 1, 5), True),
        ("denied", {"denied_at": "2026-12-10T09:00:00Z"}, date(2027, 1, 5), False),
        # not answered (received, processing, failed): late once its deadline's day has passed
        ("processing", {}, date(2026, 12, 21), False),
        ("processing", {}, date(2026, 12, 22), True),
        ("failed", {}, date(2026, 12, 22), True),
        ("received", {}, date(2026, 12, 1), False),
    ],
)
def test_a_request_is_late_when_answered_after_its_deadline_or_still_open_past_it(
    state: str, times: dict[str, str], today: date, late: bool
) -> None:
    assert is_late(status(state, **times), today) is late


def test_an_imported_request_answered_on_time_by_the_other_tool_exports_not_late() -> None:
    # Given a request imported from another tool, received 2 March and answered by that tool
    # 7 days later, whose job here was done 9 months later (when it was imported)
    rid = "2d5f8922-2d4a-4b5c-9e8f-7a6b5c4d3e2f"
    event = {"pk": f"REQ#{rid}", "sk": "EVENT", "request_id": rid, "event_type": "opt_out",
             "source": "webform", "received_at": "2026-03-02T10:00:00.000Z",
             "deadline": "2026-03-23", "opt_out": {"sale": True, "share": True},
             "evidence": {"jurisdiction": "US-CA", "imported": {
                 "external_id": "old-1", "completed_at": "2026-03-09T16:00:00.000Z"}}}  # fmt: skip
    job = {"pk": f"REQ#{rid}", "sk": "JOB#braze", "job_id": f"{rid}:braze", "request_id": rid,
           "system": "braze", "status": "done",
           "completed_at": "2026-12-01T03:21:42.255Z"}  # fmt: skip
    resolution = {"pk": f"REQ#{rid}", "sk": "RESOLUTION", "jobs_total": 1,
                  "resolved_at": "2026-12-01T03:21:40.000Z"}  # fmt: skip
    # When it is exported
    request = request_records(rid, [event, resolution, job], {}, date(2026, 12, 1))[0]
    # Then it reads answered when the other tool answered it, and not late (as the §7102
    # figures count its days), while `completed_at` stays this deployment's completion
    assert request["status"] == "completed"
    assert request["answered_at"] == "2026-03-09T16:00:00.000Z"
    assert request["late"] is False
    assert request["completed_at"].startswith("2026-12-01")


@pytest.mark.parametrize(
    ("state", "times", "imported_at", "late"),
    [
        # the other tool answered after the deadline: late, whatever happened here since
        ("completed", {"completed_at": "2026-12-01T00:00:00Z"}, "2026-03-24T09:00:00Z", True),
        # answered on time there; a system here failed since: still answered on time
        ("failed", {}, "2026-03-09T16:00:00Z", False),
    ],
)
def test_an_imported_request_is_late_by_the_other_tools_answer(
    state: str, times: dict[str, str], imported_at: str, late: bool
) -> None:
    imported = status(state, **times).model_copy(update={"deadline": "2026-03-23"})
    assert is_late(imported, date(2026, 12, 1), imported_at) is late
