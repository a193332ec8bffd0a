"""moto's per-item walks done once, or directly, in the local stack (same answers and errors).

Profiled under a burst of 1,000 (docs/performance.md part E), after the rounds in
local/moto_speedups.py and local/moto_expressions.py, about a sixth of the stack's CPU went
into four generic walks moto makes per call, each rewritten here to compute the same thing:

- **An item's size on every attribute.** A new `Item` (every PutItem, every UpdateItem's
  result) adds its attributes one by one to a `LimitedSizeDict`, which sums the size of
  every attribute already there on each insert, to refuse an item over moto's 405,000-byte
  limit: the square of the attribute count per item. The sizes only grow while an item is
  built, so one sum at the end refuses exactly the items moto refuses, with the same error.
  An UpdateItem's changes to an existing item still go through moto's own check.
- **`DynamoType.size`** (the item size above, and a Query's 1 MB page limit, which sizes
  every item it returns) asks `is_number`, `is_set`, `is_list`, `is_map` in turn and builds a
  `DynamoType` per set member: the same arithmetic is done by type, for the same result.
- **`dynamo_to_dict`**, which turns every result (a Query's items, a BatchGetItem's) into
  plain values before serialising, asks each string and number whether it is a datetime, a
  DynamoType or has `to_json` before returning it unchanged: exact dicts, lists, strings,
  numbers, booleans and None are now handled first by their type (none of them has
  `to_json`), anything else as before.
- **`DynamoType.to_regular_json`** (every item returned, and both images of every stream
  record, through `Item.to_json`) deep-copies a map or list value and then converts each
  member of the copy again, which copies it again; each member is now copied and converted
  in one pass (a string, number or bytes value is its own deep copy).
- **A Query's copies and sizes.** A Query deep-copies every item it returns (and an update
  copies the old item for the stream) through `copy.deepcopy`'s dispatch for every member
  value; `DynamoType` and `Item` copy their `DynamoType` members directly, with moto's memo
  (a value shared in the original is shared in the copy). A Query also sizes every item it
  returns twice (its 1 MB page check, then the running total): within one Query, an item's
  size is computed once (nothing changes an item during a Query: every call holds the lock).
- **The update validator's tree walks** (`DepthFirstTraverser.traverse_node_recursively`):
  seven passes per UpdateItem, each rebuilding its processing map (a dict of bound methods)
  twice for every node. A traversal now builds it once; the map's keys are class literals in
  every moto processor, so this changes nothing a pass does. A processor class that
  overrides `nodes_to_be_processed` or `process` is walked by moto's own code.

For the local stack's process only (never the tests' moto, never Lambda);
tests/unit/local/test_moto_walks.py compares answers, errors, stored items and stream images
with moto as shipped. Written against moto 5.2 (pinned).
"""

import base64
import functools
import threading
from copy import deepcopy
from datetime import datetime
from typing import Any, cast

from moto.dynamodb import responses as dynamodb_responses
from moto.dynamodb.exceptions import ItemSizeTooLarge
from moto.dynamodb.models import utilities
from moto.dynamodb.models.dynamo_type import DynamoType, Item, LimitedSizeDict
from moto.dynamodb.models.table import Table
from moto.dynamodb.parsing.ast_nodes import (  # type: ignore[attr-defined]
    DepthFirstTraverser,
    Node,
)

from local.patching import Patches

ITEM_SIZE_LIMIT = 405_000  # moto's (LimitedSizeDict.__setitem__): AWS's 400 KB plus a margin
_SETS = frozenset({"SS", "NS", "BS"})
_PLAIN = (str, int, float, bool, type(None))
_ATOMIC = frozenset({str, bytes, int, float, bool, type(None)})  # deepcopy returns them as is

_patches = Patches()


