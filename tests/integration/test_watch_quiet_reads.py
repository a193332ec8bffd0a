"""The deadline watch reads the quiet period's jobs only where a figure reads what they did not
take (review s28 R1): a §7102 repeat is counted on the repeat row alone, so the banner's page
views of a logged-in GPC visitor the vendors hold no record of cost no BatchGetItem."""

from datetime import UTC, datetime
from typing import Any

from optout.ops.export import request_records
from optout.ops.watch import Watch, WatchReport, WatchSettings
from optout.store.batch import batch_put
from optout.store.proof import load_with_proof
from optout.store.table import Table
from optout.timestamps import iso

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
RID = "7c2e1d4f-2d4a-4b5c-9e8f-7a6b5c4d3e2f"
EARLIER = "0a1b2c3d-2d4a-4b5c-9e8f-7a6b5c4d3e2f"
EMAIL = {"type": "email", "key": "g1"}
NOT_TAKEN = [{"system": "google_ads", "identifier_types": ["email"]}]


def _seed(table: Table, own_job: bool = False) -> None:
    """A request naming an email Google has no form of, not asked at google_ads (the quiet
    period: an earlier job sent it nothing); `own_job`: with a done braze job of its own."""
    entry = {"job_id": f"{EARLIER}:google_ads", "answered_at": "2026-12-03T11:00:00.000Z"}
    event = {"pk": f"REQ#{RID}", "sk": "EVENT", "kind": "event", "request_id": RID,
             "event_type": "opt_out", "source": "banner", "received_at": "2026-12-03T11:30:00.000Z",
             "deadline": "2027-01-20", "opt_out": {"sale": True, "share": True},
             "identifiers": [EMAIL | {"value": "+news@gmail.com"}],
             "evidence": {"jurisdiction": "US-CA"}}  # fmt: skip
    resolution = {"pk": f"REQ#{RID}", "sk": "RESOLUTION", "kind": "resolution",
                  "resolved_at": "2026-12-03T11:30:01.000Z", "proof_rule": 2,
                  "jobs_total": 1 if own_job else 0,
                  "not_asked": {"google_ads": [entry]}}  # fmt: skip
    quiet_job = {"pk": f"REQ#{EARLIER}", "sk": "JOB#google_ads", "kind": "job",
                 "job_id": f"{EARLIER}:google_ads", "request_id": EARLIER, "system": "google_ads",
                 "status": "no_record", "completed_at": "2026-12-03T11:00:00.000Z",
                 "identifiers": [EMAIL],
                 "receipt": {"identifier_types_sent": [], "identifier_types_rejected": ["email"],
                             "identifier_types_unformed": ["email"],
                             "note": "email not sent: no Google form"}}  # fmt: skip
    items: list[dict[str, Any]] = [event, resolution, quiet_job]
    if own_job:
        items.append({"pk": f"REQ#{RID}", "sk": "JOB#braze", "kind": "job",
                      "job_id": f"{RID}:braze", "request_id": RID, "system": "braze",
                      "status": "done", "completed_at": "2026-12-03T11:30:05.000Z",
                      "identifiers": [EMAIL], "receipt": {"http_status": 201}})  # fmt: skip
    batch_put(table, items)


def _check(table: Table) -> tuple[Any, list[str]]:
    """The watch's check of the request, and the DynamoDB calls it made."""
    calls: list[str] = []
    events = table.client.meta.events
    events.register("before-call.dynamodb", lambda event_name, **_: calls.append(
        event_name.split(".")[-1]), unique_id="count-watch-calls")  # fmt: skip
    try:
        watch = Watch(table, WatchSettings(lag_seconds=0, backfill_days=1), clock=lambda: NOW)
        found = watch.check(RID, NOW, WatchReport(run_at=iso(NOW)))
    finally:
        events.unregister("before-call.dynamodb", unique_id="count-watch-calls")
    return found, calls


def _exported(table: Table) -> dict[str, Any]:
    items, covering = load_with_proof(table, RID, quiet=True)  # as the export reads it
    return request_records(RID, items, covering, NOW)[0]


def test_a_repeat_with_only_quiet_answers_costs_the_watch_no_batch_read(table: Table) -> None:
    # Given a banner page view that asked nothing: its only system was not asked (quiet period)
    _seed(table)
    # When the watch checks it
    found, calls = _check(table)
    # Then it is counted on the repeat row alone, and its check reads no earlier job: the
    # request, then the fold's writes (before, a BatchGetItem of the quiet job it never used)
    assert found is not None and found.repeat
    assert found.counters() == {"n.banner.repeat": 1, "g.ca_sale.repeat": 1}
    assert "BatchGetItem" not in calls, calls
    # And the export still reads it as before: a repeat, google_ads listed as not taken
    record = _exported(table)
    assert (record["outcome"], record["not_taken"]) == ("repeat", NOT_TAKEN)


def test_a_request_with_a_job_of_its_own_still_reads_the_quiet_jobs(table: Table) -> None:
    # Given the same request, but with a job of its own elsewhere (braze, done): not a repeat
    _seed(table, own_job=True)
    # When the watch checks it
    found, calls = _check(table)
    # Then it reads the quiet period's job, whose email it never sent: complied with in part,
    # as its export says
    assert found is not None and not found.repeat
    assert "BatchGetItem" in calls, calls
    assert found.outcome == "complied_part"
    record = _exported(table)
    assert (record["outcome"], record["not_taken"]) == ("complied_part", NOT_TAKEN)
