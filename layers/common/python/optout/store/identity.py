"""Everything the resolver reads of one identity (one partition, one consistent Query) and the
writes that change what a derived state depends on, each bumping the node's `version` in the
same transaction so a resolver holding an older snapshot notices (resolver/service.py).

The Query stops before the request references (`XREF#`, which sort last: optout/ops/keys.py):
an identity named by 50,000 requests would otherwise cost each read 13 MB (review s19 SC2)."""

from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from optout.ops import keys as ops_keys
from optout.store import keys, query, transact
from optout.store.batch import batch_get
from optout.store.codec import Item
from optout.store.conditional import conditional, is_conflict
from optout.store.graph import assertion_items, link_items
from optout.store.table import Table


@dataclass
class Partition:
    pk: str
    node: Item | None = None
    state: Item | None = None
    links: dict[str, Item] = field(default_factory=dict)  # other pk -> link item
    asserts: dict[str, Item] = field(default_factory=dict)  # asserted pk -> edge
    asserted_by: dict[str, Item] = field(default_factory=dict)  # asserter pk -> edge (carried)
    deliveries: dict[str, Item] = field(default_factory=dict)  # system -> delivery item

    @property
    def version(self) -> int:
        return int(self.node.get("version", 0)) if self.node else 0


def read_partition(table: Table, pk: str) -> Partition:
    """Strongly consistent: the resolver reads what it or another resolver has just written."""
    found = Partition(pk)
    for item in graph_items(table, pk, consistent=True):
        _sort(found, item)
    return found


def graph_condition(pk: str) -> dict[str, Any]:
    """An identity's items up to its request references (`XREF#`, which sort last). Those
    written before session 19 (`REQREF#`) are inside the range until scripts/move_references.py
    moves them."""
    return {
        "KeyConditionExpression": "pk = :pk AND sk < :refs",
        "ExpressionAttributeValues": {":pk": {"S": pk}, ":refs": {"S": ops_keys.REF_PREFIX}},
    }


def graph_items(table: Table, pk: str, *, consistent: bool = False) -> list[Item]:
    """An identity's node, state, edges and delivery marks (one Query): what the admin lookup
    and the export's identity records read."""
    return list(query.items(table, **graph_condition(pk), ConsistentRead=consistent))


def _sort(found: Partition, item: Item) -> None:
    sk: str = item["sk"]
    if sk == keys.NODE_SK:
        found.node = item
    elif sk == keys.STATE_SK:
        found.state = item
    elif sk.startswith(keys.LINK_PREFIX):
        found.links[keys.edge_end(keys.LINK_PREFIX, sk)] = item
    elif sk.startswith(keys.ASSERTS_PREFIX):
        found.asserts[keys.edge_end(keys.ASSERTS_PREFIX, sk)] = item
    elif sk.startswith(keys.ASSERTED_PREFIX):
        found.asserted_by[keys.edge_end(keys.ASSERTED_PREFIX, sk)] = item
    elif sk.startswith(keys.DELIVERY_PREFIX):
        found.deliveries[sk[len(keys.DELIVERY_PREFIX) :]] = item


def count_asserters(table: Table, pk: str) -> int:
    answer = table.client.query(
        TableName=table.name,
        KeyConditionExpression="pk = :pk AND begins_with(sk, :edge)",
        ExpressionAttributeValues={":pk": {"S": pk}, ":edge": {"S": keys.ASSERTED_PREFIX}},
        Select="COUNT",
        ConsistentRead=True,
    )
    return int(answer.get("Count", 0))


def _bump(table: Table, pk: str, expires_at: int) -> dict[str, Any]:
    """The node must exist (the resolver writes nodes before edges)."""
    return transact.update(
        table,
        (pk, keys.NODE_SK),
        "ADD version :one SET expires_at = :exp",
        {":one": 1, ":exp": expires_at},
        condition="attribute_exists(pk)",
    )


def write_link(
    table: Table, a_pk: str, b_pk: str, request_id: str, at: str, expires_at: int
) -> None:
    items = link_items(a_pk, b_pk, request_id, at, expires_at)
    table_ops = [transact.put(table, item) for item in items]
    table_ops += [_bump(table, a_pk, expires_at), _bump(table, b_pk, expires_at)]
    transact.write(table, table_ops)


def write_assertion(
    table: Table, asserter_pk: str, asserted_pk: str, request_id: str, at: str, expires_at: int,
    named_at: str | None,
) -> None:  # fmt: skip
    """New edges carry nothing yet; only the asserter's version changes (it has someone new
    to tell). An existing edge keeps what it carries: only its expiry moves. `named_at`: the
    naming request's capture time, set on a new edge or one without (an existing edge's moves
    in the resolver's pass, which reads it: derive.Pass._push); None for an edge that stays
    undated (a held account's carry to its browser: it yields to no opt-in there)."""
    out_item, in_item = assertion_items(asserter_pk, asserted_pk, request_id, at, expires_at)
    named = ", named_at = if_not_exists(named_at, :named)" if named_at is not None else ""
    values: dict[str, object] = {":kind": "asserted", ":req": request_id, ":at": at,
                                 ":none": [], ":exp": expires_at}  # fmt: skip
    if named_at is not None:
        values[":named"] = named_at
    transact.write(
        table,
        [
            transact.put(table, out_item),
            transact.update(
                table,
                (in_item["pk"], in_item["sk"]),
                "SET kind = :kind, request_id = if_not_exists(request_id, :req), "
                "asserted_at = if_not_exists(asserted_at, :at), "
                "carried = if_not_exists(carried, :none), expires_at = :exp" + named,
                values,
            ),
            _bump(table, asserter_pk, expires_at),
        ],
    )


