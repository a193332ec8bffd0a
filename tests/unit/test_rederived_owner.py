"""Whose request a job the flush makes is (`service._deriver`, review s31 last F1 (c)): the
batch's request that named or linked an identity of the cluster, before one that only carried
to it; a cluster only a concurrent change brought in, the request of the cluster that carried
to it; none known, none (never another cluster's request)."""

from optout.resolver.derive import CARRY
from optout.resolver.service import _deriver

A, B, C = "ID#email#a", "ID#device_id#b", "ID#phone#c"


def test_a_request_that_named_the_cluster_comes_before_one_that_carried_to_it() -> None:
    derived_by = {A: {"r-carried": 1, "r-named": 0}, B: {"r-other": 0}}
    assert _deriver(derived_by, {}, (A,)) == "r-named"
    assert _deriver(derived_by, {}, (B,)) == "r-other"


def test_a_held_carrys_own_plan_is_its_devices_requests() -> None:
    assert _deriver({B: {"r-login": 0}}, {}, (B, CARRY)) == "r-login"


def test_a_cluster_a_concurrent_change_brought_in_is_the_carrying_clusters_request() -> None:
    derived_by = {A: {"r-named": 0}}
    pushed_by = {C: (A,)}
    assert _deriver(derived_by, pushed_by, (C,)) == "r-named"


def test_no_request_reached_it_then_none_not_another_clusters() -> None:
    derived_by = {A: {"r-named": 0}}
    assert _deriver(derived_by, {}, (C,)) == ""
    assert _deriver(derived_by, {C: (B,), B: (C,)}, (C,)) == ""  # a carry cycle ends
