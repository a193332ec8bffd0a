"""A request's aggregate status, from its event, the resolver's outcome, its jobs, the earlier
jobs that already carry what it asked (its proof where it needs no job of its own) and an
operator's denial.

Per system, a request is satisfied by its own job, by jobs of earlier requests that carry the
same purposes for the same identities (`RESOLUTION.covered`), or both. A request naming several
unlinked people has a further own job per further purpose set (`RESOLUTION.split_jobs`): each
counts as its own job does, and the system is still one entry. A system counts as done
when every one of those jobs is done (or, its own, no_record), failed when one failed for
good, and processing otherwise. A denial (§7026(e)) decides the status whatever the jobs say.

A cited (covering) job is proof for this request only if it ended `done` and its receipt does
not leave out the identifier types this request relied on it for (`proves`): the request may
have cited it while it was still in flight, and it may then end `no_record` (a receipt for its
own request only) or done without sending that type (no record of it). Such a job is left
out; a system left with no job at all reads processing until the request has one of its own
(`reopen`: the sweep re-plans it, or past its last checkpoint the deadline watch;
docs/decisions.md, "A cited job must prove what it was cited for").

A system the resolver did not ask because its vendor recently answered "no such person" for
these identities (`RESOLUTION.not_asked`, the quiet period) has no job and no proof: the
operator views do not count it, and say why (`not_asked`). The public view counts it as done,
as it counts that answer on the request's own job (no_record): otherwise two opt-outs for the
same email would show a stranger whether the vendors hold that person. Such a system has a
`SystemProof` (`quiet_only`) holding the quiet period's jobs as read (`quiet_jobs`): one that
sent nothing for an identity the request named makes the request "in part" (`in_part`) in
every view, as it made the first request.

A system an operator retired (`optout retire`, optout/retire.py; the `RETIRED` item, read with
the cited jobs) owes nothing more for the jobs made before its retirement that were not done:
such a system is `retired`, counted neither done nor failed, and a request whose other systems
are done reads completed. A retired job that ended done still proves the system.

Once the name is configured again, a job made before its retirement is never proof for a
request resolved after it (`SystemProof.stale`), whatever its status: the retired contract's
jobs were never sent, or sent under it, and the resolver sends their purposes again
(resolver/derive.py `before_retirement`). Such a citation holds the system in processing, and
re-opens the request when it has no job of its own (review s18 diff B1).

A failed job (the request's own or a cited one) whose every flight (identity, purposes) later
jobs took and the vendor confirmed counts as done for the request once the deadline watch has
recorded that cover under it (`LATER#<system>#<job id>`, optout/ops/later.py): answered at
the latest of those jobs' `completed_at`, whatever the failed job does afterwards (a replay).
The record is written once and never changed, so no view moves after the fact but from failed
to done (docs/decisions.md, "Known limits in full").
"""

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

from optout import receipt_words
from optout.api_models import RequestStatus, RequestStatusOut
from optout.evidence import jurisdiction_stated
from optout.ops.keys import DENIAL_SK
from optout.store import keys
from optout.store.codec import Item
from optout.store.requests import CITED_RULE, STRICT_RULE
from optout.store.retired import retired_at_for, retirements
from optout.store.table import Table
from optout.timestamps import iso

DONE: Final = frozenset({"done", "no_record"})  # "no record" is a receipt, not an error
FAILED: Final = "failed"
# The longest an earlier answer's time is replayed for a request it satisfies (`replayed_until`):
# past it a first request's own wait could tell them apart again, but a replayed wait of days
# (a job failed, then replayed by an operator) would leave a consumer's repeat "processing"
# for as long.
REPLAY_CAP: Final = timedelta(hours=24)


Identity = tuple[str, str]  # (identifier type, keyed hash)


def _identities(item: Item) -> set[Identity]:
    return {(str(i["type"]), str(i["key"])) for i in item.get("identifiers") or ()}


def proven_types(job: Item) -> set[str]:
    """The identifier types a job's receipt is proof for: none unless it is done; of the job's
    types, those it lists as sent (all when it lists none: a connector that does not say), less
    those refused (`store.delivery.record_delivered` frees the other types' marks by this rule)."""
    if job.get("status") != "done":
        return set()
    receipt = job.get("receipt") or {}
    sent = {str(t) for t in receipt.get("identifier_types_sent") or ()}
    carried = {t for t, _ in _identities(job)}
    rejected = {str(t) for t in receipt.get("identifier_types_rejected") or ()}
    return (carried & sent if sent else carried) - rejected


def unsent(job: Item, names: tuple[str, ...] = keys.UNSENT_LISTS) -> set[Identity]:
    """The identities a job never sent, whatever other value of their type it sent (its
    receipt's `identities_unformed`: no form the vendor can match; `identities_not_sent`: the
    vendor's answer, no UID2 or no profile; keyed; review s28 P1: a backfill step's job carries
    several people, and the type one's email was sent under is no proof for another's). A
    receipt written before 2026-12-03 (session 28) lists none."""
    receipt = job.get("receipt") or {}
    return {keys.split_identity_pk(str(pk)) for name in names for pk in receipt.get(name) or ()}


