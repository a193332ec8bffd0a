"""Operator views (IAM-only routes): what happened to a request, and what we hold on a person.

Answers carry identifier *types* and keyed hashes, never identifier values: an operator who
looks someone up already has the value, and the answer may end up in a ticket.
"""

from collections.abc import Sequence
from typing import Any

from optout import identifiers as ids
from optout.errors import NotFound
from optout.ops.keys import DENIAL_SK
from optout.resolver.policy import OwnState
from optout.retire import retirement_view
from optout.status import (
    SystemProof,
    aggregate,
    failures_for,
    job_retirements,
    later_views,
    not_asked,
    not_taken,
    own_identities,
    proofs,
    receipt_for,
    retired_systems,
    skipped_systems,
    stored_calendar,
)
from optout.store import keys
from optout.store.codec import Item
from optout.store.delivery import marks_of, settled
from optout.store.identity import graph_items
from optout.store.proof import jobs_outcome, load_with_proof, marked_jobs
from optout.store.requests import load_request
from optout.store.retired import last_retired_at, retirements
from optout.store.table import Table

EVENT_FIELDS = ("event_type", "source", "received_at", "deadline", "opt_out", "gpc", "evidence",
                "operation")  # fmt: skip
DENIAL_FIELDS = ("denied_at", "denied_by", "reason_code", "reason")
JOB_FIELDS = ("status", "attempts", "purposes", "created_at", "updated_at", "submitted_at",
              "completed_at", "replays", "replayed_at", "replayed_by")  # fmt: skip


