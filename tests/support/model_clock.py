"""One clock for the whole pipeline that a test moves forward: every module that reads the
time with `datetime.now(UTC)` (capture's received_at, the resolver, the worker, the sweep, the
watch, the status views, the exports) reads it `offset` ahead of the real time, so a capture
made after the clock moved is as young to the sweep as it is to everything else."""

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, tzinfo
from types import ModuleType

import pytest

from optout import queries, review, status, sweep
from optout.delivery import service as delivery_service
from optout.http import context
from optout.ops import export, watch
from optout.resolver import service as resolver_service
from optout.store import delivery as store_delivery

MODULES: tuple[ModuleType, ...] = (
    context, queries, status, review, export, watch, sweep, delivery_service, resolver_service,
)  # fmt: skip


class ShiftedTime:
    """A `time` module whose time() is the shifted clock's (delivery marks' expiry)."""

    def __init__(self, clock: "ModelClock") -> None:
        self._clock = clock

    def time(self) -> float:
        return self._clock.now().timestamp()


class ModelClock:
    def __init__(self) -> None:
        self.offset = timedelta(0)

    def now(self, tz: tzinfo | None = None) -> datetime:
        return datetime.now(tz) + self.offset

    def advance(self, by: timedelta) -> None:
        self.offset += by

    def datetime_class(self) -> type[datetime]:
        clock = self

        class Shifted(datetime):
            @classmethod
            def now(cls, tz: tzinfo | None = None) -> datetime:  # type: ignore[override]
                return clock.now(tz)

        return Shifted


@contextmanager
def model_clock(*extra: ModuleType) -> Iterator[ModelClock]:
    """The clock, installed in the domain modules and in `extra` (a function's app module)."""
    clock = ModelClock()
    shifted = clock.datetime_class()
    with pytest.MonkeyPatch.context() as patch:
        for module in (*MODULES, *extra):
            patch.setattr(module, "datetime", shifted)
        patch.setattr(store_delivery, "time", ShiftedTime(clock))
        yield clock
