"""One partition in one query: a request (event, resolution, jobs) or an identity."""

from optout.store import keys, query
from optout.store.codec import Item
from optout.store.table import Table


def load_request(table: Table, request_id: str, *, consistent: bool = False) -> list[Item]:
    return load_partition(table, keys.request_pk(request_id), consistent=consistent)


def load_partition(table: Table, pk: str, *, consistent: bool = False) -> list[Item]:
    """Every item under one partition key (a request, or an identity with its links)."""
    return query.partition(table, pk, consistent=consistent)
