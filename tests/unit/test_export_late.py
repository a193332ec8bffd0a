"""Whether an exported request is `late` (optout.ops.export.is_late): answered after its
deadline's day, or not answered and that day has passed; days are dates in the request's
jurisdiction (its standard time, California's when none is known), as its deadline counts
them, not UTC dates (review s14 counsel 9)."""

from datetime import UTC, date, datetime, timedelta
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
        # completed on its deadline day (in California: no jurisdiction), or before it: not
        # late, whenever exported
        ("completed", {"completed_at": "2026-12-21T23:59:59.999Z"}, date(2027, 6, 1), False),
        ("completed", {"completed_at": "2026-12-02T10:00:00Z"}, date(2026, 12, 3), False),
        # 16:30 PST on the deadline day is the 22nd in UTC: on time (UTC dates called it late)
        ("completed", {"completed_at": "2026-12-21T16:30:00-08:00"}, date(2027, 1, 5), False),
        ("completed", {"completed_at": "2026-12-22T07:59:59.999Z"}, date(2027, 1, 5), False),
        # completed the day after (00:00 PST): late, also when exported before its deadline
        ("completed", {"completed_at": "2026-12-22T08:00:00Z"}, date(2026, 12, 22), True),
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
    now = datetime(2026, 12, 1, 12, tzinfo=UTC)
    request = request_records(rid, [event, resolution, job], {}, now)[0]
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


@pytest.mark.parametrize(
    ("jurisdiction", "completed_at", "late"),
    [
        # 23:30 PST on the deadline day in California; 00:30 MST the next day in Colorado
        ("US-CA", "2026-12-22T07:30:00Z", False),
        ("US-CO", "2026-12-22T07:30:00Z", True),
        # 17:00 EST on the deadline day in New Jersey, already the next day in UTC
        ("US-NJ", "2026-12-21T17:00:00-05:00", False),
    ],
)
def test_an_answer_is_late_by_the_date_in_its_requests_jurisdiction(
    jurisdiction: str, completed_at: str, late: bool
) -> None:
    answered = status("completed", completed_at=completed_at)
    assert is_late(answered, date(2027, 1, 5), None, jurisdiction) is late


def _exported(
    completed_at: str | None, now: datetime, jurisdiction: str, located: bool = False
) -> Any:
    """The export's `late` of a request received from `jurisdiction` with deadline DEADLINE,
    completed at `completed_at` (None: still processing)."""
    rid = "6f1d0c2b-3a4e-4f5a-8b9c-0d1e2f3a4b5c"
    where = "geolocation" if located else "request"
    event = {"pk": f"REQ#{rid}", "sk": "EVENT", "request_id": rid, "event_type": "opt_out",
             "source": "webform", "received_at": "2026-11-30T18:00:00.000Z",
             "deadline": DEADLINE, "opt_out": {"sale": True},
             "evidence": {"jurisdiction": jurisdiction, "jurisdiction_from": where}}  # fmt: skip
    job = {"pk": f"REQ#{rid}", "sk": "JOB#braze", "job_id": f"{rid}:braze", "request_id": rid,
           "system": "braze", "status": "done" if completed_at else "pending",
           **({"completed_at": completed_at} if completed_at else {})}  # fmt: skip
    resolution = {"pk": f"REQ#{rid}", "sk": "RESOLUTION", "jobs_total": 1,
                  "resolved_at": "2026-11-30T18:00:01.000Z"}  # fmt: skip
    return request_records(rid, [event, resolution, job], {}, now)[0]["late"]


def test_an_export_judges_a_california_answer_at_the_deadline_evening_on_time() -> None:
    later = datetime(2027, 1, 5, tzinfo=UTC)
    # answered at 17:00 PST on its deadline day (01:00 UTC the next day): on time
    assert _exported("2026-12-22T01:00:00.000Z", later, "US-CA") is False
    # answered at 00:00 PST the next day: late
    assert _exported("2026-12-22T08:00:00.000Z", later, "US-CA") is True


