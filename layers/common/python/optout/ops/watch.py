"""The deadline watch: which requests are past or near their deadline and not complete.

It never scans and never re-reads history (docs/decisions.md, "The deadline watch"):

1. **Enrol** new arrivals from the ByDay index, from a cursor (`WATCH/CURSOR`: per arrival
   day, how far each of its 16 shards has been read), a few minutes behind real time so the
   eventually consistent index has caught up. Each request is read once here: its
   contribution is folded into the §7102 ledger, the identities it names get a reference
   (`XREF#`, for exports; sorted after every item the resolver reads) and, unless it is
   already settled, a reminder is set.
2. **Check** the reminders that are due (`WATCH/DUE#<time>#<request_id>`, in time order): read
   the request again, fold what changed, and either drop the reminder (settled) or set the
   next one: sooner while the request is young (5 minutes, then x3 up to a day), hourly once
   its deadline is near (`NEAR_CHECK_GAP`, review s19 diff B5) and once it is past
   (`OVERDUE_CHECK_GAP`, review s19 SC3: an overdue backlog re-read at every run outgrew what
   a run can check). What changes a near or overdue request sooner leaves a
   reminder due now: a replay (the resolver), a denial; a job the worker ends is seen within
   the hour. So each run reads only what is due: requests in flight, and an hour's share of
   those near or past their deadline.
3. **Report**: the requests overdue (deadline passed) or due soon (within `near_days`), per
   state and per system, as metrics (alarms) and as `WATCH/STATUS`: those checked this run as
   it found them, every other one reminded as its last check found it (a snapshot kept on its
   reminder, `last_check`, judged against today's date), so the figures do not depend on what
   one run reached. A run that could not read all reminders, or left due ones never checked,
   says its figures are partial (`figures_partial`, `not_yet_checked`).
   An import the other tool answered (`evidence.imported.completed_at`) is judged by that
   answer, as its export's `late` and the §7102 days to respond are: answered on time, it is
   neither overdue nor due soon, only still owed here (`imported_owed`) until every system
   here confirms it, and reminded meanwhile; answered late, it is overdue. Any import is
   owed, not overdue, while its systems here first carry it out (`in_first_run`: its first
   check comes before they answer, and its next an hour later): for 25 hours after its
   import at most, judged at the count, and not once a system here has failed it.

A request checked after the sweep's last look at it (`REOPEN_AFTER`) that is left, for some
system, with only cited jobs that ended as no proof for it (`status.needs_reopen`: one ended
after the sweep's 23 h checkpoint, a long Retry-After or a status check over days) is named in
a `redrive` event's `reopen`, as the sweep names a younger one: the resolver gives it a job of
its own. The check already read what this needs; the run writes one event per 100 found.

A request with no `RESOLUTION` 25 hours after its event was written (`REDRIVE_UNRESOLVED_AFTER`:
the stream's 24 h record age, past which its own record can no longer arrive, plus an hour),
and past the sweep's last look at it, is named in the same `redrive` events as a ("request", id)
reference, as the sweep names an unresolved event (review s19 SC1): an import's `received_at` is
historical, so the sweep, which lists arrivals by it, never sees one whose stream record was lost
(past 24 h, or its batch's retries spent). At most once per request every
`REDRIVE_UNRESOLVED_EVERY` (`redriven_at` on its reminder and its `FOLDED` item: the latest
counts, so a replay's or a denial's reminder does not bring the redrive sooner), so a resolver
outage is not a redrive per check.

A pending job of the request's own, or a further job or part of it (`split_jobs`), untouched
for a day (past its last write and its `retry_at`: `RESEND_PENDING_AFTER`), checked after the
sweep's last look, is named in the same `redrive` events as a ("resend", "<job's request
id>:<system>") reference: its message may be gone
(expired in a long backlog, a send that failed after the job was written, a purge), and
nothing else sends it again before the deadline alarms. At most once per request every
`RESEND_PENDING_EVERY` (`resent_at`, kept as `redriven_at` is). The resolver sends it only while
that system's queue shows no message visible (`JobQueue.waiting`): a queue with a backlog may
still hold it, and a slow vendor's backlog is not doubled (docs/decisions.md, "Old pending
jobs are sent again only past a backlog").
Jobs under a request id of their own (the flush's re-derived jobs and their parts, a backfill
step's: no EVENT) have a reminder of their own (`kind` `jobs`, `remind_jobs`), written with
their `REDERIVED#` marker: checked daily from 25 h on, a stuck one is named the same way, and
the reminder is dropped once none is pending; it adds nothing to the figures.

A check also drops the identifier values of the request's jobs a retired system left open
(`retire.drop_retired_values`, review s18 S3): nothing else reaches such a job.

Each run also checks two operator changes that would otherwise go unnoticed (when the function
gives it what they need: the HMAC key's loader and the configured system names): that the
HMAC key is the one the table was first used with (ops/key_check.py), and which systems were
added since without a backfill (ops/systems_seen.py). Both go into the report.

A request is complete when it is completed or denied. Deadlines are dates; a request is
overdue from the day after its deadline, in UTC or, if later, in the calendar the deadline was
counted in (Guam and the Northern Marianas, UTC+10).
"""

import bisect
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypeVar

from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict, Field

