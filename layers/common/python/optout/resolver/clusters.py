"""Bounded breadth-first walks of the identity graph, cached for the span of one event."""

from collections import deque
from dataclasses import dataclass, field

from optout.store.graph import neighbours
from optout.store.table import Table


@dataclass(frozen=True)
class Caps:
    max_depth: int
    max_size: int


@dataclass
class ClusterCache:
    """Clusters found or merged while resolving one event; each is walked at most once."""

    table: Table
    caps: Caps
    _member_of: dict[str, frozenset[str]] = field(default_factory=dict)
    _edges: dict[str, set[str]] = field(default_factory=dict)

    def cluster(self, pk: str) -> frozenset[str]:
        if pk not in self._member_of:
            found = self._walk(pk)
            for member in found:
                self._member_of[member] = found
        return self._member_of[pk]

    def linked(self, a: str, b: str) -> bool:
        return b in self._edges.get(a, set())

    def merge(self, a: str, b: str) -> frozenset[str]:
        merged = self.cluster(a) | self.cluster(b)
        for member in merged:
            self._member_of[member] = merged
        self._edges.setdefault(a, set()).add(b)
        self._edges.setdefault(b, set()).add(a)
        return merged

    def _walk(self, start: str) -> frozenset[str]:
        """BFS to max_depth hops; stops early once the cluster is past max_size."""
        seen = {start}
        frontier: deque[tuple[str, int]] = deque([(start, 0)])
        while frontier and len(seen) <= self.caps.max_size:
            pk, depth = frontier.popleft()
            if depth >= self.caps.max_depth:
                continue
            found = neighbours(self.table, pk)
            self._edges.setdefault(pk, set()).update(found)
            for other in found:
                if other not in seen:
                    seen.add(other)
                    frontier.append((other, depth + 1))
        return frozenset(seen)
