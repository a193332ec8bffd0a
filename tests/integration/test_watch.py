"""The deadline watch finds exactly the requests past or near their deadline that are not
complete, and a later run reads only what is due, never the history again."""

import hashlib
import hmac
from datetime import UTC, date, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from optout import secrets as secret_store
from optout.ops import backfills
from optout.ops import watch as watch_module
from optout.ops.export import request_records
from optout.ops.importer import ImportService
from optout.ops.key_check import LABEL, fingerprint
from optout.ops.metrics import MetricsService
from optout.ops.watch import Watch, WatchSettings
from optout.settings import LOCAL_HASH_KEY
from optout.store.batch import batch_put
from optout.store.codec import deserialize
from optout.store.proof import load_with_proof
from optout.store.requests import load_request
from optout.store.table import Table
from optout.timestamps import iso
from tests.conftest import Aws
from tests.support.lambdas import FakeLambdaContext, load_function
from tests.support.production_secrets import HASH_KEY, production_secrets
from tests.support.seed import Seeded, seed_request

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
SETTINGS = WatchSettings(near_days=3, lag_seconds=120, backfill_days=60)


def watch(table: Table, at: datetime = NOW, backfill_days: int = 60) -> Watch:
    """A watch at `at` whose first run reads back `backfill_days` (16 Queries a day, the bulk
    of a first run's cost): a test passes the fewest days that still reach its oldest request
    (the cursor it saves decides every later run)."""
    return Watch(table, settings(backfill_days), clock=lambda: at)


def settings(backfill_days: int) -> WatchSettings:
    return SETTINGS.model_copy(update={"backfill_days": backfill_days})


def at(day: str, hour: int = 10) -> datetime:
    return datetime.fromisoformat(f"{day}T{hour:02d}:00:00+00:00")


def seeded_set(table: Table) -> dict[str, Seeded]:
    """Every kind of request, old and new, complete and not."""
    return {
        "old processing": seed_request(table, 1, at("2026-10-01"), "processing"),
        "old completed": seed_request(table, 2, at("2026-10-01"), "completed"),
        "old never resolved": seed_request(table, 3, at("2026-10-02"), "received"),
        "old denied": seed_request(table, 4, at("2026-10-03"), "denied"),
        "failed past deadline": seed_request(table, 5, at("2026-11-05"), "failed",
                                             deadline=date(2026, 11, 28)),
        "partial past deadline": seed_request(table, 6, at("2026-11-04"), "partial",
                                              deadline=date(2026, 11, 26)),
        "due in two days": seed_request(table, 7, at("2026-11-06"), "processing",
                                        deadline=date(2026, 12, 1)),
        "due today": seed_request(table, 8, at("2026-11-07"), "processing",
                                  deadline=date(2026, 11, 29)),
        "not yet near": seed_request(table, 9, at("2026-11-20"), "processing",
                                     deadline=date(2026, 12, 31)),
        "completed late": seed_request(table, 10, at("2026-10-05"), "completed",
                                       after=timedelta(days=40)),
        "too old to backfill": seed_request(table, 11, at("2026-08-01"), "processing"),
        "just arrived": seed_request(table, 12, NOW - timedelta(seconds=30), "received"),
        "links only": seed_request(table, 13, at("2026-10-01"), "processing",
                                   event_type="links"),
    }  # fmt: skip


def test_the_sweep_finds_exactly_the_overdue_and_due_soon_requests(table: Table) -> None:
    # Given requests in every state, some past their deadline
    seeded = seeded_set(table)
    # When the watch runs
    report = watch(table).run()
    # Then exactly the incomplete ones past their deadline are overdue, and those within
    # three days of it due soon
    names = {s.request_id: name for name, s in seeded.items()}
    assert sorted(names[r] for r in report.overdue.request_ids) == [
        "failed past deadline", "old never resolved", "old processing", "partial past deadline",
    ]  # fmt: skip
    assert sorted(names[r] for r in report.due_soon.request_ids) == ["due in two days", "due today"]
    assert report.by_state(report.overdue) == {"failed": 2, "processing": 1, "received": 1}
    # (the never-resolved one has no job yet; the partial one only failed at braze)
    assert report.overdue_by_system() == {"braze": 3, "salesforce": 2}


