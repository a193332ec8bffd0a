"""Read the table's stream and invoke the resolver as Lambda's event-source mapping would.

Per shard, in order: filter records with the function's FilterCriteria (dropped records are
checkpointed, as Lambda does), batch up to BatchSize, invoke, and on a partial batch response
retry from the first failed record. A batch that keeps failing is retried up to
MaximumRetryAttempts (halved each time when BisectBatchOnFunctionError is set), then its
description goes to the on-failure destination and the shard moves on.
"""

import logging
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from local import crash_report
from local.moto_reads import StreamReader
from local.patterns import matches_any
from local.stream_records import arrival_iso, request_ref, sequence_number, to_lambda_record
from local.template_config import StreamSource

log = logging.getLogger("local.stream")

Invoke = Callable[[dict[str, Any]], Any]
OnFailure = Callable[[dict[str, Any]], None]

MAX_RETRY_DELAY_SECONDS = 2.0
READ_LIMIT = 1000  # GetRecords' most per call


@dataclass
class _Shard:
    shard_id: str
    position: int  # sequence number of the next record to read
    pending: list[dict[str, Any]] = field(default_factory=list)
    attempts: int = 0
    limit: int = 0  # current batch cap (shrinks when bisecting)
    first_pending_at: float = 0.0


@dataclass(frozen=True)
class BatchOutcome:
    """How many records of the batch are settled (0..len), and whether the rest must retry."""

    settled: int
    failed: bool


