"""Denying an opt-out request (CCPA §7026(e)) or a request to limit the use of sensitive
personal information (§7027(f)), with its reason kept as evidence (§7101).

A business may deny an opt-out only on a documented, good-faith belief that it is fraudulent,
and must keep the basis of the denial. The denial is one item on the request (`DENIAL`: who,
when, a reason code and a short text), written once; the request's status becomes `denied`,
and a reminder lets the deadline watch move it in the §7102 ledger at its next run.

Denying does not opt anyone back in: what a system already confirmed stays (an opt-out honoured
is never a harm), and the person's own later choices decide their state as before. A request
every system has confirmed (`completed`) was complied with, so it cannot be denied afterwards:
the record and the §7102 figures would say the opposite of what happened (409). Nor can one that
any system has confirmed (still processing, or failed at another system): it was complied with
in part, and a denial would move it from "complied with in part" to "denied" in the figures and
tell the consumer "denied" (review s13 law 7). Only a request no system has confirmed yet
(received, processing or failed with nothing done) can be denied.

The reason text is evidence, not a notes field: at most 500 characters, one line, and refused
when it holds what looks like an email address or a phone number (optout/identifier_text.py:
after NFKC, any `@` or a spelled-out address, and seven digits or more however punctuated; a
date on its own is not one), or, for a denial, any of the request's own identifier values as
a word (a customer id or device id has no shape to catch otherwise). The field is named, the
text is never echoed.
"""

from collections.abc import Iterable
from datetime import datetime

from optout.api_models import DenialCode, DenialOut
from optout.errors import Conflict, InvalidInput, NotFound
from optout.events import is_request
from optout.identifier_text import holds_identifier, names_any
from optout.ops import keys as ops_keys
from optout.ops.later import record_later
from optout.ops.reminders import remind_now
from optout.status import DONE, FAILED, aggregate, proofs
from optout.store import keys, transact
from optout.store.codec import Item
from optout.store.proof import load_with_proof, marked_jobs
from optout.store.requests import note_under_way
from optout.store.table import Table
from optout.timestamps import iso

NO_IDENTIFIERS = "describe the reason without identifiers: no email address or phone number"


def check_reason(reason: str, values: Iterable[str] = ()) -> str:
    """The reason as kept, or InvalidInput (the text is never echoed). `values`: the request's
    own identifier values, when there is a request (a denial): none of them may appear as a
    word, which is how a customer id is caught (it has no shape of its own)."""
    text = reason.strip()
    if not text.isprintable():
        raise InvalidInput("the reason must be one line of printable text", field="reason")
    if holds_identifier(text):
        raise InvalidInput(NO_IDENTIFIERS, field="reason")
    if names_any(text, values):
        raise InvalidInput(
            "describe the reason without identifiers: it names one of this request's",
            field="reason",
        )
    return text


def _values(event: Item) -> list[str]:
    """The identifier values the request named (as stored on its event)."""
    return [str(i["value"]) for i in event.get("identifiers", []) if i.get("value")]


class DenialService:
    def __init__(self, table: Table) -> None:
        self._table = table

    def deny(
        self, request_id: str, code: DenialCode, reason: str, caller: str, now: datetime
    ) -> DenialOut:
        text = check_reason(reason)  # before any read: a refused reason costs nothing
        # Strongly consistent: a job confirmed a moment ago must be seen (a deny after it is a
        # 409); the race with a confirmation still in flight remains (docs/decisions.md).
        items, covering = load_with_proof(self._table, request_id, consistent=True)
        event = next((item for item in items if item["sk"] == keys.EVENT_SK), None)
        if event is None:
            raise NotFound("no request with this request_id", field="request_id")
        if not is_request(event):
            raise Conflict(
                "only a request to opt out or to limit can be denied", field="request_id"
            )
        check_reason(text, _values(event))
        # A failed job later jobs delivered, which the deadline watch has not recorded yet (it
        # checks within a day): recorded now, as the watch would, so it counts as confirmed
        # (ops/later.py; review37b: the request was denied, and read `denied` for good)
        items = items + record_later(self._table, items, covering, iso(now))
        status = aggregate(request_id, items, covering)
        if status is not None and status.status == "completed":
            raise Conflict(
                "this request was already complied with: every system confirmed it",
                field="request_id",
            )
        # Any job of the request's own that answered, whatever its system's other jobs (a
        # request naming several unlinked people has one per purpose set: review s31 union F2)
        answered = any(job.get("status") in DONE
                       for proof in proofs(items, covering) for job in proof.own_jobs)  # fmt: skip
        if status is not None and (status.systems_done > 0 or answered):
            raise Conflict(
                "this request was already complied with in part: a system confirmed it",
                field="request_id",
            )
        expires = int(event["expires_at"])
        denial = {
            "pk": keys.request_pk(request_id), "sk": ops_keys.DENIAL_SK, "kind": "denial",
            "request_id": request_id, "denied_at": iso(now), "denied_by": caller,
            "reason_code": code, "reason": text, "expires_at": expires,
        }  # fmt: skip
        reminder = remind_now(request_id, str(event["deadline"]), now, expires)
        try:
            transact.write(
                self._table,
                [transact.put(self._table, denial, "attribute_not_exists(pk)"),
                 transact.put(self._table, reminder)],
            )  # fmt: skip
        except transact.Cancelled:
            # Maybe this very deny sent again: its write landed, its read after it failed (a
            # 500), and no one else's read would name the jobs a resolver stored before the
            # denial. The read again completes the record (a set: it adds nothing twice).
            self._under_way(request_id)
            raise Conflict("this request was already denied", field="request_id") from None
        systems, resolved = self._under_way(request_id)
        return DenialOut(request_id=request_id, status="denied", denied_at=iso(now),
                         reason_code=code, systems_under_way=systems,
                         resolved=resolved)  # fmt: skip

    def _under_way(self, request_id: str) -> tuple[list[str], bool]:
        """The systems the request's own jobs were made for, not failed (they may reach their
        vendor, or have: a denial stops no job already made), and whether the resolver had
        recorded its resolution: read again, strongly consistent, after the denial's write,
        and kept on the denial (`systems_under_way`). A resolver still at work when the
        denial landed, whose jobs this read misses, stored them before its own read of the
        denial and adds their systems to the record then (resolver `_denied_meanwhile`): so
        the record names every system its jobs went to, the answer those known now, and
        `resolved` false says more may follow (docs/decisions.md, "A denial landing while the
        request is resolved")."""
        items, covering = load_with_proof(self._table, request_id, consistent=True)
        found = {proof.system for proof in proofs(items, covering)
                 if any(j.get("status") != FAILED for j in proof.own_jobs)}  # fmt: skip
        resolution = next((i for i in items if i["sk"] == keys.RESOLUTION_SK), None)
        if resolution is None:
            # Its further jobs (several people named; parts) are named by the RESOLUTION,
            # written last: before it, by their split marker, written before them
            further = marked_jobs(self._table, items, consistent=True, split=True)
            found |= {system for _, system, job in further
                      if job is not None and job.get("status") != FAILED}  # fmt: skip
        systems = sorted(found)
        note_under_way(self._table, request_id, ops_keys.DENIAL_SK, systems)
        return systems, resolution is not None and not resolution.get("denied")
