"""Deadline watch (EventBridge schedule): requests past or near their deadline and not complete.

Each run enrols new arrivals and re-checks the requests whose reminder is due (optout/ops/
watch.py), then publishes what it found: `RequestsOverdue` and `RequestsDueSoon` (alarms read
these), the same per request state (`state` dimension), and `WATCH/STATUS` for operators; and
`WatchReopenedRequests`, the requests past the sweep's last checkpoint it re-opened (a cited
job ended as no proof for them).
"""

import os
from functools import cache
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit, single_metric
from aws_lambda_powertools.utilities.typing import LambdaContext

from optout.observability import log_context, logger, metrics
from optout.ops.watch import Watch, WatchReport, WatchSettings
from optout.settings import Settings
from optout.store.table import Table


@cache  # one per warm container; built on first use, not at import (tests build theirs)
def watch() -> Watch:
    settings = Settings.from_env()
    return Watch(Table.connect(settings.table_name), WatchSettings.from_env(dict(os.environ)))


def publish(report: WatchReport) -> None:
    metrics.add_metric(name="RequestsOverdue", unit=MetricUnit.Count, value=len(report.overdue))
    metrics.add_metric(name="RequestsDueSoon", unit=MetricUnit.Count, value=len(report.due_soon))
    metrics.add_metric(name="WatchRunFinished", unit=MetricUnit.Count, value=int(report.finished))
    metrics.add_metric(
        name="WatchReopenedRequests", unit=MetricUnit.Count, value=len(report.reopened)
    )
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
    if report.reopened:
        logger.info("requests re-opened: a cited job was no proof for them",
                    extra={"request_ids": report.reopened})  # fmt: skip
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
    )
    return {k: v for k, v in summary.items() if k not in ("pk", "sk", "kind")}
