"""A pending job whose message is gone past the sweep's last check (23 h) is sent again by the
deadline watch's daily check, at most once a day, and only while its queue has no backlog."""

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from optout.ops.watch import Watch, WatchReport, WatchSettings
from optout.store import keys
from optout.store.table import Table
from tests.conftest import Aws
from tests.integration.test_resolver_delivery import Vendor, work
from tests.integration.test_sweeper import forget_the_mark, job_messages, sweep
from tests.support.pipeline import Pipeline, build_pipeline

EMAIL = "lost-late@example.com"


@pytest.fixture
def pipe(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> Iterator[Pipeline]:
    yield build_pipeline(aws, monkeypatch)


def watch_at(pipe: Pipeline, after: timedelta) -> WatchReport:
    table = Table(pipe.aws.dynamodb, pipe.aws.table_name)
    return Watch(table, WatchSettings(lag_seconds=0, backfill_days=3),
                 clock=lambda: datetime.now(UTC) + after).run()  # fmt: skip


def lost_after_one_answer(pipe: Pipeline) -> tuple[str, set[tuple[str, str]]]:
    """An opt-out whose webhook job was answered and whose other jobs' messages were lost."""
    request_id = pipe.post("/v1/opt-out", {"email": EMAIL})["request_id"]
    pipe.resolve()
    assert len(work(pipe, "webhook", Vendor())) == 1
    lost = job_messages(pipe)  # read and dropped: the jobs stay pending
    assert lost and ("webhook" not in {s for _, s in lost})
    assert {r for r, _ in lost} == {request_id}
    return request_id, lost


def test_a_pending_job_whose_message_was_lost_is_sent_again_past_the_sweeps_last_check(
    pipe: Pipeline,
) -> None:
    # Given an opt-out with one job answered and the others' messages lost
    request_id, lost = lost_after_one_answer(pipe)
    # (the sweep's checks are over 25 hours on: a run then finds nothing to send)
    forget_the_mark(pipe)
    assert sweep(pipe, timedelta(hours=25)).sweep().stuck_jobs == []
    # When the watch checks the request 25 hours on and the resolver takes its redrive event
    report = watch_at(pipe, timedelta(hours=25))
    assert len(report.redrive_events) == 1  # (before: none, and nothing ever sent them again)
    pipe.resolve()
    # Then each pending job's message is sent again, once; the answered job's is not
    assert job_messages(pipe) == lost
    assert report.resent == sorted(f"{r}:{s}" for r, s in lost)
    # and the check keeps when it re-sent them, on its reminder and its FOLDED item
    folded = [i for i in pipe.items(f"REQ#{request_id}") if i["sk"] == "FOLDED"]
    assert folded and folded[0]["resent_at"] == report.run_at


def test_a_job_still_pending_is_sent_again_once_a_day_not_at_every_check(pipe: Pipeline) -> None:
    # Given an opt-out whose lost jobs the watch re-sent 25 hours on, and they were lost again
    _, lost = lost_after_one_answer(pipe)
    assert watch_at(pipe, timedelta(hours=25)).redrive_events
    pipe.resolve()
    assert job_messages(pipe) == lost
    # When the watch checks it within the day (its next reminder is due by then), and again
    # a day after the re-send
    within = watch_at(pipe, timedelta(hours=30))
    assert (within.checked, within.resent, within.redrive_events) == (1, [], [])
    later = watch_at(pipe, timedelta(hours=49, minutes=1))
    assert len(later.redrive_events) == 1
    pipe.resolve()
    # Then only the check a day later sends them again
    assert job_messages(pipe) == lost
    assert later.resent == sorted(f"{r}:{s}" for r, s in lost)


def test_a_system_whose_queue_has_a_backlog_gets_no_re_send(pipe: Pipeline) -> None:
    # Given an opt-out whose jobs' messages were lost, and braze's queue holding a backlog
    # (a message waiting: another job's, not yet received)
    request_id, lost = lost_after_one_answer(pipe)
    waiting = {"job_id": "other-job", "request_id": "other-request", "system": "braze"}
    pipe.aws.sqs.send_message(QueueUrl=pipe.queue_urls["braze"], MessageBody=json.dumps(waiting))
    # When the watch names the jobs 25 hours on and the resolver takes its redrive event
    report = watch_at(pipe, timedelta(hours=25))
    assert len(report.redrive_events) == 1
    pipe.resolve()
    # Then every system's job is sent again but braze's: its queue may still hold that message
    # (a slow vendor's backlog is not doubled), and the redrive's record counts it held
    assert f"{request_id}:braze" in report.resent
    assert job_messages(pipe) == (lost - {(request_id, "braze")}) | {("other-request", "braze")}
    (redrive,) = [r for r in resolutions(pipe) if r.get("redriven_jobs") is not None]
    assert redrive["resend_held"] == 1 and redrive["redriven_jobs"] == len(lost) - 1


def resolutions(pipe: Pipeline) -> list[dict[str, Any]]:
    return [i for i in pipe.aws.items() if i["sk"] == keys.RESOLUTION_SK]


def test_a_job_still_inside_the_sweeps_checks_or_a_day_of_its_last_write_is_not_named(
    pipe: Pipeline,
) -> None:
    # Given an opt-out whose jobs' messages were lost
    lost_after_one_answer(pipe)
    # When the watch checks it 20 hours on (the sweep's 23 h check is still ahead), and 23 h 30
    # on (past the sweep, but less than a day since the jobs were written)
    early = watch_at(pipe, timedelta(hours=20))
    not_a_day = watch_at(pipe, timedelta(hours=23, minutes=30))
    # Then neither names a job to send again
    assert (early.resent, not_a_day.resent, early.redrive_events) == ([], [], [])