def own_identities(items: Sequence[Item]) -> set[str]:
    """A request's own keyed identities (`ID#<type>#<key>`): those its event named and those
    its own jobs carried (a linked identity of its person's), what a view of it may list."""
    own = [i for i in items if i.get("sk") == keys.EVENT_SK
           or str(i.get("sk", "")).startswith(keys.JOB_PREFIX)]  # fmt: skip
    return {keys.identity_pk(t, k) for item in own for t, k in _identities(item)}


def receipt_for(receipt: Item, own: set[str] | None) -> Item:
    """A receipt as a view of one request or identity shows it: its `identities_unformed`
    and `identities_not_sent` keep only the `own` entries (a field with none is left out). A
    backfill step's job carries other people, whose keyed identities these lists name: a job
    record gives its types only, never its keys (review s28 p1 F2). The status and the frees
    read the stored receipt, never this. The entries left out are counted
    (`identities_not_shown`): a request that reached the job only through a link (its person's
    identity is not among `own`, review s28 last L1) still sees that values went unsent.
    `own` None: the whole receipt (a backfill step's own job, which carries those people)."""
    if own is None or not any(name in receipt for name in keys.UNSENT_LISTS):
        return receipt
    shown = {k: v for k, v in receipt.items() if k not in keys.UNSENT_LISTS}
    hidden = 0
    for name in keys.UNSENT_LISTS:
        listed = [str(pk) for pk in receipt.get(name) or ()]
        mine = [pk for pk in listed if pk in own]
        hidden += len(listed) - len(mine)
        if mine:
            shown[name] = mine
    if hidden:
        shown["identities_not_shown"] = hidden
    return shown


def failures_for(job: Item, own: set[str] | None) -> list[Item]:
    """A replayed job's failed attempts (`failures`), each receipt as `receipt_for` shows it."""
    return [f | {"receipt": receipt_for(f.get("receipt") or {}, own)} if "receipt" in f else f
            for f in job.get("failures") or ()]  # fmt: skip


def _unformed_identities(job: Item) -> set[Identity]:
    """Of `unsent`, those never sent for lack of a form: what the public view reads."""
    return unsent(job, ("identities_unformed",))


def taken(job: Item) -> set[Identity]:
    """The identities a job is proof for: those it carried of its `proven_types`, less those
    it never sent (`unsent`). Also the deadline watch's later-delivery rule (ops/later.py)."""
    proven = proven_types(job)
    return {i for i in _identities(job) if i[0] in proven} - unsent(job)


def _rejected(job: Item) -> set[str]:
    """The types a job's receipt lists as refused or never sent (`identifier_types_rejected`)."""
    return {str(t) for t in (job.get("receipt") or {}).get("identifier_types_rejected") or ()}


def _unformed(job: Item) -> set[str]:
    """Of `_rejected`, the types never sent for lack of a form the vendor can match
    (`identifier_types_unformed`, `Connector.unformed`): known from the identifiers' text, never
    from a vendor's answer. A receipt written before that field (2026-12-03) cannot tell the two
    apart: its refused types read as the vendor's answer (not public), unless the job called no
    vendor at all (a no_record with nothing sent and no HTTP status, `vendor_answered`), where
    every one was never sent for lack of a form (`Connector.deliver`)."""
    receipt = job.get("receipt") or {}
    if "identifier_types_unformed" in receipt:
        return _rejected(job) & {str(t) for t in receipt["identifier_types_unformed"] or ()}
    if job.get("status") == "no_record" and not vendor_answered(job):
        return _rejected(job)
    return set()


def made_before(job: Item, retirement: Item | None) -> bool:
    """A job made at or before one of its system's retirements; a job made after the name was
    last configured again is not."""
    return retired_at_for(job, retirement) is not None


def retired_job(job: Item, retirement: Item | None) -> bool:
    """A job no request's status reads (a backfill step's, under a request id of its own) that
    its system's retirement left open: not done and made before it, so no longer owed. The
    rule of a request's own job (`SystemProof.retired_job`; a request's cited job has more)."""
    return job.get("status") not in DONE and made_before(job, retirement)


def job_retirements(table: Table, jobs: Sequence[tuple[str, Item | None]]) -> list[Item | None]:
    """For each (system, job) of jobs under a request id of their own (a backfill step's, read
    by `optout status`, the range export and the report): the retirement that left it open
    (`retired_job`: it reads `retired`), else None (a job not written yet too). The
    retirements are read (one Query of the RETIRED partition) only when a job is not done."""
    unanswered = any(job is not None and job.get("status") not in DONE for _, job in jobs)
    found = retirements(table) if unanswered else {}
    return [found.get(system) if job is not None and retired_job(job, found.get(system)) else None
            for system, job in jobs]  # fmt: skip


