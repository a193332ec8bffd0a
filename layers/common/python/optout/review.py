"""Operator actions (IAM-only routes): review held links, replay a system's failed jobs,
backfill a system with the opt-outs already recorded.

Release, replay and backfill are written as events, like every other change, so the resolver (which
owns the graph, the jobs and the queues) carries them out from the stream: the route stays one
read and one write, and the admin function needs no queue or graph permissions. A release
writes its event and marks the hold `releasing` in one transaction, so a second release or a
rejection after it gets a 409 instead of an acknowledgement that will do nothing. A rejection
only changes the hold, but a second account's (`second_account`), or any hold of a browser's
device apart from an account (a login held at the cluster cap: `holds.carries`), also writes a
`hold_reject` event with it, whose resolution withdraws that account's carry to the browser.
A decided hold that was counted on its account (`holds.put_counted`) is taken off the count in
the same transaction.

Every action records who took it: the signer's ARN (the admin function allow-listed it), as
`evidence.acted_by` on the event and `decided_by` on the hold; never an identifier.
"""

import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from difflib import get_close_matches

from optout.api_models import HoldOut, HoldsOut, IdentityKeyOut, OperatorActionOut
from optout.errors import Conflict, NotFound
from optout.events import CapturedEvent, EventType
from optout.on_record import on_record
from optout.ops import backfills
from optout.store import holds, keys, transact
from optout.store.batch import batch_get
from optout.store.codec import Item
from optout.store.events import put_event
from optout.store.table import Table
from optout.systems import SystemsConfig
from optout.timestamps import iso

HOLD_ID = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\.[0-9]{3}$"


