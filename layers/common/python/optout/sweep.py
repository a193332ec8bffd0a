"""Reconciliation: find what the pipeline dropped silently, and hand it back to the resolver.

Two things can vanish without an error anywhere: an event whose stream record was never
resolved (the stream keeps records 24 hours; a resolver failing past its retries parks the
record's position in the on-failure queue, and the record itself expires), and a job left
`pending` whose message is gone (a partly failed SendMessageBatch, a message deleted by a
crashed or buggy consumer). The sweep looks at each request a few times, at set ages (the
ByDay index, never a scan), reads its resolution and job statuses, and writes one `redrive`
event per batch of what it found, which the resolver carries out like any other operator
action: an unresolved event is resolved again (resolution is idempotent: existing jobs stand),
a stuck job's message is sent again (the worker reads the job first: a second message for a
finished job is acknowledged without a vendor call). Jobs the resolver made again after a
concurrent change have no EVENT of their own; a `REDERIVED#` marker in the request they were
made beside names them, and they are checked with it.

A third thing ends quietly: a request that cited another request's job in flight as its proof
(`RESOLUTION.covered`), where that job then ended as no proof for it (no_record, or done
without the identifier type it relied on: `status.SystemProof.proves`), and has no job of its
own for that system. Its status reads processing; the redrive re-opens it: the resolver plans
that request's jobs again, and the job the earlier one's end left to make is made now. One
whose cited job ends after its last checkpoint is the deadline watch's to re-open, with the
same `reopen` reference (`optout.ops.watch`, `REOPEN_AFTER`).

It also catches a request the deadline watch passed over: the watch enrols arrivals from the
same index a couple of minutes behind real time, and an index entry that appears later than
that is behind its cursor for good. A request (an opt-out) the watch says it has enrolled up
to (`through`) but has not folded gets a reminder due now, so the watch's next run reads it
(its §7102 figures, its deadline) as it reads a replayed or imported one.
"""

import uuid
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from time import monotonic
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from optout.events import CapturedEvent, is_request
from optout.observability import logger
from optout.ops import keys as ops_keys
from optout.ops.reminders import remind_now
from optout.store import by_day, keys
from optout.store.batch import Key, batch_get, batch_put
from optout.store.codec import Item, deserialize, serialize
from optout.store.conditional import conditional
from optout.store.events import put_event
from optout.store.query import items as query_items
from optout.store.requests import marked_requests
from optout.store.retired import last_retired_at, made_at_or_before, retirements
from optout.store.table import Table
from optout.timestamps import iso

REDRIVE_BATCH = 100  # references per redrive event (an item holds 400 KB; this is ~8 KB)
# The schedule's period, and the step between the shards two consecutive runs start at: 9 is
# prime to the 16 shards (each is first once in 16 runs) and about half of them, so two runs
# whose windows overlap start far apart.
RUN_PERIOD_SECONDS = 600
SHARD_STEP = 9
SKIPPED_EVENT_TYPES = frozenset({"redrive"})  # a lost redrive is found again by the next sweep
# A read that failed after the client's retries (throttled, timed out; RuntimeError: keys a
# BatchGetItem left unprocessed): that request, or that window, is left, and the run goes on.
READ_ERRORS = (ClientError, BotoCoreError, RuntimeError)
# What a failed read left unchecked, carried to the next runs until it is checked (written only
# when a read failed: a run whose reads all succeed writes only its mark here, and reads the
# partition with one Query). A request: `RECHECK#<request_id>`; the rest of a window:
# `WINDOW#<start>#<end>`.
CARRY_PK = "SWEEP"
RECHECK_PREFIX = "RECHECK#"
WINDOW_PREFIX = "WINDOW#"
CARRY_DAYS = 7  # then left to expire (TTL): a read failing that long has had its alarm all along
# Where each checkpoint's reads have got to (`SWEEP/MARK`, one item, `read_to`: checkpoint age in
# seconds -> the arrival time its last window ended at): each run reads from there, so a late
# run leaves no slice unread. Written once a run, conditionally on the mark it read: of runs
# that overlap, each keeps the furthest of the two marks at each checkpoint, never moves one back.
MARK_SK = "MARK"
MARK_TRIES = 3  # conditional writes of the mark, each after re-reading the one that won