def test_an_export_calls_an_open_request_late_only_once_its_deadline_day_ends_there() -> None:
    # still processing at 21:00 PST on its deadline day (05:00 UTC the next day): not late yet
    assert _exported(None, datetime(2026, 12, 22, 5, tzinfo=UTC), "US-CA") is False
    # ... and at 00:00 PST the next day, it is
    assert _exported(None, datetime(2026, 12, 22, 8, tzinfo=UTC), "US-CA") is True


def test_a_geolocated_request_is_judged_in_the_calendar_its_deadline_was_counted_in() -> None:
    # Located in Texas, received 2026-11-30 10:00 PST: California's 15 business days (Dec 21)
    # come before Texas's 45 days, so DEADLINE is California's, and its day ends at 00:00 PST
    # (review s16 claims F4: read at Texas's offset, 23:30 PST on Dec 21 was called late)
    later = datetime(2027, 1, 5, tzinfo=UTC)
    assert _exported("2026-12-22T07:30:00.000Z", later, "US-TX", located=True) is False
    assert _exported("2026-12-22T08:00:00.000Z", later, "US-TX", located=True) is True
    # still open at 23:30 PST on the deadline day: not late yet
    assert (
        _exported(None, datetime(2026, 12, 22, 7, 30, tzinfo=UTC), "US-TX", located=True) is False
    )


@pytest.mark.parametrize(
    ("jurisdiction", "now"),
    [
        # 00:30 the day after its deadline in New York (read at Hawaii's time before review
        # s18 time T1/T2: still the deadline day) and in central Texas (read at El Paso's)
        ("US-NY", datetime(2026, 12, 22, 5, 30, tzinfo=UTC)),
        ("US-TX", datetime(2026, 12, 22, 6, 30, tzinfo=UTC)),
    ],
)
def test_an_open_request_is_late_once_its_deadline_day_ends_anywhere_in_its_state(
    jurisdiction: str, now: datetime
) -> None:
    assert _exported(None, now, jurisdiction) is True
    assert _exported(None, now - timedelta(hours=1), jurisdiction) is False


@pytest.mark.parametrize(
    ("jurisdiction", "completed_at"),
    [
        ("US-CA", "2026-06-23T00:40:00-07:00"),  # 00:40 PDT the day after
        ("US-TX", "2026-06-23T01:40:00-05:00"),  # 00:40 CST in El Paso, 01:40 CDT in Dallas
        ("US-IN", "2026-06-23T01:40:00-04:00"),
        ("US-NY", "2026-06-23T05:50:00-04:00"),
    ],
)
def test_a_summer_answer_after_midnight_following_its_deadline_is_late(
    jurisdiction: str, completed_at: str
) -> None:
    # review s18 time T1: each was read as 22 June at the state's standard time
    answered = status("completed", completed_at=completed_at)
    answered = answered.model_copy(update={"deadline": "2026-06-22"})
    assert is_late(answered, date(2026, 7, 30), None, jurisdiction) is True


def test_an_exported_request_names_the_day_its_years_figures_count_it_under() -> None:
    # review s18 time T10: received 31 Dec 2026 23:30 PST, 1 Jan 2027 in UTC (the range
    # export's day), counted in 2026's §7102 figures
    rid = "7a1d0c2b-3a4e-4f5a-8b9c-0d1e2f3a4b5c"
    event = {"pk": f"REQ#{rid}", "sk": "EVENT", "request_id": rid, "event_type": "opt_out",
             "source": "webform", "received_at": "2027-01-01T07:30:00.000Z",
             "deadline": "2027-01-25", "opt_out": {"sale": True},
             "evidence": {"jurisdiction": "US-CA", "jurisdiction_from": "request"}}  # fmt: skip
    resolution = {"pk": f"REQ#{rid}", "sk": "RESOLUTION", "jobs_total": 0,
                  "resolved_at": "2027-01-01T07:30:01.000Z"}  # fmt: skip
    request = request_records(rid, [event, resolution], {}, datetime(2027, 1, 2, tzinfo=UTC))[0]
    assert (request["received_at"], request["received_on"]) == (
        "2027-01-01T07:30:00.000Z",
        "2026-12-31",
    )