class ReviewService:
    def __init__(self, table: Table, systems: SystemsConfig | None, retention_days: int) -> None:
        self._table = table
        self._systems = systems
        self._retention = retention_days

    def list_holds(self, limit: int = 100) -> HoldsOut:
        return HoldsOut(holds=[_view(h) for h in holds.list_holds(self._table, limit)])

    def release(self, hold_id: str, caller: str) -> OperatorActionOut:
        hold = self._held(hold_id)
        event = self._new_event("hold_release", {"hold_id": hold_id}, caller)
        request_id = str(event["request_id"])
        decided = dict(hold, decided_by=caller)  # written with the hold's new status
        try:
            transact.write(self._table, [
                transact.put(self._table, event, "attribute_not_exists(pk)"),
                holds.releasing(self._table, decided, request_id, str(event["received_at"])),
                *holds.uncounting(self._table, hold),  # off its account's undecided holds
            ])  # fmt: skip
        except transact.Cancelled:
            raise Conflict("this hold was decided meanwhile", field="hold_id") from None
        return OperatorActionOut(request_id=request_id, hold_id=hold_id, status="releasing")

    def reject(self, hold_id: str, caller: str) -> OperatorActionOut:
        hold = dict(self._held(hold_id), decided_by=caller)
        if holds.carries(hold):
            # Two people: the held account's carry to that browser is withdrawn, by the
            # resolver (which owns the graph) from a `hold_reject` event written with the
            # decision (review s31 stranger F1: else a stranger's account with someone's
            # browser id pinned its opt-outs there for good).
            event = self._new_event("hold_reject", {"hold_id": hold_id}, caller)
            request_id = str(event["request_id"])
            try:
                transact.write(self._table, [
                    transact.put(self._table, event, "attribute_not_exists(pk)"),
                    holds.rejecting(self._table, hold, request_id, str(event["received_at"])),
                    *holds.uncounting(self._table, hold),  # off its account's undecided holds
                ])  # fmt: skip
            except transact.Cancelled:
                raise Conflict("this hold was decided meanwhile", field="hold_id") from None
            return OperatorActionOut(request_id=request_id, hold_id=hold_id, status="rejected")
        if not holds.decide(self._table, hold, "rejected", iso(datetime.now(UTC))):
            raise Conflict("this hold was decided meanwhile", field="hold_id")
        return OperatorActionOut(hold_id=hold_id, status="rejected")

    def replay(self, system: str, caller: str) -> OperatorActionOut:
        self.configured(system)
        event = self._new_event("replay", {"system": system}, caller)
        put_event(self._table, event)
        request_id = str(event["request_id"])
        return OperatorActionOut(request_id=request_id, system=system, status="replaying")

    def backfill(self, system: str, resend: bool, caller: str) -> OperatorActionOut:
        """Everyone opted out of a purpose the system serves sent to it (`resend`: again, its
        destination changed), as a `backfill` event the resolver carries out in bounded steps
        (resolver/service.py `_backfill`)."""
        self.configured(system)
        # A retired name added back: the identities' marks still name its retired jobs, which
        # a plain backfill would read as carrying the purposes and skip (review s14 recheck 1)
        operation: dict[str, str | int] = {"system": system, "resend": int(resend)}
        if not resend and self._retirement(system) is not None:
            operation |= {"resend": 1, "retired_name": 1}
        event = self._new_event("backfill", operation, caller)
        request_id, year = str(event["request_id"]), int(str(event["received_at"])[:4])
        # Its record (ops/backfills.py), which every step of the chain names: written with
        # the event, so no backfill runs unrecorded and no record names one that never ran
        event["operation"] = operation = {**operation,
                                          "record": keys.backfill_sk(year, request_id)}  # fmt: skip
        # Read before the write: earlier backfills of the system still open (review s14
        # operator 6: a second one said nothing). Not refused, but the answer names them.
        earlier = backfills.open_earlier(self._table, system, year, request_id)
        record = backfills.record_item(request_id, operation, str(event["received_at"]), caller,
                                       int(event["expires_at"]))  # fmt: skip
        transact.write(self._table, [
            transact.put(self._table, event, "attribute_not_exists(pk)"),
            transact.put(self._table, record, "attribute_not_exists(pk)"),
        ])  # fmt: skip
        return OperatorActionOut(request_id=request_id, system=system, status="backfilling",
                                 open_backfills=earlier or None)  # fmt: skip

    def _retirement(self, system: str) -> Item | None:
        """The system's retirement, if it was retired (strongly consistent)."""
        key = keys.retired_key(system)
        found = batch_get(self._table, [key], consistent=True, fields=("retired_at", "event_id"))
        return found.get(key)

    def configured(self, system: str) -> None:
        """A 404 for a name not in the systems config: a retired one named as retired (when,
        and its event), one removed but on record (the retire's test) pointed to the retire,
        else the configured names close to it (system names are configuration, not personal
        data): `tradedesk` -> `trade_desk`. The replay, redrive and backfill routes check this
        first."""
        names = [s.name for s in self._systems.systems] if self._systems else []
        if system in names:
            return
        retired = self._retirement(system)
        if retired is not None:  # one read, on the refusal's path only
            raise NotFound(f"no system with this name: {system} was retired at "
                           f"{retired.get('retired_at')} (`optout status "
                           f"{retired.get('event_id')}`): its jobs are no longer owed",
                           field="system")  # fmt: skip
        if on_record(self._table, system, datetime.now(UTC).year):  # review s30 operator F5
            raise NotFound(f"no system with this name: {system} is no longer configured and is "
                           "on record (failed jobs listed, or requests counted at it): its open "
                           f"jobs stay owed until `optout retire {system} --reason TEXT` (once "
                           "its contract ended)", field="system")  # fmt: skip
        hint = near_names(system, names)
        listed = f" (configured: {', '.join(sorted(names))})" if names else ""
        raise NotFound(f"no system with this name{hint}{listed}", field="system")

    def _held(self, hold_id: str) -> Item:
        hold = holds.get_hold(self._table, keys.hold_sk_of(hold_id), consistent=True)
        if hold is None:
            raise NotFound("no held link with this hold_id", field="hold_id")
        if hold.get("status") != "held":
            raise Conflict(f"this link was already {hold.get('status')}", field="hold_id")
        return hold

    def record_redrive(self, system: str, moved: int, caller: str) -> str:
        """A DLQ redrive as an event: who moved how many of a system's dead letters back. The
        resolver finds no references in it to send again (the messages are already back)."""
        event = self._new_event("redrive", {"system": system, "dlq_moved": moved}, caller)
        put_event(self._table, event)
        return str(event["request_id"])

    def _new_event(self, kind: EventType, operation: dict[str, str | int], caller: str) -> Item:
        now = datetime.now(UTC)
        event = CapturedEvent.by_operator(
            str(uuid.uuid4()), kind, operation, {"acted_by": caller}, now
        )
        return event.to_item(self._retention)


def near_names(system: str, names: Iterable[str]) -> str:
    """The hint for the names close to `system` (a typo, another case): "; did you mean a or
    b?", or "" when none is. System names are configuration, never identifiers."""
    near = get_close_matches(system.lower(), sorted(set(names)), n=3, cutoff=0.6)
    return f"; did you mean {' or '.join(near)}?" if near else ""


def _view(hold: Item) -> HoldOut:
    def side(identity: Item) -> IdentityKeyOut:
        return IdentityKeyOut(type=identity["type"], key=identity["key"])

    return HoldOut(
        hold_id=keys.hold_id(hold["sk"]), status=hold.get("status", "held"),
        held_at=hold["held_at"], request_id=hold["request_id"], a=side(hold["a"]),
        b=side(hold["b"]), cluster_a=hold["cluster_a"], cluster_b=hold["cluster_b"],
        cap=hold["cap"], reason=hold.get("reason", holds.CLUSTER_CAP),
        decided_at=hold.get("decided_at"), decided_by=hold.get("decided_by"),
        release_request_id=hold.get("release_request_id"),
    )  # fmt: skip
