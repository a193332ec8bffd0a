"""The connector interface: jobs in, one outcome per job out.

A connector turns a batch of jobs for its system into as few vendor calls as the vendor's
limits allow (`max_batch` objects per call). A failed call fails every job it carried, with
the same DeliveryError, so the worker applies one retry decision per message. A job heavier
than `max_batch` on its own is sent in parts (the same job restricted to a slice of its
identifiers, one call each, in order) and answered with one outcome: see `merged`.

Outcomes are honest about what the vendor did: `done` only when the vendor has acted (or
answered synchronously that it did), `no_record` when the vendor says it holds no such person,
and `submitted` when the vendor accepted work it does asynchronously: the worker later calls
`confirm()` with the vendor's reference until the vendor reports a final state.

Credentials are read through a CredentialReader every time they are used (the reader caches
them for a few minutes), so a rotated secret is picked up without a cold start; a call the
vendor refuses for its credentials (an auth DeliveryError) is repeated once after re-reading
them with the cache bypassed, before anything becomes final.
"""

import re
import secrets
import string
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar, Generic, Literal, TypeVar

from optout.connectors.credentials import CredentialReader
from optout.connectors.errors import ConfigError, DeliveryError, SecretRefused
from optout.connectors.hashing import sha256_hex
from optout.connectors.http import HttpClient, OutOfTime
from optout.connectors.models import Model, NoSecret, parse_config
from optout.identifiers import Identifier, IdType
from optout.purposes import Purpose
from optout.systems import PLACEHOLDER, SystemConfig, placeholders

OutcomeStatus = Literal["done", "no_record", "submitted"]
S = TypeVar("S", bound=Model)
# Joins the vendor references of a job sent in parts, or in one request per 10 user lists
# (Google: google_ads.DESTINATIONS_PER_REQUEST); Segment regulateIds and Google requestIds
# hold no comma. confirm() splits a submitted job's reference on it again.
REF_SEPARATOR = ","
# The note of a job none of whose identifier types was sent: its batch stopped at the failed
# call of another type (the receipt's error is that call's)
NOT_SENT_BATCH_STOPPED = "not sent: the batch stopped at an earlier call"


@dataclass(frozen=True)
class Calls:
    """How a receipt's note names the calls one job went in (`merged`): identifier slices are
    `parts` ("sent in 2 parts; part 2 failed"); Google's one request per 10 user lists carries
    every identifier each time, so it is named apart ("sent as 2 requests of at most 10 user
    lists; request 2 failed"), never "parts" (review s24 diff B F4)."""

    one: str = "part"
    many: str = "parts"
    verb: str = "sent in"


PARTS = Calls()


@dataclass(frozen=True)
class Job:
    job_id: str
    request_id: str
    system: str
    purposes: tuple[Purpose, ...]
    identifiers: tuple[Identifier, ...]
    # Where the request(s) the job was made for came from (ISO 3166-2, e.g. "US-CA"), sorted;
    # empty when none is known. The webhook's notice picks the law it cites from them.
    jurisdictions: tuple[str, ...] = ()
    # When the consumer made the choice (the request's `received_at`, ISO 8601 Z; a job made
    # for several requests: the latest). Empty for a job stored before it was kept: the
    # connector then says now, as it did.
    chosen_at: str = ""

    def of_type(self, *types: IdType) -> list[Identifier]:
        return [i for i in self.identifiers if i.type in types]


@dataclass(frozen=True)
class Submitted:
    """A job the vendor accepted and works on asynchronously: what confirm() needs."""

    job_id: str
    vendor_ref: str
    identifier_types_sent: tuple[str, ...] = ()


