"""Resolve one captured event: own registers, edges, cluster states, jobs, queue messages.

Two phases per event. First the inputs: node registers (versioned puts), verified links and
asserted edges (transactions that also bump the nodes' versions). Then the derivation, from
strongly consistent reads made after those writes (resolver/derive.py), and the jobs, each
written before its identities' in-flight marks, each a conditional write (`_make_job`).

Concurrency (docs/decisions.md, "Validate after write"): two resolvers can derive one cluster
at once from different snapshots, and the later STATE write could be the staler. So every
derivation records its basis (the node versions it read) and the flush, after writing states,
reads those versions again; a cluster whose versions moved is derived again, until none does.
Whoever wrote an input derives after writing it, so the last check always sees every input.
"""

import json
import uuid
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache, partial
from itertools import combinations
from time import monotonic
from typing import Any, Final

from botocore.exceptions import BotoCoreError, ClientError

from optout.events import CapturedEvent, KeyedIdentifier, Role, default_role, is_request
from optout.jobs_queue import JobQueue, job_message
from optout.observability import logger, metrics
from optout.ops import backfills
from optout.ops.keys import DENIAL_SK
from optout.ops.reminders import remind_jobs, remind_now
from optout.purposes import ALL_PURPOSES, OptOutMap, Purpose
from optout.resolver import parts as job_parts
from optout.resolver.clusters import Caps, Graph
from optout.resolver.derive import CARRY, Pass, before_retirement
from optout.resolver.fanout import JobPlan, Member, merged
from optout.resolver.outbox import Outbox
from optout.resolver.parts import PARTS, job_bytes, split_plan
from optout.resolver.policy import OwnState, Stamp, allowed, apply_event
from optout.store import delivery, holds, keys, query
from optout.store.batch import (
    batch_get,
    batch_put,
    get_item,
    put,
    put_once,
    put_versioned,
)
from optout.store.busy import error_code
from optout.store.codec import Item, deserialize
from optout.store.events import get_event, put_event
from optout.store.identity import (
    count_asserters,
    node_versions,
    withdraw_carry,
    write_assertion,
    write_link,
)
from optout.store.requests import (
    PROOF_RULE,
    cite_more,
    mark_rederived,
    marked_requests,
    marker_id,
    note_under_way,
    put_resolution,
    rederived_markers,
)
from optout.store.retired import last_retired_at, made_at_or_before
from optout.store.table import Table
from optout.sweep import redrive, redrive_refs, reopen_refs, resend_refs
from optout.systems import SystemsConfig
from optout.timestamps import iso

MAX_NODE_RETRIES = 5
MAX_PLAN_RETRIES = 3
MAX_VALIDATION_ROUNDS = 5
# Jobs of other requests a resolution cites per system as its proof (normally one or two;
# the status route reads them all in one BatchGetItem).
MAX_COVERING_JOBS = 10
DAY = 86_400
# Jobs expire this many days after the retention (RecordRetentionDays): a request that needs
# no job of its own cites an earlier job only if that job was made at most this long before
# it, else it makes its own (docs/decisions.md, "A cited job must outlive the request that
# cites it"). The price: an active person's systems get their opt-out again about once per
# window, and a job item is kept this much longer than its request's record.
CITE_WINDOW_DAYS = 30
# A replay event goes through at most this many failed-job listings (about 9 AWS calls each,
# the later-delivery check's read of the marks included; some 6 more for one later jobs
# delivered, which is then recorded and not sent: 200 take some 10 s of the resolver's 60)
# and sends them REPLAY_CHUNK at a time (one SendMessageBatch); a follow-up event carries on
# with the rest.
MAX_REPLAY_JOBS = 200
REPLAY_CHUNK = 10
REPLAY_NAMESPACE = uuid.UUID("5d0f6a52-8a3e-4c1e-9b7a-6f2d1c3b4a59")  # follow-up ids
REDRIVE_NAMESPACE = uuid.UUID("0c6f3f0e-2b1d-4a8e-9f47-3d5be7a1c902")  # follow-up redrive ids
# A backfill event scans the table's items BACKFILL_PAGE at a time (a Scan's Limit counts the
# items read, before the filter keeps the STATE ones), derives at most BACKFILL_CLUSTERS
# opted-out identities' clusters (some 3 AWS calls each) and stops once its one job carries
# BACKFILL_IDENTITIES identities (a cluster has at most 99: the job item stays far below
# DynamoDB's 400 KB); a follow-up event carries on from its cursor.
BACKFILL_PAGE = 500
BACKFILL_CLUSTERS = 1000
BACKFILL_IDENTITIES = 200
STATE_SCAN = ("pk", "sk", "opt_out")  # the attributes a backfill's Scan reads (and may read)
BACKFILL_NAMESPACE = uuid.UUID("9b8d2c41-7e35-4f0a-8c6d-2e1f5a4b3c70")  # follow-ups and job ids
ACCOUNT_HOLD_NAMESPACE = uuid.UUID("3e7a9c15-4b2f-4d68-a0e1-8f5c2b7d9a43")  # a pair's hold id
# A request's further jobs (`_request_jobs`): `<request>~<hex>`, the hex from the request id and
# the purpose set, so every run of the event (a stream retry, the sweep's redrive) finds them.
SPLIT_NAMESPACE = uuid.UUID("6a1d4e8b-3c7f-4b2a-9e05-d8f1c2a7b364")
# The `REDERIVED#<request>~split` marker naming them before they are made (its `kind`).
SPLIT_MARK = keys.SPLIT_MARK


@dataclass(frozen=True)
class Resolution:
    request_id: str
    cluster_size: int
    jobs: list[str]  # system names
    links_added: int
    links_held: int
    assertions_added: int = 0
    replayed: int = 0
    further: int = 0  # the request's further jobs (`jobs` names each system once)


@dataclass(frozen=True)
class _OwnJobs:
    """What `_request_jobs` made and found for one request."""

    systems: list[str]  # the systems given a job of the request's (its own or a further one)
    split: dict[str, list[str]]  # per system, the further jobs made (`<request>~<hex>:<system>`)
    covered: dict[str, list[str]]  # per system, other requests' jobs cited as its proof
    relied: set[str]  # the identities whose marks named those cited jobs
    plans: dict[str, JobPlan]  # per system, its plans together (what the record reads)
    own: Callable[[str], bool]  # a job id of the request's own (made or not): never cited
    # per system, the purposes of an earlier run's further jobs this run named but did not
    # plan (`_made_before`): the record counts them as the request's (`_carried_only`)
    earlier: dict[str, set[Purpose]] = field(default_factory=dict)


@dataclass(frozen=True)
class _Claim:
    """One identifier of the event, and what the event may do to its own registers."""

    identifier: KeyedIdentifier
    choices: OptOutMap
    gpc: bool


class _DeniedMeanwhile(Exception):
    """A re-open found its request denied after it stored a job (`Resolver._unless_denied`)."""


