"""Effective opt-out state: pure functions, independent of the order events arrive in.

Each identity keeps its *own* choices as last-writer-wins registers ordered by the event's
time (then request id), so replaying events in any order converges. A cluster of linked
identities is opted out of a purpose if any member is (sticky: most restrictive wins); only a
member's own later opt-in lifts its own opt-out, and never a GPC opt-out while its signal is on.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from optout.events import Role
from optout.purposes import ALL_PURPOSES, GPC_PURPOSES, OptOutMap, Purpose

Stamp = tuple[str, str]  # (received_at ISO, request_id): a total order on events


@dataclass(frozen=True)
class Register:
    value: bool
    at: str
    request_id: str

    @property
    def stamp(self) -> Stamp:
        return (self.at, self.request_id)

    def to_item(self) -> dict[str, Any]:
        return {"v": self.value, "at": self.at, "req": self.request_id}

    @classmethod
    def from_item(cls, raw: dict[str, Any]) -> "Register":
        return cls(bool(raw["v"]), str(raw["at"]), str(raw["req"]))


@dataclass(frozen=True)
class OwnState:
    """One identity's own choices and GPC signal, as registers."""

    choices: dict[Purpose, Register]
    gpc: Register | None

    @classmethod
    def empty(cls) -> "OwnState":
        return cls({}, None)

    @classmethod
    def from_item(cls, raw: dict[str, Any]) -> "OwnState":
        choices: dict[Purpose, Register] = {
            p: Register.from_item(v) for p, v in raw.get("own", {}).items()
        }
        gpc = Register.from_item(raw["gpc"]) if raw.get("gpc") else None
        return cls(choices, gpc)

    @classmethod
    def kept(cls, state: dict[str, Any]) -> "OwnState":
        """A new node's registers for an identity whose node expired while its STATE was kept
        opted out (docs/decisions.md, "An opt-out is kept: the STATE item, not the node"):
        each opted-out purpose, stamped with the state's `updated_at` and no request id, so a
        later event's choice wins by the usual order and an older (replayed) one does not.
        No GPC register: the STATE says the signal was on when it was written, not that it is
        on now; the opt-out it caused stays (CCPA §7025(c)(5))."""
        at = str(state.get("updated_at") or "")
        opted = state.get("opt_out") or {}
        choices = {p: Register(True, at, "") for p in ALL_PURPOSES if opted.get(p) is True}
        return cls(choices, None)

    def to_item(self) -> dict[str, Any]:
        return {
            "own": {p: r.to_item() for p, r in self.choices.items()},
            "gpc": self.gpc.to_item() if self.gpc else None,
        }

    @property
    def gpc_on(self) -> bool:
        return bool(self.gpc and self.gpc.value)

    def opted_out(self) -> set[Purpose]:
        out = {p for p, r in self.choices.items() if r.value}
        if self.gpc_on:
            out.update(GPC_PURPOSES)
        return out


def _later(current: Register | None, candidate: Register) -> Register:
    if current is None or candidate.stamp > current.stamp:
        return candidate
    return current


def apply_event(state: OwnState, choices: OptOutMap, gpc: bool, stamp: Stamp) -> OwnState:
    """Merge one event into an identity's own state (commutative, idempotent)."""
    at, request_id = stamp
    merged = dict(state.choices)
    for purpose, value in choices.items():
        merged[purpose] = _later(merged.get(purpose), Register(value, at, request_id))
    signal = state.gpc
    # The signal turns on with any GPC event; it turns off only with an explicit opt-in made
    # without it: a later *absence* of the signal is not consent (CCPA §7025(c)(5)).
    explicit_opt_in = any(value is False for value in choices.values())
    if gpc or explicit_opt_in:
        signal = _later(signal, Register(gpc, at, request_id))
    return OwnState(merged, signal)


def allowed(role: Role, choices: OptOutMap, gpc: bool, confirmed: bool) -> tuple[OptOutMap, bool]:
    """What one request may change of one identity's own registers.

    An opt-out always counts (it needs no verification). An opt-in (`false`) counts only for
    the requester's own device or a token-bound identity, and only confirmed (CCPA §7028): an
    unconfirmed one is dropped, not stored, so it can never lift an opt-out in any arrival
    order. An asserted identity gets opt-outs only, and never a GPC register (on or off).
    """
    opt_outs: OptOutMap = {p: True for p, v in choices.items() if v}
    if role == "asserted":
        return opt_outs, False
    if confirmed:
        return dict(choices), gpc
    return opt_outs, gpc


def cluster_opted_out(members: list[OwnState]) -> set[Purpose]:
    out: set[Purpose] = set()
    for member in members:
        out |= member.opted_out()
    return out


def carried_counts(carried: Iterable[Purpose], named_at: str | None, own: OwnState) -> set[Purpose]:
    """The opt-outs an asserted identity takes from one asserting cluster: each, unless the
    identity's own confirmed opt-in of that purpose (a `false` register: only confirmed ones
    are stored) is newer than the asserter's latest naming of it (`named_at`: the capture time
    of the last request that named the identity). A stranger who once named someone's email
    must name it again to outrank that person's later choice; a browser re-posting its own
    choices (a GPC session, a repeated opt-out) does not. An edge with no `named_at` (written
    before session 30) counts: the opt-out wins, as before (docs/decisions.md, "A carried
    opt-out never outranks a newer opt-in"). Ties go to the opt-out."""
    counted: set[Purpose] = set()
    for purpose in carried:
        mine = own.choices.get(purpose)
        if mine is None or mine.value or named_at is None or named_at >= mine.at:
            counted.add(purpose)
    return counted


def as_map(opted: set[Purpose]) -> OptOutMap:
    return {p: p in opted for p in ALL_PURPOSES}
