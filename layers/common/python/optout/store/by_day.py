"""Requests by the day they arrived: the ByDay index (keys.py), for sweeps, metrics, exports.

The index is eventually consistent (a GSI cannot be read strongly): a request a few seconds
old may not be listed yet, which every caller here tolerates (sweeps run again, reports are
about days gone by). Items come back as the index projects them: request_id, received_at,
deadline, source, event_type.
"""

from collections.abc import Iterator
from datetime import date, datetime, timedelta
from typing import Any

from optout.store import keys
from optout.store.codec import Item, deserialize
from optout.store.table import Table
from optout.timestamps import iso


def events_between(
    table: Table, start: datetime, end: datetime, first_shard: int = 0
) -> Iterator[Item]:
    """Every event received in [start, end), oldest day first (within a day, shard by shard,
    starting at shard number `first_shard` and wrapping round: a reader that may stop early
    starts elsewhere each time, so it does not always leave the same shards unread)."""
    low, high = iso(start), iso(end)
    first = first_shard % len(keys.DAY_SHARDS)
    shards = keys.DAY_SHARDS[first:] + keys.DAY_SHARDS[:first]
    for day in _days(start.date(), end.date()):
        for shard in shards:
            yield from _query(table, keys.day_pk(day.isoformat(), shard), low, high)


def _days(first: date, last: date) -> Iterator[date]:
    day = first
    while day <= last:
        yield day
        day += timedelta(days=1)


def _query(table: Table, pk: str, low: str, high: str) -> Iterator[Item]:
    kwargs: dict[str, Any] = {
        "TableName": table.name,
        "IndexName": keys.DAY_INDEX,
        "KeyConditionExpression": "day_pk = :pk AND received_at BETWEEN :low AND :high",
        "ExpressionAttributeValues": {
            ":pk": {"S": pk},
            ":low": {"S": low},
            ":high": {"S": high},
        },
    }
    while True:
        page = table.client.query(**kwargs)
        for raw in page.get("Items", []):
            item = deserialize(raw)
            if item["received_at"] < high:  # BETWEEN includes its upper bound; [start, end)
                yield item
        if "LastEvaluatedKey" not in page:
            return
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
