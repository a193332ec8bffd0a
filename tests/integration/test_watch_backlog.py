"""The deadline watch at volume (review s19 SC1, SC3): an import lost on the stream is re-driven,
and an overdue backlog is checked hourly and counted whole, whatever one run reached."""

import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from optout.ops import watch as watch_module
from optout.ops.contribution import Contribution
from optout.ops.importer import ImportService
from optout.ops.reminders import remind_now
from optout.ops.watch import Watch, WatchSettings
from optout.settings import LOCAL_HASH_KEY
from optout.store.batch import batch_put, get_item
from optout.store.table import Table
from optout.sweep import Sweeper, SweepSettings
from tests.conftest import Aws
from tests.support.pipeline import Pipeline, build_pipeline
from tests.support.seed import seed_request

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
SETTINGS = WatchSettings(near_days=3, lag_seconds=120, backfill_days=30)
HOUR = watch_module.OVERDUE_CHECK_GAP


def watch(table: Table, at: datetime, backfill_days: int = 30) -> Watch:
    """A watch at `at`; its first run reads back `backfill_days` (16 Queries a day): a test's
    first run passes the fewest that still reach its oldest request's day (its cursor decides
    every later run)."""
    return Watch(table, SETTINGS.model_copy(update={"backfill_days": backfill_days}),
                 clock=lambda: at)  # fmt: skip


# A first run that still reads the day a lost import's row was received (10 days ago)
LOST_IMPORT_DAYS = 11


def lost_import(
    aws: Aws, monkeypatch: pytest.MonkeyPatch, external_id: str
) -> tuple[Pipeline, Table, datetime, str]:
    """A row received 10 days ago, imported now, whose stream record is never resolved (the
    pipeline drops it): the pipeline, the table, the import's time and the request id."""
    pipeline = build_pipeline(aws, monkeypatch)
    table = Table(aws.dynamodb, aws.table_name)
    now = datetime.now(UTC).replace(microsecond=0)
    row = {"line": 2, "external_id": external_id, "email": f"{external_id.lower()}@example.com",
           "received_at": (now - timedelta(days=10)).strftime("%Y-%m-%dT%H:%M:%SZ")}  # fmt: skip
    service = ImportService(table, LOCAL_HASH_KEY.encode(), 1095)
    request_id = service.import_rows([row], now, "arn:op").request_ids[0].request_id
    assert len(pipeline.event_records()) == 1  # dropped
    return pipeline, table, now, request_id


