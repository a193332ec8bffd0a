"""What the event-source pollers read straight from moto's memory instead of through its API.

Why (profiled in docs/performance.md): a DynamoDB Streams GetRecords through boto3 and moto
cost ~3.5 ms of CPU *per record* (moto re-serialises every image through its generic response
serialiser, botocore parses it back), and every write of the table makes a record: about ten
per opt-out, of which the resolver's filter keeps one. An empty ReceiveMessage costs ~2 ms,
and seven queue pollers asking ten times a second kept a third of a core busy doing nothing.
Lambda's own pollers read these services through internal APIs too; what the handlers get is
unchanged: the same records in the same order, converted and filtered as before
(`local/stream_records.py`, `local/patterns.py`), and the queues are still received, deleted
and redriven through the SQS API.

- `StreamReader` returns the raw records of the table's stream after a sequence number, and
  drops the records every consumer has read (moto otherwise keeps every record of the stack's
  life, images included: DynamoDB Streams keeps 24 hours). The local stack's stream poller is
  the only reader of its stream.
- `has_visible_message` answers whether a ReceiveMessage could return anything now, so an
  idle poller does not call moto at all.

Both hold the moto guard's lock (local/moto_guard.py): moto's structures are only ever read or
changed by one thread at a time, whichever path the call takes. Written against moto 5.2
(pinned in requirements/dev.txt); tests/unit/local/test_moto_reads.py checks them against the
API's answers.
"""

from dataclasses import dataclass
from typing import Any

from moto.core.models import DEFAULT_ACCOUNT_ID
from moto.dynamodb.models import dynamodb_backends
from moto.sqs.models import sqs_backends

from local.moto_guard import LOCK


@dataclass(frozen=True)
class StreamBatch:
    records: list[dict[str, Any]]  # GetRecords' raw shape (ApproximateCreationDateTime a datetime)
    next_sequence: int  # where the next read starts


class StreamReader:
    """The one shard moto keeps per table stream, read in place (no iterators, no copies)."""

    def __init__(self, stream_arn: str) -> None:
        # arn:aws:dynamodb:<region>:<account>:table/<name>/stream/<label>
        parts = stream_arn.split(":", 5)
        self._region, self._account = parts[3], parts[4] or DEFAULT_ACCOUNT_ID
        self._table = parts[5].split("/")[1]

    def _shard(self) -> Any:
        table = dynamodb_backends[self._account][self._region].get_table(self._table)
        return table.stream_shard

    def shard_id(self) -> str | None:
        with LOCK:
            shard = self._shard()
            return None if shard is None else str(shard.id)

    def start(self, iterator_type: str) -> int:
        """The first sequence number to read for TRIM_HORIZON or LATEST."""
        with LOCK:
            shard = self._shard()
            first = int(shard.starting_sequence_number)
            return first + len(shard.items) if iterator_type == "LATEST" else first

    def read(self, after: int, limit: int = 1000) -> StreamBatch:
        """Records from sequence number `after` on; records before it are dropped from moto."""
        with LOCK:
            shard = self._shard()
            first = int(shard.starting_sequence_number)
            consumed = max(0, min(after - first, len(shard.items)))
            if consumed:
                # Trim what was read: sequence numbers stay as they were (moto numbers a new
                # record from the shard's first number plus its record count).
                del shard.items[:consumed]
                shard.starting_sequence_number = first + consumed
                first += consumed
            start = max(after, first) - first  # never behind what is kept (a slice would wrap)
            found = shard.items[start : start + limit]
            return StreamBatch([r.record for r in found], first + start + len(found))


def has_visible_message(queue_url: str) -> bool:
    """True when the queue holds a message a ReceiveMessage would return now."""
    # http://sqs.<region>.localhost.localstack.cloud:4566/<account>/<name> (or moto's own form)
    *_, account, name = queue_url.rstrip("/").split("/")
    region = _region_of(queue_url)
    with LOCK:
        queue = sqs_backends[account][region].queues.get(name)
        if queue is None:
            return True  # let the API call say what is wrong
        return any(m.visible and not m.delayed for m in queue._messages)


def _region_of(queue_url: str) -> str:
    host = queue_url.split("/")[2]
    labels = host.split(".")
    return labels[1] if labels[0] == "sqs" and len(labels) > 2 else "us-east-1"
