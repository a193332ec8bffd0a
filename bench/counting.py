"""Count AWS calls with botocore event hooks, and estimate the capacity units they consume.

The hooks sit on boto3's default session, so every client the handlers build afterwards
inherits them (botocore copies the session's handlers into each new client). A call is
attributed to the stage the bench has entered (`with counter.stage("capture")`); calls made
outside any stage are the harness's own (table set-up, reading results) and are kept apart.

Capacity units are estimates from request and response sizes (DynamoDB's published rules:
writes 1 WRU per started KB of the item, reads 1 RRU per started 4 KB strongly consistent,
half that eventually consistent; a missing item still costs the minimum). moto reports no
real consumed capacity, so this is the honest substitute; the cost model says so.

A write is billed on the larger of the item before and after it (PutItem, UpdateItem; a
delete on the item deleted): https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/
read-write-operations.html, checked 2026-11-30. The size after is read from moto's own table
once the call is answered (an update's expression can replace or remove attributes, which the
request alone does not tell); without moto to ask, the last size seen plus the values the
request carries stands in (an upper bound). A DeleteRequest inside BatchWriteItem is billed
1 WRU whatever its size (the functions make none: they only batch puts).
"""

import contextvars
import math
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

HARNESS = "harness"
_stage: contextvars.ContextVar[str] = contextvars.ContextVar("bench_stage", default=HARNESS)

READS = frozenset({"GetItem", "BatchGetItem", "Query", "Scan"})
WRITES = frozenset({"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"})
# A transaction's every action costs twice the same action outside one (DynamoDB's read and
# write operations page, "transactional" rows; a cancelled transaction still consumes them).
TRANSACTION_FACTOR = 2


@dataclass
class Tally:
    """Calls (service:Operation -> n) and estimated capacity units of one stage or block."""

    calls: Counter[str] = field(default_factory=Counter)
    wru: float = 0.0
    wru_by_kind: defaultdict[str, float] = field(default_factory=lambda: defaultdict(float))
    rru: float = 0.0
    sqs_messages: int = 0
    emulator_seconds: float = 0.0  # inside moto answering these calls (not the functions')

    def add(self, other: "Tally") -> None:
        self.calls.update(other.calls)
        self.wru += other.wru
        for kind, units in other.wru_by_kind.items():  # item_kind -> WRU
            self.wru_by_kind[kind] += units
        self.rru += other.rru
        self.sqs_messages += other.sqs_messages
        self.emulator_seconds += other.emulator_seconds

    def total(self, service: str | None = None) -> int:
        return sum(n for op, n in self.calls.items() if service is None or op.startswith(service))

    def of(self, *operations: str) -> int:
        return sum(self.calls[f"dynamodb:{op}"] + self.calls[f"sqs:{op}"] for op in operations)

    def reads(self) -> int:
        return self.of(*READS)

    def writes(self) -> int:
        return self.of(*WRITES)

    def as_dict(self) -> dict[str, Any]:
        return {
            "calls": dict(sorted(self.calls.items())),
            "wru": round(self.wru, 3),
            "wru_by_kind": {k: round(v, 3) for k, v in sorted(self.wru_by_kind.items())},
            "rru": round(self.rru, 3),
            "sqs_messages": self.sqs_messages,
            "emulator_seconds": round(self.emulator_seconds, 4),
        }


