"""What one request adds to the §7102 figures of its arrival day: a pure function of its
stored records (event, resolution, jobs, the earlier jobs it cites, a denial).

Its arrival day is the date its deadline counts from (`deadlines.received_on`: the date in
its jurisdiction, read at the westernmost standard offset), not the UTC date, so a California
request on the evening of 31 December belongs to that year's figures and week.

§7102 asks, per calendar year, how many requests to opt out of sale/sharing were received,
complied with in whole or in part, and denied, and the median or mean days to respond. A
request counts when it asks to opt out of sale, sharing, targeted advertising or profiling
(`n.`/`h.` counters: the opt-out figures). A request to limit the use of sensitive personal
information (§7102(a)(1)(E)-(F)) is counted on its own counters (`l.`/`lh.`: the limit figures)
with the same outcome and days; a request that asks both is counted in both, once in each. The
per-system counts (`s.`) are those of opt-out requests only (a limit-only request is in none).
A retired system stays in them as `s.<system>.retired` (review s14 recheck 2): how many
requests a retirement closed there, though it no longer counts in the request's outcome.
An opt-in-only choice is not counted.

Each request is also counted once per right it asks on a **group** counter (`g.<group>.*`,
`gh.<group>.<hours>`), `<region>_<purpose>`: region `ca` (its jurisdiction is US-CA), `other`
(another known jurisdiction) or `unknown` (none stated and none geolocated: not counted as
California, since nothing says the person is one); purpose `sale` (asks to opt out of sale or
sharing; in California also of targeted advertising, which the CCPA calls sharing), `ads` (an
opt-out of targeted advertising or profiling only; in California, of profiling only) or
`limit`. So
`g.ca_sale.*` is §7102(a)(1)(D)'s figure: California consumers' requests to opt out of sale or
sharing, while `n.`/`h.` stay the figures of all individuals and all opt-out purposes. The
jurisdiction is the evidence's: stated by the caller, or geolocated by CloudFront
(`jurisdiction_from`), so it is where the request came from, not where the person lives. A
ledger folded before the groups existed has `n.` but no `g.` counts: ops/metrics.py reports
the difference as requests not split, never guesses their group. Its outcome:

- `complied_whole`: every system holds the opt-out (status completed), or the systems that do
  not are retired: removed from the config (`optout retire`, only once no longer deployed), so
  the business no longer sells or shares to them and nothing more is owed there;
- `complied_part`: a system failed for good but at least one holds it (status failed); or
  every system is done but one did not take an identifier type the request named: its vendor
  refused it inside an accepted call, or it was never sent, there being no form of it the
  vendor can match (`SystemProof.not_taken`: the receipt's `identifier_types_rejected`, no
  other job taking it; review s26 counsel F2, F3). That type alone makes the request fail;
  with another that the vendor took it is "in part", never "in whole". A system the quiet
  period did not ask after a job that sent nothing for an identity the request named is in
  part the same way (`SystemProof.in_part`: the status page, the operator record and the
  export read the same rule; review s26 diff B F2);
- `denied`: an operator denied it (§7026(e));
- `failed`: no system holds it and one failed for good;
- `open`: still being worked on (received / processing).

A **repeat** is counted on its own row (`n.<source>.repeat`) and nowhere else: not received,
not in an outcome, not in days to respond, weeks or per-system figures. It is a request that
needed no job of its own, because for every system it concerns an earlier request's job
already carries or confirmed what it asks for the identities it names (its resolution made no
job, `jobs_total` 0, and cites earlier jobs, `covered`), and was not denied. The banner posts
GPC on every logged-in page view: without this, one consumer's browsing added a "request
received and complied with" per page (review s11). A system the request did not ask because
its vendor answered "no such person" for these identities within the quiet period
(`not_asked`) counts as answered by that earlier request too: a request that made no job and
only cites earlier jobs or such answers is a repeat. Otherwise each page view of a logged-in
GPC visitor whom the only vendor holds no record of counted a new request complied with at
no system. An imported row (`optout import`) is never a repeat: another tool received it at
its `received_at`, and the receipts its resolution cites here can be of requests received
after it (review proof35 F1). Whether a request is a repeat is read from its resolution,
which never changes, and whether it has a job of its own: one only a re-open gives it (a
cited job ended as no proof for it: `status.SystemProof.reopen`), which moves it out of that
row once, as the request the serial order would have counted.

Days to respond run from receipt to the response: completion, the last receipt of a partial
compliance (never before the resolution that cited it: an earlier request's receipt predates
this request), or the denial; an import carries its original tool's completion time, which is
its response whatever this deployment's systems do later (a system failing here makes it
`complied_part`, at that time; never `failed`: the other tool complied). They are
kept as whole hours, rounded up (never understating the time taken).
"""