@dataclass(frozen=True)
class SweepSettings:
    # Each request is checked when it is this old (each run reads the requests that arrived
    # in one `window` before each age: a few Queries per request in all, whatever the table
    # holds). The first age is the grace an event gets before it counts as lost; the last
    # comes before the stream's 24-hour retention ends, while a lost record can still be
    # seen for what it is; the ones between catch jobs stuck during their retries.
    checkpoints: tuple[timedelta, ...] = (
        timedelta(minutes=15), timedelta(hours=2, minutes=15), timedelta(hours=8),
        timedelta(hours=23),
    )  # fmt: skip
    # A checkpoint with no mark (a first run, or the mark unread) reads one window before its
    # age; with a mark, from the mark, but no further back than `max_window`: older arrivals
    # are left and counted (`SweepReport.uncovered`; no run finished for that long).
    window: timedelta = timedelta(minutes=12)  # the schedule's 10 minutes, and a margin
    max_window: timedelta = timedelta(hours=1)
    # A window is listed slice by slice (each slice over every shard), and its mark moves past
    # each slice listed to its end: a run cut short keeps what it read, and the next run reads
    # on from the slice it was cut in (review s18 B2: a cut window used to be read again whole,
    # with 10 more minutes, until runs were cut every time and the youngest checks capped).
    slice: timedelta = timedelta(minutes=2)
    # A pending job untouched for this long past its last write, and past the retry time the
    # worker wrote on it (`retry_at`: a vendor's Retry-After, up to ~3.5 days, or our
    # back-off), has no message left. A job waiting out a Retry-After is not "stuck"; one
    # whose message never came back after it is, 2 h after it was due.
    job_grace: timedelta = timedelta(hours=2)

    @property
    def catch_up(self) -> timedelta:
        """The most of a checkpoint's arrivals one run reads (from its mark): a checkpoint
        behind reads two windows a run, the rest is read by the runs that follow (a backlog
        drains by 14 minutes a run of 10, and no run takes on more than twice its usual reads)."""
        return 2 * self.window


@dataclass(frozen=True)
class CutShort:
    """Where a run stopped for want of time: the checkpoint it was in, and the arrival time of
    the first event it did not check there (younger checkpoints' windows were not read)."""

    checkpoint: timedelta
    before: str


@dataclass(frozen=True)
class Uncovered:
    """Arrivals [start, end) a checkpoint's window did not reach back to: its mark was older
    than `max_window` (no run had read that far for so long). Not checked at that age."""

    checkpoint: timedelta
    start: str
    end: str


@dataclass
class SweepReport:
    events_checked: int = 0
    unresolved: list[str] = field(default_factory=list)  # request ids
    stuck_jobs: list[str] = field(default_factory=list)  # job ids: "<request_id>:<system>"
    reopened: list[str] = field(default_factory=list)  # requests whose cited job proved nothing
    redrive_events: list[str] = field(default_factory=list)  # request ids of redrive events
    unenrolled: list[str] = field(default_factory=list)  # requests the watch passed over
    cut_short: CutShort | None = None  # set when the run stopped at its deadline
    # Reads that failed (SweepChecksFailed): requests not checked, and checkpoints whose window
    # was not read to its end; the rest of the run went on.
    checks_failed: list[str] = field(default_factory=list)  # request ids
    windows_failed: list[timedelta] = field(default_factory=list)  # checkpoint ages
    # What earlier runs' failed reads left, checked in this run (request ids; windows' ages),
    # and whether the list of what they left could not be read (counted as a failed check).
    carried_checked: list[str] = field(default_factory=list)
    carried_windows: list[timedelta] = field(default_factory=list)
    carry_unread: bool = False
    uncovered: list[Uncovered] = field(default_factory=list)  # SweepCutShort, as a cut run
    mark_unwritten: bool = False  # counted as a failed check: the next run reads it again