class AdminService:
    def __init__(self, table: Table, hash_key: bytes) -> None:
        self._table = table
        self._secret = hash_key

    def request_detail(self, request_id: str) -> dict[str, Any]:
        """The record a regulator asks for: the request, how it arrived, and per system the
        receipt that satisfies it: its own, or an earlier request's (date and request id)."""
        if keys.made_by(request_id) is not None:  # jobs under a request id of their own
            return self.job_request_detail(request_id)
        items, covering = load_with_proof(self._table, request_id, consistent=True, quiet=True)
        status = aggregate(request_id, items, covering)
        if status is None:
            raise NotFound("no request with this request_id", field="request_id")
        by_sk = {item["sk"]: item for item in items}
        event = by_sk[keys.EVENT_SK]
        resolution = by_sk.get(keys.RESOLUTION_SK, {})
        denial = by_sk.get(DENIAL_SK)
        every = proofs(items, covering)
        own = own_identities(items)  # a cited job's receipt lists no other person's (F2)
        detail = {
            **status.model_dump(),
            # the calendar stored with the answer (absent before 2026-12-01): not in the public
            # answer, which names no located state (review s18 diff C1, C3)
            **_calendar(event),
            "event": {name: event.get(name) for name in EVENT_FIELDS}
            | {"identifier_types": _types(event), "links": len(event.get("links", []))},
            "resolution": {
                k: v
                for k, v in resolution.items()
                if k not in ("pk", "sk", "kind", *keys.RESOLUTION_KEYED)
            },
            # a system the quiet period did not ask is under `not_asked` below, not here
            "systems": [_proof_view(proof, own) for proof in every if not proof.quiet_only],
            # every other configured system, with why it got no job (None: not recorded), the
            # systems file in force (its fingerprint), and the systems retired for it by name
            "systems_skipped": skipped_systems(resolution),
            "systems_config": resolution.get("systems_sha256"),
            "retired": retired_systems(every),
        }
        part = not_taken(every)
        if part:  # done, but a type the request named not taken there: complied with in part
            detail["not_taken"] = part
        if event.get("event_type") == "backfill":
            detail.update(self._backfill_jobs(items))
        quiet = not_asked(items, covering)
        if quiet:  # systems with no job and no proof: why (not counted in the status)
            detail["not_asked"] = quiet
        if denial is not None:
            detail["denial"] = {k: denial.get(k) for k in DENIAL_FIELDS} | {
                # the systems its jobs were made for (not failed) by the time it was denied, or
                # by a resolution the denial landed in: they may reach their vendor (ops/denial)
                "systems_under_way": sorted(denial.get("systems_under_way") or ()),
            }
        return detail

    def _backfill_jobs(self, items: list[Item]) -> dict[str, Any]:
        """A backfill step's jobs (named by its `REDERIVED#` markers: they live under a
        request id of their own), each with its status and receipt, and the step's counts
        and status from them: the step itself plans for no system, so without this it read
        "completed, 0 of 0" even when the vendor refused its job (review s14 operator 1)."""
        marked = marked_jobs(self._table, items, consistent=True)
        if not marked:
            return {"jobs": []}
        return self._outcome(marked)

    def _outcome(self, jobs: Sequence[tuple[str, str, Item | None]]) -> dict[str, Any]:
        """Jobs under a request id of their own, each viewed, and their status and counts: a
        job its system's retirement left open is `retired`, no longer owed, counted neither
        open nor failed (status.retired_job; the retirements are read only when a job is open,
        one Query)."""
        found = job_retirements(self._table, [(system, job) for _, system, job in jobs])
        views, statuses = [], []
        for (job_request, system, job), retirement in zip(jobs, found, strict=True):
            view = _marked_view(job_request, system, job)
            if retirement is not None:
                view["retired"] = retirement_view(retirement)
                statuses.append("retired")
            else:
                statuses.append(str(view.get("status")))
            views.append(view)
        return {"jobs": views} | jobs_outcome(statuses)

    def job_request_detail(self, job_request: str) -> dict[str, Any]:
        """Jobs made under a request id of their own (`<request id>~<hex>`: a backfill step's,
        or the resolver's rederived jobs), which have no event: each job with its status and
        receipt, and the request that made them (`made_by`, for `optout status`)."""
        items = load_request(self._table, job_request, consistent=True)
        jobs = [(job_request, str(i["system"]), i) for i in items
                if str(i["sk"]).startswith(keys.JOB_PREFIX)]  # fmt: skip
        if not jobs:
            raise NotFound("no request with this request_id", field="request_id")
        return {"request_id": job_request, "made_by": keys.made_by(job_request)} | self._outcome(
            jobs
        )

    def lookup(self, id_type: ids.IdType, value: str) -> dict[str, Any]:
        """One identity: its own choices (with the requests that made them), its effective
        state, what each system was sent, and its direct links (types and hashes only)."""
        identifier = ids.normalise(id_type, value)
        key = ids.lookup_key(self._secret, identifier)
        pk = keys.identity_pk(id_type, key)
        # One query, no refs; strongly consistent, as the jobs it names are read: a lagging
        # mark named a failed job a newer opt-out had replaced (review s34b C1)
        items = {item["sk"]: item for item in graph_items(self._table, pk, consistent=True)}
        # A node expires; an opted-out STATE is kept without it (docs/decisions.md, "An opt-out
        # is kept"): that is still a record of this identifier, with no own choices left.
        state = items.get(keys.STATE_SK, {})
        node = items.get(keys.NODE_SK)
        if node is None and not state:
            raise NotFound("no record of this identifier", field="value")
        own = OwnState.from_item(node or {})
        found = retirements(self._table) if marks_of(items.values()) else {}
        retired = {system: last_retired_at(r) for system, r in found.items()}
        deliveries = settled(self._table, marks_of(items.values()), retired=retired)
        return {
            "type": id_type,
            "key": key,
            "own_choices": {p: r.to_item() for p, r in own.choices.items()},
            "gpc": own.gpc.to_item() if own.gpc else None,
            "effective": state.get("opt_out", {}),
            "delivered": _purposes({s: d.confirmed for s, d in deliveries.items()}),
            "in_flight": _purposes({s: d.in_flight for s, d in deliveries.items()}),
            # A retired system's open jobs: no longer owed (optout/retire.py), with who, when, why.
            "retired": {
                s: {"purposes": sorted(d.retired)} | retirement_view(found[s])
                for s, d in sorted(deliveries.items())
                if d.retired
            },
            # A vendor's "no such person" answered that request only: not delivered.
            "no_record": {
                s: list(d.no_record) for s, d in sorted(deliveries.items()) if d.no_record
            },
            # A job that failed for good: the system may hold the person, and was not told.
            "failed": {s: list(d.failed) for s, d in sorted(deliveries.items()) if d.failed},
            "updated_at": state.get("updated_at") or (node or {}).get("updated_at"),
            "links": _edges(items, keys.LINK_PREFIX),
            "asserts": _edges(items, keys.ASSERTS_PREFIX),
            "asserted_by": _edges(items, keys.ASSERTED_PREFIX),
        }


