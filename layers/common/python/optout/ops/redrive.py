"""A system's dead-letter queue back to its jobs queue (`optout replay` does this first).

What lands in a DLQ is a job reference the worker gave up on. Sent back, each is handled as
any message: a job still pending is delivered; a job that failed for good keeps no identifier
values, so the worker acknowledges it and leaves it to the replay route, which re-plans it
from the identities' nodes (delivery/service.py). Messages hold references only, never
identifiers. Bounded per call: the CLI calls again while some remain.
"""

from collections.abc import Callable
from typing import Any

from optout.api_models import RedriveOut
from optout.errors import NotFound
from optout.systems import SystemsConfig

MAX_PER_CALL = 500
STOP_WITH_SECONDS_LEFT = 5.0


class RedriveService:
    def __init__(self, sqs: Any, queue_url_template: str, systems: SystemsConfig | None) -> None:
        self._sqs = sqs
        self._template = queue_url_template
        self._systems = systems

    def redrive(self, system: str, time_left: Callable[[], float]) -> RedriveOut:
        config = {s.name: s for s in self._systems.systems}.get(system) if self._systems else None
        if config is None or not self._template:
            raise NotFound("no system with this name", field="system")
        jobs = self._template.format(queue_key=config.queue_key)
        dlq = jobs.removesuffix("-jobs") + "-dlq"
        moved = 0
        while moved < MAX_PER_CALL and time_left() > STOP_WITH_SECONDS_LEFT:
            page = self._sqs.receive_message(
                QueueUrl=dlq, MaxNumberOfMessages=10, VisibilityTimeout=30, WaitTimeSeconds=0
            )
            messages = page.get("Messages", [])
            if not messages:
                break
            entries = [{"Id": str(n), "MessageBody": m["Body"]} for n, m in enumerate(messages)]
            sent = self._sqs.send_message_batch(QueueUrl=jobs, Entries=entries)
            ok = {entry["Id"] for entry in sent.get("Successful", [])}
            done = [
                {"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]}
                for n, m in enumerate(messages)
                if str(n) in ok
            ]
            if done:  # a message not sent stays in the DLQ (visible again in 30 s)
                self._sqs.delete_message_batch(QueueUrl=dlq, Entries=done)
            moved += len(done)
        attributes = self._sqs.get_queue_attributes(
            QueueUrl=dlq, AttributeNames=["ApproximateNumberOfMessages"]
        )["Attributes"]
        remaining = int(attributes.get("ApproximateNumberOfMessages", 0))
        return RedriveOut(system=system, moved=moved, remaining=remaining)
