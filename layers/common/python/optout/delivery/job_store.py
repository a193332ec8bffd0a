"""Data access for jobs: read them, move them through their lifecycle.

pending -> submitted (the vendor accepted it and works asynchronously) -> done | no_record |
failed. A delivery attempt writes the job once, at its end (a retry's receipt, `submitted`, or
the final state), and counts itself in `attempts` there; nothing is written before the vendor
call (the worker's strongly consistent read decides whether to send). Every write is
conditional on the job not being finished (done / no_record), so a redelivered or duplicated
message can never overwrite a receipt, and a message that arrives after the receipt is
acknowledged without a vendor call; a submitted job is never sent again, only confirmed.
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
SUBMITTED = "submitted"
NOT_FINISHED = "attribute_exists(pk) AND NOT #status IN (:done, :no_record)"


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
    common = {k: v for k, v in ((":done", "done"), (":no_record", "no_record")) if k in condition}
    old: Literal["ALL_OLD", "NONE"] = "ALL_OLD" if ours is not None else "NONE"
    return conditional_once(
        lambda: table.client.update_item(
            TableName=table.name,
            Key=job_key(job["request_id"], job["system"]),
            UpdateExpression=expression,
            ConditionExpression=condition,
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues=serialize({**common, **values}),
            ReturnValuesOnConditionCheckFailure=old,
        ),
        ours or (lambda _old: False),
    )


def record(table: Table, job: Item, receipt: Item, now: str, retry_at: str) -> bool:
    """A failed attempt that will be retried: the job stays pending with the attempt's receipt
    and `retry_at`, when its message comes back (the vendor's Retry-After or our back-off),
    so the sweep does not take a job waiting that long for a stuck one (optout/sweep.py)."""
    return _update(
        table,
        job,
        "SET #status = :pending, receipt = :receipt, updated_at = :now, retry_at = :retry_at"
        " ADD attempts :one REMOVE lease_until",
        NOT_FINISHED + " AND #status <> :submitted",
        {
            ":pending": "pending",
            ":receipt": receipt,
            ":now": now,
            ":retry_at": retry_at,
            ":submitted": SUBMITTED,
            ":one": 1,
        },
    )


def submit(table: Table, job: Item, receipt: Item, now: str) -> bool:
    """pending -> submitted: the vendor accepted the job; its reference is on the receipt.
    The first status check is number 1 (see JobMessage.confirm). True also when a retry of
    this write finds the job submitted at `now` (the first try committed, its answer was
    lost): the caller schedules the status check either way, and without one a submitted job
    is never checked again."""
    return _update(
        table,
        job,
        "SET #status = :submitted, receipt = :receipt, submitted_at = :now, updated_at = :now,"
        " confirms = :one ADD attempts :one REMOVE lease_until",
        NOT_FINISHED + " AND #status <> :submitted",
        {":submitted": SUBMITTED, ":receipt": receipt, ":now": now, ":one": 1},
        ours=lambda old: old.get("status") == SUBMITTED and old.get("submitted_at") == now,
    )


def claim_confirm(
    table: Table, job: Item, check: int, now: str, now_epoch: int, lease_seconds: int
) -> bool:
    """Take a submitted job for status check number `check`: False if it is no longer
    submitted, a newer check exists, or another check holds a live lease."""
    return _update(
        table,
        job,
        "SET lease_until = :until, updated_at = :now",
        "#status = :submitted AND confirms <= :check"
        " AND (attribute_not_exists(lease_until) OR lease_until < :epoch)",
        {
            ":until": now_epoch + lease_seconds,
            ":now": now,
            ":submitted": SUBMITTED,
            ":check": check,
            ":epoch": now_epoch,
        },
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


def finish(
    table: Table, job: Item, status: str, receipt: Item, now: str, attempted: bool = False
) -> bool:
    """The only write of a final status (called by DeliveryService._finish only).

    Drops the identifier values from the job (types and keyed hashes stay, enough to show what
    was sent to whom): once a job is final nothing needs them, and a value kept is a value that
    can leak. `attempted`: this write ends a delivery attempt (not a status check), counted in
    `attempts`. False if the job was already done / no_record."""
    if status not in FINAL:
        raise ValueError(f"not a final status: {status}")
    kept = [
        {k: v for k, v in i.items() if k != "value"}
        for i in job.get("identifiers", [])
        if isinstance(i, dict)
    ]
    values: Item = {":status": status, ":receipt": receipt, ":now": now, ":kept": kept}
    counted = ""
    if attempted:
        values[":one"] = 1
        counted = " ADD attempts :one"
    return _update(
        table,
        job,
        "SET #status = :status, receipt = :receipt, updated_at = :now, completed_at = :now,"
        " identifiers = :kept" + counted + " REMOVE lease_until",
        NOT_FINISHED,
        values,
    )
