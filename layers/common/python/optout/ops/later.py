"""A failed job whose opt-out later jobs delivered: found by the deadline watch, recorded once.

A job that fails for good frees its purposes from the identities' marks (store/delivery.py),
so the person's next event sends them under a job of its own, which the vendor may confirm.
Nothing made the failed job's requests (its own and those that cited it while it was in
flight) read that: they stayed `failed` until an operator's replay, which then dated them at
its own answer (docs/decisions.md, "Known limits in full").

The watch checks an unsettled request at least daily (`MAX_CHECK_GAP`). At each check of a
request with a failed job (own, further or cited) that has no record yet, it reads the marks
of the job's flights (`DELIVERY#<system>` of each identity) and the jobs they name now, and
records the cover when every flight is covered (`covered_by`): for each identity and each
purpose the failed job marked, the mark names another job that ended `done` and took that
identity (`status.taken`: sent, not refused, not unsent). A mark names the failed job's
id until a later job takes the purpose over (a failure keeps the name, `_free`), so the job
it names is one marked after the failed one. Partial cover (a later job for the email alone,
where the failed job held a phone too) records nothing: the request stays `failed`.

The record (`LATER#<system>#<job id>` under the request: read by the request's own Query, so
no view reads more) names the covering jobs and their `completed_at`, and its `completed_at`
is the latest of them. It is written only if absent and never changed: what it says was true
when written (a done job stays done), so a later rename of the marks (a renewal 30 days on,
a `backfill --resend`) moves nothing, and every view reads the request from failed to done
once, never back. A request already denied gets none (its status is the denial's).

A replay asks the same before it sends a listed failed job again (`cover_of`): one that later
jobs delivered is not sent (its vendor has the opt-out; a second send would only disclose the
identifiers again), and its request gets the record first (`recorded_for`). A failed job its
system's retirement closed is checked like any other: a retirement must not hide a delivery.
"""

from collections.abc import Mapping

from optout.ops.keys import DENIAL_SK
from optout.status import FAILED, SystemProof, proofs, taken
from optout.store import keys
from optout.store.batch import batch_get, put_if_absent
from optout.store.codec import Item
from optout.store.delivery import flights_of, job_attribute
from optout.store.proof import load_with_proof
from optout.store.table import Table

KIND = "later"


def failed_jobs(every: list[SystemProof]) -> list[tuple[str, Item]]:
    """(system, job) of each failed job a request's proofs read with no later record yet, not
    a stale citation (a job made before a retirement, cited by a request resolved after it:
    never proof). One a retirement closed is included: it reads `retired` (no longer owed),
    but later jobs that delivered it delivered it all the same, and a retirement must not hide
    that (proof38: such a system read `retired` for good, dated at the retirement, where its
    vendor had confirmed the opt-out). Its record makes it read done, as a job of it that
    ended done does (`SystemProof.retired_job`)."""
    return [(s.system, job) for s in every for job in s.jobs
            if job.get("status") == FAILED and s.delivered_later(job) is None
            and not s.stale(job)]  # fmt: skip


def covered_by(
    job: Item, marks: Mapping[str, Item], named: Mapping[str, Item]
) -> list[Item] | None:
    """The jobs that delivered every flight of a failed `job` (each: request id, job id,
    `completed_at`, the purposes it took over), or None when a flight is not covered.
    `marks`: the identities' marks for the job's system, by identity pk; `named`: the jobs
    those marks name, by job id."""
    takers = _takers(job, marks)
    if not takers:
        return None
    took: dict[str, set[str]] = {}
    for pk, purpose, taker_id in takers:
        taker = named.get(taker_id)
        if taker is None or taker.get("status") != "done":
            return None
        if not taker.get("completed_at"):  # a done job always has one: else no date to give
            return None
        if keys.split_identity_pk(pk) not in taken(taker):
            return None
        took.setdefault(taker_id, set()).add(purpose)
    return [{"request_id": job_id.rsplit(":", 1)[0], "job_id": job_id,
             "completed_at": str(named[job_id]["completed_at"]), "purposes": sorted(purposes)}
            for job_id, purposes in sorted(took.items())]  # fmt: skip


