"""Jobs made under a request id of their own (no EVENT, no deadline): the flush's re-derived
jobs and a backfill step's. The sweep checks them only at their owner's checkpoints (up to
23 h); a reminder written with their `REDERIVED#` marker has the deadline watch look at them
daily from 25 h on, re-send one still pending and untouched a day, and drop the reminder once
every job is final. They are no request: nothing of theirs reaches the §7102 figures."""

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from optout.ops import watch
from optout.ops.watch import Watch, WatchReport, WatchSettings
from optout.resolver.outbox import Outbox
from optout.store.codec import serialize
from optout.store.table import Table
from optout.timestamps import iso
from tests.conftest import Aws
from tests.integration.test_backfill import FULL, backfill, opted_out_before, run_chain
from tests.integration.test_backfill import work as backfill_work
from tests.integration.test_rederived_purposes import rederived_jobs, two_people_derived_again
from tests.integration.test_resolver_delivery import Vendor, work
from tests.integration.test_resolver_replay import replay
from tests.integration.test_sweeper import job_messages
from tests.integration.test_watch import MinutesLeft
from tests.support.lambdas import load_function
from tests.support.pipeline import Pipeline, build_pipeline


@pytest.fixture
def pipe(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> Iterator[Pipeline]:
    yield build_pipeline(aws, monkeypatch)


def watch_at(pipe: Pipeline, after: timedelta) -> WatchReport:
    table = Table(pipe.aws.dynamodb, pipe.aws.table_name)
    return Watch(table, WatchSettings(lag_seconds=0, backfill_days=3),
                 clock=lambda: datetime.now(UTC) + after).run()  # fmt: skip


def jobs_reminders(pipe: Pipeline) -> list[dict[str, Any]]:
    return [i for i in pipe.items("WATCH") if i.get("kind") == "jobs"]


def test_a_flush_job_whose_message_was_lost_is_sent_again_by_the_watch_past_a_day(
    pipe: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the flush's jobs made after a concurrent change, and every message lost
    two_people_derived_again(pipe, monkeypatch)
    made = {f"{j['request_id']}:webhook" for j in rederived_jobs(pipe)}
    assert len(made) == 2
    job_messages(pipe)  # read and dropped: the jobs stay pending
    # When the watch runs 25 hours on (past the owners' last sweep checkpoint) and the
    # resolver takes its redrive event
    report = watch_at(pipe, timedelta(hours=25))
    assert made <= set(report.resent)  # (before: never named, the owners read completed)
    pipe.resolve()
    # Then each flush job's message is sent again
    assert {(r, s) for r, s in (ref.rsplit(":", 1) for ref in made)} <= job_messages(pipe)
    # ... their reminders stay, due a day later, and add nothing to the figures
    assert {r["request_id"] for r in jobs_reminders(pipe)} == {m.split(":")[0] for m in made}
    assert all(r["resent_at"] == report.run_at for r in jobs_reminders(pipe))
    assert (report.figures_partial, report.not_yet_checked) == (False, 0)


def test_a_flush_jobs_reminder_is_dropped_once_its_jobs_are_final(
    pipe: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the flush's jobs, each with a reminder for the watch, and the jobs answered
    two_people_derived_again(pipe, monkeypatch)
    made = {j["request_id"] for j in rederived_jobs(pipe)}
    reminders = jobs_reminders(pipe)
    assert {r["request_id"] for r in reminders} == made
    assert all(r["request_ids"] == {r["request_id"]} for r in reminders)
    work(pipe, "webhook", Vendor())
    # When the watch checks them before they are due, then 25 hours on
    assert watch_at(pipe, timedelta(hours=1)).resent == []
    assert len(jobs_reminders(pipe)) == 2  # not due yet
    report = watch_at(pipe, timedelta(hours=25))
    # Then nothing is re-sent of them, and their reminders are gone
    assert not [ref for ref in report.resent if ref.split(":")[0] in made]
    assert jobs_reminders(pipe) == []


def age_own_jobs(pipe: Pipeline, ago: timedelta) -> None:
    """The jobs under request ids of their own written `ago`, their reminders due now."""
    table, now = pipe.aws.table_name, datetime.now(UTC)
    for item in pipe.items("REQ#"):
        if str(item["sk"]).startswith("JOB#") and "~" in str(item["request_id"]):
            item["updated_at"] = iso(now - ago)
            pipe.aws.dynamodb.put_item(TableName=table, Item=serialize(item))
    for item in jobs_reminders(pipe):
        pipe.aws.dynamodb.delete_item(TableName=table, Key=serialize(
            {"pk": item["pk"], "sk": item["sk"]}))  # fmt: skip
        item["sk"] = f"DUE#{iso(now - timedelta(seconds=1))}#{item['request_id']}"
        pipe.aws.dynamodb.put_item(TableName=table, Item=serialize(item))


def test_a_backfill_steps_lost_job_is_sent_again_by_the_scheduled_watch(
    pipe: Pipeline, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    # Given meta added after a person opted out, and its backfill job's message lost 25 h ago
    opted_out_before(pipe, monkeypatch, tmp_path, "meta")
    (record,) = run_chain(pipe, backfill(pipe, "meta")["request_id"])
    (lost,) = pipe.drain("meta")
    assert [r["request_ids"] for r in jobs_reminders(pipe)] == [{record["job_request_id"]}]
    age_own_jobs(pipe, timedelta(hours=25))
    # When EventBridge invokes the deadline watch (the backfill event is no request it
    # enrols), and the resolver takes its redrive event
    monkeypatch.setenv("WATCH_BACKFILL_DAYS", "3")
    monkeypatch.setenv("WATCH_LAG_SECONDS", "0")
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")
    load_function("watch").handler({"detail-type": "Scheduled Event"}, MinutesLeft())
    assert '"WatchResentJobs":[1.0]' in capsys.readouterr().out.replace(" ", "")
    assert pipe.resolve() == {"batchItemFailures": []}
    # Then the job's message is sent again, once, and its reminder stays for the next day
    assert pipe.drain("meta") == [lost]
    (reminder,) = jobs_reminders(pipe)
    assert reminder["attempt"] == 1 and "resent_at" in reminder


def due_at(reminder: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(str(reminder["sk"]).split("#")[1])


def failed_backfill_job(
    pipe: Pipeline, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> tuple[str, str, str]:
    """A backfill step's job meta refused for good, whose reminder the watch dropped (every
    job of it final): the backfill's id, the job's request id, the reminder's marker."""
    opted_out_before(pipe, monkeypatch, tmp_path, "meta")
    backfill_id = backfill(pipe, "meta")["request_id"]
    (record,) = run_chain(pipe, backfill_id)
    (made,) = jobs_reminders(pipe)
    backfill_work(pipe, FULL, "meta", Vendor(refuse=True))
    watch_at(pipe, timedelta(hours=25))
    assert jobs_reminders(pipe) == []
    return str(backfill_id), str(record["job_request_id"]), str(made["request_id"])


def test_a_replayed_backfill_job_gets_its_jobs_reminder_again_and_is_watched(
    pipe: Pipeline, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Given a backfill step's failed job, its reminder dropped
    _, job_request, marker = failed_backfill_job(pipe, monkeypatch, tmp_path)
    # When an operator replays meta, and the replayed job's message is lost
    replay_id = replay(pipe, "meta")
    assert pipe.resolve() == {"batchItemFailures": []}
    (lost,) = pipe.drain("meta")
    # Then the replay wrote the reminder the watch reads for such jobs (before: one for the
    # backfill event, whose check does not read its step's jobs): its marker's, as the step
    # wrote it, due a day past the replay
    (reminder,) = jobs_reminders(pipe)
    assert (reminder["request_id"], reminder["request_ids"]) == (marker, {job_request})
    (event,) = [i for i in pipe.items(f"REQ#{replay_id}") if i["sk"] == "EVENT"]
    received = datetime.fromisoformat(str(event["received_at"]))
    assert due_at(reminder) == received + timedelta(hours=25)
    # ... and the watch a day on sends the job again
    assert f"{job_request}:meta" in watch_at(pipe, timedelta(hours=50)).resent
    assert pipe.resolve() == {"batchItemFailures": []}
    assert pipe.drain("meta") == [lost]


def test_a_replayed_job_no_marker_names_reminds_itself_and_its_owner(
    pipe: Pipeline, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Given a backfill step's failed job whose marker is gone (the owner's partition holds
    # none naming it: a follow-up step's, say, is in the follow-up event's partition)
    backfill_id, job_request, _ = failed_backfill_job(pipe, monkeypatch, tmp_path)
    for item in pipe.items(f"REQ#{backfill_id}"):
        if str(item["sk"]).startswith("REDERIVED#"):
            pipe.aws.dynamodb.delete_item(TableName=pipe.aws.table_name, Key=serialize(
                {"pk": item["pk"], "sk": item["sk"]}))  # fmt: skip
    before = {str(i["sk"]) for i in pipe.items("WATCH")}
    # When an operator replays meta
    replay(pipe, "meta")
    assert pipe.resolve() == {"batchItemFailures": []}
    # Then the job has a jobs reminder of its own, and its owner is reminded as before
    (reminder,) = jobs_reminders(pipe)
    assert (reminder["request_id"], reminder["request_ids"]) == (job_request, {job_request})
    added = [i for i in pipe.items("WATCH") if str(i["sk"]) not in before]
    assert {(i["kind"], i["request_id"]) for i in added} == {("jobs", job_request),
                                                             ("reminder", backfill_id)}  # fmt: skip


def test_a_retried_backfill_event_leaves_one_reminder_for_its_jobs(
    pipe: Pipeline, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Given a backfill step that made its job and its reminder, and whose first run named
    # a second job too (a purpose set the retry no longer plans: a person opted back in)
    opted_out_before(pipe, monkeypatch, tmp_path, "meta")
    backfill_id = backfill(pipe, "meta")["request_id"]
    (record,) = run_chain(pipe, backfill_id)
    (first,) = jobs_reminders(pipe)
    other = f"{backfill_id}~0123456789ab"
    pipe.aws.dynamodb.update_item(
        TableName=pipe.aws.table_name,
        Key=serialize({"pk": f"REQ#{backfill_id}", "sk": f"REDERIVED#{first['request_id']}"}),
        UpdateExpression="ADD request_ids :ids",
        ExpressionAttributeValues=serialize({":ids": {other}}),
    )  # fmt: skip
    # When the stream brings its event again an hour later (a retried batch)
    (event,) = [i for i in pipe.items(f"REQ#{backfill_id}") if i["sk"] == "EVENT"]
    resolver = pipe.resolver.resolver()
    monkeypatch.setattr(resolver, "_clock", lambda: datetime.now(UTC) + timedelta(hours=1))
    batch = Outbox()
    resolver.process(dict(event), batch)
    resolver.flush(batch)
    # Then the retry wrote the same reminder again (due a day past the event), not a second,
    # naming every run's jobs, as the marker does
    (again,) = jobs_reminders(pipe)
    assert again["sk"] == first["sk"]
    assert again["request_ids"] == {record["job_request_id"], other}
    received = datetime.fromisoformat(str(event["received_at"]))
    assert due_at(first) == received + timedelta(hours=25)


def test_replayed_flush_jobs_get_their_jobs_reminders_again(
    pipe: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the flush's re-derived jobs refused for good, their reminders dropped by the watch
    two_people_derived_again(pipe, monkeypatch)
    made = {j["request_id"] for j in rederived_jobs(pipe)}
    work(pipe, "webhook", Vendor(refuse=True))
    watch_at(pipe, timedelta(hours=25))
    assert jobs_reminders(pipe) == []
    # When an operator replays the webhook
    replay(pipe, "webhook")
    assert pipe.resolve() == {"batchItemFailures": []}
    # Then each re-derived job has its marker's reminder again, the watch's way of reading it
    reminders = jobs_reminders(pipe)
    assert {r["request_id"] for r in reminders} == made
    assert all(r["request_ids"] == {r["request_id"]} for r in reminders)


def test_jobs_all_final_drop_their_reminder_without_reading_a_retirement(
    pipe: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the flush's jobs answered (final), their reminders due
    two_people_derived_again(pipe, monkeypatch)
    work(pipe, "webhook", Vendor())
    inside: list[bool] = []
    read: list[Any] = []
    real_check, real_get = Watch._check_jobs, watch.batch_get

    def check(self: Watch, *args: Any) -> None:
        inside.append(True)
        try:
            real_check(self, *args)
        finally:
            inside.pop()

    def get(table: Table, wanted: list[Any], **kw: Any) -> Any:
        read.extend(wanted if inside else [])
        return real_get(table, wanted, **kw)

    monkeypatch.setattr(Watch, "_check_jobs", check)
    monkeypatch.setattr(watch, "batch_get", get)
    # When the watch checks them
    watch_at(pipe, timedelta(hours=25))
    # Then their reminders go, and no retirement was read for them: only a pending job's
    # system needs it (`_check_jobs` filters pending before `_open`: not redundant)
    assert jobs_reminders(pipe) == []
    assert read == []