@dataclass(frozen=True)
class Outcome:
    """The receipt of one job's delivery attempt. Holds identifier *types* only, never values."""

    job_id: str
    status: OutcomeStatus | None  # None: the attempt failed, see `error`
    http_status: int | None = None
    vendor_ref: str | None = None
    identifier_types_sent: tuple[str, ...] = ()
    error: DeliveryError | None = None
    note: str | None = None
    records_changed: tuple[str, ...] = ()  # vendor record ids the opt-out changed (CRM)
    # A send that failed: the types its calls would have carried. Whether any reached the
    # vendor is unknown (a timeout, a 500 midway, a first call refused), so none count as sent.
    identifier_types_attempted: tuple[str, ...] = ()
    # Types the vendor rejected inside an accepted call (in any of their objects), or that were
    # dropped before the call (e.g. no UID2 to send): never also listed as sent. The note says
    # which, with the vendor's reason code only.
    identifier_types_rejected: tuple[str, ...] = ()
    # Of those, the types never sent because no value of them has a form the vendor can match
    # (`unformed`): known from the identifiers' text alone, never from a vendor's answer. The
    # public status page says "in part" for these only (status.SystemProof.unformed): a
    # vendor's refusal tells of data it holds (a UID2 opt-out), not the requester's to read.
    identifier_types_unformed: tuple[str, ...] = ()
    # A job sent otherwise: the positions in `Job.identifiers` of the values never sent for
    # lack of a form (`unformed`), whatever other value of their type was sent. A job carries
    # several people's identities (a backfill step's): a type sent for one is not sent for
    # another (review s28 P1). Positions, never values: the worker stores their keyed
    # identities on the receipt (`identities_unformed`, delivery/receipts.py).
    unformed_at: tuple[int, ...] = ()
    # Likewise, the values the vendor's answer left unsent or unanswered (no UID2 mapped, no
    # Braze profile, a part of the job that found no such person): `identities_not_sent`.
    not_sent_at: tuple[int, ...] = ()
    # The invocation ran out of time before any call for this job went out (`error` is the
    # OutOfTime): not an attempt, nothing reached the vendor; the worker tries it again later.
    not_started: bool = False
    # Who received `identifier_types_sent` when not the system itself: `uid2_operator` for a
    # Trade Desk person the UID2 operator could not map (the email went there to be mapped;
    # The Trade Desk was never called). Absent: the system's own vendor (proof34 L2).
    sent_to: str | None = None

    @property
    def ok(self) -> bool:
        return self.status is not None


Item = TypeVar("Item", Job, Submitted)
V = TypeVar("V")


@dataclass(frozen=True)
class Unread:
    """A vendor reference whose status read failed (`Connector.read_each`): it answers for
    the jobs holding that reference only (review s29 F2)."""

    error: DeliveryError
    started: bool  # False: out of time before its call went out

    def outcome(self, item: Submitted) -> Outcome:
        """The job's outcome: failed for good when final (worded "status could not be read":
        the vendor refused the read, it did not say the removal failed), asked again later
        when retryable, not started when no call went; the reference and the types the
        submit sent stay on it (they reached the vendor)."""
        if not self.started:
            return Outcome(item.job_id, None, error=self.error, not_started=True)
        error = self.error
        if not error.retryable:  # a 404/403 on the read: no verdict on the removal itself
            error = DeliveryError(f"status could not be read: {error.reason}", retryable=False,
                                  http_status=error.http_status)  # fmt: skip
        return Outcome(item.job_id, None, error.http_status, item.vendor_ref,
                       item.identifier_types_sent, error=error)  # fmt: skip


