"""rate_limit_per_second, enforced: a worker invocation, one of at most MAX_CONCURRENCY at once,
starts its vendor requests at least MAX_CONCURRENCY / rate seconds apart, and a job whose turn
comes too late for the invocation's budget comes back as a batch item failure with nothing
written. Virtual time: the pace and the Lambda context read the test's clock, and each vendor
answer takes a little of it."""

import itertools
import json
import os
from pathlib import Path
from typing import Any

import pytest

from optout.connectors import http as http_module
from optout.connectors.braze import BrazeConnector
from optout.connectors.webhook import WebhookConnector
from tests.integration.test_worker import (  # noqa: F401 - the fixture
    EMAIL,
    Stack,
    failed_ids,
    stack,
)
from tests.integration.test_worker_deadline import FUNCTION_TIMEOUT, Clock, VirtualContext
from tests.support.lambdas import load_function

ANSWER_SECONDS = 0.05  # each vendor answer, on the virtual clock


class Vendor:
    """When each request went out, on the virtual clock."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.started: list[float] = []


def paced(
    stack: Stack,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    *,
    rate: float,
    concurrency: int,
) -> Vendor:
    """The webhook system at `rate` a second, this worker one of `concurrency`, on a clock."""
    systems_file = Path(os.environ["SYSTEMS_CONFIG"])  # the stack fixture's
    config = json.loads(systems_file.read_text(encoding="utf-8"))
    for system in config["systems"]:
        system["rate_limit_per_second"] = rate
    systems_file.write_text(json.dumps(config), encoding="utf-8")
    monkeypatch.setenv("MAX_CONCURRENCY", str(concurrency))
    # One call at a time, so each request's start is one point on the one clock.
    monkeypatch.setattr(WebhookConnector, "parallel_calls", 1)
    stack.worker = load_function("worker")
    vendor = Vendor(Clock())
    services = stack.worker.services()
    services.pace_clock = lambda: vendor.clock.now
    services.pace_sleep = vendor.clock.advance
    real_once = http_module.HttpClient._once

    def timed_once(self: http_module.HttpClient, *args: Any) -> http_module.HttpResponse:
        vendor.started.append(vendor.clock.now)
        vendor.clock.advance(ANSWER_SECONDS)
        return real_once(self, *args)

    monkeypatch.setattr(http_module.HttpClient, "_once", timed_once)
    return vendor


def webhook_jobs(stack: Stack, names: list[str]) -> None:  # noqa: F811
    for name in names:
        stack.put_request(name, ["webhook"], EMAIL)
        stack.send("webhook", name)


NAMES = [f"r{n}" for n in range(6)]


def test_requests_to_a_vendor_start_max_concurrency_over_rate_seconds_apart(
    stack: Stack,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given the webhook at 4 requests a second shared by at most 2 invocations, and 6 jobs
    vendor = paced(stack, monkeypatch, rate=4, concurrency=2)
    webhook_jobs(stack, NAMES)
    # When the worker delivers them in one invocation
    answer, _ = stack.run("webhook", VirtualContext(clock=vendor.clock))
    # Then every job is done, and its 6 requests started at least 2 / 4 = 0.5 s apart, the
    # first 0.5 s after the invocation started (its slot's last request may have been just
    # before, from another container)
    assert failed_ids(answer) == set()
    assert [stack.job(n, "webhook")["status"] for n in NAMES] == ["done"] * 6
    assert len(vendor.started) == 6
    assert vendor.started[0] >= 0.5 - 1e-9
    gaps = [later - earlier for earlier, later in itertools.pairwise(vendor.started)]
    assert min(gaps) >= 0.5 - 1e-9
    # And the next invocation of this container waits 0.5 s from its own start too
    webhook_jobs(stack, ["r6"])
    begun = vendor.clock.now
    stack.run("webhook", VirtualContext(clock=vendor.clock))
    assert vendor.started[6] >= begun + 0.5 - 1e-9


def test_jobs_whose_turn_comes_after_the_budget_come_back_with_nothing_written(
    stack: Stack,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given the webhook at 0.2 requests a second over 2 invocations (one every 10 s each), and
    # 6 jobs in one batch, with a 30 s function timeout (3 s kept for the writes)
    vendor = paced(stack, monkeypatch, rate=0.2, concurrency=2)
    webhook_jobs(stack, NAMES)
    # When the worker delivers them
    answer, messages = stack.run("webhook", VirtualContext(clock=vendor.clock))
    # Then two went out (at 10 and 20 s: the next turn, at 30 s, is past the budget)...
    assert vendor.clock.now < FUNCTION_TIMEOUT
    assert len(vendor.started) == 2
    jobs = {n: stack.job(n, "webhook") for n in NAMES}
    done = {n for n, job in jobs.items() if job["status"] == "done"}
    assert len(done) == 2
    # ... and the other four come back as batch item failures, never failed, never done, with
    # no attempt, receipt or retry time written
    by_request = {json.loads(m["Body"])["request_id"]: m["MessageId"] for m in messages}
    assert failed_ids(answer) == {by_request[n] for n in NAMES if n not in done}
    for name in set(NAMES) - done:
        job = jobs[name]
        assert job["status"] == "pending" and int(job["attempts"]) == 0
        assert "receipt" not in job and "retry_at" not in job


def person(n: int, emails: int) -> list[dict[str, str]]:
    """A customer id and `emails` emails: one Braze job carries its cluster's every email."""
    return [{"type": "customer_id", "key": f"c{n}", "value": f"cust-{n}"}] + [
        {"type": "email", "key": f"e{n}-{k}", "value": f"p{n}.m{k}@example.com"}
        for k in range(emails)
    ]