def install() -> None:
    """Idempotent; for the local stack's process."""
    if _patches.installed():
        return
    _patches.swap(DynamoType, "to_regular_json", _regular)
    _patches.swap(DynamoType, "__deepcopy__", _copy_value)
    _patches.swap(Item, "__deepcopy__", _copy_item)
    _patches.swap(Item, "size", _item_size)
    query = Table.query

    @functools.wraps(query)
    def sized_once(self: Table, *args: Any, **kwargs: Any) -> Any:
        outer = getattr(_query, "sizes", None)
        _query.sizes = {} if outer is None else outer
        try:
            return query(self, *args, **kwargs)
        finally:
            _query.sizes = outer

    _patches.swap(Table, "query", sized_once)
    _patches.swap(Item, "__init__", _item_init)
    _patches.swap(DynamoType, "size", _size)
    # moto's responses module imported the function by name: replace it in both places.
    _patches.swap(utilities, "dynamo_to_dict", _to_dict)
    _patches.swap(dynamodb_responses, "dynamo_to_dict", _to_dict)
    _patches.swap(DepthFirstTraverser, "traverse_node_recursively", _traverse)


def uninstall() -> None:
    """moto as shipped (the tests compare both)."""
    _patches.restore()


def installed() -> bool:
    return _patches.installed()


def _item_init(
    self: Item, hash_key: DynamoType, range_key: DynamoType | None, attrs: dict[str, Any]
) -> None:
    """moto's Item.__init__ with the size limit checked once, on the whole item."""
    self.hash_key = hash_key
    self.range_key = range_key
    built = LimitedSizeDict.__new__(LimitedSizeDict)
    dict.__init__(built)
    total = 0
    for key, value in attrs.items():
        typed = DynamoType(value)
        # What LimitedSizeDict.__setitem__ adds up: the key's bytes and the value's size.
        total += utilities.bytesize(str(key)) + typed.size()
        dict.__setitem__(built, key, typed)
    if total > ITEM_SIZE_LIMIT:
        raise ItemSizeTooLarge
    self.attrs = built


def _size(self: DynamoType) -> int:
    return _value_size(self.type, self.value)


def _value_size(kind: str, value: Any) -> int:
    """DynamoType.size of {kind: value}, by type (moto's branches, in moto's order)."""
    if kind == "N":
        return len(str(value))
    if kind in _SETS:
        member = kind[0]
        return sum(_value_size(member, v) for v in value)
    if kind == "L":
        return sum(v.size() for v in value)
    if kind == "M":
        return sum(utilities.bytesize(k) + _member_size(v) for k, v in value.items())
    if isinstance(value, bool):
        return 1
    return utilities.bytesize(value)


def _member_size(value: Any) -> int:
    """DynamoType(value).size(), without a copy when it is one already (moto's map members
    always are: DynamoType wraps them when it is made)."""
    if type(value) is DynamoType:
        return _value_size(value.type, value.value)
    return DynamoType(value).size()


# Per thread, while a Query runs: id(item) -> (item, its size). moto sizes every item a Query
# returns twice (the page limit check, then the running total), and nothing changes an item
# during a Query (every moto call holds the guard's lock).
_query = threading.local()


def _item_size(self: Item) -> int:
    sizes: dict[int, tuple[Item, int]] | None = getattr(_query, "sizes", None)
    if sizes is None:
        return _patches.original(Item, "size")(self)  # type: ignore[no-any-return]
    hit = sizes.get(id(self))
    if hit is None or hit[0] is not self:
        hit = sizes[id(self)] = (self, _patches.original(Item, "size")(self))
    return hit[1]


def _copy_value(self: DynamoType, memo: dict[int, Any]) -> DynamoType:
    """moto's DynamoType.__deepcopy__, copying DynamoType members without copy.deepcopy's
    dispatch (the memo is kept: a value shared in the original is shared in the copy)."""
    if id(self) in memo:
        return memo[id(self)]  # type: ignore[no-any-return]
    result = self.__class__.__new__(self.__class__)
    memo[id(self)] = result
    result.type = self.type
    kind = self.type
    if kind == "L":
        result.value = [_copy_member(v, memo) for v in self.value]
    elif kind == "M":
        result.value = {k: _copy_member(v, memo) for k, v in self.value.items()}
    elif kind in _SETS:
        result.value = list(self.value)
    else:
        result.value = self.value
    return result


def _copy_member(value: Any, memo: dict[int, Any]) -> Any:
    if type(value) is DynamoType:
        return _copy_value(value, memo)
    return deepcopy(value, memo)


