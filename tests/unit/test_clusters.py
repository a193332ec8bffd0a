"""Verified clusters (resolver/clusters.py): the same members from whichever member a walk
starts, a walk that ends on a cycle and at its safety limit, and a cache kept true after the
resolver writes. The table is tests/support/fake_graph.py's graph in memory."""

from itertools import pairwise
from typing import Any

import pytest

from optout.resolver import clusters
from optout.resolver.clusters import Caps, Graph
from optout.store import keys
from tests.support.fake_graph import TABLE, FakeGraph, pk_of

A, B, C, D, E = (pk_of("device_id", name) for name in "abcde")


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeGraph:
    return FakeGraph().install(monkeypatch)


def chain(fake: FakeGraph, *pks: str) -> None:
    for pk in pks:
        fake.node(pk)
    for one, other in pairwise(pks):
        fake.link(one, other)


def test_the_walk_limit_is_twice_the_cluster_cap_and_the_edge_caps_default() -> None:
    caps = Caps(max_size=3)
    assert (caps.walk_limit, caps.max_asserters, caps.max_asserted) == (6, 100, 20)
    assert caps.max_cluster_asserted == 100  # five browsers of MAX_ASSERTED (trustmerge F2)


def test_a_cluster_is_the_same_sorted_tuple_from_every_member(fake: FakeGraph) -> None:
    chain(fake, C, A, E, B)
    for start in (A, B, C, E):
        assert Graph(TABLE, Caps(max_size=50)).component(start) == (A, B, C, E)
    assert Graph(TABLE, Caps(max_size=50)).component(D) == (D,)  # linked to nobody


def test_a_cycle_of_links_ends_the_walk_and_reads_each_member_once(fake: FakeGraph) -> None:
    chain(fake, A, B, C, D)
    fake.link(D, A)
    graph = Graph(TABLE, Caps(max_size=50))
    assert graph.component(B) == (A, B, C, D)
    assert sorted(fake.reads) == [A, B, C, D]
    assert graph.component(D) == (A, B, C, D)  # known: no read
    assert [p.pk for p in graph.members(C)] == [A, B, C, D]
    assert len(fake.reads) == 4


def test_a_walk_past_its_limit_stops_there_and_says_so(
    fake: FakeGraph, monkeypatch: pytest.MonkeyPatch
) -> None:
    warned: list[tuple[str, dict[str, Any]]] = []
    monkeypatch.setattr(clusters.logger, "warning", lambda msg, **kw: warned.append((msg, kw)))
    chain(fake, A, B, C, D, E)
    graph = Graph(TABLE, Caps(max_size=2))
    assert graph.component(A) == (A, B, C, D)
    assert warned == [("cluster walk stopped at its limit", {"limit": 4})]


def test_a_cluster_of_exactly_the_walk_limit_is_whole_and_quiet(
    fake: FakeGraph, monkeypatch: pytest.MonkeyPatch
) -> None:
    warned: list[str] = []
    monkeypatch.setattr(clusters.logger, "warning", lambda msg, **kw: warned.append(msg))
    chain(fake, A, B, C, D)
    for start in (A, D):
        assert Graph(TABLE, Caps(max_size=2)).component(start) == (A, B, C, D)
    assert warned == []


def test_a_star_past_the_limit_from_its_centre_stops_at_the_limit(
    fake: FakeGraph, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(clusters.logger, "warning", lambda msg, **kw: None)
    fake.node(A)
    for leaf in (B, C, D, E):
        fake.node(leaf)
        fake.link(A, leaf)
    assert Graph(TABLE, Caps(max_size=1)).component(A) == (A, B)


def test_a_partition_is_read_once_per_pass(fake: FakeGraph) -> None:
    fake.node(A)
    graph = Graph(TABLE, Caps(max_size=50))
    first = graph.partition(A)
    assert graph.partition(A) is first
    assert fake.reads == [A]


def test_forget_drops_the_partition_and_the_whole_cluster_it_belonged_to(fake: FakeGraph) -> None:
    chain(fake, A, B, C)
    graph = Graph(TABLE, Caps(max_size=50))
    graph.component(A)
    fake.node(D)
    fake.link(C, D)  # written meanwhile (by another resolver)
    graph.forget(C)
    fake.reads.clear()
    assert graph.component(A) == (A, B, C, D)  # walked again from A
    assert C in fake.reads and D in fake.reads


def test_forget_of_several_and_of_the_unknown(fake: FakeGraph) -> None:
    chain(fake, A, B)
    fake.node(C)
    graph = Graph(TABLE, Caps(max_size=50))
    graph.component(A)
    graph.component(C)
    graph.forget(E, A, C)
    fake.reads.clear()
    graph.component(B)
    graph.component(C)
    assert sorted(fake.reads) == [A, C]  # B's partition is still known


def test_merged_joins_the_clusters_in_the_cache_and_bumps_the_cached_versions(
    fake: FakeGraph,
) -> None:
    chain(fake, A, B)
    chain(fake, C, D)
    fake.items[(C, keys.NODE_SK)]["version"] = 5
    graph = Graph(TABLE, Caps(max_size=50))
    assert graph.component(A) == (A, B)
    assert graph.component(D) == (C, D)
    link = {"request_id": "r9", "expires_at": 7}
    graph.merged(B, C, link)
    for member in (A, B, C, D):
        assert graph.component(member) == (A, B, C, D)
    assert graph.partition(B).links[C] == link and graph.partition(C).links[B] == link
    assert graph.partition(B).links[C] is not graph.partition(C).links[B]
    assert (graph.partition(B).version, graph.partition(C).version) == (2, 6)
    assert graph.partition(A).version == 1
    assert len(fake.reads) == 4  # all from the cache


def test_merged_with_an_identity_without_a_node(fake: FakeGraph) -> None:
    fake.node(A)
    graph = Graph(TABLE, Caps(max_size=50))
    graph.merged(A, B, {"request_id": "r9"})
    assert graph.partition(B).node is None
    assert graph.component(B) == (A, B)


def test_a_clusters_asserted_edges_are_counted_from_the_walks_reads_alone(
    fake: FakeGraph,
) -> None:
    # Given a cluster of three whose members assert two outsiders and one of their own
    chain(fake, A, B, C)
    fake.node(D)
    fake.node(E)
    fake.assertion(A, D)
    fake.assertion(B, D)
    fake.assertion(C, E)
    fake.assertion(C, A)  # named before a link joined them: not an edge out
    graph = Graph(TABLE, Caps(max_size=50))
    graph.component(A)
    reads = len(fake.reads)
    # When its edges out are counted, Then each outsider edge counts, with no read more
    assert graph.asserted_out(B) == 3
    assert len(fake.reads) == reads == 3