def _takers(job: Item, marks: Mapping[str, Item]) -> list[tuple[str, str, str]] | None:
    """(identity pk, purpose, the job its mark names) for each purpose of each flight of the
    failed `job`, or None when a mark is gone or still names `job` for a purpose: nothing can
    cover it. `record_later` reads the named jobs only when this is not None: the usual failed
    request (no later job took over) is checked daily, hourly once overdue, until a replay:
    one read (its marks) a check, not two (review37b)."""
    own_id, found = str(job["job_id"]), []
    for flight in flights_of(job):
        pk = str(flight["pk"])
        mark = marks.get(pk) or {}
        for purpose in flight["purposes"]:
            name = mark.get(job_attribute(str(purpose)))
            if not name or str(name) == own_id:
                return None
            found.append((pk, str(purpose), str(name)))
    return found


def record_later(
    table: Table, items: list[Item], covering: Mapping[tuple[str, str], Item], now: str
) -> list[Item]:
    """Record, under the request, each of its failed jobs that later jobs delivered; the
    records written (or found written by another check meanwhile) to read with `items`. One
    BatchGetItem (the marks) for a request with a failed job not recorded yet, a second (the
    jobs they name) only when every mark names another job (`_takers`); none for a request
    denied."""
    if any(i["sk"] == DENIAL_SK for i in items):
        return []
    event = next((i for i in items if i["sk"] == keys.EVENT_SK), None)
    if event is None:
        return []
    failed = failed_jobs(proofs(items, dict(covering)))
    if not failed:
        return []
    wanted = {(str(f["pk"]), keys.delivery_sk(system)) for system, job in failed
              for f in flights_of(job)}  # fmt: skip
    marks = batch_get(table, sorted(wanted), consistent=True)
    by_system = {system: {pk: mark for (pk, sk), mark in marks.items()
                          if sk == keys.delivery_sk(system)} for system, _ in failed}  # fmt: skip
    names = {(system, name) for system, job in failed
             for _, _, name in _takers(job, by_system[system]) or ()}  # fmt: skip
    taker_keys = [keys.job_item_key(system, job_id) for system, job_id in sorted(names)]
    found = batch_get(table, taker_keys, consistent=True) if taker_keys else {}
    written: list[Item] = []
    for system, job in failed:
        named = {str(j["job_id"]): j for (_, sk), j in found.items() if sk == keys.job_sk(system)}
        delivered = covered_by(job, by_system[system], named)
        if delivered is None:
            continue
        record = {
            "pk": event["pk"], "sk": keys.later_sk(system, str(job["job_id"])), "kind": KIND,
            "system": system, "job_id": job["job_id"], "delivered_by": delivered,
            "completed_at": max(str(d["completed_at"]) for d in delivered),
            "recorded_at": now,
        }  # fmt: skip
        if event.get("expires_at"):
            record["expires_at"] = event["expires_at"]
        if put_if_absent(table, record):  # the first check's answer stands
            written.append(record)
        else:  # another check wrote it first: read as it stands (it never changes)
            again = batch_get(table, [(record["pk"], record["sk"])], consistent=True)
            written += list(again.values())
    return written


def cover_of(table: Table, system: str, job: Item) -> list[Item] | None:
    """`covered_by` for one failed job, read now: what a replay asks before it sends the job
    again (docs/decisions.md, "A replay sends no job later jobs delivered"). One BatchGetItem
    (its marks), a second (the jobs they name) only when every mark names another job."""
    wanted = sorted({(str(f["pk"]), keys.delivery_sk(system)) for f in flights_of(job)})
    if not wanted:
        return None
    marks = {pk: mark for (pk, _), mark in batch_get(table, wanted, consistent=True).items()}
    takers = _takers(job, marks)
    if not takers:
        return None
    names = sorted({name for _, _, name in takers})
    found = batch_get(table, [keys.job_item_key(system, name) for name in names], consistent=True)
    return covered_by(job, marks, {str(j["job_id"]): j for j in found.values()})


def recorded_for(table: Table, request_id: str, system: str, job_id: str, now: str) -> bool:
    """The record of a failed job later jobs delivered, under the request that reads it as
    its own (`record_later`, the watch's rule, read again here): True when the request holds
    it now (written, or found written), or reads its denial (it gets none: its status is the
    denial's); False when the cover no longer reads so (a mark renamed meanwhile), or the
    request does not read the job as a failed one of its own."""
    items, covering = load_with_proof(table, request_id, consistent=True)
    if any(i["sk"] == DENIAL_SK for i in items):
        return True
    sk = keys.later_sk(system, job_id)
    return any(i["sk"] == sk for i in items + record_later(table, items, covering, now))