def _copy_item(self: Item, memo: dict[int, Any]) -> Item:
    """moto's Item.__deepcopy__ (no size check: the item passed it), members as above."""
    if id(self) in memo:
        return memo[id(self)]  # type: ignore[no-any-return]
    result = cast(Item, self.__class__.__new__(self.__class__))
    memo[id(self)] = result
    result.hash_key = _copy_member(self.hash_key, memo)
    result.range_key = _copy_member(self.range_key, memo)
    attrs = LimitedSizeDict.__new__(LimitedSizeDict)
    dict.__init__(attrs)
    for key, value in self.attrs.items():
        dict.__setitem__(attrs, key, _copy_member(value, memo))
    result.attrs = attrs
    return result


def _regular(self: DynamoType) -> dict[str, Any]:
    """moto's DynamoType.to_regular_json: {type: a deep copy of the value, members converted,
    a binary value given as base64 text decoded}."""
    if type(self) is not DynamoType:
        return _patches.original(DynamoType, "to_regular_json")(self)  # type: ignore[no-any-return]
    value = self.value
    kind = type(value)
    if kind is dict:
        value = {k: _member(v) for k, v in value.items()}
    elif kind is list:
        value = [_member(v) for v in value]
    elif kind not in _ATOMIC:
        return _patches.original(DynamoType, "to_regular_json")(self)  # type: ignore[no-any-return]
    if self.type == "B" and isinstance(value, str):
        value = base64.b64decode(value)
    return {self.type: value}


def _member(value: Any) -> Any:
    """A member of a map or list, as to_regular_json converts the copy of it."""
    if isinstance(value, DynamoType):
        return value.to_regular_json()  # a copy converts as the original would
    return deepcopy(value)


def _to_dict(obj: Any) -> Any:
    """moto's dynamo_to_dict, with exact built-in types handled first."""
    kind = type(obj)
    if kind in _PLAIN:
        return obj
    if kind is dict:
        return {k: _to_dict(v) for k, v in obj.items()}
    if kind is list:
        return [_to_dict(v) for v in obj]
    if isinstance(obj, datetime):
        return obj
    if isinstance(obj, DynamoType):
        if obj.type in ("B", "BS"):
            return _patches.original(utilities, "dynamo_to_dict")(obj)  # blobs: moto's own decoding
        return {obj.type: _to_dict(obj.value)}
    if hasattr(obj, "to_json"):
        return _to_dict(obj.to_json())
    if isinstance(obj, dict):
        return {k: _to_dict(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_to_dict(v) for v in obj]
    return obj


def _traverse(self: DepthFirstTraverser, node: Any, child_id: int = -1) -> Any:
    """moto's traverse_node_recursively, with the processing map built once per traversal and
    each node's class looked up once (moto's nodes are ABCs: isinstance is slow on them)."""
    cls = type(self)
    if (
        cls.nodes_to_be_processed is not DepthFirstTraverser.nodes_to_be_processed
        or cls.process is not DepthFirstTraverser.process
    ):
        return _patches.original(DepthFirstTraverser, "traverse_node_recursively")(
            self, node, child_id
        )
    processors = tuple(self._processing_map().items())
    wanted = tuple(kind for kind, _ in processors)
    pre = (
        None
        if cls.pre_processing_of_child is DepthFirstTraverser.pre_processing_of_child
        else (self.pre_processing_of_child)
    )
    matched: dict[type, bool] = {}

    def walk(node: Any, child_id: int) -> Any:
        kind = type(node)
        if _is_node(kind):
            parent_node = node.parent
            if node.children is not None:
                for i, child_node in enumerate(node.children):
                    if pre is not None:
                        pre(node, i)
                    walk(child_node, i)
            hit = matched.get(kind)
            if hit is None:
                hit = matched[kind] = issubclass(kind, wanted)
            if hit:
                node = _process(processors, node)
                node.parent = parent_node
                if parent_node:
                    parent_node.children[child_id] = node
        return node

    return walk(node, child_id)


_NODE_TYPES: dict[type, bool] = {}


def _is_node(kind: type) -> bool:
    """isinstance(x, Node) for an x of this class (classes never change their bases here)."""
    found = _NODE_TYPES.get(kind)
    if found is None:
        found = _NODE_TYPES[kind] = issubclass(kind, Node)
    return found


def _process(processors: tuple[tuple[type, Any], ...], node: Any) -> Any:
    """DepthFirstTraverser.process: the first processor whose class the node is (else None)."""
    for kind, run in processors:
        if isinstance(node, kind):
            return run(node)
    return None
