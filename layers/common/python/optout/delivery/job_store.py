"""Data access for jobs: read them, move them through their lifecycle.

pending -> submitted (the vendor accepted it and works asynchronously) -> done | no_record |
failed, or pending -> done | no_record | failed at once; failed -> pending only by an operator
replay (store.delivery.reset_for_replay). A delivery attempt writes the job once, at its end
(a retry's receipt, `submitted`, or the final state), and counts itself in `attempts` there;
nothing is written before the vendor call (the worker's strongly consistent read decides
whether to send). No claim is taken, so two copies of one message (SQS is at-least-once) can
be in their vendor calls at once: every write of an attempt is therefore conditional on the
job being as the attempt read it, `pending` and in the same replay round (`replayed_at`), and
a status check's final write on the job still being `submitted`. The first write of a final
or submitted state stands; a later copy's write changes nothing (it returns False, and the
worker counts and logs it): it can neither re-open a failed job, overwrite a receipt or a
vendor reference, nor end a job an operator replayed after it read it.
"""

from collections.abc import Callable, Iterable
from typing import Any, Literal

from optout.store import keys
from optout.store.batch import batch_get
from optout.store.codec import Item, serialize
from optout.store.conditional import conditional_once
from optout.store.table import Table

FINISHED = ("done", "no_record")
FINAL = ("done", "no_record", "failed")
PENDING = "pending"
SUBMITTED = "submitted"


def job_key(request_id: str, system: str) -> dict[str, Any]:
    return {"pk": {"S": keys.request_pk(request_id)}, "sk": {"S": keys.job_sk(system)}}


def load_jobs(table: Table, refs: Iterable[tuple[str, str]]) -> dict[str, Item]:
    """(request_id, system) pairs -> job items by job_id; strongly consistent reads."""
    wanted = [(keys.request_pk(r), keys.job_sk(s)) for r, s in refs]
    found = batch_get(table, wanted, consistent=True)
    return {item["job_id"]: item for item in found.values()}


def _update(
    table: Table,
    job: Item,
    expression: str,
    condition: str,
    values: Item,
    ours: Callable[[Item], bool] | None = None,
) -> bool:
    """One conditional update; False when the condition failed (someone else moved the job).
    `ours` recognises, on the item a refused retry found, that this write itself took effect
    (store.conditional.conditional_once): then it is True."""
    old: Literal["ALL_OLD", "NONE"] = "ALL_OLD" if ours is not None else "NONE"
    return conditional_once(
        lambda: table.client.update_item(
            TableName=table.name,
            Key=job_key(job["request_id"], job["system"]),
            UpdateExpression=expression,
            ConditionExpression=condition,
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues=serialize(values),
            ReturnValuesOnConditionCheckFailure=old,
        ),
        ours or (lambda _old: False),
    )


def as_read(job: Item, values: Item) -> str:
    """The condition that the job is still as the caller read it: the same status (`pending`
    or `submitted`) in the same replay round (`replayed_at`, set by each operator replay), so
    a copy that read it before a replay cannot write over the replayed job. Adds its
    placeholders to `values`."""
    values[":read"] = SUBMITTED if job.get("status") == SUBMITTED else PENDING
    if isinstance(job.get("replayed_at"), str):
        values[":round"] = job["replayed_at"]
        return "#status = :read AND replayed_at = :round"
    return "#status = :read AND attribute_not_exists(replayed_at)"


