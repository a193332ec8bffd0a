"""Make the embedded moto safe for the local stack's threads, and its Query partition-scoped.

Why (issue 17, found by reading moto 5.2 and reproduced in tests/unit/local/test_moto_guard.py):
moto's backends are plain dicts with no locking. A DynamoDB Query lists the table by iterating
`Table.items` (a defaultdict of partitions, each a dict of items), so a PutItem of a new key
from another thread raises `RuntimeError: dictionary changed size during iteration` (even a
GetItem of an unknown partition adds a key: the map is a defaultdict). The local stack calls
moto from the HTTP front, the stream poller and one poller per system at once, so a status
read racing a worker's or the resolver's write answered 500.

The fix: every call into moto passes through `BotocoreStubber.process_request` (the
`before-send` hook `mock_aws` installs into botocore), so one lock there serialises every AWS
call of every thread, whatever client made it. moto calls are pure Python under the GIL, so
this costs little: handler code and vendor HTTP calls still overlap.

Under that lock, a Query on the base table may also look at its own partition only (moto
otherwise sorts the whole table per call, so the local stack slowed as its table grew): it
returns the same items, in the same order, that moto would have returned. A Query on an index
(the deadline watch reads ByDay every few seconds) likewise sees only the items whose index
hash key matches, from one pass over the table that groups every item by its index hash value
(the deadline watch asks 16 day shards in a row every 5 local seconds and the sweep asks again:
a pass per Query over a table a burst had grown to tens of thousands of items was the largest
cost that grew with the burst, docs/performance.md part D). The grouping is kept while it
still holds: no write since it was made named the index attribute anywhere in its request
(a PutItem or UpdateItem that adds an item to an index, or moves one, must spell the
attribute's name), no other kind of write happened (BatchWriteItem, transactions and
anything unknown count as touching everything), and every item of the group asked for is
still the one in the table with the same value (a DeleteItem or a replacing PutItem shows
there). Otherwise it is made again. Every moto call passes through the lock.

moto copying a whole table on every TransactWriteItems is avoided by local/moto_transactions.py.
"""

import functools
import inspect
import threading
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, ClassVar

from moto.core.botocore_stubber import BotocoreStubber
from moto.dynamodb.models.table import Table

from local.patching import Patches

LOCK = threading.RLock()  # re-entrant: a moto call may make another one in the same thread
# DynamoDB actions that change no item; anything else (and anything unknown) is a write.
_READS = frozenset(
    {"GetItem", "BatchGetItem", "Query", "Scan", "DescribeTable", "ListTables",
     "DescribeTimeToLive", "DescribeContinuousBackups", "ListTagsOfResource",
     "DescribeStream", "GetShardIterator", "GetRecords", "ListStreams", "DescribeEndpoints"}
)  # fmt: skip
_SINGLE_ITEM_WRITES = frozenset({"PutItem", "UpdateItem", "DeleteItem"})
_INDEX_GROUPS = "_local_index_groups"  # on a moto Table: {attribute: _Grouping}


class _Writes:
    """DynamoDB writes moto has taken, as the index groupings need them (changed under LOCK)."""

    anything = 0  # writes that may have changed any item (batches, transactions, unknown)
    naming: ClassVar[dict[str, int]] = {}  # index attribute -> single-item writes naming it


_patches = Patches()


def install() -> None:
    """Serialise moto and scope base-table Queries to their partition. Idempotent."""
    if _patches.installed():
        return
    original_request = BotocoreStubber.process_request
    original_query = Table.query
    signature = inspect.signature(original_query)

    @functools.wraps(original_request)
    def process_request(self: BotocoreStubber, request: Any) -> Any:
        with LOCK:
            try:
                return original_request(self, request)
            finally:
                _count_write(request)

    @functools.wraps(original_query)
    def query(self: Table, hash_key: Any, *args: Any, **kwargs: Any) -> Any:
        # moto passes index_name positionally: bind the call to see it either way.
        bound = signature.bind(self, hash_key, *args, **kwargs)
        conditions = bound.arguments.get("hash_key_conditions") or []
        if bound.arguments.get("index_name"):
            if len(conditions) != 1 or not self.range_key_attr:
                return original_query(self, hash_key, *args, **kwargs)
            scoped = _index_partition(self, *conditions[0])
        elif hash_key is None:
            return original_query(self, hash_key, *args, **kwargs)
        else:
            scoped = defaultdict(dict)
            if hash_key in self.items:
                scoped[hash_key] = self.items[hash_key]
        with LOCK:  # swapping `items` is only safe while nobody else can look at the table
            everything = self.items
            self.items = scoped
            try:
                return original_query(self, hash_key, *args, **kwargs)
            finally:
                self.items = everything

    _patches.swap(BotocoreStubber, "process_request", process_request)
    _patches.swap(Table, "query", query)


