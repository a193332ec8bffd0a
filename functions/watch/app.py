"""Deadline watch (EventBridge schedule): requests past or near their deadline and not complete.

Each run enrols new arrivals and re-checks the requests whose reminder is due (optout/ops/
watch.py), then publishes what it found: `RequestsOverdue` and `RequestsDueSoon` (alarms read
these), the same per request state (`state` dimension), and `WATCH/STATUS` for operators; and
`WatchReopenedRequests`, the requests past the sweep's last checkpoint it re-opened (a cited
job ended as no proof for them); `WatchRedrivenRequests`, those it found with no resolution 25
hours after they were written (past the stream's 24 h record age) and re-drove (an import lost
on the stream: the sweep never lists one; review s19 SC1); `WatchResentJobs`, the pending jobs
untouched for a day past the sweep's last check it named to send again (their message may be
gone; the resolver sends each only while its queue has no backlog). The overdue and due-soon figures
count every request reminded, each as its last check found it (one near or past its deadline
is checked hourly), not only those this run reached;
`WatchFiguresPartial` is 1 when they miss some (reminders due that no run has checked yet, or
the reminders not all read for time; `WATCH/STATUS.not_yet_checked` says how many).

It also checks the HMAC key against the fingerprint its first run recorded
(`HashKeyChanged`: 1 when it differs, with an ERROR log naming no key material) and counts the
configured systems added since without a backfill (`SystemsNotBackfilled`); both have alarms.
A check that raises (the secret unreadable, a SYSTEMS write refused) stops neither the deadline
work nor what is published: it is counted in `WatchChecksFailed` (WatchChecksFailedAlarm) and
logged at ERROR by name, with no key material (review s18 diff B3).
"""

import os
from functools import cache
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit, single_metric
from aws_lambda_powertools.utilities.typing import LambdaContext

from optout.hash_key import load_hash_key
from optout.observability import log_context, logger, metrics
from optout.ops.watch import Watch, WatchReport, WatchSettings
from optout.settings import Settings
from optout.store.table import Table
from optout.systems import load_systems


@cache  # one per warm container; built on first use, not at import (tests build theirs)
def watch() -> Watch:
    settings = Settings.from_env()
    systems = [s.name for s in load_systems(settings.systems_config).systems]
    return Watch(Table.connect(settings.table_name), WatchSettings.from_env(dict(os.environ)),
                 hash_key=lambda: load_hash_key(settings), systems=systems)  # fmt: skip


def publish(report: WatchReport) -> None:
    metrics.add_metric(name="RequestsOverdue", unit=MetricUnit.Count, value=len(report.overdue))
    metrics.add_metric(name="RequestsDueSoon", unit=MetricUnit.Count, value=len(report.due_soon))
    metrics.add_metric(name="WatchRunFinished", unit=MetricUnit.Count, value=int(report.finished))
    metrics.add_metric(
        name="WatchReopenedRequests", unit=MetricUnit.Count, value=len(report.reopened)
    )
    metrics.add_metric(
        name="WatchRedrivenRequests", unit=MetricUnit.Count, value=len(report.unresolved)
    )
    metrics.add_metric(name="WatchResentJobs", unit=MetricUnit.Count, value=len(report.resent))
    metrics.add_metric(name="WatchFiguresPartial", unit=MetricUnit.Count,
                       value=int(report.figures_partial))  # fmt: skip
    metrics.add_metric(name="HashKeyChanged", unit=MetricUnit.Count,
                       value=int(report.hash_key_changed))  # fmt: skip
    metrics.add_metric(name="SystemsNotBackfilled", unit=MetricUnit.Count,
                       value=len(report.systems_not_backfilled))  # fmt: skip
    metrics.add_metric(name="WatchChecksFailed", unit=MetricUnit.Count,
                       value=len(report.checks_failed))  # fmt: skip
    for name, found in (("RequestsOverdue", report.overdue), ("RequestsDueSoon", report.due_soon)):
        for state, count in sorted(report.by_state(found).items()):
            with single_metric(
                name=name, unit=MetricUnit.Count, value=count,
                namespace=metrics.namespace, default_dimensions=metrics.default_dimensions,
            ) as metric:  # fmt: skip
                metric.add_dimension(name="state", value=state)


@log_context()
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    report = watch().run(lambda: context.get_remaining_time_in_millis() / 1000)
    publish(report)
    summary = report.to_item()
    if report.hash_key_changed:
        logger.error("the HMAC hash key differs from the one this table's lookup keys were made "
                     "with: identities are split; restore the secret's previous value "
                     "(docs/deploy.md, 'The HMAC key must never change')")  # fmt: skip
    if report.systems_not_backfilled:
        logger.warning("systems added without a backfill: earlier opt-outs do not reach them "
                       "until `optout backfill SYSTEM`",
                       extra={"systems": report.systems_not_backfilled})  # fmt: skip
    if report.reopened:
        logger.info("requests re-opened: a cited job was no proof for them",
                    extra={"request_ids": report.reopened})  # fmt: skip
    if report.resent:  # request ids and system names only
        logger.warning(
            "pending jobs untouched a day: sent again unless their queue has a backlog",
            extra={"jobs": report.resent[:100], "count": len(report.resent)},
        )
    log = logger.warning if report.overdue else logger.info
    log(
        "deadline watch",
        overdue=summary["overdue"],
        due_soon=summary["due_soon"],
        overdue_by_system=summary["overdue_by_system"],
        overdue_requests=summary["overdue_requests"][:20],
        imported_owed=summary["imported_owed"],
        checked=report.checked,
        finished=report.finished,
        figures_partial=report.figures_partial,
        not_yet_checked=report.not_yet_checked,
    )
    return {k: v for k, v in summary.items() if k not in ("pk", "sk", "kind")}
