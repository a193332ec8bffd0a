"""Deliver one SQS batch: read the jobs, skip finished ones, call each system's connector once
per vendor batch, write receipts, and decide per message: acknowledge, or retry after N seconds.

Job lifecycle: pending -> submitted -> done | no_record | failed. A vendor that works
asynchronously answers "submitted" with its reference; the worker then sends itself a delayed
message (`confirm: n`, DelaySeconds <= 900) to ask the vendor again later, re-sent with a
growing delay until the vendor reports a final state or the job is older than
`confirm_give_up_seconds`, or the longer time its connector allows (Segment regulations: 30
days), then it fails: "vendor did not confirm within ...". Nothing sleeps.
Every final status goes through `DeliveryService._finish`.

A retry waits as long as the vendor asked, even past SQS's 12 h visibility: the job's
`retry_at` says when, and a message back before then (a visibility leg of a longer wait, or
a visibility change SQS refused) is hidden again without a vendor call (`_waiting`). A
batch is bounded by the invocation's time budget, and the messages on their last allowed
receive go first: a job whose vendor call never started in time (a system not reached, or a
job behind others of its batch) is retried with nothing written and no attempt counted, and a
call cut short is an attempt with its receipt (docs/reliability.md, "Time left").
"""

import math
import random
import re
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from botocore.exceptions import BotoCoreError, ClientError

from optout.connectors import CONNECTORS
from optout.connectors.base import Connector, Job, Outcome, Submitted
from optout.connectors.errors import ConfigError, DeliveryError
from optout.connectors.http import MIN_TRY_SECONDS, paced_start_seconds
from optout.delivery import job_store
from optout.delivery.batch import ACK, BatchReport, ConfirmScheduler, Decision, Entry, Received
from optout.delivery.messages import JobMessage, MalformedMessage, read_job_message
from optout.delivery.receipts import COUNTER, bounded_ref, duration_text, receipt_of
from optout.delivery.retry import (
    WAIT_AGAIN_AFTER_SECONDS,
    backoff_seconds,
    longest_visibility,
    retry_delay,
)
from optout.delivery.settings import SQS_MAX_DELAY_SECONDS, WRITES_STOP_SECONDS, WorkerSettings
from optout.identifiers import Identifier
from optout.jobs_queue import job_message
from optout.observability import logger
from optout.store.busy import busy, error_code
from optout.store.codec import Item
from optout.store.delivery import (
    free_ended,
    listed_again_after_replay,
    mark_again,
    note_message_of_failed,
    record_delivered,
)
from optout.store.table import Table
from optout.systems import SystemConfig, SystemsConfig
from optout.time_budget import TimeBudget
from optout.timestamps import iso

ConnectorFactory = Callable[[SystemConfig], Connector[Any]]
# An attempt that ends in one of these, written and with no error, is one job id in the batch's
# `delivery attempts` line (its receipt holds the rest: optout status); any other outcome (a
# retry, a failure, a lost write) keeps its own `delivery attempt` line with its reason.
CLEAN_STATUSES = ("done", "no_record", "submitted")
# A request id (a UUID), or a job request's (`<request id>~<12 hex>`): what may be logged of a
# message whose job is not found (`_no_job`)
_REQUEST_ID = re.compile(
    r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}(~[0-9a-f]{12})?"
)
UNUSABLE = (ConfigError,)  # a secret that cannot be read is one too (connectors.credentials)


class AfterStepsFailed(Exception):
    """A job's final status is written, and the steps after it (its marks freed, its failure
    listed: record_delivered) raised: the job is final, what follows it is still to do."""


# An AWS error on one message's writes (the job, its marks or listing, its status check):
# a throttle or a network fault past botocore's retries. That message alone comes back.
WRITE_ERRORS = (ClientError, BotoCoreError, AfterStepsFailed)


class OutOfTimeForWrites(Exception):
    """An AWS call of the batch (a job's write, its marks, its status check's message) was
    about to start with less than WRITES_STOP_SECONDS of the function left: not started."""


class _CallsInTime:
    """A client whose every call first asks `in_time` (which raises OutOfTimeForWrites): the
    time check holds per write, not per entry, whatever store function makes the write."""

    def __init__(self, client: Any, in_time: Callable[[], None]) -> None:
        self._client = client
        self._in_time = in_time

    def __getattr__(self, name: str) -> Any:
        found = getattr(self._client, name)
        if name == "meta" or not callable(found):
            return found

        def call(*args: Any, **kwargs: Any) -> Any:
            self._in_time()
            return found(*args, **kwargs)

        return call


