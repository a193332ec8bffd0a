"""A record per backfill: the report's line for it, and the warning when two overlap (review s14
operator 1 and 6).

`optout backfill SYSTEM` runs as a chain of events (resolver/service.py `_backfill`), each step
making jobs under request ids of their own (`<backfill id>~<hex>`), one per purpose set: each
person is sent their own purposes (review s30 operator F1). Nothing else
lists a year's backfills (the by-day index holds every event of every day), so the admin route
writes, with the backfill's event (one transaction), `BACKFILL / <yyyy>#<backfill id>`: the
system, whether it resends, when it started, who started it, and an empty `steps` map. Each
step writes its line once, an item of its own beside the record, `<yyyy>#<backfill id>#<hex>`
(`if_not_exists`: a step the stream retries keeps its first line, taken before its own marks
could hide anything; one item per step keeps the record small however long the chain, review
s30 receipts F3): its job request id (if it made a
job; `job_request_ids` lists them all when it made more than one), the identities its jobs
carry, and the identities whose marks name a still open job of
an earlier backfill (`in_flight_earlier`, with those backfills' ids). The step that names no
follow-up sets `finished_at` on its line. `records_since` reads both and folds the lines into
the record's `steps` (a record written before 2026-12-03 holds its lines in `steps` itself).

A year's figures are one Query of its records and their step lines (paged) and one
BatchGetItem (status and creation time) of their jobs. Backfills answer no consumer's
request: they are not in the §7102 figures.

A job its system's retirement left open (not done, made before `retired_at`: status.py
`retired_job`, the rule of a request's own job) is no longer owed: `retired`, counted neither
open nor failed, here and in `optout status` (admin.py). The retirements are read (one Query of
the RETIRED partition) only when a job is not done.
"""

from collections import Counter
from collections.abc import Iterable

from optout.store import keys, query
from optout.store.batch import batch_get
from optout.store.codec import Item, serialize
from optout.store.table import Table

Key = tuple[str, str]
OPEN = ("pending", "submitted")  # a job still owed an answer
DONE = ("done", "no_record")  # answered (store/proof.py `jobs_outcome` counts them alike)
RETIRED = "retired"  # a job its system's retirement left open: no longer owed
STEP_KIND = "backfill_step"  # a step's line, an item beside its record
FIGURES = ("backfills", "resends", "unfinished", "identities", "in_flight_earlier",
           "jobs_done", "jobs_failed", "jobs_open", "jobs_retired")  # fmt: skip


def record_item(
    backfill_id: str, operation: dict[str, str | int], started_at: str, acted_by: str,
    expires_at: int,
) -> Item:  # fmt: skip
    """The record the admin route writes with the backfill's event (`operation["record"]`
    names its sort key, which every step of the chain carries on)."""
    return {"pk": keys.BACKFILL_PK, "sk": str(operation["record"]), "kind": "backfill",
            "backfill_id": backfill_id, "system": operation["system"],
            "resend": int(operation.get("resend") or 0), "started_at": started_at,
            "acted_by": acted_by, "steps": {}, "expires_at": expires_at,
            **({"retired_name": 1} if operation.get("retired_name") else {})}  # fmt: skip


def record_step(
    table: Table, record: str, step: str, fields: Item, finished_at: str | None, expires_at: int
) -> None:
    """One step's line, an item of its own (`<record>#<step>`, kind STEP_KIND) beside the
    record, kept if already there; `finished_at` by the last step. Not a `steps.<step>` entry
    of the record: a line each step made the record grow until DynamoDB's 400 KB refused the
    write (about 1,556 steps of three jobs) and the backfill stalled, each step billed on the
    whole record (review s30 receipts F3). `records_since` folds the lines back in."""
    expression = "SET #line = if_not_exists(#line, :line), kind = :kind, expires_at = :exp"
    values: Item = {":line": fields, ":kind": STEP_KIND, ":exp": expires_at}
    if finished_at is not None:
        expression += ", finished_at = if_not_exists(finished_at, :at)"
        values[":at"] = finished_at
    table.client.update_item(
        TableName=table.name,
        Key={"pk": {"S": keys.BACKFILL_PK}, "sk": {"S": keys.backfill_step_sk(record, step)}},
        UpdateExpression=expression,
        ExpressionAttributeNames={"#line": "line"},
        ExpressionAttributeValues=serialize(values),
    )


def records_since(table: Table, year: int, until: int | None = None) -> list[Item]:
    """The records of the backfills started in `year` (through `until`, if given), each with
    its steps' lines in `steps` and `finished_at` from the last: one Query (the step items
    sort right after their record)."""
    last = year if until is None else until
    return folded(query.items(
        table, KeyConditionExpression="pk = :pk AND sk BETWEEN :from AND :to",
        ExpressionAttributeValues={":pk": {"S": keys.BACKFILL_PK}, ":from": {"S": f"{year}#"},
                                   ":to": {"S": f"{last}#~"}},
    ))  # fmt: skip