def test_a_job_whose_calls_cannot_fit_one_invocation_fails_on_its_first_receive(
    stack: Stack,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given Braze at its shipped 4 a second over MaxConcurrency 2 (0.5 s apart, 25 s of vendor
    # calls an invocation), one person with 60 emails (63 calls: 31.5 s) and one with 6 (8)
    vendor = paced(stack, monkeypatch, rate=4, concurrency=2)
    monkeypatch.setattr(BrazeConnector, "parallel_calls", 1)
    stack.put_request("big", ["braze"], person(0, 60))
    stack.put_request("small", ["braze"], person(1, 6))
    stack.send("braze", "big")
    stack.send("braze", "small")
    # When the worker receives them
    answer, _ = stack.run("braze", VirtualContext(clock=vendor.clock))
    # Then the big job fails at once, with no vendor call and a reason naming the fix (not 8
    # receives each starting the same 52 calls, then "retries exhausted"); the other is done
    big, small = stack.job("big", "braze"), stack.job("small", "braze")
    assert big["status"] == "failed" and int(big.get("attempts", 0)) == 0
    assert big["receipt"]["error"] == (
        "63 vendor calls at rate_limit_per_second cannot start within one invocation: "
        "raise the rate or the worker's timeout, then replay"
    )
    assert small["status"] == "done"
    assert len(vendor.started) == 8
    assert failed_ids(answer) == set()


def test_a_job_too_big_for_its_pace_is_counted_once_for_the_replay(
    stack: Stack,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given a Braze job too big for one invocation at its pace, failed on its first receive
    # and counted as needing the operator's replay
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")
    vendor = paced(stack, monkeypatch, rate=4, concurrency=2)
    monkeypatch.setattr(BrazeConnector, "parallel_calls", 1)
    stack.put_request("big", ["braze"], person(0, 60))
    stack.send("braze", "big")
    stack.run("braze", VirtualContext(clock=vendor.clock))
    assert stack.job("big", "braze")["status"] == "failed"
    assert '"FailedJobsNeedReplay":[1.0]' in capsys.readouterr().out.replace(" ", "")
    # When a later copy of its message comes (an SQS duplicate, a DLQ redrive)
    stack.send("braze", "big")
    stack.run("braze", VirtualContext(clock=vendor.clock))
    # Then it is not counted again: once per failure (review s18 B6: twice)
    assert "FailedJobsNeedReplay" not in capsys.readouterr().out
    assert vendor.started == []