class DeliveryService:
    def __init__(
        self,
        table: Table,
        systems: SystemsConfig,
        settings: WorkerSettings,
        connector_for: ConnectorFactory,
        rng: random.Random | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        # Every DynamoDB call of a batch is checked against its time (`_in_time`).
        self.table = Table(cast("Any", _CallsInTime(table.client, self._in_time)), table.name)
        self._budget = TimeBudget.unbounded()  # the batch's, while deliver() runs
        self.systems = systems
        self.settings = settings
        self.connector_for = connector_for
        self.rng = rng or random.Random()  # noqa: S311 - jitter, not security
        self.clock = clock

    def deliver(
        self,
        received: Sequence[Received],
        schedule: ConfirmScheduler,
        budget: TimeBudget | None = None,
    ) -> BatchReport:
        """`budget`: the time this batch may take; what cannot start within it is retried."""
        self._budget = budget or TimeBudget.unbounded()
        try:
            return self._deliver(received, self._schedule_in_time(schedule), self._budget)
        finally:
            self._budget = TimeBudget.unbounded()

    def _in_time(self) -> None:
        """Raises OutOfTimeForWrites once the function has less than WRITES_STOP_SECONDS left:
        a write throttled past botocore's retries takes about 3 s (aws.BUDGET), so one that
        starts later could carry the invocation past its timeout: no batch response, every
        message of it back (review s17 W2). Checked before each AWS call, not each entry: an
        entry makes several (its job, its marks, its listing, its status check)."""
        if not self._budget.allows_in_margin(WRITES_STOP_SECONDS):
            raise OutOfTimeForWrites

    def _schedule_in_time(self, schedule: ConfirmScheduler) -> ConfirmScheduler:
        def in_time(message: JobMessage, delay_seconds: int) -> None:
            self._in_time()
            schedule(message, delay_seconds)

        return in_time

    def _deliver(
        self, received: Sequence[Received], schedule: ConfirmScheduler, budget: TimeBudget
    ) -> BatchReport:
        whole = budget.left()  # this invocation's time for vendor calls, from its start
        report = BatchReport()
        messages: dict[str, tuple[Received, JobMessage]] = {}
        for message in received:
            parsed = self._accept(message, report)
            if parsed is not None:
                messages[message.message_id] = (message, parsed)
        jobs = job_store.load_jobs(
            self.table, [(m.request_id, m.system) for _, m in messages.values()]
        )
        sends: dict[str, list[Entry]] = {}
        checks: dict[str, list[Entry]] = {}
        taken: set[str] = set()
        for message, parsed in messages.values():
            job = jobs.get(parsed.job_id)
            try:
                entry = self._route(message, parsed, job, report, schedule, taken)
            except OutOfTimeForWrites:
                self._out_of_time_for_writes([Entry(message, parsed, job or {})], report)
                continue
            except WRITE_ERRORS as error:
                self._write_failed(Entry(message, parsed, job or {}), error, report, schedule)
                continue
            if entry is not None:
                (checks if parsed.confirm is not None else sends).setdefault(
                    parsed.system, []
                ).append(entry)
        # The last chances first: a message on its last allowed receive that is not started
        # goes to the DLQ (see _not_started), one with receives left only comes back.
        for system, entries in by_urgency(sends):
            if budget.allows(MIN_TRY_SECONDS):
                self._deliver_system(self.systems.get(system), entries, report, schedule, whole)
            else:
                self._not_started(entries, report, schedule)
        self._confirm_all(checks, budget, report, schedule)
        if report.settled:
            logger.info("delivery attempts", extra=report.settled)
        return report

    def _route(
        self,
        message: Received,
        parsed: JobMessage,
        job: Item | None,
        report: BatchReport,
        schedule: ConfirmScheduler,
        taken: set[str],
    ) -> Entry | None:
        """One message as its job reads: an entry to send or check, or decided here."""
        if parsed.confirm is not None:
            return self._confirmable(message, parsed, job, report)
        if job is None:
            self._no_job(parsed, message, report)
        elif job.get("status") in job_store.FINISHED:
            self._skip_finished(job, message, report)
        elif job.get("status") == "failed":
            self._message_of_failed(job, message, report)
        elif job.get("status") == job_store.SUBMITTED:
            # A redelivered send message (a crash after submitting?): make sure a check
            # follows; a duplicate check is harmless, only the newest one acts.
            self._schedule_check(schedule, parsed, job, int(job.get("confirms", 0)) + 1, 0)
            report.decisions[message.message_id] = ACK
        elif not job_store.has_values(job):
            self._nothing_to_send(job, message, report)
        elif (wait := self._waiting(job, message)) is not None:
            # Back before the retry time the vendor asked for: hide it again, no call.
            report.decisions[message.message_id] = Decision(wait, "waiting for retry_at")
            report.counts["RetriesWaiting"] += 1
        elif parsed.job_id in taken:
            # The same job twice in one batch (a duplicate message): the first carries it,
            # with its own retries; one vendor call is enough.
            report.decisions[message.message_id] = ACK
            report.counts["DuplicateMessages"] += 1
        else:
            # No claim write: the read above is the check (docs/decisions.md, "A read, not
            # a claim"). Two deliveries running at once may both call the vendor, which
            # is harmless (an opt-out sent twice is one opt-out); each attempt's write is
            # conditional on the job still being the pending job it read, so the first
            # answer written stands and a later copy's changes nothing (`_lost`).
            taken.add(parsed.job_id)
            return Entry(message, parsed, job, int(job.get("attempts", 0)) + 1)
        return None

    def _no_job(self, parsed: JobMessage, message: Received, report: BatchReport) -> None:
        """A send message whose job the strongly consistent read did not find. Every sender
        queues a job's message only once the job's write succeeded (the resolver's put, a
        replay or redrive of a job it read), so the job was removed since: the resolver
        withdrew it untried (`delete_pending_job`: two runs of one re-open, one queued its
        message, the other withdrew it, as the request was denied meanwhile or nothing was
        left for it to carry; a run that stores it again queues its own message), or its TTL
        expired. On its first receive it is still retried once, as before (a message that beat
        its job's write, which no sender does today, then finds it); from the second on it is
        acknowledged and counted `JobMessagesWithoutJob` (review s25 F4): retried to the last
        receive it went to the DLQ, a `<system>DeadLetterAlarm` with nothing to replay. No
        read is added: the batch's read already answered."""
        if message.receive_count < 2:
            self._retry(report, message, message.receive_count, "job not found")
            return
        report.decisions[message.message_id] = ACK
        report.counts["JobMessagesWithoutJob"] += 1
        # The request id only when it has a request id's shape: a stray body's text could be
        # anything, a value included
        named = parsed.request_id if _REQUEST_ID.fullmatch(parsed.request_id) else None
        logger.warning("job not found again: message acknowledged", request_id=named,
                       system=parsed.system, receives=message.receive_count)  # fmt: skip

    def _message_of_failed(self, job: Item, message: Received, report: BatchReport) -> None:
        """Only an operator replay re-opens a failed job, whose attempt writes would not apply
        to it (job_store.as_read); and it keeps no identifier values (PII lifecycle), so its
        message (from a DLQ redrive) cannot be sent again: the operator replay re-plans it,
        with the values read back from the nodes. Its after-steps run again first; one that
        lists the failure now (a message back after a write fault) is that failure's
        completion, counted `JobsFailed`. Otherwise `FailedJobsNeedReplay` is counted once per
        failure, whichever of its messages comes first (review s17 diff-worker N4)."""
        now = iso(self.clock())
        report.decisions[message.message_id] = ACK
        if self._after_final(job, "failed", now, report):
            return
        if note_message_of_failed(self.table, job, now):
            report.counts["FailedJobsNeedReplay"] += 1
        logger.warning(
            "failed job needs the operator replay",
            system=job["system"],
            request_id=job["request_id"],
        )

    def _confirm_all(
        self,
        checks: dict[str, list[Entry]],
        budget: TimeBudget,
        report: BatchReport,
        schedule: ConfirmScheduler,
    ) -> None:
        for system, entries in by_urgency(checks):
            if not budget.allows(MIN_TRY_SECONDS):  # before the lease: nothing written
                self._not_started(entries, report, schedule)
                continue
            claimed = [e for e in entries if self._claim(e, report, schedule)]
            if claimed:
                self._confirm_system(self.systems.get(system), claimed, report, schedule)

    def _waiting(self, job: Item, message: Received) -> int | None:
        """Seconds until the job's retry time if its message is back well before it, else None.

        Not on the last allowed receive (the job's last chance is a vendor call), nor after an
        operator replay (it starts afresh), nor within WAIT_AGAIN_AFTER_SECONDS of the retry
        time (clock differences).
        """
        retry_at = job.get("retry_at")
        if (
            not isinstance(retry_at, str)
            or message.receive_count >= self.settings.max_receive_count
            or job.get("replayed_at") == job.get("updated_at")
        ):
            return None
        left = (datetime.fromisoformat(retry_at) - self.clock()).total_seconds()
        return math.ceil(left) if left > WAIT_AGAIN_AFTER_SECONDS else None

    def _not_started(
        self, entries: list[Entry], report: BatchReport, schedule: ConfirmScheduler
    ) -> None:
        """The invocation ran out of time before these jobs' vendor calls: no attempt, no
        write; their messages come back (batch item failures) as if never received.

        On a message's last allowed receive (the batch put those first: only another last
        chance can have used the time) a status check is scheduled afresh, with its own
        receives, and the old message acknowledged: the check's age still ends it. A send is
        not failed without a vendor call: its message comes back once more and SQS moves it
        to the DLQ (`<system>DeadLetterAlarm`; `optout replay SYSTEM` sends it again), its job
        still pending (the sweep re-drives it if a checkpoint of its request is still to
        come)."""
        delay = backoff_seconds(1, self.settings.retry_base_seconds, 60, self.rng)
        for entry in entries:
            message = entry.message
            report.counts["JobsNotStarted"] += 1
            if message.receive_count < self.settings.max_receive_count:
                report.decisions[message.message_id] = Decision(delay, "out of time")
            elif entry.parsed.confirm is not None and self._check_afresh(entry, delay, schedule):
                report.decisions[message.message_id] = ACK
            else:
                report.decisions[message.message_id] = Decision(delay, "out of time")
                report.counts["JobsNotStartedToDLQ"] += 1
                logger.warning(
                    "out of time on the last receive: to the DLQ",
                    system=entry.job["system"],
                    request_id=entry.job["request_id"],
                )
        logger.warning("out of time before delivery", jobs=len(entries))

    def _check_afresh(self, entry: Entry, delay: float, schedule: ConfirmScheduler) -> bool:
        """A status check on its last receive scheduled again with its own receives; False
        when the function's time for that send has run out (this one goes to the DLQ)."""
        try:
            self._schedule_check(
                schedule, entry.parsed, entry.job, entry.parsed.confirm or 1, delay
            )
        except OutOfTimeForWrites:
            return False
        return True

    # -- messages -------------------------------------------------------------------------

    def _accept(self, message: Received, report: BatchReport) -> JobMessage | None:
        try:
            parsed = read_job_message(message.body)
        except MalformedMessage:
            self._retry(report, message, message.receive_count, "malformed job message")
            return None
        wanted = self.settings.system_name
        if wanted is not None and queue_key(parsed.system) != queue_key(wanted):
            self._retry(report, message, message.receive_count, "message for another system")
            return None
        if parsed.system not in {s.name for s in self.systems.systems}:
            self._retry(report, message, message.receive_count, "unknown system")
            return None
        return parsed

    def _nothing_to_send(self, job: Item, message: Received, report: BatchReport) -> None:
        """A pending job that holds no identifier values: only a final write drops them, so it
        is an item written before attempt writes were conditional on `pending` (a retry could
        re-open a failed job) or a bug. Sent, it would reach no one and read as "no such
        person"; it fails instead (conditional, as an attempt's write), so its marks are freed
        and it is listed for the operator replay, which sends it with the values read back
        from the identities' nodes, as a failed job's DLQ message is (above)."""
        now = iso(self.clock())
        receipt: Item = {"error": "no identifier values to send"}
        report.decisions[message.message_id] = ACK
        if self._finish(job, "failed", receipt, report, now, reason_class="no_values"):
            self._needs_replay(job, now, report)

    def _skip_finished(self, job: Item, message: Received, report: BatchReport) -> None:
        """A message of a job already done / no_record: nothing to send, its receipt is its
        marks' "done". Its marks are freed once more where its receipt is no proof (all of
        them for no_record; a done job's refused or unsent types), idempotently: a crash
        between the receipt and that write would leave them cited by later requests."""
        self._after_final(job, str(job["status"]), iso(self.clock()), report)
        report.decisions[message.message_id] = ACK
        report.counts["JobsSkippedFinished"] += 1
        logger.info("job already finished", job_id=job["job_id"], status=job["status"])

    def _retry(self, report: BatchReport, message: Received, attempt: int, reason: str) -> None:
        delay = backoff_seconds(
            attempt, self.settings.retry_base_seconds, self.settings.retry_max_seconds, self.rng
        )
        report.decisions[message.message_id] = Decision(delay, reason)
        report.counts["MessagesRejected"] += 1
        logger.warning("message not delivered", message_id=message.message_id, reason=reason)

    # -- sending --------------------------------------------------------------------------

    def _deliver_system(
        self,
        system: SystemConfig,
        entries: list[Entry],
        report: BatchReport,
        schedule: ConfirmScheduler,
        whole: float,
    ) -> None:
        jobs = [to_job(e.job) for e in entries]
        too_big: dict[str, int] = {}
        try:
            connector = self.connector_for(system)
            too_big = self._beyond_one_invocation(system, connector, jobs, whole)
            sent = [j for j in jobs if j.job_id not in too_big]
            outcomes = {o.job_id: o for o in connector.deliver(sent)}
        except UNUSABLE as error:
            outcomes = self._unusable(system, [j.job_id for j in jobs], error)
        except Exception as error:  # noqa: BLE001 - a connector's bug: see _crashed
            outcomes = self._crashed(system, [j.job_id for j in jobs], error)

        def settle(entry: Entry) -> None:
            if entry.job["job_id"] in too_big:
                self._too_big_for_pace(entry, too_big[entry.job["job_id"]], report)
            else:
                self._settle(entry, outcomes[entry.job["job_id"]], report, schedule)

        self._settle_in_time(entries, settle, report, schedule)

    def _beyond_one_invocation(
        self, system: SystemConfig, connector: Connector[Any], jobs: list[Job], whole: float
    ) -> dict[str, int]:
        """Job id -> its vendor calls, for each job whose calls at the system's pace cannot
        all start within one invocation's time (`whole`, from its start): one with many
        identifiers (a Braze job makes one call per email and phone of its cluster). Retried,
        it would start the same calls on every receive and fail after the last
        (docs/connectors.md, "Pace")."""
        rate, concurrency = system.rate_limit_per_second, self.settings.max_concurrency
        found: dict[str, int] = {}
        if math.isinf(whole):  # no time limit (a CLI run, a test): every job fits
            return found
        for job in jobs:
            calls = connector.calls_per_job(job)
            if paced_start_seconds(calls, rate, concurrency) > whole:
                found[job.job_id] = calls
        return found

    def _too_big_for_pace(self, entry: Entry, calls: int, report: BatchReport) -> None:
        """Failed at once, with no vendor call, for the operator: a faster pace (the vendor's
        limit allowing) or a longer worker timeout, then `optout replay`."""
        reason = (
            f"{calls} vendor calls at rate_limit_per_second cannot start within one "
            "invocation: raise the rate or the worker's timeout, then replay"
        )
        report.decisions[entry.message.message_id] = ACK
        report.counts["JobsTooBigForPace"] += 1
        now = iso(self.clock())
        if self._finish(
            entry.job, "failed", {"error": reason}, report, now, reason_class="too_big_for_pace"
        ):
            self._needs_replay(entry.job, now, report)

    def _needs_replay(self, job: Item, failed_at: str, report: BatchReport) -> None:
        """A failure this run wrote and acknowledged (no message comes back for it) counted
        `FailedJobsNeedReplay` now, noted on its listing as a message of it would be: a later
        message of the job (an SQS duplicate, a DLQ redrive) counts it no more (review s18 B6:
        it was counted twice, here and by that message's `_message_of_failed`)."""
        if note_message_of_failed(self.table, {**job, "completed_at": failed_at}, failed_at):
            report.counts["FailedJobsNeedReplay"] += 1

    def _settle_in_time(
        self,
        entries: list[Entry],
        settle: Callable[[Entry], None],
        report: BatchReport,
        schedule: ConfirmScheduler,
    ) -> None:
        """Each entry's writes, in their order (by_urgency: last receives first, as one given
        back on its last receive goes to the DLQ). Once the function has less than
        WRITES_STOP_SECONDS left before a write (`_in_time`, checked per AWS call), that entry
        and the rest come back as they are, so the invocation still answers; an entry part
        written is finished by its message's return, as after a write fault. An AWS error on
        one entry's writes brings back that entry alone: the others' writes stand."""
        for n, entry in enumerate(entries):
            try:
                self._in_time()
                settle(entry)
            except OutOfTimeForWrites:
                self._out_of_time_for_writes(entries[n:], report)
                return
            except WRITE_ERRORS as error:
                self._write_failed(entry, error, report, schedule)

    def _out_of_time_for_writes(self, entries: list[Entry], report: BatchReport) -> None:
        """Vendor calls made, nothing written: each message comes back as after a timeout,
        but alone. A send is sent again (the vendor's answer is idempotent); a status check
        returns after its lease and asks again. On a last receive it goes to the DLQ."""
        send_delay = backoff_seconds(1, self.settings.retry_base_seconds, 60, self.rng)
        for entry in entries:
            check = entry.parsed.confirm is not None
            delay = self.settings.lease_seconds + 1 if check else send_delay
            report.decisions[entry.message.message_id] = Decision(delay, "out of time for writes")
            report.counts["JobWritesOutOfTime"] += 1
            if entry.message.receive_count >= self.settings.max_receive_count:
                report.counts["JobWritesOutOfTimeToDLQ"] += 1
        logger.error("out of time for the job writes", jobs=len(entries))

    def _crashed(
        self, system: SystemConfig, job_ids: list[str], error: Exception
    ) -> dict[str, Outcome]:
        """A connector raised something other than a DeliveryError (a vendor answer of a shape
        it did not expect, say): its jobs are retried like after a vendor outage. Only the
        class is logged and kept: the message may quote a vendor's answer, or a value, and
        raised out of the handler Lambda would log it whole."""
        logger.error("connector raised", system=system.name, error=type(error).__name__)
        failure = DeliveryError(f"{system.type}: {type(error).__name__}", retryable=True)
        return {job_id: Outcome(job_id, None, error=failure) for job_id in job_ids}

    def _unusable(
        self, system: SystemConfig, job_ids: list[str], error: Exception
    ) -> dict[str, Outcome]:
        # An operator must fix options or credentials: retry until then (or the DLQ).
        logger.error("connector unusable", system=system.name, error=str(error))
        failure = DeliveryError(f"configuration: {type(error).__name__}", retryable=True)
        return {job_id: Outcome(job_id, None, error=failure) for job_id in job_ids}

    def _settle(
        self, entry: Entry, outcome: Outcome, report: BatchReport, schedule: ConfirmScheduler
    ) -> None:
        job, message = entry.job, entry.message
        if outcome.not_started:
            self._not_started([entry], report, schedule)
            return
        moment = self.clock()
        now = iso(moment)
        receipt = receipt_of(outcome, job=job)
        error = outcome.error
        decision = ACK
        written = True
        if outcome.status == "submitted":
            receipt["submitted_at"] = now
            status = "submitted"
            written = job_store.submit(self.table, job, receipt, now)
            if written:
                # Counted once the job reads submitted: a check whose send fails comes back as
                # this message, which only schedules the check (`_route`; review s17 N2).
                report.counts["JobsSubmitted"] += 1
                self._schedule_check(schedule, entry.parsed, job, 1, 0)
            else:
                self._lost(job, status, receipt, report)
        elif outcome.status is not None:
            status = outcome.status
            written = self._finish(job, status, receipt, report, now, attempted=True)
        elif error is None or not error.retryable:
            status = "failed"
            receipt["error"] = error.reason if error else "unknown failure"
            written = self._finish(job, status, receipt, report, now, error, attempted=True)
        elif message.receive_count >= self.settings.max_receive_count:
            # Last allowed receive: the job fails for good and SQS moves the message to the DLQ.
            status, decision = "failed", Decision(0, "retries exhausted")
            receipt["error"] = f"retries exhausted: {error.reason}"
            written = self._finish(
                job, status, receipt, report, now, error, "retries_exhausted", attempted=True
            )
        else:
            delay = retry_delay(
                error,
                entry.attempt,
                self.settings.retry_base_seconds,
                self.settings.retry_max_seconds,
                self.rng,
                self._longest_wait(message),
            )
            status, decision = "pending", Decision(delay, error.reason)
            receipt["error"] = error.reason
            retry_at = iso(moment + timedelta(seconds=delay))
            written = job_store.record(self.table, job, receipt, now, retry_at)
            if written:
                report.counts["JobsRetried"] += 1
            else:
                self._lost(job, status, receipt, report)
        if not written:  # another copy's answer stands and carries the job on: nothing to retry
            decision = ACK
        report.decisions[message.message_id] = decision
        if written and status in CLEAN_STATUSES and "error" not in receipt:
            report.settled.setdefault(status, []).append(str(job["job_id"]))
            return
        logger.info(
            "delivery attempt",
            job_id=job["job_id"],
            system=job["system"],
            attempt=entry.attempt,
            status=status,
            http_status=outcome.http_status,
            error=receipt.get("error"),
            retry_in=decision.retry_in,
        )

    def _longest_wait(self, message: Received) -> int:
        """The longest retry wait the message's remaining receives can hold: each is one
        visibility leg, and the last allowed receive must still call the vendor."""
        legs = max(1, self.settings.max_receive_count - message.receive_count)
        return legs * longest_visibility(self.settings.batch_window_seconds)

    # -- confirming -----------------------------------------------------------------------

    def _confirmable(
        self, message: Received, parsed: JobMessage, job: Item | None, report: BatchReport
    ) -> Entry | None:
        check = parsed.confirm or 0
        if job is not None and job.get("status") in job_store.FINAL:
            # Final already: nothing to confirm. Its after-steps run again (idempotent): a
            # crash or an AWS error between a check's final write and them left them undone,
            # and this message (back after that error, or a fresh one) is all that comes back.
            self._after_final(job, str(job["status"]), iso(self.clock()), report)
        if job is None or job.get("status") != job_store.SUBMITTED:
            report.decisions[message.message_id] = ACK
            return None
        if check < int(job.get("confirms", 0)):
            report.decisions[message.message_id] = ACK  # a newer check of this job exists
            report.counts["ChecksSuperseded"] += 1
            return None
        first = self._first_check_seconds(str(job["system"])) if check <= 1 else 0.0
        left = first - self._age(job, self.clock())
        if (
            first > SQS_MAX_DELAY_SECONDS
            and left > WAIT_AGAIN_AFTER_SECONDS
            and message.receive_count < self.settings.max_receive_count
        ):
            # A first check later than SQS's longest delay (Google's 30 minutes) came back
            # after that delay: hidden for the rest, with no vendor call and no write.
            report.decisions[message.message_id] = Decision(
                math.ceil(left), "first check not yet due"
            )
            return None
        return Entry(message, parsed, job)

    def _claim(self, entry: Entry, report: BatchReport, schedule: ConfirmScheduler) -> bool:
        """Lease the job for this check, just before its vendor call (not when the batch is
        read: a check the time then runs out for must leave no lease behind)."""
        now = self.clock()
        check = entry.parsed.confirm or 0
        try:
            claimed = job_store.claim_confirm(
                self.table, entry.job, check, iso(now), int(now.timestamp()),
                self.settings.lease_seconds,
            )  # fmt: skip
        except OutOfTimeForWrites:
            self._out_of_time_for_writes([entry], report)
            return False
        except WRITE_ERRORS as error:
            self._write_failed(entry, error, report, schedule)
            return False
        if claimed:
            return True
        self._retry(report, entry.message, entry.message.receive_count, "job leased elsewhere")
        return False

    def _confirm_system(
        self,
        system: SystemConfig,
        entries: list[Entry],
        report: BatchReport,
        schedule: ConfirmScheduler,
    ) -> None:
        submitted = [
            Submitted(
                e.job["job_id"],
                str((e.job.get("receipt") or {}).get("vendor_ref") or ""),
                tuple((e.job.get("receipt") or {}).get("identifier_types_sent") or ()),
            )
            for e in entries
        ]
        give_up = self.settings.confirm_give_up_seconds
        try:
            connector = self.connector_for(system)
            give_up = connector.confirm_give_up_seconds(give_up)
            outcomes = {o.job_id: o for o in connector.confirm(submitted)}
        except UNUSABLE as error:
            outcomes = self._unusable(system, [s.job_id for s in submitted], error)
        except Exception as error:  # noqa: BLE001 - a connector's bug: see _crashed
            outcomes = self._crashed(system, [s.job_id for s in submitted], error)

        def settle(entry: Entry) -> None:
            self._settle_check(entry, outcomes[entry.job["job_id"]], report, schedule, give_up)

        self._settle_in_time(entries, settle, report, schedule)

    def _settle_check(
        self,
        entry: Entry,
        outcome: Outcome,
        report: BatchReport,
        schedule: ConfirmScheduler,
        give_up: float,  # seconds: the connector's, at least the worker's setting
    ) -> None:
        job, check = entry.job, entry.parsed.confirm or 1
        if outcome.not_started:  # out of time before its call: give the lease back
            job_store.release_confirm(self.table, job, check)
            self._not_started([entry], report, schedule)
            return
        now = self.clock()
        receipt = _after_check(
            {**(job.get("receipt") or {}), **receipt_of(outcome, keep_types=True)}
        )
        receipt["vendor_ref"] = bounded_ref(outcome.vendor_ref, outcome.status) or (
            job.get("receipt") or {}
        ).get("vendor_ref")
        receipt["checked_at"] = iso(now)
        report.decisions[entry.message.message_id] = ACK
        error = outcome.error
        # A status check's final write applies to the job only while it is submitted
        # (job_store.finish); one that loses is counted and logged by `_finish`.
        if outcome.status in ("done", "no_record"):
            self._finish(job, str(outcome.status), receipt, report, iso(now))
        elif error is not None and not error.retryable:  # the vendor's verdict
            receipt["error"] = error.reason
            self._finish(job, "failed", receipt, report, iso(now), error, "vendor_failed")
        elif self._age(job, now) >= give_up:
            limit = duration_text(give_up)
            receipt["error"] = f"vendor did not confirm within {limit}"
            self._finish(job, "failed", receipt, report, iso(now), error, "not_confirmed")
        else:  # still processing, or the status call failed: ask again later
            if error is not None:
                receipt["error"] = error.reason
            delay = self._check_delay(check + 1)
            self._schedule_check(schedule, entry.parsed, job, check + 1, delay)
            job_store.advance_confirm(self.table, job, check + 1, receipt, iso(now))
            report.counts["JobsStillProcessing"] += 1
        logger.info(
            "status check",
            job_id=job["job_id"],
            system=job["system"],
            check=check,
            status=outcome.status or ("failed" if error else None),
        )

    def _schedule_check(
        self, schedule: ConfirmScheduler, parsed: JobMessage, job: Item, check: int, delay: float
    ) -> None:
        message = JobMessage(
            job_id=job["job_id"], request_id=job["request_id"], system=job["system"], confirm=check
        )
        if delay:
            seconds = math.ceil(delay)
        elif check <= 1:
            seconds = math.ceil(self._first_check_seconds(str(job["system"])))
        else:
            seconds = math.ceil(self._check_delay(check))
        schedule(message, min(SQS_MAX_DELAY_SECONDS, max(0, seconds)))

    def _first_check_seconds(self, system: str) -> float:
        """Seconds from a job's submission to its first status check: the connector's own
        (`first_confirm_seconds` times `first_confirm_scale`, at least the setting below),
        else `confirm_delay_seconds`."""
        own = CONNECTORS[self.systems.get(system).type].first_confirm_seconds
        first = self.settings.confirm_delay_seconds
        return first if own is None else max(first, own * self.settings.first_confirm_scale)

    def _check_delay(self, check: int) -> float:
        return float(
            min(
                self.settings.confirm_max_delay_seconds,
                self.settings.confirm_delay_seconds * 2 ** max(0, check - 1),
            )
        )

    @staticmethod
    def _age(job: Item, now: datetime) -> float:
        submitted = (job.get("receipt") or {}).get("submitted_at") or job.get("submitted_at")
        if not isinstance(submitted, str):
            return 0.0
        return (now - datetime.fromisoformat(submitted)).total_seconds()

    # -- the one place a job becomes final --------------------------------------------------

    def _finish(
        self,
        job: Item,
        status: str,
        receipt: Item,
        report: BatchReport,
        now: str,
        error: DeliveryError | None = None,
        reason_class: str | None = None,
        attempted: bool = False,
    ) -> bool:
        """Every transition to done / no_record / failed goes through here, and only here.
        True when this write took effect.

        - job_store.finish writes the status and receipt and drops the identifier values
          from the job (PII lifecycle: types and keyed hashes stay); `attempted`: this
          write ends a delivery attempt (counted in `attempts`), not a status check.
        - Only `done` counts as delivered, and the job's receipt is what says so: the
          identities' marks already name the job, so nothing else is written
          (docs/decisions.md, "The receipt is the done mark"). `no_record` (a vendor's
          definitive "no such person") is a receipt for this request only: it frees the
          marks, so the next event asks the vendor again. A failure frees them too and lists
          the job for replay (store.delivery.record_delivered: the after-steps). An AWS
          error there raises AfterStepsFailed: that message alone comes back (_write_failed),
          and a message of a final job, send or status check, runs the after-steps again
          (`_after_final`), as it does after a crash in between.
        - Failures are logged at WARNING with the system, a value-free reason class and the
          request id (never identifiers), so an operator can find and replay them; the
          reason class is also on the failed receipt (`reason_class`), in the same write.
        - The write applies only to the job as it was read (pending, or submitted for a status
          check: job_store.finish). One that loses to another copy's write changes nothing:
          no marks freed, no listing, not counted as done or failed (`_lost`); a `done` that
          lost to a `no_record` or `failed` is only kept beside it (`_keep_lost_answer`).
        """
        receipt["completed_at"] = now
        if status == "failed":
            # On the receipt too, in this same write: `optout status` shows it to an operator
            # who cannot read the worker's log (review s30 operator F4). A fixed word, no value.
            receipt["reason_class"] = reason_class or (error.reason_class if error else "unknown")
        found: Item = {}
        written = job_store.finish(self.table, job, status, receipt, now, attempted, found)
        if not written:
            self._lost(job, status, receipt, report)
            if status == "done":
                self._keep_lost_answer(job, found, receipt, now)
            return False
        if status == "failed":
            logger.warning(
                "job failed",
                system=job["system"],
                request_id=job["request_id"],
                reason_class=receipt["reason_class"],
                http_status=receipt.get("http_status"),
            )
        else:  # counted here, once: a message back for it re-runs only the after-steps
            report.counts[COUNTER[status]] += 1
        # delivered means confirmed (done); no_record and failed free the marks
        final = {**job, "status": status, "receipt": receipt, "completed_at": now}
        try:
            self._after_final(final, status, now, report)
        except (ClientError, BotoCoreError) as failure:
            raise AfterStepsFailed(job["job_id"]) from failure
        return True

    def _after_final(self, job: Item, status: str, now: str, report: BatchReport) -> bool:
        """A final job's after-steps (record_delivered), idempotent: run by its final write
        and again by any message of it that comes back. A failure is counted `JobsFailed`
        when its listing is written first, whichever run that is: once per failure, also
        when the run that wrote the status never got that far. True when this run listed it.

        A failed job is read again afterwards (one BatchGetItem; failures are rare): it may
        have been replayed since it was read, and these frees then took the new round's marks
        (review s22 race R4: `optout redrive` followed by `optout replay`, as the runbook
        says). If it is in flight again, its marks are written again (conditional, as the
        replay's). Also after its final write: a duplicate of its message may have listed the
        failure first, and a replay reset it, before these frees ran (diff A6). That replay
        dropped the duplicate's listing, so this run listed the failure again: not counted
        again when the re-read job says the replay read another run's listing (race24;
        `listed_again_after_replay`). That late listing stays (a worker may not delete one):
        the next replay drops it, and sends nothing for it."""
        token = uuid.uuid4().hex
        listed = record_delivered(self.table, job, status, now, job.get("receipt"), token)
        if status != "failed":
            return listed
        key = (str(job["request_id"]), str(job["system"]))
        try:
            again = job_store.load_jobs(self.table, [key]).get(str(job["job_id"]))
        except (ClientError, BotoCoreError):
            if listed:  # counted as before: a message back finds it listed and counts nothing
                report.counts["JobsFailed"] += 1
            raise
        failed_at = str(job.get("completed_at") or now)
        if listed and again is not None and listed_again_after_replay(again, failed_at, token):
            listed = False
            logger.info("failure listed again after its replay: counted once, before",
                        job_id=job["job_id"])  # fmt: skip
        if listed:
            report.counts["JobsFailed"] += 1
        if again is not None and again.get("status") in (job_store.PENDING, job_store.SUBMITTED):
            mark_again(self.table, again, now)
            logger.info("replayed job marked in flight again", job_id=job["job_id"])
            self._free_if_ended_since(key, str(job["job_id"]), now)
        return listed

    def _free_if_ended_since(self, key: tuple[str, str], job_id: str, now: str) -> None:
        """After `mark_again`: the job read once more (one BatchGetItem, only on this replayed
        path), and its frees run again if the replayed round ended between the re-read and
        those marks: its worker freed them first, so they named an ended round in flight
        (review s23 diff A3). The listing stays that round's worker's (`free_ended`)."""
        after = job_store.load_jobs(self.table, [key]).get(job_id)
        if after is not None and after.get("status") in job_store.FINAL:
            free_ended(self.table, after, str(after["status"]), now, after.get("receipt"))

    def _write_failed(
        self, entry: Entry, error: Exception, report: BatchReport, schedule: ConfirmScheduler
    ) -> None:
        """An AWS error on one message's writes, after botocore's retries: that message alone
        comes back, soon; the batch's other messages keep their decisions (no vendor call
        again for jobs already written). A send comes back to its job still pending (sent
        again), submitted (its check scheduled) or final (its after-steps run again). A
        status check comes back after its lease (`lease_seconds`), which may be its own
        (written before a later write failed).

        On its last allowed receive a status check is scheduled afresh with its own receives
        (as `_not_started` does): it checks a job still submitted, or runs the after-steps of
        one that became final (`_confirmable`); only if that send fails too does the DLQ
        carry it. A send goes to the DLQ, as any last receive's retry does: only the workers
        of asynchronous systems may send to their queue, and a redrive runs the after-steps
        of a final job (`_route`)."""
        if not transient(error):
            # A validation or access error is a bug or a broken grant, not AWS being busy:
            # it fails the invocation, as before, for the Errors alarm (review s17 diff-worker
            # N3: retried to the DLQ, it read as a throttle in JobWritesFailedAlarm's runbook).
            raise error
        message, parsed = entry.message, entry.parsed
        report.counts["JobWritesFailed"] += 1
        logger.error(
            "job write failed", job_id=parsed.job_id, system=parsed.system, error=aws_error(error)
        )
        if parsed.confirm is None:
            delay = backoff_seconds(1, self.settings.retry_base_seconds, 60, self.rng)
        else:
            delay = self.settings.lease_seconds + 1  # the lease must have passed (`<`)
        report.decisions[message.message_id] = Decision(delay, "job write failed")
        if parsed.confirm is None or message.receive_count < self.settings.max_receive_count:
            return
        try:
            job = job_message(parsed.request_id, parsed.system)  # the job_id JobMessage checks
            self._schedule_check(schedule, parsed, job, parsed.confirm, delay)
        except (ClientError, BotoCoreError, OutOfTimeForWrites):
            return  # to the DLQ (<system>DeadLetterAlarm)
        report.decisions[message.message_id] = ACK

    def _keep_lost_answer(self, job: Item, stored: Item, receipt: Item, now: str) -> None:
        """This copy's `done` lost to another copy's `no_record` or `failed` in the same replay
        round: the vendor applied the opt-out (the other copy's answer may be shaped by this
        one's effect: a receiver that deleted the person finds no one the second time), so the
        job keeps this answer beside its receipt (`lost_answers`, shown wherever operators see
        the receipt). The first answer still stands: status, marks and listing are untouched
        (docs/decisions.md, "A read, not a claim"). One write, only on this race path; if it
        fails or there is no time left for it, the answer is still in `_lost`'s log line, and
        the message keeps its decision (acknowledged: nothing of the job is left to do)."""
        if stored.get("status") not in ("no_record", "failed"):
            return
        if stored.get("replayed_at") != job.get("replayed_at"):
            return  # another round's answer: this one is not beside it
        answer = {"status": "done", "http_status": receipt.get("http_status"),
                  "vendor_ref": receipt.get("vendor_ref"), "at": now}  # fmt: skip
        answer = {k: v for k, v in answer.items() if v is not None}
        try:
            kept = job_store.keep_lost_answer(self.table, stored, answer)
        except (ClientError, BotoCoreError, OutOfTimeForWrites) as error:
            logger.warning("lost answer not kept", job_id=job["job_id"], error=aws_error(error))
            return
        if kept:
            logger.info("lost answer kept on the job", job_id=job["job_id"], system=job["system"])

    @staticmethod
    def _lost(job: Item, status: str, receipt: Item, report: BatchReport) -> None:
        """A write refused because the job is no longer as this delivery read it: another
        copy of its message (SQS delivers at least once), a status check or an operator
        replay moved it first, and that write stands. Logged with what this one would have
        written (its status, HTTP status, reason and vendor reference: no identifier), so an
        operator can tell, say, a vendor that accepted the opt-out while the job reads
        failed."""
        report.counts["JobWritesLost"] += 1
        logger.warning(
            "job write lost to another delivery",
            job_id=job["job_id"],
            system=job["system"],
            status=status,
            http_status=receipt.get("http_status"),
            error=receipt.get("error"),
            vendor_ref=receipt.get("vendor_ref"),
        )


# The failed status checks a receipt keeps as history (a check runs at most every few minutes
# once its delay has grown; the last ones say enough and keep the item small).
MAX_CHECK_ERRORS = 10


def _after_check(receipt: Item) -> Item:
    """A receipt merged from the previous one and a new status check's answer: the previous
    check's `error` is history (`check_errors`), not this answer's, so a job the vendor then
    confirms done or no_record carries no error (this check writes its own, if it fails). The
    same error again as the last entry is counted on it (`<error> (3x)`), not kept again: a
    sustained throttle keeps one line, and a job item stays within 1 KB (review s30 F4)."""
    previous = receipt.pop("error", None)
    if previous:
        history = list(receipt.get("check_errors") or [])
        last = _REPEATED.fullmatch(history[-1]) if history else None
        if history and history[-1] == previous:
            history[-1] = f"{previous} (2x)"
        elif last is not None and last.group(1) == previous:
            history[-1] = f"{previous} ({int(last.group(2)) + 1}x)"
        else:
            history.append(previous)
        receipt["check_errors"] = history[-MAX_CHECK_ERRORS:]
    return receipt


_REPEATED = re.compile(r"(.*) \((\d+)x\)", re.DOTALL)


# A transaction cancelled by a conflict or a throttle is AWS being busy too.
TRANSIENT_CODES = frozenset({"TransactionConflictException", "TransactionInProgressException"})


def transient(error: BaseException) -> bool:
    """An AWS error that says "not now" (a throttle, a 5xx, a network fault, a conflict), as
    opposed to one that will fail the same way again (a validation or access error)."""
    cause = error.__cause__ if isinstance(error, AfterStepsFailed) and error.__cause__ else error
    if not isinstance(cause, ClientError):
        return isinstance(cause, BotoCoreError)
    code = cause.response.get("Error", {}).get("Code")
    if code == "TransactionCanceledException":
        reasons = cause.response.get("CancellationReasons") or []
        return all(r.get("Code") in ("None", "ThrottlingError", "TransactionConflict",
                                     "ProvisionedThroughputExceeded") for r in reasons)  # fmt: skip
    return busy(cause) or code in TRANSIENT_CODES


def aws_error(error: BaseException) -> str:
    """An AWS error's code or class, for logs: never its message (it may quote a key)."""
    cause = error.__cause__ if isinstance(error, AfterStepsFailed) and error.__cause__ else error
    return error_code(cause)


def by_urgency(groups: dict[str, list[Entry]]) -> list[tuple[str, list[Entry]]]:
    """Each system's entries with the most-received messages first (the last allowed receive
    before any other), and the systems in the order of their most-received message."""
    ordered = {
        system: sorted(entries, key=lambda e: -e.message.receive_count)
        for system, entries in groups.items()
    }
    return sorted(ordered.items(), key=lambda item: -item[1][0].message.receive_count)


def queue_key(name: str) -> str:
    """SYSTEM_NAME may be the system name or its queue key (template.yaml has only the latter)."""
    return re.sub(r"[^A-Za-z0-9]", "", name)


def to_job(item: Item) -> Job:
    identifiers = tuple(
        Identifier(i["type"], i["value"]) for i in item.get("identifiers", []) if i.get("value")
    )
    return Job(
        job_id=item["job_id"],
        request_id=item["request_id"],
        system=item["system"],
        purposes=tuple(item.get("purposes", [])),
        identifiers=identifiers,
        jurisdictions=tuple(sorted(item.get("jurisdictions") or ())),
        chosen_at=str(item.get("chosen_at") or ""),
    )


__all__ = [
    "ACK",
    "BatchReport",
    "ConfirmScheduler",
    "Decision",
    "DeliveryService",
    "Received",
    "queue_key",
    "to_job",
]