class Resolver:
    def __init__(
        self,
        table: Table,
        systems: SystemsConfig,
        queue: JobQueue,
        caps: Caps,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        retention_days: int = 1095,
        no_record_quiet_hours: int = 24,
        cite_window_days: int = CITE_WINDOW_DAYS,
    ) -> None:
        self._table = table
        self._systems = systems
        self._queue = queue
        self._caps = caps
        self._clock = clock
        self._retention = retention_days
        # After a vendor's "no such person", that identity is not asked there again for this
        # long (0: every event asks again). docs/decisions.md, "A no_record answer quiets that
        # identity for a day".
        self._quiet_hours = no_record_quiet_hours
        self._cite_window = cite_window_days
        self._added_back: dict[str, str] | None = None  # read once per container

    # -- one event -------------------------------------------------------------------------

    def process(
        self, event: Item, outbox: Outbox | None = None, deadline: float | None = None
    ) -> Resolution:
        """Resolve one event. With an `outbox`, messages and state writes wait for its flush
        (one per stream batch); without one, they are flushed (and checked) before returning.
        `deadline` (a time.monotonic() instant) bounds a replay: none of its jobs starts after
        it, and a follow-up event carries on."""
        pending = outbox if outbox is not None else Outbox()
        request_id: str = event["request_id"]
        operation = event.get("operation") or {}
        if event.get("event_type") == "replay":
            outcome = self._replay(event, pending, deadline)
        elif event.get("event_type") == "redrive":
            outcome = self._redrive(request_id, operation, pending, deadline)
        elif event.get("event_type") == "retire":  # the RETIRED item is the change (retire.py)
            self._record(pending, request_id, {"jobs_total": 0, "system": operation["system"]})
            outcome = Resolution(request_id, 0, [], 0, 0)
        elif event.get("event_type") == "backfill":
            outcome = self._backfill(event, pending, deadline)
        else:
            outcome = self._resolve(event, request_id, operation, pending)
        if outbox is None:
            self.flush(pending)
        return outcome

    def _resolve(
        self, event: Item, request_id: str, operation: dict[str, Any], pending: Outbox
    ) -> Resolution:
        stamp: Stamp = (str(event["received_at"]), request_id)
        at = iso(self._clock())
        claims = self._claims(event)
        pairs = [(KeyedIdentifier.from_item(lk["a"]), KeyedIdentifier.from_item(lk["b"]))
                 for lk in event.get("links", [])]  # fmt: skip
        asserts = [(KeyedIdentifier.from_item(e["from"]), KeyedIdentifier.from_item(e["to"]))
                   for e in event.get("asserts", [])]  # fmt: skip
        hold = None
        if event.get("event_type") == "hold_release":
            hold = holds.get_hold(self._table, keys.hold_sk_of(str(operation.get("hold_id"))),
                                  consistent=True)  # fmt: skip
            pair = self._held_pair(hold) if hold and _releasable(hold, request_id) else None
            pairs, hold = ([pair], hold) if pair else ([], None)
        rejected = event.get("event_type") == "hold_reject"
        withdrawn = self._withdraw(operation, at) if rejected else []
        ends = {i.pk: i for pair in pairs + asserts for i in pair}
        denial = (keys.request_pk(request_id), DENIAL_SK) if is_request(event) else None
        go, rerun = self._update_nodes(claims, ends, stamp, denial)
        if not go:
            return self._denied(request_id, pending)
        graph = Graph(self._table, self._caps)
        login = event.get("event_type") in ("consent", "opt_out")  # links from a browser token
        linked, added, held, carry = self._link(graph, pairs, request_id, at,
                                                forced=hold is not None, login=login)  # fmt: skip
        if hold is not None:
            holds.decide(self._table, hold, "released", at)
        # The held account's one-way edge to its browser is no naming: undated, it yields to
        # no opt-in made on that browser (over-honouring; docs/decisions.md, "A second account
        # on one browser is held"), and a later login writes nothing for it.
        assertions, late = self._carry(graph, asserts, carry, held, request_id, at, stamp[0])
        touched = [c.identifier.pk for c in claims] + [i.pk for i in linked] + withdrawn + late
        touched += [i.pk for pair in asserts for i in pair]
        derivation = self._pass()
        derivation.namings = {(source.pk, target.pk): stamp[0] for source, target in asserts}
        derivation.run(list(dict.fromkeys(touched)), pending)
        pending.note_derived(request_id, derivation.clusters(), set(touched))
        # A re-run, too, when a mark the pass read names one of this request's jobs: every
        # register naming it may have changed since (an opt-in, a later request), while the
        # marks of the jobs it made still name them (review s32 merges F4). Marks are written
        # only after this point, so a first run never meets one; nothing more is read.
        rerun = rerun or request_id in derivation.marked_by
        # Earlier receipts are cited only for what this request asked itself: a request that
        # names someone else's identifier and asks nothing must not learn, from its own status,
        # which systems already hold that person's opt-out.
        asked = {p for p, chosen in (event.get("opt_out") or {}).items() if chosen is True}
        where = jurisdictions_of(event)
        pending.jurisdictions.update(where)  # for jobs the batch's flush makes (rederived)
        chosen = str(event["received_at"])
        pending.note_choice(chosen)
        own = self._request_jobs(request_id, derivation, pending, asked, where, chosen,
                                 rerun=rerun)  # fmt: skip
        jobs, covered, relied, plans = own.systems, own.covered, own.relied, own.plans
        if jobs and is_request(event):  # the flush reads its denial before it sends them
            pending.under_way.setdefault(request_id, set()).update(jobs)
        # The identities not named whose marks the citations came from (the person's, reached
        # through a link): a cited job is proof only for those and the named ones (status.py
        # `SystemProof.proves`, review s28 p1 F1). Kept in this write; usually none or one.
        through = sorted(relied - {c.identifier.pk for c in claims})
        quiet = _not_asked(own.own, plans, asked)
        # Jobs that only renew a proof ending before this request's record (a visit ~monthly)
        renewed = [name for name in jobs if name in plans and plans[name].renewal]
        size = max(derivation.sizes, default=0)
        hidden = self._linked_only(event, claims, [*jobs, *covered, *quiet])
        carried = _carried_only(event, plans, jobs, asked, hidden, own.earlier)
        # Every configured system is in one of: its own job, `covered`, `not_asked`, or this,
        # by why ({reason: [system]}, compact: a RESOLUTION over 1 KB bills a second write
        # unit), with the systems file's fingerprint (review s30 operator F2: counsel shows a
        # request reached every system that holds the person's data). Written even when
        # empty: absent means "not recorded" (before 2026-12-03).
        skipped: dict[str, list[str]] = {}
        for system in self._systems.systems:
            if system.name not in {*jobs, *covered, *quiet}:
                skipped.setdefault(derivation.unplanned_why(system), []).append(system.name)
        config = self._systems.fingerprint
        self._record(pending, request_id, {"jobs_total": len(jobs), "cluster_size": size,
                                  "skipped": {why: sorted(names)
                                              for why, names in sorted(skipped.items())},
                                  **({"systems_sha256": config} if config else {}),
                                  "proof_rule": PROOF_RULE,
                                  "links_added": added, "links_held": len(held),
                                  "assertions_added": assertions,
                                  **({"covered": covered} if covered else {}),
                                  **({"split_jobs": own.split} if own.split else {}),
                                  **({"cited_linked": through} if through else {}),
                                  **({"not_asked": quiet} if quiet else {}),
                                  **({"renewed": renewed} if renewed else {}),
                                  **({"linked_only": hidden} if hidden else {}),
                                  **({"carried_only": carried} if carried else {})})  # fmt: skip
        further = sum(len(ids) for ids in own.split.values())
        return Resolution(request_id, size, jobs, added, len(held), assertions, further=further)

    def _linked_only(self, event: Item, claims: list[_Claim], reached: list[str]) -> list[str]:
        """Systems this consumer request reaches only through identifiers linked to the ones it
        named: its public status leaves them out, or a stranger's opt-out naming someone's
        email would learn from the count whether that email has a customer id or a browser."""
        if event.get("event_type") not in ("consent", "opt_out"):
            return []
        named = {c.identifier.type for c in claims}
        return sorted(
            s.name
            for s in self._systems.systems
            if s.name in reached and not any(s.accepts(t) for t in named)
        )

    def flush(self, outbox: Outbox) -> None:
        """Send, write states, then check every derivation's basis; derive again what moved.
        The events' RESOLUTIONs come last, when nothing moved: a flush that raises leaves its
        events unresolved, for the stream's retry or, once Lambda gives up, the sweep."""
        self._denied_meanwhile(outbox)
        bases = dict(outbox.bases)
        outbox.flush(self._queue, self._table)
        outbox.bases.clear()
        for _ in range(MAX_VALIDATION_ROUNDS):
            pks = sorted({pk for basis in bases.values() for pk in basis})
            now = node_versions(self._table, pks) if pks else {}
            moved = [
                c for c, basis in bases.items() if any(now[pk] != v for pk, v in basis.items())
            ]
            if not moved:
                self._resolved(outbox)
                return
            metrics.add_metric(name="StatesRederived", unit="Count", value=len(moved))
            again = Outbox()
            derivation = self._pass()
            derivation.run([cluster[0] for cluster in moved], again)
            bases = dict(again.bases)
            batch_put(self._table, list(again.states.values()))
            self._rederived_jobs(derivation, again, outbox)
        raise RuntimeError("cluster kept changing under the resolver; the stream retries")

    def _denied_meanwhile(self, outbox: Outbox) -> None:
        """The batch's requests denied while they were resolved: the denial landed after the
        resolver's first read of it (`_update_nodes`), and their jobs are made. They go on, as
        any job made before a denial, and the denial's record names their systems
        (`systems_under_way`), so the record says what the deny's answer may not have known.
        One strongly consistent BatchGetItem of the requests' `DENIAL` keys per flush that
        sends a request's jobs, after every job of the batch is stored and before any is sent:
        a denial this read misses was written after the jobs, and the deny route's own read,
        made after its write, finds them (ops/denial.py). So either way the record names every
        system a denied request's jobs went to (docs/decisions.md, "A denial landing while the
        request is resolved")."""
        wanted = {(keys.request_pk(r), DENIAL_SK): r for r in sorted(outbox.under_way)}
        if not wanted:
            return
        found = batch_get(self._table, list(wanted), consistent=True, fields=("kind",))
        for key in sorted(found):
            request_id = wanted[key]
            systems = sorted(outbox.under_way[request_id])
            note_under_way(self._table, request_id, DENIAL_SK, systems)
            logger.info("request denied while resolved: its jobs go on", request_id=request_id,
                        systems=systems)  # fmt: skip
        outbox.under_way.clear()

    def _rederived_jobs(self, derivation: Pass, again: Outbox, outbox: Outbox) -> None:
        """Jobs for what a derivation made again in the flush calls for: the states it wrote
        can say opted out where no job carries it yet (an identity linked, with a stale view
        of what was carried to it, while this batch's derivation went stale). They are made
        under a request id of their own, `<a request of this batch>~<random>`: the batch's
        events already have their one job per system, and a job is never widened once it may
        have been sent. Sent at once: the batch's outbox is already flushed.

        They have no EVENT, so the sweep (which finds requests by their EVENT's day) would not
        look at them: a marker in the owner's partition (`REDERIVED#<request id>`) names them,
        and the sweep checks them whenever it checks the owner. A job over the item bound is
        made as parts (`_by_size`), each under a request id of its own that the marker's
        `request_ids` names; a job under it writes the marker as before, nothing more.

        The owner is the batch's request whose derivation reached those clusters (it named or
        linked one of their identities, else its carry told them), never just the batch's
        first: an export names the owner as the job's origin, which must be a request the
        person's state reads, not another person's (review s31 last F1 (c))."""
        owner_of = partial(_deriver, outbox.derived_by, derivation.pushed_by)
        # One job per owner and purpose set: the clusters derived again may be different
        # people's (the batch's events), and each is sent its own purposes, never the union
        # (as a backfill step's; review s30 operator F1). One set (the usual case) costs what
        # one job did.
        groups = [(owner, plans)
                  for (owner, _), by_system in sorted(derivation.plans_by_owner(owner_of).items())
                  if (plans := {n: p for n, p in by_system.items() if p.needs})]  # fmt: skip
        if not groups:
            return
        # Made for the batch's requests together: each of their jurisdictions (a superset of
        # this cluster's when the batch holds other people's requests too).
        where = sorted(outbox.jurisdictions)
        refs: list[tuple[str, str]] = []
        for owner, plans in groups:
            request_id = keys.own_request_id(owner or "rederived", uuid.uuid4().hex[:12])
            # A job over the item bound is made as parts, as a request's own (`_by_size`):
            # `<owner>~<hex>` each, the hex from this id, the purposes and (part, of)
            by_request = self._by_size(request_id, {request_id: plans}, where,
                                       outbox.chosen_at)  # fmt: skip
            named = {r: sorted(p) for r, p in by_request.items() if p}
            if owner:  # before the jobs: a resolver dying between them leaves nothing unseen
                put(self._table, {"pk": keys.request_pk(owner),
                                  "sk": keys.rederived_sk(request_id), "kind": "rederived",
                                  "request_id": request_id, "systems": sorted(plans),
                                  # parts: every id the sweep checks (`marked_requests`),
                                  # and which system each holds (`proof.marked_jobs`)
                                  **({"request_ids": set(named),
                                      "jobs": {f"{r}:{n}" for r, ns in named.items() for n in ns}}
                                     if list(named) != [request_id] else {}),
                                  "expires_at": self._expires()})  # fmt: skip
            if named:  # the watch's daily look past the owner's last checkpoint (23 h)
                batch_put(self._table, [remind_jobs(request_id, set(named), self._clock(),
                                                    self._expires())])  # fmt: skip
            for job_request in named:
                made, _, _ = self._fan_out(job_request, by_request[job_request], again, set(),
                                           jurisdictions=where,
                                           chosen_at=outbox.chosen_at)  # fmt: skip
                refs += [("job", f"{job_request}:{name}") for name in made]
        try:
            for queue_key, messages in sorted(again.messages.items()):
                self._queue.send(queue_key, messages)
        except (ClientError, BotoCoreError, RuntimeError):  # RuntimeError: entries SQS refused
            # No request of theirs for the sweep to find, and the retried batch may not derive
            # them again: a redrive event names them, and its resolver sends them. BotoCoreError:
            # a timeout or a failed connection after the client's retries is the same refusal.
            redrive(self._table, refs, self._clock(), self._retention)
            raise
        metrics.add_metric(name="JobsRederived", unit="Count", value=len(refs))
        logger.info("jobs made after a concurrent change", jobs=[job for _, job in refs])

    # -- inputs ------------------------------------------------------------------------------

    def _claims(self, event: Item) -> list[_Claim]:
        choices: OptOutMap = event.get("opt_out", {})
        gpc = bool(event.get("gpc", False))
        confirmed = bool(event.get("confirm_opt_in", False))
        found: list[_Claim] = []
        for raw in event.get("identifiers", []):
            role: Role = raw.get("role") or default_role(raw["type"])
            mine, signal = allowed(role, choices, gpc, confirmed)
            found.append(_Claim(KeyedIdentifier.from_item(raw), mine, signal))
        return found

    def _update_nodes(
        self,
        claims: list[_Claim],
        ends: dict[str, KeyedIdentifier],
        stamp: Stamp,
        denial: tuple[str, str] | None = None,
    ) -> tuple[bool, bool]:
        """Registers of the event's identities; every edge end gets a node before its edge.
        `denial`: a request's DENIAL key, read in the same strongly consistent batch as the
        nodes (one more read unit, no more calls): False, and nothing written, when an operator
        denied the request before the resolver made any job of it (`_denied_first`). Then
        whether an earlier run of the event wrote a node already (`_begun`: a re-run)."""
        wanted: dict[str, tuple[KeyedIdentifier, _Claim | None]] = {
            pk: (i, None) for pk, i in ends.items()
        }
        wanted.update({c.identifier.pk: (c.identifier, c) for c in claims})
        asked = [(pk, keys.NODE_SK) for pk in wanted] + ([denial] if denial else [])
        found = batch_get(self._table, asked, consistent=True)
        if denial is not None and denial in found and self._stops_denied(denial[0], found, stamp):
            return False, True
        rerun = _begun(found.values(), stamp[1])
        kept = self._kept_states([pk for pk in wanted if (pk, keys.NODE_SK) not in found])
        for pk, (identifier, claim) in wanted.items():
            current = found.get((pk, keys.NODE_SK))
            for _ in range(MAX_NODE_RETRIES):
                own = OwnState.from_item(current) if current else kept.get(pk, OwnState.empty())
                if claim is not None:
                    own = apply_event(own, claim.choices, claim.gpc, stamp)
                fresh = current is not None and current.get("expires_at", 0) >= self._refresh()
                if current is not None and fresh and own == OwnState.from_item(current):
                    break  # nothing new for this node (also: a replayed event)
                version = int(current["version"]) if current else 0
                item = {"pk": pk, "sk": keys.NODE_SK, "kind": "node", "id_type": identifier.type,
                        "key": identifier.key, "value": identifier.value, "version": version + 1,
                        "updated_at": iso(self._clock()), "expires_at": self._expires(),
                        **own.to_item()}  # fmt: skip
                if put_versioned(self._table, item, version):
                    break
                current = batch_get(self._table, [(pk, keys.NODE_SK)], consistent=True).get(
                    (pk, keys.NODE_SK)
                )
            else:
                raise RuntimeError("identity node kept changing under the resolver")
        return True, rerun

    def _stops_denied(self, request_pk: str, found: dict[Any, Item], stamp: Stamp) -> bool:
        """Whether a denied request's run stops before it writes anything (reads made on a
        denied request's path only). Resolved before the denial (its RESOLUTION, not a
        `denied` one): a run again (a stream retry) asks nothing new of anyone (review s22 diff
        D2: its covering jobs had failed since, and the re-run made jobs of its own). Else it
        stops unless an earlier run began it: a register of a node names it (`_begun`), it
        named further jobs (its `REDERIVED#<id>~split` marker: they live in partitions of
        their own, where `_denied_first` does not look) or it has a job (`_denied_first`);
        such a run is finished as it began."""
        request_id = request_pk.removeprefix(keys.request_pk(""))
        split = (request_pk, keys.split_marker_sk(request_id))
        found_now = batch_get(self._table, [(request_pk, keys.RESOLUTION_SK), split],
                              consistent=True)  # fmt: skip
        done = found_now.get((request_pk, keys.RESOLUTION_SK))
        if done is not None and not done.get("denied"):
            return True
        if split in found_now:
            return False  # review s31 union (info): a run that made only further jobs
        return not _begun(found.values(), stamp[1]) and self._denied_first(request_pk)

    def _denied_first(self, request_pk: str) -> bool:
        """Whether a request an operator denied has no job yet (one Query, on a denied
        request's path only). A job of its own means an earlier run of this event got that
        far before the denial (the stream's retry, the sweep's redrive after a failed flush):
        that run is finished as it began, and its jobs may complete, as after a denial that
        lands once the request is resolved (docs/decisions.md)."""
        jobs = query.items(
            self._table, KeyConditionExpression="pk = :pk AND begins_with(sk, :job)",
            ExpressionAttributeValues={":pk": {"S": request_pk}, ":job": {"S": keys.JOB_PREFIX}},
            ConsistentRead=True, Limit=1, ProjectionExpression="pk, sk",
        )  # fmt: skip
        return next(jobs, None) is None

    def _denied(self, request_id: str, pending: Outbox) -> Resolution:
        """A request an operator denied before it was resolved (CCPA §7026(e)): no system is
        asked and no identity state changes (no node, state or link from it); its RESOLUTION
        says so (`denied`, no jobs), so the status reads denied with no systems and the §7102
        figures count it denied. Run again (a replayed record, the sweep's redrive), it finds
        the same denial and does the same (review s22 diff B1)."""
        self._record(pending, request_id, {"jobs_total": 0, "denied": True,
                                           "proof_rule": PROOF_RULE})  # fmt: skip
        logger.info("request denied: this run asks no system", request_id=request_id)
        return Resolution(request_id, 0, [], 0, 0)

    def _kept_states(self, pks: list[str]) -> dict[str, OwnState]:
        """For identities with no node (new, or expired), the opt-outs their STATE kept: a node
        expires (it holds the identifier's value) while an opted-out STATE does not, and the
        new node starts from it, or the event would derive "not opted out" from nothing.
        One BatchGetItem, only when some node is missing."""
        if not pks:
            return {}
        states = batch_get(self._table, [(pk, keys.STATE_SK) for pk in pks], consistent=True)
        return {
            pk: OwnState.kept(state)
            for (pk, _), state in states.items()
            if any(v is True for v in (state.get("opt_out") or {}).values())
        }

    def _link(
        self,
        graph: Graph,
        pairs: list[tuple[KeyedIdentifier, KeyedIdentifier]],
        request_id: str,
        at: str,
        forced: bool = False,
        login: bool = False,
    ) -> tuple[
        list[KeyedIdentifier], int, list[Item], list[tuple[KeyedIdentifier, KeyedIdentifier]]
    ]:
        """Verified links, unless one would grow a cluster past the cap (then it is held).
        A released hold is `forced`: an operator decided it is one person. A `login` (a
        browser's token) that would join its device to a second account is held too; then
        the last item is the one-way edge (account -> device) that carries the held account's
        opt-outs to that browser, for `_assert`. So is a login held at the cap: the account
        is logged in on that browser all the same (docs/decisions.md, "A login held at the
        cluster cap carries its account's opt-outs to the browser")."""
        held: list[Item] = []
        accepted: list[KeyedIdentifier] = []
        carry: list[tuple[KeyedIdentifier, KeyedIdentifier]] = []
        capped: list[tuple[KeyedIdentifier, KeyedIdentifier]] = []  # (account, device)
        counted: dict[str, str] = {}  # a login's hold that may carry -> its account's pk
        added = 0
        if login and not forced and self._second_account(graph, pairs):
            # One hold (the device and the token's first identifier): a release joins them,
            # and the token's other identifiers, the account's own, are still linked to it.
            (device, first), rest = pairs[0], pairs[1:]
            held.append(self._account_hold(graph, device, first, request_id, at))
            counted[held[-1]["sk"]] = first.pk
            pairs = [(first, other) for _, other in rest]
            # The account is logged in there: its opt-outs (never its opt-ins, never a GPC
            # register) are carried to the browser by an asserted edge, one per browser and
            # account (a later login finds it), so they are honoured there and its device-
            # keyed systems are told (review s30 trust F2; the browser's cluster reads them:
            # docs/decisions.md, "A second account on one browser is held").
            carry.append((first, device))
        for a, b in pairs:
            if a.pk == b.pk:
                continue
            ca = graph.component(a.pk)
            if b.pk in ca:
                accepted.extend((a, b))
                link = graph.partition(a.pk).links.get(b.pk)
                if link is None or int(link.get("expires_at", 0)) < self._refresh():
                    write_link(self._table, a.pk, b.pk, request_id, at, self._expires())
                    graph.forget(a.pk, b.pk)
                    added += link is None
                continue
            # A full cluster cannot take anyone new: hold without walking the other side.
            cb = graph.component(b.pk) if len(ca) < self._caps.max_size else (b.pk,)
            if not forced and len(ca) + len(cb) > self._caps.max_size:
                # A shared computer must not merge a town: hold the link for a human.
                held.append(self._cap_hold(a, b, (len(ca), len(cb)), request_id, at))
                if login and holds.carries({"a": _ref(a), "b": _ref(b)}):
                    capped.append((b, a))
                    counted[held[-1]["sk"]] = b.pk
                continue
            write_link(self._table, a.pk, b.pk, request_id, at, self._expires())
            graph.merged(a.pk, b.pk, {"request_id": request_id, "expires_at": self._expires()})
            accepted.extend((a, b))
            added += 1
        # Only a hold that does not exist yet: this event processed again (a retried batch, the
        # sweep's redrive) must not put a decided hold back to `held` (a hold is decided once).
        found: list[Item] = []  # a hold already there, as the refused put found it

        def there(old: Item) -> bool:
            found.append(old)
            return False  # counted as not new, as before (a lost answer's retry included)

        new, refused = self._put_holds(held, counted, there)
        # Each held identifier of a login has its own hold: a refused one's account has no
        # carry to this browser either.
        full = {counted[sk] for sk in refused}
        held = [h for h in held if h["sk"] not in refused]
        carry = [(account, device) for account, device in carry if account.pk not in full]
        capped = [(account, device) for account, device in capped if account.pk not in full]
        if login and not forced and not carry and capped:
            # The account is logged in there, but its cluster is full (a person's many
            # browsers over the years: each logout's `reset()`, each Safari purge, each private
            # window is a new device): its opt-outs are carried to that browser as a second
            # account's are, one way, for its device alone; else the browser's page runs the
            # tags the account opted out of while it is logged in there.
            carry.append(capped[0])
        if carry and any(h.get("status") == "rejected" and holds.carries(h) for h in found):
            # An operator rejected this account on that browser: no carry, even when none was
            # there to withdraw (refused, lapsed, never written: review s31 trustmerge F5).
            carry = []
        if new:
            metrics.add_metric(name="LinksHeldForReview", unit="Count", value=new)
        return accepted, added, held, carry

    def _put_holds(
        self, held: list[Item], counted: dict[str, str], there: Callable[[Item], bool]
    ) -> tuple[int, set[str]]:
        """The holds not there yet, put: how many, and the sort keys of those refused. A
        login's hold that may carry is counted on its account (`counted`): past `max_asserted`
        undecided ones (made-up browser ids, a hold each: identity37 F3) it is neither held
        nor linked, and carries nothing (`holds.put_counted`; a hold that lapsed undecided
        is not counted: holds38)."""
        new, refused = 0, set()
        for item in held:
            if item["sk"] not in counted:
                new += put_once(self._table, item, there)
                continue
            put, old = holds.put_counted(self._table, item, counted[item["sk"]],
                                         self._caps.max_asserted, self._now())  # fmt: skip
            new += put
            if old is not None:
                there(old)
            elif not put:
                refused.add(item["sk"])
        if refused:
            metrics.add_metric(name="HoldsRefused", unit="Count", value=len(refused))
            logger.warning("a login's hold refused: its account has too many undecided holds",
                           refused=len(refused))  # fmt: skip
        return new, refused

    def _second_account(
        self, graph: Graph, pairs: list[tuple[KeyedIdentifier, KeyedIdentifier]]
    ) -> bool:
        """Whether a login's links would join its device to a second account: the device's
        cluster already holds an identifier that is not a device (someone logged in there, or
        the backend linked it) and none of the identifiers this token binds. Two people on one
        browser (a family computer, a kiosk, a friend's laptop) would otherwise merge for good,
        each reading the other's choices (docs/decisions.md, "A second account on one browser
        is held"). The walk is the one `_link` makes anyway: no read on a first login."""
        devices = {a.pk for a, _ in pairs}
        if len(devices) != 1 or next(iter(pairs))[0].type != "device_id":
            return False  # no device (a token on a webform without one): one account's links
        cluster = set(graph.component(next(iter(devices))))
        if any(b.pk in cluster for _, b in pairs):
            return False  # this account is already the device's (a later login, a retry)
        device_pk = keys.identity_pk("device_id", "")
        return any(not pk.startswith(device_pk) for pk in cluster)

    def _account_hold(
        self, graph: Graph, device: KeyedIdentifier, account: KeyedIdentifier, request_id: str,
        at: str,
    ) -> Item:  # fmt: skip
        """One hold per device and account, whatever the number of logins: its id is made
        from the pair, so each later login finds it (and a decided one stays decided)."""
        sizes = (len(graph.component(device.pk)), len(graph.component(account.pk)))
        item = self._pair_hold(f"{device.pk}|{account.pk}", device, account, sizes, request_id, at)
        return item | {"reason": holds.SECOND_ACCOUNT}

    def _cap_hold(
        self, a: KeyedIdentifier, b: KeyedIdentifier, sizes: tuple[int, int], request_id: str,
        at: str,
    ) -> Item:  # fmt: skip
        """One hold per pair past the cap, whatever the number of requests linking it (each
        login of one account on one browser, review s31 stranger F6): its id is made from the
        pair, either way round, so a later one finds it (and a decided one stays decided)."""
        low, high = sorted((a.pk, b.pk))
        return self._pair_hold(f"{holds.CLUSTER_CAP}|{low}|{high}", a, b, sizes, request_id, at)

    def _pair_hold(
        self, pair: str, a: KeyedIdentifier, b: KeyedIdentifier, sizes: tuple[int, int],
        request_id: str, at: str,
    ) -> Item:  # fmt: skip
        """A hold whose id is made from `pair` (the same every time that pair is held)."""
        pair_id = str(uuid.uuid5(ACCOUNT_HOLD_NAMESPACE, pair))
        item = holds.hold_item(pair_id, 0, _ref(a), _ref(b), sizes, self._caps.max_size, at,
                               self._expires())  # fmt: skip
        return item | {"request_id": request_id}

    def _assert(
        self, graph: Graph, asserts: list[tuple[KeyedIdentifier, KeyedIdentifier]],
        request_id: str, at: str, named_at: str,
        undated: Collection[tuple[KeyedIdentifier, KeyedIdentifier]] = (),
        new_carries: list[tuple[KeyedIdentifier, KeyedIdentifier]] | None = None,
    ) -> int:  # fmt: skip
        """One-way edges. They never merge clusters and never count toward the cap; an
        identity takes at most `max_asserters` of them (what strangers can make it cost), and
        one asserts at most `max_asserted` (what one stranger's device can make its own events
        fan out to), its verified cluster at most `max_cluster_asserted` (one account logged in
        on many browsers: review s31 stranger F5). A refused edge only loses the later
        carrying: this request's own choices still reach the identifier it names (its claims)."""
        added = 0
        for source, target in asserts:
            if source.pk == target.pk or target.pk in graph.component(source.pk):
                continue
            edge = graph.partition(source.pk).asserts.get(target.pk)
            if edge is not None and edge.get("withdrawn"):
                continue  # an operator rejected this account on that browser: it stays so
            if edge is not None and int(edge.get("expires_at", 0)) >= self._refresh():
                continue
            held = (source, target) in undated  # a held account's carry
            if edge is None and self._full(graph, source.pk, target.pk, held):
                metrics.add_metric(name="AssertionsRefused", unit="Count", value=1)
                continue
            write_assertion(self._table, source.pk, target.pk, request_id, at, self._expires(),
                            None if (source, target) in undated else named_at)  # fmt: skip
            graph.forget(source.pk, target.pk)
            added += edge is None
            if held and edge is None and new_carries is not None:
                new_carries.append((source, target))
        return added

    def _carry(
        self, graph: Graph, asserts: list[tuple[KeyedIdentifier, KeyedIdentifier]],
        carry: list[tuple[KeyedIdentifier, KeyedIdentifier]], held: list[Item], request_id: str,
        at: str, named_at: str,
    ) -> tuple[int, list[str]]:  # fmt: skip
        """`_assert` of the request's edges and a held login's carry (undated), and the devices
        whose new carry `_rejected_meanwhile` withdrew again."""
        new_carries: list[tuple[KeyedIdentifier, KeyedIdentifier]] = []
        added = self._assert(graph, asserts + carry, request_id, at, named_at, set(carry),
                             new_carries)  # fmt: skip
        return added, self._rejected_meanwhile(held, new_carries, at)

    def _rejected_meanwhile(
        self, held: list[Item], new_carries: list[tuple[KeyedIdentifier, KeyedIdentifier]],
        at: str,
    ) -> list[str]:  # fmt: skip
        """A carry first written by this run, withdrawn again when one of this login's holds was
        rejected since `_link` put or found it: that reject's `hold_reject` event may have been
        resolved before the edge existed, finding nothing to withdraw (review37). A consistent
        GetItem per hold (one, or one per identifier of the token at the cap), only in a run
        that wrote a new carry. The device's pk, to derive again."""
        if not new_carries:
            return []
        now = [holds.get_hold(self._table, h["sk"], consistent=True) for h in held]
        if not any(h and h.get("status") == "rejected" and holds.carries(h) for h in now):
            return []
        for source, device in new_carries:
            withdraw_carry(self._table, source.pk, device.pk, at, self._expires())
        return [device.pk for _, device in new_carries]

    def _full(self, graph: Graph, source_pk: str, target_pk: str, carry: bool = False) -> bool:
        # An edge past its expiry is not counted: TTL deletes it within days (holds38)
        now = self._now()
        edges = graph.partition(source_pk).asserts.values()
        if sum(int(e.get("expires_at", now)) >= now for e in edges) >= self._caps.max_asserted:
            return True
        # A held account's carry is never refused for its cluster's other edges: a kiosk's
        # visitors' would lose its opt-outs on the browser it uses (review s31 trustmerge F1).
        if not carry and graph.asserted_out(source_pk) >= self._caps.max_cluster_asserted:
            return True  # the walk `_assert` made read every member: no read of its own
        return count_asserters(self._table, target_pk) >= self._caps.max_asserters

    # -- jobs ----------------------------------------------------------------------------------

    def _request_jobs(
        self, request_id: str, derivation: Pass, pending: Outbox, asked: set[Purpose],
        jurisdictions: list[str], chosen_at: str, systems: Collection[str] | None = None,
        unless_denied: bool = False, rerun: bool = False,
    ) -> _OwnJobs:  # fmt: skip
        """A request's jobs, each identity sent exactly its own cluster's purposes
        (`Pass.request_plans`, docs/decisions.md "A request naming several unlinked people"):
        per system its own job `<request>:<system>` for the first purpose set, and one further
        job per further set, `<request>~<hex>:<system>` (`split_request_id`), which the
        RESOLUTION names (`split_jobs`) so its status, proof, re-open and figures count it
        with the system's own. One person (the usual case): one set, nothing further, no write
        more. A job whose item would pass `parts.JOB_ITEM_BOUND` is made as parts instead,
        each a further job (`_by_size`). `systems`: only these (a re-open's). `rerun`: an
        earlier run of the event wrote its nodes (`_begun`) or made a job a mark names
        (`Pass.marked_by`), so it may have made further jobs this grouping neither plans nor
        meets through a mark (`_made_before`)."""
        first, more = derivation.request_plans()
        by_request = {request_id: first}
        for purposes, plans in sorted(more.items()):
            by_request[split_request_id(request_id, purposes)] = plans
        if systems is not None:
            by_request = {r: {n: p for n, p in plans.items() if n in systems}
                          for r, plans in by_request.items()}  # fmt: skip
        by_request = self._by_size(request_id, by_request, jurisdictions, chosen_at)
        ids = {f"{r}:{name}" for r, plans in by_request.items() for name in plans}
        before = self._made_before(request_id) if rerun and systems is None else {}

        # Every further id the request can have counts as its own, so a run grouped otherwise
        # than an earlier one (a state changed between them, or parts of another count) still
        # knows that run's further jobs: re-sent and named, never cited (review s31 union F1).
        # Computed (`_split_parts`) only for an id that starts like one, nothing read.
        def own(job: str) -> bool:
            return job in ids or _is_further(request_id, job.rpartition(":")[0])

        further = {r: sorted(n for n, p in plans.items() if p.needs)
                   for r, plans in by_request.items() if r != request_id}  # fmt: skip
        if any(further.values()):
            # Named before they are made (a run that dies before its flush leaves no
            # RESOLUTION to name them): the sweep checks them with the request (F1). Only a
            # request naming several unlinked people writes it.
            mark_rederived(self._table, request_id, keys.own_request_id(request_id, SPLIT_MARK),
                           {r for r, names in further.items() if names},
                           sorted({n for names in further.values() for n in names}),
                           self._expires(), kind=SPLIT_MARK)  # fmt: skip
        made: set[str] = set()
        split: dict[str, list[str]] = {}
        cited: dict[str, set[str]] = {}
        relied: set[str] = set()
        for job_request, plans in by_request.items():  # the request's own first
            if not plans:
                continue
            jobs, covered, found = self._fan_out(job_request, plans, pending, asked,
                                                 jurisdictions=jurisdictions, chosen_at=chosen_at,
                                                 unless_denied=unless_denied,
                                                 own=own)  # fmt: skip
            made.update(jobs)
            if job_request != request_id:
                for name in jobs:
                    split.setdefault(name, []).append(f"{job_request}:{name}")
            for name, others in covered.items():
                cited.setdefault(name, set()).update(others)
            relied |= found
        together: dict[str, list[JobPlan]] = {}
        earlier: set[str] = set()
        configured = {s.name for s in self._systems.systems}
        for plans in by_request.values():
            for name, plan in plans.items():
                together.setdefault(name, []).append(plan)
                # An earlier run's further jobs this run's grouping has not (F1): their marks
                # name them, so this run made nothing for them. Sent again, as its own job is.
                earlier |= {job for job in {*plan.covered, *plan.not_asked}
                            if _is_further(request_id, job.rpartition(":")[0])
                            and name not in by_request.get(job.rpartition(":")[0], {})}  # fmt: skip
        earlier |= self._other_parts(request_id, earlier, by_request)

        def keep(job: str, send: bool) -> str:
            """An earlier run's further job named as the request's (sent again if `send`)."""
            job_request, _, name = job.rpartition(":")
            if send:
                pending.add(self._systems.get(name).queue_key, job_message(job_request, name))
            made.add(name)
            split.setdefault(name, []).append(job)
            return name

        # Those met through marks: a re-open's denial read before each is sent, whatever its
        # status (not read). Then those only the split marker names (`_made_before`).
        for job in sorted(earlier):
            self._unless_denied(unless_denied, job.rpartition(":")[0], None)
            keep(job, send=True)
        carried: dict[str, set[Purpose]] = {}
        for job, (status, carries) in sorted(before.items()):
            if job in ids or job in earlier or job.rpartition(":")[2] not in configured:
                continue
            # An earlier run's further job no mark names now (an opt-in since, a purpose no
            # longer served): still the request's, so its status waits for its answer (review
            # s31 union residual); sent again while pending, as a re-run sends its own.
            carried.setdefault(keep(job, send=status == "pending"), set()).update(carries)
        return _OwnJobs(
            sorted(made), {n: sorted(j) for n, j in sorted(split.items())},
            {n: sorted(j)[:MAX_COVERING_JOBS] for n, j in sorted(cited.items())},
            relied, {n: merged(p) for n, p in sorted(together.items())}, own, carried,
        )  # fmt: skip

    def _made_before(self, request_id: str) -> dict[str, tuple[str, set[Purpose]]]:
        """The further jobs an earlier run of the request made (job id -> its status and
        purposes): those its split marker names, at each configured system. A re-run's only
        (two BatchGetItems: the marker, then its jobs when it names any); a first run reads
        nothing."""
        marker_key = (keys.request_pk(request_id), keys.split_marker_sk(request_id))
        marker = batch_get(self._table, [marker_key], consistent=True).get(marker_key)
        if marker is None:
            return {}
        wanted = [(keys.request_pk(r), keys.job_sk(s.name)) for r in marked_requests(marker)
                  for s in self._systems.systems]  # fmt: skip
        found = batch_get(self._table, wanted, consistent=True,
                          fields=("job_id", "status", "purposes"))  # fmt: skip
        return {str(j["job_id"]): (str(j.get("status") or "pending"), set(j.get("purposes", ())))
                for j in found.values() if j.get("job_id")}  # fmt: skip

    def _other_parts(
        self, request_id: str, earlier: set[str], by_request: dict[str, dict[str, JobPlan]]
    ) -> set[str]:
        """The other parts of a job an earlier run made as parts, when this run met one
        (`earlier`) and does not make them: a part may hold only identities this run does not
        reach (the people a cluster's browsers named, told only when its choice changed), so
        no mark of this run's names it. Those stored are sent again and named with the request
        (one BatchGetItem, only on such a re-run; none when no part was met)."""
        siblings: set[str] = set()
        for job in earlier:
            job_request, _, name = job.rpartition(":")
            purposes, part = _split_parts(request_id).get(job_request, ((), None))
            if part is None:
                continue
            for j in range(part[1]):
                other = split_request_id(request_id, purposes, (j, part[1]))
                if name not in by_request.get(other, {}):
                    siblings.add(f"{other}:{name}")
        siblings -= earlier
        if not siblings:
            return set()
        found = batch_get(self._table, [_job_key(job) for job in sorted(siblings)],
                          consistent=True, fields=("job_id",))  # fmt: skip
        return {job for job in siblings if _job_key(job) in found}

    def _by_size(
        self, request_id: str, by_request: dict[str, dict[str, JobPlan]],
        jurisdictions: list[str], chosen_at: str,
    ) -> dict[str, dict[str, JobPlan]]:  # fmt: skip
        """`by_request` with each job over `parts.JOB_ITEM_BOUND` made as parts: further jobs
        `<request>~<hex>:<system>`, the hex from the request, the job's purposes and (part,
        of), so a re-run finds them (review s31 abuse F2: one cluster's asserted edges made a
        job of ~1,050 identities, past DynamoDB's 400 KB item). Nothing read or written: a job
        under the bound stays as it was, under its own id. `request_id`: a request's, or a
        flush's rederived job's (`_rederived_jobs`; its parts `<owner>~<hex>` as well)."""
        now, until = iso(self._clock()), self._job_expires()

        def size(plan: JobPlan) -> int:
            targets = [plan.needs[pk] for pk in sorted(plan.needs)]
            return job_bytes(_job_item(request_id, plan, targets, now, until, jurisdictions,
                                       chosen_at))  # fmt: skip

        out: dict[str, dict[str, JobPlan]] = {}
        for job_request, plans in by_request.items():  # the request's own first, as given
            kept = out.setdefault(job_request, {})
            for name, plan in plans.items():
                parts = split_plan(plan, size)
                if not parts:
                    kept[name] = plan
                    continue
                logger.info("job made as parts: over the item bound", system=name,
                            identities=len(plan.needs), parts=len(parts))  # fmt: skip
                metrics.add_metric(name="JobParts", unit="Count", value=len(parts))
                # Past the most parts (`PART_COUNTS`; not reachable at `MaxClusterSize` 99) a
                # part may still be over the bound: its write or its receipt's may fail. The
                # alarm's metric (`JobPartsOverBoundAlarm`); sized again on a split only.
                over = [piece for piece in parts.values() if size(piece) > job_parts.JOB_ITEM_BOUND]
                if over:
                    metrics.add_metric(name="JobPartsOverBound", unit="Count", value=len(over))
                    logger.warning("job part over the item bound after the most parts",
                                   request_id=request_id, system=name, parts=len(parts),
                                   over=len(over))  # fmt: skip
                purposes = tuple(plan.sorted_purposes())
                for part, piece in parts.items():
                    part_request = split_request_id(request_id, purposes, part)
                    out.setdefault(part_request, {})[name] = piece
        return out

    def _fan_out(
        self, request_id: str, plans: dict[str, JobPlan], pending: Outbox, asked: set[Purpose],
        chain: str | None = None, jurisdictions: list[str] | None = None, chosen_at: str = "",
        unless_denied: bool = False, own: Callable[[str], bool] | None = None,
    ) -> tuple[list[str], dict[str, list[str]], set[str]]:  # fmt: skip
        """Jobs made (system names), per system the other requests' jobs that already carry
        what this one asked of it (`asked`): its proof where it needs no job of its own, and
        the identities whose marks named those jobs (`JobPlan.relied`: what they are proof for).
        `chain`: a `--resend` backfill's (`_make_job`). `jurisdictions`: where the request(s)
        the jobs are made for came from (sorted; none known: empty), kept on each job.
        `chosen_at`: when the consumer made the choice the jobs carry (the request's
        `received_at`; a job made for several requests: the latest), kept on each job so a
        vendor can be told when the choice was made, not when it was delivered.
        `unless_denied`: a re-open's (`_make_job`; raises `_DeniedMeanwhile`). `own`: whether
        a job id is one of the request's other jobs (`_request_jobs`), never cited as its
        proof."""
        made: list[str] = []
        covered: dict[str, list[str]] = {}
        relied: set[str] = set()
        for name, plan in sorted(plans.items()):
            if self._make_job(request_id, plan, pending, chain, jurisdictions or [], chosen_at,
                              unless_denied):  # fmt: skip
                made.append(name)
            others = sorted(j for j in plan.covered
                            if j != f"{request_id}:{name}" and not (own and own(j)))  # fmt: skip
            if others and plan.purposes & asked:
                covered[name] = others[:MAX_COVERING_JOBS]
                relied.update(pk for job in covered[name] for pk in plan.relied.get(job, ()))
        return made, covered, relied

    def _make_job(
        self, request_id: str, plan: JobPlan, pending: Outbox, chain: str | None = None,
        jurisdictions: list[str] | None = None, chosen_at: str = "", unless_denied: bool = False,
    ) -> bool:  # fmt: skip
        """The job item first (conditional: absent), then each identity's in-flight mark
        (conditional: no other job carries its purposes), as plain writes: a transaction
        would bill every item twice (docs/decisions.md, "Job first, marks after").

        A mark never names a missing job. A crash between the job and its marks leaves a job
        without marks: the retried batch finds the job and sends it again, and a later event
        may make a second job for the same purposes (a vendor opting someone out twice).
        Another resolver's mark taken first: those identities are read again, and the job is
        written again with what is left for it (deleted when nothing is).

        `chain` (a `--resend` backfill, whose job ids start with it): the marks are taken from
        whatever job they name outside that backfill (`delivery.take_flight`), not only when
        free; one taken meanwhile by another of its jobs is read again as usual.

        `unless_denied` (a re-open, `_reopen`): the request's `DENIAL` is read once the job is
        stored, before any mark or message (`_unless_denied`)."""
        name = plan.system.name
        job_id = f"{request_id}:{name}"
        message = job_message(request_id, name)
        key = (keys.request_pk(request_id), keys.job_sk(name))
        marked: dict[str, tuple[Member, list[Purpose]]] = {}  # pk -> what this job marked
        retired_at = self._retired_added_back().get(name)  # a retired name added back
        for round_ in range(MAX_PLAN_RETRIES):
            left = {pk: target for pk, target in plan.needs.items() if pk not in marked}
            if not left and not marked:
                # Our own job, written in an earlier round: nothing to carry. Unless it moved
                # on (sent by another run of the event, then tried: review s22 diff A7).
                if round_ > 0 and not delivery.delete_pending_job(self._table, key):
                    return True
                # This event's own job already carries the rest: a retried batch (its send may
                # have failed after the job was stored). Send it again; workers know repeats.
                # Its own job may have answered no_record meanwhile: still its own, not quiet.
                if job_id in plan.covered or job_id in plan.not_asked:
                    pending.add(plan.system.queue_key, message)
                    return True
                return False
            now = iso(self._clock())
            # The job outlives its request's record by the cite window, so a later request
            # citing it within that window keeps its proof as long as its own record.
            until, cut = self._job_expires(), self._expires()
            targets = [({**marked, **left})[pk] for pk in sorted({*marked, *left})]
            job = _job_item(request_id, plan, targets, now, until, jurisdictions, chosen_at)
            if round_ == 0:
                if not put_once(self._table, job, partial(_this_write, now=now)):
                    # A replayed event: the stored job (and its marks) stand; send it again.
                    self._unless_denied(unless_denied, request_id, None)
                    pending.add(plan.system.queue_key, message)
                    return True
                self._unless_denied(unless_denied, request_id, key)
            elif not delivery.replace_pending_job(self._table, job):
                # Our own job again, with what is left for it: not once it moved on (sent by
                # another run of the event, then answered or tried): it stands (diff A7).
                return True
            taken: list[str] = []
            ended: Item | None = None  # the job, read once a fresh mark was refused
            took_over = False  # a mark written over another job's name (round 0)
            for pk in sorted(left):
                member, need = left[pk]
                flight = {"pk": pk, "purposes": need}
                if chain is None:
                    took = delivery.mark_flight(self._table, name, flight, now, cut, job_id,
                                                until=until, take_before=cut,
                                                retired_at=retired_at,
                                                fresh=round_ == 0)  # fmt: skip
                    if not took and round_ == 0 and ended is None:
                        ended = self._ended(request_id, name)
                    if not took and ended is not None:
                        # Sent and answered before this resolver marked it (the same event
                        # resolved twice at once, review s22 race R5): the job stands with its
                        # answer, and its worker freed what it carried. A failure or a "no such
                        # person" freed every identity: nothing to mark. Done, it freed only
                        # the types it did not prove: the others are still marked for it
                        # (diff A2: a customer id sorting first left the email unmarked).
                        if ended["status"] != "done":
                            break
                        continue
                else:
                    took = delivery.take_flight(self._table, name, flight, now, cut, job_id,
                                                chain, until=until)  # fmt: skip
                if took:
                    took_over |= round_ == 0 and _over_another(member, name, need, job_id, chain)
                    marked[pk] = (member, need)
                    member.mark_in_flight(name, need, job_id, until)
                else:
                    taken.append(pk)
            if took_over:
                ended = self._free_if_ended(name, job_id, now, ended)
            if ended is not None:
                return True  # its answer stands: nothing to send, nothing to plan again
            if not taken:
                pending.add(plan.system.queue_key, message)
                return True
            self._replan(plan, taken)
        raise RuntimeError("in-flight marks kept changing under the resolver")

    def _unless_denied(self, check: bool, request_id: str, stored: tuple[str, str] | None) -> None:
        """A re-open's check (`check`; else nothing is read) once its job is stored (review
        s24 diff A D1): the request's `DENIAL`, read strongly consistent (one GetItem, on the
        re-open path only). Found: the job this run `stored` is deleted while untried (no mark
        names it and no message is queued yet) and the re-open stops (`_DeniedMeanwhile`); a
        job it found already stored (`None`) is neither sent nor deleted by this run. Not
        found: a denial, if any, lands after the job was stored, as one landing after a first
        resolution, and the job goes on. So a re-open sends no job stored after the denial."""
        owner = keys.made_by(request_id) or request_id  # a further job's: its request's
        if not check or get_item(self._table, (keys.request_pk(owner), DENIAL_SK)) is None:
            return
        if stored is not None and not delivery.delete_pending_job(self._table, stored):
            # Moved on: sent by another run of this re-open, which read no denial after the job
            # was stored (so before the denial); it stands, as any job made before one
            logger.info("re-open's job stands: sent before the denial", request_id=request_id)
        raise _DeniedMeanwhile(request_id)

    def _free_if_ended(self, system: str, job_id: str, now: str, ended: Item | None) -> Item | None:
        """After a mark written over another job's name: the worker's free of this job could
        not name that mark, so a job answered before it would stay in flight there. The job
        read after the marks (unless `ended`: already read) and, if it ended, its frees run
        again (a legacy or expiring mark, which includes each 30-day renewal, or a `--resend`
        backfill; review s22 diff A3, s23 diff A2)."""
        if ended is None:
            return delivery.free_if_ended(self._table, system, job_id, now)
        delivery.free_ended(self._table, ended, str(ended["status"]), now, ended.get("receipt"))
        return ended

    def _ended(self, request_id: str, system: str) -> Item | None:
        """This request's job for `system` if it has reached a final status, else None."""
        job = delivery.get_job(self._table, request_id, system)
        return job if job is not None and job.get("status") in ENDED else None

    def _replan(self, plan: JobPlan, pks: list[str]) -> None:
        """Another resolver marked some of these purposes in flight first: read again."""
        name = plan.system.name
        found = batch_get(self._table, [(pk, keys.delivery_sk(name)) for pk in pks],
                          consistent=True)  # fmt: skip
        wanted = plan.sorted_purposes()
        quiet_since, cut = self._quiet_since(), self._expires()
        retired_at = self._retired_added_back().get(name)
        for pk in pks:
            member, _ = plan.needs[pk]
            mark = found.get((pk, keys.delivery_sk(name)), {})
            member.deliveries[name] = {} if before_retirement(mark, retired_at) else mark
            plan.cite(member, member.covering_jobs(name, wanted, cut))
            need, heard = member.needs_now(name, wanted, quiet_since, cut)
            if heard:
                plan.not_asked[heard[0]] = heard[1]
            if need:
                plan.needs[pk] = (member, need)
            else:
                del plan.needs[pk]

    # -- operator events -------------------------------------------------------------------------

    def _replay(self, event: Item, pending: Outbox, deadline: float | None) -> Resolution:
        """Failed jobs of one system back to pending, their messages sent again.

        Per job: the job (`delivery.reset_for_replay`), then its marks one by one, then its
        message, then its `FAILED#` listing goes (docs/decisions.md, "A replay writes the job,
        then its marks, then its message"). The messages are sent here, ten at a time as the
        jobs are reset, not through `pending` (flushed after the whole stream batch), because
        a listing may go only once its message is out: a run that dies first leaves the job
        pending and still listed, and the next run of this replay (the stream's retry, the
        sweep's redrive) or any later replay sends it again. A job whose replay raises an AWS
        error before it is pending stays failed and listed for the next replay, and the
        others go on.

        Bounded per event (docs/decisions.md, "A replay goes on in follow-up events"): at
        most MAX_REPLAY_JOBS listings, and none started after `deadline` (time.monotonic()).
        When listings remain, a follow-up replay event (same system and evidence, starting
        after the last listing this one went through) carries on, and this one's resolution
        names it (`continued_by`)."""
        request_id: str = event["request_id"]
        operation = event.get("operation") or {}
        system = str(operation.get("system", ""))
        config = {s.name: s for s in self._systems.systems}.get(system)
        if config is None:
            self._record(pending, request_id, {"jobs_total": 0, "replayed": 0, "system": system})
            return Resolution(request_id, 0, [], 0, 0)
        now = iso(self._clock())
        retired = batch_get(self._table, [keys.retired_key(system)], consistent=True)
        retired_at = last_retired_at(retired[keys.retired_key(system)]) if retired else None
        cursor = str(operation.get("after", ""))
        chunk: list[Item] = []  # the listings of the jobs whose messages go out next
        replayed = not_replayed = 0
        delivered: list[Item] = []  # listings of jobs later jobs delivered: dropped, not sent
        more = False
        for walked, marker in enumerate(delivery.failed_jobs(self._table, system, cursor)):
            if walked >= MAX_REPLAY_JOBS or (deadline is not None and monotonic() >= deadline):
                more = True
                break
            cursor = str(marker["sk"])
            try:
                done = self._replay_job(marker, system, now, request_id, retired_at)
                if done == SEND:
                    chunk.append(marker)
                elif done == LEFT:  # stays listed for the next replay: counted, as an error is
                    not_replayed += 1
                elif done == DELIVERED:
                    delivered.append(marker)
            except (ClientError, BotoCoreError) as error:  # this job only: it stays listed
                not_replayed += 1
                logger.warning("failed job not replayed", system=system, job_id=marker["sk"],
                               error=error_code(error))  # fmt: skip
            if len(chunk) == REPLAY_CHUNK:
                replayed += self._send_replayed(config.queue_key, system, chunk, event)
                chunk = []
        replayed += self._send_replayed(config.queue_key, system, chunk, event)
        outcome: Item = {"jobs_total": 0, "replayed": replayed, "system": system}
        if not_replayed:
            outcome["not_replayed"] = not_replayed
        if delivered:  # their requests read done now: the watch folds them at its next run
            outcome["delivered_later"] = len(delivered)
            self._remind_watch(delivered, self._clock(), _event_time(event))
        if more:
            outcome["continued_by"] = self._continue_replay(event, cursor)
            logger.info("replay continues", system=system, replayed=replayed,
                        continued_by=outcome["continued_by"])  # fmt: skip
        self._record(pending, request_id, outcome)
        return Resolution(request_id, 0, [], 0, 0, 0, replayed)

    def _send_replayed(self, queue_key: str, system: str, chunk: list[Item], event: Item) -> int:
        """One chunk's messages (raises: the record's retry sends them again), then their
        listings go, then the watch is reminded of their requests (or jobs)."""
        if not chunk:
            return 0
        # a listing's sort key is its job's id, `<request_id>:<system>` (`delivery._list_failed`)
        messages = [job_message(str(m["request_id"]), system) for m in chunk]
        self._queue.send(queue_key, messages)
        for marker in chunk:
            try:
                delivery.forget_failed(self._table, marker)
            except (ClientError, BotoCoreError):  # still listed: the next replay sends it again
                logger.warning("replayed job still listed", system=system, job_id=str(marker["sk"]))
        self._remind_watch(chunk, self._clock(), _event_time(event))
        return len(chunk)

    def _continue_replay(self, event: Item, after: str) -> str:
        """The follow-up replay event, for the listings after `after`. Its id comes from this
        event's, and the write is conditional: a retry of this event writes no second one."""
        operation = event.get("operation") or {}
        first = str(operation.get("continues") or event["request_id"])
        follow_up = str(uuid.uuid5(REPLAY_NAMESPACE, str(event["request_id"])))
        now = self._clock()
        item = CapturedEvent.by_operator(
            follow_up, "replay",
            {"system": str(operation.get("system", "")), "after": after, "continues": first},
            dict(event.get("evidence") or {}), now,
        )  # fmt: skip
        put_event(self._table, item.to_item(self._retention))
        return follow_up

    def _remind_watch(self, sending: list[Item], now: datetime, since: datetime) -> None:
        """A reminder due now per replayed request: the watch reads it again at its next run,
        not at the request's next planned check (up to a day later). A replayed job that ends
        after that run reaches the §7102 figures and the overdue count at a later check: within
        the hour for a request near or past its deadline (review s19 diff B6).

        A job under a request id of its own (`<request>~<hex>`) that its request reads (a
        further job, its `kind` "split" marker: review s31 union F3) reminds that request. One
        the flush re-derived or a backfill step made is read by no request: it gets its
        marker's jobs reminder again (`remind_jobs`, the watch's `_check_jobs`; the first was
        dropped once its jobs were final), due a day past `since`, the replay event's time,
        so a retry of the event writes the same item. A job no marker in its owner's partition
        names (a follow-up backfill step's: its marker is in the follow-up event's; the flush's
        with no owner): a jobs reminder of its own, and its owner's. One Query of markers per
        owner. Best effort: a failed read or write only leaves the planned checks."""
        requests: dict[str, int] = {}
        own: dict[str, tuple[set[str], int]] = {}  # marker -> (its job request ids, expiry)
        markers: dict[str, list[Item] | None] = {}  # per owner; None: not read
        for m in sending:
            job_request = str(m["request_id"])
            expires = int(m.get("expires_at") or self._expires())
            owner = keys.made_by(job_request)
            if owner is None:
                requests[job_request] = expires
                continue
            if owner not in markers:
                markers[owner] = self._markers_of(owner)
            marker = next((x for x in markers[owner] or () if job_request in marked_requests(x)),
                          None)  # fmt: skip
            if marker is None or marker.get("kind") == keys.SPLIT_MARK:
                requests[owner] = expires
            if marker is None or marker.get("kind") != keys.SPLIT_MARK:
                name = job_request if marker is None else marker_id(marker)
                ids = {job_request} if marker is None else set(marked_requests(marker))
                own[name] = (own.get(name, (set(), 0))[0] | ids, expires)
        reminders = [remind_now(rid, None, now, exp) for rid, exp in sorted(requests.items())]
        reminders += [remind_jobs(n, ids, since, exp) for n, (ids, exp) in sorted(own.items())]
        try:
            batch_put(self._table, reminders)
        except (ClientError, BotoCoreError, RuntimeError) as error:  # Runtime: left unprocessed
            logger.warning("replay left no reminder for the watch", error=type(error).__name__)

    def _markers_of(self, owner: str) -> list[Item] | None:
        """`owner`'s `REDERIVED#` markers; None when the read failed (best effort, as the
        reminders: a job then reminds its owner and itself)."""
        try:
            return rederived_markers(self._table, owner)
        except (ClientError, BotoCoreError) as error:
            logger.warning("replay read no markers", error=error_code(error))
            return None

    def _replay_job(
        self, marker: Item, system: str, now: str, replay_id: str, retired_at: str | None = None
    ) -> str:
        """One listed job made pending and marked in flight again: SEND when its message is to
        be sent, LEFT when it stays failed and listed for the next replay, else DROPPED. A
        listed job already pending was made so by a replay whose message may never have gone
        out (a run that died): its marks are made again (idempotent) and it is sent again (a
        worker knows a repeated message). Unless the listing is not the one that replay read
        but a late one of the same failure (`listed_again_after_replay`: that replay sent its
        message before it dropped the listing it read): dropped (race24)."""
        job = delivery.get_job(self._table, str(marker["request_id"]), system)
        status = job.get("status") if job is not None else None
        listed_by = str(marker.get("listed_by") or "") or None  # the listing read (race24)
        if job is not None and status == "pending" and job.get("replayed_at"):
            if listed_by and delivery.listed_again_after_replay(
                job, str(marker.get("failed_at")), listed_by
            ):
                # Not a replay's leftover: the failure's late after-steps listed it again after
                # this round was sent (race24); that round is in flight, nothing to send
                delivery.forget_failed(self._table, marker)
                return DROPPED
            self._mark_replayed(job, delivery.flights_of(job), now)
            self._under_way_if_denied(str(marker["request_id"]), system)
            return SEND
        if (job is not None and status == "failed" and not made_at_or_before(job, retired_at)
                and self._delivered_later(job, system, now)):  # fmt: skip
            delivery.forget_failed(self._table, marker)  # nothing to send: the vendor has it
            return DELIVERED
        identifiers = self._identifier_values(job) if job is not None and status == "failed" else []
        if job is None or not identifiers:  # finished meanwhile, or nothing left to send
            delivery.forget_failed(self._table, marker)
            return DROPPED
        if made_at_or_before(job, retired_at):
            delivery.forget_failed(self._table, marker)  # retired (optout/retire.py): not owed
            return DROPPED
        listed_at = marker.get("failed_at")
        listed = str(listed_at) if listed_at else None
        if listed is not None and _failed_since(job, listed):
            if not _letter_expired(job, self._clock()):
                return _left_to_its_worker(system, marker)
            # No letter is left to list that failure: this listing stands for it (the reset
            # is still refused if the job fails again meanwhile)
            listed, listed_by = str(job["completed_at"]), None  # not that failure's listing
            logger.info("failed job replayed: its dead letter has expired, its failure was "
                        "never listed", system=system, job_id=str(marker["sk"]))  # fmt: skip
        flights = delivery.reset_for_replay(self._table, job, identifiers, now, replay_id,
                                            listed, listed_by)  # fmt: skip
        if flights is None:  # replayed meanwhile (that replay sends it), or failed again
            again = delivery.get_job(self._table, str(marker["request_id"]), system)
            failed = again is not None and again.get("status") == "failed"
            return _left_to_its_worker(system, marker) if failed else DROPPED
        self._mark_replayed(job, flights, now)
        self._under_way_if_denied(str(marker["request_id"]), system)
        return SEND

    def _delivered_later(self, job: Item, system: str, now: str) -> bool:
        """A failed job whose every flight later jobs delivered (`later.cover_of`, the deadline
        watch's rule read now) is not sent again: the vendor confirmed each identity and
        purpose it holds, and a second send would only hand it the person's identifiers again
        (docs/decisions.md, "A replay sends no job later jobs delivered"). The request that
        reads it as its own (its own id, or a further job's request) gets the watch's record
        first (`later.recorded_for`), so it reads done from now on, whatever the marks do
        next. False (sent again, as before) when not covered, or when the request's record
        could not be made (the marks moved on meanwhile), or for a job no request reads (the
        flush's, a backfill step's): no view reads a record for it (the backfill figures and
        `optout status <id>~<hex>` read the job's own status), so not sent it would read
        failed for good, its listing gone (review38b). Requests that cited it get their
        record at the watch's next check of them. One BatchGetItem for a job no later job
        took over."""
        from optout.ops import later  # noqa: PLC0415 - pydantic (optout.status): a replay's only

        job_id = str(job["job_id"])
        reader = _reading_request(str(job["request_id"]))
        if reader is None:
            return False  # no request reads it as its own: sent again, ends as the vendor says
        if later.cover_of(self._table, system, job) is None:
            return False
        recorded = later.recorded_for(self._table, reader, system, job_id, now)
        if recorded:
            logger.info("failed job not replayed: later jobs delivered it", system=system,
                        job_id=job_id)  # fmt: skip
        return recorded

    def _under_way_if_denied(self, job_request: str, system: str) -> None:
        """A replayed job of a request's own (or a further job of it, `_is_further`) is sent
        again whatever the request's denial: it may reach its vendor, so the denial's record
        names its system (`systems_under_way`), as a job made before the denial (proof36 L2).
        One conditional UpdateItem, before the message goes out; it writes nothing when the
        request has no denial (`note_under_way`). Not for a job the flush or a backfill step
        made under a request id of its own: no request's denial counts it."""
        reader = _reading_request(job_request)
        if reader is None:
            return
        if note_under_way(self._table, reader, DENIAL_SK, [system]):
            logger.info("replayed job of a denied request: its system is under way",
                        request_id=reader, system=system)  # fmt: skip

    def _mark_replayed(self, job: Item, flights: list[Item], now: str) -> None:
        """The job is pending now and will be sent whatever happens here: a mark not written
        only lets a later event make a second job for those purposes (as a resolver dying
        between a job and its marks does; docs/decisions.md, "Job first, marks after").

        Then the job is read again: one that ended meanwhile (a message of its round reached
        a worker first: a listing left behind names a job still pending from an earlier
        replay) may have had its marks freed before these were written, which would leave
        them naming a failed or no_record job for good. Its end's frees run again
        (`free_ended`, idempotent; the worker's own, if still to come, changes nothing more:
        review s22 race R3). Not its listing: that is the worker's, whose run that lists the
        failure counts it `JobsFailed` (review s22 diff A5)."""
        try:
            delivery.mark_replayed(self._table, job, flights, now)
            delivery.free_if_ended(self._table, str(job["system"]), str(job["job_id"]), now)
        except (ClientError, BotoCoreError) as error:
            logger.warning("replayed job not marked in flight", job_id=job["job_id"],
                           error=error_code(error))  # fmt: skip

    def _backfill(self, event: Item, pending: Outbox, deadline: float | None) -> Resolution:
        """Send one system the current opt-out of everyone opted out of a purpose it serves
        (an operator's `optout backfill SYSTEM`: a system added, or given a purpose or an
        identifier type, after people opted out; docs/decisions.md, "A backfill scans").

        Walks the STATE items by a Scan (filter sk = STATE; a one-off operator action, billed
        for the whole table), and plans, per opted-out identity, this system's job for its
        cluster from the current config and state as an event's resolution does (`Pass`,
        `plan_jobs`, `_fan_out`), writing no state. Without `resend`, the marks stand: an
        identity the system already has a job for (done or in flight) needs nothing, so a
        second backfill sends nothing new and a cluster met twice gets one job. With `resend`
        (the system's destination changed), only the marks naming this backfill's own jobs
        count (`Pass.resend_chain`): everyone is sent again, each once.

        The identities an event plans go into one job under a request id of its own,
        `<first event>~<hex from this event's id>` (deterministic: a retry of this event finds
        its job and sends it again), named by a `REDERIVED#` marker in this event's partition
        first, as the flush's rederived jobs are, so the sweep checks it with this event.
        Bounded: at most BACKFILL_CLUSTERS derived, BACKFILL_IDENTITIES (or one cluster more) in
        its job, and none after `deadline`; the rest goes to a follow-up event from the scan's
        cursor (`continued_by`, a deterministic id)."""
        request_id: str = event["request_id"]
        operation = event.get("operation") or {}
        system = str(operation.get("system", ""))
        resend = bool(int(operation.get("resend") or 0))
        config = {s.name: s for s in self._systems.systems}.get(system)
        outcome: Item = {"jobs_total": 0, "system": system, "resend": resend, "scanned": 0,
                         "planned": 0}  # fmt: skip
        step = uuid.uuid5(BACKFILL_NAMESPACE, f"{request_id}:job")  # not the follow-up's id
        record = str(operation.get("record") or "")  # ops/backfills.py: its record's key
        if config is None:  # removed from the config since the route accepted it
            self._record_step(record, step.hex[:12], outcome, finished=True)
            self._record(pending, request_id, outcome)
            return Resolution(request_id, 0, [], 0, 0)
        first = str(operation.get("continues") or request_id)
        chain = keys.own_request_prefix(first)
        derivation = Pass(Graph(self._table, self._caps), SystemsConfig((config,)),
                          iso(self._clock()), self._expires(), self._refresh(),
                          None if resend else self._quiet_since(), plan_only=True,
                          resend_chain=chain if resend else None)  # fmt: skip
        cursor = _cursor(str(operation.get("after") or ""))
        scanned = planned = 0
        carried: set[str] = set()  # the identities the step's job will carry
        named: dict[str, set[str]] = {}  # identity -> other backfills' jobs its marks name
        more = False
        for item, at in _states(self._table, cursor):
            late = deadline is not None and monotonic() >= deadline
            if late or planned >= BACKFILL_CLUSTERS or len(carried) >= BACKFILL_IDENTITIES:
                more = True
                break
            cursor = at
            scanned += 1
            opted = item.get("opt_out") or {}
            if any(opted.get(p) is True for p in config.purposes):
                pk = str(item["pk"])
                derivation.run([pk], Outbox())
                planned += 1
                for found in derivation.plans.get(derivation.graph.component(pk), []):
                    carried.update(found.needs)
                # This identity's own marks only: each opted-out identity has its STATE item,
                # so it is counted once over the whole chain, not once per cluster met
                others = {j for j in derivation.named.get(pk, ()) if not j.startswith(chain)}
                if others:
                    named[pk] = others
        made: list[str] = []
        jobs = _step_plans(derivation, system, request_id, first)
        if jobs:
            made = self._backfill_jobs(request_id, keys.own_request_id(first, step.hex[:12]),
                                       jobs, pending, chain if resend else None,
                                       outcome, _event_time(event))  # fmt: skip
        outcome.update({"jobs_total": len(made), "scanned": scanned, "planned": planned})
        outcome.update(self._in_flight_earlier(named))
        if more:
            outcome["continued_by"] = self._continue_backfill(event, cursor)
        self._record_step(record, step.hex[:12], outcome, finished=not more)
        logger.info("backfill", system=system, resend=resend, scanned=scanned, planned=planned,
                    jobs=made, continued_by=outcome.get("continued_by"))  # fmt: skip
        self._record(pending, request_id, outcome)
        return Resolution(request_id, 0, made, 0, 0)

    def _backfill_jobs(
        self, request_id: str, step_request: str, jobs: dict[str, JobPlan], pending: Outbox,
        chain: str | None, outcome: Item, since: datetime,
    ) -> list[str]:  # fmt: skip
        """A backfill step's jobs (job request id -> its plan, one per purpose set; `chain`: a
        `--resend`'s), and in `outcome` their request ids and the identities they carry.
        Their reminder is due a day past `since`, the event's time, not the clock's: a retry
        of the event (the same step id) writes the same item, not a second one."""
        # One marker before the jobs, naming them all: a resolver dying between them leaves
        # nothing the sweep cannot see (as `_rederived_jobs`), for one write whatever the jobs.
        system = next(iter(jobs.values())).system.name
        named = mark_rederived(self._table, request_id, step_request, set(jobs), [system],
                               self._expires())  # fmt: skip
        # (BatchWriteItem: the role's one write to WATCH, as the replay's reminders.) Every
        # run's ids, as the marker has them: a retry's reminder replaces the first run's.
        batch_put(self._table, [remind_jobs(step_request, named, since,
                                            self._expires())])  # fmt: skip
        made: list[str] = []
        carried: list[str] = []
        identities = 0
        for job_request, plan in sorted(jobs.items()):
            if not self._fan_out(job_request, {system: plan}, pending, set(), chain)[0]:
                continue
            made.append(system)
            carried.append(job_request)
            # What the job carries: on a retry of this event its own marks already name the
            # job, so `plan.needs` is empty while the job holds its identities.
            job = delivery.get_job(self._table, job_request, system)
            held = len(job.get("identifiers", [])) if job else 0
            identities += max(held, len(plan.needs))
        if carried:
            outcome["job_request_id"] = carried[0]
            if len(carried) > 1:
                outcome["job_request_ids"] = carried
            outcome["identities"] = identities
        return made

    def _record_step(self, record: str, step: str, outcome: Item, finished: bool) -> None:
        """The step's line beside its backfill's record (ops/backfills.py; none for a backfill
        started before records were kept); the chain's last step marks it finished."""
        if not record:
            return
        line: Item = {k: outcome[k] for k in ("job_request_id", "job_request_ids", "identities",
                                        "in_flight_earlier", "earlier_backfills")
                if k in outcome}  # fmt: skip
        line.setdefault("identities", 0)
        at = iso(self._clock()) if finished else None
        backfills.record_step(self._table, record, step, line, at, self._expires())

    def _in_flight_earlier(self, named: dict[str, set[str]]) -> Item:
        """Of the identities whose marks name another backfill's job, those whose job has no
        answer yet (pending or submitted), and the backfills those jobs belong to (review s14
        operator 6): a plain backfill reads them as carried and sends nothing, a `--resend`
        sends them again, while the earlier job may still fail or never go out. Counted and
        named, not refused. One BatchGetItem: each job's status and its owner's event type
        (a rederived job, `<request>~<hex>` too, belongs to no backfill)."""
        jobs = {job for found in named.values() for job in found}
        if not jobs:
            return {}
        wanted: dict[str, tuple[tuple[str, str], tuple[str, str]]] = {}
        owners: dict[str, str] = {}
        for job in jobs:
            job_request, _, system = job.partition(":")
            owners[job] = keys.made_by(job_request) or job_request
            wanted[job] = ((keys.request_pk(job_request), keys.job_sk(system)),
                           (keys.request_pk(owners[job]), keys.EVENT_SK))  # fmt: skip
        found = batch_get(self._table, [k for pair in wanted.values() for k in pair],
                          consistent=True, fields=("status", "event_type"))  # fmt: skip
        open_jobs = {
            job: owners[job] for job, (job_key, event_key) in wanted.items()
            if found.get(job_key, {}).get("status") in backfills.OPEN
            and found.get(event_key, {}).get("event_type") == "backfill"
        }  # fmt: skip
        people = [pk for pk, others in named.items() if others & open_jobs.keys()]
        if not people:
            return {}
        return {"in_flight_earlier": len(people),
                "earlier_backfills": sorted(set(open_jobs.values()))}  # fmt: skip

    def _continue_backfill(self, event: Item, after: dict[str, str] | None) -> str:
        """The follow-up backfill event, from the scan's cursor (`after`: the last item this
        one read). Its id comes from this event's and the write is conditional, so a retry of
        this event writes no second one."""
        operation = event.get("operation") or {}
        first = str(operation.get("continues") or event["request_id"])
        follow_up = str(uuid.uuid5(BACKFILL_NAMESPACE, str(event["request_id"])))
        carried_on: dict[str, str | int] = {
            "system": str(operation.get("system", "")),
            "resend": int(operation.get("resend") or 0),
            "after": json.dumps(after or {}, sort_keys=True),
            **({"record": str(operation["record"])} if operation.get("record") else {}),
            "continues": first,
        }
        item = CapturedEvent.by_operator(
            follow_up, "backfill", carried_on, dict(event.get("evidence") or {}), self._clock()
        )
        put_event(self._table, item.to_item(self._retention))
        return follow_up

    def _redrive(
        self, request_id: str, operation: dict[str, Any], pending: Outbox, deadline: float | None
    ) -> Resolution:
        """The sweep's findings (optout/sweep.py): unresolved events resolved again, stuck
        pending jobs' messages sent again, requests whose cited job proved nothing re-opened
        (`_reopen`). All are safe to repeat. The watch's old pending jobs (`resend`, untouched a
        day) are sent again only while their system's queue holds no message visible (one
        GetQueueAttributes per system per event): a backlog may still hold their messages, and
        re-sending a slow vendor's whole backlog would double it (`resend_held` counts them).

        Bounded like a replay: no reference starts after `deadline` (time.monotonic()); the
        ones left go into a follow-up redrive event, which this one's resolution names
        (`continued_by`). A request reference is a full resolution (some 25 AWS calls), so the
        sweep's 100 per event could outlast the resolver's 60 s."""
        requests, jobs = redrive_refs(operation)
        resolved = sent = reopened = 0
        left: list[tuple[str, str]] = []

        def late() -> bool:
            return deadline is not None and monotonic() >= deadline

        # A re-open costs about a resolution: bounded like the rest, the ones left carried on
        # (as `reopen` references, which the follow-up reads like the sweep's)
        reopens = reopen_refs(operation)
        for n, request in enumerate(reopens):
            if late():
                left = [("reopen", r) for r in reopens[n:]]
                break
            reopened += self._reopen(request, pending, request_id)
        for n, lost in enumerate(requests):
            if left or late():
                left += [("request", r) for r in requests[n:]]
                break
            event = get_event(self._table, lost)
            key = (keys.request_pk(lost), keys.RESOLUTION_SK)
            record = batch_get(self._table, [key], consistent=True).get(key)
            # A `denied` record does not end it: the sweep names one only beside jobs (review
            # s22 diff D4), and a run of a denied event stops by itself when none was begun.
            already = record is not None and not record.get("denied")
            if event is None or already or event.get("event_type") == "redrive":
                continue
            self.process(event, pending, deadline)
            resolved += 1
        queue_keys = {s.name: s.queue_key for s in self._systems.systems}
        for n, (job_request, system) in enumerate(jobs):
            if left or late():
                left += [("job", f"{r}:{s}") for r, s in jobs[n:]]
                break
            if system not in queue_keys:  # removed from the config: its queue is gone
                logger.warning("stuck job not redriven: system not in the config",
                               system=system, request_id=job_request)  # fmt: skip
                continue
            sent += self._send_if_pending(job_request, system, queue_keys[system], pending)
        resent, held = self._resend(resend_refs(operation), queue_keys, pending, late, left)
        outcome: Item = {"jobs_total": 0, "redriven_events": resolved,
                         "redriven_jobs": sent + resent}  # fmt: skip
        if reopened:
            outcome["reopened"] = reopened
        if held:
            outcome["resend_held"] = held
        if left:  # its id comes from this event's and is written only if absent: a retry of
            # this event writes no second one (the sweep's later checks find anything missed)
            follow_up = str(uuid.uuid5(REDRIVE_NAMESPACE, request_id))
            outcome["continued_by"] = redrive(self._table, left, self._clock(), self._retention,
                                              follow_up)  # fmt: skip
            logger.info("redrive continues", resolved=resolved, left=len(left),
                        continued_by=follow_up)  # fmt: skip
        self._record(pending, request_id, outcome)
        return Resolution(request_id, 0, [], 0, 0, 0, resolved + sent + resent)

    def _resend(
        self,
        refs: list[tuple[str, str]],
        queue_keys: dict[str, str],
        pending: Outbox,
        late: Callable[[], bool],
        left: list[tuple[str, str]],
    ) -> tuple[int, int]:
        """The watch's old pending jobs (`resend`): each sent again only while its system's
        queue has no message waiting. Returns (sent, held back); the ones not reached in time
        are added to `left` (the follow-up event's)."""
        backlog: dict[str, bool] = {}  # system -> its queue has messages waiting (or unread)
        sent = held = 0
        for n, (job_request, system) in enumerate(refs):
            if left or late():
                left += [("resend", f"{r}:{s}") for r, s in refs[n:]]
                break
            if system not in queue_keys:  # removed from the config: its queue is gone
                continue
            if system not in backlog:
                backlog[system] = self._backlog(queue_keys[system], system)
            if backlog[system]:
                held += 1
                continue
            sent += self._send_if_pending(job_request, system, queue_keys[system], pending)
        if held:
            logger.info("old pending jobs not sent again: their queue has a backlog",
                        held=held, systems=sorted(s for s, b in backlog.items() if b))  # fmt: skip
        return sent, held

    def _send_if_pending(
        self, job_request: str, system: str, queue_key: str, pending: Outbox
    ) -> int:
        """Queues the job's message again if it is still pending (1), else nothing (0)."""
        job = delivery.get_job(self._table, job_request, system)
        if job is None or job.get("status") != "pending":
            return 0
        pending.add(queue_key, job_message(job_request, system))  # the job's id, as `_job_item`
        return 1

    def _backlog(self, queue_key: str, system: str) -> bool:
        """Whether a system's queue has messages waiting; True if it could not be read (the
        watch tries again a day later; the warning says why nothing was sent)."""
        try:
            return self._queue.waiting(queue_key) > 0
        except (ClientError, BotoCoreError) as error:
            logger.warning("queue not read: old pending jobs not sent again", system=system,
                           error=type(error).__name__)  # fmt: skip
            return True

    def _reopen(self, request_id: str, pending: Outbox, by: str | None = None) -> int:
        """A resolved request left, for some system, with only cited jobs that ended as no
        proof for it (the sweep's `reopen`; status.SystemProof): that system's jobs planned
        again from the request's event identities. Their marks are freed by then, so this
        makes the request's own job `<request_id>:<system>` (absent: the system has none), or,
        if another job took the marks meanwhile, cites that one: added to the RESOLUTION's
        `covered`, where the jobs cited first stay as history. Safe to repeat: a system whose
        request has a job that can prove it is not planned again. A request denied since
        (its DENIAL, read with the rest) gets nothing new. `by`: the redrive event's id, kept
        with the re-open's time on the RESOLUTION (`reopens`). Returns the systems planned."""
        from optout.status import proofs  # noqa: PLC0415 - pydantic: only here
        from optout.store.proof import load_with_proof  # noqa: PLC0415 - imports optout.status

        items, covering = load_with_proof(self._table, request_id, consistent=True)
        if any(i["sk"] == DENIAL_SK for i in items):
            # Denied since the sweep named it (it names no denied request): no new job is
            # made for a request an operator decided not to act on (race24; as a re-run of a
            # request resolved before its denial asks nothing new, review s22 diff D2)
            logger.info("denied request not re-opened", request_id=request_id)
            return 0
        reopen = [p for p in proofs(items, covering) if p.reopen]
        systems = {p.system for p in reopen}
        event = next((i for i in items if i["sk"] == keys.EVENT_SK), None)
        if event is None or not systems:
            return 0
        # The unproving jobs' marks freed again first (idempotent; only marks that still name
        # them): a worker may have died before its free, and marks stored before a job's
        # answer freed them (no_record before 2026-11-30) would otherwise be cited once more.
        # Not a failure's listing: that is its worker's, whose run that lists it counts it
        # `JobsFailed` (review s22 diff C5, as A5 for the replay).
        # Only this request's identities' marks: a backfill step's job carries up to ~300
        # people, whose frees are their own (review s28 p1 F3: every re-open wrote them all
        # again). Those the citations relied on (`SystemProof.relied`: named, and reached
        # through a link, review s28 last L4: a linked identity's mark left naming the job
        # would be cited again and never re-sent). A RESOLUTION before `cited_linked`: the
        # named ones the job carried, else (reached only through a link) all, as before.
        now = iso(self._clock())
        named = list(dict.fromkeys(c.identifier.pk for c in self._claims(event)))
        for proof in reopen:
            for job in proof.covering:
                carried = {str(f["pk"]) for f in delivery.flights_of(job)}
                if proof.relied is not None:
                    mine: set[str] | None = carried & {keys.identity_pk(*i) for i in proof.relied}
                else:
                    mine = carried.intersection(named) or None
                delivery.free_ended(self._table, job, job["status"], now, job.get("receipt"),
                                    only=mine)  # fmt: skip
        derivation = self._pass()
        derivation.run(named, pending)
        asked = {p for p, chosen in (event.get("opt_out") or {}).items() if chosen is True}
        try:
            # each identity its own purposes, as at the first resolution (`_request_jobs`)
            own = self._request_jobs(request_id, derivation, pending, asked,
                                     jurisdictions_of(event), str(event["received_at"]),
                                     systems=systems, unless_denied=True)  # fmt: skip
        except _DeniedMeanwhile:
            # Denied after the read above (review s24 diff A D1): the job stored since is
            # withdrawn unsent, and the re-open ends as if it had seen the denial there. Jobs
            # of other systems it made before the denial landed stand, as any made before one.
            logger.info("denied request not re-opened: denied during the re-open",
                        request_id=request_id)  # fmt: skip
            return 0
        pending.note_derived(request_id, derivation.clusters(), set(named))
        resolution = next(i for i in items if i["sk"] == keys.RESOLUTION_SK)
        # A system with no plan now owes nothing (the person opted back in since, or its
        # purposes changed): recorded, so the request is not re-opened at every checkpoint.
        # One no longer configured is recorded as such (`not_configured`): the record must
        # not say the person opted back in when the operator removed the system.
        plans = own.plans
        unplanned = {s: now for s in sorted(systems - set(plans))}
        configured = {s.name for s in self._systems.systems}
        removed = {s: now for s in unplanned if s not in configured}
        reopen_at: Item = {"at": now, "systems": sorted(systems)} | ({"event_id": by} if by else {})
        cite_more(self._table, resolution, own.covered, _not_asked(own.own, plans, asked),
                  unplanned, removed, own.relied - set(named), own.split,
                  reopen_at)  # fmt: skip
        logger.info("request re-opened", request_id=request_id, systems=sorted(plans),
                    jobs=own.systems, not_planned=sorted(unplanned),
                    not_configured=sorted(removed))  # fmt: skip
        return len(plans)

    def _identifier_values(self, job: Item) -> list[Item]:
        """A final job's identifiers with their values again, from the identities' nodes."""
        pks = [keys.identity_pk(i["type"], i["key"]) for i in job.get("identifiers", [])]
        nodes = batch_get(self._table, [(pk, keys.NODE_SK) for pk in pks], consistent=True)
        return [
            {"type": node["id_type"], "key": node["key"], "value": node["value"]}
            for pk in pks
            if (node := nodes.get((pk, keys.NODE_SK))) and node.get("value")
        ]

    def _withdraw(self, operation: dict[str, Any], at: str) -> list[str]:
        """A rejected account's carry to the browser (a second account's, or a login's held
        at the cap: `holds.carries`), withdrawn (`withdraw_carry`); the
        device's pk, to derive again (its STATE drops what only the carry told it), or none.
        A retry of the event finds the edge withdrawn and derives again all the same."""
        hold = holds.get_hold(self._table, keys.hold_sk_of(str(operation.get("hold_id"))),
                              consistent=True)  # fmt: skip
        if hold is None or not holds.carries(hold):
            return []
        if hold.get("status") != "rejected":
            return []
        device, account = (keys.identity_pk(hold[s]["type"], hold[s]["key"]) for s in ("a", "b"))
        withdraw_carry(self._table, account, device, at, self._expires())
        # The carry may come from another identifier of that account: a login whose token binds
        # several is held at the cap once per identifier, and carries from the first alone
        # (`_link`). A reject of any of them is about the account on that browser (review37).
        graph = Graph(self._table, self._caps)
        for source, edge in graph.partition(device).asserted_by.items():
            if source != account and not edge.get("withdrawn") and \
                    source in graph.component(account):  # fmt: skip
                withdraw_carry(self._table, source, device, at, self._expires())
        return [device]

    def _held_pair(self, hold: Item) -> tuple[KeyedIdentifier, KeyedIdentifier] | None:
        """The held link's two identities, from their nodes (holds keep no identifier values;
        both nodes were written when the link arrived)."""
        pks = [keys.identity_pk(hold[s]["type"], hold[s]["key"]) for s in ("a", "b")]
        found = batch_get(self._table, [(pk, keys.NODE_SK) for pk in pks], consistent=True)
        nodes = [found[(pk, keys.NODE_SK)] for pk in pks if (pk, keys.NODE_SK) in found]
        if len(nodes) != 2:
            return None  # expired since: nothing left to link
        a, b = (KeyedIdentifier(n["id_type"], n["key"], n["value"]) for n in nodes)
        return a, b

    # -- helpers -----------------------------------------------------------------------------

    def _pass(self) -> Pass:
        return Pass(Graph(self._table, self._caps), self._systems, iso(self._clock()),
                    self._expires(), self._refresh(), self._quiet_since(),
                    added_back=self._retired_added_back())  # fmt: skip

    def _retired_added_back(self) -> dict[str, str]:
        """The configured systems an operator retired before (system -> the last `retired_at`,
        store/retired.py): a mark
        last written by then names only jobs of the retired contract, never sent or sent to
        a contract since ended, so it counts for nothing (review s18 operator M2). One
        BatchGetItem per container: a configured system cannot be retired (optout/retire.py),
        so only a deploy, which starts new containers, changes this."""
        if self._added_back is None:
            wanted = [keys.retired_key(s.name) for s in self._systems.systems]
            found = batch_get(self._table, wanted, consistent=True,
                              fields=("retired_at", "retired_again"))  # fmt: skip
            self._added_back = {sk: last_retired_at(item) for (_, sk), item in found.items()}
        return self._added_back

    def _quiet_since(self) -> int | None:
        """A no_record answer at or after this (epoch seconds) is inside the quiet period."""
        if self._quiet_hours <= 0:
            return None
        return int(self._clock().timestamp()) - self._quiet_hours * 3600

    def _record(self, pending: Outbox, request_id: str, fields: Item) -> None:
        """The event's RESOLUTION, written by the flush once its states are written and checked
        (`_resolved`): the sweep reads a RESOLUTION as "resolved", so one written before a
        flush that then failed for good would leave the event's states unwritten for ever."""
        pending.resolutions.append({"pk": keys.request_pk(request_id), "sk": keys.RESOLUTION_SK,
                                    "kind": "resolution", "resolved_at": iso(self._clock()),
                                    "expires_at": self._expires(), **fields})  # fmt: skip

    def _resolved(self, outbox: Outbox) -> None:
        """The batch's RESOLUTIONs, each only if absent (a re-run keeps the first record;
        `put_resolution`: one of a run that carried on replaces a `denied` one)."""
        for item in outbox.resolutions:
            put_resolution(self._table, item)
        outbox.resolutions.clear()

    def _expires(self) -> int:
        """Identity items live RECORD_RETENTION_DAYS past their last change or refresh."""
        return int((self._clock() + timedelta(days=self._retention)).timestamp())

    def _job_expires(self) -> int:
        """A job lives the retention plus the cite window: a request resolved within the
        window after it may cite it (its mark's `until_<purpose>` is at or after that
        request's `_expires()`), and its receipt outlives that request's record."""
        days = self._retention + self._cite_window
        return int((self._clock() + timedelta(days=days)).timestamp())

    def _now(self) -> int:
        return int(self._clock().timestamp())

    def _refresh(self) -> int:
        """Items expiring before this are rewritten when an event touches them."""
        return int((self._clock() + timedelta(days=self._retention / 2)).timestamp())