import math
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Literal

from optout.api_models import RequestStatusOut
from optout.deadlines import answered_late, counted_in, received_on
from optout.events import asks_limit, asks_opt_out, is_request
from optout.evidence import IMPORT_DEFAULT
from optout.status import DONE, FAILED, SystemProof, aggregate, proofs, settled_otherwise
from optout.store import keys
from optout.store.codec import Item

ENDED = DONE | {FAILED}  # a job's final statuses: each is a receipt

Outcome = Literal["complied_whole", "complied_part", "denied", "failed", "open"]
SOURCES = ("banner", "webform", "gpc", "agent")
REGIONS = ("ca", "other", "unknown")  # the jurisdiction groups of the g. counters
CALIFORNIA = "US-CA"
# What §7102(a)(1)(D) counts: opt-outs of sale or sharing (not profiling alone). Under the
# CCPA, "sharing" is disclosure for cross-context behavioural advertising (Civ. Code
# §1798.140(ah)): a Californian's opt-out of targeted advertising is one of sharing.
CCPA_SALE_SHARE = ("sale", "share")
CALIFORNIA_SHARING = (*CCPA_SALE_SHARE, "targeted_advertising")
SETTLED: frozenset[Outcome] = frozenset({"complied_whole", "denied"})
RESPONDED: frozenset[Outcome] = frozenset({"complied_whole", "complied_part", "denied"})


@dataclass(frozen=True)
class Contribution:
    request_id: str
    received_at: str
    deadline: str
    source: str
    outcome: Outcome
    status: str  # the request's status (received, processing, failed, ...)
    hours: int | None  # hours to respond, when it was responded to
    # system -> done / failed / processing / retired
    systems: dict[str, str] = field(default_factory=dict)
    repeat: bool = False  # asked nothing an earlier request's job did not already carry
    received_on: str = ""  # the date the deadline counts from (yyyy-mm-dd)
    opt_out: bool = True  # asks to opt out (sale, share, targeted ads, profiling)
    limit: bool = False  # asks to limit the use of sensitive personal information (§7027)
    region: str = "unknown"  # ca / other / unknown: the jurisdiction group (REGIONS)
    sale_share: bool = True  # the opt-out asks sale or sharing (else targeted ads/profiling only)
    # An import the other tool answered (its `completed_at`): whether that answer came after
    # its deadline's day, as the export's `late` and the days to respond judge it; None for
    # any other request (its answer is this deployment's own).
    imported_late: bool | None = None
    # The calendar its deadline was counted in (`deadline_calendar`): the watch judges it
    # overdue by the latest date there, never the UTC date alone (Guam is ahead of UTC).
    calendar: str | None = None
    # When it was responded to (the end of `hours`; None while there is none): the export's
    # `answered_at` for a request that is not an import (review s26 counsel F4).
    responded_at: str | None = None
    # An import: when it was written here (`evidence.imported.imported_at`): the deadline
    # watch does not count it overdue while its systems here first carry it out (ops/watch.py
    # `in_first_run`); None for any other request.
    imported_at: str | None = None
    # A job of its own failed here once (an operator replayed it: its `failures`): an import
    # so is past its first run for good, a replay does not make it owed again (review s28 R3).
    failed_once: bool = False

    @property
    def day(self) -> str:
        """The ledger day: the date received in the jurisdiction (the UTC date if unknown)."""
        return self.received_on or self.received_at[:10]

    @property
    def shard(self) -> str:
        return self.request_id[0]

    @property
    def settled(self) -> bool:
        """Nothing but an operator's denial changes it any more (a failure can be replayed);
        a completed request in part (a type not taken) is settled too: no job is left to
        replay, and it owes the watch nothing (it is not overdue)."""
        return self.outcome in SETTLED or self.status == "completed"

    def counters(self) -> dict[str, int]:
        """Flat counters, summed per day into the ledger: n.<source>.<outcome>,
        h.<source>.<hours> for an opt-out, l.<source>.<outcome>, lh.<source>.<hours> for a
        request to limit, the same per group (g.<group>.<outcome>, gh.<group>.<hours>, one
        group per right asked), s.<system>.<state> for an opt-out; a repeat: n. / l.<source>
        .repeat and g.<group>.repeat alone."""
        asked = [(row, group) for row, group, wanted in (
            ("n", f"{self.region}_{'sale' if self.sale_share else 'ads'}", self.opt_out),
            ("l", f"{self.region}_limit", self.limit)) if wanted]  # fmt: skip
        hours_row = {"n": "h", "l": "lh", "g": "gh"}
        scopes = [pair for row, group in asked for pair in ((row, self.source), ("g", group))]
        if self.repeat:
            return {f"{row}.{scope}.repeat": 1 for row, scope in scopes}
        found: dict[str, int] = {}
        for row, scope in scopes:
            found[f"{row}.{scope}.received"] = 1
            found[f"{row}.{scope}.{self.outcome}"] = 1
            if self.hours is not None:
                found[f"{hours_row[row]}.{scope}.{self.hours}"] = 1
        if self.opt_out:  # the per-system figures stay those of the opt-out requests
            for system, state in self.systems.items():
                found[f"s.{system}.{state}"] = 1
        return found