@dataclass
class Connector(ABC, Generic[S]):
    system: SystemConfig
    credentials: CredentialReader
    http: HttpClient
    _raw_secret: dict[str, Any] | None = field(default=None, init=False, repr=False)
    _secret: S | None = field(default=None, init=False, repr=False)
    # What the vendor's answers showed that no receipt field counts (Meta: removals sent with
    # the ad account unchecked): metric name -> count, names and numbers only, never a value.
    # The worker takes them after each batch (`take_counts`) and publishes them.
    counts: Counter[str] = field(default_factory=Counter, init=False, repr=False)

    secret_model: ClassVar[type[Model]] = NoSecret
    max_batch: ClassVar[int] = 1  # vendor objects per call (see weight)
    # Calls of one batch the vendor takes at once. A worker mostly waits on its vendor calls,
    # and Lambda bills the wait: calls made together are billed once (docs/performance.md).
    parallel_calls: ClassVar[int] = 1
    accepted_types: ClassVar[tuple[IdType, ...]] = ("email", "phone", "customer_id", "device_id")
    asynchronous: ClassVar[bool] = False  # True: send() may answer "submitted"
    # Seconds from submission to the first status check, when the vendor documents when to
    # start asking (Google: 30 minutes); None: the worker's `confirm_delay_seconds`.
    first_confirm_seconds: ClassVar[float | None] = None
    # What a submitted job's several references are, for confirm()'s note: parts, unless one
    # call of the connector makes several requests (Google: one per 10 user lists)
    references_are: ClassVar[Calls] = PARTS

    def __post_init__(self) -> None:
        unedited = placeholders(self.system.options)
        if unedited:  # the production example, deployed as shipped
            raise ConfigError(
                f"system {self.system.name}: replace the {PLACEHOLDER} placeholder in "
                + ", ".join(unedited)
            )
        self.configure()

    @abstractmethod
    def configure(self) -> None:
        """Validate options once (parse_config); raise ConfigError if unusable."""

    # -- credentials ------------------------------------------------------------------

    @property
    def creds(self) -> S:
        """The current secret, parsed; the same object until the secret itself changes."""
        raw = self.credentials()
        if self._secret is None or raw != self._raw_secret:
            self._accept_secret(raw)
        assert self._secret is not None
        return self._secret

    def take_counts(self) -> Counter[str]:
        """The counts added since the last take, and a fresh start."""
        taken, self.counts = self.counts, Counter()
        return taken

    def reload_credentials(self) -> None:
        self._accept_secret(self.credentials(refresh=True))

    def _accept_secret(self, raw: dict[str, Any]) -> None:
        parsed = parse_config(self.secret_model, raw, "credentials", self.system.name)
        self.check_secret(parsed)  # before it is kept: a refused secret is never used
        self._raw_secret, self._secret = raw, parsed  # type: ignore[assignment]  # S is secret_model

    def check_secret(self, secret: Any) -> None:
        """Refuse a well-formed secret the connector still cannot use (ConfigError, naming
        no value). Nothing to check by default."""

    # -- delivery -----------------------------------------------------------------------

    def deliver(self, jobs: Sequence[Job]) -> list[Outcome]:
        outcomes: list[Outcome] = []
        sendable: list[Job] = []
        for job in jobs:
            if not job.identifiers:
                # Nothing to send is not "no such person": a failure, which the operator
                # replay sends again with the identifiers read back (the worker sends no such
                # job; this guards every caller)
                nothing = DeliveryError("no identifier to send", retryable=False)
                outcomes.append(Outcome(job.job_id, None, error=nothing))
            elif self.usable(job):
                sendable.append(job)
            else:  # identifiers, none this vendor can match on: a receipt, not an error
                unformed = self.left_out(job)
                note = _not_sent(unformed) or "no identifier this system accepts"
                rejected = tuple(sorted(unformed))
                outcomes.append(Outcome(job.job_id, "no_record", note=note,
                                        identifier_types_rejected=rejected,
                                        identifier_types_unformed=rejected))  # fmt: skip
        refused = self._refused_secret() if sendable else None
        if refused is not None:  # nothing is sent with a secret our own check refuses
            sent = self._failed(sendable, refused, self.types_sent, sent=False)
        else:
            sent = self._sent(sendable)
        return outcomes + [self._naming_left_out(o, sendable) for o in sent]

    def _refused_secret(self) -> DeliveryError | None:
        """The failure for a secret `check_secret` refuses, after one fresh read (it may have
        been put right since the cached read), as `_guarded` does for a vendor's 401: final,
        `config_invalid`, so the jobs are listed for replay and JobsFailedAlarm fires at once,
        not after 8 receives (review s30 receipts W5). Only for connectors with a check: the
        read is the one `send` makes anyway (cached); a secret that cannot be read at all is
        still a ConfigError, which the worker retries (`_unusable`)."""
        if type(self).check_secret is Connector.check_secret:
            return None
        try:
            self.creds  # noqa: B018 - the check runs when the secret is first parsed
        except SecretRefused:
            pass
        else:
            return None
        try:
            self.reload_credentials()
        except SecretRefused as refused:
            return DeliveryError(str(refused), retryable=False, config=True)
        return None

    def _sent(self, sendable: list[Job]) -> list[Outcome]:
        outcomes: list[Outcome] = []
        fitting: list[Job] = []
        oversized: list[Job] = []
        for job in sendable:
            (oversized if self.weight(job) > self.max_batch else fitting).append(job)
        chunks = self.chunks(fitting)
        if self.parallel_calls > 1 and len(chunks) > 1:
            outcomes.extend(self._together(chunks))
        else:
            for chunk in chunks:
                outcomes.extend(self._guarded(chunk, self.send, self.types_sent, sent=False))
        outcomes.extend(self._in_parts(job) for job in oversized)
        return outcomes

    def _naming_left_out(self, outcome: Outcome, sent: list[Job]) -> Outcome:
        """A sent job's receipt, noting the identifiers this vendor has no form for
        (`unformed`): a type none of whose values was sent is rejected, never sent; a type
        with another value sent keeps the vendor's answer for it, with a note (a receipt
        that said nothing of that type was sent would be untrue: review s21 diff C1). A
        failed attempt keeps its own account (docs/connectors.md, "Receipts")."""
        job = next((j for j in sent if j.job_id == outcome.job_id), None)
        if job is None or not outcome.ok:
            return outcome
        unformed = self.left_out(job)
        if not unformed:
            return outcome
        at = positions(job, [i for i in self._typed(job) if self.unformed(i) is not None])
        some_sent = set(self.types_sent(job))
        none_sent = set(unformed) - some_sent
        rejected = tuple(sorted(set(outcome.identifier_types_rejected) | none_sent))
        kept = tuple(t for t in outcome.identifier_types_sent if t not in none_sent)
        unsent = tuple(sorted(set(outcome.identifier_types_unformed) | none_sent))
        marked = replace(outcome, identifier_types_sent=kept, identifier_types_rejected=rejected,
                         identifier_types_unformed=unsent, unformed_at=at)  # fmt: skip
        partly = {kind: why for kind, why in unformed.items() if kind in some_sent}
        return noted(marked, outcome.note, _not_sent(unformed, partly))

    def parts(self, job: Job) -> list[Job]:
        """The job restricted to slices of at most max_batch of its identifiers: a connector's
        weight never exceeds the number of identifiers it sends, so each part fits one call."""
        sent = self.identifiers(job)
        return [
            replace(job, identifiers=tuple(sent[start : start + self.max_batch]))
            for start in range(0, len(sent), self.max_batch)
        ]

    def _in_parts(self, job: Job) -> Outcome:
        """One outcome for a job too heavy for one call. The parts go one after the other and
        the first failure stops the rest: the whole job is retried (or failed) anyway, and
        re-sending a part the vendor already accepted repeats an idempotent opt-out."""
        parts = self.parts(job)
        answers: list[Outcome] = []
        lost: list[Identifier] = []  # values no part sent: one that found no such person too
        for part in parts:
            (answer,) = self._guarded([part], self.send, self.types_sent, sent=False)
            answers.append(answer)
            if not answer.ok:
                break
            if answer.status == "no_record":
                lost += part.identifiers
            else:
                lost += [part.identifiers[n] for n in answer.not_sent_at]
        outcome = merged(job.job_id, answers, len(parts), self.types_sent(job))
        return replace(outcome, not_sent_at=positions(job, lost)) if outcome.ok else outcome

    def _together(self, chunks: list[list[Job]]) -> list[Outcome]:
        """The chunks' calls at once, up to `parallel_calls`; outcomes in the chunks' order."""
        from concurrent.futures import ThreadPoolExecutor  # noqa: PLC0415 - cold start

        self.creds  # noqa: B018 - one secret read, before the calls share it
        with ThreadPoolExecutor(max_workers=min(self.parallel_calls, len(chunks))) as pool:
            answers = list(pool.map(lambda c: self._guarded(c, self.send, self.types_sent,
                                                            sent=False), chunks))  # fmt: skip
        return [outcome for answer in answers for outcome in answer]

    def confirm(self, submitted: Sequence[Submitted]) -> list[Outcome]:
        """Ask the vendor how submitted jobs went: done/no_record, still `submitted`, or a
        failure (non-retryable: the vendor's verdict; retryable: ask again later). A job sent
        in parts is asked about each part's reference and answered with one outcome."""
        parts = [
            replace(item, vendor_ref=ref)
            for item in submitted
            for ref in item.vendor_ref.split(REF_SEPARATOR)
        ]
        # (a failed status check: the submit before it did send these)
        answers = self._guarded(parts, self.check, lambda s: s.identifier_types_sent, sent=True)
        outcomes = []
        for item in submitted:
            mine = [a for a in answers if a.job_id == item.job_id]
            if len(mine) == 1:
                outcomes.append(mine[0])
            else:
                types = item.identifier_types_sent
                outcome = merged(item.job_id, mine, len(mine), types, self.references_are)
                outcomes.append(  # the submit did send these types, as in _failed(sent=True)
                    replace(outcome, vendor_ref=item.vendor_ref, identifier_types_sent=types,
                            identifier_types_attempted=())
                )  # fmt: skip
        return outcomes

    def _guarded(
        self,
        items: Sequence[Item],
        call: Callable[[Sequence[Item]], list[Outcome]],
        types: Callable[[Item], tuple[str, ...]],
        *,
        sent: bool,
    ) -> list[Outcome]:
        before = self.http.tries_started()
        try:
            return call(items)
        except DeliveryError as error:
            if self._never_started(error, before):
                return self._not_started(items, error)
            if not error.auth:
                return self._failed(items, error, types, sent)
        self.reload_credentials()  # refused credentials: a rotation? one fresh read, one retry
        before = self.http.tries_started()
        try:
            return call(items)
        except DeliveryError as error:
            if self._never_started(error, before):
                return self._not_started(items, error)
            return self._failed(items, error, types, sent)

    def read_each(self, refs: Iterable[str], read: Callable[[str], V]) -> dict[str, V | Unread]:
        """`read` of each reference on its own, for `check`: one refused or failed read (a
        request id the vendor no longer keeps) is that reference's `Unread`, and the others'
        answers stand, so the jobs the vendor finished are done (review s29 F2). Refused
        credentials still raise: confirm's `_guarded` re-reads them and asks again. A throttle
        or an outage (429, 503, a wait asked) or the end of the invocation's time stops the
        reads: the references after it are not called (vendorfix L2), each an `Unread` that
        says so (`_skipped`: not the other reference's failure as its own, review s29 lead I5).
        The reads start at a random reference, so one that is throttled at every check does
        not keep the others from ever being asked (review s29 vendorfix2 R3)."""
        found: dict[str, V | Unread] = {}
        stopped: Unread | None = None
        listed = list(refs)
        start = secrets.randbelow(len(listed)) if listed else 0
        for ref in listed[start:] + listed[:start]:
            if stopped is not None:
                found[ref] = stopped
                continue
            before = self.http.tries_started()
            try:
                found[ref] = read(ref)
            except DeliveryError as error:
                if error.auth:
                    raise
                unread = Unread(error, started=not self._never_started(error, before))
                found[ref] = unread
                if isinstance(error, OutOfTime):  # the rest: no call went, the lease goes back
                    stopped = Unread(error, started=False)
                elif _throttled(error):  # the rest stay submitted, asked next time
                    stopped = Unread(_skipped(error), started=True)
        return found

    def _never_started(self, error: DeliveryError, tries_before: int) -> bool:
        """Out of time before this call made a single try (a lookup or token call made
        earlier in it counts as a start: the job may have been partly sent)."""
        return isinstance(error, OutOfTime) and self.http.tries_started() == tries_before

    @staticmethod
    def _not_started(items: Sequence[Item], error: DeliveryError) -> list[Outcome]:
        return [Outcome(i.job_id, None, error=error, not_started=True) for i in items]

    @staticmethod
    def _failed(
        items: Sequence[Item],
        error: DeliveryError,
        types: Callable[[Item], tuple[str, ...]],
        sent: bool,
    ) -> list[Outcome]:
        if sent:
            return [Outcome(i.job_id, None, error.http_status, error=error,
                            identifier_types_sent=types(i)) for i in items]  # fmt: skip
        started = error.types_started
        outcomes = []
        for i in items:
            carried = types(i)
            tried = tuple(t for t in carried if started is None or t in started)
            # (a job none of whose types went: its batch stopped at another type's call)
            note = NOT_SENT_BATCH_STOPPED if carried and not tried else None
            outcomes.append(Outcome(i.job_id, None, error.http_status, error=error, note=note,
                                    identifier_types_attempted=tried))  # fmt: skip
        return outcomes

    def calls_per_batch(self, jobs: int) -> int:
        """The vendor calls (first tries, a token call included) a batch of `jobs` jobs makes
        when each carries one identifier of every type the system accepts and nothing fails:
        what the system's pace must fit into the worker's timeout (scripts/gen_template.py).
        Default: one call per `max_batch` jobs."""
        return -(-jobs // self.max_batch)

    def calls_per_job(self, job: Job) -> int:
        """The vendor calls (first tries) `job` alone makes when nothing fails, in parts if it
        is heavier than max_batch: what must fit one invocation at the system's pace (the
        worker fails a job that cannot; `make template` warns of one MaxClusterSize job)."""
        parts = self.parts(job) if self.weight(job) > self.max_batch else [job]
        return sum(self.calls_per_part(part) for part in parts)

    def calls_per_part(self, part: Job) -> int:
        """The calls of one call's worth of one job. Default: a batch of one job's."""
        return self.calls_per_batch(1)

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
        """The job's identifiers this connector sends: the vendor's and the system's types,
        less those the vendor has no form for (`unformed`)."""
        return [i for i in self._typed(job) if self.unformed(i) is None]

    def _typed(self, job: Job) -> list[Identifier]:
        return [
            i
            for i in job.identifiers
            if i.type in self.accepted_types and self.system.accepts(i.type)
        ]

    def unformed(self, identifier: Identifier) -> str | None:
        """Why the vendor has no form for this identifier of a type it takes (a reason code),
        or None. Such an identifier is never sent: its hash would name no one (review s21
        ident V1, V2), and the receipt names its type as not sent."""
        return None

    def left_out(self, job: Job) -> dict[str, str]:
        """Type -> reason, for the job's identifiers the vendor has no form for."""
        found: dict[str, str] = {}
        for identifier in self._typed(job):
            why = self.unformed(identifier)
            if why is not None:
                found.setdefault(identifier.type, why)
        return found

    def item_outcomes(
        self,
        jobs: Sequence[Job],
        owner: list[tuple[str, str]],
        rejected_items: dict[int, str],
        status: int,
        reason: str,
        dropped: dict[str, dict[str, str]] | None = None,
    ) -> list[Outcome]:
        """For vendors that reject single items of a batch. `owner`: item index -> (job id,
        identifier type); `rejected_items`: item index -> the vendor's reason code ("" if it
        gives none); `dropped`: job id -> {type: reason} of types not sent at all.

        A type is sent when items of it were sent and the vendor refused none of them; it is
        rejected when the vendor refused one, or when none was sent because every value of it
        was dropped (a type some of whose values were dropped and the rest taken is sent, the
        drop a note). A job fails when every one of its items was rejected, or when no type was
        sent (nothing the vendor took covers one of the person's types whole); otherwise it is
        `done`. The note names each rejected item and dropped value with the reason codes: a
        partial outcome stays visible on the receipt."""
        items: dict[str, dict[str, int]] = {}
        refused: dict[str, dict[str, int]] = {}
        codes: dict[str, dict[str, set[str]]] = {}
        values = {job.job_id: job.identifiers for job in jobs}
        for job_id, kind in owner:
            items.setdefault(job_id, {})[kind] = items.get(job_id, {}).get(kind, 0) + 1
        for index, code in rejected_items.items():
            if 0 <= index < len(owner):
                job_id, kind = owner[index]
                refused.setdefault(job_id, {})[kind] = refused.get(job_id, {}).get(kind, 0) + 1
                if reason_code(code, values.get(job_id, ())):
                    codes.setdefault(job_id, {}).setdefault(kind, set()).add(code)
        outcomes = []
        for job in jobs:
            mine, bad = items.get(job.job_id, {}), refused.get(job.job_id, {})
            gone = (dropped or {}).get(job.job_id, {})
            sent = tuple(sorted(t for t in mine if not bad.get(t)))
            rejected = tuple(sorted(set(bad) | (set(gone) - set(mine))))
            parts = []
            for kind in sorted(bad):
                why = sorted(codes.get(job.job_id, {}).get(kind, ()))
                share = "" if bad[kind] >= mine[kind] else f" ({bad[kind]} of {mine[kind]} items)"
                parts.append(f"{kind} rejected{share}" + (f": {', '.join(why)}" if why else ""))
            parts.extend(
                f"{kind} not sent"
                + (f": {gone[kind]}" if reason_code(gone[kind], job.identifiers) else "")
                for kind in sorted(gone)
            )
            note = "; ".join(parts) or None
            # Never done with nothing sent: a type with one refused item (a second profile of
            # the same email, say) is not opted out everywhere the vendor holds it, and a type
            # with no item (no profile for it) was not sent at all.
            every = sum(bad.values()) >= sum(mine.values()) > 0
            if every or not sent:
                cause = reason if every else f"{self.system.type}: no identifier type accepted"
                error = DeliveryError(cause, retryable=False, http_status=status)
                outcomes.append(Outcome(job.job_id, None, status, error=error, note=note,
                                        identifier_types_sent=sent,
                                        identifier_types_rejected=rejected))  # fmt: skip
            else:
                outcomes.append(Outcome(job.job_id, "done", status, None, sent, note=note,
                                        identifier_types_rejected=rejected))  # fmt: skip
        return outcomes

    def types_sent(self, job: Job) -> tuple[str, ...]:
        return tuple(sorted({i.type for i in self.identifiers(job)}))

    @abstractmethod
    def send(self, jobs: Sequence[Job]) -> list[Outcome]:
        """One batch (<= max_batch jobs, each usable): call the vendor, one outcome per job."""

    def confirm_give_up_seconds(self, configured: float) -> float:
        """How long a submitted job may stay unconfirmed before it fails: the worker's setting,
        unless the vendor documents a longer processing time (see SegmentConnector)."""
        return configured

    def check(self, submitted: Sequence[Submitted]) -> list[Outcome]:
        """Asynchronous vendors: the current state of submitted jobs (see confirm)."""
        raise ConfigError(f"system {self.system.name}: {self.system.type} has no status check")


def positions(job: Job, chosen: Iterable[Identifier]) -> tuple[int, ...]:
    """Where these identifiers are in `job.identifiers` (an `Outcome`'s `*_at`)."""
    wanted = set(chosen)
    return tuple(n for n, i in enumerate(job.identifiers) if i in wanted)


def _not_sent(unformed: dict[str, str], partly: dict[str, str] | None = None) -> str:
    """`email not sent: no Google form`, or for a type with another value sent, `email (some
    values) not sent: ...`."""
    return "; ".join(f"{kind}{' (some values)' if kind in (partly or {}) else ''} not sent: {why}"
                     for kind, why in sorted(unformed.items()))  # fmt: skip


def _throttled(error: DeliveryError) -> bool:
    """A retryable failure that says "not now" for every call to this vendor, not for one
    reference: a 429, a 503, or a wait the vendor asked for."""
    return error.retryable and (error.http_status in (429, 503) or error.retry_after is not None)


def _skipped(error: DeliveryError) -> DeliveryError:
    """The error of a reference whose status was not read because the reads stopped at
    another's throttle or outage: no HTTP status of its own (no call went for it), the other's
    answer named as the cause in a few words (kept up to 10 times in a job's `check_errors`:
    the other's full reason there pushed a Google job past 1 KB, review s30 receipts F4), and
    retryable with the vendor's wait."""
    cause = f"HTTP {error.http_status}" if error.http_status else error.reason_class
    return DeliveryError(f"status not read ({cause} at another reference)", retryable=True,
                         retry_after=error.retry_after)  # fmt: skip


def noted(outcome: Outcome, *notes: str | None) -> Outcome:
    """The outcome with these notes, in order, as its note ("; "-joined; None if none)."""
    return replace(outcome, note="; ".join(n for n in notes if n) or None)


# The longest vendor code the connectors pass on: Google's Data Manager processing error
# reasons run to 81 characters (PROCESSING_ERROR_REASON_DESTINATION_ACCOUNT_ENHANCED_...).
REASON_CODE_MAX = 96
# A vendor reference (a request, regulation, session or record id) kept on a receipt; the
# webhook's receivers choose their own, so the bound and the charset are ours.
REFERENCE_MAX = 128
_REFERENCE_CHARS = frozenset(string.ascii_letters + string.digits + "._:-")
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.I)
_PHONE_SEPARATORS = frozenset(" -.()")
_DIGIT_RUN = re.compile(r"\+?\d(?:[ .()-]*\d)*")
# The note of a receipt whose vendor reference was dropped (see reference()): value-free.
DROPPED_REFERENCE = "reference not kept: not a reference"
# Identifier values shorter than this are compared whole, not looked for inside a reference:
# a customer id "42" inside "req-4210" is chance, not an echo.
_ECHO_MIN = 4


