"""One partition in one query: a request (event, resolution, jobs) or an identity."""

from typing import Any

from optout.store import keys
from optout.store.codec import Item, deserialize
from optout.store.table import Table


def load_request(table: Table, request_id: str) -> list[Item]:
    return load_partition(table, keys.request_pk(request_id))


def load_partition(table: Table, pk: str) -> list[Item]:
    """Every item under one partition key (a request, or an identity with its links)."""
    items: list[Item] = []
    kwargs: dict[str, Any] = {
        "TableName": table.name,
        "KeyConditionExpression": "pk = :pk",
        "ExpressionAttributeValues": {":pk": {"S": pk}},
    }
    while True:
        page = table.client.query(**kwargs)
        items.extend(deserialize(raw) for raw in page.get("Items", []))
        if "LastEvaluatedKey" not in page:
            return items
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
