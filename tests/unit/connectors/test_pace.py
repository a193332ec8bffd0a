"""A system's pace: rate_limit_per_second shared by MaxConcurrency invocations, each starting
its requests at least MaxConcurrency / rate seconds apart, within its time budget. Virtual time:
the pacer's clock and sleep are the test's."""

import itertools
import threading
from dataclasses import dataclass, field

import pytest

from optout.connectors import http as http_module
from optout.connectors.errors import DeliveryError
from optout.connectors.http import (
    HttpClient,
    HttpResponse,
    OutOfTime,
    RetryPolicy,
    paced_start_seconds,
)
from optout.connectors.pace import Pacer, seconds_to_last_call
from optout.time_budget import TimeBudget


@dataclass
class Clock:
    now: float = 100.0
    slept: list[float] = field(default_factory=list)

    def read(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def pacer(clock: Clock, per_second: float, concurrency: int = 1) -> Pacer:
    return Pacer.for_system(per_second, concurrency, clock=clock.read, sleep=clock.sleep)


def test_each_invocation_takes_its_share_of_the_rate() -> None:
    # 4 a second shared by 2 invocations at most: 2 a second each, 0.5 s apart
    assert Pacer.for_system(4, 2).interval == pytest.approx(0.5)
    assert Pacer.for_system(5, 1).interval == pytest.approx(0.2)


def test_back_to_back_requests_start_an_interval_apart() -> None:
    clock = Clock()
    pace = pacer(clock, 4, 2)
    started = []
    for _ in range(5):
        assert pace.wait_turn(60)
        started.append(clock.now)
    gaps = [later - earlier for earlier, later in itertools.pairwise(started)]
    assert gaps == pytest.approx([0.5] * 4)
    assert pace.waited == pytest.approx(2.0)


def test_a_request_after_a_long_pause_goes_at_once() -> None:
    clock = Clock()
    pace = pacer(clock, 2)
    pace.wait_turn(60)
    clock.now += 10  # the vendor's answer took longer than the interval
    assert pace.wait_turn(60) and clock.slept == []


def test_a_turn_further_away_than_allowed_is_refused_and_not_taken() -> None:
    clock = Clock()
    pace = pacer(clock, 1)  # 1 s apart
    assert pace.wait_turn(0.5)  # the first goes at once
    assert not pace.wait_turn(0.5)  # the next is 1 s away: more than allowed
    assert clock.slept == []
    assert pace.wait_turn(1.0)  # the refused one took no slot: the next is still 1 s away
    assert clock.slept == [1.0]


def test_threads_sharing_a_pace_take_distinct_turns() -> None:
    # A connector's parallel calls (the webhook's pool): each waits for its own slot
    waits: list[float] = []
    lock = threading.Lock()

    def sleep(seconds: float) -> None:
        with lock:
            waits.append(seconds)

    pace = Pacer(10, clock=lambda: 0.0, sleep=sleep)
    threads = [threading.Thread(target=pace.wait_turn, args=(60,)) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(waits) == pytest.approx([0.1 * k for k in range(1, 8)])  # and one at once
    # The metric is the wall time waited (0.7 s), not the threads' waits added up (2.8 s)
    assert pace.waited == pytest.approx(0.7)


def test_a_pace_must_be_above_zero() -> None:
    with pytest.raises(ValueError, match="above 0"):
        Pacer(0)


def test_the_last_call_of_a_batch_starts_calls_intervals_in() -> None:
    # The first one interval after the invocation starts (Pacer.begin), then one each interval
    assert seconds_to_last_call(12, 4, 2) == pytest.approx(6.0)
    assert seconds_to_last_call(1, 0.1, 2) == pytest.approx(20.0)
    assert seconds_to_last_call(0, 4, 2) == 0
    assert seconds_to_last_call(3, 2, 1) == pytest.approx(1.5)  # one invocation: the whole rate
    assert seconds_to_last_call(3, 2, 0) == pytest.approx(1.5)  # no concurrency set: one


def test_an_invocations_first_request_waits_one_interval_from_its_start() -> None:
    clock = Clock()
    pace = pacer(clock, 4, 2)  # 0.5 s apart
    # Given a container whose pace has never sent (or sent long ago)
    pace.begin()
    assert pace.wait_turn(60)
    assert clock.now == pytest.approx(100.5)
    # And an invocation starting 0.1 s after this container's last request: one interval
    # from the start, which is also at least one after that request
    clock.now += 0.1
    pace.begin()
    assert pace.wait_turn(60)
    assert clock.now == pytest.approx(101.1)


def _slot_requests(
    containers: list[Pacer], clock: Clock, calls: int, seconds: float
) -> list[float]:
    """One concurrency slot under a backlog: each invocation makes `calls` requests (50 ms
    answers) and the next starts as it ends, served by the containers in turn."""
    started: list[float] = []
    for n in itertools.count():
        if clock.now >= seconds:
            return [t for t in started if t < seconds]
        pace = containers[n % len(containers)]  # Lambda picks any idle warm container
        pace.begin()
        for _ in range(calls):
            assert pace.wait_turn(30)
            started.append(clock.now)
            clock.now += 0.05
    return started


@pytest.mark.parametrize(("rate", "calls"), [(4.0, 12), (1.0, 5)], ids=["braze", "salesforce"])
def test_a_slot_handed_between_containers_never_passes_the_rate(rate: float, calls: int) -> None:
    # Given MaxConcurrency 2: slot 1 served by containers A and C in turn, slot 2 by B alone,
    # each invocation a full batch (Braze 12 requests, Salesforce 5), for 60 s
    interval = 2 / rate
    one, two = Clock(0.0), Clock(0.0)
    slot1 = _slot_requests([pacer(one, rate, 2), pacer(one, rate, 2)], one, calls, 60)
    slot2 = _slot_requests([pacer(two, rate, 2)], two, calls, 60)
    # Then each slot's requests are an interval apart across invocations and containers...
    for started in (slot1, slot2):
        gaps = [later - earlier for earlier, later in itertools.pairwise(started)]
        assert min(gaps) >= interval - 1e-9
    # ... so the system never passes its rate: 240 (Braze) and 60 (Salesforce) in 60 s
    assert len(slot1) + len(slot2) <= rate * 60


# -- the HTTP client: every try waits its turn ------------------------------------------------


@pytest.fixture
def answers(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Every request answers the next status in the list (no network), recording nothing."""
    statuses: list[int] = []

    def once(self: HttpClient, *args: object) -> HttpResponse:
        return HttpResponse(statuses.pop(0), {}, b"")

    monkeypatch.setattr(http_module.HttpClient, "_once", once)
    return statuses


def test_a_paced_client_starts_each_call_at_its_turn(answers: list[int]) -> None:
    clock = Clock()
    http = HttpClient(10).paced(pacer(clock, 2))
    answers.extend([200, 200, 200])
    started = []
    for _ in range(3):
        http.send("POST", "https://vendor.example/x", step="x")
        started.append(clock.now)
    assert started == pytest.approx([100.0, 100.5, 101.0])


def test_a_retry_is_a_request_and_waits_its_turn_too(answers: list[int]) -> None:
    clock = Clock()
    http = HttpClient(10, RetryPolicy(attempts=2, base_seconds=0.0), sleep=clock.sleep)
    paced = http.paced(pacer(clock, 1))
    answers.extend([503, 200])
    assert paced.send("POST", "https://vendor.example/x", step="x").status == 200
    assert clock.now == pytest.approx(101.0)  # the retry went a full interval after the first
    assert http.retried == 1  # counted on the client it was paced from


def test_a_call_whose_turn_comes_too_late_for_the_budget_is_not_started(
    answers: list[int],
) -> None:
    # Given a pace of one call every 5 s and a budget ending 4 s from now
    clock = Clock()
    http = HttpClient(10)
    paced = http.paced(pacer(clock, 0.2))
    answers.extend([200])
    with http.bounded_by(TimeBudget(lambda: 104.0 - clock.now)):
        paced.send("POST", "https://vendor.example/x", step="x")  # at once
        # When the next call's turn (5 s away) leaves less than a try's minimum
        with pytest.raises(OutOfTime):
            paced.send("POST", "https://vendor.example/x", step="x")
    # Then it was not started (no try counted), and nothing waited for it
    assert paced.tries_started() == 1 and clock.slept == []


def test_a_retry_whose_turn_comes_too_late_reports_the_failure_it_retries(
    answers: list[int],
) -> None:
    clock = Clock()
    http = HttpClient(10, RetryPolicy(attempts=3, base_seconds=0.0), sleep=clock.sleep)
    paced = http.paced(pacer(clock, 0.2))
    answers.extend([503])
    with http.bounded_by(TimeBudget(lambda: 104.0 - clock.now)):
        answer = paced.send("POST", "https://vendor.example/x", step="x", raise_for_status=False)
    assert answer.status == 503  # the vendor's answer, not "out of time"


def test_an_unpaced_client_never_waits(answers: list[int]) -> None:
    clock = Clock()
    http = HttpClient(10, sleep=clock.sleep)
    answers.extend([200, 200])
    http.send("POST", "https://vendor.example/x", step="x")
    http.send("POST", "https://vendor.example/x", step="x")
    assert clock.slept == []


def test_a_try_after_its_turn_gets_only_the_time_then_left(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a pace of one call every 2 s and a budget ending 10 s from now
    clock = Clock()
    timeouts: list[float] = []

    def once(self: HttpClient, *args: object) -> HttpResponse:
        timeouts.append(float(args[-1]))  # type: ignore[arg-type]
        return HttpResponse(200, {}, b"")

    monkeypatch.setattr(http_module.HttpClient, "_once", once)
    http = HttpClient(30)
    paced = http.paced(pacer(clock, 0.5))
    with http.bounded_by(TimeBudget(lambda: 110.0 - clock.now)):
        paced.send("POST", "https://vendor.example/x", step="x")
        paced.send("POST", "https://vendor.example/x", step="x")  # its turn is 2 s later
    # Then the second try's socket timeout is the 8 s left after its wait, not the 10 before
    assert timeouts == pytest.approx([10.0, 8.0])


def test_a_turn_that_leaves_just_a_try_s_minimum_is_still_sent(answers: list[int]) -> None:
    # Given a budget ending 3 s from now and a turn 2 s away: 1 s left after the wait
    clock = Clock()
    http = HttpClient(10)
    paced = http.paced(pacer(clock, 0.5))
    answers.extend([200, 200])
    with http.bounded_by(TimeBudget(lambda: 103.0 - clock.now)):
        paced.send("POST", "https://vendor.example/x", step="x")
        assert paced.send("POST", "https://vendor.example/x", step="x").status == 200
    assert paced.tries_started() == 2 and clock.now == pytest.approx(102.0)


def test_a_turn_that_ends_too_late_is_not_started(answers: list[int]) -> None:
    # Given a wait for a turn that ends later than asked (the pool's other threads ran on)
    clock = Clock()

    def oversleep(seconds: float) -> None:
        clock.sleep(seconds + 1.5)

    http = HttpClient(10)
    paced = http.paced(Pacer(0.5, clock=clock.read, sleep=oversleep))
    answers.extend([200, 200])
    with http.bounded_by(TimeBudget(lambda: 103.0 - clock.now)):
        paced.send("POST", "https://vendor.example/x", step="x")
        # When the next turn (2 s away, 1 s to spare) ends with 0.5 s left
        with pytest.raises(OutOfTime):
            paced.send("POST", "https://vendor.example/x", step="x")
    # Then the try is not sent
    assert paced.tries_started() == 1 and answers == [200]


def test_a_batch_s_last_call_needs_a_try_s_minimum_after_its_turn() -> None:
    # 12 calls at 2 a second each: the last starts 6 s in and needs 1 s to run
    assert paced_start_seconds(12, 4, 2) == pytest.approx(7.0)


def test_a_retry_cut_short_reports_the_last_try_s_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a vendor whose first try is reset and whose second answers 503, at one call every
    # 2 s, within a budget ending 4.5 s from now: the third try's turn comes too late
    clock = Clock()
    answers: list[HttpResponse | DeliveryError] = [
        DeliveryError("x: connection failed", retryable=True),
        HttpResponse(503, {}, b""),
    ]

    def once(self: HttpClient, *args: object) -> HttpResponse:
        answer = answers.pop(0)
        if isinstance(answer, DeliveryError):
            raise answer
        return answer

    monkeypatch.setattr(http_module.HttpClient, "_once", once)
    http = HttpClient(10, RetryPolicy(attempts=3, base_seconds=0.0), sleep=clock.sleep)
    paced = http.paced(pacer(clock, 0.5))
    with (
        http.bounded_by(TimeBudget(lambda: 104.5 - clock.now)),
        pytest.raises(DeliveryError) as raised,
    ):
        paced.send("POST", "https://vendor.example/x", step="x")
    # Then the error reported is the 503, not the reset before it
    assert (raised.value.reason, raised.value.http_status) == ("x: HTTP 503", 503)
    assert paced.tries_started() == 2


def test_a_retry_cut_short_after_a_reset_reports_the_reset(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a first try reset by the vendor, and a retry whose turn (5 s away) comes too late
    clock = Clock()
    reset = DeliveryError("x: connection failed", retryable=True)

    def once(self: HttpClient, *args: object) -> HttpResponse:
        raise reset

    monkeypatch.setattr(http_module.HttpClient, "_once", once)
    http = HttpClient(10, RetryPolicy(attempts=3, base_seconds=0.0), sleep=clock.sleep)
    paced = http.paced(pacer(clock, 0.2))
    budget = TimeBudget(lambda: 104.0 - clock.now)
    with http.bounded_by(budget), pytest.raises(DeliveryError) as raised:
        paced.send("POST", "https://vendor.example/x", step="x")
    # Then the reset is what goes back to the queue
    assert raised.value is reset and paced.tries_started() == 1
