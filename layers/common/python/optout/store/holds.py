"""Verified links held for review because they would grow a cluster past the cap.

All holds share one partition (`HOLD`): they are rare (only verified links can be held;
asserted identifiers never count toward the cap), and operators list them together. A hold
names its two identities by type and keyed hash only; their nodes (written when the link
arrived) hold the values a release needs.

A hold is `held`, then `rejected` (by the route), or `releasing` (the route, with the release
event in one transaction) and `released` (the resolver, once it linked the pair). Each step is
conditional on the one before, so a hold is decided once.

A login's hold that may carry (`carries`: a device held apart from an account) is counted, in
the same partition, on a count item per account (`COUNT#<the account's pk>`: keyed hashes
only). The count is the set of the account's undecided counted holds (`holds`: each entry the
hold's expiry and sort key, `entry`), so it cannot drift above them: the hold's put and the
entry's ADD are one transaction, so a hold is counted once (a retried event finds its hold and
adds nothing), and past `limit` entries the account's next one is refused (neither held nor
linked). The release or reject that decides a counted hold (named by its `counted`) deletes its
entry in its own transaction; an entry whose hold lapsed undecided is deleted when a login
meets the limit (`put_counted`). Identity37 F3: made-up browser ids gave one account a hold
each, without bound; holds38: holds that lapsed unreviewed stayed counted.
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
COUNT_PREFIX = "COUNT#"  # the count of an account's undecided holds, in the HOLD partition


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


def count_sk(account_pk: str) -> str:
    return f"{COUNT_PREFIX}{account_pk}"


def entry(hold: Item) -> str:
    """A counted hold's entry in its account's count: its expiry first, then its sort key (a
    hold keeps both while it is undecided)."""
    return f"{int(hold.get('expires_at', 0))} {hold['sk']}"


def put_counted(
    table: Table, item: Item, account_pk: str, limit: int, now: int
) -> tuple[bool, Item | None]:  # fmt: skip
    """The hold `item`, counted on `account_pk`, in one transaction, if it is not there yet and
    the account has fewer than `limit` undecided counted holds: (True, None). A hold already
    there (a retry, a later login on that browser): (False, the hold found). Refused at the
    limit: (False, None). A lost answer that botocore sends again carries the same
    ClientRequestToken (TransactWriteItems is idempotent for 10 minutes), so it counts once.
    At the limit, entries whose holds expired before `now` (lapsed undecided) are deleted and
    the transaction is tried once more: only then does the refusal path read (the count) and
    write (the deletion), and the retried ADD is still conditional, so logins racing for a
    freed place never pass the limit (holds38)."""
    counted = item | {"counted": count_sk(account_pk)}
    hold = transact.put(table, counted, "attribute_not_exists(pk)")
    hold["Put"]["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
    count = transact.update(
        table, (keys.HOLD_PK, count_sk(account_pk)),
        "ADD holds :entry SET expires_at = :e",
        {":entry": {entry(counted)}, ":e": item["expires_at"], ":limit": limit},
        "attribute_not_exists(holds) OR size(holds) < :limit",
    )  # fmt: skip
    for pruned in (False, True):
        try:
            transact.write(table, [hold, count])
        except transact.Cancelled as cancelled:
            if 0 in cancelled.failed:
                return False, cancelled.found.get(0) or get_hold(table, item["sk"], consistent=True)
            if pruned or not _prune(table, account_pk, now):
                return False, None
            continue
        return True, None
    return False, None  # not reached: the second pass returns


def _prune(table: Table, account_pk: str, now: int) -> bool:
    """Delete from the account's count the entries of holds that expired before `now` (lapsed
    undecided: no release or reject will take them off): whether any were. A consistent read
    of the count and one UpdateItem; a DELETE of entries gone meanwhile (another login pruned
    them, a decision took its own off) changes nothing, so racing prunes are harmless."""
    found = get_hold(table, count_sk(account_pk), consistent=True) or {}
    lapsed = {e for e in found.get("holds") or () if int(str(e).split(" ", 1)[0]) < now}
    if not lapsed:
        return False
    conditional(lambda: table.client.update_item(
        TableName=table.name,
        Key={"pk": {"S": keys.HOLD_PK}, "sk": {"S": count_sk(account_pk)}},
        UpdateExpression="DELETE holds :lapsed",
        ConditionExpression="attribute_exists(pk)",
        ExpressionAttributeValues={":lapsed": {"SS": sorted(lapsed)}},
    ))  # fmt: skip
    return True


def uncounting(table: Table, hold: Item) -> list[dict[str, Any]]:
    """The transaction step that takes a counted hold off its account's count, with the step
    that decides it (none for a hold made before the count, or not counted). A hold counted
    before holds38 (on the number `undecided`) has no entry: its DELETE changes nothing. The
    count keeps an expiry (the hold's) if the item had lapsed meanwhile."""
    if not hold.get("counted"):
        return []
    return [transact.update(
        table, (keys.HOLD_PK, str(hold["counted"])),
        "DELETE holds :entry SET expires_at = if_not_exists(expires_at, :e)",
        {":entry": {entry(hold)}, ":e": hold.get("expires_at", 0)},
    )]  # fmt: skip


def list_holds(table: Table, limit: int) -> list[Item]:
    """Undecided holds first, then decided ones, each newest first. The whole partition is
    read: its sort keys start with a random request id, so no key range is the newest (the
    accounts' counts, read with them, are left out)."""
    found = query.items(
        table,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": keys.HOLD_PK}},
    )
    holds = [h for h in found if not str(h["sk"]).startswith(COUNT_PREFIX)]
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
