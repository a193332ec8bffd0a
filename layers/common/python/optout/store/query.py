"""Every item a Query matches, page after page (DynamoDB answers at most 1 MB per call)."""

from collections.abc import Iterator
from typing import Any

from optout.store.codec import Item, deserialize
from optout.store.table import Table


def items(table: Table, **query: Any) -> Iterator[Item]:
    """Lazily: a caller that stops early (a limit, a deadline) reads no further page."""
    request: dict[str, Any] = {"TableName": table.name, **query}
    while True:
        page = table.client.query(**request)
        yield from (deserialize(raw) for raw in page.get("Items", []))
        if "LastEvaluatedKey" not in page:
            return
        request["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def partition(table: Table, pk: str, *, consistent: bool = False) -> list[Item]:
    """Every item under one partition key."""
    return list(
        items(
            table,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": pk}},
            ConsistentRead=consistent,
        )
    )