@dataclass(frozen=True)
class SystemProof:
    """What satisfies one system for one request: its own job and/or earlier requests' jobs.
    `named`: the identities the request's event names."""

    system: str
    own: Item | None
    covering: tuple[Item, ...]
    named: frozenset[Identity] = frozenset()
    # The recent no_record answers (job ids) the request's RESOLUTION relied on not to ask
    # this system (`not_asked`, the quiet period, per identity; a re-open may add them).
    quiet: frozenset[str] = frozenset()
    # A re-open found nothing left to plan for this system (`not_planned`: the person is no
    # longer opted out of its purposes): nothing is owed, nothing to re-open.
    unplanned: bool = False
    # Why: "system_removed" when the system was no longer in the config at the re-open
    # (`RESOLUTION.not_configured`), else "not_opted_out".
    unplanned_why: str = "not_opted_out"
    # The RESOLUTION was made under the cited-proof rule (`proof_rule` 2, 2026-11-30): one made
    # before it keeps the meaning it was answered with (a cited done or no_record job counts).
    strict: bool = True
    # The system's retirement (keys.RETIRED_PK), if an operator retired it.
    retirement: Item | None = None
    # When the request was resolved (`RESOLUTION.resolved_at`): whether it came after the
    # system's retirement (`stale`).
    resolved_at: str = ""
    # The jobs of `quiet` read with the request (`quiet_keys`): what they did not take is not
    # taken for this request either (`not_taken`). Read by every view that says "in part".
    quiet_jobs: tuple[Item, ...] = ()
    # The identities the request's citations relied on: `named` and those reached through a
    # link whose marks named a cited job (`RESOLUTION.cited_linked`, `proof_rule` 3). None: a
    # RESOLUTION made before it was recorded (2026-12-03), read as it was answered (`proves`).
    relied: frozenset[Identity] | None = None
    # The request's further own jobs (`RESOLUTION.split_jobs`, `<request>~<hex>:<system>`):
    # one per further purpose set when it named several unlinked people. Counted as its own:
    # the system is done only when each is.
    more: tuple[Item, ...] = ()
    # The deadline watch's records of the failed jobs here that later jobs delivered
    # (`LATER#<system>#<job id>` under the request, optout/ops/later.py): each such job counts
    # as done, answered at the record's `completed_at`.
    later: tuple[Item, ...] = ()

    def delivered_later(self, job: Item) -> Item | None:
        """The record of later jobs that delivered this job's every flight, if any."""
        job_id = str(job.get("job_id") or "")
        return next((r for r in self.later if str(r.get("job_id")) == job_id), None)

    def status_of(self, job: Item) -> str:
        """A job's status for this request: `done` when later jobs delivered it (`later`)."""
        return "done" if self.delivered_later(job) is not None else str(job.get("status") or "")

    def answered_at(self, job: Item) -> str | None:
        """When a job answered for this request: its later delivery's time when it has one
        (not the failure's, nor a replay's after it), else its own `completed_at`."""
        record = self.delivered_later(job)
        found = (record or job).get("completed_at")
        return str(found) if found else None

    @property
    def own_jobs(self) -> tuple[Item, ...]:
        """The request's own jobs for the system: `<request>:<system>` and the further ones."""
        return ((self.own,) if self.own else ()) + self.more

    def is_own(self, job: Item) -> bool:
        return any(job is mine for mine in self.own_jobs)

    def _before_retirement(self, job: Item) -> bool:
        return made_before(job, self.retirement)

    def retired_job(self, job: Item) -> bool:
        """A job not done and made before the system was retired, of a request resolved by
        then: no longer owed."""
        return (
            self.status_of(job) not in DONE and self._before_retirement(job) and not self.stale(job)
        )

    def stale(self, job: Item) -> bool:
        """A cited job made before a retirement of the system, for a request resolved after it
        (the name configured again): never proof, whatever its status."""
        if self.is_own(job) or self.retirement is None or not self._before_retirement(job):
            return False
        return self.resolved_at > str(retired_at_for(job, self.retirement))

    @property
    def retired(self) -> bool:
        """Every job that could prove the system is retired: nothing is owed here."""
        return bool(self.jobs) and all(self.retired_job(j) for j in self.jobs)

    @property
    def retired_when(self) -> str:
        """When a retired system was retired for this request: the latest retirement that
        closed one of its jobs (the first, unless the name was added back and removed again)."""
        return max(str(retired_at_for(j, self.retirement)) for j in self.jobs)

    def proves(self, cited: Item) -> bool:
        """A cited job proves this system for the request when its receipt is proof for one
        of the identities the request relied on it for (`relied`) that the job carried: a
        backfill step's job carries other people, whose sent values prove nothing for this
        person (review s28 p1 F1). A RESOLUTION that did not record them (`relied` None): the
        named ones the job carried, or, when it carried none (the request reached it only
        through a link), any of them, as it was answered (docs/decisions.md)."""
        carried = _identities(cited)
        if not carried:  # a job that names no identifiers (none is written so): its status
            return cited.get("status") == "done"
        if self.relied is not None:
            relied = carried & self.relied
        else:
            relied = (carried & self.named) or carried
        return bool(relied & taken(cited))

    def no_proof(self, cited: Item) -> bool:
        """A cited job that ended (done, no_record) as no proof for this request."""
        return self.strict and cited.get("status") in DONE and not self.proves(cited)

    @property
    def jobs(self) -> tuple[Item, ...]:
        """The jobs that decide the system's state: its own and the cited ones still able to
        prove it (one that ended as no proof must neither complete nor hold back the request)."""
        kept = tuple(j for j in self.covering if not self.no_proof(j) and not self.stale(j))
        return self.own_jobs + kept

    @property
    def settled(self) -> bool:
        """No job left that can prove the system, and nothing owed: a re-open found nothing to
        plan, or every cited job that proved nothing is a no_record answer the quiet period
        relied on (`quiet`). A cited job that proved nothing for another identity of the
        request is not explained by one identity's quiet period."""
        if self.jobs:
            return False
        if self.unplanned:
            return True
        if any(self.stale(j) for j in self.covering):
            return False
        unexplained = [j for j in self.covering
                       if self.no_proof(j) and str(j.get("job_id")) not in self.quiet]  # fmt: skip
        return bool(self.quiet) and not unexplained

    @property
    def quiet_only(self) -> bool:
        """In the proofs only because the quiet period did not ask it (`not_asked`): no job of
        its own, none cited. The operator record lists no system block for it."""
        return not self.own_jobs and not self.covering

    @property
    def not_taken(self) -> frozenset[str]:
        """The identifier types the request named that this system's proof did not take: a job
        of it ended (done or no_record) with the type under `identifier_types_rejected` (the
        vendor refused it inside an accepted call, or it was never sent: no form of it the
        vendor can match, `Connector.unformed`), and no job of it took the type (`proven_types`).
        Such a system is done, but with part of the request (review s26 counsel F2, F3):
        the §7102 outcome is `complied_part` and no page says every detail was processed.
        A quiet period's job (`quiet_jobs`) counts for the identities the request named that
        it carried: a repeat not asked after a job that sent nothing is in part as the first
        was, in every view (review s26 diff B F2: only the page said so)."""
        return self._left_out(_rejected, unsent)

    @property
    def unformed(self) -> frozenset[str]:
        """Of `not_taken`, the types not taken only because no job sent them, for lack of a
        form the vendor can match (`_unformed`): what the requester's own text decides. A type
        a vendor refused (The Trade Desk's UID2 operator answering "opted out", Braze refusing
        a profile) is left out: it tells of data the vendor holds, and anyone may file a
        request naming a stranger's email beside their own phone (review s27 stranger F2)."""
        return self._left_out(_unformed, _unformed_identities)

    def _left_out(
        self, read: Callable[[Item], set[str]], left: Callable[[Item], set[Identity]]
    ) -> frozenset[str]:
        """The types the request named that `read` finds on a job of the proof that ended
        (done or no_record) or on a quiet period's job that carried them, and no job took."""
        named = {t for t, _ in self.named}
        refused = {t for job in self.jobs if job.get("status") in DONE for t in read(job)}
        # a named identity a job never sent, another value of its type sent (review s28 P1)
        refused |= {t for job in self.jobs for t, _ in left(job) & self.named}
        for job in self.quiet_jobs:
            carried = _identities(job)
            relied = {t for t, _ in carried & self.named} if carried else named
            refused |= relied & read(job)
            # a done job that never sent a named identity quiets it too (review s28 p1 F4)
            refused |= {t for t, _ in left(job) & self.named}
        proven = {t for job in self.jobs for t, _ in taken(job)}
        return frozenset((refused & named) - proven)

    @property
    def in_part(self) -> bool:
        """Done with part of the request (`not_taken`): counted and done, or settled by the
        quiet period alone (the public view counts such a system done: `quiet_systems`)."""
        if not self.not_taken:
            return False
        if self.counted:
            return self.state == "done"
        return self.settled and bool(self.quiet) and not self.unplanned

    @property
    def in_part_publicly(self) -> bool:
        """In part (`in_part`, the one rule) for a type never sent for lack of a form
        (`unformed`): what the public view counts. Operators, the exports, the §7102 outcome
        and the CLI read `in_part`."""
        return self.in_part and bool(self.unformed)

    @property
    def reopen(self) -> bool:
        """Left with only cited jobs that ended as no proof, and not settled: the request
        needs a job of its own."""
        return not self.jobs and not self.settled

    @property
    def counted(self) -> bool:
        """Whether the status counts this system: not once it is settled with no job, nor
        once it is retired."""
        return not self.settled and not self.retired

    @property
    def state(self) -> str:
        if self.retired:
            return "retired"
        statuses = [self.status_of(job) for job in self.jobs if not self.retired_job(job)]
        if any(s == FAILED for s in statuses):
            return FAILED
        if not statuses or any(self.stale(j) for j in self.covering):
            return "processing"  # awaiting its own job (the sweep's re-open), or a stale citation
        return "done" if all(s in DONE for s in statuses) else "processing"


