"""The reconciliation sweep: what the pipeline dropped silently is found and re-driven."""

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError, ReadTimeoutError

from optout import sweep as sweep_module
from optout.connectors.base import Job, Outcome
from optout.connectors.errors import DeliveryError
from optout.ops.watch import Watch, WatchSettings
from optout.resolver.service import Resolver
from optout.store import keys
from optout.store.codec import serialize
from optout.store.table import Table
from optout.sweep import Sweeper, SweepSettings
from optout.timestamps import iso
from tests.conftest import Aws
from tests.integration.test_resolver_delivery import Vendor, work
from tests.support.aws_hooks import session_hooks
from tests.support.http_events import http_event, json_body
from tests.support.lambdas import FakeLambdaContext, invoke, load_function
from tests.support.pipeline import Pipeline, build_pipeline

EMAIL = "sweep@example.com"
LATER = timedelta(hours=2, minutes=16)  # at the second check (2 h 15), past the job grace


@pytest.fixture
def pipe(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> Iterator[Pipeline]:
    yield build_pipeline(aws, monkeypatch)


def sweep(pipe: Pipeline, after: timedelta) -> Sweeper:
    table = Table(pipe.aws.dynamodb, pipe.aws.table_name)
    return Sweeper(table, SweepSettings(), clock=lambda: datetime.now(UTC) + after)


def job_messages(pipe: Pipeline) -> set[tuple[str, str]]:
    return {(m["request_id"], m["system"]) for ms in pipe.drain_all().values() for m in ms}


def test_an_event_the_resolver_never_saw_is_resolved_by_the_redrive(pipe: Pipeline) -> None:
    # Given an opt-out whose stream record was lost before the resolver ran
    request_id = pipe.post("/v1/opt-out", {"email": EMAIL})["request_id"]
    pipe.event_records()  # read and dropped
    # When the sweep runs past the grace period, and the resolver takes its redrive event
    report = sweep(pipe, LATER).sweep()
    pipe.resolve()
    # Then the request was found unresolved, and now has its jobs queued
    assert report.unresolved == [request_id] and len(report.redrive_events) == 1
    queued = job_messages(pipe)
    assert queued and {r for r, _ in queued} == {request_id}
    assert pipe.get(f"/v1/requests/{request_id}", request_id=request_id)["status"] != "received"


def test_an_event_whose_batch_lambda_gave_up_on_is_resolved_again_with_its_state(
    pipe: Pipeline,
) -> None:
    # Given a banner opt-out whose stream batch fails in the flush on every try (SQS refuses
    # the sends for the first invocation and Lambda's five retries), then is given up
    device = "dev-sweep-given-up-0001"
    request_id = pipe.post("/v1/consent", {"device_id": device, "opt_out": {"sale": True}})[
        "request_id"
    ]
    records = pipe.event_records()

    def unavailable(**_: Any) -> None:
        raise ClientError({"Error": {"Code": "ServiceUnavailable", "Message": "injected"}},
                          "SendMessageBatch")  # fmt: skip

    with session_hooks("given-up", pipe.resolver.resolver.cache_clear) as register:
        register("before-call.sqs.SendMessageBatch", unavailable)
        for _ in range(6):
            with pytest.raises(ClientError):
                pipe.resolve(records)
    pipe.resolver.resolver.cache_clear()  # a new container: clients without the fault
    # When the sweep runs at its first check and the resolver takes its redrive event
    report = sweep(pipe, timedelta(minutes=16)).sweep()
    # Then the request was found unresolved (no RESOLUTION before a flush that succeeded),
    assert report.unresolved == [request_id]
    # and once resolved again the device's state says opted out and its jobs are queued
    assert pipe.resolve() == {"batchItemFailures": []}
    assert pipe.get(f"/v1/consent/{device}", device_id=device)["opt_out"]["sale"] is True
    assert {r for r, _ in job_messages(pipe)} == {request_id}


def test_a_pending_job_whose_message_was_lost_is_sent_again(pipe: Pipeline) -> None:
    # Given a resolved opt-out whose job messages were lost (queues emptied, jobs pending)
    request_id = pipe.post("/v1/opt-out", {"email": EMAIL})["request_id"]
    pipe.resolve()
    lost = job_messages(pipe)
    # When the sweep runs past the grace period, and the resolver takes its redrive event
    report = sweep(pipe, LATER).sweep()
    pipe.resolve()
    # Then each stuck job is listed and its message sent again, once
    assert sorted(report.stuck_jobs) == sorted(f"{r}:{s}" for r, s in lost)
    assert report.unresolved == []
    assert job_messages(pipe) == lost and {r for r, _ in lost} == {request_id}


class Throttling(Vendor):
    """Answers every job 429 with Retry-After: 3 hours (the worker honours up to 12 h)."""

    def deliver(self, jobs: list[Job]) -> list[Outcome]:
        self.received.extend(jobs)
        error = DeliveryError("throttled", retryable=True, http_status=429, retry_after=3 * 3600)
        return [Outcome(j.job_id, None, http_status=429, error=error) for j in jobs]


def test_a_job_waiting_out_a_vendors_retry_after_is_not_stuck_until_it_is_overdue(
    pipe: Pipeline,
) -> None:
    # Given a webhook job whose vendor answered 429 with Retry-After: 3 hours (the worker
    # makes its message invisible that long)
    request_id = pipe.post("/v1/opt-out", {"email": EMAIL})["request_id"]
    pipe.resolve()
    vendor = Throttling()
    assert len(work(pipe, "webhook", vendor)) == 1 and len(vendor.received) == 1
    (job,) = [i for i in pipe.items(f"REQ#{request_id}") if i["sk"] == "JOB#webhook"]
    assert job["status"] == "pending"
    # When the sweep checks the request at 2 h 15 (past its 2 h grace, before the 3 h)
    waiting = sweep(pipe, LATER).sweep()
    # Then the job is not taken for stuck; at 8 h, 5 h after it was due and still pending, it is
    # (the runs between are not modelled: that run reads its own window, as a first run does)
    forget_the_mark(pipe)
    overdue = sweep(pipe, timedelta(hours=8, minutes=1)).sweep()
    assert f"{request_id}:webhook" not in waiting.stuck_jobs
    assert f"{request_id}:webhook" in overdue.stuck_jobs


def forget_the_mark(pipe: Pipeline) -> None:
    """No mark: the next run reads one window back from its own clock, as a first run."""
    pipe.aws.dynamodb.delete_item(TableName=pipe.aws.table_name,
                                  Key=serialize({"pk": "SWEEP", "sk": "MARK"}))  # fmt: skip


def test_requests_younger_than_the_first_check_are_left_alone(pipe: Pipeline) -> None:
    # Given an opt-out just captured, not yet resolved
    pipe.post("/v1/opt-out", {"email": EMAIL})
    # When the sweep runs a minute later
    report = sweep(pipe, timedelta(minutes=1)).sweep()
    # Then nothing is re-driven
    assert (report.unresolved, report.stuck_jobs, report.redrive_events) == ([], [], [])


def test_the_scheduled_function_counts_what_it_re_drove(
    pipe: Pipeline, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given an unresolved opt-out and a sweep with no grace period
    pipe.post("/v1/opt-out", {"email": EMAIL})
    pipe.event_records()
    monkeypatch.setenv("SWEEP_CHECKPOINTS_SECONDS", "0.001")
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")
    # When EventBridge invokes the function
    answer = invoke(load_function("sweeper"), {"source": "aws.events", "detail": {}})
    # Then it reports the event and emits the metric the alarm watches
    assert answer["unresolved_events"] == 1
    out = capsys.readouterr().out.replace(" ", "")
    assert '"SweepRedriven":[1.0]' in out
    # And the heartbeat its SweeperHeartbeatAlarm reads (missing data breaches)
    assert '"SweepRunFinished":[1.0]' in out


# -- a run's time ----------------------------------------------------------------------------


def unresolved_opt_outs(pipe: Pipeline, count: int) -> list[str]:
    ids = [pipe.post("/v1/opt-out", {"email": f"lost{n}@example.com"})["request_id"]
           for n in range(count)]  # fmt: skip
    pipe.event_records()  # read and dropped: none is resolved
    return ids


def redriven_requests(pipe: Pipeline) -> list[str]:
    return [r for i in pipe.items("REQ#") if i["sk"] == "EVENT" and i["event_type"] == "redrive"
            for r in i["operation"]["requests"].split()]  # fmt: skip


def test_a_sweep_killed_mid_run_has_already_written_its_full_redrive_batches(
    pipe: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given three unresolved opt-outs, redrive events of one reference, and a run killed as it
    # reads the third request (a timeout stops it there)
    ids = unresolved_opt_outs(pipe, 3)
    monkeypatch.setattr(sweep_module, "REDRIVE_BATCH", 1)
    reads: list[str] = []

    def killed_at_third_request(params: dict[str, Any], **_: Any) -> None:
        pk = params.get("ExpressionAttributeValues", {}).get(":pk", {}).get("S", "")
        if pk.startswith("REQ#"):
            reads.append(pk)
            if len(reads) == 3:
                raise TimeoutError("killed")

    with session_hooks("sweep-killed") as register:
        register("provide-client-params.dynamodb.Query", killed_at_third_request)
        table = Table(boto3.client("dynamodb", region_name="us-east-1"), pipe.aws.table_name)
        sweeper = Sweeper(table, SweepSettings(), clock=lambda: datetime.now(UTC) + LATER)
        with pytest.raises(TimeoutError):
            sweeper.sweep()
    # Then the two requests it had checked are already in redrive events
    found = redriven_requests(pipe)
    assert len(found) == 2 and set(found) < set(ids)


def test_a_sweep_out_of_time_stops_cleanly_and_says_where(
    pipe: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given three unresolved opt-outs, and a run whose deadline passes after two checks (its
    # clock moves one second per look)
    ids = unresolved_opt_outs(pipe, 3)
    ticks = iter(range(100))
    monkeypatch.setattr(sweep_module, "monotonic", lambda t=ticks: float(next(t)))
    # When the sweep runs at the second checkpoint
    report = sweep(pipe, LATER).sweep(deadline=1.5)
    # Then it checked two, wrote their redrive event, and names the checkpoint and the
    # arrival it stopped at (the third request is left to its next checkpoint)
    assert report.events_checked == 2 and len(report.unresolved) == 2
    assert sorted(redriven_requests(pipe)) == sorted(report.unresolved)
    assert report.cut_short is not None
    assert report.cut_short.checkpoint == timedelta(hours=2, minutes=15)
    (left,) = set(ids) - set(report.unresolved)
    (event,) = [i for i in pipe.items(f"REQ#{left}") if i["sk"] == "EVENT"]
    assert report.cut_short.before == event["received_at"]


def move_into_the_past(pipe: Pipeline, request_id: str, then: datetime) -> None:
    """The request as if it had arrived at `then`: its EVENT and ByDay key, its jobs' writes."""
    for item in pipe.items(f"REQ#{request_id}"):
        if item["sk"] == "EVENT":
            item["received_at"] = iso(then)
            item["day_pk"] = keys.day_pk(then.date().isoformat(), request_id)
        elif str(item["sk"]).startswith("JOB#"):
            item["updated_at"] = iso(then + timedelta(seconds=2))
        pipe.aws.dynamodb.put_item(TableName=pipe.aws.table_name, Item=serialize(item))


def test_a_sweep_cut_short_by_a_burst_still_makes_the_last_check_of_older_requests(
    pipe: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a request 22 h 50 old whose job messages were lost, then a burst of unresolved
    # opt-outs more than a run has time to check
    t0 = datetime.now(UTC)
    old = pipe.post("/v1/opt-out", {"email": EMAIL})["request_id"]
    pipe.resolve()
    lost = job_messages(pipe)
    move_into_the_past(pipe, old, t0 - timedelta(hours=22, minutes=50))
    unresolved_opt_outs(pipe, 4)
    # When the two runs that follow (10 min apart) each have time for two checks
    stuck: list[str] = []
    for offset in (timedelta(minutes=16), timedelta(minutes=26)):
        ticks = iter(range(100))
        monkeypatch.setattr(sweep_module, "monotonic", lambda t=ticks: float(next(t)))
        table = Table(pipe.aws.dynamodb, pipe.aws.table_name)
        run = Sweeper(table, SweepSettings(), clock=lambda o=offset: t0 + o).sweep(deadline=1.5)
        assert run.cut_short is not None
        stuck += run.stuck_jobs
    # Then the old request's 23 h check, its last, was made first: its jobs are re-driven
    assert sorted(set(stuck)) == sorted(f"{r}:{s}" for r, s in lost)


def test_sweeps_cut_short_in_turn_start_each_window_at_a_different_shard(
    pipe: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given ten unresolved opt-outs, and one check with a window wide enough to hold them
    # through sixteen consecutive runs (listed in one slice: each run is cut in it)
    t0 = datetime.now(UTC)
    ids = unresolved_opt_outs(pipe, 10)
    wide = timedelta(hours=3)
    settings = SweepSettings(checkpoints=(timedelta(minutes=15),), window=wide, slice=wide,
                             max_window=2 * wide)  # fmt: skip
    table = Table(pipe.aws.dynamodb, pipe.aws.table_name)
    # When each of the sixteen runs (10 min apart) has time for one check only
    checked: set[str] = set()
    for run in range(16):
        ticks = iter(range(100))
        monkeypatch.setattr(sweep_module, "monotonic", lambda t=ticks: float(next(t)))
        now = t0 + timedelta(minutes=16 + 10 * run)
        report = Sweeper(table, settings, clock=lambda n=now: n).sweep(deadline=0.5)
        assert report.events_checked == 1
        checked.update(report.unresolved)
        for event in report.redrive_events:  # carried out: not in the next run's way
            pipe.aws.dynamodb.delete_item(TableName=pipe.aws.table_name, Key=serialize(
                {"pk": keys.request_pk(event), "sk": keys.EVENT_SK}))  # fmt: skip
    # Then between them they checked a request of every shard that holds one (each run read
    # from another shard), where the same first request was checked every time before
    assert {r[0] for r in checked} == {r[0] for r in ids}


@dataclass
class NoTimeLeft(FakeLambdaContext):
    def get_remaining_time_in_millis(self) -> int:
        return 0


def test_the_scheduled_function_counts_a_run_it_cut_short(
    pipe: Pipeline, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    # Given an unresolved opt-out and a sweep with no grace period
    unresolved_opt_outs(pipe, 1)
    monkeypatch.setenv("SWEEP_CHECKPOINTS_SECONDS", "0.001")
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")
    # When EventBridge invokes the function with no time left
    function = load_function("sweeper")
    answer = function.handler({"source": "aws.events", "detail": {}}, NoTimeLeft())
    # Then it checked nothing, says so, and emits the metric its alarm watches
    assert (answer["events_checked"], answer["cut_short"]) == (0, 1)
    assert '"SweepCutShort":[1.0]' in capsys.readouterr().out.replace(" ", "")
    assert "sweep stopped for want of time" in caplog.messages


# -- requests the deadline watch passed over ------------------------------------------------


def claim_enrolled_through(pipe: Pipeline, through: datetime) -> None:
    """The watch's cursor as a run leaves it, saying every arrival up to `through` is enrolled
    (as when the ByDay index showed a request later than the watch's lag)."""
    day = through.date().isoformat()
    cursor = {"pk": "WATCH", "sk": "CURSOR", "kind": "watch_cursor", "day": day,
              "positions": {}, "through": iso(through)}  # fmt: skip
    pipe.aws.dynamodb.put_item(TableName=pipe.aws.table_name, Item=serialize(cursor))


def reminders(pipe: Pipeline) -> list[str]:
    return [str(i["request_id"]) for i in pipe.items("WATCH") if str(i["sk"]).startswith("DUE#")]


def test_a_request_the_watch_passed_over_gets_a_reminder_and_is_then_folded(
    pipe: Pipeline,
) -> None:
    # Given an opt-out the watch's cursor has passed without enrolling it
    request_id = pipe.post("/v1/opt-out", {"email": EMAIL})["request_id"]
    pipe.resolve()
    claim_enrolled_through(pipe, datetime.now(UTC) + LATER)
    # When the sweep runs at its first check of the request
    report = sweep(pipe, LATER).sweep()
    # Then it leaves the watch a reminder for that request, due now
    assert report.unenrolled == [request_id]
    assert reminders(pipe) == [request_id]
    # ... and the watch's next run reads it, folding it into the §7102 figures
    Watch(Table(pipe.aws.dynamodb, pipe.aws.table_name), WatchSettings(lag_seconds=0),
          clock=lambda: datetime.now(UTC) + LATER).run()  # fmt: skip
    assert [i for i in pipe.items(f"REQ#{request_id}") if i["sk"] == "FOLDED"]


def test_a_request_ahead_of_the_watchs_cursor_or_already_folded_gets_no_reminder(
    pipe: Pipeline,
) -> None:
    # Given an opt-out the watch has not reached yet (no cursor), and a link event
    pipe.post("/v1/opt-out", {"email": EMAIL})
    link = {"a": {"type": "device_id", "value": "dev-sweep-link-aaaaaaa"},
            "b": {"type": "email", "value": EMAIL}}  # fmt: skip
    pipe.post("/v1/identity-links", {"links": [link]}, iam=True)
    pipe.resolve()
    # When the sweep runs, before and after the watch has enrolled everything
    before = sweep(pipe, LATER).sweep()
    assert reminders(pipe) == []
    # (the requests arrived now: its first run reads back to today, not 31 empty days)
    Watch(Table(pipe.aws.dynamodb, pipe.aws.table_name),
          WatchSettings(lag_seconds=0, backfill_days=1)).run()  # fmt: skip
    planned = reminders(pipe)  # the watch's own next check of the open request
    after = sweep(pipe, LATER).sweep()
    # Then neither run reminds the watch of anything: it enrols the one and folded the other,
    # and a link is no request
    assert (before.unenrolled, after.unenrolled, reminders(pipe)) == ([], [], planned)


# -- a redrive bounded by the resolver's deadline ------------------------------------------------


class Ticks:
    """The resolver's time.monotonic(): before any deadline for `calls` calls, then past it."""

    def __init__(self, calls: int) -> None:
        self.left = calls

    def __call__(self) -> float:
        if self.left:
            self.left -= 1
            return 0.0
        return 1e12


def lost_opt_outs(pipe: Pipeline, count: int) -> list[str]:
    """Opt-outs whose stream records are lost, and the one redrive event the sweep writes."""
    made = [pipe.post("/v1/opt-out", {"email": f"lost{n}@example.com"})["request_id"]
            for n in range(count)]  # fmt: skip
    pipe.event_records()  # read and dropped
    report = sweep(pipe, LATER).sweep()
    assert sorted(report.unresolved) == sorted(made) and len(report.redrive_events) == 1
    return made


def resolutions(pipe: Pipeline) -> dict[str, dict[str, Any]]:
    return {str(i["pk"]).removeprefix("REQ#"): i for i in pipe.aws.items()
            if i["sk"] == keys.RESOLUTION_SK}  # fmt: skip


def redrive_events(pipe: Pipeline) -> list[dict[str, Any]]:
    return [i for i in pipe.aws.items()
            if i["sk"] == keys.EVENT_SK and i.get("event_type") == "redrive"]  # fmt: skip


def test_a_redrive_past_its_deadline_leaves_the_rest_to_a_follow_up_event(
    pipe: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given three lost opt-outs in one redrive event
    made = lost_opt_outs(pipe, 3)
    (first,) = redrive_events(pipe)
    # When the resolver reaches its deadline after the first reference
    monkeypatch.setattr("optout.resolver.service.monotonic", Ticks(1))
    assert pipe.resolve() == {"batchItemFailures": []}
    # Then one request is resolved, and the event names a follow-up redrive of the other two
    done = resolutions(pipe)
    assert len(set(made) & set(done)) == 1
    record = done[first["request_id"]]
    assert record["redriven_events"] == 1 and record["continued_by"]
    (follow_up,) = [e for e in redrive_events(pipe) if e["request_id"] != first["request_id"]]
    assert follow_up["request_id"] == record["continued_by"]
    assert sorted(follow_up["operation"]["requests"].split()) == sorted(set(made) - set(done))
    # And the resolver, with time enough, resolves the rest from the follow-up
    monkeypatch.setattr("optout.resolver.service.monotonic", lambda: 0.0)
    assert pipe.resolve() == {"batchItemFailures": []}
    done = resolutions(pipe)
    assert set(made) <= set(done)
    assert done[follow_up["request_id"]]["redriven_events"] == 2
    assert "continued_by" not in done[follow_up["request_id"]]


def test_a_retried_redrive_past_its_deadline_writes_no_second_follow_up(
    pipe: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    lost_opt_outs(pipe, 2)
    records = pipe.event_records()
    # When the redrive record is handled twice (the stream's retry), both times out of time
    monkeypatch.setattr("optout.resolver.service.monotonic", Ticks(0))
    pipe.resolve(records)
    pipe.resolve(records)
    # Then there is one follow-up, holding both requests
    events = redrive_events(pipe)
    assert len(events) == 2
    assert len(events[0]["operation"]["requests"].split()) == 2


def test_a_redrive_past_its_deadline_leaves_its_re_opens_to_the_follow_up(
    pipe: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a redrive event of five re-opens (review s14 recheck 3: they ran before any
    # deadline check and never went into the follow-up)
    table = Table(pipe.aws.dynamodb, pipe.aws.table_name)
    reopen = [f"00000000-0000-4000-8000-00000000000{n}" for n in range(5)]
    first = sweep_module.redrive(table, [("reopen", r) for r in reopen], datetime.now(UTC), 30)
    seen: list[str] = []
    real = Resolver._reopen

    def spy(self: Resolver, request_id: str, pending: Any, *by: Any) -> int:
        seen.append(request_id)
        return real(self, request_id, pending, *by)

    monkeypatch.setattr(Resolver, "_reopen", spy)
    # When the resolver is past its deadline after the first re-open
    monkeypatch.setattr("optout.resolver.service.monotonic", Ticks(1))
    assert pipe.resolve() == {"batchItemFailures": []}
    # Then only that one ran, and the follow-up event carries the other four as re-opens
    assert seen == reopen[:1]
    record = resolutions(pipe)[first]
    (follow_up,) = [e for e in redrive_events(pipe) if e["request_id"] != first]
    assert follow_up["request_id"] == record["continued_by"]
    assert follow_up["operation"]["reopen"].split() == reopen[1:]
    # And with time enough, the follow-up re-opens the rest
    monkeypatch.setattr("optout.resolver.service.monotonic", lambda: 0.0)
    assert pipe.resolve() == {"batchItemFailures": []}
    assert seen == reopen


def test_an_identity_export_does_not_claim_complete_through_a_request_the_watch_passed_over(
    pipe: Pipeline,
) -> None:
    # Given an opt-out the watch's cursor has passed without enrolling it (the ByDay index
    # showed it late): nothing references it from the email yet
    request_id = pipe.post("/v1/opt-out", {"email": EMAIL})["request_id"]
    pipe.resolve()
    claim_enrolled_through(pipe, datetime.now(UTC))
    received_at = next(i["received_at"] for i in pipe.items(f"REQ#{request_id}")
                       if i["sk"] == "EVENT")  # fmt: skip
    # When an operator exports the email's records
    body = {"type": "email", "value": EMAIL}
    answer = invoke(pipe.admin, http_event("POST", "/v1/admin/exports/identity", body, iam=True))
    exported = json_body(answer)
    # Then the export does not say its list covers that time, whether or not another record
    # led it to the request (review s16 claims2 F4: complete_through was the watch's cursor)
    assert exported["complete_through"] < received_at


# -- a read that fails mid-run -------------------------------------------------------------


def test_a_throttled_read_leaves_that_request_and_the_run_goes_on(
    pipe: Pipeline, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    # Given three unresolved opt-outs, and DynamoDB throttling the read of the second one after
    # the client's retries (review s17 F8: the run raised, and the references found so far
    # were dropped)
    ids = unresolved_opt_outs(pipe, 3)
    monkeypatch.setenv("SWEEP_CHECKPOINTS_SECONDS", "0.001")
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")
    reads: list[str] = []

    def throttle_second_request(params: dict[str, Any], **_: Any) -> None:
        pk = params.get("ExpressionAttributeValues", {}).get(":pk", {}).get("S", "")
        if pk.startswith("REQ#"):
            reads.append(pk)
            if len(reads) == 2:
                raise ClientError(
                    {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "x"}},
                    "Query",
                )

    function = load_function("sweeper")
    with session_hooks("sweep-throttled", function.sweeper.cache_clear) as register:
        register("provide-client-params.dynamodb.Query", throttle_second_request)
        answer = invoke(function, {"source": "aws.events", "detail": {}})
    # Then the other two are re-driven, the failed one is counted for the alarm and named
    (skipped,) = [r for r in ids if f"REQ#{r}" == reads[1]]
    assert sorted(redriven_requests(pipe)) == sorted(set(ids) - {skipped})
    assert (answer["unresolved_events"], answer["checks_failed"]) == (2, 1)
    assert '"SweepChecksFailed":[1.0]' in capsys.readouterr().out.replace(" ", "")
    (line,) = [r for r in caplog.records if r.getMessage() == "sweep check failed"]
    assert line.request_id == skipped
    assert line.error_code == "ProvisionedThroughputExceededException"


def test_a_window_whose_listing_fails_is_left_and_the_next_one_is_read(
    pipe: Pipeline,
) -> None:
    # Given an unresolved opt-out at its 2 h 15 check, and the listing of the older windows
    # (23 h, 8 h: read first) timing out
    (request_id,) = unresolved_opt_outs(pipe, 1)
    listings: list[int] = []

    def older_windows_time_out(params: dict[str, Any], **_: Any) -> None:
        if params.get("IndexName"):
            listings.append(1)
            if len(listings) <= 2:  # the first listing of each of the first two windows
                raise ReadTimeoutError(endpoint_url="https://dynamodb.invalid/")

    with session_hooks("sweep-listing") as register:
        register("provide-client-params.dynamodb.Query", older_windows_time_out)
        table = Table(boto3.client("dynamodb", region_name="us-east-1"), pipe.aws.table_name)
        report = Sweeper(table, SweepSettings(), clock=lambda: datetime.now(UTC) + LATER).sweep()
    # Then the run reads the younger windows and finds it
    assert report.unresolved == [request_id]
    assert report.windows_failed == [timedelta(hours=23), timedelta(hours=8)]


LAST_CHECK = timedelta(hours=23, minutes=5)  # in the last checkpoint's window (23 h, 12 min)
NEXT_RUN = timedelta(minutes=10)  # the schedule's period: the window has moved past it


def sweeper_at(pipe: Pipeline, moment: datetime) -> Sweeper:
    table = Table(boto3.client("dynamodb", region_name="us-east-1"), pipe.aws.table_name)
    return Sweeper(table, SweepSettings(), clock=lambda: moment)


def carried(pipe: Pipeline) -> list[dict[str, Any]]:
    """What failed reads left for the next runs (the windows' mark aside)."""
    return [i for i in pipe.items("SWEEP") if i["sk"] != "MARK"]


def test_a_request_whose_last_check_failed_is_checked_by_the_next_run(pipe: Pipeline) -> None:
    # Given two unresolved opt-outs at their 23 h check, and the read of the first throttled
    ids = unresolved_opt_outs(pipe, 2)
    now = datetime.now(UTC) + LAST_CHECK
    throttled: list[str] = []

    def throttle_first(params: dict[str, Any], **_: Any) -> None:
        pk = params.get("ExpressionAttributeValues", {}).get(":pk", {}).get("S", "")
        if pk.startswith("REQ#") and not throttled:
            throttled.append(pk.removeprefix("REQ#"))
            raise ClientError(
                {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "x"}},
                "Query",
            )

    with session_hooks("sweep-carry") as register:
        register("provide-client-params.dynamodb.Query", throttle_first)
        first = sweeper_at(pipe, now).sweep()
    (skipped,) = throttled
    assert first.checks_failed == [skipped] and first.unresolved == [r for r in ids if r != skipped]
    # When the next run comes, its 23 h window past both requests
    second = sweeper_at(pipe, now + NEXT_RUN).sweep()
    # Then it checks the one whose check failed and re-drives it (review s17 F8: the window
    # moved on and it was never checked again)
    assert second.unresolved == [skipped] and second.carried_checked == [skipped]
    assert sorted(redriven_requests(pipe)) == sorted(ids)
    # And it is carried no further: a third run checks nothing, writing nothing
    third = sweeper_at(pipe, now + 2 * NEXT_RUN).sweep()
    assert (third.events_checked, third.carried_checked) == (0, [])
    assert carried(pipe) == []


def test_a_window_whose_listing_failed_is_read_by_the_next_run(pipe: Pipeline) -> None:
    # Given an unresolved opt-out at its 23 h check, and that window's listing timing out
    (request_id,) = unresolved_opt_outs(pipe, 1)
    now = datetime.now(UTC) + LAST_CHECK
    listings: list[int] = []

    def first_listing_times_out(params: dict[str, Any], **_: Any) -> None:
        if params.get("IndexName"):
            listings.append(1)
            if len(listings) == 1:  # the 23 h window, read first
                raise ReadTimeoutError(endpoint_url="https://dynamodb.invalid/")

    with session_hooks("sweep-carry-window") as register:
        register("provide-client-params.dynamodb.Query", first_listing_times_out)
        first = sweeper_at(pipe, now).sweep()
    assert first.windows_failed == [timedelta(hours=23)] and first.unresolved == []
    # When the next run comes, its own 23 h window past the request
    second = sweeper_at(pipe, now + NEXT_RUN).sweep()
    # Then it lists the window the first run could not, and re-drives the request
    assert second.unresolved == [request_id]
    assert second.carried_windows == [timedelta(hours=23)]
    assert redriven_requests(pipe) == [request_id]
    assert carried(pipe) == []


# -- each checkpoint reads from where the last run's read ended ---------------------------

CHECKPOINTS = SweepSettings().checkpoints


def marks(pipe: Pipeline) -> dict[str, str]:
    (mark,) = [i for i in pipe.items("SWEEP") if i["sk"] == "MARK"]
    return {str(age): str(to) for age, to in mark["read_to"].items()}


def arrived_at(pipe: Pipeline, moments: list[datetime]) -> list[str]:
    """Unresolved opt-outs, one arrived at each moment."""
    ids = unresolved_opt_outs(pipe, len(moments))
    for request_id, moment in zip(ids, moments, strict=True):
        move_into_the_past(pipe, request_id, moment)
    return ids


def test_runs_that_start_late_leave_no_arrival_unread_at_any_checkpoint(pipe: Pipeline) -> None:
    # Given, at every checkpoint, an unresolved opt-out in the slice between the windows of a
    # run at 12:10 and of one 3 min late at 12:23 (review s18 T4: [12:10, 12:11) less the
    # age, which no 12-minute window from a run's own clock read; at 23 h, never again)
    t0 = datetime.now(UTC)
    ids = arrived_at(pipe, [t0 + timedelta(minutes=10, seconds=30) - age for age in CHECKPOINTS])
    # When runs come at 12:00, 12:10 and 12:23
    found: list[str] = []
    for offset in (0, 10, 23):
        found += sweeper_at(pipe, t0 + timedelta(minutes=offset)).sweep().unresolved
    # Then each was read at its checkpoint, by the late run, and each checkpoint's reads end
    # where the late run's window did
    assert sorted(found) == sorted(ids)
    late = t0 + timedelta(minutes=23)
    assert marks(pipe) == {str(int(a.total_seconds())): iso(late - a) for a in CHECKPOINTS}


@pytest.mark.parametrize("inside", ["scheduled", "retry"])
def test_two_overlapping_runs_leave_no_slice_unread_and_keep_the_furthest_mark(
    pipe: Pipeline, inside: str
) -> None:
    # Given a run at 12:00, the 12:10 run failed (none of its reads count), and an unresolved
    # opt-out at each checkpoint 4 min past 12:00's window: before the window of the 12:20 run
    # (12:08 less the age) and of 12:10's retry, 13 min late (12:11)
    t0 = datetime.now(UTC)
    sweeper_at(pipe, t0).sweep()
    ids = arrived_at(pipe, [t0 + timedelta(minutes=4) - age for age in CHECKPOINTS])
    runs = {"scheduled": t0 + timedelta(minutes=20), "retry": t0 + timedelta(minutes=23)}
    (outside,) = set(runs) - {inside}
    found: dict[str, list[str]] = {}

    def other_run_between(params: dict[str, Any], **_: Any) -> None:
        # The other run reads the same mark, and runs whole before this one writes its own
        if params["Item"]["sk"]["S"] == "MARK" and not found:
            found[inside] = []  # not re-entered by the other run's own write
            found[inside] = sweeper_at(pipe, runs[inside]).sweep().unresolved

    with session_hooks("sweep-overlap") as register:
        register("provide-client-params.dynamodb.PutItem", other_run_between)
        found[outside] = sweeper_at(pipe, runs[outside]).sweep().unresolved
    # Then every request was checked, and by both: each read from 12:00's mark
    assert set(ids) <= set(found[outside]) | set(found.get(inside, []))
    assert sorted(found[inside]) == sorted(found[outside]) == sorted(ids)
    # And the mark is the furthest either read to (the retry's), whichever wrote last
    furthest = runs["retry"]
    assert marks(pipe) == {str(int(a.total_seconds())): iso(furthest - a) for a in CHECKPOINTS}
    # And the next run reads from there: an arrival just after it is checked
    (after,) = arrived_at(pipe, [furthest + timedelta(minutes=1) - CHECKPOINTS[-1]])
    assert sweeper_at(pipe, t0 + timedelta(minutes=30)).sweep().unresolved == [after]


def test_a_first_run_reads_one_window_and_a_mark_too_old_is_read_back_to_its_limit(
    pipe: Pipeline, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    # Given, at the 23 h checkpoint, unresolved opt-outs 5 min and 50 min before a run's window
    # end, and one 2 h before it
    now = datetime.now(UTC) + LAST_CHECK
    end = now - timedelta(hours=23)
    five, fifty, hours = arrived_at(pipe, [end - timedelta(minutes=m) for m in (5, 50, 120)])
    # When the first run comes (no mark yet)
    first = sweeper_at(pipe, now).sweep()
    # Then it reads one 12-minute window, marks where its reads ended, and counts nothing lost
    assert first.unresolved == [five] and first.uncovered == []
    assert marks(pipe)["82800"] == iso(end)
    # When the mark is 3 h old (no run finished meanwhile), and the function runs
    mark = {"pk": "SWEEP", "sk": "MARK", "run": "earlier",
            "read_to": {"82800": iso(end - timedelta(hours=3))}}  # fmt: skip
    pipe.aws.dynamodb.put_item(TableName=pipe.aws.table_name, Item=serialize(mark))
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")
    monkeypatch.setenv("SWEEP_CHECKPOINTS_SECONDS", "82800")
    function = load_function("sweeper")
    monkeypatch.setattr(function.sweeper(), "_clock", lambda: now)
    answer = invoke(function, {"source": "aws.events", "detail": {}})
    # Then it reads back 1 h only, and on from there 24 minutes (two windows: the one 50 min
    # back), counts what lay before for the cut-short alarm, and says where
    assert (answer["unresolved_events"], answer["uncovered_windows"]) == (1, 1)
    assert sorted(redriven_requests(pipe)).count(fifty) == 1 and hours not in redriven_requests(
        pipe
    )
    assert '"SweepCutShort":[1.0]' in capsys.readouterr().out.replace(" ", "")
    (line,) = [r for r in caplog.records if r.getMessage().startswith("sweep window capped")]
    assert (line.unchecked_from, line.unchecked_to) == (
        iso(end - timedelta(hours=3)), iso(end - timedelta(hours=1)))  # fmt: skip
    assert marks(pipe)["82800"] == iso(end - timedelta(minutes=36))


def test_a_run_cut_short_keeps_what_it_read_and_the_marks_of_the_windows_it_did_not_reach(
    pipe: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a run that read every window, then three unresolved opt-outs
    t0 = datetime.now(UTC) + LATER - timedelta(minutes=10)
    sweeper_at(pipe, t0).sweep()
    before = marks(pipe)
    ids = unresolved_opt_outs(pipe, 3)
    # When the next run has time for two checks (cut in its 2 h 15 window)
    ticks = iter(range(100))
    monkeypatch.setattr(sweep_module, "monotonic", lambda t=ticks: float(next(t)))
    cut = sweeper_at(pipe, t0 + NEXT_RUN).sweep(deadline=1.5)
    assert cut.cut_short is not None and len(cut.unresolved) == 2
    # Then the windows it finished moved on, the one it was cut in moved to the start of the
    # slice it stopped in (the four 2-minute slices before it were listed), the younger did not
    after = marks(pipe)
    assert after["82800"] > before["82800"] and after["28800"] > before["28800"]
    slices = 4 * SweepSettings().slice
    assert after["8100"] == iso(datetime.fromisoformat(before["8100"]) + slices)
    assert after["900"] == before["900"]
    # And a run 12 min later (its own 12-minute window past them) checks the one left
    late = sweeper_at(pipe, t0 + NEXT_RUN + timedelta(minutes=12)).sweep()
    assert set(ids) - set(cut.unresolved) <= set(late.unresolved)


def test_how_far_back_a_window_follows_its_mark_is_set_by_the_environment(
    pipe: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SWEEP_MAX_WINDOW_SECONDS", "7200")
    assert load_function("sweeper").sweeper()._settings.max_window == timedelta(hours=2)


# -- a run cut short: its progress is kept, and a backlog drains (review s18 B2) --------------


def test_runs_cut_short_by_a_burst_keep_their_progress_and_drain_the_backlog(
    pipe: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the 15 min check alone, runs 10 min apart with time for three checks each, a burst
    # of five unresolved opt-outs in one run's 10 minutes, then two every 10 minutes (two
    # thirds of what a run checks)
    checkpoint = timedelta(minutes=15)
    settings = SweepSettings(checkpoints=(checkpoint,))
    start = datetime.now(UTC)  # the first run's window end: its mark
    burst = [start + timedelta(minutes=m) for m in (1, 3, 5, 7, 9)]
    steady = [start + timedelta(minutes=10 * k + m) for k in range(1, 7) for m in (2.5, 7.5)]
    first = Table(pipe.aws.dynamodb, pipe.aws.table_name)
    Sweeper(first, settings, clock=lambda: start + checkpoint).sweep()
    ids = arrived_at(pipe, burst + steady)
    listed: list[tuple[str, str]] = []

    def listing(params: dict[str, Any], **_: Any) -> None:
        if params.get("IndexName"):
            values = params["ExpressionAttributeValues"]
            listed.append((values[":low"]["S"], values[":high"]["S"]))

    # When the seven runs that follow each stop at their deadline
    checked: list[str] = []
    runs: list[Any] = []
    with session_hooks("sweep-drain") as register:
        register("provide-client-params.dynamodb.Query", listing)
        table = Table(boto3.client("dynamodb", region_name="us-east-1"), pipe.aws.table_name)
        for run in range(1, 8):
            ticks = iter(range(100))
            monkeypatch.setattr(sweep_module, "monotonic", lambda t=ticks: float(next(t)))
            now = start + checkpoint + timedelta(minutes=10 * run)
            listed.clear()
            report = Sweeper(table, settings, clock=lambda n=now: n).sweep(deadline=2.5)
            runs.append(report)
            checked += report.unresolved
            # No run reads more than two windows of arrivals (old: the cut window was read
            # again with 10 more minutes, run after run, up to the hour's cap)
            if listed:
                low, high = min(a for a, _ in listed), max(b for _, b in listed)
                span = datetime.fromisoformat(high) - datetime.fromisoformat(low)
                assert span <= 2 * settings.window
            for event in report.redrive_events:  # carried out: not in the next run's way
                pipe.aws.dynamodb.delete_item(TableName=pipe.aws.table_name, Key=serialize(
                    {"pk": keys.request_pk(event), "sk": keys.EVENT_SK}))  # fmt: skip
    # Then the first two were cut short, and between them the runs checked every request
    # once: none was read again, no slice was left unread, nothing was capped
    assert runs[0].cut_short is not None and runs[1].cut_short is not None
    assert all(r.uncovered == [] for r in runs)
    assert sorted(checked) == sorted(ids)
    # And the last runs keep up: the mark is where the last run's window ended
    assert runs[-1].cut_short is None
    assert marks(pipe) == {"900": iso(start + timedelta(minutes=70))}


def test_a_mark_behind_is_read_two_windows_a_run_until_it_catches_up(pipe: Pipeline) -> None:
    # Given, at the 23 h checkpoint, a mark 30 min behind a run's window end (two runs
    # failed) and an unresolved opt-out 5 min after the mark
    now = datetime.now(UTC) + LAST_CHECK
    end = now - timedelta(hours=23)
    mark = {"pk": "SWEEP", "sk": "MARK", "run": "earlier",
            "read_to": {"82800": iso(end - timedelta(minutes=30))}}  # fmt: skip
    pipe.aws.dynamodb.put_item(TableName=pipe.aws.table_name, Item=serialize(mark))
    (early,) = arrived_at(pipe, [end - timedelta(minutes=25)])
    settings = SweepSettings(checkpoints=(timedelta(hours=23),))
    table = Table(boto3.client("dynamodb", region_name="us-east-1"), pipe.aws.table_name)
    # When a run comes
    first = Sweeper(table, settings, clock=lambda: now).sweep()
    # Then it reads 24 minutes on from the mark (two windows), and the mark moves there
    assert first.unresolved == [early] and first.uncovered == []
    assert marks(pipe)["82800"] == iso(end - timedelta(minutes=6))
    # And the next run reads the rest with its own 10 minutes: the mark is caught up
    Sweeper(table, settings, clock=lambda: now + NEXT_RUN).sweep()
    assert marks(pipe)["82800"] == iso(end + NEXT_RUN)


# -- carried items and the mark under overlapping runs (review s18 B8, B9) ------------------


def test_a_carried_check_does_not_clear_a_newer_failure_an_overlapping_run_carried(
    pipe: Pipeline,
) -> None:
    # Given an unresolved opt-out whose 23 h check failed (carried)
    (request_id,) = unresolved_opt_outs(pipe, 1)
    now = datetime.now(UTC) + LAST_CHECK
    throttled: list[str] = []

    def throttle_once(params: dict[str, Any], **_: Any) -> None:
        pk = params.get("ExpressionAttributeValues", {}).get(":pk", {}).get("S", "")
        if pk == f"REQ#{request_id}" and not throttled:
            throttled.append(pk)
            raise ClientError(
                {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "x"}},
                "Query",
            )

    with session_hooks("sweep-carry-newer") as register:
        register("provide-client-params.dynamodb.Query", throttle_once)
        assert sweeper_at(pipe, now).sweep().checks_failed == [request_id]
    (old,) = carried(pipe)
    # When the next run checks it, while an overlapping run carries a newer failed check of
    # the same request (at another checkpoint) under the same key
    newer = {**old, "failed_at": iso(now + NEXT_RUN), "checkpoint_seconds": 28800}

    def overlapping_run_carries(params: dict[str, Any], **_: Any) -> None:
        pk = params.get("ExpressionAttributeValues", {}).get(":pk", {}).get("S", "")
        if pk == f"REQ#{request_id}" and not throttled[1:]:
            throttled.append(pk)
            pipe.aws.dynamodb.put_item(TableName=pipe.aws.table_name, Item=serialize(newer))

    with session_hooks("sweep-carry-overlap") as register:
        register("provide-client-params.dynamodb.Query", overlapping_run_carries)
        second = sweeper_at(pipe, now + NEXT_RUN).sweep()
    # Then its own carried check is done, and the newer one stands for the next run (an
    # unconditional delete lost it, uncounted)
    assert second.carried_checked == [request_id]
    assert [(i["sk"], i["failed_at"]) for i in carried(pipe)] == [(old["sk"], newer["failed_at"])]


def test_a_mark_that_loses_every_race_is_counted_as_a_failed_write(pipe: Pipeline) -> None:
    # Given runs that each write the mark first, just before this run's every try
    now = datetime.now(UTC) + LAST_CHECK
    sweeper_at(pipe, now).sweep()
    others: list[int] = []

    def another_run_wrote_first(params: dict[str, Any], **_: Any) -> None:
        if params.get("Item", {}).get("sk", {}).get("S") == "MARK":
            others.append(1)
            mark = {**deserialized_mark(pipe), "run": f"other-{len(others)}"}
            pipe.aws.dynamodb.put_item(TableName=pipe.aws.table_name, Item=serialize(mark))

    with session_hooks("sweep-mark-races") as register:
        register("provide-client-params.dynamodb.PutItem", another_run_wrote_first)
        report = sweeper_at(pipe, now + NEXT_RUN).sweep()
    # Then, its three tries lost, the run counts its mark unwritten (SweepChecksFailed), as
    # the docs say (review s18 B9: only logged)
    assert len(others) == sweep_module.MARK_TRIES
    assert report.mark_unwritten


def deserialized_mark(pipe: Pipeline) -> dict[str, Any]:
    (mark,) = [i for i in pipe.items("SWEEP") if i["sk"] == "MARK"]
    return dict(mark)