def test_a_partly_complied_request_exports_answered_as_the_figures_count_it() -> None:
    # Given a request whose Salesforce job failed for good and whose Braze job was done (the
    # §7102 figures: complied_part, responded at its last receipt, Salesforce's failure after
    # Braze's confirmation; review s26 counsel F4, s34 proof F2)
    rid = "e58c4f69-2d4a-4b5c-9e8f-7a6b5c4d3e2f"
    pk = f"REQ#{rid}"
    event = {"pk": pk, "sk": "EVENT", "request_id": rid, "event_type": "opt_out",
             "source": "webform", "received_at": "2026-12-02T18:00:00.000Z",
             "deadline": "2026-12-23", "opt_out": {"sale": True, "share": True},
             "identifiers": [{"type": "email", "key": "e1", "value": "x"}],
             "evidence": {"jurisdiction": "US-CA"}}  # fmt: skip
    resolution = {"pk": pk, "sk": "RESOLUTION", "jobs_total": 2, "proof_rule": 2,
                  "resolved_at": "2026-12-02T18:00:01.000Z"}  # fmt: skip
    braze = {"pk": pk, "sk": "JOB#braze", "job_id": f"{rid}:braze", "request_id": rid,
             "system": "braze", "status": "done", "completed_at": "2026-12-02T18:00:02.000Z",
             "identifiers": [{"type": "email", "key": "e1"}],
             "receipt": {"identifier_types_sent": ["email"]}}  # fmt: skip
    salesforce = {"pk": pk, "sk": "JOB#salesforce", "job_id": f"{rid}:salesforce",
                  "request_id": rid, "system": "salesforce", "status": "failed",
                  "completed_at": "2026-12-02T18:59:00.000Z"}  # fmt: skip
    # When it is exported after its deadline
    now = datetime(2027, 1, 5, 12, tzinfo=UTC)
    request = request_records(rid, [event, resolution, braze, salesforce], {}, now)[0]
    # Then it reads answered when the figures count its response, and not late
    assert (request["status"], request["outcome"]) == ("failed", "complied_part")
    assert request["answered_at"] == "2026-12-02T18:59:00.000Z"
    assert request["late"] is False
    # ... and with no system done, it is not answered, and late past its deadline
    braze["status"] = "failed"
    request = request_records(rid, [event, resolution, braze, salesforce], {}, now)[0]
    assert (request["outcome"], request["answered_at"], request["late"]) == ("failed", None, True)


def test_an_export_names_the_systems_that_did_not_take_a_type_the_request_named() -> None:
    # Given a request whose Braze job took the customer id and refused the email (review s26
    # counsel F3)
    rid = "42ea7a15-2d4a-4b5c-9e8f-7a6b5c4d3e2f"
    pk = f"REQ#{rid}"
    named = [{"type": "email", "key": "e1"}, {"type": "customer_id", "key": "c1"}]
    event = {"pk": pk, "sk": "EVENT", "request_id": rid, "event_type": "opt_out",
             "source": "webform", "received_at": "2026-12-02T18:00:00.000Z",
             "deadline": "2026-12-23", "opt_out": {"sale": True, "share": True},
             "identifiers": named}  # fmt: skip
    resolution = {"pk": pk, "sk": "RESOLUTION", "jobs_total": 1, "proof_rule": 2,
                  "resolved_at": "2026-12-02T18:00:01.000Z"}  # fmt: skip
    braze = {"pk": pk, "sk": "JOB#braze", "job_id": f"{rid}:braze", "request_id": rid,
             "system": "braze", "status": "done", "completed_at": "2026-12-02T18:00:02.000Z",
             "identifiers": named,
             "receipt": {"identifier_types_sent": ["customer_id"],
                         "identifier_types_rejected": ["email"]}}  # fmt: skip
    # When it is exported
    now = datetime(2026, 12, 3, tzinfo=UTC)
    request = request_records(rid, [event, resolution, braze], {}, now)[0]
    # Then it is completed, complied with in part, and names Braze and the type (no value)
    assert (request["status"], request["outcome"]) == ("completed", "complied_part")
    assert request["not_taken"] == [{"system": "braze", "identifier_types": ["email"]}]