def covering_keys(items: list[Item]) -> list[tuple[str, str]]:
    """The (pk, sk) of every earlier job the resolution cites and of its further own jobs
    (`split_jobs`), to read in one batch, and of
    the retirement of each system whose own job is not done or whose jobs are cited (absent
    unless an operator retired it): a request whose own jobs are all done reads nothing more."""
    resolution = next((i for i in items if i["sk"] == keys.RESOLUTION_SK), {})
    found: list[tuple[str, str]] = []
    systems: set[str] = set()
    for system, job_ids in sorted((resolution.get("covered") or {}).items()):
        systems.add(system)
        found += [keys.job_item_key(system, str(job_id)) for job_id in job_ids]
    # The request's further own jobs (`split_jobs`: several unlinked people named), read with
    # them: none for a request naming one person.
    for system, job_ids in sorted((resolution.get("split_jobs") or {}).items()):
        systems.add(system)
        found += [keys.job_item_key(system, str(job_id)) for job_id in job_ids]
    for item in items:
        if str(item["sk"]).startswith(keys.JOB_PREFIX) and item.get("status") not in DONE:
            systems.add(str(item["sk"])[len(keys.JOB_PREFIX) :])
    return found + [keys.retired_key(s) for s in sorted(systems)]


def own_retirement_keys(items: list[Item]) -> list[tuple[str, str]]:
    """The retirement keys of the systems of the request's own jobs: what the public read
    asks for when it has nothing else to read, so that a first request's status costs the
    same round trips as a repeat's (review s21 diff B F2: a stranger timing the GET would
    otherwise tell them apart). A retirement never moves a done job's system."""
    return [keys.retired_key(str(i["sk"])[len(keys.JOB_PREFIX) :])
            for i in items if str(i["sk"]).startswith(keys.JOB_PREFIX)]  # fmt: skip


