"""One partition in one query: a request (event, resolution, jobs) or an identity; and the
only later write to a request's resolution (a re-open's cited jobs)."""

from optout.store import keys, query
from optout.store.codec import Item, serialize
from optout.store.table import Table


def load_request(table: Table, request_id: str, *, consistent: bool = False) -> list[Item]:
    return load_partition(table, keys.request_pk(request_id), consistent=consistent)


def load_partition(table: Table, pk: str, *, consistent: bool = False) -> list[Item]:
    """Every item under one partition key (a request, or an identity with its links)."""
    return query.partition(table, pk, consistent=consistent)


def cite_more(table: Table, resolution: Item, covered: dict[str, list[str]]) -> None:
    """Jobs a re-opened request cites now (the resolver's `_reopen`), appended to those its
    RESOLUTION cited first, which stay as history (status leaves out those that proved
    nothing). Nothing else ever rewrites a RESOLUTION."""
    first = resolution.get("covered") or {}
    lists = {s: [*first.get(s, []), *[j for j in ids if j not in first.get(s, [])]]
             for s, ids in sorted(covered.items())}  # fmt: skip
    lists = {s: ids for s, ids in lists.items() if ids != first.get(s)}
    if not lists:
        return
    names = {f"#s{n}": system for n, system in enumerate(lists)}
    values = {f":s{n}": ids for n, ids in enumerate(lists.values())}
    table.client.update_item(
        TableName=table.name,
        Key={"pk": {"S": str(resolution["pk"])}, "sk": {"S": keys.RESOLUTION_SK}},
        UpdateExpression="SET " + ", ".join(f"covered.#s{n} = :s{n}" for n in range(len(lists))),
        ExpressionAttributeNames=names,
        ExpressionAttributeValues=serialize(values),
    )
