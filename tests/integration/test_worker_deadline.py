"""A slow vendor and the worker's function timeout (30 s): vendor calls stop before it, a call
cut short is an attempt recorded with its receipt, and a job of the batch not started in time
(another system's, or one behind others of its own) comes back as a batch item failure with
nothing written; the messages on their last receive go first; a status check not started
leaves no lease. Virtual time: each vendor answer "takes" some seconds on a clock the Lambda
context reads, and the invocation is killed past 30 s, as Lambda does."""

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from optout.connectors import http as http_module
from optout.delivery import job_store
from tests.integration.test_worker import (  # noqa: F401 - the fixture
    CUSTOMER,
    EMAIL,
    Stack,
    failed_ids,
    stack,
)
from tests.support.lambdas import FakeLambdaContext, load_function

ANSWER_SECONDS = 9.5  # under the vendor-call timeout (10 s): each try waits for its answer
FUNCTION_TIMEOUT = 30.0


class Killed(BaseException):
    """Lambda ends the invocation at its timeout: nothing after this point runs."""


@dataclass
class Clock:
    now: float = 0.0

    def advance(self, seconds: float) -> None:
        self.now += seconds
        if self.now > FUNCTION_TIMEOUT:
            raise Killed


@dataclass
class VirtualContext(FakeLambdaContext):
    clock: Clock = field(default_factory=Clock)

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((FUNCTION_TIMEOUT - self.clock.now) * 1000))