from optout.deadlines import latest_date
from optout.events import is_request
from optout.observability import logger
from optout.ops import keys as ops_keys
from optout.ops.contribution import Contribution, a_repeat, contribution_of
from optout.ops.key_check import Outcome, check_hash_key
from optout.ops.later import record_later
from optout.ops.ledger import fold_ops
from optout.ops.reminders import JOBS_KIND, remind_now
from optout.ops.systems_seen import not_backfilled
from optout.retire import drop_retired_values
from optout.status import covering_keys, made_before, needs_reopen, quiet_keys
from optout.store import keys, query, transact
from optout.store.batch import batch_get, batch_put, get_item
from optout.store.codec import Item, serialize
from optout.store.requests import load_request
from optout.store.table import Table
from optout.sweep import REDRIVE_BATCH, SweepSettings, redrive
from optout.timestamps import iso

TimeLeft = Callable[[], float]  # seconds this run may still spend
FIRST_CHECK = timedelta(minutes=5)
MAX_CHECK_GAP = timedelta(days=1)
GROWTH_STEPS = 6  # 5 min * 3**6 is past a day
STOP_WITH_SECONDS_LEFT = 20.0
CURSOR_SAVE_EVERY = 50
KEEP_OVERDUE_IDS = 100  # the status item lists this many overdue request ids
_T = TypeVar("_T")
# The sweep re-opens a request at its checkpoints, the last read from 23 h to 23 h 12 after
# arrival; the watch re-opens only older ones, so the two never re-open the same request at
# once, and one whose cited job ended after that last look is not left processing for good.
REOPEN_AFTER = max(SweepSettings().checkpoints) + SweepSettings().window
# Past its deadline, a request is checked hourly, not at every run (review s19 SC3): a day's
# 24 checks, not 288, so a backlog of failures waiting for a replay or of unanswered imports
# 12 times larger than one run can check is still checked every hour. The figures do not wait
# for it (`_count`). An hour is also the most an overdue request's figure lags a job the
# worker ended (a replay or a denial leaves a reminder due now).
OVERDUE_CHECK_GAP = timedelta(hours=1)
# The resolver's stream mapping drops a record this old (template.yaml, ResolverFunction's
# `MaximumRecordAgeInSeconds`; also the stream's 24 h retention; tests/integration/
# test_watch_backlog.py holds the two equal). Until then a record may still arrive.
STREAM_RECORD_MAX_AGE = timedelta(seconds=86_400)
# The resolver's last try at a record 24 h old may still run: its timeout is 60 s. An hour
# covers it and the clocks' skew.
STREAM_RECORD_MARGIN = timedelta(hours=1)
# An event still unresolved this long after it was written is re-driven (review s19 SC1): only
# once its own stream record can no longer arrive (review s19 diff B3). Sooner, a record still
# queued behind a large import (the resolver reads about 15 events/s a shard, a 1M-row import
# some 18 h) would be resolved twice, the second time in full: every system's job message sent
# again. Then again at most every 6 hours while it stays unresolved: a resolver outage costs 4
# redrives a request a day, not one per check.
REDRIVE_UNRESOLVED_AFTER = STREAM_RECORD_MAX_AGE + STREAM_RECORD_MARGIN
REDRIVE_UNRESOLVED_EVERY = timedelta(hours=6)
# An import is past its deadline from the start (its `received_at` is historical), and past
# its deadline a request is checked hourly: its first check, before the resolver or its
# systems here had answered, read it overdue, and it stayed so on that snapshot for up to an
# hour after every system here had confirmed it, so OverdueRequestsAlarm fired for a done
# bulk import (review s26 counsel F8). While its systems here first carry it out (no system
# failed, and read within this long of its import: an import not resolved by then is
# re-driven as lost) it is counted owed here (`imported_owed`), not overdue (`in_first_run`).
IMPORT_FIRST_RUN = REDRIVE_UNRESOLVED_AFTER
# Within `near_days` of its deadline, a request is checked hourly too, or sooner while its
# growing interval is shorter (review s19 diff B5: at every run, a vendor out for weeks sent its
# 1-2k failures a day through 3 days of re-reads every 5 minutes, a run's whole capacity). A
# deadline is a date: the figures judge each request's last snapshot against today's date at
# every run, so "due soon" and "overdue" move at midnight whatever the beat; a completion
# leaves the due-soon figure within the hour (a replay or a denial: at the next run).
NEAR_CHECK_GAP = timedelta(hours=1)
# A pending job untouched this long (past its last write and its `retry_at`) is sent again by the
# watch, at most once a request per `RESEND_PENDING_EVERY`: past the sweep's last look (23 h),
# the first watch check a day past the job's last write is some 30 h after arrival (its
# growing gaps), so it never doubles the sweep's 23 h re-send.
RESEND_PENDING_AFTER = timedelta(days=1)
RESEND_PENDING_EVERY = timedelta(days=1)
COUNT_STOP_SECONDS = 10.0  # the count stops with this left (figures partial): the writes follow


class WatchSettings(BaseModel):
    model_config = ConfigDict(frozen=True)

    near_days: int = Field(default=3, ge=0, le=30)  # "due soon": deadline within this many days
    lag_seconds: int = Field(default=120, ge=0)  # the index's catch-up time
    backfill_days: int = Field(default=31, ge=0, le=800)  # where a first run starts
    retention_days: int = Field(default=1095, ge=731)

    @classmethod
    def from_env(cls, env: dict[str, str]) -> "WatchSettings":
        names = {
            "near_days": "WATCH_NEAR_DAYS",
            "lag_seconds": "WATCH_LAG_SECONDS",
            "backfill_days": "WATCH_BACKFILL_DAYS",
            "retention_days": "RECORD_RETENTION_DAYS",
        }
        return cls.model_validate({k: env[v] for k, v in names.items() if env.get(v)})


