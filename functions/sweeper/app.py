"""Sweeper: EventBridge Schedule -> reconciliation (optout/sweep.py).

Finds events with no resolution and jobs stuck pending past the grace period and writes
`redrive` events the resolver carries out. `SweepRedriven` counts what it found; its alarm
(template.yaml) means something was dropped silently upstream (docs/reliability.md).
"""

import os
from datetime import timedelta
from functools import cache
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from optout.observability import log_context, logger, metrics
from optout.settings import Settings
from optout.store.table import Table
from optout.sweep import Sweeper, SweepSettings
from optout.time_budget import stop_before_end


@cache  # one per warm container; built on first use, not at import (tests build theirs)
def sweeper() -> Sweeper:
    settings = Settings.from_env()
    defaults = SweepSettings()
    env = os.environ
    checkpoints = tuple(
        timedelta(seconds=float(age))
        for age in env.get("SWEEP_CHECKPOINTS_SECONDS", "").split(",")
        if age.strip()
    )
    window = env.get("SWEEP_WINDOW_SECONDS")
    max_window = env.get("SWEEP_MAX_WINDOW_SECONDS")
    job_grace = env.get("SWEEP_JOB_GRACE_SECONDS")
    return Sweeper(
        Table.connect(settings.table_name),
        SweepSettings(
            checkpoints=checkpoints or defaults.checkpoints,
            window=timedelta(seconds=float(window)) if window else defaults.window,
            max_window=(
                timedelta(seconds=float(max_window)) if max_window else defaults.max_window
            ),
            job_grace=timedelta(seconds=float(job_grace)) if job_grace else defaults.job_grace,
        ),
        retention_days=settings.record_retention_days,
    )


# The run stops checking this long before the function's timeout (half what is left, if
# less): time to write the last redrive event, the reminders and the metrics.
STOP_WITH_SECONDS_LEFT = 20.0


@log_context()
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, int]:
    left = context.get_remaining_time_in_millis() / 1000
    report = sweeper().sweep(stop_before_end(left, STOP_WITH_SECONDS_LEFT))
    found = len(report.unresolved) + len(report.stuck_jobs)
    cut = report.cut_short
    metrics.add_metric(
        name="SweepEventsChecked", unit=MetricUnit.Count, value=report.events_checked
    )
    metrics.add_metric(
        name="SweepUnresolvedEvents", unit=MetricUnit.Count, value=len(report.unresolved)
    )
    metrics.add_metric(name="SweepStuckJobs", unit=MetricUnit.Count, value=len(report.stuck_jobs))
    metrics.add_metric(name="SweepRedriven", unit=MetricUnit.Count, value=found)
    # Not in SweepRedriven (its alarm): nothing was lost. A request whose cited job ended as no
    # proof for it is the expected end of a race (docs/decisions.md), re-opened by the redrive.
    metrics.add_metric(
        name="SweepReopenedRequests", unit=MetricUnit.Count, value=len(report.reopened)
    )
    # Not in SweepRedriven either: the watch reads them at its next run.
    metrics.add_metric(
        name="SweepUnenrolledRequests", unit=MetricUnit.Count, value=len(report.unenrolled)
    )
    # Its alarm: requests were left unchecked at this checkpoint and the younger ones (the
    # 23 h checkpoint, read first, is the last: a request it missed is not checked again). Or
    # a checkpoint's mark was older than its longest window: arrivals before that were not
    # read there (no run had finished for so long; the log says which).
    short = int(bool(cut) or bool(report.uncovered))
    metrics.add_metric(name="SweepCutShort", unit=MetricUnit.Count, value=short)
    # An input of SweeperErrorsAlarm: reads that failed (after the client's retries) left
    # requests, or the rest of a window, unchecked at this checkpoint (carried to the next
    # runs, which check them first), or the list of what earlier runs carried was not read,
    # or the windows' marks not written (the next run reads again from the old ones).
    failed = (
        len(report.checks_failed)
        + len(report.windows_failed)
        + int(report.carry_unread)
        + int(report.mark_unwritten)
    )
    metrics.add_metric(name="SweepChecksFailed", unit=MetricUnit.Count, value=failed)
    # The heartbeat (SweeperHeartbeatAlarm): a run that got here ran and finished. Missing, the
    # schedule stopped invoking it or every run fails or times out; nothing else would say so.
    metrics.add_metric(name="SweepRunFinished", unit=MetricUnit.Count, value=1)
    if cut:
        logger.warning("sweep stopped for want of time", extra={
            "checkpoint_seconds": int(cut.checkpoint.total_seconds()),
            "unchecked_from": cut.before, "events_checked": report.events_checked,
        })  # fmt: skip
    if report.reopened:
        logger.info("requests re-opened: a cited job was no proof for them",
                    extra={"request_ids": report.reopened})  # fmt: skip
    if report.unenrolled:
        logger.warning("requests the deadline watch passed over: reminded",
                       extra={"request_ids": report.unenrolled})  # fmt: skip
    if found:
        logger.warning(
            "re-driven",
            extra={
                "unresolved_events": len(report.unresolved),
                "stuck_jobs": len(report.stuck_jobs),
                "redrive_events": report.redrive_events,
            },
        )
    return {
        "events_checked": report.events_checked,
        "unresolved_events": len(report.unresolved),
        "stuck_jobs": len(report.stuck_jobs),
        "reopened_requests": len(report.reopened),
        "unenrolled_requests": len(report.unenrolled),
        "cut_short": short,
        "uncovered_windows": len(report.uncovered),
        "checks_failed": failed,
        "carried_checked": len(report.carried_checked) + len(report.carried_windows),
    }