def _purposes(purposes: dict[str, set[str]]) -> dict[str, list[str]]:
    """Per system that has any, its purposes, sorted."""
    return {s: sorted(p) for s, p in sorted(purposes.items()) if p}


def _edges(items: dict[str, Item], prefix: str) -> list[dict[str, str]]:
    """The other ends of one kind of edge: types and keyed hashes only."""
    return [
        dict(zip(("type", "key"), sk[len(prefix) :].split("#", 1), strict=True))
        for sk in sorted(items)
        if sk.startswith(prefix)
    ]


def _types(item: Item) -> list[str]:
    return sorted({i["type"] for i in item.get("identifiers", [])})


def _job_view(job: Item, own: set[str] | None = None) -> dict[str, Any]:
    """`own`: the keyed identities its receipts' identity lists keep (`status.receipt_for`:
    a view of one request); None: all (a backfill step's jobs)."""
    view: dict[str, Any] = {"system": job["system"], "type": job.get("system_type")}
    view.update({name: job.get(name) for name in JOB_FIELDS})
    view.update(identifier_types=_types(job), receipt=receipt_for(job.get("receipt", {}), own))
    if job.get("failures"):  # a replayed job: the failed receipts it started over from
        view["failures"] = failures_for(job, own)
    if job.get("lost_answers"):  # a copy's `done` that lost to this receipt (a race)
        view["lost_answers"] = job["lost_answers"]
    return view


def _marked_view(job_request: str, system: str, job: Item | None) -> dict[str, Any]:
    """A job under a request id of its own, with that id and the job id `optout status` and
    the exports name it by; `pending` while the step has not written it yet."""
    view = _job_view(job) if job else {"system": system, "status": "pending"}
    return view | {"request_id": job_request, "job_id": f"{job_request}:{system}"}


def _proof_view(proof: SystemProof, own: set[str]) -> dict[str, Any]:
    """A system's own job (if any) and the earlier receipts that also satisfy it; `own`: the
    request's keyed identities, the only ones their receipts list (review s28 p1 F2)."""
    view: dict[str, Any] = (_job_view(proof.own, own) if proof.own
            else {"system": proof.system, "status": proof.state})  # fmt: skip
    view["proof"] = "own" if not proof.covering else ("both" if proof.own_jobs else "earlier")
    if proof.more:  # further own jobs: the request named several unlinked people
        view["split_jobs"] = [_job_view(job, own) | {"job_id": job.get("job_id")}
                              for job in proof.more]  # fmt: skip
    view["satisfied"] = proof.state
    if proof.later:  # failed jobs here whose every flight later jobs delivered (ops/later.py)
        view["delivered_later"] = later_views(proof)
    if proof.retired:  # an operator retired the system: its open jobs are no longer owed
        view["satisfied"] = "retired"
        view["retired"] = retirement_view(proof.retirement or {})
    elif not proof.counted:  # settled with no job: why it is not counted (status.SystemProof)
        view["satisfied"] = view["status"] = "not_planned" if proof.unplanned else "not_asked"
        if proof.unplanned:
            view["not_planned_reason"] = proof.unplanned_why
    if proof.covering:
        view["satisfied_by"] = [
            _covering_view(job, own) | ({"no_proof": True} if proof.no_proof(job) else {})
            for job in proof.covering
        ]
    return view


def _covering_view(job: Item, own: set[str]) -> dict[str, Any]:
    """An earlier request's job, with its history as the exports give it: a covering job
    that failed and was replayed must not read as a clean delivery."""
    view = {"request_id": job["request_id"], "job_id": job["job_id"],
            "status": job.get("status"), "completed_at": job.get("completed_at"),
            "purposes": job.get("purposes"), "receipt": receipt_for(job.get("receipt", {}), own),
            "attempts": job.get("attempts"), "replays": job.get("replays"),
            "replayed_at": job.get("replayed_at"),
            "replayed_by": job.get("replayed_by")}  # fmt: skip
    if job.get("failures"):
        view["failures"] = failures_for(job, own)
    if job.get("lost_answers"):
        view["lost_answers"] = job["lost_answers"]
    return view


def _calendar(event: dict[str, Any]) -> dict[str, Any]:
    calendar = stored_calendar(event)
    return {"deadline_jurisdiction": calendar} if calendar else {}
