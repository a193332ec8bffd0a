"""Effective-state items: one per identity, maintained by the resolver, read by the banner."""

from optout.store import keys
from optout.store.codec import Item, deserialize
from optout.store.table import Table


def get_state(table: Table, id_type: str, key: str) -> Item | None:
    answer = table.client.get_item(
        TableName=table.name,
        Key={"pk": {"S": keys.identity_pk(id_type, key)}, "sk": {"S": keys.STATE_SK}},
    )
    raw = answer.get("Item")
    return deserialize(raw) if raw else None
