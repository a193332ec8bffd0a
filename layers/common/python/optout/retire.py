"""Retiring a system (`optout retire SYSTEM --reason`): its open jobs are no longer owed.

A system removed from (or renamed in) systems.json leaves its pending and failed jobs with no
queue and no replay, and their requests open for ever (review s13 config 3). An operator who
ended the contract retires it: one item per system, `RETIRED/<system>` (who, when, why, the
event that records it), written with an operator event (`retire`) in one transaction, like a
replay. The item is the whole change: no job is rewritten, so retiring is one write whatever
the system's backlog (the watch later drops the open jobs' values, below). The readers consult
it where they already read a request's cited jobs (`status.covering_keys` adds its key to that
BatchGetItem, only for a request with an open or cited job): a job of the system that is not
done and was made before `retired_at` is `retired`, counted neither done nor failed
(optout/status.py). The sweep reads the RETIRED partition once per run and re-drives no such
job; a replay forgets its failed listing.

Only a system no longer in the deployed config can be retired: a configured one answers 409
(review s14 counsel 1, operator 4 and 9). Its vendor still gets data, so closing its jobs would
not be complying, and a retirement made before the deploy would not cover the jobs planned
between the two. Remove it from systems.json, deploy, then retire.

The first retirement is written once. A second retire of the same system answers 200 with it
(`already_retired`), records the attempt as its own operator event and adds it to the item
after the first (`retired_again`: who, when, why, that event). `retired_at` settles requests
(their completion time, `late`, days to respond), so moving it would rewrite requests already
answered (review s14 operator 5); a later retirement closes only the jobs made after the one
before it (store/retired.py `retired_at_for`): a name added back and removed again (review s24
diff C C1). The retire cannot tell, without a scan, whether the name came back meanwhile: when
it did not, the later retirement finds no job to close.

The reason is evidence (§7101), checked like a denial's: one line, no email address or phone
number. A name is refused (404) unless it is already retired, has failed jobs
listed for replay, the deadline watch's last run counted it overdue, or the §7102 ledgers of
this year or the last count requests at it: finding a removed system's pending jobs by name
would need a scan (docs/decisions.md, "Retiring a system").

A retired system's job left open (pending or submitted when it was retired) is never finished:
no queue, worker, status check or replay reaches it, so nothing would drop its identifier
values, kept until its TTL (review s18 S3). Finding those jobs here would need that scan, so
the deadline watch drops them (`drop_retired_values`) at its next check of the request, which
reads the request's jobs and its systems' retirements anyway: within a day of the retirement
(an open request is checked at least daily). One conditional update per such job, once; the
opt-out path writes nothing more.
"""

import uuid
from datetime import datetime
from typing import Any

from optout.api_models import RetireOut
from optout.delivery.job_store import has_values, without_values
from optout.errors import Conflict, NotFound
from optout.events import CapturedEvent
from optout.on_record import failed_listed, names_on_record
from optout.ops.denial import check_reason
from optout.review import near_names
from optout.status import proofs
from optout.store import keys, transact
from optout.store.codec import Item, deserialize, serialize
from optout.store.conditional import conditional
from optout.store.retired import last_retired_at, retirements
from optout.store.table import Table
from optout.systems import SystemsConfig
from optout.timestamps import iso

RETIREMENT_FIELDS = ("retired_at", "retired_by", "reason", "event_id")


def retirement_view(retirement: Item) -> dict[str, Any]:
    """A system's retirement as the operator views and exports give it (§7101 evidence): the
    first, and the later ones (`retired_again`) when the name was retired again."""
    view = {name: retirement.get(name) for name in RETIREMENT_FIELDS}
    later = retirement.get("retired_again")
    return view | ({"retired_again": [retirement_view(r) for r in later]} if later else {})


