"""Event items: the one durable write of the capture hot path."""

from typing import Any

from botocore.exceptions import ClientError

from optout.store import keys
from optout.store.codec import Item, deserialize, serialize
from optout.store.table import Table


def put_event(table: Table, item: Item) -> tuple[Item, bool]:
    """Write the event unless its request id exists; one call either way.

    Returns (stored item, created). A replay (same Idempotency-Key, hence same request id)
    gets the first item back from the failed condition, without a second read.
    """
    try:
        table.client.put_item(
            TableName=table.name,
            Item=serialize(item),
            ConditionExpression="attribute_not_exists(pk)",
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
    except ClientError as error:
        if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
            raise
        old: Any = error.response.get("Item")
        if not isinstance(old, dict):  # DynamoDB returns it when asked; be loud if not
            raise
        return deserialize(old), False
    return item, True


def find_event(table: Table, request_id: str) -> Item | None:
    """The event, read strongly consistent by a Query (the capture's grant: it may Query its
    request partitions, not GetItem them)."""
    answer = table.client.query(
        TableName=table.name,
        KeyConditionExpression="pk = :pk AND sk = :sk",
        ExpressionAttributeValues={
            ":pk": {"S": keys.request_pk(request_id)},
            ":sk": {"S": keys.EVENT_SK},
        },
        ConsistentRead=True,
    )
    items = answer.get("Items") or []
    return deserialize(items[0]) if items else None


def get_event(table: Table, request_id: str) -> Item | None:
    answer = table.client.get_item(
        TableName=table.name,
        Key={"pk": {"S": keys.request_pk(request_id)}, "sk": {"S": keys.EVENT_SK}},
    )
    raw = answer.get("Item")
    return deserialize(raw) if raw else None
