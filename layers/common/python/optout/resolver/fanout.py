"""Which downstream systems get a job, for which identifiers and purposes.

A system gets a job when it accepts at least one of the cluster's identifier types and serves
at least one purpose the cluster is opted out of, restricted to the identifiers it has not
already been sent for those purposes (the `delivered` map on each identity's state item), so
a new link never resends finished work.
"""

from dataclasses import dataclass, field
from typing import Any

from optout.purposes import ALL_PURPOSES, OptOutMap, Purpose
from optout.resolver.policy import OwnState
from optout.systems import SystemConfig


@dataclass
class Member:
    """One identity of a cluster, as the resolver sees it."""

    pk: str
    id_type: str
    key: str
    value: str = field(repr=False)  # PII: keep it out of tracebacks and logs
    own: OwnState
    delivered: dict[str, list[str]] = field(default_factory=dict)  # system -> purposes sent
    stored_state: dict[str, Any] = field(default_factory=dict)  # the STATE item as read
    effective: OptOutMap = field(default_factory=dict)  # the cluster's state, once computed

    def identifier(self) -> dict[str, Any]:
        return {"type": self.id_type, "key": self.key, "value": self.value}


@dataclass
class JobPlan:
    system: SystemConfig
    purposes: list[Purpose]
    members: list[Member]


def plan_jobs(
    members: list[Member], opted: set[Purpose], systems: tuple[SystemConfig, ...]
) -> list[JobPlan]:
    plans: list[JobPlan] = []
    for system in systems:
        wanted: list[str] = [p for p in ALL_PURPOSES if p in opted and p in system.purposes]
        if not wanted:
            continue
        targets = [
            m
            for m in members
            if system.accepts(m.id_type) and set(wanted) - set(m.delivered.get(system.name, []))
        ]
        if targets:
            plans.append(JobPlan(system, [p for p in ALL_PURPOSES if p in wanted], targets))
    return plans


def mark_delivered(plan: JobPlan) -> None:
    for member in plan.members:
        sent = set(member.delivered.get(plan.system.name, ())) | set(plan.purposes)
        member.delivered[plan.system.name] = sorted(sent)