def quiet_keys(items: list[Item]) -> list[tuple[str, str]]:
    """The (pk, sk) of each no_record job the resolution relied on not to ask a system (the
    quiet period, `not_asked`): what the public view replays their answer times from."""
    resolution = next((i for i in items if i["sk"] == keys.RESOLUTION_SK), {})
    return [keys.job_item_key(system, str(entry["job_id"]))
            for system, entries in sorted((resolution.get("not_asked") or {}).items())
            for entry in entries]  # fmt: skip


def vendor_answered(job: Item) -> bool:
    """A no_record job whose vendor was asked and answered "no such person": its receipt lists
    the types it sent, or the vendor's HTTP status. One that sent nothing (no form of the
    identifier the vendor can match, `Connector.unformed`, or no type it takes) ended no_record
    without a call (`Connector.deliver`): neither, and no answer."""
    receipt = job.get("receipt") or {}
    return bool(receipt.get("identifier_types_sent")) or receipt.get("http_status") is not None


def to_uid2_operator(receipt: Item) -> bool:
    """A receipt whose types went to a UID2 operator to be mapped, not to its system: The Trade
    Desk's no_record for a person the operator could not map (proof34 L2). Its `sent_to` says
    so since 2026-12-04; an older one only by its note (receipt_words.UID2_NO_RECORD_NOTE)."""
    if receipt.get("sent_to") is not None:
        return bool(receipt["sent_to"] == receipt_words.SENT_TO_UID2_OPERATOR)
    return str(receipt.get("note") or "").startswith(receipt_words.UID2_NO_RECORD_NOTE)


def not_asked(items: list[Item], covering: dict[tuple[str, str], Item]) -> list[Item]:
    """Per system, each recent no_record job the resolver relied on not to ask its vendor
    again, with when it ended and the line the operator views print, which says what that job
    recorded (review s26 counsel F2): "the vendor answered no such person" only when it asked
    the vendor (`vendor_answered`), else that it sent nothing, and why (its receipt's note).
    `covering`: what `store.proof.load_with_proof` read with `quiet` (`quiet_keys`); a job
    no longer kept is named as such. `answered_at` is the job's own `completed_at`
    (milliseconds), else the time the resolution stored (whole seconds, rounded up since
    2026-12-02: review s26 counsel F9; cut before)."""
    resolution = next((i for i in items if i["sk"] == keys.RESOLUTION_SK), {})
    found: list[Item] = []
    for system, entries in sorted((resolution.get("not_asked") or {}).items()):
        for entry in entries:
            job_id = str(entry["job_id"])
            job = covering.get(keys.job_item_key(system, job_id))
            at = str((job or {}).get("completed_at") or entry["answered_at"])
            found.append({"system": system, "job_id": entry["job_id"], "answered_at": at,
                          "note": _quiet_note(job, job_id, at)})  # fmt: skip
    return found


def _quiet_note(job: Item | None, job_id: str, at: str) -> str:
    if job is None:
        return f"not asked: job {job_id} ended no_record at {at} (its receipt is no longer kept)"
    if job.get("status") == "done":  # it left this identity unsent (`unsent`; review s28 p1 F4)
        why = (job.get("receipt") or {}).get("note") or "the vendor's answer"
        return f"not asked: job {job_id} did not send this identifier at {at} ({why})"
    if to_uid2_operator(job.get("receipt") or {}):  # The Trade Desk was never called
        return (f"not asked: the UID2 operator answered no UID2 for this person at {at} "
                f"(job {job_id}; nothing was sent to The Trade Desk)")  # fmt: skip
    if vendor_answered(job):
        return f"not asked: the vendor answered no such person at {at} (job {job_id})"
    why = (job.get("receipt") or {}).get("note") or "no identifier it can use"
    return f"not asked: job {job_id} sent the vendor nothing at {at} ({why})"


