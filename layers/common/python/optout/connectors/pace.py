"""Pacing of one system's vendor calls: `rate_limit_per_second` made true.

Each worker invocation sends at most `rate / max_concurrency` requests a second to its vendor:
Lambda runs at most `MaxConcurrency` invocations of a system's worker at once (the event
source's ScalingConfig), so together they never pass `rate_limit_per_second` (docs/connectors.md,
"Pace"). Every HTTP request of the system goes through its `Pacer` (connectors/http.py), so
no connector can forget it.

A request reserves the next free slot, at least `interval` after the previous one, and waits
for it; slots are shared by every thread of the invocation (a connector's parallel calls).
An invocation's first slot is one `interval` after the invocation starts (`begin`): the
invocation that held its concurrency slot before it, in this container or another, had ended
by then, so its last request is at least `interval` before; Lambda may hand a slot's next
invocation to any warm container, whose own pacer has no record of that request.
A slot is reserved only if its wait fits the caller's time: a request that cannot start
before the invocation's budget ends reserves nothing, and its job comes back later.
"""

import math
import threading
import time
from collections.abc import Callable


def seconds_to_last_call(calls: int, rate_per_second: float, max_concurrency: int) -> float:
    """When the last of a batch's `calls` may start, from the invocation's start: the first one
    interval in (`Pacer.begin`), each next one `max_concurrency / rate_per_second` later."""
    return max(0, calls) * max(1, max_concurrency) / rate_per_second


class Pacer:
    def __init__(
        self,
        per_second: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if per_second <= 0:
            raise ValueError("per_second must be above 0")
        self.interval = 1.0 / per_second
        self._clock = clock
        self._sleep = sleep
        self._next = -math.inf  # the earliest moment the next request may start
        self._waited = 0.0
        self._waited_until = -math.inf  # the end of the last wait counted in `waited`
        self._lock = threading.Lock()

    @classmethod
    def for_system(
        cls,
        rate_per_second: float,
        max_concurrency: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> "Pacer":
        """The pace of one of `max_concurrency` invocations sharing `rate_per_second`."""
        return cls(rate_per_second / max(1, max_concurrency), clock=clock, sleep=sleep)

    @property
    def waited(self) -> float:
        """Wall seconds during which a request waited for its slot since this pacer was made (a
        metric): threads waiting at once count once."""
        return self._waited

    def begin(self, started: float | None = None) -> None:
        """An invocation started at `started` (now if None): its first request goes no sooner
        than one interval after, and still one after this pacer's own last request."""
        with self._lock:
            at = self._clock() if started is None else started
            self._next = max(self._next, at + self.interval)

    def wait_turn(self, longest_wait: float) -> bool:
        """Wait for this request's slot and return True, or return False at once (nothing
        reserved) when the slot is more than `longest_wait` seconds away."""
        with self._lock:
            now = self._clock()
            slot = max(now, self._next)
            wait = slot - now
            if wait > longest_wait:
                return False
            self._next = slot + self.interval
            # Waits start and end in order (both read under this lock), so the wall time
            # waited grows by the part of this wait after the last one counted.
            self._waited += max(0.0, slot - max(now, self._waited_until))
            self._waited_until = max(self._waited_until, slot)
        if wait > 0:
            self._sleep(wait)
        return True
