"""Effective state of clusters, from consistent reads: members' own choices (verified
clusters: union) plus what asserters carried in (one way, one hop), and the jobs it calls for.

Asserted edges carry opt-outs one way: a cluster that asserted an identity tells it the
cluster's *own* opt-outs (`carried` on the edge; `named_at`: when the asserter last named it);
the asserted identity's cluster counts those its own newer confirmed opt-in does not outrank
(policy.carried_counts), and nothing flows back. Carrying only own opt-outs keeps the flow one
hop, so a pass ends.
"""

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from optout.purposes import OptOutMap, Purpose
from optout.resolver.clusters import Graph
from optout.resolver.fanout import JobPlan, Member, merged, plan_jobs
from optout.resolver.outbox import Outbox
from optout.resolver.policy import OwnState, as_map, carried_counts, cluster_opted_out
from optout.store import keys
from optout.store.codec import Item
from optout.store.delivery import job_attribute, named_jobs
from optout.store.identity import Partition, refresh_expiry, write_carried
from optout.systems import SystemConfig, SystemsConfig


@dataclass
class Pass:
    """One derivation pass: every cluster reachable from `touched` along pushes."""

    graph: Graph
    systems: SystemsConfig
    now: str
    expires_at: int
    refresh_before: int  # an item expiring before this is rewritten (its expiry moves on)
    # A vendor's no_record answer at or after this (epoch seconds) quiets its identity there;
    # None: no quiet period (fanout.plan_jobs).
    quiet_since: int | None = None
    # A backfill (resolver/service.py `_backfill`): plan only, writing no state, no carried
    # opt-out and no basis (a scan that touches everyone must not refresh everyone's expiry);
    # with `resend_chain`, the marks of the planned systems count only for the purposes they
    # name one of that backfill's jobs for (the rest went to a destination since changed).
    plan_only: bool = False
    resend_chain: str | None = None
    plans: dict[tuple[str, ...], list[JobPlan]] = field(default_factory=dict)
    sizes: list[int] = field(default_factory=list)
    # A backfill's: per identity, the jobs under a request id of their own (`<id>~<hex>`: a
    # backfill step's, or rederived) its marks of the planned systems name in flight, read
    # before `resend_chain` rewrites the marks (review s14 operator 6: whether an earlier
    # backfill still carries them is the backfill's to find out, from those jobs).
    named: dict[str, set[str]] = field(default_factory=dict)
    # Configured systems retired before (system -> retired_at): their marks written by then
    # count for nothing (`before_retirement`).
    added_back: dict[str, str] = field(default_factory=dict)
    # Per cluster derived: what it is opted out of and its members' identifier types, for
    # why a configured system got no job (`unplanned_why`).
    reach: list[tuple[frozenset[str], frozenset[str]]] = field(default_factory=list)
    # The event's namings: (asserter pk, asserted pk) -> its capture time. An edge's
    # `named_at` moves only with these (`_push`), never when the asserter re-posts its choices.
    namings: dict[tuple[str, str], str] = field(default_factory=dict)
    # Per identity a carry reached: the cluster whose opt-outs it was told (it reads them).
    pushed_by: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # The requests whose jobs the marks this pass read name (a job's own request id; for
    # `<request>~<hex>`, its maker): a request found here was run before (resolver/service.py
    # `_resolve`), as its marks are written after this pass. Nothing read for it.
    marked_by: set[str] = field(default_factory=set)

    def run(self, touched: list[str], outbox: Outbox) -> None:
        queue: deque[str] = deque(touched)
        done: set[str] = set()
        while queue:
            pk = queue.popleft()
            if pk in done:
                continue
            cluster = self.graph.component(pk)
            done.update(cluster)
            parts = [self.graph.partition(m) for m in cluster]
            for target in self._derive(cluster, parts, outbox):
                # Its cluster must be derived (again) with what it was just told.
                self.pushed_by.setdefault(target, cluster)
                done.difference_update(self.graph.component(target))
                queue.append(target)

    def _derive(
        self, cluster: tuple[str, ...], parts: list[Partition], outbox: Outbox
    ) -> list[str]:
        members = [_member(p) for p in parts if p.node is not None]
        self.marked_by.update(_mark_owners(parts))
        for name, retired_at in self.added_back.items():
            for member in members:
                if before_retirement(member.deliveries.get(name), retired_at):
                    del member.deliveries[name]
        if self.plan_only:
            for member in members:
                found = _own_request_jobs(member, self.systems)
                if found:
                    self.named[member.pk] = found
        if self.resend_chain is not None:
            for member in members:
                for system in self.systems.systems:
                    mark = member.deliveries.get(system.name)
                    if mark is not None:
                        member.deliveries[system.name] = _chain_only(mark, self.resend_chain)
        own = cluster_opted_out([m.own for m in members])
        told: set[Purpose] = set()
        # A held account's carry counts for its browser's device only (its STATE and the jobs
        # naming it), never the rest of the cluster: a stranger's account logged in with
        # someone's browser id must not pin opt-outs on their email (review s31 stranger F1).
        alone: dict[str, set[Purpose]] = {}
        for part in parts:
            mine = OwnState.from_item(part.node) if part.node else OwnState.empty()
            for asserter, edge in part.asserted_by.items():
                if asserter in cluster or edge.get("withdrawn"):
                    continue  # an asserter since linked carries nothing extra; nor a rejected
                counted = carried_counts(edge.get("carried", ()), edge.get("named_at"), mine)
                if held_carry(part.pk):
                    alone.setdefault(part.pk, set()).update(counted)
                else:
                    told |= counted
        effective = own | told
        self.sizes.append(len(members))
        self.reach.append((frozenset(effective | set().union(*alone.values())),
                           frozenset(m.id_type for m in members)))  # fmt: skip
        # A job expiring before this pass's records (`expires_at`) is not cited: planned again.
        # A backfill cites nothing (it answers no request): it plans only what no job carries.
        cite_until = None if self.plan_only else self.expires_at
        self.plans[cluster] = plan_jobs(members, effective, self.systems.systems,
                                        self.quiet_since, cite_until)  # fmt: skip
        for member in members:  # the device's carried purposes: a plan of its own
            extra = alone.get(member.pk, set()) - effective
            if extra:
                self.plans[(member.pk, CARRY)] = plan_jobs(
                    [member], extra, self.systems.systems, self.quiet_since, cite_until
                )
        if self.plan_only:
            return []
        outbox.bases[cluster] = {p.pk: p.version for p in parts}
        self._keep_edges(cluster, parts)
        for part, member in zip([p for p in parts if p.node is not None], members, strict=True):
            self._state(part, member, as_map(effective | alone.get(part.pk, set())), outbox)
        return self._push(cluster, parts, own)

    def _push(
        self, cluster: tuple[str, ...], parts: list[Partition], own: set[Purpose]
    ) -> list[str]:
        carried: list[str] = sorted(own)
        changed: list[str] = []
        device_pk = keys.identity_pk("device_id", "")
        # Every edge carries (review s31 trustmerge F1: a cap here, by key order, starved a held
        # account's carry behind a kiosk's visitors' edges, losing its opt-outs on that browser).
        for part in parts:
            for target in sorted(part.asserts):
                if target in cluster:
                    continue
                edge = self.graph.partition(target).asserted_by.get(part.pk)
                if edge is None or edge.get("withdrawn"):
                    continue  # the asserted side was refused (too many asserters), or rejected
                # `named_at` is the latest naming's time, whatever order events arrive in; only
                # a request naming the identity moves it (no write when the asserter re-posts).
                named = self.namings.get((part.pk, target))
                before = edge.get("named_at")
                if named is not None and before is not None and named <= before:
                    named = None
                # The asserter is active: the edge carrying its opt-out does not lapse. Not a
                # held account's carry to a browser (an asserter that is no device): that lives
                # while the browser is seen (its own events keep it: `_keep_edges`; a login
                # there rewrites it), as its hold does; else each browser the account was ever
                # held on kept a place of its `max_asserted` for good while the account was
                # active, and its later browsers got no carry (holds38).
                # Nor does a change of the account's choices move the browser's half alone: the
                # browser's events keep the two halves by that half's expiry, and the account's,
                # walked here and counted by `_full`, lapsed while the browser was seen (review38a)
                device = part.pk.startswith(device_pk)
                keeps = bool(carried) and device
                if sorted(edge.get("carried", ())) == carried and named is None:
                    if keeps and _stale(self.refresh_before, part.asserts[target], edge):
                        self._refresh_assertion(part.pk, target, part.asserts[target], edge)
                    continue
                if keeps and _stale(self.refresh_before, part.asserts[target]):
                    self._refresh_assertion(part.pk, target, part.asserts[target], edge)
                told = write_carried(self.graph.table, part.pk, target, carried, named,
                                     self.expires_at, moves_expiry=device)  # fmt: skip
                if not told and named is not None and sorted(edge.get("carried", ())) != carried:
                    # A later naming landed meanwhile (or the edge is gone): the set alone
                    told = write_carried(self.graph.table, part.pk, target, carried, None,
                                         self.expires_at, moves_expiry=device)  # fmt: skip
                self.graph.forget(target)
                if told:
                    changed.append(target)
        return changed

    def _keep_edges(self, cluster: tuple[str, ...], parts: list[Partition]) -> None:
        """An identity active now keeps what makes up its opt-out: the cluster's links, its
        members' nodes, and the assertion edges carrying an opt-out into it, are refreshed like
        its own node (else a link, refreshed only when the same pair is linked again, and a
        linked member's node, refreshed only when that identity is named, expire: a device that
        never logs in again would lose, 1095 days on, the opt-out of the email it was linked to).
        Only items near expiry are written (links and nodes: before `keep_before` below;
        assertion edges: before `refresh_before`). Never in a backfill's plan-only pass (it
        returns before this)."""
        by_pk = {p.pk: p for p in parts}
        # No link or member node may expire before the cluster's longest-lived node: a member
        # whose own choice changed (its node rewritten, expiry a full retention on) would
        # otherwise outlive the link and the linked node its opt-out came from, and its next
        # event, read without them, would write its kept STATE "not opted out" (review s15
        # keep 2). Items written within a day of that node are left (a burst of one person's
        # events must not rewrite its links each time: the bench's WRU guard); TTL deletes
        # within days of an expiry anyway.
        longest = max((int(p.node.get("expires_at", 0)) for p in parts if p.node), default=0)
        keep_before = max(self.refresh_before, min(longest, self.expires_at) - KEEP_SLACK)
        for part in parts:
            # A member's node holds its own choices: a member gone, its opt-out goes with it.
            # (The event's own identities' nodes were refreshed before this; these are the
            # linked ones the event did not name.)
            self._keep_node(part, keep_before)
            for other, link in part.links.items():
                back = by_pk[other].links.get(part.pk) if other in by_pk else None
                if other < part.pk or back is None:
                    continue  # each pair once; a half link (its other item gone) lapses
                if _stale(keep_before, link, back):
                    items = [(part.pk, keys.edge_sk(keys.LINK_PREFIX, other)),
                             (other, keys.edge_sk(keys.LINK_PREFIX, part.pk))]  # fmt: skip
                    if refresh_expiry(self.graph.table, items, self.expires_at):
                        link["expires_at"] = back["expires_at"] = self.expires_at
            for asserter, edge in part.asserted_by.items():
                if asserter in cluster or not edge.get("carried") or edge.get("withdrawn"):
                    continue  # an edge carrying nothing carries no opt-out to keep
                if _stale(self.refresh_before, edge):
                    self._refresh_assertion(asserter, part.pk, None, edge)

    def _keep_node(self, part: Partition, keep_before: int) -> None:
        node = part.node
        if node is None or not _stale(keep_before, node):
            return
        if refresh_expiry(self.graph.table, [(part.pk, keys.NODE_SK)], self.expires_at):
            node["expires_at"] = self.expires_at

    def _refresh_assertion(
        self, asserter: str, asserted: str, out_edge: Item | None, in_edge: Item
    ) -> None:
        items = [(asserter, keys.edge_sk(keys.ASSERTS_PREFIX, asserted)),
                 (asserted, keys.edge_sk(keys.ASSERTED_PREFIX, asserter))]  # fmt: skip
        if refresh_expiry(self.graph.table, items, self.expires_at):
            for edge in (out_edge, in_edge):
                if edge is not None:
                    edge["expires_at"] = self.expires_at

    def _state(self, part: Partition, member: Member, opt_out: OptOutMap, out: Outbox) -> None:
        # An earlier event of this stream batch may have a state for it waiting in the outbox:
        # that, not the table's, is what this derivation follows (else the batch's flush would
        # write the earlier event's state over this one's, which equals the table's).
        pending = out.states.get(part.pk)
        before = pending if pending is not None else (part.state or {})
        after: Item = {"opt_out": opt_out, "gpc": member.own.gpc_on}
        # An opt-out has no end (Civ. Code §1798.120(d)): a STATE that opts out of anything is
        # kept without `expires_at` (no TTL) until an opt-in; one written with an expiry (before
        # this rule) is rewritten without it. A missing `expires_at` is fresh.
        kept = any(opt_out.values())
        if not before and not kept and not after["gpc"]:
            return  # nothing to say yet: a missing state reads as "not opted out"
        expiry = before.get("expires_at")
        fresh = expiry is None or (not kept and int(expiry) >= self.refresh_before)
        if fresh and all(before.get(k) == v for k, v in after.items()):
            return
        expires = {} if kept else {"expires_at": self.expires_at}
        out.states[part.pk] = {"pk": part.pk, "sk": keys.STATE_SK, "kind": "state",
                               "id_type": member.id_type, "updated_at": self.now,
                               **expires, **after}  # fmt: skip

    def unplanned_why(self, system: SystemConfig) -> str:
        """Why a configured system got no job, no citation and no quiet-period entry from this
        pass (the RESOLUTION's `skipped`): `not_opted_out`, no cluster derived is opted
        out of a purpose it serves (the word a re-open's `not_planned` uses); `no_identifier`,
        none of those that are has an identifier type it takes; else `nothing_new`, what they
        need from it earlier jobs carry (or its vendor answered "no such person" within the
        quiet period), and the request asked none of its purposes, so none is cited."""
        served = [types for opted, types in self.reach if opted & set(system.purposes)]
        if not served:
            return "not_opted_out"
        if not any(system.accepts(t) for types in served for t in types):
            return "no_identifier"
        return "nothing_new"

    def merged_plans(self) -> dict[str, JobPlan]:
        """One plan per system for every cluster of the pass: its purposes are the union of
        the clusters'. Never a job's plan when the pass derived several people (review s30
        operator F1): the resolver makes jobs from `request_plans` or `plans_by_purposes`."""
        return self._plans_grouped(lambda _, plan: ()).get((), {})

    def plans_by_purposes(self) -> dict[tuple[Purpose, ...], dict[str, JobPlan]]:
        """Per purpose set, one plan per system for the clusters with exactly that set there:
        a job made from one carries each of its identities' own purposes, never another
        person's (a backfill step's jobs; review s30 operator F1)."""
        return self._plans_grouped(lambda _, plan: tuple(plan.sorted_purposes()))

    def plans_by_owner(
        self, owner_of: Callable[[tuple[str, ...]], str]
    ) -> dict[tuple[str, tuple[Purpose, ...]], dict[str, JobPlan]]:
        """`plans_by_purposes`, split by `owner_of` each plan's cluster: jobs the flush makes
        are each one request's, the one whose derivation reached those clusters."""
        return self._plans_grouped(
            lambda cluster, plan: (owner_of(cluster), tuple(plan.sorted_purposes()))
        )

    def clusters(self) -> list[tuple[str, ...]]:
        """Every cluster this pass derived (a held carry's own plan is its device's)."""
        return [key for key in self.plans if key[-1] != CARRY]

    def request_plans(
        self,
    ) -> tuple[dict[str, JobPlan], dict[tuple[Purpose, ...], dict[str, JobPlan]]]:
        """A request's jobs: per system, the plan of its first purpose set (in sorted order:
        the same on every run of the event), the request's own job `<request>:<system>`; and
        per further purpose set, its systems' plans, each a further job of the request's
        (`<request>~<hex>:<system>`). A request naming one person has one set per system:
        nothing further. Several unlinked people (two named identifiers, two link pairs, the
        ends of an assertion) each get their own cluster's purposes, never the union."""
        first: dict[str, JobPlan] = {}
        more: dict[tuple[Purpose, ...], dict[str, JobPlan]] = {}
        for purposes, by_system in sorted(self.plans_by_purposes().items()):
            for name, plan in sorted(by_system.items()):
                if name in first:
                    more.setdefault(purposes, {})[name] = plan
                else:
                    first[name] = plan
        return first, more

    def _plans_grouped(
        self, group: Callable[[tuple[str, ...], JobPlan], Any]
    ) -> dict[Any, dict[str, JobPlan]]:
        """The pass's plans by `group`, then by system, each system's merged (`fanout.merged`:
        in new containers, so the pass's own plans are never changed by a grouping)."""
        found: dict[Any, dict[str, list[JobPlan]]] = {}
        for cluster, plans in self.plans.items():
            for plan in plans:
                by_system = found.setdefault(group(cluster, plan), {})
                by_system.setdefault(plan.system.name, []).append(plan)
        return {key: {name: merged(plans) for name, plans in by_system.items()}
                for key, by_system in found.items()}  # fmt: skip