def _count_write(request: Any) -> None:
    target = request.headers.get("X-Amz-Target") or b""
    if isinstance(target, bytes):
        target = target.decode("ascii", "replace")
    service, _, action = target.partition(".")
    if service.startswith(("DynamoDB_", "DynamoDBStreams_")):
        if action in _READS:
            return
    elif service:
        return  # another service (SQS): no table changes
    body = request.body
    if action not in _SINGLE_ITEM_WRITES or not isinstance(body, bytes | str):
        _Writes.anything += 1
        return
    text = body if isinstance(body, str) else body.decode("utf-8", "replace")
    for attribute in _Writes.naming:
        if attribute in text:
            _Writes.naming[attribute] += 1


def _index_partition(table: Table, attribute: str, value: Any) -> defaultdict[Any, Any]:
    """The table's items whose index hash attribute equals `value`, by partition."""
    if getattr(value, "type", None) == "S":
        return _string_index_partition(table, attribute, value.value)
    scoped: defaultdict[Any, Any] = defaultdict(dict)
    with LOCK:
        for hash_key, partition in table.items.items():
            for range_key, item in partition.items():
                found = item.attrs.get(attribute)
                if found is not None and found == value:
                    scoped[hash_key][range_key] = item
    return scoped


@dataclass
class _Grouping:
    anything: int  # _Writes.anything when made
    naming: int  # _Writes.naming[attribute] when made
    groups: dict[
        str, list[tuple[Any, Any, Any]]
    ]  # value -> (hash key, range key, item), table order


def _string_index_partition(table: Table, attribute: str, value: str) -> defaultdict[Any, Any]:
    """As `_index_partition` for a string key (equal strings are equal values), from the
    table's grouping by this attribute while it holds (module docstring), else a new one."""
    with LOCK:
        cached: dict[str, _Grouping] = table.__dict__.setdefault(_INDEX_GROUPS, {})
        naming = _Writes.naming.setdefault(attribute, 0)
        grouping = cached.get(attribute)
        members = None
        if grouping is not None and (grouping.anything, grouping.naming) == (
            _Writes.anything,
            naming,
        ):
            members = grouping.groups.get(value, [])
            if not all(_still(table, attribute, value, *member) for member in members):
                members = None
        if members is None:
            grouping = _Grouping(_Writes.anything, naming, _group(table, attribute))
            cached[attribute] = grouping
            members = grouping.groups.get(value, [])
        # A fresh map per Query (moto may add keys to it), in the table's own order.
        scoped: defaultdict[Any, Any] = defaultdict(dict)
        for hash_key, range_key, item in members:
            scoped[hash_key][range_key] = item
        return scoped


def _group(table: Table, attribute: str) -> dict[str, list[tuple[Any, Any, Any]]]:
    groups: dict[str, list[tuple[Any, Any, Any]]] = {}
    for hash_key, partition in table.items.items():
        for range_key, item in partition.items():
            found = item.attrs.get(attribute)
            if found is not None and found.type == "S":
                groups.setdefault(found.value, []).append((hash_key, range_key, item))
    return groups


def _still(
    table: Table, attribute: str, value: str, hash_key: Any, range_key: Any, item: Any
) -> bool:
    """The same item is still in the table under its key, with the same index value."""
    partition = table.items.get(hash_key)
    stored = None if partition is None else partition.get(range_key)
    if stored is None or stored is not item:
        return False
    found = stored.attrs.get(attribute)
    return found is not None and found.type == "S" and found.value == value


def uninstall() -> None:
    """Back to moto as shipped (tests that show the race without the guard)."""
    _patches.restore()


def installed() -> bool:
    return _patches.installed()


@contextmanager
def guarded() -> Iterator[None]:
    """Installed for a block (tests on a big table), then as it was before."""
    was = installed()
    install()
    try:
        yield
    finally:
        if not was:
            uninstall()