class RetireService:
    def __init__(self, table: Table, systems: SystemsConfig | None, retention_days: int) -> None:
        self._table = table
        self._systems = systems
        self._retention = retention_days

    def retire(self, system: str, reason: str, caller: str, now: datetime) -> RetireOut:
        text = check_reason(reason)
        if self._systems is not None and system in {s.name for s in self._systems.systems}:
            raise Conflict("the system is still configured: remove it from systems.json and "
                           "deploy first", field="system")  # fmt: skip
        existing = self._get(keys.retired_key(system))
        if existing is None and not failed_listed(self._table, system):
            recorded = names_on_record(self._table, now.year)
            if system not in recorded:
                # The close names among those on record, retired or configured (review s14
                # operator 10: `retire braz` named none)
                configured = {s.name for s in self._systems.systems} if self._systems else set()
                known = recorded | set(retirements(self._table)) | configured
                raise NotFound("no system with this name, configured or on record"
                               + near_names(system, known), field="system")  # fmt: skip
        request_id = str(uuid.uuid4())
        operation = {"system": system}
        evidence = {"acted_by": caller, "reason": text}
        if existing is not None:
            return self._again(existing, request_id, operation, evidence, now)
        event = CapturedEvent.by_operator(request_id, "retire", operation, evidence, now)
        retirement = {
            "pk": keys.RETIRED_PK, "sk": system, "kind": "retirement", "system": system,
            "retired_at": iso(now), "retired_by": caller, "reason": text,
            "event_id": request_id,  # the operator event: `optout status` on it
        }  # fmt: skip
        try:
            transact.write(self._table, [
                transact.put(self._table, event.to_item(self._retention),
                             "attribute_not_exists(pk)"),
                transact.put(self._table, retirement, "attribute_not_exists(pk)"),
            ])  # fmt: skip
        except transact.Cancelled:  # another retire of the system won the race: keep its item
            found = self._get(keys.retired_key(system))
            if found is None:
                raise Conflict("the retirement was not recorded; try again",
                               field="system") from None  # fmt: skip
            return self._again(found, request_id, operation, evidence, now)
        return RetireOut(request_id=request_id, system=system, status="retired",
                         retired_at=iso(now), retirement_id=request_id,
                         already_retired=False)  # fmt: skip

    def _again(
        self, existing: Item, request_id: str, operation: dict[str, Any],
        evidence: dict[str, Any], now: datetime,
    ) -> RetireOut:  # fmt: skip
        """A retire of a system already retired: the first retirement stays as written (it
        settled requests; counsel's evidence) and this one is added after it (`retired_again`:
        who, when, why, its event), so a job made since the first (the name added back) is
        retired by it (status.py `retired_at_for`). The attempt is its own event, naming the
        first retirement; both written in one transaction (review s24 diff C C1)."""
        evidence = evidence | {"already_retired": str(existing["event_id"])}
        event = CapturedEvent.by_operator(request_id, "retire", operation, evidence, now)
        later = list(existing.get("retired_again") or ())
        # Never before the latest retirement: the loser of two first retires at once read its
        # time before the winner's, and the earliest closes the jobs (review s25 diff F2)
        at = max(iso(now), last_retired_at(existing))
        again = {"retired_at": at, "retired_by": evidence["acted_by"],
                 "reason": evidence["reason"], "event_id": request_id}  # fmt: skip
        put = transact.put(self._table, existing | {"retired_again": [*later, again]},
                           "event_id = :first AND " + (
                               "size(retired_again) = :n" if later
                               else "attribute_not_exists(retired_again)"))  # fmt: skip
        put["Put"]["ExpressionAttributeValues"] = serialize(
            {":first": existing["event_id"]} | ({":n": len(later)} if later else {})
        )
        try:
            transact.write(self._table, [
                transact.put(self._table, event.to_item(self._retention),
                             "attribute_not_exists(pk)"),
                put,
            ])  # fmt: skip
        except transact.Cancelled:  # another retire of the system was added first: try again
            found = self._get(keys.retired_key(str(existing["system"])))
            if found is None or found == existing:
                raise Conflict("the retirement was not recorded; try again",
                               field="system") from None  # fmt: skip
            return self._again(found, request_id, operation, evidence, now)
        return RetireOut(request_id=request_id, system=str(existing["system"]), status="retired",
                         retired_at=str(existing["retired_at"]),
                         retirement_id=str(existing["event_id"]), already_retired=True)  # fmt: skip

    def _get(self, key: tuple[str, str]) -> Item | None:
        found = self._table.client.get_item(
            TableName=self._table.name, Key={"pk": {"S": key[0]}, "sk": {"S": key[1]}},
            ConsistentRead=True,
        )  # fmt: skip
        return deserialize(found["Item"]) if "Item" in found else None


def drop_retired_values(
    table: Table, items: list[Item], covering: dict[tuple[str, str], Item], now: str
) -> list[str]:
    """Drop the identifier values of this request's own jobs that a retirement left open (types
    and keyed hashes stay, as on a final job); the systems whose job lost them."""
    dropped: list[str] = []
    for proof in proofs(items, covering):
        for job in proof.own_jobs:  # its own job, and further ones (several people named)
            if not proof.retired_job(job) or not has_values(job):
                continue
            if _drop_values(table, job, now) and proof.system not in dropped:
                dropped.append(proof.system)
    return dropped


def _drop_values(table: Table, job: Item, now: str) -> bool:
    """One conditional update, on the job's status being as read: False when it moved
    meanwhile (its writer's write stands) or is gone."""
    kept = without_values(job)
    answer = conditional(lambda: table.client.update_item(
        TableName=table.name,
        Key={"pk": {"S": str(job["pk"])}, "sk": {"S": str(job["sk"])}},
        UpdateExpression="SET identifiers = :kept, values_dropped_at = :now",
        ConditionExpression="attribute_exists(pk) AND #status = :status",
        ExpressionAttributeNames={"#status": "status"},
        ExpressionAttributeValues=serialize(
            {":kept": kept, ":now": now, ":status": job.get("status")}),
    ))  # fmt: skip
    return answer is not None