# The key of a device's plan for what only its held carries tell it (`Pass.plans`).
CARRY = "carry"


def held_carry(asserted_pk: str) -> bool:
    """Whether edges into this identity are held accounts' carries: only a held login's
    (resolver/service.py `_link`) asserts a device; a typed naming never does (capture asserts
    email, phone and customer id only; so does an import)."""
    return asserted_pk.startswith(keys.identity_pk("device_id", ""))


# Seconds: how much sooner than its cluster's longest-lived node an item may expire.
KEEP_SLACK = 86_400


def _stale(refresh_before: int, *items: Item) -> bool:
    """Whether any of these items expires before `refresh_before` (no expiry: never)."""
    return any(
        item.get("expires_at") is not None and int(item["expires_at"]) < refresh_before
        for item in items
    )


def _member(part: Partition) -> Member:
    node = part.node or {}
    return Member(part.pk, node["id_type"], node["key"], node["value"], OwnState.from_item(node),
                  {s: dict(d) for s, d in part.deliveries.items()})  # fmt: skip


def before_retirement(mark: Item | None, retired_at: str | None) -> bool:
    """A mark last written at or before its system's retirement: every job it names was made
    for the retired contract (a mark is written after its job). Once the name is configured
    again it proves nothing, and a new job takes its purposes (`delivery.mark_flight`)."""
    if not mark or retired_at is None:
        return False
    return str(mark.get("updated_at") or "") <= retired_at