class StreamPoller:
    def __init__(
        self,
        reader: StreamReader,
        stream_arn: str,
        source: StreamSource,
        invoke: Invoke,
        on_failure: OnFailure,
        stop: threading.Event,
        poll_interval: float = 0.05,
    ) -> None:
        self._reader = reader
        self._arn = stream_arn
        self._source = source
        self._invoke = invoke
        self._on_failure = on_failure
        self._stop = stop
        self._interval = poll_interval
        self._shards: dict[str, _Shard] = {}

    def run(self) -> None:
        while not self._stop.is_set():
            try:
                busy = self.poll_once()
            except Exception as error:  # noqa: BLE001 - keep polling; moto hiccups are transient
                crash_report.report(log, "stream poll", error)
                busy = False
            if not busy:
                self._stop.wait(self._interval)

    def poll_once(self) -> bool:
        """Fetch new records and run at most one batch per shard; True if work was done."""
        self._refresh_shards()
        busy = False
        for shard in list(self._shards.values()):
            busy |= self._fetch(shard)
            busy |= self._process(shard)
        return busy

    # -- reading -------------------------------------------------------------------------

    def _refresh_shards(self) -> None:
        # moto keeps one shard per stream; a table whose stream was off has none yet.
        shard_id = self._reader.shard_id()
        if shard_id is not None and shard_id not in self._shards:
            start = self._reader.start(self._source.starting_position)
            self._shards[shard_id] = _Shard(shard_id, start, limit=self._source.batch_size)

    def _fetch(self, shard: _Shard) -> bool:
        read = self._reader.read(shard.position, READ_LIMIT)
        shard.position = read.next_sequence
        kept = 0
        for raw in read.records:
            record = to_lambda_record(raw, self._arn)
            if matches_any(self._source.filters, record):
                if not shard.pending:
                    shard.first_pending_at = time.monotonic()
                shard.pending.append(record)
                kept += 1
        if read.records:
            log.debug("stream: %d record(s) read, %d pass the filter", len(read.records), kept)
        return bool(read.records)

    # -- invoking ------------------------------------------------------------------------

    def _process(self, shard: _Shard) -> bool:
        if not shard.pending or not self._batch_ready(shard):
            return False
        batch = shard.pending[: max(1, min(shard.limit, self._source.batch_size))]
        outcome = self._run_batch(batch)
        if not outcome.failed:
            del shard.pending[: len(batch)]
            shard.attempts, shard.limit = 0, self._source.batch_size
            return True
        del shard.pending[: outcome.settled]
        remaining = batch[outcome.settled :]
        shard.attempts += 1
        if self._exhausted(shard.attempts):
            self._give_up(shard, remaining)
            del shard.pending[: len(remaining)]
            shard.attempts, shard.limit = 0, self._source.batch_size
            return True
        if self._source.bisect_on_error and len(remaining) > 1:
            shard.limit = max(1, len(remaining) // 2)
        delay = min(MAX_RETRY_DELAY_SECONDS, 0.1 * 2 ** (shard.attempts - 1))
        log.warning(
            "resolver batch failed from %s: retry %d in %.1fs",
            request_ref(remaining[0]),
            shard.attempts,
            delay,
        )
        self._stop.wait(delay)
        return True

    def _batch_ready(self, shard: _Shard) -> bool:
        window = self._source.max_batching_window
        full = len(shard.pending) >= self._source.batch_size
        return full or window <= 0 or time.monotonic() - shard.first_pending_at >= window

    def _run_batch(self, batch: list[dict[str, Any]]) -> BatchOutcome:
        refs = ", ".join(request_ref(r) for r in batch[:3]) + (" ..." if len(batch) > 3 else "")
        log.info("stream -> resolver: %d record(s) [%s]", len(batch), refs)
        try:
            answer = self._invoke({"Records": batch})
        except Exception as error:  # noqa: BLE001 - a function error fails the whole batch
            crash_report.report(log, "resolver (whole batch fails)", error)
            return BatchOutcome(0, failed=True)
        return settle(batch, answer, self._source.report_batch_item_failures)

    def _exhausted(self, attempts: int) -> bool:
        limit = self._source.maximum_retry_attempts
        return limit >= 0 and attempts > limit

    def _give_up(self, shard: _Shard, records: list[dict[str, Any]]) -> None:
        log.error(
            "resolver retries exhausted for %d record(s) from %s: sent to on-failure destination",
            len(records),
            request_ref(records[0]),
        )
        self._on_failure(failure_message(self._arn, shard.shard_id, records, self._source))


def settle(batch: Sequence[dict[str, Any]], answer: Any, partial: bool) -> BatchOutcome:
    """Lambda's reading of a stream function's answer.

    Without ReportBatchItemFailures any normal return settles the batch. With it, the lowest
    failed sequence number is the checkpoint; an identifier that is empty or not in the batch
    fails the whole batch, as Lambda does.
    """
    if not partial or not isinstance(answer, dict):
        return BatchOutcome(len(batch), failed=False)
    failures = answer.get("batchItemFailures") or []
    if not failures:
        return BatchOutcome(len(batch), failed=False)
    positions = {sequence_number(r): i for i, r in enumerate(batch)}
    indexes: list[int] = []
    for failure in failures:
        identifier = failure.get("itemIdentifier") if isinstance(failure, dict) else None
        if not identifier or identifier not in positions:
            return BatchOutcome(0, failed=True)
        indexes.append(positions[identifier])
    return BatchOutcome(min(indexes), failed=True)


def failure_message(
    stream_arn: str, shard_id: str, records: list[dict[str, Any]], source: StreamSource
) -> dict[str, Any]:
    """What Lambda sends an on-failure destination for a stream: batch metadata, no records."""
    return {
        "requestContext": {
            "requestId": str(uuid.uuid4()),
            "functionArn": f"arn:aws:lambda:us-east-1:123456789012:function:{source.function}",
            "condition": "RetryAttemptsExhausted",
            "approximateInvokeCount": source.maximum_retry_attempts + 1,
        },
        "responseContext": {
            "statusCode": 200,
            "executedVersion": "$LATEST",
            "functionError": "Unhandled",
        },
        "version": "1.0",
        "timestamp": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        "DDBStreamBatchInfo": {
            "shardId": shard_id,
            "startSequenceNumber": sequence_number(records[0]),
            "endSequenceNumber": sequence_number(records[-1]),
            "approximateArrivalOfFirstRecord": arrival_iso(records[0]),
            "approximateArrivalOfLastRecord": arrival_iso(records[-1]),
            "batchSize": len(records),
            "streamArn": stream_arn,
        },
    }