def reason_code(text: str, identifiers: Iterable[Identifier] = ()) -> bool:
    """Whether a vendor's reason is a short code (`InvalidUserId`, `optout`, `1713230`) that
    can go on a receipt: free text could quote the identifier, so it never does. Identifier
    shapes are refused even in the code charset (which has no `@`, so no email): a phone
    (`+` and 7+ digits, or 10+ digits: Meta's and TTD's numeric codes are shorter) and a
    UUID (a device id). Given the job's `identifiers`, a code holding one of their values
    is refused as `reference()` refuses it (review s17 PII L1: a customer id has no shape)."""
    return (
        0 < len(text) <= REASON_CODE_MAX
        and all(ch.isalnum() or ch in " _-." for ch in text)
        and not _holds_phone(text)
        and not _UUID.search(text)
        and not _echoes(text, identifiers)
    )


def reference(text: object, identifiers: Iterable[Identifier] = ()) -> str | None:
    """A vendor's reference as a receipt may keep it, or None when it does not look like one.

    A reference is kept for the whole record retention and shown by the admin view, `optout
    status` and the range export, which hold no identifier values: so only a short string of
    `[A-Za-z0-9._:-]` (no `@`, `+`, space or comma: REF_SEPARATOR joins references) that is
    not email- or phone-shaped and does not contain, case-insensitively, any of the job's
    identifier values, a phone's digits or a value's SHA-256 (what a hashing webhook sends).
    A UUID passes (a request id often is one); the job's own device ids do not."""
    if not isinstance(text, str | int) or isinstance(text, bool):
        return None
    ref = str(text)
    if not 0 < len(ref) <= REFERENCE_MAX or not set(ref) <= _REFERENCE_CHARS:
        return None
    if _phone_shaped(ref) or _echoes(ref, identifiers):  # "@" and "+": outside the charset
        return None
    return ref


