"""Which downstream systems get a job, for which identifiers and purposes.

A system gets a job when it accepts at least one of the cluster's identifier types and serves
at least one purpose the cluster is opted out of. Per identity, only the purposes that system
has neither confirmed (`done`) nor got a job in flight for (`inflight`) are wanted, so a new
link never resends finished work, a pending job is never doubled, and a job that failed for
good, or whose vendor answered "no such person" (no_record: the worker frees its marks too),
is sent again by the next event. Except, for no_record, within a quiet period after the
answer (`quiet_since`; the resolver's NO_RECORD_QUIET_HOURS, default 24): the banner posts on
every page view, and asking the vendor about a person it does not hold on each one costs
calls and rate limit and changes nothing. That identity then needs nothing from that system,
for any purpose (the vendor holds no such person at all), and the no_record job is named in
`not_asked`, never in `covered`: it is no proof. The job carries every wanted purpose of the
system; each identity's in-flight mark records exactly what it still needed (`flights`).

What is not wanted because a job already carries it (done or in flight) is still part of the
request's proof: `covered` names those jobs (the marks' `job_<purpose>`), so the request's
record can cite, per system, the receipt that satisfies it even when it needs no job of its
own. Only a job that outlives the citing request's own record is cited (`cite_until`: that
record's expiry, epoch seconds; the mark's `until_<purpose>` is the named job's expiry, written
with the mark): a purpose whose job would expire sooner, or whose mark names no expiry (marks
written before 2026-12-01), is wanted again, so the request gets its own job and receipt
(docs/decisions.md, "A cited job must outlive the request that cites it").
"""

from dataclasses import dataclass, field
from typing import Any

from optout.purposes import ALL_PURPOSES, Purpose
from optout.resolver.policy import OwnState
from optout.store.delivery import job_attribute, until_attribute
from optout.systems import SystemConfig


@dataclass
class Member:
    """One identity of a cluster, as the resolver sees it."""

    pk: str
    id_type: str
    key: str
    value: str = field(repr=False)  # PII: keep it out of tracebacks and logs
    own: OwnState
    deliveries: dict[str, dict[str, Any]] = field(default_factory=dict)  # system -> item

    def identifier(self) -> dict[str, Any]:
        return {"type": self.id_type, "key": self.key, "value": self.value}

    def carried(self, system: str, wanted: list[Purpose], cite_until: int | None) -> list[Purpose]:
        """The wanted purposes a job already carries (in flight or confirmed) and may be cited
        for: its expiry (`until_<purpose>`) is at or after `cite_until` (None: any job). A
        mark without that expiry (written before it was kept) proves nothing here: the job's
        end is unknown, so the purpose is wanted again rather than cited."""
        seen = self.deliveries.get(system, {})
        have = set(seen.get("done", ())) | set(seen.get("inflight", ()))
        if cite_until is None:
            return [p for p in wanted if p in have]
        return [p for p in wanted
                if p in have and int(seen.get(until_attribute(p)) or 0) >= cite_until]  # fmt: skip

    def still_needs(
        self, system: str, wanted: list[Purpose], cite_until: int | None = None
    ) -> list[Purpose]:
        have = set(self.carried(system, wanted, cite_until))
        return [p for p in wanted if p not in have]

    def heard_no_record(self, system: str, quiet_since: int | None) -> tuple[str, int] | None:
        """(the no_record job, when it answered, epoch seconds) when this system's vendor
        answered "no such person" for this identity at or after `quiet_since`; None when it did
        not, or when there is no quiet period (`quiet_since` None). The stamp is the worker's
        (`store.delivery.record_delivered`); a later job's mark removes it."""
        seen = self.deliveries.get(system, {})
        at, job = seen.get("no_record_at"), seen.get("no_record_job")
        if quiet_since is None or at is None or not job or int(at) < quiet_since:
            return None
        return str(job), int(at)

    def needs_now(
        self,
        system: str,
        wanted: list[Purpose],
        quiet_since: int | None,
        cite_until: int | None = None,
    ) -> tuple[list[Purpose], tuple[str, int] | None]:
        """What this identity still needs from `system` now, and the recent no_record answer
        for which it is not asked (then it needs nothing)."""
        need = self.still_needs(system, wanted, cite_until)
        heard = self.heard_no_record(system, quiet_since) if need else None
        return ([] if heard else need), heard

    def covering_jobs(
        self, system: str, wanted: list[Purpose], cite_until: int | None = None
    ) -> set[str]:
        """The jobs that carry (or carried) what this identity needs no new job for."""
        seen = self.deliveries.get(system, {})
        return {str(seen[job_attribute(p)]) for p in self.carried(system, wanted, cite_until)
                if seen.get(job_attribute(p))}  # fmt: skip

    def mark_in_flight(
        self, system: str, purposes: list[Purpose], job_id: str, until: int | None = None
    ) -> None:
        seen = self.deliveries.setdefault(system, {})
        seen["inflight"] = set(seen.get("inflight", ())) | set(purposes)
        seen.update({job_attribute(p): job_id for p in purposes})
        if until:
            seen.update({until_attribute(p): until for p in purposes})


