"""Identity-graph edges: link items under each node's partition, written both ways."""

from typing import Any

from optout.store import keys
from optout.store.table import Table


def neighbours(table: Table, pk: str) -> list[str]:
    """Partition keys of the identities linked to `pk` (one Query, keys only)."""
    found: list[str] = []
    kwargs: dict[str, Any] = {
        "TableName": table.name,
        "KeyConditionExpression": "pk = :pk AND begins_with(sk, :link)",
        "ExpressionAttributeValues": {":pk": {"S": pk}, ":link": {"S": keys.LINK_PREFIX}},
        "ProjectionExpression": "sk",
    }
    while True:
        page = table.client.query(**kwargs)
        for raw in page.get("Items", []):
            id_type, key = raw["sk"]["S"][len(keys.LINK_PREFIX) :].split("#", 1)
            found.append(keys.identity_pk(id_type, key))
        if "LastEvaluatedKey" not in page:
            return found
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def link_items(a_pk: str, b_pk: str, request_id: str, at: str) -> list[dict[str, Any]]:
    a_type, a_key = keys.split_identity_pk(a_pk)
    b_type, b_key = keys.split_identity_pk(b_pk)
    return [
        {"pk": a_pk, "sk": keys.link_sk(b_type, b_key), "kind": "link", "request_id": request_id,
         "linked_at": at},
        {"pk": b_pk, "sk": keys.link_sk(a_type, a_key), "kind": "link", "request_id": request_id,
         "linked_at": at},
    ]  # fmt: skip