def proofs(items: list[Item], covering: dict[tuple[str, str], Item]) -> list[SystemProof]:
    """Per system, in name order. A cited job that no longer exists (expired) is left out."""
    by_sk = {item["sk"]: item for item in items}
    named = frozenset(_identities(by_sk.get(keys.EVENT_SK, {})))
    own = {i["sk"][len(keys.JOB_PREFIX) :]: i for i in items if i["sk"].startswith(keys.JOB_PREFIX)}
    cited: dict[str, list[Item]] = {}
    for system, job_ids in (by_sk.get(keys.RESOLUTION_SK, {}).get("covered") or {}).items():
        for job_id in job_ids:
            key = keys.job_item_key(system, str(job_id))
            if key in covering:
                cited.setdefault(system, []).append(covering[key])
    resolution = by_sk.get(keys.RESOLUTION_SK, {})
    more = {system: tuple(covering[k] for k in (keys.job_item_key(system, str(j)) for j in job_ids)
                          if k in covering)
            for system, job_ids in (resolution.get("split_jobs") or {}).items()}  # fmt: skip
    heard = {s: frozenset(str(e["job_id"]) for e in entries)
             for s, entries in (resolution.get("not_asked") or {}).items() if entries}  # fmt: skip
    # A system the quiet period did not ask is here too (`quiet_only`), with the jobs it relied
    # on as read (`quiet_keys`): what they did not take decides "in part" (`not_taken`).
    names = sorted(set(own) | set(cited) | set(heard) | {s for s, jobs in more.items() if jobs})
    quiet_jobs = {s: tuple(covering[k] for k in (keys.job_item_key(s, j) for j in sorted(ids))
                           if k in covering)
                  for s, ids in heard.items()}  # fmt: skip
    unplanned = set(resolution.get("not_planned") or ())
    rule = int(resolution.get("proof_rule") or 1)
    strict = rule >= STRICT_RULE
    linked = {keys.split_identity_pk(str(pk)) for pk in resolution.get("cited_linked") or ()}
    relied = named | linked if rule >= CITED_RULE else None
    removed = set(resolution.get("not_configured") or ())
    later: dict[str, tuple[Item, ...]] = {}
    for item in items:
        if str(item["sk"]).startswith(keys.LATER_PREFIX):
            later[str(item["system"])] = (*later.get(str(item["system"]), ()), item)
    return [SystemProof(s, own.get(s), tuple(cited.get(s, ())), named, heard.get(s, frozenset()),
                        s in unplanned, "system_removed" if s in removed else "not_opted_out",
                        strict, covering.get(keys.retired_key(s)),
                        str(resolution.get("resolved_at") or ""), quiet_jobs.get(s, ()), relied,
                        more.get(s, ()), later.get(s, ()))
            for s in names]  # fmt: skip


def needs_reopen(items: list[Item], covering: dict[tuple[str, str], Item]) -> bool:
    """A resolved request left, for some system, with only cited jobs that ended as no proof
    for it (`SystemProof.reopen`): what the sweep's and the watch's `reopen` references name."""
    resolved = any(item["sk"] == keys.RESOLUTION_SK for item in items)
    return resolved and any(p.reopen for p in proofs(items, covering))


def reopened_at(resolution: Item, hidden: Collection[str] = ()) -> list[str]:
    """When each re-open of the request wrote what settles a system (`RESOLUTION.reopens`,
    since 2026-12-03), leaving out those for `hidden` systems only."""
    return [str(r["at"]) for r in _listed(resolution.get("reopens"))
            if set(r.get("systems") or ()) - set(hidden) or not r.get("systems")]  # fmt: skip


def settled_otherwise(
    every: list[SystemProof], resolution: Item, hidden: Collection[str] = ()
) -> list[str]:
    """When systems were settled by something other than a receipt: a retired system when it
    was retired; a re-open that settled a system (quiet period, not planned, a job cited) not
    before it. One the public view leaves out (`hidden`: linked-only) settles nothing it shows:
    its retirement would date the completion after every system shown had answered (review s22
    proof P6, s31 counsel F1). A request is answered no sooner than the latest of these."""
    retired = [s.retired_when for s in every
               if s.retired and s.retirement and s.system not in hidden]  # fmt: skip
    return retired + reopened_at(resolution, hidden)


def _listed(found: object) -> list[Item]:
    return [r for r in found if isinstance(r, dict)] if isinstance(found, list) else []


def quiet_systems(resolution: Item, every: list[SystemProof]) -> set[str]:
    """The systems the quiet period settled for the public view: those the request did not ask
    because the vendor recently answered "no such person" (`not_asked`) and that have no job
    of their own or cited proof left (`SystemProof.settled`, not by a re-open's `not_planned`).
    The public view counts them as done, as it counts that answer on a request's own job, once
    the systems it asked have all answered (`aggregate`): leaving them out, or counting them
    done sooner, would show anyone who repeats an opt-out for an email whether the business's
    vendors hold that person (6 systems, then 4; review s13 blackbox 1; 2 of 6 done against
    0 of 6, review s20 outside O1)."""
    # no job, no citation: in the proofs as `quiet_only`, or not at all (no entries)
    heard = set(resolution.get("not_asked") or ()) - {s.system for s in every if not s.quiet_only}
    return heard | {s.system for s in every if s.settled and s.quiet and not s.unplanned}


