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
when it holds what looks like an email address or a phone number (the field is named, the
text is never echoed). A phone or card number is a run of seven digits or more, however
spaced or punctuated; a date on its own (2026-11-30, 30/11/2026) is not one.
"""

import re
from datetime import date, datetime

from optout.api_models import DenialCode, DenialOut
from optout.errors import Conflict, InvalidInput, NotFound
from optout.events import is_request
from optout.ops import keys as ops_keys
from optout.ops.reminders import remind_now
from optout.status import aggregate
from optout.store import keys, transact
from optout.store.proof import load_with_proof
from optout.store.table import Table
from optout.timestamps import iso

EMAIL_LIKE = re.compile(r"[^\s@]+@[^\s@]+\.[^\s@]+")
NUMBER_LIKE = re.compile(
    r"\d(?:[\W_]*\d){6,}"
)  # seven digits or more, any separators: a phone, a card
# A date (2026-11-30, 30/11/2026 or 11/30/2026) standing alone: not digits joined to others by
# a separator, so a phone written around one is still seen (review s14 counsel 8: a retire's
# "contract ended 2026-11-30" was refused as a phone number).
DATE_LIKE = re.compile(
    r"(?<![\d+(])(?<!\d[\s().+/-])(?:(\d{4})-(\d{2})-(\d{2})|(\d{2})/(\d{2})/(\d{4}))"
    r"(?![\d/]|[\s().+-]+\d)"
)


def _is_date(found: re.Match[str]) -> bool:
    """A real calendar date: year-month-day, or day/month or month/day with the year last."""
    y, m, d, a, b, year = found.groups()
    candidates = [(y, m, d)] if y else [(year, b, a), (year, a, b)]
    for parts in candidates:
        try:
            date(*(int(p) for p in parts))
        except ValueError:
            continue
        return True
    return False


def _without_dates(text: str) -> str:
    return DATE_LIKE.sub(lambda found: " " if _is_date(found) else found[0], text)


def check_reason(reason: str) -> str:
    text = reason.strip()
    if not text.isprintable():
        raise InvalidInput("the reason must be one line of printable text", field="reason")
    if EMAIL_LIKE.search(text) or NUMBER_LIKE.search(_without_dates(text)):
        raise InvalidInput(
            "describe the reason without identifiers: no email address or phone number",
            field="reason",
        )
    return text


class DenialService:
    def __init__(self, table: Table) -> None:
        self._table = table

    def deny(
        self, request_id: str, code: DenialCode, reason: str, caller: str, now: datetime
    ) -> DenialOut:
        text = check_reason(reason)
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
        status = aggregate(request_id, items, covering)
        if status is not None and status.status == "completed":
            raise Conflict(
                "this request was already complied with: every system confirmed it",
                field="request_id",
            )
        if status is not None and status.systems_done > 0:
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
            raise Conflict("this request was already denied", field="request_id") from None
        return DenialOut(request_id=request_id, status="denied", denied_at=iso(now),
                         reason_code=code)  # fmt: skip