def test_an_import_whose_stream_record_was_lost_is_redriven_and_resolved(
    aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a row received 10 days ago, imported now, whose stream record never reached the
    # resolver (past 24 h, or its batch's retries spent): the sweep, which lists arrivals by
    # `received_at`, never sees it (the reviewer's scenario)
    pipeline, table, now, request_id = lost_import(aws, monkeypatch, "T-1001")
    for after in (timedelta(minutes=16), timedelta(hours=2, minutes=16)):
        assert (
            Sweeper(table, SweepSettings(), clock=lambda a=after: now + a).sweep().unresolved == []
        )
    # When the watch checks it soon, then just before its record could no longer arrive
    # (24 h record age + the margin), at its next reminder past that (a day on), then 3 h on
    after = watch_module.REDRIVE_UNRESOLVED_AFTER
    early = watch(table, now + timedelta(minutes=5), LOST_IMPORT_DAYS).run()
    before = watch(table, now + after - timedelta(minutes=5)).run()
    late = watch(table, now + after + timedelta(days=1)).run()
    again = watch(table, now + after + timedelta(days=1, hours=3)).run()
    # Then it is re-driven once, past that age, as the sweep re-drives an unresolved event, and
    # not again within REDRIVE_UNRESOLVED_EVERY (an outage is not a redrive per check)
    assert (early.unresolved, before.unresolved, late.unresolved, again.unresolved) == (
        [],
        [],
        [request_id],
        [],
    )
    (redrive,) = late.redrive_events
    event = next(i for i in pipeline.partition(f"REQ#{redrive}") if i["sk"] == "EVENT")
    assert (event["event_type"], event["operation"]["requests"]) == ("redrive", request_id)
    # and once the resolver carries the redrive out, the opt-out is resolved with its jobs
    pipeline.resolve()
    items = pipeline.partition(f"REQ#{request_id}")
    assert any(i["sk"] == "RESOLUTION" for i in items)
    assert [i["sk"] for i in items if i["sk"].startswith("JOB#")]
    # and the next check past the interval finds it resolved: no further redrive
    assert watch(table, now + after + timedelta(days=3)).run().unresolved == []


def test_an_import_queued_behind_a_backlog_is_resolved_once(
    aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given an imported row whose stream record is only queued behind a large import (review
    # s19 diff B3: re-driven at 1 h, both the redrive and the late record sent every job)
    pipeline = build_pipeline(aws, monkeypatch)
    table = Table(aws.dynamodb, aws.table_name)
    now = datetime.now(UTC).replace(microsecond=0)
    row = {"line": 2, "external_id": "T-2001", "email": "queued@example.com", "purposes": "sale",
           "received_at": (now - timedelta(days=10)).strftime("%Y-%m-%dT%H:%M:%SZ")}  # fmt: skip
    service = ImportService(table, LOCAL_HASH_KEY.encode(), 1095)
    request_id = service.import_rows([row], now, "arn:op").request_ids[0].request_id
    held = pipeline.event_records()
    # When the watch checks it at 1 h 05 and at 23 h 55 while the record waits
    waiting = [
        watch(table, now + timedelta(hours=h, minutes=m), LOST_IMPORT_DAYS).run()
        for h, m in ((1, 5), (23, 55))
    ]
    # Then it re-drives nothing
    assert [(r.unresolved, r.redrive_events) for r in waiting] == [([], []), ([], [])]
    # and when the record arrives, the request is resolved, each system's job sent once
    pipeline.resolve(held)
    sent = {system: len(found) for system, found in pipeline.drain_all().items() if found}
    assert sent and set(sent.values()) == {1}
    items = pipeline.partition(f"REQ#{request_id}")
    assert any(i["sk"] == "RESOLUTION" for i in items)
    # and the watch past the record's age finds it resolved: no redrive of the request (its
    # jobs, drained here unanswered a day ago, are named to send again: test_pending_resend.py)
    late = watch(table, now + watch_module.REDRIVE_UNRESOLVED_AFTER + timedelta(minutes=5)).run()
    assert late.unresolved == []
    assert late.resent == sorted(f"{request_id}:{system}" for system in job_systems(items))


def test_the_redrive_waits_for_the_resolvers_maximum_record_age() -> None:
    # The watch's STREAM_RECORD_MAX_AGE is the resolver mapping's MaximumRecordAgeInSeconds
    template = (Path(__file__).parents[2] / "template.yaml").read_text()
    (age,) = re.findall(r"MaximumRecordAgeInSeconds: (\d+)", template)
    assert timedelta(seconds=int(age)) == watch_module.STREAM_RECORD_MAX_AGE
    assert watch_module.REDRIVE_UNRESOLVED_AFTER > watch_module.STREAM_RECORD_MAX_AGE


def test_a_request_the_sweep_still_watches_is_left_to_the_sweep(table: Table) -> None:
    # Given a captured opt-out received 2 hours ago and never resolved: the sweep's 8 h and
    # 23 h checks are still ahead of it
    seed_request(table, 1, NOW - timedelta(hours=2), "received")
    # When the watch checks it
    report = watch(table, NOW, backfill_days=1).run()
    # Then the watch re-drives nothing: one redrive at a time, the sweep's
    assert (report.unresolved, report.redrive_events) == ([], [])


def overdue_backlog(table: Table, count: int) -> list[str]:
    """`count` requests failed at braze past their deadline (a vendor out for weeks)."""
    return [
        seed_request(table, n, NOW - timedelta(days=25, minutes=n), "partial",
                     deadline=date(2026, 11, 20)).request_id
        for n in range(1, count + 1)
    ]  # fmt: skip


BACKLOG_DAYS = 25  # a first run that reads back to the backlog's day (25 days ago)


def time_for(checks: int) -> Any:
    """A run's time left: plenty for `checks` checks' worth of calls, then 15 s (under the
    checks' 20 s stop, over the count's 10 s)."""
    calls = {"n": 0}

    def time_left() -> float:
        calls["n"] += 1
        return 100.0 if calls["n"] <= checks else 15.0

    return time_left


def test_a_run_after_a_run_with_nothing_changed_does_not_reread_the_overdue_backlog(
    table: Table, aws: Aws
) -> None:
    # Given 12 overdue requests, enrolled and checked by a first run
    late = overdue_backlog(table, 12)
    watch(table, NOW, BACKLOG_DAYS).run()
    # When the watch runs every 5 minutes for the next 55 minutes, nothing changed
    reads: list[str] = []

    def record(params: dict[str, Any], **_: Any) -> None:
        pk = params.get("ExpressionAttributeValues", {}).get(":pk", {}).get("S", "")
        if pk.startswith("REQ#") and "IndexName" not in params:
            reads.append(pk)

    aws.dynamodb.meta.events.register("before-parameter-build.dynamodb.Query", record)
    runs = [watch(table, NOW + timedelta(minutes=m)).run() for m in range(5, 60, 5)]
    # Then none of them reads a request, and each counts all 12 overdue, per system too
    assert [r.checked for r in runs] == [0] * 11 and reads == []
    assert {len(r.overdue) for r in runs} == {12}
    assert runs[-1].overdue_by_system() == {"braze": 12}
    # and the run an hour after their check reads each once more
    assert watch(table, NOW + HOUR).run().checked == len(late)


def test_the_overdue_figure_with_a_backlog_bigger_than_a_run_is_the_whole_backlog(
    table: Table,
) -> None:
    # Given 30 overdue requests checked once, an hour ago
    overdue_backlog(table, 30)
    watch(table, NOW, BACKLOG_DAYS).run()
    # When a run, due to check all 30, has time for only 10 (about 3 calls to time_left each)
    report = watch(table, NOW + HOUR).run(time_for(10))
    # Then it stops early, but its figure and WATCH/STATUS still count all 30 (the others
    # as their last check found them), and are not marked partial
    assert (report.finished, report.checked < 30) == (False, True)
    assert (len(report.overdue), report.figures_partial) == (30, False)
    status = get_item(table, ("WATCH", "STATUS"))
    assert status is not None
    assert (status["overdue"], status["figures_partial"], status["not_yet_checked"]) == (
        30,
        False,
        0,
    )


def test_due_reminders_no_run_has_checked_mark_the_figures_partial(table: Table) -> None:
    # Given 20 rows imported (each reminded now, never checked), all past their deadline
    service = ImportService(table, LOCAL_HASH_KEY.encode(), 1095)
    rows = [{"line": n + 2, "external_id": f"B-{n}", "email": f"backlog-{n}@example.com",
             "received_at": "2026-03-02T10:00:00Z"} for n in range(20)]  # fmt: skip
    assert service.import_rows(rows, NOW, "arn:op").stored == 20
    # When the first run after the import has time for only some of them
    # (their reminders bring them in: received in March, past any backfill)
    report = watch(table, NOW + timedelta(minutes=5), backfill_days=1).run(time_for(10))
    # Then the figures say they are partial, and how many requests they leave out
    assert report.finished is False and 0 < report.checked < 20
    assert report.figures_partial is True
    assert report.not_yet_checked == 20 - report.checked
    # (owed here, not overdue, while their systems here first carry them out: counsel F8)
    assert (len(report.imported_owed), len(report.overdue)) == (report.checked, 0)
    # and a run with time enough counts them all, whole
    whole = watch(table, NOW + timedelta(minutes=10)).run()
    counted = (len(whole.imported_owed), whole.figures_partial, whole.not_yet_checked)
    assert counted == (20, False, 0)


def test_a_replays_reminder_does_not_bring_a_redrive_sooner(
    aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given an import whose stream record was lost, re-driven by the watch, still unresolved
    # (the resolver is out)
    _, table, now, request_id = lost_import(aws, monkeypatch, "T-3001")
    watch(table, now + timedelta(minutes=5), LOST_IMPORT_DAYS).run()
    redriven_at = now + watch_module.REDRIVE_UNRESOLVED_AFTER + timedelta(days=1)
    assert watch(table, redriven_at).run().unresolved == [request_id]
    # When a replay (or a denial) leaves its reminder, due now, 10 minutes later (review s19
    # diff B7: it carries no `redriven_at`, and sorts before the watch's own reminder)
    later = redriven_at + timedelta(minutes=10)
    batch_put(table, [remind_now(request_id, None, later, int(later.timestamp()) + 86_400)])
    report = watch(table, later).run()
    # Then the watch checks the request but does not re-drive it again within 6 hours
    assert request_id in report.seen
    assert (report.unresolved, report.redrive_events) == ([], [])
    # and does once they have passed
    paced = redriven_at + watch_module.REDRIVE_UNRESOLVED_EVERY + timedelta(minutes=1)
    batch_put(table, [remind_now(request_id, None, paced, int(paced.timestamp()) + 86_400)])
    assert watch(table, paced).run().unresolved == [request_id]


def test_a_request_reminded_twice_is_counted_once(table: Table) -> None:
    # Given an overdue request the watch has checked, and a replay's reminder left beside the
    # watch's own 10 minutes later: its check writes a second reminder with a snapshot
    # (review s19 diff C1; the figures counted such a request twice)
    late = seed_request(table, 1, datetime(2026, 11, 4, 10, tzinfo=UTC), "processing")
    assert len(watch(table, NOW, backfill_days=25).run().overdue) == 1  # to 4 Nov
    replay_at = NOW + timedelta(minutes=10)
    expires = int(replay_at.timestamp()) + 86_400
    batch_put(table, [remind_now(late.request_id, None, replay_at, expires)])
    watch(table, replay_at).run()

    # When later runs check neither reminder, and later still when each chain comes back
    counts = [watch(table, replay_at + timedelta(minutes=m)).run().overdue for m in (5, 20, 185)]

    # Then it is one overdue request in each, its id listed once
    assert [len(c) for c in counts] == [1, 1, 1]
    assert all(c.request_ids == [late.request_id] for c in counts)


def test_a_count_that_fails_does_not_lose_the_runs_redrives(
    aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given an import lost on the stream, past the age its record could arrive at
    pipeline, table, now, request_id = lost_import(aws, monkeypatch, "T-4001")
    watch(table, now + timedelta(minutes=5), LOST_IMPORT_DAYS).run()

    # When the run that re-drives it fails in its count (review s19 diff B4: out of memory)
    def failing_count(*_: Any) -> None:
        raise MemoryError

    monkeypatch.setattr(Watch, "_count", failing_count)
    with pytest.raises(MemoryError):
        watch(table, now + watch_module.REDRIVE_UNRESOLVED_AFTER + timedelta(days=1)).run()
    # Then its redrive event was written before: the resolver carries it out
    redrives = [r for r in pipeline.event_records()
                if r["dynamodb"]["NewImage"]["event_type"]["S"] == "redrive"]  # fmt: skip
    assert len(redrives) == 1
    pipeline.resolve(redrives)
    assert any(i["sk"] == "RESOLUTION" for i in pipeline.partition(f"REQ#{request_id}"))


def test_the_figures_are_totals_with_the_first_request_ids_only() -> None:
    # Given more overdue requests than the status item lists (review s19 diff B4: the count
    # kept an object per reminder read)
    figures = watch_module.Figures()
    ids = [f"{n:08d}-0000-4000-8000-000000000000" for n in range(250, 0, -1)]
    for n, request_id in enumerate(ids):
        figures.append(Contribution(
            request_id=request_id, received_at="2026-10-01", deadline="2026-11-15", source="",
            outcome="open", status="failed" if n % 2 else "processing", hours=None,
            systems={"braze": "failed", "meta": "done"}, received_on="2026-10-01",
            imported_late=None, calendar=None,
        ))  # fmt: skip
    # Then it keeps counts, and only the first 100 ids in order
    assert (len(figures), figures.by_state, figures.by_system) == (
        250,
        {"processing": 125, "failed": 125},
        {"braze": 250},
    )
    assert figures.by_year == {"2026": {"overdue": 250, "by_system": {"braze": 250}}}
    assert figures.request_ids == sorted(ids)[: watch_module.KEEP_OVERDUE_IDS]


def job_systems(items: list[dict[str, Any]]) -> list[str]:
    return [str(i["system"]) for i in items if str(i["sk"]).startswith("JOB#")]
