"""A slow vendor and the worker's function timeout (30 s): vendor calls stop before it, a call
cut short is an attempt recorded with its receipt, and a job of the batch not started in time
comes back as a batch item failure with nothing written. Virtual time: each vendor answer
"takes" 9.5 s on a clock the Lambda context reads, and the invocation is killed past 30 s, as
Lambda does."""

from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from optout.connectors import http as http_module
from tests.integration.test_worker import (  # noqa: F401 - the fixture
    CUSTOMER,
    EMAIL,
    Stack,
    failed_ids,
    stack,
)
from tests.support.lambdas import FakeLambdaContext

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
