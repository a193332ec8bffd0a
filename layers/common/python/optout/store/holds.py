"""Verified links held for review because they would grow a cluster past the cap.

All holds share one partition (`HOLD`): they are rare (only verified links can be held;
asserted identifiers never count toward the cap), and operators list them together. A hold
names its two identities by type and keyed hash only; their nodes (written when the link
arrived) hold the values a release needs.
"""

import itertools

from optout.store import keys, query
from optout.store.codec import Item, deserialize, serialize
from optout.store.conditional import conditional
from optout.store.table import Table


def hold_item(
    request_id: str, n: int, a: Item, b: Item, sizes: tuple[int, int], cap: int, at: str,
    expires_at: int,
) -> Item:  # fmt: skip
    return {"pk": keys.HOLD_PK, "sk": keys.hold_sk(request_id, n), "kind": "hold",
            "status": "held", "request_id": request_id, "a": a, "b": b, "cluster_a": sizes[0],
            "cluster_b": sizes[1], "cap": cap, "held_at": at, "expires_at": expires_at}  # fmt: skip


def list_holds(table: Table, limit: int) -> list[Item]:
    holds = query.items(
        table,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": keys.HOLD_PK}},
    )
    return list(itertools.islice(holds, limit))


def get_hold(table: Table, sk: str, *, consistent: bool = False) -> Item | None:
    answer = table.client.get_item(
        TableName=table.name,
        Key={"pk": {"S": keys.HOLD_PK}, "sk": {"S": sk}},
        ConsistentRead=consistent,
    )
    raw = answer.get("Item")
    return deserialize(raw) if raw else None


def decide(table: Table, hold: Item, status: str, at: str) -> bool:
    """held -> released / rejected, once; False if someone decided first."""
    decided = {k: v for k, v in hold.items()} | {"status": status, "decided_at": at}
    written = conditional(
        lambda: table.client.put_item(
            TableName=table.name,
            Item=serialize(decided),
            ConditionExpression="#status = :held",
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues={":held": {"S": "held"}},
        )
    )
    return written is not None