def _begun(items: Iterable[Item], request_id: str) -> bool:
    """Whether an earlier run of this request's event wrote a node already: a register of it
    names the request. That run is finished as it began, as one that made a job (review s22
    diff C1: a run that died after its nodes and before its first job left them holding the
    denied opt-out, and a later event of the cluster carried it to every system)."""
    for item in items:
        if item.get("kind") != "node":
            continue
        registers = [*(item.get("own") or {}).values(), item.get("gpc") or {}]
        if any(r.get("req") == request_id for r in registers):
            return True
    return False


# A job's final statuses (delivery/job_store.py FINAL; not imported: the resolver loads no
# worker code).
ENDED = delivery.ENDED
# What a replay did with one listed job (`_replay_job`)
SEND, LEFT, DROPPED, DELIVERED = "send", "left", "dropped", "delivered"


def split_request_id(
    request_id: str, purposes: tuple[Purpose, ...], part: tuple[int, int] | None = None
) -> str:
    """The request id of a request's further jobs for one purpose set (`_request_jobs`), or
    of one part (`part`: (part, of)) of its job for that set made as parts (`_by_size`). A
    job made whole keeps the id it had before parts existed."""
    tail = f":{part[0]}/{part[1]}" if part else ""
    token = uuid.uuid5(SPLIT_NAMESPACE, f"{request_id}:{'+'.join(purposes)}{tail}")
    # A flush's rederived job (`<owner>~<hex>` already): its parts are `<owner>~<hex>` too,
    # the one form of a request id of its own the routes and the CLI take
    return keys.own_request_id(keys.made_by(request_id) or request_id, token.hex[:12])