@dataclass
class JobPlan:
    system: SystemConfig
    purposes: set[Purpose]
    needs: dict[str, tuple[Member, list[Purpose]]]  # pk -> (member, purposes it still needs)
    covered: set[str] = field(default_factory=set)  # jobs already carrying the rest
    # The no_record jobs (-> when answered, epoch seconds) for which identities that would need
    # something are not asked: the quiet period, never proof.
    not_asked: dict[str, int] = field(default_factory=dict)
    # Every purpose needed is one an earlier job carries but which ends before the citing
    # request's record: the job only renews a proof (ops/contribution.py: a §7102 repeat).
    renewal: bool = False
    # Per job of `covered`, the identities whose marks named it: what a citation of it relied
    # on (the RESOLUTION's `cited_linked` keeps those the request did not name; review s28 p1 F1).
    relied: dict[str, set[str]] = field(default_factory=dict)

    def absorb(self, other: "JobPlan") -> None:
        """Two clusters in one event: one job per system, with every purpose of both."""
        self.renewal = (self.renewal or not self.needs) and (other.renewal or not other.needs)
        self.purposes |= other.purposes
        for pk, (member, need) in other.needs.items():  # one identity in both: all it needs
            mine = self.needs[pk][1] if pk in self.needs else []
            self.needs[pk] = (member, [p for p in ALL_PURPOSES if p in mine or p in need])
        self.covered |= other.covered
        for job, pks in other.relied.items():
            self.relied.setdefault(job, set()).update(pks)
        self.not_asked.update(other.not_asked)

    def cite(self, member: Member, jobs: set[str]) -> None:
        """`member`'s marks name `jobs` for what it needs no new job for: each is cited."""
        self.covered |= jobs
        for job in jobs:
            self.relied.setdefault(job, set()).add(member.pk)

    def copy(self, needs: dict[str, tuple[Member, list[Purpose]]]) -> "JobPlan":
        """This plan in new containers, with `needs` for its identities (`merged`; a part
        of it, `parts.split_plan`)."""
        return JobPlan(self.system, set(self.purposes), needs, set(self.covered),
                       dict(self.not_asked), self.renewal,
                       {job: set(pks) for job, pks in self.relied.items()})  # fmt: skip

    def sorted_purposes(self) -> list[Purpose]:
        return [p for p in ALL_PURPOSES if p in self.purposes]


def merged(plans: list[JobPlan]) -> JobPlan:
    """One system's plans as one (`JobPlan.absorb`), in new containers: the plans given stay
    as they are (each may still be a job of its own)."""
    first, *rest = plans
    out = first.copy(dict(first.needs))
    for plan in rest:
        out.absorb(plan)
    return out


def plan_jobs(
    members: list[Member],
    opted: set[Purpose],
    systems: tuple[SystemConfig, ...],
    quiet_since: int | None = None,
    cite_until: int | None = None,
) -> list[JobPlan]:
    """`quiet_since` (epoch seconds): a no_record answer at or after it quiets its identity at
    that system; None: no quiet period (every event asks again). `cite_until` (epoch seconds,
    the citing request's record expiry): a job expiring before it is not cited, its purposes
    are planned again; None: every carrying job is cited (no expiry check)."""
    plans: list[JobPlan] = []
    for system in systems:
        wanted: list[Purpose] = [p for p in ALL_PURPOSES if p in opted and p in system.purposes]
        if not wanted:
            continue
        accepted = [m for m in members if system.accepts(m.id_type)]
        needs: dict[str, tuple[Member, list[Purpose]]] = {}
        not_asked: dict[str, int] = {}
        for member in accepted:
            need, heard = member.needs_now(system.name, wanted, quiet_since, cite_until)
            if need:
                needs[member.pk] = (member, need)
            elif heard:
                not_asked[heard[0]] = heard[1]
        plan = JobPlan(system, set(wanted), needs, not_asked=not_asked)
        for m in accepted:
            plan.cite(m, m.covering_jobs(system.name, wanted, cite_until))
        plan.renewal = bool(needs) and not any(
            m.still_needs(system.name, need) for m, need in needs.values()
        )
        if needs or plan.covered or not_asked:
            plans.append(plan)
    return plans
