"""A request's items (event, resolution, jobs) in one query of its partition."""

from typing import Any

from optout.store import keys
from optout.store.codec import Item, deserialize
from optout.store.table import Table


def load_request(table: Table, request_id: str) -> list[Item]:
    items: list[Item] = []
    kwargs: dict[str, Any] = {
        "TableName": table.name,
        "KeyConditionExpression": "pk = :pk",
        "ExpressionAttributeValues": {":pk": {"S": keys.request_pk(request_id)}},
    }
    while True:
        page = table.client.query(**kwargs)
        items.extend(deserialize(raw) for raw in page.get("Items", []))
        if "LastEvaluatedKey" not in page:
            return items
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
