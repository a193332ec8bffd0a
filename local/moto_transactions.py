"""TransactWriteItems in the local stack without moto's copy of the whole table.

moto 5.2 backs up every table a transaction names with `copy.deepcopy(table)` before it
writes, to restore it if a condition fails: every item, index and unread stream record, on
every transaction. The resolver writes each job in a transaction, so the cost grew with
everything the stack had stored: ~0.15 s per thousand items on this machine, and a soak of
2,000 opt-outs (~25,000 items) spent seconds per job on copies (docs/reliability.md).

Here the backup holds only what the transaction can change: a copy of each item it names (or
its absence) and each table's stream length. On failure those items are put back and the
stream records the cancelled writes made are dropped, which is what restoring the copy did;
moto's own rollback then puts back the very same table object. Items, conditions, errors and
stream records are otherwise moto's own (tests/unit/local/test_moto_transactions.py compares
a cancelled and a committed transaction with moto as shipped). For the local stack's process
only; it runs under the moto guard's lock, so nothing else touches the table meanwhile.
"""

import copy
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import moto.dynamodb.models as dynamodb_models
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.dynamo_type import DynamoType, Item
from moto.dynamodb.models.table import Table

from local.patching import Patches

_patches = Patches()


def install() -> None:
    """Idempotent; for a process whose only AWS is the embedded moto (the local stack)."""
    if _patches.installed():
        return
    original: Callable[[DynamoDBBackend, list[dict[str, Any]]], None]
    original = DynamoDBBackend.transact_write_items
    # The module's `copy` serves two calls: the table backup (made a no-op) and an item's
    # old image in update_item (kept).
    copies = SimpleNamespace(deepcopy=_deepcopy_unless_table, copy=copy.copy)
    _patches.swap(dynamodb_models, "copy", copies)

    def transact_write_items(self: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> None:
        saved = _Backup(self, transact_items)
        try:
            original(self, transact_items)
        except Exception:
            saved.restore()
            raise

    _patches.swap(DynamoDBBackend, "transact_write_items", transact_write_items)


def uninstall() -> None:
    """moto as shipped (tests compare both)."""
    _patches.restore()


def _deepcopy_unless_table(value: Any, memo: dict[int, Any] | None = None) -> Any:
    return value if isinstance(value, Table) else copy.deepcopy(value, memo)


class _Backup:
    """The items a transaction names, as they were, and each table's stream length."""

    def __init__(self, backend: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> None:
        self._items: list[tuple[Table, DynamoType, DynamoType | None, Item | None]] = []
        self._streams: dict[str, tuple[Table, int]] = {}
        for entry in transact_items:
            if not isinstance(entry, dict) or len(entry) != 1:
                continue  # moto refuses it before writing anything
            ((_, op),) = entry.items()
            table = backend.tables.get(op.get("TableName", "")) if isinstance(op, dict) else None
            key = (op.get("Key") or op.get("Item")) if table is not None else None
            if table is None or not isinstance(key, dict) or table.hash_key_attr not in key:
                continue
            hash_value = DynamoType(key[table.hash_key_attr])
            range_value = None
            if table.range_key_attr is not None:
                if table.range_key_attr not in key:
                    continue
                range_value = DynamoType(key[table.range_key_attr])
            current = table.get_item(hash_value, range_value)
            self._items.append((table, hash_value, range_value, copy.deepcopy(current)))
            if table.stream_shard is not None and table.name not in self._streams:
                self._streams[table.name] = (table, len(table.stream_shard.items))

    def restore(self) -> None:
        for table, hash_value, range_value, item in reversed(self._items):
            if range_value is None:
                if item is None:
                    table.items.pop(hash_value, None)
                else:
                    table.items[hash_value] = item  # type: ignore[assignment]
            elif item is None:
                table.items[hash_value].pop(range_value, None)
            else:
                table.items[hash_value][range_value] = item
        for table, length in self._streams.values():
            if table.stream_shard is not None:
                del table.stream_shard.items[length:]
