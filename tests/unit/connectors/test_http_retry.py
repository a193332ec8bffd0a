"""One vendor call tried again within the attempt: which failures, how long it waits, when not."""

import json
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from types import FrameType
from typing import Any

import pytest

from local.sandbox.base import Sandbox
from local.sandbox.server import SandboxServer
from optout.connectors import http as http_module
from optout.connectors.errors import DeliveryError
from optout.connectors.http import HttpClient, RetryPolicy
from optout.time_budget import TimeBudget
from tests.unit.connectors.conftest import secret_for

TIMEOUT = 2.0


@pytest.fixture
def server():
    braze = Sandbox("hook", "braze", secret_for("braze"), timeout_delay_seconds=3.0)
    with SandboxServer({"hook": braze}) as running:
        yield running


def client(attempts: int, waits: list[float], **policy: float) -> HttpClient:
    return HttpClient(TIMEOUT, RetryPolicy(attempts=attempts, **policy), sleep=waits.append)


def fail_every_second_call(server: SandboxServer, **plan: object) -> None:
    """The plan's first call succeeds: spend it, so the next call fails and the one after not."""
    server.sandboxes["hook"].set_fault_spec({"rate": 0.5, **plan})
    post(server, HttpClient(TIMEOUT))


def post(server: SandboxServer, http: HttpClient) -> int:
    headers = {
        "authorization": "Bearer " + secret_for("braze")["api_key"],
        "content-type": "application/json",
    }
    body = {"attributes": [{"external_id": "c1", "flag": True, "_update_existing_only": True}]}
    url = server.base_url("hook") + "/users/track"
    return http.send(
        "POST", url, step="hook", headers=headers, body=json.dumps(body).encode()
    ).status


def test_a_503_is_tried_again_and_the_second_answer_returned(server):
    fail_every_second_call(server, status=503)
    waits: list[float] = []
    http = client(3, waits)

    assert post(server, http) == 201
    assert (len(server.sandboxes["hook"].recorded()), http.retried, len(waits)) == (3, 1, 1)


def test_a_short_retry_after_is_waited_for_before_the_next_try(server):
    fail_every_second_call(server, status=429, retry_after=1)
    waits: list[float] = []

    assert post(server, client(3, waits)) == 201
    assert waits == [1.0]


def test_a_retry_after_longer_than_the_policy_waits_goes_back_to_the_queue(server):
    fail_every_second_call(server, status=429, retry_after=60)
    waits: list[float] = []

    with pytest.raises(DeliveryError) as raised:
        post(server, client(3, waits, max_wait_seconds=2.0))

    assert (raised.value.retryable, raised.value.retry_after, waits) == (True, 60.0, [])


def test_the_last_try_s_failure_is_reported(server):
    server.sandboxes["hook"].set_faults(1.0, 503)
    waits: list[float] = []

    with pytest.raises(DeliveryError) as raised:
        post(server, client(3, waits))

    assert raised.value.retryable
    assert len(server.sandboxes["hook"].recorded()) == 3
    assert len(waits) == 2 and waits[0] <= 0.2 < waits[1] * 2  # doubling back-off


def test_a_permanent_400_is_not_tried_again(server):
    server.sandboxes["hook"].set_faults(1.0, 400)

    with pytest.raises(DeliveryError) as raised:
        post(server, client(3, []))

    assert not raised.value.retryable
    assert len(server.sandboxes["hook"].recorded()) == 1


def test_a_second_timeout_is_left_to_the_queue(server):
    server.sandboxes["hook"].set_faults(1.0, "timeout")

    with pytest.raises(DeliveryError) as raised:
        post(server, HttpClient(0.5, RetryPolicy(attempts=3), sleep=lambda _: None))

    assert raised.value.retryable and "timed out" in str(raised.value)
    assert len(server.sandboxes["hook"].recorded()) == 2  # not the third try the policy allows


def _switch_threads_at_every_step_of(module_file: str) -> Callable[..., Any]:
    """A thread trace that hands the GIL over before each bytecode run in `module_file`: the
    threads' steps there interleave as finely as they can (a read-modify-write of a shared
    counter is no longer one uninterrupted stretch), and nowhere else is slowed."""

    def trace(frame: FrameType, event: str, _arg: object) -> Callable[..., Any] | None:
        if frame.f_code.co_filename != module_file:
            return None
        frame.f_trace_opcodes = True
        if event == "opcode":
            time.sleep(0)
        return trace

    return trace


def test_retries_made_at_once_by_many_threads_are_all_counted(server):
    # Given one client shared by ten threads (a batch's webhook calls run on a pool), a vendor
    # failing every call, and the threads' steps in the client interleaved as finely as can be
    server.sandboxes["hook"].set_fault_spec({"rate": 1.0, "status": 503})
    http = client(4, [])
    threads, start = 10, threading.Barrier(10)

    def call(_index: int) -> None:
        sys.settrace(_switch_threads_at_every_step_of(http_module.__file__))
        try:
            start.wait()
            with pytest.raises(DeliveryError):
                post(server, http)
        finally:
            sys.settrace(None)

    # When each thread's call is tried four times
    with ThreadPoolExecutor(max_workers=threads) as pool:
        list(pool.map(call, range(threads)))

    # Then every retry is counted: three per call
    assert len(server.sandboxes["hook"].recorded()) == threads * 4
    assert http.retried == threads * 3


def test_a_call_with_no_time_left_is_not_started() -> None:
    # Given a client whose budget has half a second left
    http = HttpClient(10)
    # When a call is made within it
    with http.bounded_by(TimeBudget(lambda: 0.5)), pytest.raises(DeliveryError) as raised:
        http.send("POST", "http://127.0.0.1:9/never", step="vendor update")
    # Then it fails as retryable "out of time" without opening a connection
    assert raised.value.retryable and raised.value.reason == "vendor update: out of time"


def test_the_socket_timeout_is_at_most_the_time_left(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a client with a 10 s timeout and 4 s left
    seen: list[float] = []

    def once(*args: Any) -> http_module.HttpResponse:
        seen.append(args[-1])
        return http_module.HttpResponse(200, {}, b"")

    monkeypatch.setattr(HttpClient, "_once", once)
    http = HttpClient(10)
    # When a call is made
    with http.bounded_by(TimeBudget(lambda: 4.0)):
        http.send("GET", "http://127.0.0.1:9/x", step="lookup")
    # Then its try waits at most 4 s
    assert seen == [4.0]