@dataclass
class Figures:
    """Requests counted as overdue, due soon or owed, as running totals (review s19 diff B4:
    the count reads every reminder; a kept object each exhausted the function's memory at some
    350k). Only the first `KEEP_OVERDUE_IDS` request ids, in order, are kept."""

    count: int = 0
    by_state: dict[str, int] = field(default_factory=dict)
    by_system: dict[str, int] = field(default_factory=dict)  # not confirmed by that system
    by_year: dict[str, Item] = field(default_factory=dict)  # {year: {overdue, by_system}}
    request_ids: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return self.count

    def append(self, found: Contribution) -> None:
        self.count += 1
        _add(self.by_state, found.status)
        year = self.by_year.setdefault(found.day[:4], {"overdue": 0, "by_system": {}})
        year["overdue"] += 1
        for system, state in found.systems.items():
            if state not in ("done", "retired"):  # a retired system owes them nothing
                _add(self.by_system, system)
                _add(year["by_system"], system)
        bisect.insort(self.request_ids, found.request_id)
        del self.request_ids[KEEP_OVERDUE_IDS:]


@dataclass
class WatchReport:
    """What one run found among the requests it checked."""

    run_at: str
    enrolled: int = 0
    checked: int = 0
    overdue: Figures = field(default_factory=Figures)
    due_soon: Figures = field(default_factory=Figures)
    # imports the other tool answered on time that some system here has not confirmed yet
    imported_owed: Figures = field(default_factory=Figures)
    finished: bool = True  # False: the run stopped for time; the next one goes on
    seen: set[str] = field(default_factory=set)  # request ids checked by this run
    reminded: dict[str, str] = field(default_factory=dict)  # request id -> the reminder it set
    reopened: list[str] = field(default_factory=list)  # requests whose cited job proved nothing
    unresolved: list[str] = field(default_factory=list)  # requests re-driven: no RESOLUTION yet
    # pending jobs ("<request_id>:<system>") untouched a day, past the sweep: sent again
    resent: list[str] = field(default_factory=list)
    redrive_events: list[str] = field(default_factory=list)  # the events naming them
    hash_key: Outcome | None = None  # None: not checked (no key loader given)
    # configured systems added since the first run that no backfill has reached yet
    systems_not_backfilled: list[str] = field(default_factory=list)
    # the config checks that raised this run ("key_check", "systems_check"; `_check_config`)
    checks_failed: list[str] = field(default_factory=list)
    # Reminders due that no run has checked yet (their requests are in no figure), and whether
    # the figures miss some requests (that, or the reminders not all read for time)
    not_yet_checked: int = 0
    figures_partial: bool = False

    @property
    def hash_key_changed(self) -> bool:
        return self.hash_key == "changed"

    def by_state(self, found: Figures) -> dict[str, int]:
        return dict(found.by_state)

    def overdue_by_system(self, found: Figures | None = None) -> dict[str, int]:
        """Per system, the requests of `found` (default: the overdue ones) it has not
        confirmed (a retired system owes them nothing)."""
        return dict(sorted((self.overdue if found is None else found).by_system.items()))

    def overdue_by_year(self) -> dict[str, Item]:
        """The overdue requests by the §7102 year they belong to (their ledger day's): a
        year's report shows its own, not every year's as if they were its."""
        return {
            year: {
                "overdue": found["overdue"],
                "by_system": dict(sorted(found["by_system"].items())),
            }
            for year, found in sorted(self.overdue.by_year.items())
        }

    def to_item(self) -> Item:
        return {
            "pk": ops_keys.WATCH_PK, "sk": ops_keys.STATUS_SK, "kind": "watch_status",
            "run_at": self.run_at, "finished": self.finished, "checked": self.checked,
            "enrolled": self.enrolled, "overdue": len(self.overdue),
            "due_soon": len(self.due_soon), "overdue_by_state": self.by_state(self.overdue),
            "due_soon_by_state": self.by_state(self.due_soon),
            "overdue_by_system": self.overdue_by_system(),
            "overdue_by_year": self.overdue_by_year(),
            "overdue_requests": list(self.overdue.request_ids),
            "imported_owed": len(self.imported_owed),
            "imported_owed_by_system": self.overdue_by_system(self.imported_owed),
            "hash_key_changed": self.hash_key_changed,
            "systems_not_backfilled": self.systems_not_backfilled,
            "checks_failed": self.checks_failed,
            "figures_partial": self.figures_partial, "not_yet_checked": self.not_yet_checked,
        }  # fmt: skip


