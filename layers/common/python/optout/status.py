"""A request's aggregate status, from its event, the resolver's outcome, its jobs, the earlier
jobs that already carry what it asked (its proof where it needs no job of its own) and an
operator's denial.

Per system, a request is satisfied by its own job, by jobs of earlier requests that carry the
same purposes for the same identities (`RESOLUTION.covered`), or both. A system counts as done
when every one of those jobs is done (or, its own, no_record), failed when one failed for
good, and processing otherwise. A denial (§7026(e)) decides the status whatever the jobs say.

A cited (covering) job is proof for this request only if it ended `done` and its receipt does
not leave out the identifier types this request relied on it for (`proves`): the request may
have cited it while it was still in flight, and it may then end `no_record` (a receipt for its
own request only) or done without sending that type (no record of it). Such a job is left
out; a system left with no job at all reads processing until the request has one of its own
(`reopen`: the sweep re-plans it; docs/decisions.md, "A cited job must prove what it was
cited for").

A system the resolver did not ask because its vendor recently answered "no such person" for
these identities (`RESOLUTION.not_asked`, the quiet period) has no job and no proof: the
status does not count it, and the operator views say why (`not_asked`).
"""

from dataclasses import dataclass
from typing import Final

from optout.api_models import RequestStatus, RequestStatusOut
from optout.ops.keys import DENIAL_SK
from optout.store import keys
from optout.store.codec import Item

DONE: Final = frozenset({"done", "no_record"})  # "no record" is a receipt, not an error
FAILED: Final = "failed"


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


@dataclass(frozen=True)
class SystemProof:
    """What satisfies one system for one request: its own job and/or earlier requests' jobs.
    `named`: the identities the request's event names (what it relied on a cited job for)."""

    system: str
    own: Item | None
    covering: tuple[Item, ...]
    named: frozenset[Identity] = frozenset()
    # The request's RESOLUTION names a recent no_record answer it relied on not to ask this
    # system (`not_asked`, the quiet period; a re-open may add it): with no job left that can
    # prove it, the system is not counted, as one never asked is not.
    quiet: bool = False

    def proves(self, cited: Item) -> bool:
        """A cited job proves this system for the request when its receipt is proof for a
        type of the identities the request named that the job carried (or, for a request
        that reached the job's identities only through links, of any of them)."""
        carried = _identities(cited)
        if not carried:  # a job that names no identifiers (none is written so): its status
            return cited.get("status") == "done"
        relied = {t for t, _ in carried & self.named} or {t for t, _ in carried}
        return bool(relied & proven_types(cited))

    def no_proof(self, cited: Item) -> bool:
        """A cited job that ended (done, no_record) as no proof for this request."""
        return cited.get("status") in DONE and not self.proves(cited)

    @property
    def jobs(self) -> tuple[Item, ...]:
        """The jobs that decide the system's state: its own and the cited ones still able to
        prove it (one that ended as no proof must neither complete nor hold back the request)."""
        kept = tuple(j for j in self.covering if not self.no_proof(j))
        return ((self.own,) if self.own else ()) + kept

    @property
    def reopen(self) -> bool:
        """Left with only cited jobs that ended as no proof: the request needs a job of its own
        (unless the quiet period says its vendor was not to be asked)."""
        return not self.jobs and not self.quiet

    @property
    def counted(self) -> bool:
        """Whether the status counts this system: not when it was not asked (quiet) and has
        no job that could prove it."""
        return bool(self.jobs) or not self.quiet

    @property
    def state(self) -> str:
        statuses = [job.get("status") for job in self.jobs]
        if any(s == FAILED for s in statuses):
            return FAILED
        if not statuses:  # awaiting its own job (the sweep's re-open)
            return "processing"
        return "done" if all(s in DONE for s in statuses) else "processing"


