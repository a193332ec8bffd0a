"""The connector interface: jobs in, one outcome per job out.

A connector turns a batch of jobs for its system into as few vendor calls as the vendor's
limits allow (`max_batch` jobs per call). A failed call fails every job it carried, with the
same DeliveryError, so the worker applies one retry decision per message.
"""

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from optout.connectors.errors import ConfigError, DeliveryError
from optout.connectors.http import HttpClient
from optout.identifiers import Identifier, IdType
from optout.purposes import Purpose
from optout.systems import SystemConfig

DeliveredStatus = Literal["done", "no_record"]
M = TypeVar("M", bound=BaseModel)


class Model(BaseModel):
    """Base of every connector's options and secret model: unknown keys are typos."""

    model_config = ConfigDict(frozen=True, extra="forbid")


def parse_config(model: type[M], data: Any, what: str, system: str) -> M:
    """Validate options or a secret; the error names fields only, never values (secrets)."""
    try:
        return model.model_validate(data)
    except ValidationError as error:
        fields = ", ".join(".".join(str(p) for p in e["loc"]) or "(root)" for e in error.errors())
        raise ConfigError(f"system {system}: invalid {what} ({fields})") from None


@dataclass(frozen=True)
class Job:
    job_id: str
    request_id: str
    system: str
    purposes: tuple[Purpose, ...]
    identifiers: tuple[Identifier, ...]

    def of_type(self, *types: IdType) -> list[Identifier]:
        return [i for i in self.identifiers if i.type in types]


@dataclass(frozen=True)
class Outcome:
    """The receipt of one job's delivery attempt. Holds identifier *types* only, never values."""

    job_id: str
    status: DeliveredStatus | None  # None: the attempt failed, see `error`
    http_status: int | None = None
    vendor_ref: str | None = None
    identifier_types_sent: tuple[str, ...] = ()
    error: DeliveryError | None = None
    note: str | None = None

    @property
    def ok(self) -> bool:
        return self.status is not None


@dataclass
class Connector(ABC):
    system: SystemConfig
    secret: dict[str, Any]
    http: HttpClient

    max_batch: ClassVar[int] = 1  # vendor objects per call (see weight)
    accepted_types: ClassVar[tuple[IdType, ...]] = ("email", "phone", "customer_id", "device_id")

    def __post_init__(self) -> None:
        self.configure()

    @abstractmethod
    def configure(self) -> None:
        """Validate options and secret once (parse_config); raise ConfigError if unusable."""

    def deliver(self, jobs: Sequence[Job]) -> list[Outcome]:
        outcomes: list[Outcome] = []
        sendable: list[Job] = []
        for job in jobs:
            if self.usable(job):
                sendable.append(job)
            else:  # nothing this vendor can match on: a receipt, not an error
                outcomes.append(
                    Outcome(job.job_id, "no_record", note="no identifier this system accepts")
                )
        for chunk in self.chunks(sendable):
            try:
                outcomes.extend(self.send(chunk))
            except DeliveryError as error:
                outcomes.extend(
                    Outcome(
                        job.job_id,
                        None,
                        error.http_status,
                        error=error,
                        identifier_types_sent=self.types_sent(job),
                    )
                    for job in chunk
                )
        return outcomes

    def chunks(self, jobs: list[Job]) -> list[list[Job]]:
        """Greedy packing: each call carries at most max_batch vendor objects."""
        chunks: list[list[Job]] = []
        load = 0
        for job in jobs:
            weight = self.weight(job)
            if not chunks or load + weight > self.max_batch:
                chunks.append([])
                load = 0
            chunks[-1].append(job)
            load += weight
        return chunks

    def weight(self, job: Job) -> int:
        """Vendor objects this job adds to a call (default: one)."""
        return 1

    def usable(self, job: Job) -> bool:
        return bool(self.identifiers(job))

    def identifiers(self, job: Job) -> list[Identifier]:
        """The job's identifiers this connector sends: the vendor's and the system's types."""
        return [
            i
            for i in job.identifiers
            if i.type in self.accepted_types and self.system.accepts(i.type)
        ]

    def item_outcomes(
        self,
        jobs: Sequence[Job],
        owner: list[str],
        rejected_items: list[int],
        status: int,
        reason: str,
    ) -> list[Outcome]:
        """For vendors that reject single items of a batch (`owner`: item index -> job id):
        a job fails only when every one of its identifiers was rejected."""
        rejected: dict[str, int] = {}
        for index in rejected_items:
            if 0 <= index < len(owner):
                rejected[owner[index]] = rejected.get(owner[index], 0) + 1
        outcomes = []
        for job in jobs:
            if rejected.get(job.job_id, 0) >= len(self.identifiers(job)):
                error = DeliveryError(reason, retryable=False, http_status=status)
                sent = self.types_sent(job)
                outcomes.append(
                    Outcome(job.job_id, None, status, error=error, identifier_types_sent=sent)
                )
            else:
                outcomes.append(Outcome(job.job_id, "done", status, None, self.types_sent(job)))
        return outcomes

    def types_sent(self, job: Job) -> tuple[str, ...]:
        return tuple(sorted({i.type for i in self.identifiers(job)}))

    @abstractmethod
    def send(self, jobs: Sequence[Job]) -> list[Outcome]:
        """One batch (<= max_batch jobs, each usable): call the vendor, one outcome per job."""
