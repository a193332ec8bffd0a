"""The time an invocation has left, read from a plain clock (the domain knows no Lambda).

A handler builds one from its context (`lambda: context.get_remaining_time_in_millis() / 1000`)
less the margin its own last writes need; a test builds one on a virtual clock.
"""

import math
from collections.abc import Callable
from time import monotonic


class TimeBudget:
    def __init__(self, seconds_left: Callable[[], float], margin_seconds: float = 0.0) -> None:
        self._seconds_left = seconds_left
        self._margin = margin_seconds

    @classmethod
    def unbounded(cls) -> "TimeBudget":
        """No hard stop (a CLI run, a test that does not care)."""
        return cls(lambda: math.inf)

    def left(self) -> float:
        """Seconds before the stop, margin taken off; 0 or less: out of time."""
        return self._seconds_left() - self._margin

    def allows(self, seconds: float) -> bool:
        """Whether something taking `seconds` can still finish before the stop."""
        return self.left() >= seconds

    def allows_in_margin(self, seconds: float) -> bool:
        """Whether something taking `seconds` can still finish before the end itself: for what
        the margin was kept for (a worker's writes after its vendor calls)."""
        return self._seconds_left() >= seconds


def stop_before_end(seconds_left: float, margin_seconds: float) -> float:
    """A time.monotonic() instant `margin_seconds` before an invocation's end (half the time
    left, if that is less): where a bounded run (a replay, a sweep) starts nothing more."""
    return monotonic() + seconds_left - min(margin_seconds, seconds_left / 2)