@dataclass
class _Carry:
    """The carried items read at a run's start, and what the run adds and clears."""

    requests: list[Item] = field(default_factory=list)  # RECHECK# items
    windows: list[Item] = field(default_factory=list)  # WINDOW# items
    # Carried items now done, with the `failed_at` read: deleted only if still that record
    checked: list[tuple[Key, str]] = field(default_factory=list)
    failed: list[Item] = field(default_factory=list)  # new failures: written
    # The marks read (checkpoint age in seconds -> arrival time read to) and the run that wrote
    # them (None: no mark yet); `marks_read` False when the Query failed: no mark is written.
    marks: dict[str, str] = field(default_factory=dict)
    marks_by: str | None = None
    marks_read: bool = False
    read_to: dict[str, str] = field(default_factory=dict)  # windows this run read to their end


class Sweeper:
    def __init__(
        self,
        table: Table,
        settings: SweepSettings | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        retention_days: int = 1095,
    ) -> None:
        self._table = table
        self._settings = settings or SweepSettings()
        self._clock = clock
        self._retention = retention_days
        self._retired: dict[str, str] = {}  # system -> retired_at, read once per run

    def sweep(self, deadline: float | None = None) -> SweepReport:
        """One run over the checkpoints' windows, oldest age first. Each redrive event is
        written as soon as it holds REDRIVE_BATCH references, so a run cut short keeps what it
        found; none is checked after `deadline` (a time.monotonic() instant): the run stops
        there, and `report.cut_short` says where.

        A run cut short has read the older windows first: the last check (23 h) is a request's
        last chance, a younger one has later checks behind it. Within a window the shards are
        read from one that moves on every run (`first_shard`), so runs cut short in turn do
        not all check the same requests and leave the same ones unread.

        Each checkpoint's window starts where the last run's read there ended (`SWEEP/MARK`),
        not at a fixed length before `now`: a run that starts late (Lambda's retry of a failed
        run, a throttled invocation) reads the longer window (review s18 T4: the 12-minute
        window left a slice unread, at 23 h for good). A window is read at most `catch_up`
        (two windows) on from its mark, in slices: each slice listed to its end (or carried)
        moves the mark, so a run cut short keeps its progress and a backlog drains (review
        s18 B2). A mark older than `max_window` is not followed further back
        (`report.uncovered`).

        A read that fails (a throttle or a timeout after the client's retries) leaves that
        request (`report.checks_failed`) or the rest of that window (`report.windows_failed`)
        and the run goes on: one throttled Query used to end the run, dropping the references
        found so far, and Lambda's retries read the windows from a later `now`. What it left is
        carried (`SWEEP` items, written only then) and checked first by the next runs until a
        check succeeds: the window has moved on by then, and a request's 23 h check was never
        made again (review s17 F8)."""
        now = self._clock()
        untouched_since = iso(now - self._settings.job_grace)
        # A retired system's jobs made before its retirement are not owed: not re-driven.
        self._retired = {s: last_retired_at(r) for s, r in retirements(self._table).items()}
        report = SweepReport()
        carry = self._read_carry(report)
        seen: set[str] = set()
        unfolded_events: list[Item] = []
        found: list[tuple[str, str]] = []  # references not yet in a redrive event
        try:
            for event, age in self._events(now, report, carry):
                if deadline is not None and monotonic() >= deadline:
                    report.cut_short = CutShort(age, str(event.get("received_at", "")))
                    break
                request_id = str(event["request_id"])
                if event.get("event_type") in SKIPPED_EVENT_TYPES or request_id in seen:
                    continue
                seen.add(request_id)
                self._check_one(event, age, untouched_since, report, carry, found, unfolded_events)
                while len(found) >= REDRIVE_BATCH:
                    report.redrive_events.append(self._redrive(found[:REDRIVE_BATCH], now))
                    del found[:REDRIVE_BATCH]
            if found:
                report.redrive_events.append(self._redrive(found, now))
            report.unenrolled = self._remind_watch(unfolded_events, now)
        except BaseException:
            # What failed is carried still; nothing carried is cleared (its references may
            # not have reached a redrive event): it is checked again next run.
            carry.checked.clear()
            self._write_carry(carry, now)
            raise
        self._write_carry(carry, now)
        self._write_marks(carry, now, report)
        return report

    def _check_one(
        self,
        event: Item,
        age: timedelta,
        untouched_since: str,
        report: SweepReport,
        carry: _Carry,
        found: list[tuple[str, str]],
        unfolded_events: list[Item],
    ) -> None:
        """One request's check; its references added to `found`. A carried request is cleared
        once checked; one whose read fails is carried to the next run (unless it already is)."""
        request_id = str(event["request_id"])
        carried = event.get("sk") == RECHECK_PREFIX + request_id
        try:
            resolved, unfolded, reopen, stuck = self._check(request_id, untouched_since)
        except READ_ERRORS as error:
            report.checks_failed.append(request_id)
            if not carried:
                carry.failed.append(_recheck_item(event, age))
            logger.warning("sweep check failed", extra={
                "request_id": request_id, "checkpoint_seconds": int(age.total_seconds()),
                "carried": carried, **_error_fields(error),
            })  # fmt: skip
            return
        if carried:
            carry.checked.append(((CARRY_PK, str(event["sk"])), str(event.get("failed_at", ""))))
            report.carried_checked.append(request_id)
        report.events_checked += 1
        if not resolved:
            report.unresolved.append(request_id)
            found.append(("request", request_id))
        if reopen:
            report.reopened.append(request_id)
            found.append(("reopen", request_id))
        report.stuck_jobs += stuck
        found += [("job", job) for job in stuck]
        if unfolded:
            unfolded_events.append(event)

    def _check(self, request_id: str, untouched_since: str) -> tuple[bool, bool, bool, list[str]]:
        """(resolved?, unfolded?, to re-open?, its stuck jobs' ids, with those of the jobs the
        resolver's flush made for it, which have no EVENT)."""
        resolved, pending, unfolded, rederived, reopen = self._request_state(
            request_id, untouched_since
        )
        stuck = [f"{request_id}:{system}" for system in pending]
        for other in dict.fromkeys(rederived):  # a further job's id: marker and RESOLUTION
            _, still, _, _, _ = self._request_state(other, untouched_since)
            stuck += [f"{other}:{system}" for system in still]
        return resolved, unfolded, reopen, stuck

    def _events(
        self, now: datetime, report: SweepReport, carry: _Carry
    ) -> Iterator[tuple[Item, timedelta]]:
        """What earlier runs' failed reads left first (their requests, then their windows: the
        oldest debts), then the events of each checkpoint's window, oldest age first, with that
        checkpoint's age (lazily: a run cut short reads no further page). A window whose
        listing fails is left where it failed (`report.windows_failed`), the rest of it carried
        to the next run, and the next checkpoint's is read."""
        for item in carry.requests:
            yield item, timedelta(seconds=int(item.get("checkpoint_seconds", 0)))
        for item in carry.windows:
            age = timedelta(seconds=int(item.get("checkpoint_seconds", 0)))
            start, end = (datetime.fromisoformat(str(item[k])) for k in ("start", "end"))
            if (yield from self._window(start, end, age, 0, report)):
                carry.checked.append(((CARRY_PK, str(item["sk"])), str(item.get("failed_at", ""))))
                report.carried_windows.append(age)
        shard = first_shard(now)
        for age in sorted(self._settings.checkpoints, reverse=True):
            start = self._window_start(age, now - age, carry, report)
            stop = min(now - age, start + self._settings.catch_up)
            yield from self._slices(start, stop, age, shard, report, carry)

    def _slices(
        self,
        start: datetime,
        stop: datetime,
        age: timedelta,
        shard: int,
        report: SweepReport,
        carry: _Carry,
    ) -> Iterator[tuple[Item, timedelta]]:
        """One checkpoint's window [start, stop), slice by slice; its mark moves past each slice
        listed to its end, or carried (never moved back: a run that overlapped this one may
        have read further). A run cut short in a slice leaves the mark at that slice's start.
        A slice whose listing fails is carried with the rest of the window (one item)."""
        key = _mark_key(age)

        def read_to(moment: datetime) -> None:
            carry.read_to[key] = max(iso(moment), carry.marks.get(key, ""))

        read_to(start)  # past what a capped window gave up (`report.uncovered`)
        low = start
        while low < stop:
            high = min(stop, low + self._settings.slice)
            if not (yield from self._window(low, high, age, shard, report)):
                carry.failed.append(_window_item(low, stop, age))
                high = stop
            read_to(high)
            low = high
        read_to(stop)

    def _window_start(
        self, age: timedelta, end: datetime, carry: _Carry, report: SweepReport
    ) -> datetime:
        """Where a checkpoint's window starts: its mark, no further back than `max_window`
        (what lies before is counted as uncovered); one `window` back without a mark."""
        mark = carry.marks.get(_mark_key(age))
        if mark is None:
            return end - self._settings.window
        earliest = end - self._settings.max_window
        start = datetime.fromisoformat(mark)
        if start >= earliest:
            return start
        report.uncovered.append(Uncovered(age, mark, iso(earliest)))
        logger.warning("sweep window capped: older arrivals not checked at this checkpoint",
                       extra={"checkpoint_seconds": int(age.total_seconds()),
                              "unchecked_from": mark, "unchecked_to": iso(earliest)})  # fmt: skip
        return earliest

    def _window(
        self, start: datetime, end: datetime, age: timedelta, shard: int, report: SweepReport
    ) -> Generator[tuple[Item, timedelta], None, bool]:
        """One window's events; returns whether it was listed to its end."""
        try:
            for event in by_day.events_between(self._table, start, end, shard):
                yield event, age
        except READ_ERRORS as error:
            report.windows_failed.append(age)
            logger.warning("sweep window not read to its end", extra={
                "checkpoint_seconds": int(age.total_seconds()), **_error_fields(error),
            })  # fmt: skip
            return False
        return True

    def _read_carry(self, report: SweepReport) -> _Carry:
        """What earlier runs' failed reads left, and the windows' mark (one Query). A failed
        read of it is counted as a failed check: those stay carried, and the marks where they
        were (this run reads one window a checkpoint), for the next run."""
        carry = _Carry()
        try:
            items = list(query_items(self._table, KeyConditionExpression="pk = :pk",
                                     ExpressionAttributeValues={":pk": {"S": CARRY_PK}},
                                     ConsistentRead=True))  # fmt: skip
        except READ_ERRORS as error:
            report.carry_unread = True
            logger.warning("sweep carry not read", extra=_error_fields(error))
            return carry
        carry.marks_read = True
        for item in items:
            sk = str(item["sk"])
            if sk == MARK_SK:
                carry.marks, carry.marks_by = _marks_of(item)
            elif sk.startswith(RECHECK_PREFIX):
                carry.requests.append(item)
            elif sk.startswith(WINDOW_PREFIX):
                carry.windows.append(item)
        return carry

    def _write_carry(self, carry: _Carry, now: datetime) -> None:
        """New failures written, carried items now checked deleted: no write when neither."""
        if carry.failed:
            expires = int((now + timedelta(days=CARRY_DAYS)).timestamp())
            batch_put(self._table, [{**item, "failed_at": iso(now), "expires_at": expires}
                                    for item in carry.failed])  # fmt: skip
        for key, failed_at in carry.checked:
            self._clear_carried(key, failed_at)

    def _clear_carried(self, key: Key, failed_at: str) -> None:
        """A carried item deleted only if it is still the record this run read (its
        `failed_at`): a run overlapping this one (a retry beside the next scheduled run) may
        have carried a newer failure of the same request under the same key since, which must
        stand (review s18 B8: an unconditional delete lost that check, uncounted)."""
        condition: dict[str, Any] = (
            {"ConditionExpression": "failed_at = :read",
             "ExpressionAttributeValues": {":read": {"S": failed_at}}}
            if failed_at
            else {"ConditionExpression": "attribute_not_exists(failed_at)"}
        )  # fmt: skip
        conditional(lambda: self._table.client.delete_item(
            TableName=self._table.name, Key={"pk": {"S": key[0]}, "sk": {"S": key[1]}},
            **condition))  # fmt: skip

    def _write_marks(self, carry: _Carry, now: datetime, report: SweepReport) -> None:
        """The checkpoints' new marks, written only over the mark this run read: if another run
        wrote since, its mark is read and the furthest of each pair kept, then written over it.
        Not written when the marks could not be read (the next run reads from the old ones). A
        write that fails leaves the old mark: the next run reads again what this one read."""
        if not carry.marks_read or not carry.read_to:
            return
        marks, expected = {**carry.marks, **carry.read_to}, carry.marks_by
        run = uuid.uuid4().hex
        try:
            for _ in range(MARK_TRIES):
                if self._put_marks(marks, run, expected, now):
                    return
                theirs, expected = self._read_marks()
                marks = {k: max(marks.get(k, ""), theirs.get(k, "")) for k in marks | theirs}
            report.mark_unwritten = True  # counted, as a failed write (review s18 B9)
            logger.warning("sweep mark not written: other runs wrote it first each time")
        except READ_ERRORS as error:
            report.mark_unwritten = True
            logger.warning("sweep mark not written", extra=_error_fields(error))

    def _put_marks(
        self, marks: dict[str, str], run: str, expected: str | None, now: datetime
    ) -> bool:
        """Whether the mark was written (False: another run wrote it since `expected`)."""
        item = {"pk": CARRY_PK, "sk": MARK_SK, "read_to": marks, "run": run,
                "written_at": iso(now)}  # fmt: skip
        condition: dict[str, Any] = (
            {"ConditionExpression": "attribute_not_exists(pk)"}
            if expected is None
            else {"ConditionExpression": "#run = :run", "ExpressionAttributeNames": {"#run": "run"},
                  "ExpressionAttributeValues": {":run": {"S": expected}}}
        )  # fmt: skip
        written = conditional(lambda: self._table.client.put_item(
            TableName=self._table.name, Item=serialize(item), **condition))  # fmt: skip
        return written is not None

    def _read_marks(self) -> tuple[dict[str, str], str | None]:
        items = list(query_items(self._table, KeyConditionExpression="pk = :pk AND sk = :sk",
                                 ExpressionAttributeValues={":pk": {"S": CARRY_PK},
                                                            ":sk": {"S": MARK_SK}},
                                 ConsistentRead=True))  # fmt: skip
        return _marks_of(items[0]) if items else ({}, None)

    def _remind_watch(self, events: list[Item], now: datetime) -> list[str]:
        """A reminder due now for each request the watch's cursor has passed without folding
        it (the ByDay index showed it late). None before the watch's first complete run, and
        none for one still ahead of the cursor: the watch will enrol it."""
        if not events:
            return []
        from optout.ops.watch import enrolled_through  # noqa: PLC0415 - pydantic: only then

        through = enrolled_through(self._table)
        missed = [e for e in events if through and str(e["received_at"]) <= through]
        expires = int((now + timedelta(days=self._retention)).timestamp())
        batch_put(self._table, [remind_now(str(e["request_id"]), e.get("deadline"), now, expires)
                                for e in missed])  # fmt: skip
        return [str(e["request_id"]) for e in missed]

    def _request_state(
        self, request_id: str, settled_before: str
    ) -> tuple[bool, list[str], bool, list[str], bool]:
        """(resolved?, systems whose job is pending, untouched since `settled_before` and not
        due to be retried after it, a request the watch has not folded?, request ids of jobs
        the resolver made again for it (`REDERIVED#`) and of its further own jobs
        (`RESOLUTION.split_jobs`)?, a system left with only cited jobs
        that proved nothing for it (`SystemProof.reopen`)?)."""
        resolved = denied = jobs = denial = False
        proof_items: list[Item] = []  # what status.proofs reads: event, resolution, own jobs
        stuck: list[str] = []
        rederived: list[str] = []
        request = folded = False
        kwargs: dict[str, Any] = {
            "TableName": self._table.name,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": {"S": keys.request_pk(request_id)}},
            "ProjectionExpression": "sk, #s, updated_at, retry_at, #sys, event_type, opt_out,"
            " #cov, #ids, not_asked, not_planned, not_configured, proof_rule, created_at, denied,"
            " resolved_at, cited_linked, request_ids, split_jobs",
            "ExpressionAttributeNames": {
                "#s": "status",
                "#sys": "system",
                "#cov": "covered",
                "#ids": "identifiers",
            },  # not_asked … cited_linked: what status.SystemProof.reopen reads (and `stale`)
        }  # eventually consistent: a resolution written a moment ago, missed, costs one redrive
        while True:
            page = self._table.client.query(**kwargs)
            for raw in page.get("Items", []):
                item = deserialize(raw)
                if item["sk"] == keys.EVENT_SK:
                    request = is_request(item)
                    proof_items.append(item)
                elif item["sk"] == ops_keys.FOLDED_SK:
                    folded = True
                elif item["sk"] == ops_keys.DENIAL_SK:
                    denial = True  # an operator's denial: nothing new is asked for it
                elif item["sk"] == keys.RESOLUTION_SK:
                    resolved, denied = True, bool(item.get("denied"))
                    proof_items.append(item)
                    # its further own jobs (several unlinked people named): checked as the
                    # flush's are, each under its request id of its own
                    rederived += split_requests(item)
                elif str(item["sk"]).startswith(keys.REDERIVED_PREFIX):
                    rederived += marked_requests(item)
                    # further jobs named (review s31 union, info): a run began, as with a job
                    jobs = jobs or item["sk"] == keys.split_marker_sk(request_id)
                elif str(item["sk"]).startswith(keys.job_sk("")):
                    jobs = True
                    proof_items.append(item)
                    if (
                        item.get("status") == "pending"
                        and max(str(item.get("updated_at", "")), str(item.get("retry_at", "")))
                        < settled_before
                        and not self._is_retired(item)
                    ):
                        stuck.append(str(item["system"]))
            if "LastEvaluatedKey" not in page:
                # "Denied, no jobs" beside jobs: the record of a run that stopped at the
                # denial landed before the record of a run of the same event that made them,
                # and that run's flush failed for good (review s22 diff D4). Unresolved: its
                # redrive runs the event again, which carries on (it has jobs) and replaces
                # that record (`put_resolution`), with its jobs and linked-only systems.
                resolved = resolved and not (denied and jobs)
                # A request denied after its resolution is not re-opened: a job of its own
                # would send its opt-out after the denial (race24)
                reopen = resolved and not denial and self._reopen(proof_items)
                return resolved, stuck, request and not folded, rederived, reopen
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def _is_retired(self, job: Item) -> bool:
        return made_at_or_before(job, self._retired.get(str(job.get("system"))))

    def _reopen(self, items: list[Item]) -> bool:
        """Whether a system of the request is left with only cited jobs that proved nothing
        for it (one BatchGetItem of the cited jobs, only for a request that cites any)."""
        from optout.status import covering_keys, needs_reopen  # noqa: PLC0415 - pydantic

        cited = covering_keys(items)
        if all(key[0] == keys.RETIRED_PK for key in cited):  # no cited job: nothing to re-open
            return False
        return needs_reopen(items, batch_get(self._table, cited))

    def _redrive(self, refs: list[tuple[str, str]], now: datetime) -> str:
        return redrive(self._table, refs, now, self._retention)