class Watch:
    def __init__(
        self,
        table: Table,
        settings: WatchSettings,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        hash_key: Callable[[], bytes] | None = None,
        systems: Sequence[str] | None = None,
    ) -> None:
        self._table = table
        self._settings = settings
        self._clock = clock
        self._hash_key = hash_key  # read each run (the secret's cache): a change is seen
        self._systems = list(systems) if systems is not None else None

    def run(self, time_left: TimeLeft = lambda: float("inf")) -> WatchReport:
        now = self._clock()
        report = WatchReport(run_at=iso(now))
        report.finished = self._enrol(now, report, time_left)
        report.finished &= self._check_due(now, report, time_left)
        # The redrives first: the checks already marked them (`redriven_at`), so a count that
        # fails (or runs out of memory) must not lose them for 6 h (review s19 diff B4).
        self._redrive_reopened(now, report)
        self._count(now, report, time_left)
        self._check_config(report)
        batch_put(self._table, [report.to_item()])
        return report

    def _check_config(self, report: WatchReport) -> None:
        """The operator changes no request shows: a changed HMAC key, a system added
        without a backfill. Neither may stop the run: a failing secret read or SYSTEMS write
        would otherwise leave WATCH/STATUS stale and the overdue metrics unpublished, so
        OverdueRequestsAlarm (notBreaching) would go quiet (review s18 diff B3). A check that
        raises is named in `checks_failed` (metric `WatchChecksFailed`, its own alarm) and
        logged at ERROR with the error's type and code only (no key material)."""
        if self._hash_key is not None:
            loader = self._hash_key
            report.hash_key = self._guarded(
                report, "key_check",
                lambda: check_hash_key(self._table, loader(), report.run_at),
            )  # fmt: skip
        if self._systems is not None:
            systems = self._systems
            report.systems_not_backfilled = self._guarded(
                report, "systems_check",
                lambda: not_backfilled(self._table, systems, report.run_at),
            ) or []  # fmt: skip

    @staticmethod
    def _guarded(report: WatchReport, check: str, run: Callable[[], _T]) -> _T | None:
        try:
            return run()
        except Exception as error:  # noqa: BLE001 - any failure: counted, and the run goes on
            report.checks_failed.append(check)
            code = error.response["Error"].get("Code") if isinstance(error, ClientError) else None
            logger.error(
                "a watch config check failed; the deadline work went on",
                extra={"check": check, "error": type(error).__name__, "code": code},
            )
            return None

    def _redrive_reopened(self, now: datetime, report: WatchReport) -> None:
        """The sweep's `redrive` events for the requests to resolve again and to re-open (the
        resolver carries them out; both are safe to repeat). One lost with a failed run is
        found again at the request's next check: it stays unsettled, so its reminder stays (a
        lost one's `redriven_at` defers it by `REDRIVE_UNRESOLVED_EVERY` at most)."""
        refs = [("request", request_id) for request_id in report.unresolved]
        refs += [("reopen", request_id) for request_id in report.reopened]
        refs += [("resend", job) for job in report.resent]
        retention = self._settings.retention_days
        for start in range(0, len(refs), REDRIVE_BATCH):
            batch = refs[start : start + REDRIVE_BATCH]
            report.redrive_events.append(redrive(self._table, batch, now, retention))

    # -- 1. enrol arrivals ---------------------------------------------------------------

    def _enrol(self, now: datetime, report: WatchReport, time_left: TimeLeft) -> bool:
        until = iso(now - timedelta(seconds=self._settings.lag_seconds))
        cursor = self._cursor(now)
        while cursor["day"] <= until[:10]:
            day = str(cursor["day"])
            positions: dict[str, Item] = cursor.setdefault("positions", {})
            for shard in keys.DAY_SHARDS:
                arrivals = self._arrivals(day, shard, positions.get(shard), until)
                for n, indexed in enumerate(arrivals):
                    if time_left() < STOP_WITH_SECONDS_LEFT:
                        self._save_cursor(cursor)
                        return False
                    self._enrol_one(indexed, now, report)
                    positions[shard] = {"received_at": indexed["received_at"],
                                        "request_id": indexed["request_id"]}  # fmt: skip
                    if n % CURSOR_SAVE_EVERY == CURSOR_SAVE_EVERY - 1:
                        self._save_cursor(cursor)
            if day == until[:10]:
                break  # today: the positions say how far; go on from there next run
            cursor = {"day": (date.fromisoformat(day) + timedelta(days=1)).isoformat(),
                      "through": cursor.get("through")}  # fmt: skip
            self._save_cursor(cursor)
        cursor["through"] = until  # every arrival up to here is enrolled (exports rely on it)
        self._save_cursor(cursor)
        return True

    def _cursor(self, now: datetime) -> Item:
        found = _read_cursor(self._table)
        if found:
            return {"day": found["day"], "positions": dict(found.get("positions") or {}),
                    "through": found.get("through")}  # fmt: skip
        start = now - timedelta(days=self._settings.backfill_days)
        return {"day": start.date().isoformat(), "positions": {}}

    def _save_cursor(self, cursor: Item) -> None:
        item = {"pk": ops_keys.WATCH_PK, "sk": ops_keys.CURSOR_SK, "kind": "watch_cursor",
                "day": cursor["day"], "positions": cursor.get("positions") or {}}  # fmt: skip
        if cursor.get("through"):
            item["through"] = cursor["through"]
        self._table.client.put_item(TableName=self._table.name, Item=serialize(item))

    def _arrivals(self, day: str, shard: str, after: Item | None, until: str) -> Iterator[Item]:
        """One shard of one day, oldest first, after the last one enrolled, up to `until`."""
        day_pk = keys.day_pk(day, shard)
        kwargs: dict[str, Any] = {
            "TableName": self._table.name,
            "IndexName": keys.DAY_INDEX,
            "KeyConditionExpression": "day_pk = :pk AND received_at <= :until",
            "ExpressionAttributeValues": {":pk": {"S": day_pk}, ":until": {"S": until}},
        }
        if after is not None:
            kwargs["ExclusiveStartKey"] = {
                "day_pk": {"S": day_pk},
                "received_at": {"S": str(after["received_at"])},
                "pk": {"S": keys.request_pk(str(after["request_id"]))},
                "sk": {"S": keys.EVENT_SK},
            }
        yield from query.items(self._table, **kwargs)

    def _enrol_one(self, indexed: Item, now: datetime, report: WatchReport) -> None:
        if indexed.get("event_type") not in ("opt_out", "consent", "links"):
            return  # operator events (replay, hold release) name no one and ask nothing
        report.enrolled += 1
        self.check(str(indexed["request_id"]), now, report)

    # -- 2. due reminders ------------------------------------------------------------------

    def _check_due(self, now: datetime, report: WatchReport, time_left: TimeLeft) -> bool:
        high = ops_keys.due_sk(iso(now), "~")
        kwargs: dict[str, Any] = {
            "TableName": self._table.name,
            "KeyConditionExpression": "pk = :pk AND sk BETWEEN :low AND :high",
            "ExpressionAttributeValues": {":pk": {"S": ops_keys.WATCH_PK},
                                          ":low": {"S": ops_keys.DUE_PREFIX},
                                          ":high": {"S": high}},
            "ConsistentRead": True,
        }  # fmt: skip
        for reminder in query.items(self._table, **kwargs):
            if time_left() < STOP_WITH_SECONDS_LEFT:
                return False
            request_id = str(reminder["request_id"])
            if reminder.get("kind") == JOBS_KIND and request_id not in report.seen:
                self._check_jobs(reminder, now, report)  # jobs of their own: no request
            elif request_id not in report.seen:  # re-set for "now" this run
                self.check(request_id, now, report, reminder)
            elif report.reminded.get(request_id, reminder["sk"]) != reminder["sk"]:
                # A second reminder (an import's, a replay's, beside the watch's own): the check
                # set the request's one next reminder; this one would bring it back sooner,
                # without what that one carries (`redriven_at`).
                self._write(self._drop(reminder))
        return True

    # -- one request -----------------------------------------------------------------------

    def check(
        self, request_id: str, now: datetime, report: WatchReport, reminder: Item | None = None
    ) -> Contribution | None:
        """Read a request, fold what changed, keep or drop its reminder, count it if late."""
        # Strongly consistent: a reminder a replay wrote can be read before the replay's
        # reset shows, and a stale read (the job still failed) would drop it as settled, so
        # the replayed job's end never reached the §7102 figures (review s22 race R6).
        items = load_request(self._table, request_id, consistent=True)
        # The quiet period's jobs too, in the same BatchGetItem: what they did not take makes
        # the §7102 outcome `complied_part`, as the page and the export read it (review s26
        # diff B F2; a request the quiet period relied on for nothing reads no more). Not for
        # a repeat: counted on the repeat row alone, its whole or part is read by no figure,
        # and a banner page view's repeat would pay a BatchGetItem per check (review s28 R1).
        quiet = [] if a_repeat(items) else quiet_keys(items)
        cited = covering_keys(items) + quiet
        covering = batch_get(self._table, cited, consistent=True) if cited else {}
        by_sk = {item["sk"]: item for item in items}
        event = by_sk.get(keys.EVENT_SK)
        report.checked += 1
        report.seen.add(request_id)
        if event is None:  # expired, or a stray reminder
            self._write(self._drop(reminder))
            return None
        drop_retired_values(self._table, items, covering, iso(now))  # (optout/retire.py)
        # A failed job whose every flight later jobs delivered: recorded once, read from now on
        # by every view (ops/later.py; docs/decisions.md, "A failed job delivered by later
        # requests")
        items = items + record_later(self._table, items, covering, iso(now))
        folded = by_sk.get(ops_keys.FOLDED_SK)
        if folded is None:  # first sight: the identities it names (idempotent puts)
            batch_put(self._table, self._references(event))
        contribution = contribution_of(items, covering)
        ops: list[dict[str, Any]] = []
        if contribution is None:
            self._write(self._drop(reminder))
            return None
        expires = int(event.get("expires_at") or self._expires(now))
        # The last redrive, kept on FOLDED as well as on the watch's own reminder: a replay's
        # or a denial's reminder, due sooner, carries none (review s19 diff B7).
        redriven = _latest((reminder or {}).get("redriven_at"), (folded or {}).get("redriven_at"))
        lost = not contribution.settled and self._lost(event, by_sk, redriven, now)
        if lost:
            redriven = iso(now)
        resent = _latest((reminder or {}).get("resent_at"), (folded or {}).get("resent_at"))
        stuck = self._stuck_jobs(request_id, items, covering, resent, now)
        stuck = [] if contribution.settled else stuck
        if stuck:
            resent = iso(now)
        keep = {k: v for k, v in (("redriven_at", redriven), ("resent_at", resent)) if v}
        ops += fold_ops(self._table, contribution, folded, iso(now), expires, keep or None)
        if contribution.settled:
            ops += self._drop(reminder)
        else:
            if lost:
                report.unresolved.append(request_id)  # re-driven at the end of the run
                logger.warning("request unresolved: re-driven", extra={"request_id": request_id})
            ops += self._remind(contribution, reminder, now, expires, keep, report)
            self._count_if_late(contribution, now, report)
            if self._past_the_sweep(event, now) and needs_reopen(items, covering):
                report.reopened.append(request_id)  # re-opened at the end of the run
        if not self._write(ops):
            report.reminded.pop(request_id, None)
        elif stuck:  # re-sent at the end of the run; not marked, not sent (a lost race)
            report.resent += stuck
        return contribution

    def _stuck_jobs(
        self,
        request_id: str,
        items: list[Item],
        covering: dict[tuple[str, str], Item],
        resent: Any,
        now: datetime,
    ) -> list[str]:
        """The refs (`<request>:<system>`, `<request>~<hex>:<system>`) of the request's pending
        jobs untouched for `RESEND_PENDING_AFTER` (past their `retry_at` too: so past the
        sweep's last look at a job made at arrival), not re-sent within `RESEND_PENDING_EVERY`,
        and not of a system retired since the job was made (its `RETIRED` item). Its own jobs
        and its further jobs and parts (the RESOLUTION's `split_jobs`, with the retirements
        already read with the cited jobs: `status.covering_keys`): no read of its own. Jobs of
        another request re-derived from it (`REDERIVED#`) have a reminder of their own
        (`_check_jobs`)."""
        if resent and str(resent) > iso(now - RESEND_PENDING_EVERY):
            return []
        jobs = [
            (f"{request_id}:{item['system']}", item)
            for item in items
            if str(item["sk"]).startswith(keys.job_sk(""))
        ]
        resolution = next((i for i in items if i["sk"] == keys.RESOLUTION_SK), {})
        for system, job_ids in sorted((resolution.get("split_jobs") or {}).items()):
            for job_id in job_ids:  # `<request>~<hex>:<system>`: the item is in its own partition
                key = keys.job_item_key(system, str(job_id))
                if (job := covering.get(key)) is not None:
                    jobs.append((str(job_id), job))
        untouched_since = iso(now - RESEND_PENDING_AFTER)
        stuck = [ref for ref, item in jobs
                 if _open(item, covering.get(keys.retired_key(str(item["system"]))))
                 and _untouched(item, untouched_since)]  # fmt: skip
        return sorted(set(stuck))

    def _check_jobs(self, reminder: Item, now: datetime, report: WatchReport) -> None:
        """Jobs made under request ids of their own (`remind_jobs`: the flush's re-derived jobs
        and their parts, a backfill step's): one Query of each id's jobs. A job pending and
        untouched for `RESEND_PENDING_AFTER` is re-sent as a request's own (`resend`, at most
        once a check: a day apart); once every job is final (or left open by its system's
        retirement) the reminder is dropped. No EVENT, no deadline: nothing is folded into the
        §7102 ledger or counted as overdue (`_count` skips these reminders)."""
        marker = str(reminder["request_id"])
        report.seen.add(marker)
        jobs = [(str(job_request), job)
                for job_request in sorted(reminder.get("request_ids") or ())
                for job in query.items(
                    self._table, KeyConditionExpression="pk = :pk AND begins_with(sk, :job)",
                    ExpressionAttributeValues={":pk": {"S": keys.request_pk(str(job_request))},
                                               ":job": {"S": keys.job_sk("")}},
                    ConsistentRead=True)]  # fmt: skip
        # Not redundant with `_open`'s own status test: it bounds the retirements read to the
        # systems of pending jobs, and reads none once every job is final (the last check).
        pending = [(f"{job_request}:{job['system']}", job) for job_request, job in jobs
                   if job.get("status") == "pending"]  # fmt: skip
        # Their systems' retirements (the role's BatchGetItem of RETIRED, as a request's)
        systems = sorted({str(job["system"]) for _, job in pending})
        retired = batch_get(self._table, [keys.retired_key(s) for s in systems]) if systems else {}
        open_jobs = [
            (ref, job)
            for ref, job in pending
            if _open(job, retired.get(keys.retired_key(str(job["system"]))))
        ]
        if not open_jobs:  # all final, retired, or none made (expired, or never written)
            self._write(self._drop(reminder))
            return
        untouched_since = iso(now - RESEND_PENDING_AFTER)
        stuck = [ref for ref, job in open_jobs if _untouched(job, untouched_since)]
        item = dict(reminder)
        item["sk"] = ops_keys.due_sk(iso(now + MAX_CHECK_GAP), marker)
        item["attempt"] = int(reminder.get("attempt", 0)) + 1
        if stuck:
            item["resent_at"] = iso(now)
        report.reminded[marker] = str(item["sk"])
        if self._write([transact.put(self._table, item), *self._drop(reminder)]) and stuck:
            report.resent += sorted(stuck)  # re-sent at the end of the run

    def _lost(self, event: Item, by_sk: dict[str, Item], redriven: Any, now: datetime) -> bool:
        """No RESOLUTION 25 h after the event was written (an import's `imported_at`, not
        its historical `received_at`), past the sweep's last look, and not re-driven lately."""
        if keys.RESOLUTION_SK in by_sk or not self._past_the_sweep(event, now):
            return False
        imported = (event.get("evidence") or {}).get("imported") or {}
        written = str(imported.get("imported_at") or event["received_at"])
        if written > iso(now - REDRIVE_UNRESOLVED_AFTER):
            return False
        return not redriven or str(redriven) <= iso(now - REDRIVE_UNRESOLVED_EVERY)

    @staticmethod
    def _past_the_sweep(event: Item, now: datetime) -> bool:
        """Older than the sweep's last look at it: a re-open is the watch's now."""
        return str(event["received_at"]) <= iso(now - REOPEN_AFTER)

    def _references(self, event: Item) -> list[Item]:
        """`XREF#` under each identity the event names (types and keyed hashes only): past
        the graph's range, so the resolver does not read it (optout/ops/keys.py)."""
        named = list(event.get("identifiers", []))
        for pair in event.get("links", []):
            named += [pair["a"], pair["b"]]
        for pair in event.get("asserts", []):
            named += [pair["from"], pair["to"]]
        pks = dict.fromkeys(keys.identity_pk(i["type"], i["key"]) for i in named)
        sk = ops_keys.ref_sk(str(event["received_at"]), str(event["request_id"]))
        return [
            {"pk": pk, "sk": sk, "kind": "reqref", "request_id": event["request_id"],
             "received_at": event["received_at"], "event_type": event.get("event_type"),
             "expires_at": event.get("expires_at")}
            for pk in pks
        ]  # fmt: skip

    def _remind(
        self,
        contribution: Contribution,
        reminder: Item | None,
        now: datetime,
        expires: int,
        keep: Item,
        report: WatchReport,
    ) -> list[dict[str, Any]]:
        attempt = int((reminder or {}).get("attempt", -1)) + 1
        # The power is capped: a request near its deadline is checked hourly for days, so its
        # attempts keep counting, and 3**25 of FIRST_CHECK overflows a timedelta.
        gap = min(MAX_CHECK_GAP, FIRST_CHECK * 3 ** min(attempt, GROWTH_STEPS))
        next_check = now + gap
        near = self._near_from(contribution.deadline)
        if self._past_deadline(contribution, now):  # overdue: hourly (review s19 SC3)
            next_check = now + OVERDUE_CHECK_GAP
        elif next_check > near:  # near the deadline: hourly, or sooner while young (B5)
            next_check = max(near, min(next_check, now + NEAR_CHECK_GAP))
        item = remind_now(contribution.request_id, contribution.deadline, next_check, expires)
        item["attempt"] = attempt
        item["last_check"] = _snapshot(contribution, now)
        item.update(keep)  # the last redrive and re-send (`redriven_at`, `resent_at`)
        report.reminded[contribution.request_id] = str(item["sk"])
        ops = [transact.put(self._table, item)]
        if reminder is not None and reminder["sk"] != item["sk"]:
            ops += self._drop(reminder)
        return ops

    def _near_from(self, deadline: str) -> datetime:
        """The moment a request joins "due soon": midnight UTC, near_days before its deadline."""
        start = date.fromisoformat(deadline) - timedelta(days=self._settings.near_days)
        return datetime(start.year, start.month, start.day, tzinfo=UTC)

    def _count_if_late(
        self, contribution: Contribution, now: datetime, report: WatchReport
    ) -> None:
        """`contribution`: as this check found it, or as its last snapshot did."""
        first_run = in_first_run(contribution, now)  # an import being carried out here
        if contribution.imported_late is not None:  # answered by the other tool, as exported
            late = contribution.imported_late and not first_run
            (report.overdue if late else report.imported_owed).append(contribution)
            return
        deadline = date.fromisoformat(contribution.deadline)
        if self._past_deadline(contribution, now):
            (report.imported_owed if first_run else report.overdue).append(contribution)
        elif (deadline - _today(contribution, now)).days <= self._settings.near_days:
            report.due_soon.append(contribution)

    @staticmethod
    def _past_deadline(contribution: Contribution, now: datetime) -> bool:
        return _today(contribution, now) > date.fromisoformat(contribution.deadline)

    # -- 3. the figures ----------------------------------------------------------------------

    def _count(self, now: datetime, report: WatchReport, time_left: TimeLeft) -> None:
        """Add to the figures every request reminded but not checked this run, as its last
        check found it (review s19 SC3): overdue ones come back hourly, and a run may stop
        before its due reminders, so what one run checked is not the figure. One Query of the
        reminders (projected, about 300 B each: a 1 MB page holds some 3,000)."""
        due = ops_keys.due_sk(iso(now), "~")
        never_checked: set[str] = set()  # reminders due that no check has left a snapshot on
        snapshot_seen: set[str] = set()
        counted: set[str] = set()  # requests already added from a snapshot (ids only)
        kwargs: dict[str, Any] = {
            "TableName": self._table.name,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :due)",
            "ExpressionAttributeValues": {":pk": {"S": ops_keys.WATCH_PK},
                                          ":due": {"S": ops_keys.DUE_PREFIX}},
            "ProjectionExpression": "sk, request_id, last_check, kind",
            "ConsistentRead": True,  # this run's own reminders included
        }  # fmt: skip
        for reminder in query.items(self._table, **kwargs):
            if time_left() < COUNT_STOP_SECONDS:
                report.figures_partial = True
                break
            request_id = str(reminder["request_id"])
            if request_id in report.seen or reminder.get("kind") == JOBS_KIND:
                continue  # counted as this run's check found it; jobs of their own: no request
            found = reminder.get("last_check")
            if found is None:  # left by an import, replay, denial or sweep (due now), unchecked
                if str(reminder["sk"]) <= due:
                    never_checked.add(request_id)
            else:
                # Added to the totals as read; per reminder only its request id is kept. A
                # request can have two reminders with a snapshot: a check replaces the reminder
                # it was handed, so a replay's, a denial's or the sweep's, checked beside the
                # watch's own, starts a second chain (review s19 diff C1). It is counted once,
                # as the first snapshot read found it (each chain is checked at least hourly).
                if str(reminder["sk"]) <= due or request_id in never_checked:
                    snapshot_seen.add(request_id)
                if request_id in counted:
                    continue
                counted.add(request_id)
                self._count_if_late(_from_snapshot(request_id, found), now, report)
        never_checked -= snapshot_seen
        report.not_yet_checked = len(never_checked)
        report.figures_partial |= bool(never_checked)

    def _drop(self, reminder: Item | None) -> list[dict[str, Any]]:
        if reminder is None:
            return []
        return [transact.delete(self._table, (ops_keys.WATCH_PK, str(reminder["sk"])))]

    def _write(self, ops: list[dict[str, Any]]) -> bool:
        """One transaction. A lost race (another run folded this request meanwhile) is left
        to the next check: the reminder stays, and the fold's version condition held."""
        try:
            transact.write(self._table, ops)
        except transact.Cancelled:
            return False
        return True

    def _expires(self, now: datetime) -> int:
        return int((now + timedelta(days=self._settings.retention_days)).timestamp())


