"""An identity graph in memory for the resolver's unit tests (resolver/derive.py, clusters.py).

It stands in for the three store calls those modules make (`read_partition`, `write_carried`,
`refresh_expiry`) with the same meaning as optout/store/identity.py: a read is a fresh copy
(what a consistent read returns), a write changes only items that exist and records itself.
Items have the table's shape (store/graph.py), so a test reads like the table it describes.
"""

import copy
from dataclasses import dataclass, field
from typing import Any, cast

import pytest

from optout.resolver import clusters, derive
from optout.resolver.policy import OwnState, Register
from optout.store import identity, keys
from optout.store.codec import Item
from optout.store.graph import assertion_items, link_items
from optout.store.table import Table

TABLE = Table(cast(Any, None), "fake")  # never called: the store functions are replaced
AT = "2026-01-01T00:00:00Z"  # registers' and namings' capture time unless told


def pk_of(id_type: str, key: str) -> str:
    return keys.identity_pk(id_type, key)


@dataclass
class FakeGraph:
    items: dict[tuple[str, str], Item] = field(default_factory=dict)
    reads: list[str] = field(default_factory=list)
    carried: list[tuple[str, str, list[str]]] = field(default_factory=list)  # write_carried
    refreshed: list[list[tuple[str, str]]] = field(default_factory=list)  # refresh_expiry

    def install(self, monkeypatch: pytest.MonkeyPatch) -> "FakeGraph":
        monkeypatch.setattr(clusters, "read_partition", self.read_partition)
        monkeypatch.setattr(derive, "write_carried", self.write_carried)
        monkeypatch.setattr(derive, "refresh_expiry", self.refresh_expiry)
        return self

    # -- building ----------------------------------------------------------------------------

    def put(self, item: Item) -> Item:
        self.items[(item["pk"], item["sk"])] = item
        return item

    def node(
        self,
        pk: str,
        own: OwnState | None = None,
        *,
        expires_at: int | None = None,
        version: int = 1,
    ) -> Item:
        """`expires_at` None: an item without one (never near expiry), as for every item below."""
        id_type, key = pk.split("#")[1:3]
        return self.put({"pk": pk, "sk": keys.NODE_SK, "kind": "node", "id_type": id_type,
                         "key": key, "value": f"value-of-{key}", "version": version,
                         **_expiry(expires_at), **(own or OwnState.empty()).to_item()})  # fmt: skip

    def link(self, a: str, b: str, *, expires_at: int | None = None) -> None:
        for item in link_items(a, b, "req-link", "2026-01-01T00:00:00Z"):
            self.put({**_no_expiry(item), **_expiry(expires_at)})

    def assertion(
        self, asserter: str, asserted: str, carried: list[str] | None = None, *,
        expires_at: int | None = None, named_at: str | None = AT,
    ) -> None:  # fmt: skip
        """`named_at`: when the asserter last named the identity (`own`'s default time); None:
        an edge written before `named_at` (session 30)."""
        out_item, in_item = assertion_items(asserter, asserted, "req-a", "2026-01-01", 0)
        in_item["carried"] = list(carried or [])
        if named_at is not None:
            in_item["named_at"] = named_at
        for item in (out_item, in_item):
            self.put({**_no_expiry(item), **_expiry(expires_at)})

    def state(self, pk: str, **item: Any) -> Item:
        return self.put({"pk": pk, "sk": keys.STATE_SK, "kind": "state", **item})

    def mark(self, pk: str, system: str, **mark: Any) -> Item:
        return self.put({"pk": pk, "sk": keys.delivery_sk(system), **mark})

    def flush(self, states: dict[str, Item]) -> None:
        """Write an outbox's states, as the resolver's flush does."""
        for item in states.values():
            self.put(copy.deepcopy(item))

    def get(self, pk: str, sk: str) -> Item | None:
        return self.items.get((pk, sk))

    # -- the store's calls -------------------------------------------------------------------

    def read_partition(self, table: Table, pk: str) -> identity.Partition:
        self.reads.append(pk)
        found = identity.Partition(pk)
        for (item_pk, _), item in sorted(self.items.items()):
            if item_pk == pk:
                identity._sort(found, copy.deepcopy(item))
        return found

    def write_carried(
        self, table: Table, asserter: str, asserted: str, carried: list[str],
        named_at: str | None, expires_at: int, *, moves_expiry: bool = True,
    ) -> bool:  # fmt: skip
        edge = self.get(asserted, keys.edge_sk(keys.ASSERTED_PREFIX, asserter))
        node = self.get(asserted, keys.NODE_SK)
        if edge is None or node is None:
            return False
        if named_at is not None and str(edge.get("named_at") or "") >= named_at:
            return False  # the store's condition: `named_at` only moves forward
        self.carried.append((asserter, asserted, list(carried)))
        edge.update(carried=list(carried), **({"expires_at": expires_at} if moves_expiry else {}))
        edge.pop("carried_at", None)
        if named_at is not None:
            edge["named_at"] = named_at
        node.update(version=int(node.get("version", 0)) + 1, expires_at=expires_at)
        return True

    def refresh_expiry(self, table: Table, found: list[tuple[str, str]], expires_at: int) -> bool:
        if any(key not in self.items for key in found):
            return False
        self.refreshed.append(list(found))
        for key in found:
            self.items[key]["expires_at"] = expires_at
        return True


def _expiry(expires_at: int | None) -> dict[str, int]:
    return {} if expires_at is None else {"expires_at": expires_at}


def _no_expiry(item: Item) -> Item:
    return {k: v for k, v in item.items() if k != "expires_at"}


def own(*purposes: str, at: str = AT, gpc: bool | None = None) -> OwnState:
    """An identity's own registers: opted out of `purposes`; `gpc` on/off when not None."""
    choices = {cast(Any, p): Register(True, at, "req") for p in purposes}
    return OwnState(choices, None if gpc is None else Register(gpc, at, "req"))