def write_carried(
    table: Table, asserter_pk: str, asserted_pk: str, carried: list[str], named_at: str | None,
    expires_at: int, *, moves_expiry: bool = True,
) -> bool:  # fmt: skip
    """What the asserter's cluster is opted out of, told to the asserted identity, and, when
    this event named it, `named_at` (its capture time), only over an older one: two resolvers
    naming it at once keep the later (a maximum, as in any arrival order). Not
    `moves_expiry`: the edge keeps its expiry (a held account's carry, whose two halves move
    together, from the browser's side only: review38a).
    False when the asserted identity's edge or node is gone (TTL): there is nobody left to
    tell, and an event of the asserter must not fail for it (an edge kept alive by an active
    asserter can outlive the asserted node: review s15 keep 1). `carried_at` (per-purpose times a
    build of 2026-12-03 wrote, no longer read) is dropped."""
    sets = ", named_at = :named" if named_at is not None else ""
    condition = "attribute_exists(pk)"
    values: dict[str, Any] = {":carried": carried}
    if moves_expiry:
        sets += ", expires_at = :exp"
        values[":exp"] = expires_at
    if named_at is not None:
        values[":named"] = named_at
        condition += " AND (attribute_not_exists(named_at) OR named_at < :named)"
    try:
        transact.write(
            table,
            [
                transact.update(
                    table,
                    (asserted_pk, keys.edge_sk(keys.ASSERTED_PREFIX, asserter_pk)),
                    f"SET carried = :carried{sets} REMOVE carried_at",
                    values,
                    condition=condition,
                ),
                _bump(table, asserted_pk, expires_at),
            ],
        )
    except transact.Cancelled:
        return False
    return True


def withdraw_carry(
    table: Table, account_pk: str, device_pk: str, at: str, expires_at: int
) -> bool:  # fmt: skip
    """A rejected held account's carry to its browser (both halves of the edge) is marked
    `withdrawn`: it carries nothing, is never refreshed or rewritten (a later login of the
    account there finds it), and lapses by TTL. The device's version moves, so a resolver
    deriving it meanwhile derives again. False when the edge is gone (or never was)."""
    mark = {":at": at, ":none": []}
    try:
        transact.write(table, [
            transact.update(table, (account_pk, keys.edge_sk(keys.ASSERTS_PREFIX, device_pk)),
                            "SET withdrawn = :at", {":at": at},
                            condition="attribute_exists(pk)"),
            transact.update(table, (device_pk, keys.edge_sk(keys.ASSERTED_PREFIX, account_pk)),
                            "SET withdrawn = :at, carried = :none", mark,
                            condition="attribute_exists(pk)"),
            _bump(table, device_pk, expires_at),
        ])  # fmt: skip
    except transact.Cancelled:
        return False
    return True


def refresh_expiry(table: Table, items: list[tuple[str, str]], expires_at: int) -> bool:
    """Move the expiry of items together (a link's two, an assertion's out and in, a node),
    only if all still exist: a TTL deletion meanwhile is not undone, and one half of an edge
    is not kept alive without the other. No version bump: an expiry is no graph change, and a
    bump would make concurrent resolvers derive the cluster again. False: an item was gone, or
    the write kept meeting other transactions (the next event refreshes)."""
    if len(items) == 1:
        return _refresh_one(table, items[0], expires_at)
    operations = [
        transact.update(
            table,
            key,
            "SET expires_at = :exp",
            {":exp": expires_at},
            condition="attribute_exists(pk)",
        )
        for key in items
    ]
    try:
        transact.write(table, operations)
    except transact.Cancelled:
        return False
    except ClientError as error:  # conflicts past the retries: the next event refreshes
        if error.response["Error"]["Code"] != "TransactionCanceledException":
            raise
        return False
    return True


def _refresh_one(table: Table, key: tuple[str, str], expires_at: int) -> bool:
    """One item (a node): a conditional UpdateItem, 1 WRU where a transaction of one item
    costs 2, with the same condition; and no transaction holding the node against the owner's
    own write meanwhile."""
    try:
        written = conditional(
            lambda: table.client.update_item(
                TableName=table.name,
                Key={"pk": {"S": key[0]}, "sk": {"S": key[1]}},
                UpdateExpression="SET expires_at = :exp",
                ConditionExpression="attribute_exists(pk)",
                ExpressionAttributeValues={":exp": {"N": str(expires_at)}},
            )
        )
    except ClientError as error:  # conflicts past the retries: the next event refreshes
        if not is_conflict(error):
            raise
        return False
    return written is not None


def node_versions(table: Table, pks: list[str]) -> dict[str, int]:
    found = batch_get(table, [(pk, keys.NODE_SK) for pk in pks], consistent=True)
    return {pk: int(found[(pk, keys.NODE_SK)].get("version", 0)) if (pk, keys.NODE_SK) in found
            else 0 for pk in pks}  # fmt: skip
