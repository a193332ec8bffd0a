"""Which downstream systems get a job, for which identifiers and purposes.

A system gets a job when it accepts at least one of the cluster's identifier types and serves
at least one purpose the cluster is opted out of. Per identity, only the purposes that system
has neither confirmed (`done`) nor got a job in flight for (`inflight`) are wanted, so a new
link never resends finished work, a pending job is never doubled, and a job that failed for
good, or whose vendor answered "no such person" (no_record: the worker frees its marks too),
is sent again by the next event. The job carries every wanted purpose of the system; each
identity's in-flight mark records exactly what it still needed (`flights`).

What is not wanted because a job already carries it (done or in flight) is still part of the
request's proof: `covered` names those jobs (the marks' `job_<purpose>`), so the request's
record can cite, per system, the receipt that satisfies it even when it needs no job of its
own.
"""

from dataclasses import dataclass, field
from typing import Any

from optout.purposes import ALL_PURPOSES, Purpose
from optout.resolver.policy import OwnState
from optout.store.delivery import job_attribute
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

    def still_needs(self, system: str, wanted: list[Purpose]) -> list[Purpose]:
        seen = self.deliveries.get(system, {})
        have = set(seen.get("done", ())) | set(seen.get("inflight", ()))
        return [p for p in wanted if p not in have]

    def covering_jobs(self, system: str, wanted: list[Purpose]) -> set[str]:
        """The jobs that carry (or carried) what this identity needs no new job for."""
        seen = self.deliveries.get(system, {})
        have = set(seen.get("done", ())) | set(seen.get("inflight", ()))
        return {str(seen[job_attribute(p)]) for p in wanted
                if p in have and seen.get(job_attribute(p))}  # fmt: skip

    def mark_in_flight(self, system: str, purposes: list[Purpose], job_id: str) -> None:
        seen = self.deliveries.setdefault(system, {})
        seen["inflight"] = set(seen.get("inflight", ())) | set(purposes)
        seen.update({job_attribute(p): job_id for p in purposes})


@dataclass
class JobPlan:
    system: SystemConfig
    purposes: set[Purpose]
    needs: dict[str, tuple[Member, list[Purpose]]]  # pk -> (member, purposes it still needs)
    covered: set[str] = field(default_factory=set)  # jobs already carrying the rest

    def absorb(self, other: "JobPlan") -> None:
        """Two clusters in one event: one job per system, with every purpose of both."""
        self.purposes |= other.purposes
        self.needs.update(other.needs)
        self.covered |= other.covered

    def sorted_purposes(self) -> list[Purpose]:
        return [p for p in ALL_PURPOSES if p in self.purposes]


def plan_jobs(
    members: list[Member], opted: set[Purpose], systems: tuple[SystemConfig, ...]
) -> list[JobPlan]:
    plans: list[JobPlan] = []
    for system in systems:
        wanted: list[Purpose] = [p for p in ALL_PURPOSES if p in opted and p in system.purposes]
        if not wanted:
            continue
        accepted = [m for m in members if system.accepts(m.id_type)]
        needs = {m.pk: (m, need) for m in accepted if (need := m.still_needs(system.name, wanted))}
        covered = {job for m in accepted for job in m.covering_jobs(system.name, wanted)}
        if needs or covered:
            plans.append(JobPlan(system, set(wanted), needs, covered))
    return plans
