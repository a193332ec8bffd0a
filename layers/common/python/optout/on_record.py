"""Whether a name no longer configured has work on record: what `optout retire` takes without
a scan (optout/retire.py), and what the replay, redrive and backfill routes' 404 for such a
name points to the retire by (optout/review.py; review s30 operator F5). Its own module:
retire.py imports review.py (`near_names`)."""

from optout.ops import keys as ops_keys
from optout.ops.ledger import year_ledgers
from optout.store import keys
from optout.store.codec import deserialize
from optout.store.table import Table


def on_record(table: Table, system: str, year: int) -> bool:
    """Failed jobs of the system listed, or the name on the watch's or the §7102 ledgers'
    record: a name not configured that the retire takes without a retirement before it."""
    return failed_listed(table, system) or system in names_on_record(table, year)


def failed_listed(table: Table, system: str) -> bool:
    """Failed jobs of the system listed for replay (one Query of at most one item)."""
    listed = table.client.query(
        TableName=table.name, KeyConditionExpression="pk = :pk", Limit=1,
        ExpressionAttributeValues={":pk": {"S": keys.failed_pk(system)}},
    )  # fmt: skip
    return bool(listed.get("Items"))


def names_on_record(table: Table, year: int) -> set[str]:
    """The systems overdue at the watch's last run, or counted in the §7102 ledgers of this
    year or the last (every request the watch has enrolled, within minutes of its arrival,
    adds its systems' `s.<system>.<state>`): the reads the metrics route makes, never a scan
    of the jobs."""
    found = table.client.get_item(
        TableName=table.name, ConsistentRead=True,
        Key={"pk": {"S": ops_keys.WATCH_PK}, "sk": {"S": ops_keys.STATUS_SK}},
    )  # fmt: skip
    watch = deserialize(found["Item"]) if "Item" in found else {}
    names = {str(name) for name in (watch.get("overdue_by_system") or {})}
    for y in (year, year - 1):
        for ledger in year_ledgers(table, y):
            names.update(str(n).split(".")[1] for n in ledger if str(n).startswith("s."))
    return names
