"""A request's items together with the earlier jobs its resolution cites as proof."""

from optout.status import covering_keys
from optout.store.batch import batch_get
from optout.store.codec import Item
from optout.store.requests import load_request
from optout.store.table import Table

Covering = dict[tuple[str, str], Item]


def load_with_proof(
    table: Table, request_id: str, *, consistent: bool = False
) -> tuple[list[Item], Covering]:
    """One Query for the request, and (only when it cites any) one BatchGetItem. `consistent`
    for a read that must see a write just acknowledged (a status asked for right after its
    202, a decision taken on it): DynamoDB's default reads may not yet."""
    items = load_request(table, request_id, consistent=consistent)
    cited = covering_keys(items)
    return items, (batch_get(table, cited, consistent=consistent) if cited else {})
