"""Resolve one captured event: own state, links, cluster state, jobs, queue messages.

Write order is chosen so a crash at any point is repaired by the stream's retry: node
registers and links are idempotent; jobs are put with a condition (a replay creates no
duplicate) and their messages are sent before the state items record them as delivered,
so a replay after a crash re-sends at most a message the worker will recognise as done.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from optout.events import KeyedIdentifier
from optout.jobs_queue import JobQueue
from optout.observability import metrics
from optout.resolver.clusters import Caps, ClusterCache
from optout.resolver.fanout import JobPlan, Member, mark_delivered, plan_jobs
from optout.resolver.outbox import Outbox
from optout.resolver.policy import OwnState, apply_event, as_map, cluster_opted_out
from optout.store import keys
from optout.store.batch import batch_get, batch_put, put_if_absent, put_versioned
from optout.store.codec import Item
from optout.store.graph import link_items
from optout.store.table import Table
from optout.systems import SystemsConfig
from optout.timestamps import iso

MAX_NODE_RETRIES = 5


@dataclass(frozen=True)
class Resolution:
    request_id: str
    cluster_size: int
    jobs: list[str]  # system names
    links_added: int
    links_held: int


class Resolver:
    def __init__(
        self,
        table: Table,
        systems: SystemsConfig,
        queue: JobQueue,
        caps: Caps,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._table = table
        self._systems = systems
        self._queue = queue
        self._caps = caps
        self._clock = clock

    def process(self, event: Item, outbox: Outbox | None = None) -> Resolution:
        """Resolve one event. With an `outbox`, messages and state writes wait for its flush
        (one per stream batch); without one, they are flushed before returning."""
        pending = outbox if outbox is not None else Outbox()
        request_id: str = event["request_id"]
        stamp = (str(event["received_at"]), request_id)
        own_ids = [KeyedIdentifier.from_item(i) for i in event.get("identifiers", [])]
        pairs = [
            (KeyedIdentifier.from_item(link["a"]), KeyedIdentifier.from_item(link["b"]))
            for link in event.get("links", [])
        ]
        graph = ClusterCache(self._table, self._caps)
        linked, added, held = self._link(graph, pairs, request_id, stamp[0])
        # Only what this event changed is recomputed: its own identities' clusters and the
        # clusters its accepted links merged (a held link changes nothing but the hold list).
        touched = {i.pk: i for i in own_ids} | {i.pk: i for i in linked}
        self._update_nodes(touched, {i.pk for i in own_ids}, event, stamp)
        clusters = {graph.cluster(pk) for pk in touched}
        plans: dict[str, JobPlan] = {}
        members_all: list[Member] = []
        for cluster in clusters:
            members = self._members(cluster, pending)
            opted = cluster_opted_out([m.own for m in members])
            for member in members:
                member.effective = as_map(opted)
            for plan in plan_jobs(members, opted, self._systems.systems):
                if plan.system.name in plans:  # two clusters in one event (a held link)
                    plans[plan.system.name].members.extend(plan.members)
                else:
                    plans[plan.system.name] = plan
            members_all.extend(members)
        jobs = self._fan_out(request_id, plans, pending)
        self._write_states(members_all, pending)
        size = max((len(c) for c in clusters), default=0)
        put_if_absent(
            self._table,
            {"pk": keys.request_pk(request_id), "sk": keys.RESOLUTION_SK, "kind": "resolution",
             "resolved_at": iso(self._clock()), "jobs_total": len(jobs), "cluster_size": size,
             "links_added": added, "links_held": held},
        )  # fmt: skip
        if outbox is None:
            self.flush(pending)
        return Resolution(request_id, size, jobs, added, held)

    def flush(self, outbox: Outbox) -> None:
        outbox.flush(self._queue, self._table)

    # -- own state ---------------------------------------------------------------------

    def _update_nodes(
        self, touched: dict[str, KeyedIdentifier], chosen: set[str], event: Item, stamp: Any
    ) -> None:
        choices = event.get("opt_out", {})
        gpc = bool(event.get("gpc", False))
        found = batch_get(self._table, [(pk, keys.NODE_SK) for pk in touched])
        for pk, identifier in touched.items():
            current = found.get((pk, keys.NODE_SK))
            for _ in range(MAX_NODE_RETRIES):
                own = OwnState.from_item(current) if current else OwnState.empty()
                if pk in chosen:
                    own = apply_event(own, choices, gpc, stamp)
                if current is not None and own == OwnState.from_item(current):
                    break  # nothing new for this node (also: a replayed event)
                version = int(current["version"]) if current else 0
                item = {"pk": pk, "sk": keys.NODE_SK, "kind": "node", "id_type": identifier.type,
                        "key": identifier.key, "value": identifier.value, "version": version + 1,
                        "updated_at": iso(self._clock()), **own.to_item()}  # fmt: skip
                if put_versioned(self._table, item, version):
                    break
                current = batch_get(self._table, [(pk, keys.NODE_SK)]).get((pk, keys.NODE_SK))
            else:
                raise RuntimeError("identity node kept changing under the resolver")

    # -- links ---------------------------------------------------------------------------

    def _link(
        self,
        graph: ClusterCache,
        pairs: list[tuple[KeyedIdentifier, KeyedIdentifier]],
        request_id: str,
        at: str,
    ) -> tuple[list[KeyedIdentifier], int, int]:
        """Add the event's links unless they would grow a cluster past the cap (then hold)."""
        new_links: list[Item] = []
        holds: list[Item] = []
        accepted: list[KeyedIdentifier] = []
        for n, (a, b) in enumerate(pairs):
            ca = graph.cluster(a.pk)
            # A full cluster cannot take anyone new: hold without walking the other side.
            cb = graph.cluster(b.pk) if len(ca) < self._caps.max_size else frozenset({b.pk})
            if b.pk in ca:
                accepted.extend((a, b))
                if not graph.linked(a.pk, b.pk):
                    new_links.extend(link_items(a.pk, b.pk, request_id, at))
                    graph.merge(a.pk, b.pk)
                continue
            if len(ca | cb) > self._caps.max_size:
                # A shared computer must not merge a town: hold the link for a human to review.
                holds.append(
                    {"pk": keys.hold_pk(a.type, a.key), "sk": f"{request_id}#{n:05d}",
                     "kind": "hold", "a": a.pk, "b": b.pk, "cluster_a": len(ca),
                     "cluster_b": len(cb), "cap": self._caps.max_size, "held_at": at}
                )  # fmt: skip
                continue
            accepted.extend((a, b))
            new_links.extend(link_items(a.pk, b.pk, request_id, at))
            graph.merge(a.pk, b.pk)
        batch_put(self._table, new_links + holds)
        if holds:
            metrics.add_metric(name="LinksHeldForReview", unit="Count", value=len(holds))
        return accepted, len(new_links) // 2, len(holds)

    # -- cluster state and jobs ------------------------------------------------------------

    def _members(self, cluster: frozenset[str], pending: Outbox) -> list[Member]:
        wanted = [(pk, sk) for pk in cluster for sk in (keys.NODE_SK, keys.STATE_SK)]
        found = batch_get(self._table, wanted)
        members: list[Member] = []
        for pk in sorted(cluster):
            node = found.get((pk, keys.NODE_SK))
            if node is None:  # linked before its node was written: skip until it exists
                continue
            state = pending.states.get(pk) or found.get((pk, keys.STATE_SK)) or {}
            members.append(
                Member(pk, node["id_type"], node["key"], node["value"], OwnState.from_item(node),
                       dict(state.get("delivered", {})), stored_state=state)
            )  # fmt: skip
        return members

    def _fan_out(self, request_id: str, plans: dict[str, JobPlan], pending: Outbox) -> list[str]:
        now = iso(self._clock())
        for name, plan in sorted(plans.items()):
            job_id = f"{request_id}:{name}"
            job = {
                "pk": keys.request_pk(request_id), "sk": keys.job_sk(name), "kind": "job",
                "job_id": job_id, "request_id": request_id, "system": name,
                "system_type": plan.system.type, "purposes": plan.purposes,
                "identifiers": [m.identifier() for m in plan.members], "status": "pending",
                "attempts": 0, "created_at": now, "updated_at": now,
            }  # fmt: skip
            put_if_absent(self._table, job)  # a replay finds it there and only re-sends
            message = {"job_id": job_id, "request_id": request_id, "system": name}
            pending.add(plan.system.queue_key, message)
            mark_delivered(plan)
        return sorted(plans)

    def _write_states(self, members: list[Member], pending: Outbox) -> None:
        now = iso(self._clock())
        for member in members:
            before = member.stored_state
            after: Item = {
                "opt_out": member.effective,
                "gpc": member.own.gpc_on,
                "delivered": member.delivered,
            }
            if not before and not any(after["opt_out"].values()) and not after["gpc"]:
                continue  # nothing to say yet: a missing state reads as "not opted out"
            if all(before.get(k) == v for k, v in after.items()):
                continue
            state = {"pk": member.pk, "sk": keys.STATE_SK, "kind": "state",
                     "id_type": member.id_type, "updated_at": now}  # fmt: skip
            pending.states[member.pk] = state | after