__all__ = ["Watch", "WatchReport", "WatchSettings", "is_request", "remind_now"]


def _today(contribution: Contribution, now: datetime) -> date:
    """The later of the UTC date and the latest date in the deadline's calendar: the UTC date
    is ahead of every US date but Guam's and the Northern Marianas' (UTC+10), whose deadline
    day ends at 14:00 UTC (review s18 diff C6)."""
    return max(now.date(), latest_date(now, contribution.calendar))


def in_first_run(found: Contribution, now: datetime) -> bool:
    """An import its systems here are still carrying out for the first time: not answered here
    (received or processing) when last read, no system failed nor ever did (`failed_once`: a
    replay resets the job, review s28 R3), and `now` within `IMPORT_FIRST_RUN` of its import.
    The status is as read (a snapshot's stays until its next check, hourly, which drops the
    request once done: review s26 counsel F8, a done import was counted overdue for that hour);
    the 25 h end at the count, so a stuck import is overdue 25 h after its import whenever
    its snapshot was read, and however far behind the watch's checks are (review s28 R2)."""
    if found.imported_at is None or found.status not in ("received", "processing"):
        return False
    if found.failed_once or any(state == "failed" for state in found.systems.values()):
        return False  # a system refused it: overdue, and the operator's to replay
    return now < datetime.fromisoformat(found.imported_at) + IMPORT_FIRST_RUN


