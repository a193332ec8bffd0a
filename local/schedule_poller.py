"""Scheduled functions, as EventBridge would invoke them: one timer thread per schedule.

The period is the template's `rate(...)` divided by LOCAL_SCHEDULE_SPEEDUP (default 60: a
rate of 5 minutes fires every 5 s), so the sweeps a deployed stack runs every few minutes
show their effect while a developer watches. The event is EventBridge's "Scheduled Event"
shape; a crash is reported (crash_report) and the timer goes on, as EventBridge retries
an asynchronous invoke and the next run comes anyway.
"""

import logging
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from local import crash_report
from local.template_config import ScheduleSource

log = logging.getLogger("local.schedule")

Invoke = Callable[[dict[str, Any]], Any]
MIN_PERIOD_SECONDS = 1.0


def scheduled_event(source: ScheduleSource, now: datetime) -> dict[str, Any]:
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "123456789012",
        "time": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": "us-east-1",
        "resources": [f"arn:aws:events:us-east-1:123456789012:rule/{source.name}"],
        "detail": {},
    }


class SchedulePoller:
    def __init__(
        self, source: ScheduleSource, invoke: Invoke, stop: threading.Event, speedup: float
    ) -> None:
        self.source = source
        self._invoke = invoke
        self._stop = stop
        self.period = max(MIN_PERIOD_SECONDS, source.every_seconds / speedup)

    def run(self) -> None:
        while not self._stop.wait(self.period):
            self.fire()

    def fire(self) -> None:
        started = time.monotonic()
        try:
            self._invoke(scheduled_event(self.source, datetime.now(UTC)))
        except Exception as error:  # noqa: BLE001 - the next run comes anyway
            crash_report.report(log, f"scheduled {self.source.function}", error)
            return
        log.debug("%s ran in %.2f s", self.source.function, time.monotonic() - started)
