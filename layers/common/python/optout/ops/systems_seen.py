"""Systems added to the config without `optout backfill` (review s18 operator M3).

A system added (or added back) reaches the people who opted out earlier only at their next
event, until an operator runs `optout backfill SYSTEM` (README, "Adding a system"). The
deadline watch keeps `WATCH / SYSTEMS`: each configured system, the run that first saw it,
and `since`, the run before that (the deploy that added it came after it: a backfill started
from then on counts, even one started before the watch's first run with the new config). The
systems of the first run are `initial`: what the stack had before this record existed is not
judged. A name no longer configured is dropped, so one added back is new again.

A system first seen later is "not backfilled" until a backfill of it was started since then
(its `BACKFILL / <yyyy>#<id>` record, ops/backfills.py: system and `started_at`); the first
one found is kept (`backfill_id`), so the records are read only while a system waits.
"""

from optout.ops import backfills
from optout.ops import keys as ops_keys
from optout.store.batch import get_item
from optout.store.codec import Item, serialize
from optout.store.table import Table


def not_backfilled(table: Table, configured: list[str], now: str) -> list[str]:
    """The configured systems added since the record began that no backfill has reached yet
    (sorted); the record is rewritten with this run's view."""
    found = _read(table)
    if found is None:
        entries = {name: {"first_seen": now, "since": now, "initial": 1} for name in configured}
        _write(table, {"recorded_at": now, "systems": entries}, now)
        return []
    known: dict[str, Item] = dict(found.get("systems") or {})
    previous = str(found.get("checked_at") or found["recorded_at"])
    entries = {name: dict(known.get(name) or {"first_seen": now, "since": previous})
               for name in configured}  # fmt: skip
    waiting = {name: e for name, e in entries.items()
               if not e.get("initial") and not e.get("backfill_id")}  # fmt: skip
    if waiting:
        _find_backfills(table, waiting, now)
    _write(table, {"recorded_at": found["recorded_at"], "systems": entries}, now)
    return sorted(name for name, e in waiting.items() if not e.get("backfill_id"))


def _find_backfills(table: Table, waiting: dict[str, Item], now: str) -> None:
    """Set `backfill_id` on each waiting system a backfill was started for since `since`."""
    first = min(int(str(e["since"])[:4]) for e in waiting.values())
    for record in backfills.records_since(table, first, int(now[:4])):
        entry = waiting.get(str(record.get("system")))
        if entry is not None and not entry.get("backfill_id") \
                and str(record.get("started_at") or "") >= str(entry["since"]):  # fmt: skip
            entry["backfill_id"] = str(record["backfill_id"])


def _read(table: Table) -> Item | None:
    return get_item(table, (ops_keys.WATCH_PK, ops_keys.SYSTEMS_SK))


def _write(table: Table, fields: Item, now: str) -> None:
    item = {"pk": ops_keys.WATCH_PK, "sk": ops_keys.SYSTEMS_SK, "kind": "configured_systems",
            "checked_at": now, **fields}  # fmt: skip
    table.client.put_item(TableName=table.name, Item=serialize(item))
