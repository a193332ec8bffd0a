"""A system's dead-letter queue back to its jobs queue (`optout replay` does this first).

What lands in a DLQ is a job reference the worker gave up on. Sent back, each is handled as
any message: a job still pending is delivered; a job that failed for good keeps no identifier
values, so the worker acknowledges it and leaves it to the replay route, which re-plans it
from the identities' nodes (delivery/service.py). Messages hold references only, never
identifiers. Bounded per call: the CLI calls again while some remain.

Receives long-poll: a short poll samples a subset of SQS's servers and may answer nothing
while the queue holds messages, so an empty answer does not mean an empty queue. The queue's
own counts are approximate too (AWS: they may settle only a minute after the last send), so
a call always receives once before it reads them: a count still 0 for letters just
dead-lettered does not end it with nothing moved. It goes on while the count says messages
are visible, until two long polls in a row answer nothing (a count still high after the last
letter moved: `remaining` then counts only letters in flight) or the call's time is spent.
"""

from collections.abc import Callable
from typing import Any

from optout.api_models import RedriveOut
from optout.errors import NotFound
from optout.systems import SystemsConfig

MAX_PER_CALL = 500
STOP_WITH_SECONDS_LEFT = 5.0
LONG_POLL_SECONDS = 2  # a receive waits at most this for a message (SQS allows 1-20)
MAX_ROUNDS = 100  # receives per call, whatever the clock says (each empty one waits on AWS)
_COUNTS = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]


class RedriveService:
    def __init__(self, sqs: Any, queue_url_template: str, systems: SystemsConfig | None) -> None:
        self._sqs = sqs
        self._template = queue_url_template
        self._systems = systems

    def redrive(self, system: str, time_left: Callable[[], float]) -> RedriveOut:
        config = {s.name: s for s in self._systems.systems}.get(system) if self._systems else None
        if config is None or not self._template:  # the route names close ones first (review.py)
            raise NotFound("no system with this name", field="system")
        jobs = self._template.format(queue_key=config.queue_key)
        dlq = jobs.removesuffix("-jobs") + "-dlq"
        moved = empty = 0
        counts: tuple[int, int] | None = None
        for _ in range(MAX_ROUNDS):
            wait = min(LONG_POLL_SECONDS, int(time_left() - STOP_WITH_SECONDS_LEFT))
            if moved >= MAX_PER_CALL or wait < 1:
                break
            received, deleted = self._move_page(dlq, jobs, wait)
            moved += deleted
            empty = 0 if received else empty + 1
            counts = self._counts(dlq)
            if not counts[0] or empty >= 2:
                break
        visible, in_flight = counts if counts is not None else self._counts(dlq)
        if empty >= 2:  # two long polls in a row found none visible, whatever the count says
            visible = 0
        # In flight: received by this or another call and neither sent nor deleted yet (a
        # failed send or delete); visible again within 30 s, so still to move.
        return RedriveOut(system=system, moved=moved, remaining=visible + in_flight)

    def _move_page(self, dlq: str, jobs: str, wait: int) -> tuple[int, int]:
        """(letters received, letters moved: sent to the jobs queue and deleted here)."""
        page = self._sqs.receive_message(
            QueueUrl=dlq, MaxNumberOfMessages=10, VisibilityTimeout=30, WaitTimeSeconds=wait
        )
        messages = page.get("Messages", [])
        if not messages:
            return 0, 0
        entries = [{"Id": str(n), "MessageBody": m["Body"]} for n, m in enumerate(messages)]
        sent = self._sqs.send_message_batch(QueueUrl=jobs, Entries=entries)
        ok = {entry["Id"] for entry in sent.get("Successful", [])}
        done = [
            {"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]}
            for n, m in enumerate(messages)
            if str(n) in ok
        ]
        if not done:  # a message not sent stays in the DLQ (visible again in 30 s)
            return len(messages), 0
        deleted = self._sqs.delete_message_batch(QueueUrl=dlq, Entries=done)
        # Moved means gone from the DLQ: one sent but not deleted comes back and is sent
        # again by a later call (a repeat the worker acknowledges), so it counts then.
        return len(messages), len(deleted.get("Successful", []))

    def _counts(self, dlq: str) -> tuple[int, int]:
        found = self._sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=_COUNTS)
        attributes = found.get("Attributes", {})
        visible, in_flight = (int(attributes.get(name, 0)) for name in _COUNTS)
        return visible, in_flight
