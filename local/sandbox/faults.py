"""Fault injection for a sandbox: which calls fail, and how.

A plan says what share of calls fails (`rate`) and with what: one status or a mix of them
(4xx/5xx codes, or "timeout": the answer is held past the caller's timeout). A 429 is the
vendor's throttling answer in its own shape, carrying `retry_after` where the vendor sends a
wait (local/sandbox/throttles.py: Salesforce answers 403, Meta 400, Braze X-RateLimit-*).
Without a `seed` the failing calls are chosen by a counter (rate r fails call n when
floor((n+1)*r) > floor(n*r): rate 0.5 fails every second call, so a test knows which) and a
mix is taken in turn; with a `seed` each call draws from its own random generator, so a soak
meets faults spread as an outage spreads them, and the same seed replays the same draws.
With `applied` a failing call is carried out first, then answered with its fault: a vendor
that committed a write and lost its answer (a 5xx or timeout after the commit).
"""

import math
import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from local.sandbox.wire import FaultStatus

MAX_HOLD_SECONDS = 120.0
# A week: vendors with a daily or weekly quota ask for waits past SQS's 12 h visibility.
MAX_RETRY_AFTER_SECONDS = 7 * 24 * 3600


class InvalidFaults(ValueError):
    """A fault plan the sandbox refuses; the message names the field (never a secret), and
    `field` is that field's name, for the error envelope's `field`."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


def _number(spec: dict[str, Any], name: str, default: float) -> float:
    value = spec.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidFaults(f"{name} must be a number", name)
    return float(value)


def _whole(spec: dict[str, Any], name: str, default: int | None) -> int | None:
    value = spec.get(name, default)
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
        raise InvalidFaults(f"{name} must be a whole number or null", name)
    return value


@dataclass(frozen=True)
class FaultPlan:
    rate: float = 0.0
    statuses: tuple[FaultStatus, ...] = (500,)
    retry_after: int | None = 2  # seconds a throttle asks the caller to wait (None: no wait)
    hold_seconds: float = 30.0  # a "timeout" answers only after this long
    seed: int | None = None
    applied: bool = False  # the failing call is carried out before its fault is answered

    def __post_init__(self) -> None:
        if not 0 <= self.rate <= 1:
            raise InvalidFaults("rate must be within 0..1", "rate")
        if not self.statuses:
            raise InvalidFaults("statuses must name at least one status", "statuses")
        for status in self.statuses:
            if status != "timeout" and not (
                isinstance(status, int) and not isinstance(status, bool) and 400 <= status <= 599
            ):
                raise InvalidFaults("status must be a 4xx/5xx code or 'timeout'", "status")
        if self.retry_after is not None and not 0 <= self.retry_after <= MAX_RETRY_AFTER_SECONDS:
            raise InvalidFaults(
                f"retry_after must be 0..{MAX_RETRY_AFTER_SECONDS} seconds", "retry_after"
            )
        if not 0 < self.hold_seconds <= MAX_HOLD_SECONDS:
            raise InvalidFaults(
                f"hold_seconds must be within 0..{MAX_HOLD_SECONDS:.0f}", "hold_seconds"
            )

    @classmethod
    def parse(cls, spec: dict[str, Any]) -> "FaultPlan":
        """The body of POST /_sandbox/{system}/faults. Raises InvalidFaults naming the field."""
        known = {"rate", "status", "statuses", "retry_after", "hold_seconds", "seed", "applied"}
        unknown = set(spec) - known
        if unknown:
            raise InvalidFaults(f"unknown field {sorted(unknown)[0]}")
        if "status" in spec and "statuses" in spec:
            raise InvalidFaults("send status or statuses, not both", "statuses")
        statuses = spec.get("statuses", [spec.get("status", 500)])
        if not isinstance(statuses, list):
            raise InvalidFaults("statuses must be a list", "statuses")
        if not isinstance(spec.get("applied", False), bool):
            raise InvalidFaults("applied must be true or false", "applied")
        try:
            return cls(
                rate=_number(spec, "rate", 0.0),
                statuses=tuple(statuses),
                retry_after=_whole(spec, "retry_after", 2),
                hold_seconds=_number(spec, "hold_seconds", 30.0),
                seed=_whole(spec, "seed", None),
                applied=spec.get("applied", False),
            )
        except InvalidFaults as error:  # a bad status came in the field the caller used
            if error.field == "status" and "statuses" in spec:
                raise InvalidFaults(
                    "statuses must each be a 4xx/5xx code or 'timeout'", "statuses"
                ) from None
            raise

    def as_dict(self) -> dict[str, Any]:
        return {
            "rate": self.rate,
            "statuses": list(self.statuses),
            "retry_after": self.retry_after,
            "hold_seconds": self.hold_seconds,
            "seed": self.seed,
            "applied": self.applied,
        }


@dataclass
class FaultInjector:
    """Decides per call; not thread-safe on its own (the sandbox calls it under its lock)."""

    plan: FaultPlan = field(default_factory=FaultPlan)
    calls: int = 0
    injected: Counter[str] = field(default_factory=Counter)
    _counter: int = 0
    _failures: int = 0
    _rng: random.Random | None = None

    def configure(self, plan: FaultPlan) -> None:
        """A new plan starts its own sequence (and, with a seed, its own draws)."""
        self.plan = plan
        self._counter = self._failures = 0
        self._rng = None if plan.seed is None else random.Random(plan.seed)

    def next(self) -> FaultStatus | None:
        self.calls += 1
        fault = self._draw() if self._rng is not None else self._count()
        if fault is not None:
            self.injected[str(fault)] += 1
        return fault

    def _count(self) -> FaultStatus | None:
        n, rate = self._counter, self.plan.rate
        self._counter += 1
        if rate > 0 and math.floor((n + 1) * rate) > math.floor(n * rate):
            status = self.plan.statuses[self._failures % len(self.plan.statuses)]
            self._failures += 1
            return status
        return None

    def _draw(self) -> FaultStatus | None:
        assert self._rng is not None
        if self._rng.random() >= self.plan.rate:
            return None
        return self._rng.choice(self.plan.statuses)

    def report(self) -> dict[str, Any]:
        return {**self.plan.as_dict(), "calls": self.calls, "injected": dict(self.injected)}