def contribution_of(
    items: list[Item],
    covering: dict[tuple[str, str], Item],
    status: RequestStatusOut | None = None,
    every: list[SystemProof] | None = None,
) -> Contribution | None:
    """None for anything that is not a request to opt out or to limit (links, replays,
    opt-ins). `covering` holds the quiet period's jobs too (`status.quiet_keys`: what they did
    not take makes the request in part). `status` and `every`: the operator's (not public)
    `aggregate` and the `proofs` of these same items, when the caller has them (the export):
    computed here otherwise."""
    event = next((i for i in items if i["sk"] == keys.EVENT_SK), None)
    if event is None or not is_request(event):
        return None
    request_id = str(event["request_id"])
    if every is None:
        every = proofs(items, covering)
    if status is None:
        status = aggregate(request_id, items, covering, every=every)
    assert status is not None  # the event exists
    systems = [s for s in every if s.counted]  # as the status counts them
    # A retired system is in the per-system figures (`retired`), not in the outcome.
    per_system = [s for s in every if s.counted or s.retired]
    resolution = next((i for i in items if i["sk"] == keys.RESOLUTION_SK), {})
    in_part = any(s.in_part for s in every)
    outcome, responded_at = _outcome(status, systems, event, resolution, in_part, every)
    received = str(event["received_at"])
    source = str(event.get("source", "webform"))
    return Contribution(
        request_id=request_id,
        received_at=received,
        deadline=str(event["deadline"]),
        source=source if source in SOURCES else "webform",
        outcome=outcome,
        status=status.status,
        hours=_hours(received, responded_at) if responded_at else None,
        systems={s.system: s.state for s in per_system},
        repeat=not is_import(event)
        and _repeat(resolution, outcome)
        and not any(s.own_jobs and s.system not in _renewed(resolution) for s in systems),
        received_on=ledger_day(event),
        opt_out=asks_opt_out(event),
        limit=asks_limit(event),
        region=_region(_stated_or_located(event)),
        sale_share=_sale_share(event, _region(_stated_or_located(event))),
        imported_late=_imported_late(event),
        calendar=deadline_calendar(event),
        responded_at=responded_at,
        imported_at=_imported_at(event),
        failed_once=any(_failed_once(job) for s in every for job in s.own_jobs),
    )


