"""What the worker's delivery reads and decides per SQS batch (no Lambda types here)."""

from collections import Counter
from dataclasses import dataclass, field
from typing import Protocol

from optout.delivery.messages import JobMessage
from optout.store.codec import Item


class ConfirmScheduler(Protocol):
    """Sends `message` to the system's own queue, visible after `delay_seconds` (<= 900)."""

    def __call__(self, message: JobMessage, delay_seconds: int) -> None: ...


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
    # status -> job ids of the attempts that ended as the vendor answered, with nothing to
    # retry or look at: logged once for the batch, not a line each (service.CLEAN_STATUSES)
    settled: dict[str, list[str]] = field(default_factory=dict)


@dataclass(frozen=True)
class Entry:
    message: Received
    parsed: JobMessage
    job: Item
    attempt: int = 0