def covering_keys(items: list[Item]) -> list[tuple[str, str]]:
    """The (pk, sk) of every earlier job the resolution cites, to read in one batch."""
    resolution = next((i for i in items if i["sk"] == keys.RESOLUTION_SK), {})
    found: list[tuple[str, str]] = []
    for system, job_ids in sorted((resolution.get("covered") or {}).items()):
        for job_id in job_ids:
            request_id = str(job_id).rsplit(":", 1)[0]
            found.append((keys.request_pk(request_id), keys.job_sk(system)))
    return found


def not_asked(items: list[Item]) -> list[Item]:
    """Per system, each recent no_record job the resolver relied on not to ask its vendor
    again, with when the vendor answered and the line the operator views print."""
    resolution = next((i for i in items if i["sk"] == keys.RESOLUTION_SK), {})
    return [
        {"system": system, "job_id": entry["job_id"], "answered_at": entry["answered_at"],
         "note": f"not asked: the vendor answered no such person at {entry['answered_at']} "
                 f"(job {entry['job_id']})"}
        for system, entries in sorted((resolution.get("not_asked") or {}).items())
        for entry in entries
    ]  # fmt: skip


def proofs(items: list[Item], covering: dict[tuple[str, str], Item]) -> list[SystemProof]:
    """Per system, in name order. A cited job that no longer exists (expired) is left out."""
    by_sk = {item["sk"]: item for item in items}
    named = frozenset(_identities(by_sk.get(keys.EVENT_SK, {})))
    own = {i["sk"][len(keys.JOB_PREFIX) :]: i for i in items if i["sk"].startswith(keys.JOB_PREFIX)}
    cited: dict[str, list[Item]] = {}
    for system, job_ids in (by_sk.get(keys.RESOLUTION_SK, {}).get("covered") or {}).items():
        for job_id in job_ids:
            key = (keys.request_pk(str(job_id).rsplit(":", 1)[0]), keys.job_sk(system))
            if key in covering:
                cited.setdefault(system, []).append(covering[key])
    names = sorted(set(own) | set(cited))
    quiet = set(by_sk.get(keys.RESOLUTION_SK, {}).get("not_asked") or ())
    return [SystemProof(s, own.get(s), tuple(cited.get(s, ())), named, s in quiet) for s in names]


def aggregate(
    request_id: str,
    items: list[Item],
    covering: dict[tuple[str, str], Item] | None = None,
    public: bool = False,
) -> RequestStatusOut | None:
    """`public`: the consumer's view, without the systems the request reached only through
    identifiers linked to the ones it named (`RESOLUTION.linked_only`): the business's
    knowledge of who is linked to whom is not the requester's to read. Operators see all."""
    by_sk = {item["sk"]: item for item in items}
    event = by_sk.get(keys.EVENT_SK)
    if event is None:
        return None
    resolution = by_sk.get(keys.RESOLUTION_SK)
    systems = [s for s in proofs(items, covering or {}) if s.counted]
    if public and resolution is not None:
        hidden = set(resolution.get("linked_only") or ())
        systems = [s for s in systems if s.system not in hidden]
    done = sum(1 for s in systems if s.state == "done")
    failed = sum(1 for s in systems if s.state == FAILED)
    denial = by_sk.get(DENIAL_SK)
    status: RequestStatus
    completed_at: str | None = None
    if denial is not None:
        status = "denied"
    elif resolution is None:
        status = "received"
    elif done + failed < len(systems):
        status = "processing"
    elif failed:
        status = "failed"
    else:
        status = "completed"
        stamps = [str(j["completed_at"]) for s in systems for j in s.jobs if j.get("completed_at")]
        # Satisfied by earlier receipts only: complete when the resolver found them.
        completed_at = max([str(resolution.get("resolved_at") or ""), *stamps]) or None
    return RequestStatusOut(
        request_id=request_id,
        status=status,
        received_at=event["received_at"],
        deadline=event["deadline"],
        completed_at=completed_at,
        systems_total=len(systems),
        systems_done=done,
        systems_failed=failed,
        denied_at=denial.get("denied_at") if denial else None,
        denial_reason=denial.get("reason_code") if denial else None,
    )