def ledger_day(event: Item) -> str:
    """The day (yyyy-mm-dd) the §7102 figures count a request under: the date its deadline
    counts from, in its jurisdiction (`deadlines.received_on`), not the UTC date."""
    return received_on(_parse(str(event["received_at"])), _jurisdiction(event)).isoformat()


def imported_answer(event: Item) -> str | None:
    """When the other tool answered an imported request (`evidence.imported.completed_at`):
    the consumer's answer, whatever this deployment's systems do later; None otherwise."""
    imported = (event.get("evidence") or {}).get("imported") or {}
    return str(imported["completed_at"]) if imported.get("completed_at") else None


def deadline_calendar(event: Item) -> str | None:
    """The jurisdiction whose days its deadline was counted in, so an answer's date is read
    there too: a geolocated request's deadline is the earlier of the state's and California's
    (`deadlines.counted_in`)."""
    where = _jurisdiction(event)
    if (
        where is not None
        and (event.get("evidence") or {}).get("jurisdiction_from") == "geolocation"
    ):
        return counted_in(_parse(str(event["received_at"])), where)
    return where


def _failed_once(job: Item) -> bool:
    """A replay resets a failed job to pending and keeps the failure (`failures`,
    `store.delivery.reset_for_replay`): its status alone no longer tells."""
    return bool(job.get("failures") or job.get("replayed_at"))


def _imported_at(event: Item) -> str | None:
    imported = (event.get("evidence") or {}).get("imported") or {}
    return str(imported["imported_at"]) if imported.get("imported_at") else None


def _imported_late(event: Item) -> bool | None:
    answered = imported_answer(event)
    if answered is None:
        return None
    deadline = date.fromisoformat(str(event["deadline"]))
    return answered_late(answered, deadline, deadline_calendar(event))


def _sale_share(event: Item, region: str) -> bool:
    """Asks to opt out of sale or sharing: in California, targeted advertising is sharing."""
    wanted = CALIFORNIA_SHARING if region == "ca" else CCPA_SALE_SHARE
    return any((event.get("opt_out") or {}).get(p) is True for p in wanted)


def _region(jurisdiction: str | None) -> str:
    """The jurisdiction group: a request with none is `unknown`, not California's."""
    if not jurisdiction:
        return "unknown"
    return "ca" if jurisdiction == CALIFORNIA else "other"


def _stated_or_located(event: Item) -> str | None:
    """The jurisdiction the groups count by, as the report defines it: stated or geolocated.
    An import row that named none took California's for its deadline (`import_default`):
    counted `unknown`, not as a stated California request (review s31 counsel F6)."""
    if (event.get("evidence") or {}).get("jurisdiction_from") == IMPORT_DEFAULT:
        return None
    return _jurisdiction(event)


def _jurisdiction(event: Item) -> str | None:
    """As capture and import gave it to the deadline (both keep it in the evidence)."""
    found = (event.get("evidence") or {}).get("jurisdiction")
    return str(found) if found else None


def a_repeat(items: list[Item]) -> bool:
    """A §7102 repeat (or a denied one), told from the request's own records before any
    earlier job is read: its resolution made no job but renewals and relied only on earlier
    answers (`_repeat`), and it has no job of its own for any other system (a re-open's). Its
    counters are the repeat row alone (a denial: `denied`), so no figure reads whether it was
    complied with in whole or in part: the deadline watch does not read the quiet period's
    jobs for it (review s28 R1). `contribution_of` may find a repeat this does not (an own job
    no longer counted), never the reverse."""
    event = next((i for i in items if i["sk"] == keys.EVENT_SK), {})
    if is_import(event):
        return False
    resolution = next((i for i in items if i["sk"] == keys.RESOLUTION_SK), {})
    own = {str(i["sk"])[len(keys.JOB_PREFIX) :] for i in items
           if str(i["sk"]).startswith(keys.JOB_PREFIX)}  # fmt: skip
    return _repeat(resolution, "open") and not own - _renewed(resolution)