def _add(counts: dict[str, int], key: str) -> None:
    counts[key] = counts.get(key, 0) + 1


def _latest(*stamps: Any) -> str | None:
    """The latest of some ISO timestamps, None if there is none."""
    found = [str(stamp) for stamp in stamps if stamp]
    return max(found) if found else None


def _snapshot(contribution: Contribution, now: datetime) -> Item:
    """What the figures need of a request, kept on its reminder (`_count`; no identifier)."""
    found: Item = {"at": iso(now), "status": contribution.status, "deadline": contribution.deadline,
                   "day": contribution.day, "systems": dict(contribution.systems)}  # fmt: skip
    if contribution.calendar:
        found["calendar"] = contribution.calendar
    if contribution.imported_late is not None:
        found["imported_late"] = contribution.imported_late
    if contribution.imported_at:
        found["imported_at"] = contribution.imported_at
    if contribution.failed_once:
        found["failed_once"] = True
    return found


def _from_snapshot(request_id: str, found: Item) -> Contribution:
    """A request as its last check found it, for the figures only (no outcome, no hours)."""
    late = found.get("imported_late")
    return Contribution(
        request_id=request_id, received_at=str(found["day"]), deadline=str(found["deadline"]),
        source="", outcome="open", status=str(found["status"]), hours=None,
        systems={str(k): str(v) for k, v in (found.get("systems") or {}).items()},
        received_on=str(found["day"]), imported_late=None if late is None else bool(late),
        calendar=str(found["calendar"]) if found.get("calendar") else None,
        imported_at=str(found["imported_at"]) if found.get("imported_at") else None,
        failed_once=bool(found.get("failed_once")),
    )  # fmt: skip


def enrolled_through(table: Table) -> str | None:
    """Every request received up to this time is enrolled, and so referenced from the
    identities it names; None before the watch's first complete run."""
    through = (_read_cursor(table) or {}).get("through")
    return str(through) if through else None


def _read_cursor(table: Table) -> Item | None:
    return get_item(table, (ops_keys.WATCH_PK, ops_keys.CURSOR_SK))


def _open(job: Item, retirement: Item | None) -> bool:
    """A job still owed: pending, and not closed by its system's retirement since it was made
    (the watch's re-send, a request's jobs and jobs of their own alike)."""
    return job.get("status") == "pending" and not made_before(job, retirement)


def _untouched(job: Item, since: str) -> bool:
    """No write to the job (nor a retry due) since `since`: past the sweep's last look."""
    return max(str(job.get("updated_at", "")), str(job.get("retry_at", ""))) < since