def record(table: Table, job: Item, receipt: Item, now: str, retry_at: str) -> bool:
    """A failed attempt that will be retried: the job stays pending with the attempt's receipt
    and `retry_at`, when its message comes back (the vendor's Retry-After or our back-off),
    so the sweep does not take a job waiting that long for a stuck one (optout/sweep.py).
    False, with nothing written, when the job is no longer the pending job this attempt read
    (another copy of its message failed, submitted or finished it; a replay re-opened it): a
    retry must not re-open a failed job whose values are already dropped. A retry of this very
    write (the first committed, its answer lost) is refused by its own `updated_at` and
    recognised as this write (True): the attempt is counted once, not twice."""
    values: Item = {":pending": PENDING, ":receipt": receipt, ":now": now,
                    ":retry_at": retry_at, ":one": 1}  # fmt: skip
    condition = as_read({**job, "status": PENDING}, values)
    return _update(
        table,
        job,
        "SET #status = :pending, receipt = :receipt, updated_at = :now, retry_at = :retry_at"
        " ADD attempts :one REMOVE lease_until",
        f"{condition} AND (attribute_not_exists(updated_at) OR updated_at <> :now)",
        values,
        ours=lambda old: (
            old.get("status") == PENDING
            and old.get("updated_at") == now
            and old.get("retry_at") == retry_at
        ),
    )


def submit(table: Table, job: Item, receipt: Item, now: str) -> bool:
    """pending -> submitted: the vendor accepted the job; its reference is on the receipt.
    The first status check is number 1 (see JobMessage.confirm). True also when a retry of
    this write finds the job submitted at `now` (the first try committed, its answer was
    lost): the caller schedules the status check either way, and without one a submitted job
    is never checked again. False when the job is no longer the pending job this attempt read
    (`record`)."""
    values: Item = {":submitted": SUBMITTED, ":receipt": receipt, ":now": now, ":one": 1}
    condition = as_read({**job, "status": PENDING}, values)
    return _update(
        table,
        job,
        "SET #status = :submitted, receipt = :receipt, submitted_at = :now, updated_at = :now,"
        " confirms = :one ADD attempts :one REMOVE lease_until",
        condition,
        values,
        ours=lambda old: old.get("status") == SUBMITTED and old.get("submitted_at") == now,
    )


def claim_confirm(
    table: Table, job: Item, check: int, now: str, now_epoch: int, lease_seconds: int
) -> bool:
    """Take a submitted job for status check number `check`: False if it is no longer
    submitted, a newer check exists, or another check holds a live lease. True also when a
    retry of this very write (the first committed, its answer lost) finds the lease it wrote
    (its `lease_until` and `updated_at`): read as another's, the check would be refused by
    its own lease, a receive spent, and on its last one the job left submitted."""
    until = now_epoch + lease_seconds
    return _update(
        table,
        job,
        "SET lease_until = :until, updated_at = :now",
        "#status = :submitted AND confirms <= :check"
        " AND (attribute_not_exists(lease_until) OR lease_until < :epoch)",
        {
            ":until": until,
            ":now": now,
            ":submitted": SUBMITTED,
            ":check": check,
            ":epoch": now_epoch,
        },
        ours=lambda old: (
            old.get("status") == SUBMITTED
            and old.get("lease_until") == until
            and old.get("updated_at") == now
        ),
    )


def release_confirm(table: Table, job: Item, check: int) -> bool:
    """Give back the lease status check number `check` took, its vendor call never started:
    the lease and the claim's `updated_at` go back to what they were (the job as read)."""
    expression = "REMOVE lease_until"
    values: Item = {":submitted": SUBMITTED, ":check": check}
    if isinstance(job.get("updated_at"), str):
        expression = "SET updated_at = :before " + expression
        values[":before"] = job["updated_at"]
    return _update(
        table,
        job,
        expression,
        "#status = :submitted AND confirms <= :check AND attribute_exists(lease_until)",
        values,
    )


def advance_confirm(table: Table, job: Item, check: int, receipt: Item, now: str) -> bool:
    """Still not final: record that status check number `check` is the live one."""
    return _update(
        table,
        job,
        "SET confirms = :check, receipt = :receipt, updated_at = :now REMOVE lease_until",
        "#status = :submitted AND confirms < :check",
        {":submitted": SUBMITTED, ":check": check, ":receipt": receipt, ":now": now},
    )


def has_values(job: Item) -> bool:
    """Whether the job still holds identifier values (final jobs do not)."""
    return any(isinstance(i, dict) and i.get("value") for i in job.get("identifiers", []))


