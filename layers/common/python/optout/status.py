"""A request's aggregate status, from its event, the resolver's outcome, its jobs, the earlier
jobs that already carry what it asked (its proof where it needs no job of its own) and an
operator's denial.

Per system, a request is satisfied by its own job, by jobs of earlier requests that carry the
same purposes for the same identities (`RESOLUTION.covered`), or both. A system counts as done
when every one of those jobs is done (or no_record), failed when one failed for good, and
processing otherwise. A denial (§7026(e)) decides the status whatever the jobs say.

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


@dataclass(frozen=True)
class SystemProof:
    """What satisfies one system for one request: its own job and/or earlier requests' jobs."""

    system: str
    own: Item | None
    covering: tuple[Item, ...]

    @property
    def jobs(self) -> tuple[Item, ...]:
        return ((self.own,) if self.own else ()) + self.covering

    @property
    def state(self) -> str:
        statuses = [job.get("status") for job in self.jobs]
        if any(s == FAILED for s in statuses):
            return FAILED
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
    own = {i["sk"][len(keys.JOB_PREFIX) :]: i for i in items if i["sk"].startswith(keys.JOB_PREFIX)}
    cited: dict[str, list[Item]] = {}
    for system, job_ids in (by_sk.get(keys.RESOLUTION_SK, {}).get("covered") or {}).items():
        for job_id in job_ids:
            key = (keys.request_pk(str(job_id).rsplit(":", 1)[0]), keys.job_sk(system))
            if key in covering:
                cited.setdefault(system, []).append(covering[key])
    names = sorted(set(own) | set(cited))
    return [SystemProof(s, own.get(s), tuple(cited.get(s, ()))) for s in names]


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
    systems = proofs(items, covering or {})
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