def _echoes(text: str, identifiers: Iterable[Identifier]) -> bool:
    """The text is, or holds, one of the job's identifier values in a form a vendor could
    hand back (see _echo_forms), case-insensitively."""
    lowered = text.lower()
    return any(
        value == lowered or (len(value) >= _ECHO_MIN and value in lowered)
        for value in _echo_forms(identifiers)
    )


def _phone_shaped(text: str) -> bool:
    """The whole text is a phone number: with separators " -.()" removed, `+` and 7-15 digits
    or 10-15 digits (E.164 has at most 15; a longer number is a generated id, e.g. Meta's)."""
    bare = "".join(ch for ch in text if ch not in _PHONE_SEPARATORS)
    digits = bare.removeprefix("+")
    return digits.isdigit() and (7 if bare.startswith("+") else 10) <= len(digits) <= 15


def _holds_phone(text: str) -> bool:
    """Some run of digits in the text is phone-shaped, or 10 digits or longer (an account or
    card number): a reason code never carries one."""
    return any(
        _phone_shaped(run) or sum(ch.isdigit() for ch in run) >= 10
        for run in _DIGIT_RUN.findall(text)
    )


def _echo_forms(identifiers: Iterable[Identifier]) -> set[str]:
    """The forms in which a vendor could hand a job's identifier back, lowercased."""
    forms: set[str] = set()
    for identifier in identifiers:
        value = identifier.value.lower()
        forms.update({value, sha256_hex(identifier.value)})
        digits = "".join(ch for ch in value if ch.isdigit())
        if identifier.type == "phone" and digits:
            forms.add(digits)
    return forms


