"""Seed a table with requests in any state, as the pipeline would have left them.

For tests that need history (weeks-old requests, a year of outcomes) without running the
pipeline for weeks: the items have the shapes capture, the resolver, the worker and the
operator routes write (event with its ByDay key, resolution, jobs with receipts, a denial).
"""

import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Literal

from optout.events import CapturedEvent, KeyedIdentifier, Source
from optout.identifiers import Identifier
from optout.settings import LOCAL_HASH_KEY
from optout.store.batch import batch_put
from optout.store.table import Table
from optout.timestamps import iso

SECRET = LOCAL_HASH_KEY.encode()
State = Literal["received", "processing", "completed", "failed", "partial", "denied"]


@dataclass
class Seeded:
    request_id: str
    received_at: datetime
    deadline: date
    source: str
    state: State
    responded_at: datetime | None = None
    systems: tuple[str, ...] = ()
    items: list[dict[str, Any]] = field(default_factory=list)


def request_id_for(n: int) -> str:
    return str(uuid.UUID(int=n * 7919 + 10**30, version=4))


def seed_request(
    table: Table,
    n: int,
    received_at: datetime,
    state: State,
    *,
    source: Source = "webform",
    deadline: date | None = None,
    after: timedelta = timedelta(hours=5),
    systems: tuple[str, ...] = ("braze", "salesforce"),
    event_type: str = "opt_out",
    opt_out: dict[str, bool] | None = None,
    email: str | None = None,
    evidence: dict[str, Any] | None = None,
) -> Seeded:
    """One request `n`: received at `received_at`, in `state`; a response (completion, last
    receipt, denial) `after` its receipt. Jobs: one per system (partial: the first fails).
    `evidence` as capture or import wrote it (an import's `imported`, a `jurisdiction`)."""
    request_id = request_id_for(n)
    identifier = KeyedIdentifier.of(SECRET, Identifier("email", email or f"seeded-{n}@example.com"))
    event = CapturedEvent(
        request_id=request_id, event_type=event_type,  # type: ignore[arg-type]
        source=source, received_at=received_at,
        deadline=deadline or received_at.date() + timedelta(days=21),
        opt_out=opt_out if opt_out is not None else {"sale": True, "share": True},
        gpc=source == "gpc", identifiers=(identifier,), links=(), evidence=evidence or {},
        fingerprint="seeded",
    )  # fmt: skip
    pk = f"REQ#{request_id}"
    items: list[dict[str, Any]] = [event.to_item(1095)]
    responded = received_at + after
    if state != "received":
        items.append({"pk": pk, "sk": "RESOLUTION", "kind": "resolution",
                      "resolved_at": iso(received_at + timedelta(seconds=1)),
                      "jobs_total": len(systems)})  # fmt: skip
    for index, system in enumerate(systems if state != "received" else ()):
        status = _job_status(state, index)
        job: dict[str, Any] = {
            "pk": pk, "sk": f"JOB#{system}", "kind": "job", "job_id": f"{request_id}:{system}",
            "request_id": request_id, "system": system, "status": status,
            "purposes": ["sale", "share"], "identifiers": [{"type": "email",
                                                            "key": identifier.key}],
        }  # fmt: skip
        if status in ("done", "failed"):
            job["completed_at"] = iso(responded)
            job["receipt"] = {"completed_at": iso(responded), "http_status": 200}
        items.append(job)
    if state == "denied":
        items.append({"pk": pk, "sk": "DENIAL", "kind": "denial", "denied_at": iso(responded),
                      "denied_by": "arn:aws:iam::123456789012:user/seeder",
                      "reason_code": "suspected_fraud", "reason": "seeded"})  # fmt: skip
    batch_put(table, items)
    return Seeded(request_id, received_at, event.deadline, source, state,
                  responded if state not in ("received", "processing") else None,
                  systems, items)  # fmt: skip


def _job_status(state: State, index: int) -> str:
    if state == "completed" or state == "denied":
        return "done"
    if state == "failed":
        return "failed"
    if state == "partial":
        return "failed" if index == 0 else "done"
    return "pending"