def is_import(event: Item) -> bool:
    """A row `optout import` stored (`evidence.imported`): a request another tool received
    at its `received_at` and answered there. Never a §7102 repeat (review proof35 F1): the
    earlier receipts its resolution cites here can be of requests received after it (the
    person opted out again through this deployment before the history was imported), and
    whether this deployment needed a job of its own says nothing of what the other tool was
    asked; its outcome and days follow the other tool's answer (`imported_answer`)."""
    return bool((event.get("evidence") or {}).get("imported"))


def _repeat(resolution: Item, outcome: Outcome) -> bool:
    """No job of its own but renewals, only earlier requests' jobs or recent no_record answers
    relied on, and not denied (an operator's denial answers this request, so it counts). A
    renewal (`renewed`) re-sends what an earlier job carried, because that job ends before this
    request's record would (docs/decisions.md, "A cited job must outlive the request that
    cites it"): the consumer asked nothing new."""
    renewed = _renewed(resolution)
    made = int(resolution.get("jobs_total") or 0) - len(renewed)
    earlier = resolution.get("covered") or resolution.get("not_asked") or renewed
    return made <= 0 and bool(earlier) and outcome != "denied"


def _renewed(resolution: Item) -> set[str]:
    return {str(name) for name in resolution.get("renewed") or ()}


def _outcome(
    status: RequestStatusOut,
    systems: list[SystemProof],
    event: Item,
    resolution: Item,
    in_part: bool = False,
    every: list[SystemProof] | None = None,
) -> tuple[Outcome, str | None]:
    """The outcome, and when the response was given (None while there is none). A partial
    compliance responds at its last receipt, or when the resolver found the earlier
    receipts that prove it, whichever is later (as `status.aggregate` does for a completion):
    a cited receipt can predate this request."""
    imported = (event.get("evidence") or {}).get("imported") or {}
    if status.status == "denied":
        return "denied", status.denied_at
    if status.status == "completed":
        # Done everywhere, but a system did not take a type the request named (refused it, or
        # it was never sent: no form the vendor can match; a quiet period's job that sent
        # nothing counts too): in part (review s26 counsel F2, F3; diff B F2), as that type
        # alone makes the request fail. `in_part`: `SystemProof.in_part`, the page's rule.
        return (
            "complied_part" if in_part else "complied_whole",
            imported.get("completed_at") or status.completed_at,
        )
    if status.status == "failed":
        if imported.get("completed_at"):
            # The other tool responded then; a system here failing since changes this
            # deployment's part, not when the consumer's request was answered.
            return "complied_part", str(imported["completed_at"])
        # Its last receipt, a failure's included: a system that failed for good after the
        # others confirmed answered then, and until then the request read processing (review
        # s34 proof F2: the last `done` alone counted a request whose last system failed days
        # later, past its deadline, as answered early, and its export `late: false`).
        # A failed job later jobs delivered answered at their time (`SystemProof.answered_at`).
        ended = [at for s in systems if s.state in ("done", FAILED) for j in s.jobs
                 if s.status_of(j) in ENDED and (at := s.answered_at(j))]  # fmt: skip
        # A system a retirement settled while a job there was still open, or a re-open,
        # answered then, as for a completion (review s34b F2-a: a request processing until a
        # retirement past its deadline was dated at its last receipt, weeks before, and
        # exported `late: false`). One retired after its jobs had all failed answered at
        # those failures, not at its retirement.
        retired = [s for s in every or [] if s.retired]
        ended += [str(j["completed_at"]) for s in retired for j in s.jobs
                  if j.get("status") == FAILED and j.get("completed_at")]  # fmt: skip
        open_then = [s for s in retired if any(j.get("status") != FAILED for j in s.jobs)]
        ended += settled_otherwise(open_then, resolution)
        if any(s.state == "done" for s in systems):
            return "complied_part", max([str(resolution.get("resolved_at") or ""), *ended]) or None
        return "failed", None
    return "open", None


def _hours(start: str, end: str) -> int:
    seconds = (_parse(end) - _parse(start)).total_seconds()
    return max(0, math.ceil(seconds / 3600))


def _parse(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))
