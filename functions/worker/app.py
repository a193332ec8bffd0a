"""Downstream worker: SQS job messages -> connector calls -> receipts. One code path for every
system; in production one function per system (SYSTEM_NAME set), locally all in one process.
"""

import time
from collections import Counter
from collections.abc import Callable
from functools import cache, cached_property
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import BotoCoreError, ClientError

from optout import aws
from optout.connectors import Connector, build_connector
from optout.connectors.credentials import SecretSource
from optout.connectors.http import HttpClient, RetryPolicy
from optout.connectors.pace import Pacer
from optout.delivery.messages import JobMessage, queue_url_from_arn
from optout.delivery.retry import longest_visibility
from optout.delivery.service import (
    ConfirmScheduler,
    Decision,
    DeliveryService,
    Received,
    aws_error,
)
from optout.delivery.settings import END_MARGIN_SECONDS, WorkerSettings
from optout.observability import log_context, logger, metrics
from optout.store.table import Table
from optout.systems import SystemConfig, load_systems
from optout.time_budget import TimeBudget

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

# A batch whose every message is to be retried is an expected answer (a vendor outage), not a
# function error: report the failures instead of raising, so the Errors alarm means a bug.
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


class RetryLater(Exception):
    """Reported as a batch item failure: SQS redelivers the message after its visibility."""


class Services:
    """Built once per container on first use (not at import: tests build theirs under moto)."""

    def __init__(self) -> None:
        settings = WorkerSettings.from_env()
        self.settings = settings
        self.secrets = SecretSource(settings.local_secrets_file)
        self.http = HttpClient(
            settings.http_timeout_seconds, RetryPolicy(attempts=settings.http_attempts)
        )
        self._connectors: dict[str, Connector[Any]] = {}
        self._pacers: dict[str, Pacer] = {}
        self._invocation_started: float | None = None  # on pace_clock, at the handler's start
        # What the pacers read and wait with (a test's virtual clock replaces both).
        self.pace_clock: Callable[[], float] = time.monotonic
        self.pace_sleep: Callable[[float], None] = time.sleep
        self.delivery = DeliveryService(
            Table.connect(settings.table_name),
            load_systems(settings.systems_config),
            settings,
            self.connector_for,
        )

    @cached_property
    def sqs(self) -> "SQSClient":
        # Only a retry (its visibility) or a submitted job (its status check) calls SQS: a
        # container whose jobs complete never creates this client.
        return aws.client("sqs")

    def connector_for(self, system: SystemConfig) -> Connector[Any]:
        # Kept per container so OAuth tokens are reused; connectors re-read their secret
        # through optout.secrets' 300 s cache each time they use it.
        if system.name not in self._connectors:
            http = self.http.paced(self.pacer_for(system))
            self._connectors[system.name] = build_connector(system, self.secrets, http)
        return self._connectors[system.name]

    def pacer_for(self, system: SystemConfig) -> Pacer:
        """The system's pace in this container, kept across its invocations: one of at most
        MAX_CONCURRENCY at once, so together they stay within rate_limit_per_second."""
        if system.name not in self._pacers:
            pacer = Pacer.for_system(
                system.rate_limit_per_second,
                self.settings.max_concurrency,
                clock=self.pace_clock,
                sleep=self.pace_sleep,
            )
            pacer.begin(self._invocation_started)
            self._pacers[system.name] = pacer
        return self._pacers[system.name]

    def begin_invocation(self) -> None:
        """Each pace's first request of this invocation waits one interval from now (Pacer.begin):
        a slot's previous invocation may have run in another container (docs/connectors.md,
        "Pace")."""
        self._invocation_started = self.pace_clock()
        for pacer in self._pacers.values():
            pacer.begin(self._invocation_started)

    def connector_counts(self) -> Counter[str]:
        """What this container's connectors counted since the last call (Connector.counts:
        e.g. Meta's removals sent with the ad account unchecked), for the batch's metrics."""
        taken: Counter[str] = Counter()
        for connector in self._connectors.values():
            taken.update(connector.take_counts())
        return taken

    def paced_seconds(self) -> float:
        """Seconds vendor calls have waited for their pace in this container (a metric)."""
        return sum(pacer.waited for pacer in self._pacers.values())

    def scheduler(self, queue_url: str) -> ConfirmScheduler:
        """Status checks of submitted jobs: a delayed message to this worker's own queue."""

        def schedule(message: JobMessage, delay_seconds: int) -> None:
            self.sqs.send_message(
                QueueUrl=queue_url,
                MessageBody=message.to_json(),
                DelaySeconds=delay_seconds,
            )

        return schedule


@cache  # one per warm container; built on first use, not at import (tests build theirs)
def services() -> Services:
    return Services()


_decisions: dict[str, Decision] = {}
_started: list[float] = [0.0]  # time.monotonic() at the invocation's start


def record_handler(record: SQSRecord) -> None:
    decision = _decisions.get(record.message_id)
    if decision is None or decision.retry_in is None:
        return
    # SQS refuses a visibility past 12 h from the receive; a longer wait is the job's
    # retry_at, kept by hiding the message again each time it is back early.
    elapsed = time.monotonic() - _started[0]
    longest = longest_visibility(services().settings.batch_window_seconds, elapsed)
    try:
        services().sqs.change_message_visibility(
            QueueUrl=queue_url_from_arn(record.event_source_arn),
            ReceiptHandle=record.receipt_handle,
            VisibilityTimeout=min(decision.retry_in, longest),
        )
    except (ClientError, BotoCoreError) as error:
        # The message returns after the queue's own timeout; a job with a later retry_at is
        # then hidden again without a vendor call. Still a fault to look at, refused or a
        # network error (ReadTimeoutError, EndpointConnectionError) past botocore's retries.
        metrics.add_metric(name="VisibilityRefused", unit=MetricUnit.Count, value=1)
        logger.error("could not set visibility", error_code=aws_error(error))
    raise RetryLater(decision.reason)


@log_context()
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    _started[0] = time.monotonic()
    budget = TimeBudget(
        lambda: context.get_remaining_time_in_millis() / 1000, margin_seconds=END_MARGIN_SECONDS
    )
    received = [
        Received(
            r["messageId"],
            r["body"],
            int(r.get("attributes", {}).get("ApproximateReceiveCount", 1)),
        )
        for r in event.get("Records", [])
    ]
    records = event.get("Records", [])
    # One event source per function: every record of a batch comes from the same queue.
    queue_url = queue_url_from_arn(records[0]["eventSourceARN"]) if records else ""
    retried_before = services().http.retried
    services().begin_invocation()
    paced_before = services().paced_seconds()
    # Vendor calls and the batch's systems stop before the function's timeout: a call cut
    # short is an attempt with its receipt, a job not started is retried (docs/reliability.md).
    with services().http.bounded_by(budget):
        report = services().delivery.deliver(received, services().scheduler(queue_url), budget)
    report.counts["VendorCallsRetried"] += services().http.retried - retried_before
    report.counts.update(services().connector_counts())
    for name, count in report.counts.items():
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=count)
    paced = services().paced_seconds() - paced_before
    if paced > 0:  # the batch's wait for its vendor's rate limit (no line per call: log bytes)
        metrics.add_metric(name="VendorPaceSeconds", unit=MetricUnit.Seconds, value=paced)
    _decisions.clear()
    _decisions.update(report.decisions)
    return process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
