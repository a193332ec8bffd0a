"""One vendor call tried again within the attempt: which failures, how long it waits, when not."""

import http.server
import json
import random
import sys
import threading
import time
import urllib.error
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

import pytest

from local.sandbox.base import Sandbox
from local.sandbox.server import SandboxServer
from optout.connectors import http as http_module
from optout.connectors.errors import DeliveryError
from optout.connectors.http import HttpClient, HttpResponse, RetryPolicy, json_body, status_error
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


# -- scripted answers (no network): what each try is sent with, what the caller gets --------


class Lowest(random.Random):
    """Back-off jitter at the bottom of its range."""

    def uniform(self, a: float, b: float) -> float:
        return a


@dataclass
class Vendor:
    """Answers each try with the next of `answers` (a status, an answer, or a failure to
    raise) and records the socket timeout each try was given."""

    answers: list[int | HttpResponse | DeliveryError] = field(default_factory=list)
    timeouts: list[float] = field(default_factory=list)


@pytest.fixture
def vendor(monkeypatch: pytest.MonkeyPatch) -> Vendor:
    scripted = Vendor()

    def once(self: HttpClient, *args: Any) -> HttpResponse:
        scripted.timeouts.append(args[-1])
        answer = scripted.answers.pop(0)
        if isinstance(answer, DeliveryError):
            raise answer
        return answer if isinstance(answer, HttpResponse) else HttpResponse(answer, {}, b"")

    monkeypatch.setattr(HttpClient, "_once", once)
    return scripted


def call(http: HttpClient, budget: TimeBudget | None = None) -> HttpResponse:
    with http.bounded_by(budget or TimeBudget.unbounded()):
        return http.send("POST", "https://vendor.example/x", step="update")


@pytest.mark.parametrize("left", [1.0, 1.5])
def test_a_try_with_a_second_or_more_left_is_sent(vendor: Vendor, left: float) -> None:
    vendor.answers.append(200)
    assert call(HttpClient(10), TimeBudget(lambda: left)).status == 200
    assert vendor.timeouts == [left]


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 599])
def test_a_timeout_a_throttle_and_every_5xx_are_tried_again(vendor: Vendor, status: int) -> None:
    vendor.answers.extend([status, 200])
    waits: list[float] = []
    assert call(client(2, waits)).status == 200
    assert len(vendor.timeouts) == 2


@pytest.mark.parametrize("status", [300, 304, 400, 401, 404, 409, 422, 499])
def test_other_answers_are_refusals_reported_at_once(vendor: Vendor, status: int) -> None:
    vendor.answers.extend([status, 200])
    with pytest.raises(DeliveryError) as raised:
        call(client(3, [], base_seconds=0.0))
    assert (raised.value.retryable, raised.value.http_status) == (False, status)
    assert raised.value.auth == (status == 401)  # only a 401 says the credential is refused
    assert len(vendor.timeouts) == 1


@pytest.mark.parametrize("status", [200, 201, 204, 299])
def test_every_2xx_is_an_answer(vendor: Vendor, status: int) -> None:
    vendor.answers.append(status)
    assert call(client(3, [])).status == status


def test_a_refusal_s_retry_after_is_not_a_wait() -> None:
    # A 400 with Retry-After stays final: the queue must not read a wait into it
    answer = HttpResponse(400, {"retry-after": "30"}, b"")
    assert status_error("update", answer).retry_after is None
    assert status_error("update", HttpResponse(503, {"retry-after": "30"}, b"")).retry_after == 30


def test_the_back_off_starts_at_half_the_base_and_doubles(vendor: Vendor) -> None:
    vendor.answers.extend([503, 503, 503, 200])
    waits: list[float] = []
    http = HttpClient(TIMEOUT, RetryPolicy(attempts=4, base_seconds=0.2), sleep=waits.append,
                      rng=Lowest())  # fmt: skip
    assert call(http).status == 200
    assert waits == pytest.approx([0.1, 0.2, 0.4])


@pytest.mark.parametrize(("asked", "answer", "waits"), [("2", 200, [2.0]), ("3", 429, [])])
def test_the_worker_s_policy_waits_for_a_retry_after_of_2_s_at_most(
    vendor: Vendor, asked: str, answer: int, waits: list[float]
) -> None:
    # The worker's policy: attempts from its settings, the rest the defaults. A longer wait
    # returns the 429 (its Retry-After then goes to the queue's back-off)
    vendor.answers.extend([HttpResponse(429, {"retry-after": asked}, b""), 200])
    waited: list[float] = []
    http = HttpClient(TIMEOUT, RetryPolicy(attempts=3), sleep=waited.append)
    got = http.send("POST", "https://vendor.example/x", step="update", raise_for_status=False)
    assert (got.status, waited) == (answer, waits)