def _mark_owners(parts: list[Partition]) -> set[str]:
    """The requests whose jobs these identities' marks name, in flight or freed
    (`Pass.marked_by`)."""
    found: set[str] = set()
    for part in parts:
        for mark in part.deliveries.values():
            for job in named_jobs(mark).values():
                job_request = job.rpartition(":")[0]
                found.add(keys.made_by(job_request) or job_request)
    return found


def _own_request_jobs(member: Member, systems: SystemsConfig) -> set[str]:
    """The jobs under a request id of their own that a member's marks name in flight."""
    found: set[str] = set()
    for system in systems.systems:
        mark = member.deliveries.get(system.name) or {}
        for purpose in mark.get("inflight", ()):
            job = str(mark.get(job_attribute(str(purpose))) or "")
            if keys.made_by(job.partition(":")[0]) is not None:
                found.add(job)
    return found


def _chain_only(mark: Item, chain: str) -> Item:
    """A mark as a `--resend` backfill reads it: the purposes in flight for one of its own jobs
    (ids starting with `chain`), with those jobs' names; no `done`, no no_record stamp."""
    prefix = job_attribute("")
    mine = {str(k)[len(prefix) :]: v for k, v in mark.items()
            if str(k).startswith(prefix) and str(v).startswith(chain)}  # fmt: skip
    inflight = {str(p) for p in mark.get("inflight", ()) if p in mine}
    return {"inflight": inflight, **{job_attribute(p): mine[p] for p in inflight}}