def folded(items: Iterable[Item]) -> list[Item]:
    """Records with their step items folded in as `steps.<step>` (where a record written
    before 2026-12-03 keeps its own); a step item whose record is gone (past its retention)
    is left out."""
    records: dict[str, Item] = {}
    for item in items:
        if item.get("kind") != STEP_KIND:
            records[str(item["sk"])] = {**item, "steps": dict(item.get("steps") or {})}
            continue
        record, _, step = str(item["sk"]).rpartition("#")
        found = records.get(record)
        if found is None:
            continue
        found["steps"].setdefault(step, item.get("line") or {})
        if item.get("finished_at") and not found.get("finished_at"):
            found["finished_at"] = item["finished_at"]
    return list(records.values())


def _jobs(record: Item) -> list[Key]:
    system = str(record["system"])
    return [(keys.request_pk(str(job_request)), keys.job_sk(system))
            for step in (record.get("steps") or {}).values()
            for job_request in step_jobs(step)]  # fmt: skip


def step_jobs(step: Item) -> list[str]:
    """The request ids of a step's jobs: one per purpose set (`job_request_ids` when more than
    one, review s30 operator F1), else its one `job_request_id` (none: it made no job)."""
    many = step.get("job_request_ids")
    if many:
        return [str(r) for r in many]
    return [str(step["job_request_id"])] if step.get("job_request_id") else []


def job_statuses(table: Table, records: list[Item]) -> dict[Key, str]:
    """The status of every step job of `records` (one BatchGetItem, 100 keys a call),
    `retired` for one its system's retirement left open (the retirements read only when a job
    is not done)."""
    wanted = {key: str(record["system"]) for record in records for key in _jobs(record)}
    found = batch_get(table, wanted, fields=("status", "created_at")) if wanted else {}
    if all(item.get("status") in DONE for item in found.values()):
        return {key: str(item.get("status")) for key, item in found.items()}
    # Here, not at the top: optout.status imports pydantic, which the resolver (it imports
    # this module) keeps off its cold path.
    from optout.status import job_retirements  # noqa: PLC0415

    retired = job_retirements(table, [(wanted[key], item) for key, item in found.items()])
    return {key: RETIRED if retirement is not None else str(item.get("status"))
            for (key, item), retirement in zip(found.items(), retired, strict=True)}  # fmt: skip


def open_earlier(table: Table, system: str, year: int, backfill_id: str) -> list[str]:
    """Earlier backfills of `system` (started this year or last) still open: a step not run
    yet, or a job with no answer yet. A `--resend` now sends their people a second time."""
    mine = [r for r in records_since(table, year - 1, year)
            if r.get("system") == system and r.get("backfill_id") != backfill_id]  # fmt: skip
    statuses = job_statuses(table, mine)
    return [
        str(r["backfill_id"])
        for r in mine
        if not r.get("finished_at") or any(statuses.get(k) in OPEN for k in _jobs(r))
    ]


def year_figures(table: Table, year: int) -> dict[str, dict[str, int]]:
    """Per system, the backfills started in `year` (UTC): how many (of them resends, and not
    finished yet), the identities their jobs carry, the identities already in flight for an
    earlier backfill's open job, and their jobs by outcome (`jobs_retired`: left open by the
    system's retirement, no longer owed)."""
    records = records_since(table, year)
    return figures(records, job_statuses(table, records))


def figures(records: list[Item], statuses: dict[Key, str]) -> dict[str, dict[str, int]]:
    """Pure: tests compare it with figures counted by hand."""
    by_system: dict[str, Counter[str]] = {}
    for record in records:
        row = by_system.setdefault(str(record["system"]), Counter())
        row["backfills"] += 1
        row["resends"] += int(record.get("resend") or 0)
        row["unfinished"] += not record.get("finished_at")
        for step in (record.get("steps") or {}).values():
            row["identities"] += int(step.get("identities") or 0)
            row["in_flight_earlier"] += int(step.get("in_flight_earlier") or 0)
        for key in _jobs(record):
            status = statuses.get(key)
            if status is not None:  # a job deleted when it had nothing left to carry
                bucket = ("done" if status in DONE else "open" if status in OPEN
                          else "retired" if status == RETIRED else "failed")  # fmt: skip
                row[f"jobs_{bucket}"] += 1
    return {name: {f: row.get(f, 0) for f in FIGURES} for name, row in sorted(by_system.items())}
