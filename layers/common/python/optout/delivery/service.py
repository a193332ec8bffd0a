"""Deliver one SQS batch: read the jobs, skip finished ones, call each system's connector once
per vendor batch, write receipts, and decide per message: acknowledge, or retry after N seconds.
"""

import random
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from aws_lambda_powertools.utilities.parameters.exceptions import (
    GetParameterError,
    TransformParameterError,
)
from pydantic import ValidationError

from optout.connectors.base import Connector, Job, Outcome
from optout.connectors.errors import ConfigError, DeliveryError
from optout.delivery import job_store
from optout.delivery.messages import JobMessage
from optout.delivery.retry import backoff_seconds, retry_delay
from optout.delivery.settings import WorkerSettings
from optout.identifiers import Identifier
from optout.observability import logger
from optout.store.codec import Item
from optout.store.delivery import record_delivered
from optout.store.table import Table
from optout.systems import SystemConfig, SystemsConfig
from optout.timestamps import iso

ConnectorFactory = Callable[[SystemConfig], Connector]


@dataclass(frozen=True)
class Received:
    """One SQS message as the worker sees it."""

    message_id: str
    body: str
    receive_count: int


@dataclass(frozen=True)
class Decision:
    retry_in: int | None = None  # None: done with this message; else seconds until it returns
    reason: str = ""


ACK = Decision()


@dataclass
class BatchReport:
    decisions: dict[str, Decision] = field(default_factory=dict)  # message_id -> decision
    counts: Counter[str] = field(default_factory=Counter)  # JobsDone, JobsFailed, ...


class DeliveryService:
    def __init__(
        self,
        table: Table,
        systems: SystemsConfig,
        settings: WorkerSettings,
        connector_for: ConnectorFactory,
        rng: random.Random | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.table = table
        self.systems = systems
        self.settings = settings
        self.connector_for = connector_for
        self.rng = rng or random.Random()  # noqa: S311 - jitter, not security
        self.clock = clock

    def deliver(self, received: Sequence[Received]) -> BatchReport:
        report = BatchReport()
        messages: dict[str, tuple[Received, JobMessage]] = {}
        for message in received:
            parsed = self._accept(message, report)
            if parsed is not None:
                messages[message.message_id] = (message, parsed)
        jobs = job_store.load_jobs(
            self.table, [(m.request_id, m.system) for _, m in messages.values()]
        )
        claimed: dict[str, list[tuple[Received, Item, int]]] = {}
        for message, parsed in messages.values():
            job = jobs.get(parsed.job_id)
            if job is None:  # not written yet, or a stray reference: let redrive keep it
                self._retry(report, message, message.receive_count, "job not found")
            elif job.get("status") in job_store.FINISHED:
                report.decisions[message.message_id] = ACK
                report.counts["JobsSkippedFinished"] += 1
                logger.info("job already finished", job_id=parsed.job_id, status=job["status"])
            else:
                attempt = self._claim(job)
                if attempt is None:
                    self._retry(report, message, message.receive_count, "job leased elsewhere")
                else:
                    claimed.setdefault(parsed.system, []).append((message, job, attempt))
        for system, entries in claimed.items():
            self._deliver_system(self.systems.get(system), entries, report)
        return report

    def _accept(self, message: Received, report: BatchReport) -> JobMessage | None:
        try:
            parsed = JobMessage.model_validate_json(message.body)
        except ValidationError:
            self._retry(report, message, message.receive_count, "malformed job message")
            return None
        wanted = self.settings.system_name
        if wanted is not None and queue_key(parsed.system) != queue_key(wanted):
            self._retry(report, message, message.receive_count, "message for another system")
            return None
        if parsed.system not in {s.name for s in self.systems.systems}:
            self._retry(report, message, message.receive_count, "unknown system")
            return None
        return parsed

    def _claim(self, job: Item) -> int | None:
        now = self.clock()
        return job_store.claim(
            self.table, job, iso(now), int(now.timestamp()), self.settings.lease_seconds
        )

    def _deliver_system(
        self, system: SystemConfig, entries: list[tuple[Received, Item, int]], report: BatchReport
    ) -> None:
        jobs = [to_job(item) for _, item, _ in entries]
        try:
            outcomes = {o.job_id: o for o in self.connector_for(system).deliver(jobs)}
        except (ConfigError, GetParameterError, TransformParameterError) as error:
            # An operator must fix options or credentials: retry until then (or the DLQ).
            reason = f"configuration: {type(error).__name__}"
            logger.error("connector unusable", system=system.name, error=str(error))
            failure = DeliveryError(reason, retryable=True)
            outcomes = {j.job_id: Outcome(j.job_id, None, error=failure) for j in jobs}
        for message, item, attempt in entries:
            self._settle(message, item, attempt, outcomes[item["job_id"]], report)

    def _settle(
        self, message: Received, job: Item, attempt: int, outcome: Outcome, report: BatchReport
    ) -> None:
        now = iso(self.clock())
        receipt: Item = {
            "http_status": outcome.http_status,
            "vendor_ref": outcome.vendor_ref,
            "identifier_types_sent": list(outcome.identifier_types_sent),
            "note": outcome.note,
        }
        error = outcome.error
        status: str
        if outcome.status is not None:
            status, decision = outcome.status, ACK
            receipt["completed_at"] = now
        elif error is None or not error.retryable:
            status, decision = "failed", ACK
            receipt["completed_at"] = now
            receipt["error"] = error.reason if error else "unknown failure"
        elif message.receive_count >= self.settings.max_receive_count:
            # Last allowed receive: the job fails for good and SQS moves the message to the DLQ.
            status, decision = "failed", Decision(0, "retries exhausted")
            receipt["completed_at"] = now
            receipt["error"] = f"retries exhausted: {error.reason}"
        else:
            delay = retry_delay(
                error,
                attempt,
                self.settings.retry_base_seconds,
                self.settings.retry_max_seconds,
                self.rng,
            )
            status, decision = "pending", Decision(delay, error.reason)
            receipt["error"] = error.reason
        if job_store.record(self.table, job, status, receipt, now):
            record_delivered(self.table, job, status, now)  # identity issue 10: confirmed only
        report.decisions[message.message_id] = decision
        report.counts[COUNTER[status]] += 1
        logger.info(
            "delivery attempt",
            job_id=job["job_id"],
            system=job["system"],
            attempt=attempt,
            status=status,
            http_status=outcome.http_status,
            error=receipt.get("error"),
            retry_in=decision.retry_in,
        )

    def _retry(self, report: BatchReport, message: Received, attempt: int, reason: str) -> None:
        delay = backoff_seconds(
            attempt, self.settings.retry_base_seconds, self.settings.retry_max_seconds, self.rng
        )
        report.decisions[message.message_id] = Decision(delay, reason)
        report.counts["MessagesRejected"] += 1
        logger.warning("message not delivered", message_id=message.message_id, reason=reason)


COUNTER = {
    "done": "JobsDone",
    "no_record": "JobsNoRecord",
    "failed": "JobsFailed",
    "pending": "JobsRetried",
}


def queue_key(name: str) -> str:
    """SYSTEM_NAME may be the system name or its queue key (template.yaml has only the latter)."""
    return re.sub(r"[^A-Za-z0-9]", "", name)


def to_job(item: Item) -> Job:
    identifiers = tuple(
        Identifier(i["type"], i["value"]) for i in item.get("identifiers", []) if i.get("value")
    )
    return Job(
        job_id=item["job_id"],
        request_id=item["request_id"],
        system=item["system"],
        purposes=tuple(item.get("purposes", [])),
        identifiers=identifiers,
    )
