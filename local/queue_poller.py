"""Poll one system's jobs queue and invoke its worker as Lambda's SQS event source would.

Messages listed in the answer's batchItemFailures (or the whole batch, when the function
raises) are left on the queue: they come back after their visibility timeout, which the
worker may shorten for back-off, and SQS's redrive policy moves them to the DLQ after
maxReceiveCount receives. Everything else is deleted.
"""

import base64
import hashlib
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from local import crash_report
from local.moto_reads import has_visible_message
from local.template_config import QueueSource

log = logging.getLogger("local.queue")

Invoke = Callable[[dict[str, Any]], Any]
Peek = Callable[[str], bool]
REGION = "us-east-1"
SQS_MAX_BATCH = 10  # ReceiveMessage returns at most 10; Lambda polls several times for more


class QueuePoller:
    def __init__(
        self,
        sqs: Any,
        system: str,
        queue_url: str,
        queue_arn: str,
        source: QueueSource,
        invoke: Invoke,
        stop: threading.Event,
        poll_interval: float = 0.05,
        has_visible: Peek = has_visible_message,
    ) -> None:
        self._sqs = sqs
        self._has_visible = has_visible
        self.system = system
        self._url = queue_url
        self._arn = queue_arn
        self._source = source
        self._invoke = invoke
        self._stop = stop
        self._interval = poll_interval

    def run(self) -> None:
        while not self._stop.is_set():
            try:
                busy = self.poll_once()
            except Exception as error:  # noqa: BLE001 - keep polling; log the class only
                crash_report.report(log, f"{self.system} queue poll", error)
                busy = False
            if not busy:
                self._stop.wait(self._interval)

    def poll_once(self) -> bool:
        messages = self._receive()
        if not messages:
            return False
        records = [sqs_record(m, self._arn) for m in messages]
        failed = self._run_batch(records)
        done = [m for m in messages if m["MessageId"] not in failed]
        if done:
            self._sqs.delete_message_batch(
                QueueUrl=self._url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)
                ],
            )
        return True

    def _receive(self) -> list[dict[str, Any]]:
        wanted = max(1, self._source.batch_size)
        deadline = time.monotonic() + self._source.max_batching_window
        messages: list[dict[str, Any]] = []
        while len(messages) < wanted:
            got: list[dict[str, Any]] = []
            if self._has_visible(self._url):  # an idle queue costs no ReceiveMessage
                got = self._sqs.receive_message(
                    QueueUrl=self._url,
                    MaxNumberOfMessages=min(SQS_MAX_BATCH, wanted - len(messages)),
                    MessageSystemAttributeNames=["All"],
                    MessageAttributeNames=["All"],
                ).get("Messages", [])
            messages.extend(got)
            if not got and (not messages or time.monotonic() >= deadline):
                break
            if not got:
                self._stop.wait(self._interval)
        return messages

    def _run_batch(self, records: list[dict[str, Any]]) -> set[str]:
        """The message ids that must stay on the queue."""
        all_ids = {r["messageId"] for r in records}
        try:
            answer = self._invoke({"Records": records})
        except Exception as error:  # noqa: BLE001 - a function error fails the whole batch
            # Powertools raises BatchProcessingError when every record failed: Lambda then
            # leaves the whole batch to come back after its visibility timeout.
            crash_report.report(log, f"worker-{self.system} (batch stays queued)", error)
            return all_ids
        failed = failed_ids(answer, all_ids, self._source.report_batch_item_failures)
        receives = ",".join(r["attributes"]["ApproximateReceiveCount"] for r in records)
        log.info(
            "queue %s -> worker: %d job(s), %d failed (receive count %s)",
            self.system,
            len(records),
            len(failed),
            receives,
        )
        return failed


def failed_ids(answer: Any, batch_ids: set[str], partial: bool) -> set[str]:
    """Lambda's reading of an SQS function's answer (an unknown identifier fails the batch)."""
    if not partial or not isinstance(answer, dict):
        return set()
    failures = answer.get("batchItemFailures") or []
    failed: set[str] = set()
    for failure in failures:
        identifier = failure.get("itemIdentifier") if isinstance(failure, dict) else None
        if not identifier or identifier not in batch_ids:
            return set(batch_ids)
        failed.add(identifier)
    return failed


def sqs_record(message: dict[str, Any], queue_arn: str) -> dict[str, Any]:
    """ReceiveMessage output -> one record of Lambda's SQS event."""
    body = message["Body"]
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": body,
        "attributes": dict(message.get("Attributes", {})),
        "messageAttributes": {
            name: _attribute(value) for name, value in message.get("MessageAttributes", {}).items()
        },
        "md5OfBody": message.get("MD5OfBody") or hashlib.md5(body.encode()).hexdigest(),  # noqa: S324 - SQS's own checksum
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": REGION,
    }


def _attribute(value: dict[str, Any]) -> dict[str, Any]:
    # Lambda spells message attributes in camelCase, unlike ReceiveMessage.
    converted: dict[str, Any] = {
        "dataType": value.get("DataType", "String"),
        "stringListValues": [],
        "binaryListValues": [],
    }
    if "StringValue" in value:
        converted["stringValue"] = value["StringValue"]
    if "BinaryValue" in value:
        converted["binaryValue"] = base64.b64encode(value["BinaryValue"]).decode()
    return converted