def _took(job: Item | None) -> timedelta:
    """How long an earlier job took from its last sending (its making, or an operator's
    replay: else a job replayed hours after an outage would hold every later repeat for
    hours, where a first request now answers in seconds, review s21 diff B F1) to its answer,
    at most REPLAY_CAP; none when unknown (expired, or not answered yet: then its system is
    not answered either)."""
    job = job or {}
    sent = max(str(job.get("created_at") or ""), str(job.get("replayed_at") or ""))
    answered = job.get("completed_at")
    if not sent or not answered:
        return timedelta(0)
    took = datetime.fromisoformat(str(answered)) - datetime.fromisoformat(sent)
    return min(REPLAY_CAP, max(timedelta(0), took))


def replayed_until(
    resolution: Item, systems: list[SystemProof], quiet: set[str],
    covering: dict[tuple[str, str], Item],
) -> str | None:  # fmt: skip
    """The earliest the public view shows a resolved request's answer: its resolution plus the
    longest time one of the earlier answers it relies on took when first asked for (a cited
    job's, or a quiet system's no_record job's, last sent to answered). A request that asks the
    vendors waits for their answers; one satisfied by earlier answers would read `completed`
    within a second, telling a stranger who repeats an opt-out for someone's email whether
    that person had opted out before, or whether the vendors hold them (review s17 contract
    F2; s20 diff D2, outside O2). Replaying the earlier wait from this resolution puts both
    on the vendors' own timings. None when it relies on no earlier answer."""
    resolved = resolution.get("resolved_at")
    if not resolved:
        return None
    heard = resolution.get("not_asked") or {}
    took = [_took(j) for s in systems for j in s.jobs if not s.is_own(j)]
    took += [_took(covering.get(keys.job_item_key(name, str(entry["job_id"]))))
             for name in sorted(quiet) for entry in heard.get(name, ())]  # fmt: skip
    if not took:
        return None
    return iso(datetime.fromisoformat(str(resolved)) + max(took))


def aggregate(
    request_id: str,
    items: list[Item],
    covering: dict[tuple[str, str], Item] | None = None,
    public: bool = False,
    now: datetime | None = None,
    *,
    every: list[SystemProof] | None = None,
) -> RequestStatusOut | None:
    """`public`: the consumer's view, without the systems the request reached only through
    identifiers linked to the ones it named (`RESOLUTION.linked_only`): the business's
    knowledge of who is linked to whom is not the requester's to read; nor those it reached
    only for purposes carried to the identities it named, none it asked itself
    (`RESOLUTION.carried_only`): earlier receipts and the quiet period are recorded for asked
    purposes only, so such a count would show what the person chose before and whether a
    vendor holds them (review s24 stranger Q1, Q2); and with the systems
    the quiet period settled counted as done (`quiet_systems`): whether a vendor holds the
    person is not the requester's to read either; and `processing`, with no count, until the
    earlier answers it relies on are replayed (`replayed_until`; `now` defaults to the clock):
    whether the person had opted out before is not the requester's to read. Operators see all,
    and those systems under `not_asked`, uncounted. `every`: `proofs(items, covering)`, when
    the caller has built them already (the export: review s26 diff B F3)."""
    by_sk = {item["sk"]: item for item in items}
    event = by_sk.get(keys.EVENT_SK)
    if event is None:
        return None
    resolution = by_sk.get(keys.RESOLUTION_SK)
    if every is None:
        every = proofs(items, covering or {})
    systems = [s for s in every if s.counted]
    quiet: set[str] = set()  # settled by the quiet period: read as done in the public view
    # reached only through linked identifiers, or only for purposes it did not ask: not public
    hidden: set[str] = set()
    if public and resolution is None:
        # Which systems are linked-only is in the RESOLUTION, written after the jobs: until it
        # exists the public view counts none (review s17 contract F1: a linked customer id's
        # system was counted while `received`, telling a stranger the email had an account).
        systems = []
    elif public and resolution is not None:
        quiet = quiet_systems(resolution, every)
        hidden = set(resolution.get("linked_only") or ()) | set(
            resolution.get("carried_only") or ()
        )
        systems = [s for s in systems if s.system not in hidden]
        quiet -= hidden
    # Retired systems are counted neither done nor failed: the page says they were retired, not
    # "none needed" (review s22 diff B7); the public view names none before it knows which are
    # linked-only, as it counts none.
    shown = [] if public and resolution is None else every
    retired = sum(1 for s in shown if s.retired and s.system not in hidden)
    # The quiet systems are in the total as they are in `done`: else each would hide one
    # system still processing (review s16 claims F1). The public answer shows no count until
    # every system has answered (below), so they never show before the end.
    done = sum(1 for s in systems if s.state == "done") + len(quiet)
    failed = sum(1 for s in systems if s.state == FAILED)
    total = len(systems) + len(quiet)
    shown_at = None
    if public and resolution is not None:
        shown_at = replayed_until(resolution, systems, quiet, covering or {})
    held = shown_at is not None and iso(now or datetime.now(UTC)) < shown_at
    denial = by_sk.get(DENIAL_SK)
    status: RequestStatus
    completed_at: str | None = None
    if denial is not None:
        status = "denied"
    elif resolution is None:
        status = "received"
    elif done + failed < total or held:
        status = "processing"
    elif failed:
        status = "failed"
    else:
        status = "completed"
        stamps = [at for s in systems for j in s.jobs if (at := s.answered_at(j))]
        # A retired system settled the request when it was retired; one the public view
        # leaves out (linked-only) settles nothing it shows: its retirement would date the
        # public completion after every system shown had answered (review s22 proof P6).
        # Satisfied by earlier receipts only: complete when the resolver found them.
        stamps += ([shown_at] if shown_at else []) + settled_otherwise(every, resolution, hidden)
        completed_at = max([str(resolution.get("resolved_at") or ""), *stamps]) or None
    if public and (done + failed < total or held):
        # No progress in the public view, processing or denied with jobs in flight: a repeat
        # for a person the vendors do not hold asks fewer systems (the rest are quiet), so any
        # count of those that answered (at most 3 of 6 done before the end, where a held
        # person's reads 5 of 6) tells a stranger which (review s20 diff C1, D1); nor while
        # an earlier answer is replayed. Operators see each system.
        done = failed = 0
    answer = RequestStatusOut(
        request_id=request_id,
        status=status,
        received_at=event["received_at"],
        deadline=event["deadline"],
        completed_at=completed_at,
        systems_total=total,
        systems_done=done,
        systems_failed=failed,
        denied_at=denial.get("denied_at") if denial else None,
        denial_reason=denial.get("reason_code") if denial else None,
    )
    answer.with_calendar(stored_calendar(event), jurisdiction_stated(event))
    # One rule with the §7102 outcome, the operator record and the export (`SystemProof.
    # in_part`), restricted in the public view to types never sent for lack of a form
    # (`in_part_publicly`: a vendor's refusal is not the requester's to read); the public view
    # names none it hides, nor any before it is resolved.
    part = {
        s.system
        for s in every
        if (s.in_part_publicly if public else s.in_part) and s.system not in hidden
    }
    if public and resolution is None:
        part = set()
    return answer.with_retired(retired).with_in_part(len(part))