def without_values(job: Item) -> list[Item]:
    """The job's identifiers as a job keeps them once nothing will send it: types and keyed
    hashes, enough to show what was sent to whom, and no value."""
    return [
        {k: v for k, v in i.items() if k != "value"}
        for i in job.get("identifiers", [])
        if isinstance(i, dict)
    ]


def finish(
    table: Table,
    job: Item,
    status: str,
    receipt: Item,
    now: str,
    attempted: bool = False,
    found: Item | None = None,
) -> bool:
    """The only write of a final status (called by DeliveryService._finish only).

    Drops the identifier values from the job (types and keyed hashes stay, enough to show what
    was sent to whom): once a job is final nothing needs them, and a value kept is a value that
    can leak. `chosen_at` goes too, except from a failed job (an operator's replay sends it
    again): only the send needed it (the request's EVENT keeps its time), and a done job's
    item must stay within one write unit (tests/integration/test_job_item_size.py).
    `attempted`: this write ends a delivery attempt (not a status check), counted in
    `attempts`.

    Written only if the job is still as the caller read it (`as_read`): `pending` for the end
    of a delivery attempt, `submitted` for a status check's answer. False, with nothing
    written, when another copy of the message (or a check, or a replay) moved it first: its
    write stands. True also when a retry of this very write (the first committed, its answer
    was lost) finds the job in this status, completed at `now`: the caller's marks and
    listing must still follow. `found`, if given, is filled with the job as a refused write
    found it (the answer that stands: `keep_lost_answer`)."""
    if status not in FINAL:
        raise ValueError(f"not a final status: {status}")
    kept = without_values(job)
    values: Item = {":status": status, ":receipt": receipt, ":now": now, ":kept": kept}
    counted = ""
    dropped = "" if status == "failed" else ", chosen_at"  # a replay sends a failed one again
    if attempted:
        values[":one"] = 1
        counted = " ADD attempts :one"

    def ours(old: Item) -> bool:
        if found is not None:
            found.update(old)
        return old.get("status") == status and old.get("completed_at") == now

    return _update(
        table,
        job,
        "SET #status = :status, receipt = :receipt, updated_at = :now, completed_at = :now,"
        " identifiers = :kept" + counted + " REMOVE lease_until" + dropped,
        as_read(job, values),
        values,
        ours=ours,
    )


# The losing answers one job keeps: two copies of one message is the race, so the first entry
# is the one that matters; a bound keeps a redelivery storm from growing the item.
LOST_ANSWERS_KEPT = 3


def keep_lost_answer(table: Table, stored: Item, answer: Item) -> bool:
    """Append `answer` ({status, http_status, vendor_ref, at}: no identifier) to the job's
    `lost_answers`: a copy's `done` whose write lost to another copy's `no_record` or `failed`
    (DeliveryService._keep_lost_answer, only on that path). `stored` is the job as the refused
    write found it; written only while the job still holds that answer (the same status and
    `completed_at`) and the list is as read, so a retry of this very write (its answer lost)
    is recognised, not appended twice. False when the list is full or the job moved on."""
    kept = list(stored.get("lost_answers") or [])
    if len(kept) >= LOST_ANSWERS_KEPT or not isinstance(stored.get("completed_at"), str):
        return False
    values: Item = {":stored": stored["status"], ":completed": stored["completed_at"],
                    ":answer": [answer]}  # fmt: skip
    condition = "#status = :stored AND completed_at = :completed AND "
    expression = "SET lost_answers = :answer"
    if kept:
        values[":n"] = len(kept)
        expression = "SET lost_answers = list_append(lost_answers, :answer)"
        condition += "size(lost_answers) = :n"
    else:
        condition += "attribute_not_exists(lost_answers)"
    at = len(kept)  # where this answer goes: a retry of this write finds it there
    return _update(
        table,
        stored,
        expression,
        condition,
        values,
        ours=lambda old: list(old.get("lost_answers") or [])[at : at + 1] == [answer],
    )
