"""A request's items together with the earlier jobs its resolution cites as proof."""

from optout.status import covering_keys
from optout.store.batch import batch_get
from optout.store.codec import Item
from optout.store.requests import load_request
from optout.store.table import Table

Covering = dict[tuple[str, str], Item]


def load_with_proof(table: Table, request_id: str) -> tuple[list[Item], Covering]:
    """One Query for the request, and (only when it cites any) one BatchGetItem."""
    items = load_request(table, request_id)
    cited = covering_keys(items)
    return items, (batch_get(table, cited) if cited else {})