def merged(
    job_id: str,
    answers: Sequence[Outcome],
    parts: int,
    types: tuple[str, ...],
    calls: Calls = PARTS,
) -> Outcome:
    """One receipt for a job sent in `parts` calls, from the answers of the parts made (the
    note names them as `calls` says).

    A failure of any part is the job's failure (the first one: on a send, later parts were
    not sent, and the note counts the parts that went),
    retryable or final as that part's was; it lists the job's types as attempted, since the
    job as a whole was not accepted. Otherwise the job is `submitted` while any part is,
    `done` when any part changed something, `no_record` when no part found the person.
    Vendor references are joined in part order, records changed and rejected types are unions (a
    type rejected in any part is not listed as sent), and the note says the job went in parts
    (with each distinct note of the parts that share the status).
    """
    refs = REF_SEPARATOR.join(  # each once: parts may name the same record (Salesforce)
        dict.fromkeys(r for a in answers if a.vendor_ref for r in a.vendor_ref.split(REF_SEPARATOR))
    )
    records = tuple(sorted({r for a in answers for r in a.records_changed}))
    failed = [a for a in answers if not a.ok]
    if failed and answers[0].not_started:  # no part went out: the job was not started
        return answers[0]
    if failed:
        first = failed[0]
        # A send stops at its first failed part: the parts after it never went, nor one that
        # ran out of time before its call (review s22 proof P5: "sent in 2 parts; part 1
        # failed" said a part went that never did). A status check asks every part.
        sent_parts = sum(1 for a in answers if not a.not_started)
        went = (f"{calls.verb} {parts} {calls.many}" if sent_parts == parts
                else f"sent {sent_parts} of {parts} {calls.many}")  # fmt: skip
        # A part that ran out of time before its call never went: it did not "fail" at the
        # vendor (review s22 diff B11)
        what = "not sent (out of time)" if first.not_started else "failed"
        note = f"{went}; {calls.one} {answers.index(first) + 1} {what}"
        return Outcome(job_id, None, first.http_status, refs or None, error=first.error,
                       note=note, records_changed=records,
                       identifier_types_attempted=types)  # fmt: skip
    statuses = {a.status for a in answers}
    status: OutcomeStatus = (
        "submitted" if "submitted" in statuses else "done" if "done" in statuses else "no_record"
    )
    notes = dict.fromkeys(a.note for a in answers if a.status == status and a.note)
    note = "; ".join([f"{calls.verb} {parts} {calls.many}", *notes])
    rejected = tuple(sorted({t for a in answers for t in a.identifier_types_rejected}))
    sent = tuple(sorted({t for a in answers for t in a.identifier_types_sent} - set(rejected)))
    unformed = tuple(sorted({t for a in answers for t in a.identifier_types_unformed}))
    return Outcome(job_id, status, answers[-1].http_status, refs or None, sent, note=note,
                   records_changed=records, identifier_types_rejected=rejected,
                   identifier_types_unformed=unformed)  # fmt: skip