def _deriver(
    derived_by: dict[str, dict[str, int]],
    pushed_by: dict[str, tuple[str, ...]],
    cluster: tuple[str, ...],
    seen: frozenset[tuple[str, ...]] = frozenset(),
) -> str:
    """The batch's request whose derivation reached this cluster ("": none): one that named
    or linked an identity of it first, then one whose carry told it; a cluster a concurrent
    change brought in, the request of the cluster whose carry reached it. A request denied
    before its resolution, or a redrive (its re-open notes the request re-opened), derives
    nothing and is never one (review s22 diff C3: jobs "made by" a request not asked)."""
    pks = [pk for pk in cluster if pk != CARRY]
    found = [(tier, rid) for pk in pks for rid, tier in derived_by.get(pk, {}).items()]
    if found:
        return min(found)[1]
    for pk in pks:
        source = pushed_by.get(pk)
        if source is not None and source not in seen:
            owner = _deriver(derived_by, pushed_by, source, seen | {cluster})
            if owner:
                return owner
    return ""


@lru_cache(maxsize=8)  # ~960 ids each (~0.2 MB); a run asks about one request at a time
def _split_parts(
    request_id: str,
) -> dict[str, tuple[tuple[Purpose, ...], tuple[int, int] | None]]:
    """Every further request id a request can have, with its purpose set and part: one per
    purpose set (31), and one per part of each (`parts.PARTS`): some 950 uuid5s, computed
    only when an id met starts like one (`_is_further`)."""
    return {split_request_id(request_id, purposes, part): (purposes, part)
            for n in range(1, len(ALL_PURPOSES) + 1)
            for purposes in combinations(ALL_PURPOSES, n)
            for part in (None, *PARTS)}  # fmt: skip


