"""Batched reads and writes, with DynamoDB's per-call limits and unprocessed-item retries."""

import time
from collections.abc import Callable, Iterable
from typing import Any

from optout.store.codec import Item, deserialize, serialize
from optout.store.conditional import conditional, conditional_once
from optout.store.table import Table

GET_LIMIT = 100  # BatchGetItem keys per call
WRITE_LIMIT = 25  # BatchWriteItem items per call
MAX_ROUNDS = 8  # unprocessed retries before giving up loudly

Key = tuple[str, str]


def _chunks(items: list[Any], size: int) -> Iterable[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _backoff(round_: int) -> None:
    if round_:
        time.sleep(min(0.05 * 2**round_, 1.0))


def batch_get(
    table: Table, keys: Iterable[Key], *, consistent: bool = False, fields: tuple[str, ...] = ()
) -> dict[Key, Item]:
    """The items found, by key; `fields`: only these attributes (with the key) are read."""
    wanted = list(dict.fromkeys(keys))
    found: dict[Key, Item] = {}
    for chunk in _chunks(wanted, GET_LIMIT):
        request: dict[str, Any] = {
            table.name: {
                "Keys": [{"pk": {"S": pk}, "sk": {"S": sk}} for pk, sk in chunk],
                "ConsistentRead": consistent,
            }
        }
        if fields:  # names, not the attributes themselves: `status` is a reserved word
            names = {f"#f{n}": name for n, name in enumerate(("pk", "sk", *fields))}
            request[table.name] |= {"ProjectionExpression": ", ".join(names),
                                    "ExpressionAttributeNames": names}  # fmt: skip
        for round_ in range(MAX_ROUNDS):
            _backoff(round_)
            answer = table.client.batch_get_item(RequestItems=request)
            for raw in answer["Responses"].get(table.name, []):
                item = deserialize(raw)
                found[(item["pk"], item["sk"])] = item
            request = dict(answer.get("UnprocessedKeys") or {})
            if not request:
                break
        else:
            raise RuntimeError("BatchGetItem left keys unprocessed")
    return found


def batch_put(table: Table, items: list[Item]) -> None:
    batch_write(table, items, [])


def batch_write(table: Table, items: list[Item], deletes: list[Key]) -> None:
    """Puts `items` and deletes the items at `deletes` ((pk, sk)), WRITE_LIMIT a request."""
    writes: list[dict[str, Any]] = [{"PutRequest": {"Item": serialize(i)}} for i in items] + [
        {"DeleteRequest": {"Key": {"pk": {"S": pk}, "sk": {"S": sk}}}} for pk, sk in deletes
    ]
    for chunk in _chunks(writes, WRITE_LIMIT):
        request: dict[str, Any] = {table.name: chunk}
        for round_ in range(MAX_ROUNDS):
            _backoff(round_)
            answer = table.client.batch_write_item(RequestItems=request)
            request = dict(answer.get("UnprocessedItems") or {})
            if not request:
                break
        else:
            raise RuntimeError("BatchWriteItem left items unprocessed")


def put(table: Table, item: Item) -> None:
    table.client.put_item(TableName=table.name, Item=serialize(item))


def get_item(table: Table, key: Key) -> Item | None:
    """One item by its key, read strongly consistent; None when there is none."""
    raw = table.client.get_item(
        TableName=table.name,
        Key={"pk": {"S": key[0]}, "sk": {"S": key[1]}},
        ConsistentRead=True,
    ).get("Item")
    return deserialize(raw) if raw else None


def delete_item(table: Table, key: Key) -> None:
    table.client.delete_item(TableName=table.name, Key={"pk": {"S": key[0]}, "sk": {"S": key[1]}})


def put_if_absent(table: Table, item: Item) -> bool:
    """Conditional put; False when an item with this key already exists."""
    written = conditional(
        lambda: table.client.put_item(
            TableName=table.name,
            Item=serialize(item),
            ConditionExpression="attribute_not_exists(pk)",
        )
    )
    return written is not None


def put_once(table: Table, item: Item, ours: Callable[[Item], bool]) -> bool:
    """put_if_absent that knows its own write: True also when the item it finds is the one
    this very call wrote (`ours`, told the item found), whose answer was lost (a 500, a reset
    connection) and which botocore sent again (store/conditional.py, `conditional_once`)."""
    return conditional_once(
        lambda: table.client.put_item(
            TableName=table.name,
            Item=serialize(item),
            ConditionExpression="attribute_not_exists(pk)",
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        ),
        ours,
    )


def put_versioned(table: Table, item: Item, expected_version: int) -> bool:
    """Optimistic concurrency: write only if nobody changed the item since it was read."""
    written = conditional(
        lambda: table.client.put_item(
            TableName=table.name,
            Item=serialize(item),
            ConditionExpression="attribute_not_exists(pk) OR version = :v",
            ExpressionAttributeValues={":v": {"N": str(expected_version)}},
        )
    )
    return written is not None
