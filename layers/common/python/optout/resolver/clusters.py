"""Verified clusters: connected components of the link graph, read with consistent reads.

A walk covers the whole component (bounded only by a safety limit twice the cluster cap), so
the cluster found does not depend on which member a walk starts from; the cap itself is kept
when links are made (a link that would pass it is held). Partitions read are cached for one
pass; `merged` keeps the cache true after this resolver writes a link.
"""

from collections import deque
from dataclasses import dataclass, field

from optout.observability import logger
from optout.store.identity import Partition, read_partition
from optout.store.table import Table


@dataclass(frozen=True)
class Caps:
    max_size: int
    max_asserters: int = 100
    max_asserted: int = 20
    max_cluster_asserted: int = 100

    @property
    def walk_limit(self) -> int:
        # Concurrent link events can overshoot the cap (each checks the cluster it read: N of
        # them can reach about N x the cap); walking past it keeps the answer the same from
        # every member up to twice the cap, and the limit still bounds a pathological graph.
        return 2 * self.max_size


@dataclass
class Graph:
    table: Table
    caps: Caps
    _parts: dict[str, Partition] = field(default_factory=dict)
    _component: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def partition(self, pk: str) -> Partition:
        if pk not in self._parts:
            self._parts[pk] = read_partition(self.table, pk)
        return self._parts[pk]

    def forget(self, *pks: str) -> None:
        """Drop what this pass knows of these identities (they were written)."""
        for pk in pks:
            self._parts.pop(pk, None)
            for member in self._component.pop(pk, ()):
                self._component.pop(member, None)

    def component(self, pk: str) -> tuple[str, ...]:
        """Member pks, sorted: the same tuple from whichever member the walk starts."""
        if pk not in self._component:
            found = self._walk(pk)
            for member in found:
                self._component[member] = found
        return self._component[pk]

    def asserted_out(self, pk: str) -> int:
        """Asserted edges from pk's cluster to identities outside it, all members together,
        from the partitions the walk read (no read of its own; at the walk limit, the members
        it read)."""
        cluster = self.component(pk)
        inside = set(cluster)
        return sum(
            sum(1 for target in self._parts[m].asserts if target not in inside)
            for m in cluster
            if m in self._parts
        )

    def members(self, pk: str) -> list[Partition]:
        return [self.partition(m) for m in self.component(pk)]

    def merged(self, a: str, b: str, link: dict[str, object]) -> None:
        """This resolver linked a and b: update the cached partitions and components."""
        for one, other in ((a, b), (b, a)):
            part = self.partition(one)
            part.links[other] = dict(link)
            if part.node is not None:
                part.node["version"] = part.version + 1
        joined = tuple(sorted(set(self.component(a)) | set(self.component(b))))
        for member in joined:
            self._component[member] = joined

    def _walk(self, start: str) -> tuple[str, ...]:
        seen = {start}
        frontier: deque[str] = deque([start])
        while frontier:
            for other in sorted(self.partition(frontier.popleft()).links):
                if other in seen:
                    continue
                if len(seen) >= self.caps.walk_limit:
                    logger.warning("cluster walk stopped at its limit", limit=len(seen))
                    return tuple(sorted(seen))
                seen.add(other)
                frontier.append(other)
        return tuple(sorted(seen))