def _is_further(request_id: str, job_request: str) -> bool:
    """Whether `job_request` is one of the request's further ids (`_split_parts`)."""
    return keys.made_by(job_request) == request_id and job_request in _split_parts(request_id)


def _reading_request(job_request: str) -> str | None:
    """The request that reads a job made under `job_request` as its own: that request, or the
    one a further id (`_is_further`) belongs to; None for a job the flush or a backfill step
    made under an id of its own (no request reads it)."""
    owner = keys.made_by(job_request)
    if owner is None:
        return job_request
    return owner if _is_further(owner, job_request) else None


def _job_key(job_id: str) -> tuple[str, str]:
    job_request, _, name = job_id.rpartition(":")
    return keys.request_pk(job_request), keys.job_sk(name)


def _step_plans(derivation: Pass, system: str, request_id: str, first: str) -> dict[str, JobPlan]:
    """A backfill step's jobs (job request id -> plan): one per purpose set, so each identity
    is sent its own cluster's purposes, never the union of the step's (review s30 operator
    F1). Each id comes from the step's event id and the purposes: a retry of the event finds
    its jobs (their marks name them: `covered`) and sends them again."""
    jobs: dict[str, JobPlan] = {}
    for purposes, by_system in sorted(derivation.plans_by_purposes().items()):
        plan = by_system.get(system)
        token = uuid.uuid5(BACKFILL_NAMESPACE, f"{request_id}:job:{'+'.join(purposes)}")
        job_request = keys.own_request_id(first, token.hex[:12])
        if plan is not None and (plan.needs or f"{job_request}:{system}" in plan.covered):
            jobs[job_request] = plan
    return jobs


