"""Verified links held for review because they would grow a cluster past the cap.

All holds share one partition (`HOLD`): they are rare (only verified links can be held;
asserted identifiers never count toward the cap), and operators list them together. A hold
names its two identities by type and keyed hash only; their nodes (written when the link
arrived) hold the values a release needs.

A hold is `held`, then `rejected` (by the route), or `releasing` (the route, with the release
event in one transaction) and `released` (the resolver, once it linked the pair). Each step is
conditional on the one before, so a hold is decided once.
"""

from typing import Any

from optout.store import keys, query, transact
from optout.store.codec import Item, deserialize
from optout.store.conditional import conditional
from optout.store.table import Table

# Why a link is held: absent (holds made before 2026-12-03) or CLUSTER_CAP, the cluster cap;
# SECOND_ACCOUNT, a login that would join a browser already linked to one account to another.
CLUSTER_CAP = "cluster_cap"
SECOND_ACCOUNT = "second_account"


def carries(hold: Item) -> bool:
    """Whether a hold may have an account's carry to a browser (resolver/service.py `_link`):
    a second account's, or one that holds a device apart from an identifier that is not a
    device (a login held at the cluster cap; a backend's link of the same shape, whose reject
    then finds no carry to withdraw). Its reject withdraws the carry (a `hold_reject` event)."""
    if hold.get("reason") == SECOND_ACCOUNT:
        return True
    a, b = (str((hold.get(side) or {}).get("type", "")) for side in ("a", "b"))
    return a == "device_id" and b not in ("", "device_id")


def hold_item(
    request_id: str, n: int, a: Item, b: Item, sizes: tuple[int, int], cap: int, at: str,
    expires_at: int,
) -> Item:  # fmt: skip
    return {"pk": keys.HOLD_PK, "sk": keys.hold_sk(request_id, n), "kind": "hold",
            "status": "held", "request_id": request_id, "a": a, "b": b, "cluster_a": sizes[0],
            "cluster_b": sizes[1], "cap": cap, "held_at": at, "expires_at": expires_at}  # fmt: skip


def list_holds(table: Table, limit: int) -> list[Item]:
    """Undecided holds first, then decided ones, each newest first. The whole partition is
    read: its sort keys start with a random request id, so no key range is the newest."""
    holds = query.items(
        table,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": keys.HOLD_PK}},
    )
    newest = sorted(holds, key=lambda h: str(h["held_at"]), reverse=True)
    return sorted(newest, key=lambda h: h.get("status") != "held")[:limit]


def get_hold(table: Table, sk: str, *, consistent: bool = False) -> Item | None:
    answer = table.client.get_item(
        TableName=table.name,
        Key={"pk": {"S": keys.HOLD_PK}, "sk": {"S": sk}},
        ConsistentRead=consistent,
    )
    raw = answer.get("Item")
    return deserialize(raw) if raw else None


def decide(table: Table, hold: Item, status: str, at: str) -> bool:
    """From the status `hold` was read with to `status`, once; False if someone moved it first.
    `decided_at` stays the operator's decision: a release was decided when it was marked
    `releasing`, not when the resolver linked the pair."""
    change = {"status": status, "decided_at": hold.get("decided_at") or at}
    step = _step(table, hold, str(hold.get("status", "held")), change)
    return conditional(lambda: table.client.put_item(**step["Put"])) is not None


def releasing(table: Table, hold: Item, request_id: str, at: str) -> dict[str, Any]:
    """The transaction step that marks a held link `releasing` by the event `request_id`."""
    change = {"status": "releasing", "release_request_id": request_id, "decided_at": at}
    return _step(table, hold, "held", change)


def rejecting(table: Table, hold: Item, request_id: str, at: str) -> dict[str, Any]:
    """The transaction step that marks a held second account `rejected`, with the event
    `request_id` whose resolution withdraws the account's carry to the browser."""
    change = {"status": "rejected", "reject_request_id": request_id, "decided_at": at}
    return _step(table, hold, "held", change)


def _step(table: Table, hold: Item, was: str, change: Item) -> dict[str, Any]:
    """The hold with `change`, put only if its status is still `was`."""
    return transact.put(table, dict(hold) | change, "#status = :was", {":was": was},
                        {"#status": "status"})  # fmt: skip