def split_requests(resolution: Item) -> list[str]:
    """The request ids of a RESOLUTION's further own jobs (`split_jobs`, `<request>~<hex>`)."""
    found = {str(job).rsplit(":", 1)[0] for jobs in (resolution.get("split_jobs") or {}).values()
             for job in jobs}  # fmt: skip
    return sorted(found)


def _error_fields(error: Exception) -> dict[str, str]:
    """A failed read's class, and DynamoDB's code when it answered (never a value)."""
    fields = {"error": type(error).__name__}
    if isinstance(error, ClientError):
        fields["error_code"] = str(error.response.get("Error", {}).get("Code"))
    return fields


def _mark_key(age: timedelta) -> str:
    return str(int(age.total_seconds()))


def _marks_of(item: Item) -> tuple[dict[str, str], str | None]:
    """A mark item's marks (checkpoint age in seconds -> arrival time) and the run that wrote it."""
    read_to = item.get("read_to") or {}
    return {str(k): str(v) for k, v in read_to.items()}, str(item.get("run") or "") or None


def _recheck_item(event: Item, age: timedelta) -> Item:
    """A request whose check failed, carried: what the run reads from its event (no value)."""
    request_id = str(event["request_id"])
    item: Item = {"pk": CARRY_PK, "sk": RECHECK_PREFIX + request_id, "request_id": request_id,
                  "received_at": str(event.get("received_at", "")),
                  "checkpoint_seconds": int(age.total_seconds())}  # fmt: skip
    if event.get("deadline"):
        item["deadline"] = event["deadline"]
    return item