def _event_time(event: Item) -> datetime:
    """When an operator's event was written (its `received_at`): the same on each retry."""
    return datetime.fromisoformat(str(event["received_at"]))


def _job_item(
    request_id: str, plan: JobPlan, targets: list[tuple[Member, list[Purpose]]], now: str,
    until: int, jurisdictions: list[str] | None, chosen_at: str,
) -> Item:  # fmt: skip
    """The job `_make_job` writes for `targets` (each identity, with what it needs)."""
    name = plan.system.name
    purposes = plan.sorted_purposes()
    identifiers = [m.identifier() for m, _ in targets]
    flights = [{"pk": m.pk, "purposes": need} for m, need in targets]
    return {
        "pk": keys.request_pk(request_id), "sk": keys.job_sk(name), "kind": "job",
        "job_id": f"{request_id}:{name}", "request_id": request_id, "system": name,
        "system_type": plan.system.type, "purposes": purposes,
        "identifiers": identifiers,
        "flights": delivery.stored_flights(identifiers, flights, purposes),
        "status": "pending", "attempts": 0, "created_at": now, "updated_at": now,
        "expires_at": until,
        # Only when known (most jobs: one code): an absent list reads as none known.
        **({"jurisdictions": jurisdictions} if jurisdictions else {}),
        **({"chosen_at": chosen_at} if chosen_at else {}),
    }  # fmt: skip