def test_a_guam_request_is_overdue_once_its_deadline_day_has_ended_in_guam(table: Table) -> None:
    # review s18 diff C6: Guam (UTC+10) is ahead of UTC; its deadline day of 29 November ends
    # at 14:00 UTC, ten hours before the UTC date moves on
    stated = {"jurisdiction_from": "request"}
    guam = seed_request(table, 1, at("2026-11-08"), "processing", deadline=date(2026, 11, 29),
                        evidence=stated | {"jurisdiction": "US-GU"})  # fmt: skip
    california = seed_request(table, 2, at("2026-11-08"), "processing", deadline=date(2026, 11, 29),
                              evidence=stated | {"jurisdiction": "US-CA"})  # fmt: skip
    report = watch(table, datetime(2026, 11, 29, 15, 0, tzinfo=UTC), backfill_days=21).run()
    assert report.overdue.request_ids == [guam.request_id]
    assert report.due_soon.request_ids == [california.request_id]


def test_a_completed_request_leaves_the_watch_for_good(table: Table) -> None:
    # Given an overdue request
    late = seed_request(table, 1, at("2026-11-01"), "processing")
    assert watch(table, backfill_days=28).run().overdue.request_ids == [late.request_id]
    # When its jobs complete
    seed_request(table, 1, at("2026-11-01"), "completed")
    # Then its next check (hourly, past its deadline) no longer counts it, and nothing is
    # left to remind
    later = watch(table, NOW + watch_module.OVERDUE_CHECK_GAP).run()
    assert len(later.overdue) == 0
    assert reminders(table) == []


def test_a_check_reads_the_request_strongly_consistent(table: Table) -> None:
    # review s22 race R6: a replay's reminder read before the replay's reset showed (the job
    # still failed, DynamoDB's default read) was dropped as settled, and the replayed job's
    # end never reached the §7102 figures. moto always reads its latest write, so the flag on
    # every read of a request (and of the jobs it cites) is what can be checked here.
    late = seed_request(table, 1, at("2026-11-01"), "processing")
    reads: list[tuple[str, Any]] = []

    def note(params: dict[str, Any], model: Any, **_: Any) -> None:
        if model.name == "Query" and "IndexName" not in params:
            reads.append((model.name, params.get("ConsistentRead")))
        if model.name == "BatchGetItem":
            reads.extend(
                (model.name, t.get("ConsistentRead")) for t in params["RequestItems"].values()
            )

    table.client.meta.events.register("before-parameter-build.dynamodb", note)
    assert watch(table, backfill_days=28).run().overdue.request_ids == [late.request_id]
    assert ("Query", True) in reads
    assert all(consistent for _, consistent in reads)


