"""Resolver: DynamoDB Streams -> identity resolution, effective state and job fan-out.

Partial batch responses (Powertools BatchProcessor): one poisoned record fails alone; the
event source mapping bisects and retries it, then sends it to the on-failure queue. A record
that fails is reported to the stream, not raised, so Lambda's Errors metric never counts it:
each one is logged ("event failed") and counted (`EventsFailed`, its alarm) here instead.
"""

import traceback
from functools import cache
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from optout import aws
from optout.jobs_queue import JobQueue
from optout.observability import log_context, logger, metrics
from optout.resolver.clusters import Caps
from optout.resolver.outbox import Outbox
from optout.resolver.service import Resolver
from optout.settings import Settings
from optout.store import keys
from optout.store.codec import deserialize
from optout.store.table import Table
from optout.systems import load_systems
from optout.time_budget import stop_before_end

# A batch whose every record failed is answered like any other, with every record in
# batchItemFailures (the stream retries and bisects them), not raised: Powertools' exception
# for it carries each record's exception text, which Lambda would log whole (_note_failure
# logs the class and line only). The worker does the same (functions/worker/app.py).
processor = BatchProcessor(
    event_type=EventType.DynamoDBStreams, raise_on_entire_batch_failure=False
)
_outbox = Outbox()  # filled by the batch's records, flushed once per invocation
# Time a replay leaves the rest of the batch and the flush (half what is left, if less): it
# starts no job after that and writes a follow-up event for the rest.
REPLAY_MARGIN_SECONDS = 20.0
_deadline = [0.0]  # this invocation's, as a time.monotonic() instant
_PACKAGE = "/python/optout/"  # the layer's package, on Lambda and in a checkout


@cache  # one per warm container; built on first use, not at import (tests build theirs)
def resolver() -> Resolver:
    settings = Settings.from_env()
    return Resolver(
        Table.connect(settings.table_name),
        load_systems(settings.systems_config),
        JobQueue(aws.client("sqs"), settings.queue_url_template),
        Caps(
            max_size=settings.max_cluster_size,
            max_asserters=settings.max_asserters,
            max_asserted=settings.max_asserted,
            max_cluster_asserted=settings.max_cluster_asserted,
        ),
        retention_days=settings.record_retention_days,
        no_record_quiet_hours=settings.no_record_quiet_hours,
    )


def record_handler(record: DynamoDBRecord) -> None:
    try:
        _resolve_record(record)
    except Exception as error:
        _note_failure(record, error)
        raise  # the processor reports it in batchItemFailures


def _note_failure(record: DynamoDBRecord, error: Exception) -> None:
    """One log line and one `EventsFailed` for a record that failed: where, never a value.

    The exception's message is left out (a vendor's or AWS's text is not ours to vouch for);
    its class and the line that raised it say what the operator needs."""
    stream = record.raw_event.get("dynamodb", {})
    image = stream.get("NewImage") or {}
    metrics.add_metric(name="EventsFailed", unit=MetricUnit.Count, value=1)
    logger.error(
        "event failed",
        extra={
            "request_id": image.get("request_id", {}).get("S"),
            "event_type": image.get("event_type", {}).get("S"),
            "sequence_number": stream.get("SequenceNumber"),
            "error": type(error).__name__,
            "error_at": _raised_at(error),
        },
    )


def _raised_at(error: BaseException) -> str:
    """file:line that raised it: the innermost frame in the layer's optout package (on Lambda
    /opt/python/optout) or this file, else the innermost of all (a library's)."""
    frames = traceback.extract_tb(error.__traceback__)
    ours = [f for f in frames if _PACKAGE in f.filename or f.filename == __file__]
    if not frames:
        return "unknown"
    frame = (ours or frames)[-1]
    _, package, inside = frame.filename.rpartition(_PACKAGE)
    name = f"optout/{inside}" if package else frame.filename.rpartition("/")[2]
    return f"{name}:{frame.lineno}"


def _resolve_record(record: DynamoDBRecord) -> None:
    image = record.raw_event.get("dynamodb", {}).get("NewImage")
    if record.raw_event.get("eventName") != "INSERT" or not image:
        return  # FilterCriteria already drops these; a stray one is not an error
    item = deserialize(image)
    if item.get("sk") != keys.EVENT_SK:
        return
    outcome = resolver().process(item, _outbox, _deadline[0])
    metrics.add_metric(name="EventsResolved", unit=MetricUnit.Count, value=1)
    queued = len(outcome.jobs) + outcome.further  # jobs, not systems (review s31 union)
    metrics.add_metric(name="JobsQueued", unit=MetricUnit.Count, value=queued)
    logger.info(
        "resolved",
        extra={
            "request_id": outcome.request_id,
            "cluster_size": outcome.cluster_size,
            "jobs": outcome.jobs,
            "links_added": outcome.links_added,
            "links_held": outcome.links_held,
        },
    )


@log_context()
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    _outbox.clear()
    left = context.get_remaining_time_in_millis() / 1000
    _deadline[0] = stop_before_end(left, REPLAY_MARGIN_SECONDS)
    response = process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
    # One SendMessageBatch per ten jobs of a queue across the whole batch, then the states.
    # It also checks that no state was derived from a snapshot another resolver has since
    # changed. If it fails the invocation fails and the stream retries the batch: jobs are
    # already stored, so the replay only re-sends messages the workers recognise.
    resolver().flush(_outbox)
    return response
