"""Captured events as stored: the item the capture API writes and the resolver reads."""

import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Literal

from optout.identifiers import Identifier, IdType, lookup_key
from optout.purposes import SALE_SHARE_PURPOSES, OptOutMap
from optout.store import keys
from optout.store.codec import Item
from optout.timestamps import iso, utc_date

EventType = Literal[
    "consent", "opt_out", "links", "replay", "hold_release", "redrive", "retire", "backfill",
    "hold_reject",
]  # fmt: skip
Source = Literal["banner", "webform", "gpc", "agent", "backend", "operator"]
# How far the bridge trusts an identifier a request names (README "Identity resolution"):
# the requester's own device, an identifier a valid identity token binds, or one merely typed.
Role = Literal["device", "verified", "asserted"]


def default_role(id_type: str) -> Role:
    """Events stored before roles existed: a device is the requester's, the rest asserted."""
    return "device" if id_type == "device_id" else "asserted"


@dataclass(frozen=True)
class KeyedIdentifier:
    type: IdType
    key: str
    value: str = field(repr=False)  # PII: keep it out of tracebacks and logs

    @classmethod
    def of(cls, secret: bytes, identifier: Identifier) -> "KeyedIdentifier":
        return cls(identifier.type, lookup_key(secret, identifier), identifier.value)

    def as_item(self) -> dict[str, str]:
        return {"type": self.type, "key": self.key, "value": self.value}

    @classmethod
    def from_item(cls, raw: dict[str, Any]) -> "KeyedIdentifier":
        return cls(raw["type"], raw["key"], raw["value"])

    @property
    def pk(self) -> str:
        return keys.identity_pk(self.type, self.key)


@dataclass(frozen=True)
class CapturedEvent:
    request_id: str
    event_type: EventType
    source: Source
    received_at: datetime
    deadline: date
    opt_out: OptOutMap
    gpc: bool
    identifiers: tuple[KeyedIdentifier, ...]
    links: tuple[tuple[KeyedIdentifier, KeyedIdentifier], ...]
    evidence: dict[str, Any]
    fingerprint: str
    response: dict[str, Any] = field(default_factory=dict)
    roles: tuple[Role, ...] = ()  # one per identifier; empty: default_role
    asserts: tuple[tuple[KeyedIdentifier, KeyedIdentifier], ...] = ()  # (asserter, asserted)
    confirm_opt_in: bool = False
    # replay, retire: system; hold_release, hold_reject: hold; redrive: system and dlq_moved (a
    # number), or (optout/sweep.py) request and job ids; backfill: system, resend (0/1), and
    # in a follow-up the scan's cursor (`after`) and the first event (`continues`)
    operation: dict[str, str | int] = field(default_factory=dict)

    @classmethod
    def by_operator(
        cls,
        request_id: str,
        event_type: EventType,
        operation: Mapping[str, str | int],
        evidence: dict[str, Any],
        now: datetime,
    ) -> "CapturedEvent":
        """An operator action as an event (a replay, a redrive, a hold decision): no identity,
        no choice, due the day it is made."""
        return cls(
            request_id=request_id, event_type=event_type, source="operator", received_at=now,
            deadline=now.date(), opt_out={}, gpc=False, identifiers=(), links=(),
            evidence=evidence, fingerprint="", operation=dict(operation),
        )  # fmt: skip

    def to_item(self, retention_days: int, written_at: datetime | None = None) -> Item:
        # The expiry counts from the writing (docs/deploy.md): an import of a row received long
        # ago (`written_at` now) keeps its record the whole retention, not what is left of it.
        since = max(self.received_at, written_at or self.received_at)
        expires = since + timedelta(days=retention_days)
        roles = self.roles or tuple(default_role(i.type) for i in self.identifiers)
        return {
            "pk": keys.request_pk(self.request_id),
            "sk": keys.EVENT_SK,
            "kind": "event",
            "event_type": self.event_type,
            "request_id": self.request_id,
            "source": self.source,
            "received_at": iso(self.received_at),
            "day_pk": keys.day_pk(utc_date(self.received_at), self.request_id),
            "deadline": self.deadline.isoformat(),
            "opt_out": dict(self.opt_out),
            "gpc": self.gpc,
            "identifiers": [
                i.as_item() | {"role": role}
                for i, role in zip(self.identifiers, roles, strict=True)
            ],
            "links": [{"a": a.as_item(), "b": b.as_item()} for a, b in self.links],
            "asserts": [{"from": a.as_item(), "to": b.as_item()} for a, b in self.asserts],
            "confirm_opt_in": self.confirm_opt_in,
            **({"operation": dict(self.operation)} if self.operation else {}),
            "evidence": {k: v for k, v in self.evidence.items() if v is not None},
            "fingerprint": self.fingerprint,
            "response": self.response,
            "expires_at": int(expires.timestamp()),
        }


def fingerprint(secret: bytes, route: str, payload: dict[str, Any]) -> str:
    """Keyed digest of a request, to tell a genuine retry from a reused Idempotency-Key."""
    canonical = json.dumps({"route": route, "payload": payload}, sort_keys=True, default=str)
    return hmac.new(secret, canonical.encode(), hashlib.sha256).hexdigest()


REQUEST_EVENTS = ("opt_out", "consent")


LIMIT_PURPOSE = "limit_sensitive"


def is_request(event: Item) -> bool:
    """A request with a legal deadline: an opt-out (`asks_opt_out`) or a request to limit the
    use of sensitive personal information (`asks_limit`, CCPA §7027). What the deadline watch
    reminds of and alarms on, the §7102 figures count, and an operator may deny."""
    return asks_opt_out(event) or asks_limit(event)


def asks_opt_out(event: Item) -> bool:
    """An opt-out of sale, sharing, targeted advertising or profiling (the §7102 figures'
    "requests to opt out")."""
    if event.get("event_type") not in REQUEST_EVENTS:
        return False
    choices = event.get("opt_out") or {}
    return any(choices.get(p) is True for p in SALE_SHARE_PURPOSES)


def asks_limit(event: Item) -> bool:
    """A request to limit the use and disclosure of sensitive personal information (§7027;
    counted on its own rows, §7102(a)(1)(E)-(F)). A request can ask both."""
    if event.get("event_type") not in REQUEST_EVENTS:
        return False
    return (event.get("opt_out") or {}).get(LIMIT_PURPOSE) is True