def test_a_later_run_reads_only_the_requests_that_are_due(
    table: Table, aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given 20 settled requests, two overdue ones and one due soon, enrolled by a first run
    for n in range(20):
        seed_request(table, 100 + n, at("2026-11-02") + timedelta(minutes=n), "completed")
    late = [seed_request(table, n, at("2026-11-01"), "processing") for n in (1, 2)]
    soon = seed_request(table, 3, at("2026-11-06"), "processing", deadline=date(2026, 12, 1))
    watch(table, backfill_days=28).run()
    # When the watch runs again with nothing new, 5 minutes on
    reads = request_reads(aws)
    second = watch(table, NOW + timedelta(minutes=5)).run()
    # Then it read only the one due soon (its first interval, 5 minutes), not the overdue ones
    # (hourly, review s19 SC3), and still counts both overdue from their reminders
    assert reads == [f"REQ#{soon.request_id}"]
    assert second.overdue.request_ids == sorted(s.request_id for s in late)
    assert (second.checked, second.figures_partial) == (1, False)
    # and an hour after their last check, it reads them again, and no settled one
    reads.clear()
    watch(table, NOW + watch_module.OVERDUE_CHECK_GAP).run()
    assert sorted(reads) == sorted(f"REQ#{s.request_id}" for s in [*late, soon])


def test_a_request_near_its_deadline_is_checked_hourly(table: Table) -> None:
    # Given a request failed at a vendor, two days before its deadline (review s19 diff B5: it
    # was re-read at every 5-minute run for its last 3 days)
    seed_request(table, 1, at("2026-11-17"), "partial", deadline=date(2026, 12, 1))
    # When the watch checks it as each reminder comes due
    checks, when = [], NOW
    for _ in range(5):
        report = watch(table, when, backfill_days=12).run()
        (reminder,) = reminders(table)
        checks.append((report.checked, due_at(reminder) - when))
        when = due_at(reminder)
    # Then the intervals grow from 5 minutes as for any request, but not past an hour, and it
    # stays due soon in the figures between checks
    minute = timedelta(minutes=1)
    assert checks == [(1, 5 * minute), (1, 15 * minute), (1, 45 * minute), (1, 60 * minute),
                      (1, 60 * minute)]  # fmt: skip
    between = watch(table, when - 30 * minute).run()
    assert (between.checked, len(between.due_soon)) == (0, 1)


def test_a_young_request_is_checked_again_with_a_growing_interval(table: Table) -> None:
    # Given a request received an hour ago, still in flight
    seed_request(table, 1, NOW - timedelta(hours=1), "processing")
    watch(table, backfill_days=1).run()
    first = reminders(table)
    # When the reminder comes due and the request is still in flight
    watch(table, NOW + timedelta(minutes=6)).run()
    second = reminders(table)
    # Then the next check is further away than the first was
    assert [r["attempt"] for r in first + second] == [0, 1]
    assert due_at(second[0]) - (NOW + timedelta(minutes=6)) == timedelta(minutes=15)
    assert due_at(first[0]) - NOW == timedelta(minutes=5)


def test_a_request_checked_on_every_run_for_days_still_gets_a_next_check(table: Table) -> None:
    # Given an overdue request the watch has already checked a thousand times
    late = seed_request(table, 1, at("2026-11-01"), "processing")
    watch(table, backfill_days=28).run()
    (reminder,) = reminders(table)
    batch_put(table, [reminder | {"attempt": 1000}])
    # When the watch runs again at the reminder's time
    report = watch(table, NOW + watch_module.OVERDUE_CHECK_GAP).run()
    # Then it still counts the request overdue and checks it again an hour on
    assert report.overdue.request_ids == [late.request_id]
    assert [r["attempt"] for r in reminders(table)] == [1001]
    assert due_at(reminders(table)[0]) == NOW + 2 * watch_module.OVERDUE_CHECK_GAP


def test_the_scheduled_function_publishes_overdue_figures_and_a_status(
    table: Table, aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given an overdue request older than the default backfill would reach
    seed_request(table, 1, datetime.now(UTC) - timedelta(days=30), "processing")
    monkeypatch.setenv("WATCH_BACKFILL_DAYS", "40")
    monkeypatch.setenv("SYSTEMS_CONFIG", "layers/common/config/systems.json")  # as on Lambda
    app = load_function("watch")
    # When EventBridge invokes the function
    summary = app.handler({"detail-type": "Scheduled Event"}, MinutesLeft())
    # Then it reports the request overdue, and keeps the figures for operators
    assert (summary["overdue"], summary["overdue_by_state"]) == (1, {"processing": 1})
    status = [i for i in aws.items() if i["pk"] == "WATCH" and i["sk"] == "STATUS"]
    assert status and status[0]["overdue"] == 1


def test_failing_key_and_systems_checks_stop_neither_the_deadline_work_nor_its_status(
    table: Table, aws: Aws, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # Given an overdue request, a production watch whose HMAC-key secret cannot be read (gone:
    # AccessDenied or KMS alike) and whose systems check raises (review s18 diff B3)
    seed_request(table, 1, datetime.now(UTC) - timedelta(days=30), "processing")
    monkeypatch.setenv("WATCH_BACKFILL_DAYS", "40")
    production_secrets(monkeypatch)
    monkeypatch.setenv("SYSTEMS_CONFIG", "layers/common/config/systems.json")
    sm = boto3.client("secretsmanager", region_name="us-east-1")
    sm.delete_secret(SecretId=HASH_KEY, ForceDeleteWithoutRecovery=True)
    monkeypatch.setattr(secret_store, "_cached", {})

    def refused(*_: Any) -> list[str]:
        error = {"Code": "AccessDeniedException", "Message": "injected"}
        raise ClientError({"Error": error}, "Query")  # type: ignore[arg-type]

    monkeypatch.setattr(watch_module, "not_backfilled", refused)
    app = load_function("watch")
    # When EventBridge invokes the function
    summary = app.handler({"detail-type": "Scheduled Event"}, MinutesLeft())
    # Then the run still reports the request overdue and writes its status, naming the two
    # checks that failed (WatchChecksFailed), with nothing judged about the key
    assert (summary["overdue"], summary["finished"]) == (1, True)
    assert summary["checks_failed"] == ["key_check", "systems_check"]
    assert (summary["hash_key_changed"], summary["systems_not_backfilled"]) == (False, [])
    (status,) = [i for i in aws.items() if i["pk"] == "WATCH" and i["sk"] == "STATUS"]
    assert status["overdue"] == 1 and status["checks_failed"] == ["key_check", "systems_check"]
    assert not [i for i in aws.items() if i["pk"] == "WATCH" and i["sk"] == "KEY_CHECK"]
    # ... and logs each at ERROR by name, with no key material
    errors = [r for r in caplog.records if r.levelname == "ERROR"]
    assert [r.__dict__.get("check") for r in errors] == ["key_check", "systems_check"]
    assert "s" * 64 not in caplog.text + repr([r.__dict__ for r in caplog.records])


# -- helpers ----------------------------------------------------------------------------------


class MinutesLeft(FakeLambdaContext):
    def get_remaining_time_in_millis(self) -> int:
        return 120_000


def reminders(table: Table) -> list[dict[str, Any]]:
    answer = table.client.query(
        TableName=table.name,
        KeyConditionExpression="pk = :pk AND begins_with(sk, :due)",
        ExpressionAttributeValues={":pk": {"S": "WATCH"}, ":due": {"S": "DUE#"}},
    )
    return [deserialize(raw) for raw in answer["Items"]]


def due_at(reminder: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(reminder["sk"].split("#")[1].replace("Z", "+00:00"))


def request_reads(aws: Aws) -> list[str]:
    """Partition keys of the request partitions queried from now on."""
    found: list[str] = []
    assert boto3.DEFAULT_SESSION is not None

    def record(params: dict[str, Any], **_: Any) -> None:
        values = params.get("ExpressionAttributeValues", {})
        pk = values.get(":pk", {}).get("S", "")
        if pk.startswith("REQ#") and "IndexName" not in params:
            found.append(pk)

    aws.dynamodb.meta.events.register("before-parameter-build.dynamodb.Query", record)
    return found


__all__ = ["batch_put"]


def test_a_request_to_limit_sensitive_data_past_its_deadline_is_overdue(table: Table) -> None:
    # Given a request to limit the use of sensitive data only (§7027(g)(1): 15 business days),
    # failed at a system past its deadline, and one still due in two days (review s13 law 2)
    limit = {"limit_sensitive": True}
    late = seed_request(table, 1, at("2026-11-05"), "failed", deadline=date(2026, 11, 28),
                        opt_out=limit)  # fmt: skip
    soon = seed_request(table, 2, at("2026-11-06"), "processing", deadline=date(2026, 12, 1),
                        opt_out=limit)  # fmt: skip
    # When the watch runs
    report = watch(table, backfill_days=24).run()
    # Then the first is overdue (the alarm's figure) and the second due soon, both reminded
    assert report.overdue.request_ids == [late.request_id]
    assert report.due_soon.request_ids == [soon.request_id]
    assert {r["request_id"] for r in reminders(table)} == {late.request_id, soon.request_id}


def test_an_import_the_other_tool_answered_on_time_is_owed_here_not_overdue(table: Table) -> None:
    # Given three imports from March (deadline 2026-03-23), each then failed here at braze
    # (done at salesforce), as the drill left them (review s16 drill F4): one the other tool
    # answered on time, one it answered after the deadline, one with no answer given
    imported = import_rows(table, [
        {"external_id": "on-time", "completed_at": "2026-03-09T10:00:00Z"},
        {"external_id": "late", "completed_at": "2026-03-30T10:00:00Z"},
        {"external_id": "unanswered"},
    ])  # fmt: skip
    for request_id in imported.values():
        carry_out(table, request_id)
    # When the watch runs (the import's reminders bring them in: no backfill reaches March)
    # and the figures are read
    report = watch(table, backfill_days=1).run()
    year = MetricsService(table).year(2026, "as of the test")
    # Then the one answered on time is neither overdue nor due soon, as its export says it
    # was not late; it is still owed at braze, and reminded for that
    overdue = set(report.overdue.request_ids)
    assert overdue == {imported["late"], imported["unanswered"]}
    assert len(report.due_soon) == 0
    assert report.imported_owed.request_ids == [imported["on-time"]]
    assert [exported_late(table, imported[n]) for n in ("on-time", "late", "unanswered")] == [
        False, True, True,
    ]  # fmt: skip
    assert imported["on-time"] in {r["request_id"] for r in reminders(table)}
    # and the status, the report's per-system table and the §7102 outcome agree
    assert year["watch"]["overdue"] == 2
    assert year["watch"]["overdue_requests"] == sorted(overdue)
    assert (year["watch"]["imported_owed"], year["watch"]["imported_owed_by_system"]) == (
        1, {"braze": 1},
    )  # fmt: skip
    assert year["systems"]["braze"]["overdue"] == 2
    assert year["systems"]["salesforce"]["overdue"] == 0
    assert year["requests"]["complied_part"] == 3  # §7102: each is held at salesforce


def test_an_import_answered_on_time_leaves_the_watch_once_its_systems_here_confirm(
    table: Table,
) -> None:
    # Given an import the other tool answered on time, still owed at braze
    imported = import_rows(table, [{"external_id": "on-time", "completed_at": "2026-03-09"}])
    carry_out(table, imported["on-time"])
    assert len(watch(table, backfill_days=1).run().imported_owed) == 1  # its reminder
    # When braze confirms it (a replay), and its next check comes (hourly: past its deadline)
    carry_out(table, imported["on-time"], braze="done")
    later = watch(table, NOW + watch_module.OVERDUE_CHECK_GAP).run()
    # Then nothing is owed any more and its reminder is gone
    assert (len(later.overdue), len(later.imported_owed), reminders(table)) == (0, 0, [])


def test_an_import_done_here_is_never_counted_overdue_while_its_next_check_is_an_hour_off(
    table: Table,
) -> None:
    # Given two March imports (past their deadline from the start): one the other tool
    # answered late, one with no answer given (review s26 counsel F8)
    imported = import_rows(table, [
        {"external_id": "late", "completed_at": "2026-03-30T10:00:00Z"},
        {"external_id": "unanswered"},
    ])  # fmt: skip
    # When the watch checks them before the resolver and the systems here have answered
    first = watch(table, backfill_days=1).run()
    # Then neither is overdue while its systems here first carry it out: owed here
    assert len(first.overdue) == 0
    assert first.imported_owed.request_ids == sorted(imported.values())
    # When every system here confirms them, and the watch runs (every 5 minutes) before their
    # next check, which is hourly past a deadline
    for request_id in imported.values():
        carry_out(table, request_id, braze="done")
    for minutes in (5, 30, 55):
        later = watch(table, NOW + timedelta(minutes=minutes)).run()
        # Then no run counts a done import overdue (each read it overdue for that hour, so
        # OverdueRequestsAlarm fired for a bulk import every system had done)
        assert (len(later.overdue), len(later.due_soon)) == (0, 0), minutes
    # And their next check drops them
    watch(table, NOW + watch_module.OVERDUE_CHECK_GAP).run()
    assert reminders(table) == []


def test_an_import_not_carried_out_here_in_its_first_run_is_overdue(table: Table) -> None:
    # Given a March import with no answer given, and one a system here refused for good
    imported = import_rows(table, [{"external_id": "stuck"}, {"external_id": "refused"}])
    carry_out(table, imported["refused"])  # braze failed
    # When the watch checks them
    first = watch(table, backfill_days=1).run()
    # Then the refused one is overdue at once (the operator's to replay), the other owed
    assert (first.overdue.request_ids, first.imported_owed.request_ids) == (
        [imported["refused"]], [imported["stuck"]],
    )  # fmt: skip
    # And once its first run is over (never resolved: the watch re-drives it as lost), the
    # one still not carried out is overdue too
    late = watch(table, NOW + watch_module.IMPORT_FIRST_RUN + timedelta(hours=1)).run()
    assert set(late.overdue.request_ids) == set(imported.values())
    assert len(late.imported_owed) == 0


def test_a_stuck_import_is_overdue_25_hours_after_its_import_whenever_it_was_last_read(
    table: Table,
) -> None:
    # Given a March import resolved here whose braze job's message was lost (pending for
    # good), last checked 24h30 after its import: still in its first run, owed here
    imported = import_rows(table, [{"external_id": "stuck"}])
    carry_out(table, imported["stuck"], braze="pending")
    first = watch(table, NOW + timedelta(hours=24, minutes=30), backfill_days=1).run()
    assert first.imported_owed.request_ids == [imported["stuck"]]
    # When a run 25h10 after the import counts it from that snapshot (its next check is due
    # at 25h30)
    later = watch(table, NOW + timedelta(hours=25, minutes=10)).run()
    # Then it is overdue, as docs/reliability.md says: 25 hours after its import at the
    # latest (review s28 R2: the snapshot read at 24h30 kept it owed until its next check)
    assert (later.overdue.request_ids, len(later.imported_owed)) == ([imported["stuck"]], 0)


def test_a_stuck_import_the_watch_has_fallen_behind_on_is_overdue_after_25_hours(
    table: Table, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a stuck import last checked 24h30 after its import (owed)
    imported = import_rows(table, [{"external_id": "stuck"}])
    carry_out(table, imported["stuck"], braze="pending")
    watch(table, NOW + timedelta(hours=24, minutes=30), backfill_days=1).run()
    # When the watch falls behind (its runs stop for time before the due reminders: a large
    # import) and a run 30 hours after the import counts from the snapshots alone
    monkeypatch.setattr(watch_module.Watch, "_check_due", lambda *_: False)
    lagging = watch(table, NOW + timedelta(hours=30)).run()
    # Then it is overdue, not owed for as long as the watch lags (review s28 R2)
    assert (lagging.overdue.request_ids, len(lagging.imported_owed)) == ([imported["stuck"]], 0)


def test_a_failed_import_replayed_within_its_first_run_stays_overdue(table: Table) -> None:
    # Given a March import a system here refused for good: overdue at once
    imported = import_rows(table, [{"external_id": "refused"}])
    request_id = imported["refused"]
    carry_out(table, request_id)  # braze failed
    first = watch(table, NOW + timedelta(minutes=5), backfill_days=1).run()
    assert first.overdue.request_ids == [request_id]
    # When an operator replays braze (as `reset_for_replay` leaves it: pending again, the
    # failure kept) and the next check reads it, within 25 hours of the import
    job = next(i for i in load_request(table, request_id) if i["sk"] == "JOB#braze")
    replayed_at = iso(NOW + timedelta(minutes=30))
    failure = {"receipt": job["receipt"], "failed_at": job["completed_at"], "attempts": 0,
               "replayed_at": replayed_at}  # fmt: skip
    reset = {k: v for k, v in job.items() if k != "completed_at"}
    batch_put(table, [reset | {"status": "pending", "replayed_at": replayed_at, "replays": 1,
                               "failures": [failure], "updated_at": replayed_at}])  # fmt: skip
    later = watch(table, NOW + watch_module.OVERDUE_CHECK_GAP + timedelta(minutes=5)).run()
    # Then it is still overdue: past its deadline and failed here once, it does not go back
    # to owed while the replay runs (review s28 R3)
    assert (later.overdue.request_ids, len(later.imported_owed)) == ([request_id], 0)
    # And a run that counts it from that check's snapshot says the same
    counted = watch(table, NOW + watch_module.OVERDUE_CHECK_GAP + timedelta(minutes=10)).run()
    assert (counted.overdue.request_ids, len(counted.imported_owed)) == ([request_id], 0)


def test_an_import_of_an_old_row_keeps_its_records_the_whole_retention_from_its_import(
    table: Table,
) -> None:
    # Given a retention of 731 days and two rows received 700 days ago, imported now, one the
    # other tool answered then: review s18 S1, their records, REQREF and FOLDED expired 731
    # days from the old receipt (31 days from now), days after they were answered here
    service = ImportService(table, LOCAL_HASH_KEY.encode(), 731)
    received, answered = iso(NOW - timedelta(days=700)), iso(NOW - timedelta(days=650))
    rows = [{"line": 2, "external_id": "old-open", "received_at": received,
             "email": "old-open@example.com"},
            {"line": 3, "external_id": "old-answered", "received_at": received,
             "email": "old-answered@example.com", "completed_at": answered}]  # fmt: skip
    assert service.import_rows(rows, NOW, "arn:aws:iam::123456789012:user/op").stored == 2
    for request_id in imported_ids(table):
        carry_out(table, request_id)
    # When the watch folds them (its REQREF, FOLDED and reminder take the record's expiry;
    # their reminders bring them in, received too long ago for any backfill)
    watch(table, backfill_days=1).run()
    # Then each item written for them expires 731 days from the import, not from the receipt
    written = [item for item in scan(table) if item.get("kind") in KINDS_FOR_AN_IMPORT]
    assert sorted({str(item["kind"]) for item in written}) == sorted(KINDS_FOR_AN_IMPORT)
    from_import = int((NOW + timedelta(days=731)).timestamp())
    assert {str(i["kind"]): int(i["expires_at"]) for i in written} == dict.fromkeys(
        KINDS_FOR_AN_IMPORT, from_import
    )


KINDS_FOR_AN_IMPORT = ("event", "reqref", "folded", "reminder")


def scan(table: Table) -> list[dict[str, Any]]:
    return [deserialize(raw) for raw in table.client.scan(TableName=table.name)["Items"]]


def import_rows(table: Table, rows: list[dict[str, Any]]) -> dict[str, str]:
    """Import March opt-outs as `optout import` does; external id -> request id."""
    service = ImportService(table, LOCAL_HASH_KEY.encode(), 1095)
    base = {"received_at": "2026-03-02T10:00:00Z", "jurisdiction": "US-CA"}
    full = [base | {"email": f"import-{n}@example.com", "line": n + 2} | row
            for n, row in enumerate(rows)]  # fmt: skip
    assert service.import_rows(full, NOW, "arn:aws:iam::123456789012:user/op").stored == len(rows)
    return {
        str(e["evidence"]["imported"]["external_id"]): str(e["request_id"])
        for e in (load_request(table, rid)[0] for rid in imported_ids(table))
    }


def imported_ids(table: Table) -> list[str]:
    return [str(r["request_id"]) for r in reminders(table)]


def carry_out(table: Table, request_id: str, braze: str = "failed") -> None:
    """What the resolver and the workers leave: a job per system, braze's `braze`."""
    event = next(i for i in load_request(table, request_id) if i["sk"] == "EVENT")
    pk, done_at = f"REQ#{request_id}", "2026-11-20T10:00:00Z"
    items: list[dict[str, Any]] = [
        {
            "pk": pk,
            "sk": "RESOLUTION",
            "kind": "resolution",
            "resolved_at": "2026-11-20T09:00:00Z",
            "jobs_total": 2,
        }
    ]
    for system, state in (("braze", braze), ("salesforce", "done")):
        items.append({
            "pk": pk, "sk": f"JOB#{system}", "kind": "job", "job_id": f"{request_id}:{system}",
            "request_id": request_id, "system": system, "status": state,
            "purposes": ["sale", "share"], "completed_at": done_at,
            "identifiers": [{"type": i["type"], "key": i["key"]} for i in event["identifiers"]],
            "receipt": {"completed_at": done_at, "http_status": 200 if state == "done" else 400},
        })  # fmt: skip
    batch_put(table, items)


def exported_late(table: Table, request_id: str) -> bool:
    items, covering = load_with_proof(table, request_id)
    return bool(request_records(request_id, items, covering, NOW)[0]["late"])


# -- operator changes no request shows (review s18 operator H2, M3) ---------------------------


def test_a_changed_hmac_key_is_reported_by_every_later_run_without_the_key(
    table: Table, aws: Aws, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # Given a production watch whose first run recorded the HMAC key's fingerprint
    production_secrets(monkeypatch)
    monkeypatch.setenv("WATCH_BACKFILL_DAYS", "1")  # no request to reach: a short first run
    monkeypatch.setenv("SYSTEMS_CONFIG", "layers/common/config/systems.json")
    app = load_function("watch")
    first = app.handler({"detail-type": "Scheduled Event"}, MinutesLeft())
    (check,) = [i for i in aws.items() if i["pk"] == "WATCH" and i["sk"] == "KEY_CHECK"]
    assert first["hash_key_changed"] is False and check["fingerprint"] == fingerprint(b"s" * 64)
    # When the secret is given another value (a put-secret-value, a console "rotate")
    sm = boto3.client("secretsmanager", region_name="us-east-1")
    sm.put_secret_value(SecretId=HASH_KEY, SecretString="z" * 64)
    monkeypatch.setattr(secret_store, "_cached", {})  # the 300 s cache has run out
    caplog.clear()
    later = [app.handler({"detail-type": "Scheduled Event"}, MinutesLeft()) for _ in range(2)]
    # Then every later run reports it, in an ERROR line naming no key material; the record
    # stays the first key's
    assert [s["hash_key_changed"] for s in later] == [True, True]
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 2 and "HMAC hash key differs" in errors[0]
    logged = caplog.text + repr([r.__dict__ for r in caplog.records])
    for secret in ("s" * 64, "z" * 64, fingerprint(b"s" * 64), fingerprint(b"z" * 64)):
        assert secret not in logged
    (check,) = [i for i in aws.items() if i["pk"] == "WATCH" and i["sk"] == "KEY_CHECK"]
    assert check["fingerprint"] == fingerprint(b"s" * 64)
    # ... and the previous value restored (AWSPREVIOUS) is the table's key again
    sm.put_secret_value(SecretId=HASH_KEY, SecretString="s" * 64)
    monkeypatch.setattr(secret_store, "_cached", {})
    assert app.handler({}, MinutesLeft())["hash_key_changed"] is False


def test_the_key_fingerprint_is_a_keyed_hash_of_a_label_not_of_the_key() -> None:
    key = b"k" * 64
    assert fingerprint(key) == hmac.new(key, LABEL, hashlib.sha256).hexdigest()[:16]
    assert fingerprint(key) != fingerprint(b"j" * 64)


def backfill_record(table: Table, system: str, started_at: datetime) -> None:
    record = backfills.record_item(f"bf-{system}-{started_at:%H%M}",
                                   {"system": system, "record": f"{started_at.year}#bf-{system}"},
                                   iso(started_at), "operator", 0)  # fmt: skip
    batch_put(table, [record])


def test_a_system_added_after_the_first_run_is_named_until_a_backfill_of_it_starts(
    table: Table,
) -> None:
    # Given a first run with two systems (the stack as it was: not judged)
    def run(at_: datetime, systems: list[str]) -> list[str]:
        report = Watch(table, settings(1), clock=lambda: at_, systems=systems).run()  # no request
        return report.systems_not_backfilled

    t0 = NOW
    assert run(t0, ["braze", "meta"]) == []
    assert run(t0 + timedelta(minutes=5), ["braze", "meta"]) == []
    # When a third is deployed (and a backfill of it started before that deploy counts not)
    backfill_record(table, "webhook", t0 - timedelta(days=1))
    assert run(t0 + timedelta(minutes=10), ["braze", "meta", "webhook"]) == ["webhook"]
    assert run(t0 + timedelta(hours=1), ["braze", "meta", "webhook"]) == ["webhook"]
    status = deserialize(
        table.client.get_item(
            TableName=table.name, Key={"pk": {"S": "WATCH"}, "sk": {"S": "STATUS"}}
        )["Item"]
    )
    assert status["systems_not_backfilled"] == ["webhook"]
    # Then a backfill started after the watch last ran without it (even before the watch saw
    # the new system) settles it for good
    backfill_record(table, "webhook", t0 + timedelta(minutes=7))
    assert run(t0 + timedelta(hours=2), ["braze", "meta", "webhook"]) == []
    assert run(t0 + timedelta(hours=3), ["braze", "meta", "webhook"]) == []
    # ... and a system removed, then added back, is new again
    assert run(t0 + timedelta(hours=4), ["braze", "webhook"]) == []
    assert run(t0 + timedelta(hours=5), ["braze", "meta", "webhook"]) == ["meta"]