def _over_another(member: Member, system: str, need: list[Purpose], job_id: str,
                  chain: str | None) -> bool:  # fmt: skip
    """Whether a mark just written may have taken a purpose another job was named for: a
    `--resend` backfill's (`take_flight` takes whatever the mark names), or a purpose the mark
    read had in flight for another job (a legacy mark with no expiry, or one expiring before
    the request's record: `mark_flight`'s `take_before`). Not on a first request's path, where
    each purpose written was free; but on every 30-day renewal, whose marks name the earlier,
    done job in flight: one GetItem per renewal job (review s23 diff A2; a done job's marks
    cannot tell the race apart without reading the new job)."""
    if chain is not None:
        return True
    seen = member.deliveries.get(system) or {}
    inflight = set(seen.get("inflight", ()))
    return any(p in inflight and seen.get(delivery.job_attribute(p)) != job_id for p in need)


def _failed_since(job: Item, listed: str) -> bool:
    """The job failed again after its listing was written (`failed_at`): its `completed_at` is
    later. Not unequal: a listing written before 8308004 (2026-12-01) has the time its
    after-steps last ran, at or after the job's end (review s22 diff A1)."""
    completed = job.get("completed_at")
    return completed is None or str(completed) > listed


# The longest SQS keeps a message (the DLQs' MessageRetentionPeriod in template.yaml, SQS's
# maximum), counted from its last send to the jobs queue, which a move to the DLQ keeps. A
# redrive (`ops/redrive.py`, run first by `optout replay`) sends a letter again as a new
# message, so its 14 days start again: harmless, the worker reads the job (review s23 diff A4).
DEAD_LETTER_KEPT: Final = timedelta(days=14)