def _window_item(start: datetime, end: datetime, age: timedelta) -> Item:
    """A window not listed to its end, carried whole (its checks are reads: one made twice
    costs a Query; an unresolved request re-driven twice is resolved once more, harmlessly)."""
    low, high = iso(start), iso(end)
    return {"pk": CARRY_PK, "sk": f"{WINDOW_PREFIX}{low}#{high}", "start": low, "end": high,
            "checkpoint_seconds": int(age.total_seconds())}  # fmt: skip


def first_shard(now: datetime) -> int:
    """The shard a run at `now` reads each window from: the next one along every schedule
    period (stateless: the run's own time says where to start)."""
    return int(now.timestamp() // RUN_PERIOD_SECONDS) * SHARD_STEP % len(keys.DAY_SHARDS)


def redrive(
    table: Table,
    refs: list[tuple[str, str]],
    now: datetime,
    retention_days: int,
    request_id: str | None = None,
) -> str:
    """One `redrive` event for ("request", request id), ("job", "<request_id>:<system>"),
    ("reopen", request id) and ("resend", "<request_id>:<system>": the watch's old pending jobs,
    sent only past a backlog) references, which the resolver carries out from the stream; returns
    its request id (a new one unless given: an event of that id already there is kept)."""
    request_id = request_id or str(uuid.uuid4())
    operation = {
        "requests": " ".join(ref for kind, ref in refs if kind == "request"),
        "jobs": " ".join(ref for kind, ref in refs if kind == "job"),
    }
    reopen = " ".join(ref for kind, ref in refs if kind == "reopen")
    if reopen:  # absent otherwise: redrive events as they were
        operation["reopen"] = reopen
    resend = " ".join(ref for kind, ref in refs if kind == "resend")
    if resend:  # likewise
        operation["resend"] = resend
    event = CapturedEvent.by_operator(request_id, "redrive", operation, {}, now)
    put_event(table, event.to_item(retention_days))
    return request_id


def redrive_refs(operation: dict[str, Any]) -> tuple[list[str], list[tuple[str, str]]]:
    """A redrive event's request ids and (request id, system) job references."""
    requests = str(operation.get("requests", "")).split()
    jobs = [tuple(ref.rsplit(":", 1)) for ref in str(operation.get("jobs", "")).split()]
    return requests, [(r, s) for r, s in jobs if r and s]


def resend_refs(operation: dict[str, Any]) -> list[tuple[str, str]]:
    """A redrive event's old pending jobs to send again if their queue has no backlog."""
    jobs = [tuple(ref.rsplit(":", 1)) for ref in str(operation.get("resend", "")).split()]
    return [(r, s) for r, s in jobs if r and s]


def reopen_refs(operation: dict[str, Any]) -> list[str]:
    """A redrive event's requests to re-open (a cited job proved nothing for them)."""
    return str(operation.get("reopen", "")).split()


def _chunks(refs: list[tuple[str, str]], size: int) -> Iterator[list[tuple[str, str]]]:
    for start in range(0, len(refs), size):
        yield refs[start : start + size]