def not_taken(every: list[SystemProof]) -> list[Item]:
    """The systems done with part of the request (`SystemProof.in_part`), each with the
    identifier types it did not take (types only, never values): what the operator views and
    the exports list (review s26 counsel F3), by the rule the page and the §7102 outcome read."""
    return [{"system": s.system, "identifier_types": sorted(s.not_taken)}
            for s in every if s.in_part]  # fmt: skip


# Why a configured system got no job, no citation and no quiet-period entry at the request's
# resolution (`RESOLUTION.systems_skipped`, resolver/derive.py `Pass.unplanned_why`).
SKIPPED_NOTES: Final = {
    "no_identifier": "not planned: takes none of the identifier types known for this person",
    "not_opted_out": "not planned: the person is opted out of none of the purposes it serves",
    "nothing_new": "not planned: earlier jobs already carry what the person needs there, "
    "and this request asked none of its purposes",
}


def skipped_systems(resolution: Item) -> list[Item] | None:
    """The systems configured at the resolution that got no job, no citation and no quiet
    period entry (`RESOLUTION.skipped`, {reason: [system]}), by name, each with its reason and
    the line the operator views print; None for a RESOLUTION written before they were recorded
    (2026-12-03), or none yet: "not recorded"."""
    skipped = resolution.get("skipped")
    if skipped is None:
        return None
    found = [{"system": str(system), "reason": str(why),
              "note": SKIPPED_NOTES.get(str(why), f"not planned: {why}")}
             for why, systems in skipped.items() for system in systems]  # fmt: skip
    return sorted(found, key=lambda s: s["system"])


def later_views(proof: SystemProof) -> list[Item]:
    """The failed jobs of a system that later jobs delivered (`SystemProof.later`), as the
    operator record, `optout status` and the exports show them: the failed job, when the
    delivery answered (the latest covering job's `completed_at`), when the deadline watch
    recorded it, and each covering job (request id, job id, `completed_at`, purposes)."""
    return [{"job_id": r.get("job_id"), "completed_at": r.get("completed_at"),
             "recorded_at": r.get("recorded_at"),
             "delivered_by": [dict(d) for d in r.get("delivered_by") or ()]}
            for r in proof.later]  # fmt: skip


def retired_systems(every: list[SystemProof]) -> list[str]:
    """The systems retired for this request (`SystemProof.retired`: a job of it open or refused
    when an operator retired it, none of them done), by name: a request "complied with in
    whole" names them (review s30 operator F3; docs/decisions.md, "Retiring a system")."""
    return [s.system for s in every if s.retired]


def stored_calendar(event: Item) -> str | None:
    """The jurisdiction whose calendar the request's deadline was counted in, as its answer
    recorded it when it was received; None for a request stored before 2026-12-01 (counted
    under older rules: never recomputed, so an old request names no calendar it was not
    counted in, review s18 diff C1) and for any other event."""
    calendar = (event.get("response") or {}).get("deadline_jurisdiction")
    return str(calendar) if calendar else None