@pytest.fixture
def slow(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> Iterator[Clock]:  # noqa: F811
    """Every vendor answer takes 9.5 s (a try whose socket timeout is shorter times out at
    it); a Braze lookup (users/export) succeeds, every other call answers 503."""
    clock = Clock()
    real_once = http_module.HttpClient._once

    def slow_once(
        self: http_module.HttpClient,
        method: str,
        url: str,
        step: str,
        headers: dict[str, str] | None,
        body: bytes | None,
        timeout: float,
    ) -> http_module.HttpResponse:
        if timeout < ANSWER_SECONDS:
            clock.advance(timeout)
            raise http_module.TimedOut(step)
        clock.advance(ANSWER_SECONDS)
        if "users/export" in url:
            return real_once(self, method, url, step, headers, body, timeout)
        return http_module.HttpResponse(503, {}, b"")

    monkeypatch.setenv("HTTP_ATTEMPTS", "3")  # the deployed default
    monkeypatch.setenv("HTTP_TIMEOUT_SECONDS", "10")
    monkeypatch.setattr(http_module.HttpClient, "_once", slow_once)
    stack.worker.services().http._sleep = clock.advance
    yield clock


def test_a_slow_vendor_call_ends_before_the_timeout_as_an_attempt_with_its_receipt(
    stack: Stack,  # noqa: F811
    slow: Clock,
) -> None:
    # Given a Braze job whose lookup answers in 9.5 s and whose update answers 503 in 9.5 s
    stack.put_request("r1", ["braze"], CUSTOMER)
    stack.send("braze", "r1")
    # When the worker runs it within a 30 s function timeout
    answer, messages = stack.run("braze", VirtualContext(clock=slow))
    # Then it returns before the timeout, the message is retried, and the job records the
    # attempt with its receipt and a retry time
    assert slow.now <= FUNCTION_TIMEOUT
    assert failed_ids(answer) == {messages[0]["MessageId"]}
    job = stack.job("r1", "braze")
    assert (job["status"], job["attempts"]) == ("pending", 1)
    assert job["receipt"]["error"].startswith("braze users/track")
    assert "retry_at" in job


def test_a_job_not_started_before_the_deadline_is_retried_with_nothing_written(
    stack: Stack,  # noqa: F811
    slow: Clock,
) -> None:
    # Given one batch holding a Braze job and then a webhook job (the local worker takes every
    # system), with vendors this slow
    stack.put_request("r1", ["braze"], CUSTOMER)
    stack.put_request("r2", ["webhook"], EMAIL)
    stack.send("braze", "r1")
    stack.send("braze", "r2", {"job_id": "r2:webhook", "request_id": "r2", "system": "webhook"})
    # When the worker runs the batch within a 30 s function timeout
    answer, messages = stack.run("braze", VirtualContext(clock=slow))
    # Then both messages come back; the job that ran out of time has its attempt, the other
    # was never started: no attempt, no receipt
    assert slow.now <= FUNCTION_TIMEOUT
    assert failed_ids(answer) == {m["MessageId"] for m in messages}
    jobs = [stack.job("r1", "braze"), stack.job("r2", "webhook")]
    attempts = sorted(int(j.get("attempts", 0)) for j in jobs)
    assert attempts == [0, 1]
    untouched = next(j for j in jobs if int(j.get("attempts", 0)) == 0)
    assert untouched["status"] == "pending" and "receipt" not in untouched


class Answers:
    """Every vendor call answers as the sandbox does, after `seconds` of virtual time."""

    def __init__(self, clock: Clock, seconds: float) -> None:
        self.clock, self.seconds, self.calls = clock, seconds, 0


@pytest.fixture
def timed(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> Answers:  # noqa: F811
    # Two answers take the vendor calls' 25 s (the 30 s less the 5 s kept for the writes)
    answers = Answers(Clock(), 12.5)
    real_once = http_module.HttpClient._once

    def timed_once(
        self: http_module.HttpClient,
        method: str,
        url: str,
        step: str,
        headers: dict[str, str] | None,
        body: bytes | None,
        timeout: float,
    ) -> http_module.HttpResponse:
        answers.calls += 1
        answers.clock.advance(answers.seconds)
        return real_once(self, method, url, step, headers, body, timeout)

    monkeypatch.setattr(http_module.HttpClient, "_once", timed_once)
    return answers


def last_receive_is(stack: Stack, monkeypatch: pytest.MonkeyPatch, count: int) -> None:  # noqa: F811
    monkeypatch.setenv("MAX_RECEIVE_COUNT", str(count))
    stack.worker = load_function("worker")


def webhook_jobs(stack: Stack, names: list[str]) -> None:  # noqa: F811
    for name in names:
        stack.put_request(name, ["webhook"], EMAIL)
        stack.send("webhook", name)


def test_a_job_behind_others_of_its_batch_that_never_started_is_not_an_attempt(
    stack: Stack,  # noqa: F811
    timed: Answers,
) -> None:
    # Given three webhook jobs in one batch, each vendor answer taking 12.5 s of a 30 s function
    webhook_jobs(stack, ["r0", "r1", "r2"])
    # When the worker runs the batch
    answer, _ = stack.run("webhook", VirtualContext(clock=timed.clock))
    # Then two were called and done; the third, never called, comes back with nothing written:
    # no attempt, no receipt that lists its types as attempted
    assert timed.calls == 2
    jobs = [stack.job(name, "webhook") for name in ("r0", "r1", "r2")]
    assert sorted(j["status"] for j in jobs) == ["done", "done", "pending"]
    (untouched,) = [j for j in jobs if j["status"] == "pending"]
    assert int(untouched["attempts"]) == 0 and "receipt" not in untouched
    assert "retry_at" not in untouched
    assert len(failed_ids(answer)) == 1


def test_a_job_on_its_last_receive_is_called_first_in_its_batch(
    stack: Stack,  # noqa: F811
    timed: Answers,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a webhook job whose message is back for its last allowed receive (2 here), and two
    # jobs received for the first time, ahead of it in the batch
    last_receive_is(stack, monkeypatch, 2)
    webhook_jobs(stack, ["last"])
    stack.fast_forward("webhook", stack.receive("webhook"))
    webhook_jobs(stack, ["r0", "r1"])
    receive = stack.receive
    monkeypatch.setattr(stack, "receive", lambda system: list(reversed(receive(system))))
    # When the worker runs the batch, with time for two vendor calls
    stack.run("webhook", VirtualContext(clock=timed.clock))
    # Then the job on its last chance was called (and is done), not failed without a call
    assert timed.calls == 2
    assert stack.job("last", "webhook")["status"] == "done"


def test_a_job_not_started_on_its_last_receive_is_not_failed_without_a_vendor_call(
    stack: Stack,  # noqa: F811
    timed: Answers,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given three webhook jobs on their last allowed receive, with time for two vendor calls
    last_receive_is(stack, monkeypatch, 1)
    webhook_jobs(stack, ["r0", "r1", "r2"])
    # When the worker runs the batch
    answer, _ = stack.run("webhook", VirtualContext(clock=timed.clock))
    # Then the job never called stays pending, with no attempt and no failure, and its message
    # goes back to the queue (from which SQS moves it to the DLQ, where its alarm is)
    jobs = [stack.job(name, "webhook") for name in ("r0", "r1", "r2")]
    assert sorted(j["status"] for j in jobs) == ["done", "done", "pending"]
    (untouched,) = [j for j in jobs if j["status"] == "pending"]
    assert int(untouched["attempts"]) == 0 and "receipt" not in untouched
    assert len(failed_ids(answer)) == 1


def submitted_with_a_check_queued(
    stack: Stack,  # noqa: F811
    timed: Answers,
    monkeypatch: pytest.MonkeyPatch,
) -> list[dict[str, Any]]:
    """r1 submitted to Google Ads with its status check queued, then a send of r2 on the same
    queue whose vendor call takes the vendor calls' 25 s of the 30 s function: the next batch
    holds both."""
    scheduled = stack.checks_without_delay(monkeypatch)
    timed.seconds = 0.0
    stack.put_request("r1", ["google_ads"], EMAIL)
    stack.send("google_ads", "r1")
    stack.run("google_ads")
    assert stack.job("r1", "google_ads")["status"] == "submitted" and len(scheduled) == 1
    stack.put_request("r2", ["google_ads"], EMAIL)
    stack.send("google_ads", "r2")
    timed.clock, timed.seconds = Clock(), 25.0
    return scheduled


def test_a_status_check_not_started_leaves_no_lease_and_runs_on_its_return(
    stack: Stack,  # noqa: F811
    timed: Answers,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Given a submitted job's status check in one batch with a send that takes the time
    submitted_with_a_check_queued(stack, timed, monkeypatch)
    before = stack.job("r1", "google_ads")
    # When the worker runs the batch, then the check's message is back
    answer, messages = stack.run("google_ads", VirtualContext(clock=timed.clock))
    (check,) = [m for m in messages if '"confirm"' in m["Body"]]
    after = stack.job("r1", "google_ads")
    timed.clock, timed.seconds = Clock(), 0.0
    stack.fast_forward("google_ads", [check])
    calls = timed.calls
    stack.run("google_ads")
    # Then the check not started wrote nothing (no lease, the job as it was) and came back;
    # on its return it was carried out, not refused as "job leased elsewhere"
    assert check["MessageId"] in failed_ids(answer)
    assert "lease_until" not in after and after["updated_at"] == before["updated_at"]
    assert timed.calls > calls
    assert "job leased elsewhere" not in str([r.__dict__ for r in caplog.records])


def test_a_status_check_not_started_on_its_last_receive_is_scheduled_afresh(
    stack: Stack,  # noqa: F811
    timed: Answers,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given messages allowed one receive, and a submitted job's status check in one batch
    # with a send that takes the time
    last_receive_is(stack, monkeypatch, 1)
    scheduled = submitted_with_a_check_queued(stack, timed, monkeypatch)
    # When the worker runs the batch
    answer, messages = stack.run("google_ads", VirtualContext(clock=timed.clock))
    # Then the check's message is acknowledged (not left to the DLQ) and the same check is
    # sent again as a new message, with its own receives; the job is still submitted
    (check,) = [m for m in messages if '"confirm"' in m["Body"]]
    assert check["MessageId"] not in failed_ids(answer)
    ours = [s["body"]["confirm"] for s in scheduled if s["body"]["request_id"] == "r1"]
    assert ours == [1, 1]
    assert stack.job("r1", "google_ads")["status"] == "submitted"


def test_a_status_check_whose_call_cannot_start_after_its_lease_gives_the_lease_back(
    stack: Stack,  # noqa: F811
    timed: Answers,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a submitted job's status check in one batch with a send that leaves 3 s of the
    # vendor calls' 25, and a lease write that takes 2.5 s of them (the check is leased, then
    # its call has no time)
    submitted_with_a_check_queued(stack, timed, monkeypatch)
    timed.seconds = 22.0
    before = stack.job("r1", "google_ads")
    real_claim = job_store.claim_confirm

    def slow_claim(*args: Any, **kwargs: Any) -> bool:
        timed.clock.advance(2.5)
        return real_claim(*args, **kwargs)

    monkeypatch.setattr(job_store, "claim_confirm", slow_claim)
    # When the worker runs the batch
    answer, messages = stack.run("google_ads", VirtualContext(clock=timed.clock))
    # Then the check's message comes back, and the job is as it was: no lease left behind
    (check,) = [m for m in messages if '"confirm"' in m["Body"]]
    after = stack.job("r1", "google_ads")
    assert check["MessageId"] in failed_ids(answer)
    assert "lease_until" not in after and after["updated_at"] == before["updated_at"]
    assert after["confirms"] == before["confirms"] and after["receipt"] == before["receipt"]