def _letter_expired(job: Item, now: datetime) -> bool:
    """The job's last failure is older than any message of it can be: its dead letter, if it
    had one, has expired, and no worker will ever list that failure (review s22 diff C6: a job
    left to its worker for that failure stayed `not_replayed` on every replay, for good)."""
    completed = job.get("completed_at")
    return completed is not None and str(completed) < iso(now - DEAD_LETTER_KEPT)


def _left_to_its_worker(system: str, marker: Item) -> str:
    """A job that failed again since its listing (an earlier failure's, left by a replay whose
    forget failed or that died after sending): its worker lists the new failure after freeing
    its marks. A round started now would have those marks freed and the pending job listed
    (review s22 race R2): it stays failed and listed, and the next replay takes it. Counted
    `not_replayed`, so `optout replay` says to run it again (review s22 diff A1)."""
    logger.info("failed job not replayed: its new failure is not listed yet",
                system=system, job_id=str(marker["sk"]))  # fmt: skip
    return LEFT


def jurisdictions_of(event: Item) -> list[str]:
    """Where a request came from, as its evidence keeps it (stated by the caller, geolocated by
    CloudFront, or an import's row): one code, or none. An operator event, a link or a hold's
    release has none: its jobs carry what the cluster was already opted out of, asked
    wherever that was, so their notice names no one state's law."""
    found = (event.get("evidence") or {}).get("jurisdiction")
    return [str(found)] if found else []


def _not_asked(
    own: Callable[[str], bool], plans: dict[str, JobPlan], asked: set[Purpose]
) -> dict[str, list[Item]]:
    """Per system, other requests' recent no_record jobs for which identities were not asked
    (the quiet period), with when each answered: the request's record of what it relied on.
    Not proof: the status counts no such system. (This request's own jobs (`own`: whether an
    id is one), met again by a retried event, are its own receipts.) Only for a system
    serving a purpose this request asked (`asked`), as earlier jobs are cited: the public
    view counts these systems as done, so a request that names someone's email and asks
    nothing, or asks only what the system does not serve, would read from its count whether
    that vendor holds the person (found by the s23 model search)."""
    found: dict[str, list[Item]] = {}
    for name, plan in sorted(plans.items()):
        if not plan.purposes & asked:
            continue
        heard = sorted((j, at) for j, at in plan.not_asked.items() if not own(j))
        heard = heard[:MAX_COVERING_JOBS]
        if heard:
            found[name] = [{"job_id": job, "answered_at": iso(datetime.fromtimestamp(at, UTC))}
                           for job, at in heard]  # fmt: skip
    return found


def _carried_only(
    event: Item, plans: dict[str, JobPlan], jobs: list[str], asked: set[Purpose],
    linked: list[str], earlier: dict[str, set[Purpose]] | None = None,
) -> list[str]:  # fmt: skip
    """Systems this consumer request made a job for only because of purposes carried to the
    identities it named (a browser's own opt-outs carried to an email it names without a
    token), none it asked itself (`asked`), and not already linked-only: its public status
    leaves them out. Earlier receipts and the quiet period's "no such person" are recorded only
    for asked purposes (`_fan_out`, `_not_asked`), so counting these jobs would show a stranger
    whether the vendors hold the person and what the person chose before (review s24 stranger
    Q1, Q2). A system that serves an asked purpose is counted, whatever else its job carries.
    `earlier`: per system, what an earlier run's further jobs carry that this run did not plan
    (an opt-in since, review s32 merges F4): the request's own jobs, counted as that run would
    have; a system may have no plan now at all."""
    if event.get("event_type") not in ("consent", "opt_out"):
        return []
    earlier = earlier or {}

    def purposes(name: str) -> set[Purpose]:
        return (plans[name].purposes if name in plans else set()) | earlier.get(name, set())

    return sorted(name for name in jobs
                  if name not in linked and not purposes(name) & asked)  # fmt: skip


def _cursor(after: str) -> dict[str, str] | None:
    """A follow-up backfill's `after` (JSON of the last key read) as the Scan's start."""
    if not after:
        return None
    key = json.loads(after)
    return {"pk": str(key["pk"]), "sk": str(key["sk"])} if key else None


def _states(table: Table, start: dict[str, str] | None) -> Iterator[tuple[Item, dict[str, str]]]:
    """Every STATE item after `start` (a key), each with its own key (where to go on from),
    read BACKFILL_PAGE items per Scan call, lazily: a backfill that stops reads no more."""
    kwargs: dict[str, Any] = {
        "TableName": table.name, "Limit": BACKFILL_PAGE,
        # Exactly what the resolver's IAM grant lets a Scan read (template.yaml: Attributes
        # and Select conditions): the key and the effective opt-outs
        "FilterExpression": "sk = :state", "ProjectionExpression": ", ".join(STATE_SCAN),
        "Select": "SPECIFIC_ATTRIBUTES",
        "ExpressionAttributeValues": {":state": {"S": keys.STATE_SK}},
    }  # fmt: skip
    if start:
        kwargs["ExclusiveStartKey"] = {"pk": {"S": start["pk"]}, "sk": {"S": start["sk"]}}
    while True:
        page = table.client.scan(**kwargs)
        for raw in page.get("Items", []):
            item = deserialize(raw)
            yield item, {"pk": str(item["pk"]), "sk": str(item["sk"])}
        if "LastEvaluatedKey" not in page:
            return
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _ref(identifier: KeyedIdentifier) -> dict[str, str]:
    return {"type": identifier.type, "key": identifier.key}


def _releasable(hold: Item, request_id: str) -> bool:
    """Marked `releasing` by this event (a release from before that step left it `held`), or
    already `released` by it: a retry of this event whose flush failed (the stream's retry,
    the sweep's redrive) must link and derive again, or the device never gets its state."""
    status = hold.get("status")
    by_this = hold.get("release_request_id") == request_id
    return status == "held" or (status in ("releasing", "released") and by_this)


def _this_write(found: Item, now: str) -> bool:
    """Whether the job item a conditional put found is the one this round wrote (its answer
    lost, botocore's retry refused by its own condition): made at this round's `now` and not
    touched since. A replayed event's job was made by an earlier invocation, at another time;
    read as a replay, this round's job would be queued without its in-flight marks, and the
    next event would make a second job (review s17 F3)."""
    return (
        found.get("created_at") == now
        and found.get("updated_at") == now
        and (found.get("status") == "pending")
    )