class CallCounter:
    def __init__(self) -> None:
        self._emulated_seen = 0.0
        self.stages: dict[str, Tally] = {}
        self._open: list[Tally] = []
        self._sizes: dict[tuple[str, str], int] = {}  # last known item size by key
        self._region: str | None = None  # the answered call's, to read moto's table (install)
        self._kinds: defaultdict[str, float] = defaultdict(float)  # the call's WRU by item kind
        self._tables: dict[tuple[str, str], Any] = {}  # (region, name) -> moto's table

    def install(self) -> None:
        """Hook boto3's default session; call before the handlers create their clients."""
        import boto3  # noqa: PLC0415 - keeps `import bench.counting` cheap

        boto3.setup_default_session()
        session = boto3.DEFAULT_SESSION
        assert session is not None
        session.events.register("before-parameter-build", self._keep_params)
        session.events.register("after-call", self._after_call)
        _time_the_emulator()
        self._emulated_seen = _EMULATED[0]

    @contextmanager
    def block(self) -> Iterator[Tally]:
        """A tally of the block's calls, nested inside the open stage, counted nowhere else."""
        block = Tally()
        self._open.append(block)
        try:
            yield block
        finally:
            popped = self._open.pop()  # LIFO; Tally compares by value, so not remove()
            assert popped is block

    @contextmanager
    def stage(self, name: str) -> Iterator[Tally]:
        """Attribute the block's calls to `name`; yields a tally of this block alone."""
        token = _stage.set(name)
        try:
            with self.block() as block:
                yield block
        finally:
            _stage.reset(token)
        self.stages.setdefault(name, Tally()).add(block)

    # -- the hook ---------------------------------------------------------------------------

    @staticmethod
    def _keep_params(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        # after-call does not see the API parameters; the per-call context carries them over.
        context["bench_params"] = params

    def _after_call(self, model: Any, parsed: Any, context: dict[str, Any], **_: Any) -> None:
        # after-call fires for failed calls too (a failed condition still costs a write).
        service = model.service_model.service_name
        operation = model.name
        tally = Tally()
        tally.calls[f"{service}:{operation}"] += 1
        # Calls are made one at a time on this thread (vendor calls, the only threaded ones,
        # are not AWS calls): the emulator's time since the last call is this call's.
        tally.emulator_seconds = _EMULATED[0] - self._emulated_seen
        self._emulated_seen = _EMULATED[0]
        body: dict[str, Any] = context.get("bench_params") or {}
        if service == "dynamodb":
            self._region = context.get("client_region")
            self._kinds = defaultdict(float)
            started = time.perf_counter()
            tally.wru, tally.rru = self._capacity(operation, body, parsed)
            tally.wru_by_kind = self._kinds
            # The estimate (it reads moto's table) is the bench's work, not the function's:
            # left out of the function's time with moto's own.
            spent = time.perf_counter() - started
            _EMULATED[0] += spent
            self._emulated_seen = _EMULATED[0]
            tally.emulator_seconds += spent
        elif service == "sqs" and operation == "SendMessageBatch":
            tally.sqs_messages = len(body.get("Entries", []))
        elif service == "sqs" and operation == "SendMessage":
            tally.sqs_messages = 1
        if _stage.get() == HARNESS and not self._open:
            self.stages.setdefault(HARNESS, Tally()).add(tally)
            return
        for block in self._open:
            block.add(tally)

    def _capacity(self, operation: str, body: dict[str, Any], parsed: Any) -> tuple[float, float]:
        table = str(body.get("TableName", ""))
        if operation == "PutItem":
            return self._written(body["Item"], table), 0.0
        if operation == "BatchWriteItem":
            wru = 0.0
            for name, requests in body.get("RequestItems", {}).items():
                for request in requests:
                    if "PutRequest" in request:
                        wru += self._written(request["PutRequest"]["Item"], name)
                    else:
                        wru += 1
                        self._kinds[item_kind(request.get("DeleteRequest", {}).get("Key", {}))] += 1
            return wru, 0.0
        if operation in ("UpdateItem", "DeleteItem"):
            return self._updated(body, table), 0.0
        if operation == "TransactWriteItems":
            wru = 0.0
            for action in body.get("TransactItems", []):
                kind, request = next(iter(action.items()))
                name = str(request.get("TableName", ""))
                units = (
                    self._written(request["Item"], name, TRANSACTION_FACTOR)
                    if kind == "Put"
                    else self._updated(request, name, TRANSACTION_FACTOR)
                )
                wru += TRANSACTION_FACTOR * units
            return wru, 0.0
        if operation == "GetItem":
            item = parsed.get("Item")
            unit = 1.0 if body.get("ConsistentRead") else 0.5
            return 0.0, _read_units([item] if item else [], 1, unit)
        if operation == "BatchGetItem":
            rru = 0.0
            for table, request in body.get("RequestItems", {}).items():
                unit = 1.0 if request.get("ConsistentRead") else 0.5
                found = parsed.get("Responses", {}).get(table, [])
                rru += _read_units(found, len(request.get("Keys", [])), unit)
            return 0.0, rru
        if operation in ("Query", "Scan"):
            unit = 1.0 if body.get("ConsistentRead") else 0.5
            total = sum(item_size(i) for i in parsed.get("Items", []))
            return 0.0, max(1, math.ceil(total / 4096)) * unit
        return 0.0, 0.0

    def _updated(self, request: dict[str, Any], table: str = "", factor: int = 1) -> float:
        """An update (or delete, or condition check) is billed on the larger of the item before
        and after: the last size seen for its key, and the size moto now holds (without moto,
        the last size plus the values the request carries)."""
        raw_key = request.get("Key", {})
        key = _key(raw_key)
        before = self._sizes.get(key, 0)
        after = self._stored(table, raw_key)
        if after is None:
            after = before + item_size(request.get("ExpressionAttributeValues", {}))
        self._sizes[key] = after
        units = float(max(1, math.ceil(max(before, after) / 1024)))
        self._kinds[item_kind(raw_key)] += factor * units
        return units

    def _written(self, item: dict[str, Any], table: str = "", factor: int = 1) -> float:
        """A put is billed on the larger of the item it replaces and the item it writes."""
        key = _key(item)
        size = max(self._sizes.get(key, 0), item_size(item))
        stored = self._stored(table, {"pk": item.get("pk", {}), "sk": item.get("sk", {})})
        self._sizes[key] = item_size(item) if stored is None else stored
        units = float(max(1, math.ceil(size / 1024)))
        self._kinds[item_kind(item)] += factor * units
        return units

    def _stored(self, table: str, key: dict[str, Any]) -> int | None:
        """The item's size in moto's table now (0: no such item); None without moto to ask."""
        if not (table and self._region and key.get("pk") and key.get("sk")):
            return None
        found = self._tables.get((self._region, table)) or _moto_table(self._region, table)
        if found is None:
            return None
        self._tables[(self._region, table)] = found
        return _moto_item_size(found, key)


_EMULATED = [0.0]  # seconds moto has spent answering calls, since the first counter
_EMULATED_CPU = [0.0]  # the same answers' thread CPU seconds


def emulator_seconds() -> float:
    """Seconds moto has spent answering calls in this process (0 before a counter exists)."""
    return _EMULATED[0]


def emulator_cpu_seconds() -> float:
    """CPU seconds moto's answers took on the calling threads (bench/imports.py), beside the
    wall time above; the capacity estimate's time is in neither."""
    return _EMULATED_CPU[0]


def _time_the_emulator() -> None:
    """Time moto's own answer to each call (its before-send handler), once per process, so
    a function's measured time can leave the emulator out (bench/cost.py)."""
    try:
        from moto.core.botocore_stubber import BotocoreStubber  # noqa: PLC0415
    except ImportError:  # counting without moto: nothing to leave out
        return
    original = BotocoreStubber.__call__
    if getattr(original, "bench_timed", False):
        return

    def timed(self: Any, *args: Any, **kwargs: Any) -> Any:
        started, cpu = time.perf_counter(), time.thread_time()
        try:
            return original(self, *args, **kwargs)
        finally:
            _EMULATED[0] += time.perf_counter() - started
            _EMULATED_CPU[0] += time.thread_time() - cpu

    timed.bench_timed = True  # type: ignore[attr-defined]
    BotocoreStubber.__call__ = timed  # type: ignore[method-assign]


def _moto_table(region: str, name: str) -> Any:
    """moto's table of that name (None: none, or no moto to ask)."""
    try:
        from moto.dynamodb.models import dynamodb_backends  # noqa: PLC0415
    except ImportError:
        return None
    for account in list(dynamodb_backends.keys()):
        found = dynamodb_backends[account][region].tables.get(name)
        if found is not None:
            return found
    return None


def _moto_item_size(table: Any, key: dict[str, Any]) -> int:
    from moto.dynamodb.models.dynamo_type import DynamoType  # noqa: PLC0415

    item = table.get_item(DynamoType(key["pk"]), DynamoType(key["sk"]))
    return 0 if item is None else item_size(item.to_json()["Attributes"])


def item_kind(item: dict[str, Any]) -> str:
    """What an item is, from its key (docs/architecture.md's layout): the sort key's first
    part under a request or an identity ('job', 'node', 'delivery' ...), else the partition
    key's ('hold', 'failed' ...)."""
    pk, sk = _key(item)
    if pk.startswith(("REQ#", "ID#")):
        return sk.split("#", 1)[0].lower() or "?"
    return pk.split("#", 1)[0].lower() or "?"


def _key(item: dict[str, Any]) -> tuple[str, str]:
    return (item.get("pk", {}).get("S", ""), item.get("sk", {}).get("S", ""))


def _read_units(found: list[dict[str, Any]], requested: int, unit: float) -> float:
    units = sum(max(1, math.ceil(item_size(i) / 4096)) for i in found)
    return (units + max(0, requested - len(found))) * unit  # a missing key costs the minimum


def item_size(item: dict[str, Any]) -> int:
    """Approximate DynamoDB item size: attribute names plus values (documented rules)."""
    return sum(len(name.encode()) + _value_size(value) for name, value in item.items())


def _value_size(value: dict[str, Any]) -> int:
    kind, inner = next(iter(value.items()))
    if kind == "S":
        return len(str(inner).encode())
    if kind == "N":
        return len(str(inner).lstrip("-").replace(".", "")) // 2 + 2
    if kind == "B":
        return len(inner)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "M":
        return 3 + sum(len(k.encode()) + 1 + _value_size(v) for k, v in inner.items())
    if kind == "L":
        return 3 + sum(1 + _value_size(v) for v in inner)
    if kind in ("SS", "NS", "BS"):
        return sum(len(str(v)) for v in inner)
    return 0