@pytest.mark.parametrize(
    "first", [503, DeliveryError("update: connection failed", retryable=True)], ids=["503", "reset"]
)
def test_no_retry_whose_wait_leaves_less_than_a_try_s_minimum(vendor: Vendor, first: Any) -> None:
    # Given 1.2 s left and a back-off of 0.5 s: 0.7 s would be left for the retry
    vendor.answers.extend([first, 200])
    waits: list[float] = []
    http = HttpClient(TIMEOUT, RetryPolicy(attempts=3, base_seconds=1.0), sleep=waits.append,
                      rng=Lowest())  # fmt: skip
    # Then the first try's failure goes back to the queue, without a wait
    with pytest.raises(DeliveryError) as raised:
        call(http, TimeBudget(lambda: 1.2))
    assert raised.value.retryable and (len(vendor.timeouts), waits) == (1, [])


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://vendor.example/x", "vendor.example"])
def test_a_url_not_http_s_is_refused_before_any_try(vendor: Vendor, url: str) -> None:
    # A system's base_url is configuration: urllib would read a file:// one from the disk
    with pytest.raises(DeliveryError) as raised:
        HttpClient(TIMEOUT).send("GET", url, step="lookup")
    assert raised.value.reason == "lookup: base_url must be http(s)"
    assert not raised.value.retryable
    assert vendor.timeouts == []


def test_an_invocation_s_budget_ends_with_it(vendor: Vendor) -> None:
    # Given a warm client whose last invocation ended with 0.5 s left
    http = HttpClient(TIMEOUT)
    with http.bounded_by(TimeBudget(lambda: 0.5)), pytest.raises(DeliveryError):
        http.send("POST", "https://vendor.example/x", step="update")
    # When it is called outside any budget (a CLI run) then it is not "out of time"
    vendor.answers.append(200)
    assert http.send("POST", "https://vendor.example/x", step="update").status == 200


@dataclass
class Failing:
    """An opener whose every request fails in transport with `error`."""

    error: Exception
    opened: int = 0

    def open(self, request: Any, timeout: float) -> Any:
        self.opened += 1
        raise self.error


@pytest.mark.parametrize(
    ("error", "reason", "tries"),
    [(TimeoutError(), "update: timed out", 2),  # a second timeout goes to the queue
     (urllib.error.URLError(TimeoutError()), "update: timed out", 2),
     (urllib.error.URLError(ConnectionRefusedError()), "update: connection failed", 3),
     (ConnectionResetError(), "update: connection failed", 3),
     (OSError("network is unreachable"), "update: connection failed", 3)],
)  # fmt: skip
def test_a_transport_failure_is_retried_and_names_no_address(
    error: Exception, reason: str, tries: int
) -> None:
    http = HttpClient(TIMEOUT, RetryPolicy(attempts=3, base_seconds=0.0), sleep=lambda _: None)
    http._opener = opener = Failing(error)  # type: ignore[assignment]
    with pytest.raises(DeliveryError) as raised:
        http.send("POST", "https://vendor.example/x", step="update")
    assert (raised.value.reason, raised.value.retryable, opener.opened) == (reason, True, tries)


def test_a_json_body_is_compact_with_its_keys_sorted() -> None:
    # The same payload is the same bytes on every try (a retry, a replay): Braze, Google Ads
    assert json_body({"b": 1, "a": [1, {"d": 2, "c": 3}]}) == b'{"a":[1,{"c":3,"d":2}],"b":1}'


@pytest.fixture
def oversized() -> Iterator[str]:
    """A loopback server whose every answer is 2,001 bytes, a 200 to a GET, a 500 to a POST."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def _answer(self, status: int) -> None:
            body = b"x" * 2001
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            self._answer(200)

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self._answer(500)

        def log_message(self, *_: Any) -> None:
            pass

    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler) as running:
        thread = threading.Thread(target=running.serve_forever, daemon=True)
        thread.start()
        yield f"http://127.0.0.1:{running.server_address[1]}"
        running.shutdown()


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_an_answer_over_the_bound_is_a_retryable_failure_not_read_whole(
    oversized: str, monkeypatch: pytest.MonkeyPatch, method: str
) -> None:
    # Given a bound of 2,000 bytes and a vendor answering 2,001, with a 200 or a 500
    monkeypatch.setattr(http_module, "MAX_ANSWER_BYTES", 2000)
    waits: list[float] = []
    body = b"{}" if method == "POST" else None
    # When the client calls it, Then each try fails as retryable, naming the step only
    with pytest.raises(DeliveryError) as failed:
        client(2, waits).send(method, oversized + "/x", step="hook", body=body)
    assert failed.value.retryable and failed.value.reason == "hook: answer over 2000 bytes"
    assert len(waits) == 1  # tried again once, as any transport failure


def test_an_answer_at_the_bound_is_read(oversized: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(http_module, "MAX_ANSWER_BYTES", 2001)
    answer = client(1, []).send("GET", oversized + "/x", step="hook")
    assert (answer.status, len(answer.body)) == (200, 2001)
