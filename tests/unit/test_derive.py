"""The effective opt-out across linked identities (resolver/derive.py), on a graph in memory.

What a consumer or a regulator would see after one derivation pass: each identity's STATE
(which purposes it is opted out of, whether its GPC signal is on, whether it is kept without
an expiry), which systems get a job for whom, what an assertion tells the asserted identity,
and which items near expiry are kept alive. The store's calls are replaced by
tests/support/fake_graph.py; the integration tests run the same rules through DynamoDB.
"""

from typing import Any

import pytest

from optout.purposes import ALL_PURPOSES, GPC_PURPOSES
from optout.resolver.clusters import Caps, Graph
from optout.resolver.derive import Pass, before_retirement
from optout.resolver.outbox import Outbox
from optout.resolver.policy import OwnState, Register
from optout.store import keys
from optout.systems import SystemConfig, SystemsConfig
from tests.support.fake_graph import TABLE, FakeGraph, own, pk_of

DAY = 86_400
NOW = 1_800_000_000
NOW_ISO = "2027-01-15T08:00:00Z"
EXPIRES = NOW + 1095 * DAY  # what this pass writes (the retention on)
REFRESH = NOW + 547 * DAY  # an item expiring before this is rewritten
FRESH = EXPIRES - DAY // 2  # written within the slack: left alone
STALE = NOW + 100 * DAY  # expires before REFRESH

ADTECH = SystemConfig("adtech", "webhook", ("device_id",), GPC_PURPOSES)
CRM = SystemConfig("crm", "webhook", ("email",), ALL_PURPOSES)
SYSTEMS = SystemsConfig((ADTECH, CRM))

D = pk_of("device_id", "d1")
D2 = pk_of("device_id", "d2")
E = pk_of("email", "e1")
E2 = pk_of("email", "e2")


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeGraph:
    return FakeGraph().install(monkeypatch)


def derive(
    touched: list[str], outbox: Outbox | None = None, caps: Caps | None = None, **options: Any
) -> tuple[Pass, Outbox]:
    derivation = Pass(Graph(TABLE, caps or Caps(max_size=50)), SYSTEMS, NOW_ISO, EXPIRES,
                      REFRESH, **options)  # fmt: skip
    out = outbox or Outbox()
    derivation.run(touched, out)
    return derivation, out


def opted(*purposes: str) -> dict[str, bool]:
    return {p: p in purposes for p in ALL_PURPOSES}


def opt_outs(out: Outbox, pk: str) -> set[str]:
    return {p for p, v in out.states[pk]["opt_out"].items() if v}


def jobs(derivation: Pass) -> dict[str, dict[str, list[str]]]:
    """system -> identity -> the purposes a new job carries for it."""
    return {name: {pk: need for pk, (_, need) in plan.needs.items()}
            for name, plan in derivation.merged_plans().items()}  # fmt: skip


# -- one identity, one cluster -----------------------------------------------------------------


def test_an_own_opt_out_is_kept_in_the_state_and_sent_to_the_systems_taking_that_identity(
    fake: FakeGraph,
) -> None:
    fake.node(D, own("sale"))
    derivation, out = derive([D])
    assert out.states == {D: {"pk": D, "sk": keys.STATE_SK, "kind": "state",
                              "id_type": "device_id", "updated_at": NOW_ISO,
                              "opt_out": opted("sale"), "gpc": False}}  # fmt: skip
    assert jobs(derivation) == {"adtech": {D: ["sale"]}}  # the email system takes no device
    assert derivation.merged_plans()["adtech"].purposes == {"sale"}
    assert derivation.sizes == [1]
    assert out.bases == {(D,): {D: 1}}


def test_an_identity_never_opted_out_gets_no_state_and_no_job(fake: FakeGraph) -> None:
    fake.node(E)
    derivation, out = derive([E])
    assert out.states == {}
    assert derivation.merged_plans() == {}
    assert derivation.sizes == [1]


def test_gpc_opts_out_of_sale_share_and_targeting_only_and_marks_the_signal(
    fake: FakeGraph,
) -> None:
    fake.node(D, own(gpc=True))
    derivation, out = derive([D])
    assert out.states[D]["opt_out"] == opted("sale", "share", "targeted_advertising")
    assert out.states[D]["gpc"] is True
    assert "expires_at" not in out.states[D]
    assert jobs(derivation) == {"adtech": {D: ["sale", "share", "targeted_advertising"]}}


def test_a_gpc_signal_turned_off_by_a_confirmed_opt_in_lifts_its_opt_out(fake: FakeGraph) -> None:
    fake.node(D, own(gpc=False))
    fake.state(D, opt_out=opted("sale", "share", "targeted_advertising"), gpc=True)
    derivation, out = derive([D])
    assert out.states[D]["opt_out"] == opted()
    assert out.states[D]["gpc"] is False
    assert out.states[D]["expires_at"] == EXPIRES  # not opted out: an ordinary expiry
    assert derivation.merged_plans() == {}


# -- a verified cluster: the union of its members' own choices ---------------------------------


def test_a_devices_opt_out_reaches_the_email_it_is_linked_to_and_the_email_systems(
    fake: FakeGraph,
) -> None:
    fake.node(D, own("sale", "profiling"))
    fake.node(E, version=4)
    fake.link(D, E, expires_at=EXPIRES)
    derivation, out = derive([D])
    assert opt_outs(out, D) == opt_outs(out, E) == {"sale", "profiling"}
    assert out.states[E]["id_type"] == "email"
    assert jobs(derivation) == {"adtech": {D: ["sale"]}, "crm": {E: ["sale", "profiling"]}}
    assert derivation.sizes == [2]
    assert out.bases == {tuple(sorted((D, E))): {D: 1, E: 4}}


def test_the_gpc_signal_of_one_member_is_not_the_linked_members_signal(fake: FakeGraph) -> None:
    fake.node(D, own(gpc=True))
    fake.node(E)
    fake.link(D, E)
    _, out = derive([E])
    assert (out.states[D]["gpc"], out.states[E]["gpc"]) == (True, False)
    assert opt_outs(out, E) == {"sale", "share", "targeted_advertising"}


def test_a_confirmed_opt_in_lifts_only_its_own_opt_out_never_a_linked_members(
    fake: FakeGraph,
) -> None:
    fake.node(D, OwnState({"sale": Register(False, "2026-06-01", "r2")}, None))
    fake.node(E, own("sale", at="2026-01-01"))  # older than the device's opt-in: still sticky
    fake.link(D, E)
    fake.state(D, opt_out=opted("sale"), gpc=False)
    derivation, out = derive([D])
    assert D not in out.states  # unchanged: still opted out through the email
    assert opt_outs(out, E) == {"sale"}
    assert set(jobs(derivation)) == {"adtech", "crm"}


def test_a_confirmed_opt_in_with_nobody_else_opted_out_lifts_the_cluster(fake: FakeGraph) -> None:
    fake.node(D, OwnState({"sale": Register(False, "2026-06-01", "r2")}, None))
    fake.node(E)
    fake.link(D, E)
    fake.state(D, opt_out=opted("sale"), gpc=False)
    fake.state(E, opt_out=opted("sale"), gpc=False)
    derivation, out = derive([D])
    for pk in (D, E):
        assert out.states[pk]["opt_out"] == opted()
        assert out.states[pk]["expires_at"] == EXPIRES
    assert derivation.merged_plans() == {}


def test_a_link_made_later_sends_the_opt_out_to_the_new_member_only(fake: FakeGraph) -> None:
    fake.node(D, own("sale"))
    fake.state(D, opt_out=opted("sale"), gpc=False)
    fake.mark(D, "adtech", done={"sale"}, job_sale="r1:adtech", until_sale=EXPIRES)
    fake.node(E)
    fake.link(D, E)
    derivation, out = derive([E])
    assert jobs(derivation) == {"adtech": {}, "crm": {E: ["sale"]}}
    assert derivation.merged_plans()["adtech"].covered == {"r1:adtech"}  # cited, not resent
    assert D not in out.states
    assert opt_outs(out, E) == {"sale"}


def test_a_job_ending_before_this_passs_records_is_not_cited_but_planned_again(
    fake: FakeGraph,
) -> None:
    fake.node(D, own("sale"))
    fake.mark(D, "adtech", inflight={"sale"}, job_sale="r1:adtech", until_sale=EXPIRES - 1)
    derivation, _ = derive([D])
    assert jobs(derivation) == {"adtech": {D: ["sale"]}}
    assert derivation.merged_plans()["adtech"].covered == set()


def test_a_recent_no_record_answer_quiets_that_identity_within_the_quiet_period(
    fake: FakeGraph,
) -> None:
    fake.node(D, own("sale"))
    fake.mark(D, "adtech", no_record_at=NOW - 3600, no_record_job="r1:adtech")
    quiet, _ = derive([D], quiet_since=NOW - DAY)
    assert jobs(quiet) == {"adtech": {}}
    assert quiet.merged_plans()["adtech"].not_asked == {"r1:adtech": NOW - 3600}
    asked, _ = derive([D])  # no quiet period: asked again
    assert jobs(asked) == {"adtech": {D: ["sale"]}}


def test_two_clusters_of_one_pass_share_one_job_per_system(fake: FakeGraph) -> None:
    fake.node(D, own("sale"))
    fake.node(D2, own("share"))
    derivation, _ = derive([D, D2])
    (plan,) = derivation.merged_plans().values()
    assert plan.purposes == {"sale", "share"}
    assert {pk: need for pk, (_, need) in plan.needs.items()} == {D: ["sale"], D2: ["share"]}
    assert derivation.sizes == [1, 1]


def test_a_cluster_named_twice_in_one_event_is_derived_once(fake: FakeGraph) -> None:
    fake.node(D, own("sale"))
    fake.node(E)
    fake.link(D, E)
    derivation, _ = derive([D, E, D])
    assert derivation.sizes == [2]


# -- the STATE item: written only when it changes, kept without expiry while opted out ---------


def test_an_unchanged_kept_state_is_not_written_again(fake: FakeGraph) -> None:
    fake.node(D, own("sale"))
    fake.state(D, opt_out=opted("sale"), gpc=False)
    _, out = derive([D])
    assert out.states == {}


def test_an_opted_out_state_written_with_an_expiry_is_rewritten_without_one(
    fake: FakeGraph,
) -> None:
    fake.node(D, own("sale"))
    fake.state(D, opt_out=opted("sale"), gpc=False, expires_at=FRESH)
    _, out = derive([D])
    assert "expires_at" not in out.states[D]
    assert out.states[D]["opt_out"] == opted("sale")


def test_a_state_not_opted_out_is_rewritten_only_when_near_its_expiry(fake: FakeGraph) -> None:
    fake.node(D, OwnState({"sale": Register(False, "2026-06-01", "r2")}, None))
    fake.state(D, opt_out=opted(), gpc=False, expires_at=REFRESH)
    _, out = derive([D])
    assert out.states == {}  # expires at the refresh line, not before it: fresh
    fake.state(D, opt_out=opted(), gpc=False, expires_at=REFRESH - 1)
    _, out = derive([D])
    assert out.states[D]["expires_at"] == EXPIRES


def test_a_changed_state_is_written_even_when_fresh(fake: FakeGraph) -> None:
    fake.node(D, own("sale", "share"))
    fake.state(D, opt_out=opted("sale"), gpc=False)
    _, out = derive([D])
    assert opt_outs(out, D) == {"sale", "share"}


def test_the_state_an_earlier_event_of_the_batch_left_pending_is_what_is_compared(
    fake: FakeGraph,
) -> None:
    fake.node(D, own("sale"))
    fake.state(D, opt_out=opted("sale"), gpc=False)  # the table's equals what is derived
    pending = Outbox()
    pending.states[D] = {"pk": D, "opt_out": opted(), "gpc": False, "expires_at": EXPIRES}
    _, out = derive([D], pending)
    assert opt_outs(out, D) == {"sale"}  # else the flush would write the pending one
    fake.state(D, opt_out=opted(), gpc=False, expires_at=EXPIRES)  # the table's differs
    pending.states[D] = {"pk": D, "opt_out": opted("sale"), "gpc": False}
    _, out = derive([D], pending)
    assert out.states[D] == {"pk": D, "opt_out": opted("sale"), "gpc": False}  # left as is


# -- asserted edges: one way, one hop ----------------------------------------------------------


def test_an_assertion_carries_the_asserters_own_opt_out_to_the_asserted_identity_only(
    fake: FakeGraph,
) -> None:
    fake.node(E, own("sale"))
    fake.node(D, own("profiling"))
    fake.assertion(E, D)
    derivation, out = derive([E])
    assert fake.carried == [(E, D, ["sale"])]
    assert opt_outs(out, D) == {"sale", "profiling"}
    assert opt_outs(out, E) == {"sale"}  # nothing flows back
    assert jobs(derivation) == {"crm": {E: ["sale"]}, "adtech": {D: ["sale"]}}
    assert out.bases[(D,)] == {D: 2}  # derived again from what it was just told
    assert derivation.sizes == [1, 1]


def test_a_cluster_tells_every_edge_whatever_max_cluster_asserted(fake: FakeGraph) -> None:
    # Given a cluster of two (linked after each asserted) with three edges out, cap 2: an edge
    # left untold would lose an opt-out (review s31 trustmerge F1), so the cap is link-time only
    fake.node(E, own("sale"))
    fake.node(E2)
    fake.link(E, E2)
    targets = sorted(pk_of("device_id", f"t{n}") for n in range(3))
    for n, target in enumerate(targets):
        fake.node(target)
        fake.assertion(E if n < 2 else E2, target)
    # When it is derived, twice
    for _ in range(2):
        derive([E], caps=Caps(max_size=50, max_cluster_asserted=2))
    # Then all three edges carry its opt-out, each written once
    assert sorted(fake.carried) == sorted([(E, t, ["sale"]) for t in targets[:2]]
                                          + [(E2, targets[2], ["sale"])])  # fmt: skip


def test_what_an_identity_was_told_reaches_its_linked_members(fake: FakeGraph) -> None:
    # A browser D2 named the email E, whose person is linked to the browser D
    fake.node(D2, own("sale"))
    fake.node(E)
    fake.node(D)
    fake.link(D, E)
    fake.assertion(D2, E, ["sale"])
    derivation, out = derive([E])
    assert opt_outs(out, D) == opt_outs(out, E) == {"sale"}
    assert jobs(derivation) == {"adtech": {D: ["sale"]}, "crm": {E: ["sale"]}}
    assert fake.carried == []  # already told: nothing written


def test_a_held_accounts_carry_counts_for_its_browser_only(fake: FakeGraph) -> None:
    # Ben's account E2 (sale) is held on Anna's browser D, linked to her email E (review s31
    # stranger F1): D is opted out of sale and its device-keyed system told; E is not
    fake.node(E2, own("sale"))
    fake.node(D)
    fake.node(E, own("profiling"))
    fake.link(D, E)
    fake.assertion(E2, D, ["sale"], named_at=None)
    derivation, out = derive([E])
    assert opt_outs(out, D) == {"sale", "profiling"}
    assert opt_outs(out, E) == {"profiling"}
    assert jobs(derivation) == {"adtech": {D: ["sale"]}, "crm": {E: ["profiling"]}}
    # ... and a withdrawn carry (a rejected hold) tells it nothing, and is not pushed to
    fake.put({**fake.get(D, keys.edge_sk(keys.ASSERTED_PREFIX, E2)), "withdrawn": NOW_ISO})
    fake.put({**fake.get(E2, keys.edge_sk(keys.ASSERTS_PREFIX, D)), "withdrawn": NOW_ISO})
    _, out = derive([E2, E])
    assert opt_outs(out, D) == {"profiling"}
    assert fake.carried == []


def test_what_an_identity_was_told_is_not_passed_on_to_whom_it_asserts(fake: FakeGraph) -> None:
    fake.node(E, own("sale"))
    fake.node(D)
    fake.node(D2)
    fake.assertion(E, D)
    fake.assertion(D, D2)
    _, out = derive([E])
    assert fake.carried == [(E, D, ["sale"])]
    assert opt_outs(out, D) == {"sale"}
    assert D2 not in out.states


def test_two_identities_asserting_each_other_each_learn_the_others_own_opt_out_and_stop(
    fake: FakeGraph,
) -> None:
    fake.node(E, own("sale"))
    fake.node(D, own("share"))
    fake.assertion(E, D)
    fake.assertion(D, E)
    _, out = derive([E])
    assert sorted(fake.carried) == [(D, E, ["share"]), (E, D, ["sale"])]
    assert opt_outs(out, D) == opt_outs(out, E) == {"sale", "share"}
    fake.carried.clear()
    fake.flush(out.states)
    _, again = derive([D, E])
    assert fake.carried == [] and again.states == {}  # settled: nothing more to say


def test_an_asserter_since_linked_carries_nothing_extra_and_is_not_told_again(
    fake: FakeGraph,
) -> None:
    fake.node(E, OwnState({"sale": Register(False, "2026-06-01", "r2")}, None))
    fake.node(D)
    fake.link(D, E)
    fake.assertion(E, D, ["sale"])  # told before the link; since opted in
    fake.state(D, opt_out=opted("sale"), gpc=False)
    derivation, out = derive([E])
    assert out.states[D]["opt_out"] == opted()
    assert fake.carried == []
    assert derivation.merged_plans() == {}


def test_an_assertion_refused_on_the_asserted_side_tells_nothing(fake: FakeGraph) -> None:
    fake.node(E, own("sale"))
    fake.node(D)
    fake.assertion(E, D)
    del fake.items[(D, keys.edge_sk(keys.ASSERTED_PREFIX, E))]
    _, out = derive([E])
    assert fake.carried == []
    assert D not in out.states


def test_an_asserted_identity_gone_is_not_derived(fake: FakeGraph) -> None:
    fake.node(E, own("sale"))
    fake.assertion(E, D)  # D's node expired: write_carried answers False
    derivation, _ = derive([E])
    assert derivation.sizes == [1]


def test_an_opt_in_of_the_asserter_withdraws_what_it_told(fake: FakeGraph) -> None:
    fake.node(E, OwnState({"sale": Register(False, "2026-06-01", "r2")}, None))
    fake.node(D)
    fake.assertion(E, D, ["sale"], expires_at=STALE)
    fake.state(D, opt_out=opted("sale"), gpc=False)
    _, out = derive([E])
    assert fake.carried == [(E, D, [])]
    assert out.states[D]["opt_out"] == opted()
    assert fake.refreshed == []  # an edge carrying nothing is not kept alive


def test_the_asserted_identitys_newer_confirmed_opt_in_outranks_a_carried_opt_out(
    fake: FakeGraph,
) -> None:
    # A stranger's device D2 opted out of sale and profiling in January, naming E (review s30
    # stranger F1); E's person confirmed an opt-in of sale in June
    fake.node(D2, own("sale", "profiling"))
    fake.node(E, OwnState({"sale": Register(False, "2026-06-01T00:00:00Z", "r2")}, None))
    fake.node(D)
    fake.link(D, E)
    fake.assertion(D2, E, ["profiling", "sale"])
    _, out = derive([E])
    assert opt_outs(out, D) == opt_outs(out, E) == {"profiling"}  # no opt-in of profiling


def test_an_edge_from_before_named_at_counts_whole_whatever_its_first_naming(
    fake: FakeGraph,
) -> None:
    # A browser D2 named the email E in January, before `named_at` was written (session 30),
    # and opted out of sale in December (its own phone, say): E's opt-in of June does not
    # outrank that later opt-out (review s30 trust F1; dating by `asserted_at` lost it: review
    # s31 trustmerge F4)
    fake.node(D2, own("sale", "share", at="2026-12-01T00:00:00Z"))
    fake.node(E, OwnState({"sale": Register(False, "2026-06-01T00:00:00Z", "r2")}, None))
    fake.assertion(D2, E, ["sale", "share"], named_at=None)
    edge = fake.get(E, keys.edge_sk(keys.ASSERTED_PREFIX, D2))
    assert edge is not None and edge["asserted_at"] < "2026-06-01" and "named_at" not in edge
    _, out = derive([E])
    assert opt_outs(out, E) == {"sale", "share"}


def test_a_naming_newer_than_the_opt_in_counts_and_ties_go_to_the_opt_out(
    fake: FakeGraph,
) -> None:
    fake.node(E2, own("sale", "share", at="2026-05-01T00:00:00Z"))
    june, july = "2026-06-01T00:00:00Z", "2026-07-01T00:00:00Z"
    fake.node(D, OwnState({"sale": Register(False, june, "r2"),
                           "share": Register(False, july, "r3")}, None))  # fmt: skip
    fake.assertion(E2, D, ["sale", "share"], named_at=july)  # named again in July
    _, out = derive([D])
    assert opt_outs(out, D) == {"sale", "share"}


def test_an_undated_edge_counts_until_its_asserter_names_the_identity_again(
    fake: FakeGraph,
) -> None:
    # A held account's carry to a browser (undated: no naming) counts, whatever opt-in
    # was made on that browser (docs/decisions.md, "A second account on one browser is held")
    fake.node(E2, own("sale", at="2026-07-01T00:00:00Z"))
    fake.node(D, OwnState({"sale": Register(False, "2026-06-01T00:00:00Z", "r2")}, None))
    fake.assertion(E2, D, ["sale"], named_at=None)
    _, out = derive([D])
    assert opt_outs(out, D) == {"sale"}
    derive([E2])  # the asserter's own event, not naming D: nothing written
    assert fake.carried == []
    # Its next naming of D (May, before D's opt-in) dates the edge: June's opt-in wins
    _, out = derive([E2], namings={(E2, D): "2026-05-01T00:00:00Z"})
    assert fake.carried == [(E2, D, ["sale"])]
    edge = fake.get(D, keys.edge_sk(keys.ASSERTED_PREFIX, E2))
    assert edge is not None and edge["named_at"] == "2026-05-01T00:00:00Z"
    assert D not in out.states  # derived again, not opted out: no state to write


def test_a_repeated_opt_out_of_the_asserter_writes_nothing_and_outranks_no_newer_opt_in(
    fake: FakeGraph,
) -> None:
    # E2 named D in June, D opted in in July, E2's GPC session post in August (review s30
    # trust F4, C1): what E2 carries is unchanged, so the edge is not written
    june = "2026-06-01T00:00:00Z"
    fake.node(E2, own("sale", at="2026-08-01T00:00:00Z", gpc=True))
    fake.node(D, OwnState({"sale": Register(False, "2026-07-01T00:00:00Z", "r2")}, None))
    fake.assertion(E2, D, ["sale", "share", "targeted_advertising"], named_at=june)
    derive([E2])
    assert fake.carried == []
    _, out = derive([D])
    assert opt_outs(out, D) == {"share", "targeted_advertising"}  # no opt-in of those


def test_naming_again_moves_named_at_forward_only(fake: FakeGraph) -> None:
    june, july, aug = "2026-06-01T00:00:00Z", "2026-07-01T00:00:00Z", "2026-08-01T00:00:00Z"
    fake.node(E2, own("sale", at=june))
    fake.node(D, OwnState({"sale": Register(False, july, "r2")}, None))
    fake.assertion(E2, D, ["sale"], named_at=aug)
    # A naming older than the edge's (a late or replayed event): nothing written
    derive([E2], namings={(E2, D): june})
    assert fake.carried == []
    _, out = derive([D])
    assert opt_outs(out, D) == {"sale"}


# -- items near expiry: what makes up an opt-out is kept alive ---------------------------------


def test_an_active_asserters_edge_near_expiry_is_refreshed_not_rewritten(fake: FakeGraph) -> None:
    # (a browser's edge to an identifier it named; since holds38 an account's carry to a
    # browser it was held on is not refreshed by the account's activity: the next test)
    fake.node(D, own("sale"), expires_at=EXPIRES)
    fake.node(E, expires_at=EXPIRES)
    fake.assertion(D, E, ["sale"], expires_at=STALE)
    derive([D])
    out_key = (D, keys.edge_sk(keys.ASSERTS_PREFIX, E))
    in_key = (E, keys.edge_sk(keys.ASSERTED_PREFIX, D))
    assert fake.carried == []
    assert fake.refreshed == [[out_key, in_key]]
    assert fake.items[out_key]["expires_at"] == fake.items[in_key]["expires_at"] == EXPIRES


def test_a_held_accounts_carry_lapses_with_its_browser_not_with_the_account(
    fake: FakeGraph,
) -> None:
    # holds38: the account's activity refreshed its carry to every browser it was ever held
    # on, so each kept a place of the account's `max_asserted` for good
    fake.node(E, own("sale"), expires_at=EXPIRES)
    fake.node(D, expires_at=EXPIRES)
    fake.assertion(E, D, ["sale"], expires_at=STALE, named_at=None)
    derive([E])
    assert (fake.carried, fake.refreshed) == ([], [])
    # ... while the browser's own activity keeps it
    derive([D])
    assert fake.refreshed == [[(E, keys.edge_sk(keys.ASSERTS_PREFIX, D)),
                               (D, keys.edge_sk(keys.ASSERTED_PREFIX, E))]]  # fmt: skip


def test_only_the_asserted_half_near_expiry_is_enough_to_refresh_the_edge(
    fake: FakeGraph,
) -> None:
    fake.node(D, own("sale"), expires_at=EXPIRES)
    fake.node(E, expires_at=EXPIRES)
    fake.assertion(D, E, ["sale"], expires_at=EXPIRES)
    fake.items[(E, keys.edge_sk(keys.ASSERTED_PREFIX, D))]["expires_at"] = STALE
    derive([D])
    assert len(fake.refreshed) == 1


def test_a_fresh_assertion_edge_is_left_alone(fake: FakeGraph) -> None:
    fake.node(E, own("sale"), expires_at=EXPIRES)
    fake.node(D, expires_at=EXPIRES)
    fake.assertion(E, D, ["sale"], expires_at=REFRESH)
    derive([E, D])
    assert fake.refreshed == []


def test_an_edge_near_expiry_told_something_new_is_refreshed_and_rewritten(
    fake: FakeGraph,
) -> None:
    fake.node(D, own("sale", "share"), expires_at=EXPIRES)
    fake.node(E, expires_at=EXPIRES)
    fake.assertion(D, E, ["sale"], expires_at=STALE)
    derive([D])
    assert fake.carried == [(D, E, ["sale", "share"])]
    assert [(D, keys.edge_sk(keys.ASSERTS_PREFIX, E)),
            (E, keys.edge_sk(keys.ASSERTED_PREFIX, D))] in fake.refreshed  # fmt: skip


def test_an_edge_carrying_an_opt_out_into_a_cluster_is_refreshed_when_the_cluster_is_derived(
    fake: FakeGraph,
) -> None:
    fake.node(E, own("sale"), expires_at=EXPIRES)
    fake.node(D, expires_at=EXPIRES)
    fake.node(D2, expires_at=EXPIRES)
    fake.assertion(E, D, ["sale"], expires_at=STALE)
    fake.assertion(E2, D2, [], expires_at=STALE)  # carries nothing: may lapse
    derive([D, D2])
    assert fake.refreshed == [[(E, keys.edge_sk(keys.ASSERTS_PREFIX, D)),
                               (D, keys.edge_sk(keys.ASSERTED_PREFIX, E))]]  # fmt: skip


def test_links_and_nodes_may_not_expire_well_before_the_clusters_longest_lived_node(
    fake: FakeGraph,
) -> None:
    longest = EXPIRES - 10 * DAY  # fresh against REFRESH, yet the others must keep up with it
    fake.node(D, own("sale"), expires_at=longest)
    fake.node(E, expires_at=longest - DAY - 1)
    fake.node(E2, expires_at=longest - DAY)
    fake.link(D, E, expires_at=longest - DAY - 1)
    fake.link(D, E2, expires_at=longest - DAY)
    derive([D])
    link_keys = [(D, keys.edge_sk(keys.LINK_PREFIX, E)), (E, keys.edge_sk(keys.LINK_PREFIX, D))]
    assert sorted(fake.refreshed) == sorted([[(E, keys.NODE_SK)], link_keys])
    for key in [*link_keys, (E, keys.NODE_SK)]:
        assert fake.items[key]["expires_at"] == EXPIRES


def test_a_node_outliving_this_passs_expiry_does_not_raise_the_bar(fake: FakeGraph) -> None:
    fake.node(D, own("sale"), expires_at=EXPIRES + 30 * DAY)
    fake.node(E, expires_at=EXPIRES - DAY)
    fake.link(D, E, expires_at=EXPIRES - DAY)
    derive([D])
    assert fake.refreshed == []


def test_a_cluster_of_stale_items_is_refreshed_against_the_refresh_line(fake: FakeGraph) -> None:
    fake.node(D, own("sale"), expires_at=STALE)
    fake.node(E, expires_at=REFRESH)
    fake.link(D, E, expires_at=REFRESH - 1)
    derive([D])
    assert sorted(fake.refreshed) == sorted([
        [(D, keys.NODE_SK)],
        [(D, keys.edge_sk(keys.LINK_PREFIX, E)), (E, keys.edge_sk(keys.LINK_PREFIX, D))],
    ])  # fmt: skip


def test_a_half_link_lapses(fake: FakeGraph) -> None:
    fake.node(D, own("sale"), expires_at=EXPIRES)
    fake.node(E, expires_at=EXPIRES)
    fake.link(D, E, expires_at=STALE)
    del fake.items[(E, keys.edge_sk(keys.LINK_PREFIX, D))]
    derivation, _ = derive([D])
    assert derivation.sizes == [2]  # still walked from D's side
    assert fake.refreshed == []


def test_what_was_refreshed_is_not_refreshed_again_when_the_cluster_is_told_more(
    fake: FakeGraph,
) -> None:
    fake.node(D, own("share"), expires_at=STALE)
    fake.node(D2, expires_at=EXPIRES)
    fake.link(D, D2, expires_at=STALE)
    fake.node(E2, expires_at=EXPIRES)
    fake.assertion(D, E2, ["share"], expires_at=STALE)
    fake.node(E, own("sale"), expires_at=EXPIRES)
    fake.assertion(E, D2)
    derive([D, E])  # D's cluster, then E's, which tells D2: D's cluster again
    assert fake.carried == [(E, D2, ["sale"])]
    assert sorted(fake.refreshed) == sorted([
        [(D, keys.NODE_SK)],
        [(D, keys.edge_sk(keys.LINK_PREFIX, D2)), (D2, keys.edge_sk(keys.LINK_PREFIX, D))],
        [(D, keys.edge_sk(keys.ASSERTS_PREFIX, E2)), (E2, keys.edge_sk(keys.ASSERTED_PREFIX, D))],
    ])  # fmt: skip


def test_a_cluster_cut_at_the_walk_limit_leaves_the_links_leaving_it_alone(
    fake: FakeGraph,
) -> None:
    fake.node(D, own("sale"), expires_at=EXPIRES)
    fake.node(D2, expires_at=EXPIRES)
    fake.node(E, expires_at=EXPIRES)
    fake.link(D, D2, expires_at=EXPIRES)
    fake.link(D2, E, expires_at=EXPIRES)
    derivation, out = derive([D], caps=Caps(max_size=1))  # walks 2 of the 3
    assert derivation.sizes == [2]
    assert set(out.states) == {D, D2}
    assert fake.refreshed == []


# -- a backfill: plan only ---------------------------------------------------------------------


def test_a_backfill_plans_jobs_but_writes_no_state_no_carried_opt_out_and_no_expiry(
    fake: FakeGraph,
) -> None:
    fake.node(E, own("sale"), expires_at=STALE)
    fake.node(D, expires_at=STALE)
    fake.assertion(E, D, expires_at=STALE)
    fake.mark(E, "crm", inflight={"sale"}, job_sale="r1:crm")  # no expiry: cited all the same
    derivation, out = derive([E], plan_only=True)
    assert (out.states, out.bases, fake.carried, fake.refreshed) == ({}, {}, [], [])
    assert derivation.merged_plans()["crm"].covered == {"r1:crm"}
    assert derivation.sizes == [1]


def test_a_backfill_finds_the_jobs_under_request_ids_of_their_own_in_flight(
    fake: FakeGraph,
) -> None:
    own_job = keys.own_request_id("backfill", "a1b2") + ":adtech"
    fake.node(D, own("sale", "share"))
    fake.mark(D, "adtech", inflight={"sale", "share"}, done={"targeted_advertising"},
              job_sale=own_job, job_share="r1:adtech",
              job_targeted_advertising=keys.own_request_id("x", "1") + ":adtech")  # fmt: skip
    fake.node(E)
    derivation, _ = derive([D, E], plan_only=True)
    assert derivation.named == {D: {own_job}}
    plain, _ = derive([D])
    assert plain.named == {}


def test_a_resend_backfill_counts_only_the_marks_of_its_own_jobs(fake: FakeGraph) -> None:
    chain = keys.own_request_prefix("resend")
    mine = keys.own_request_id("resend", "ab") + ":adtech"
    fake.node(D, own(gpc=True))
    fake.mark(D, "adtech", inflight={"sale", "share"}, done={"targeted_advertising"},
              job_sale=mine, job_share="r1:adtech", job_targeted_advertising="r0:adtech",
              no_record_at=NOW, no_record_job="r3:adtech")  # fmt: skip
    fake.mark(D, "crm", inflight={"sale"}, job_sale="r1:crm")
    derivation, _ = derive([D], plan_only=True, resend_chain=chain, quiet_since=NOW - DAY)
    plan = derivation.merged_plans()["adtech"]
    assert jobs(derivation) == {"adtech": {D: ["share", "targeted_advertising"]}}
    assert (plan.covered, plan.not_asked) == ({mine}, {})


def test_chain_only_keeps_the_chains_jobs_of_every_purpose_in_flight(fake: FakeGraph) -> None:
    chain = keys.own_request_prefix("resend")
    first = keys.own_request_id("resend", "aa") + ":adtech"
    second = keys.own_request_id("resend", "bb") + ":adtech"
    fake.node(D, own(gpc=True))
    fake.mark(D, "adtech", inflight={"sale", "share", "targeted_advertising"},
              job_sale=first, job_share=second, job_targeted_advertising="r1:adtech")  # fmt: skip
    derivation, _ = derive([D], plan_only=True, resend_chain=chain)
    assert jobs(derivation) == {"adtech": {D: ["targeted_advertising"]}}
    assert derivation.merged_plans()["adtech"].covered == {first, second}


# -- a system retired and configured again ----------------------------------------------------


RETIRED_AT = "2026-06-01T00:00:00Z"


@pytest.mark.parametrize(
    ("updated_at", "needs"),
    [("2026-05-01T00:00:00Z", ["sale"]), (RETIRED_AT, ["sale"]), ("2026-07-01T00:00:00Z", [])],
)
def test_marks_written_by_a_systems_retirement_count_for_nothing(
    fake: FakeGraph, updated_at: str, needs: list[str]
) -> None:
    fake.node(D, own("sale"))
    fake.mark(D, "adtech", done={"sale"}, job_sale="r1:adtech", until_sale=EXPIRES,
              updated_at=updated_at)  # fmt: skip
    derivation, _ = derive([D], added_back={"adtech": RETIRED_AT})
    assert jobs(derivation)["adtech"] == ({D: needs} if needs else {})


def test_before_retirement() -> None:
    assert before_retirement({"updated_at": RETIRED_AT}, RETIRED_AT)
    assert before_retirement({"done": ["sale"]}, RETIRED_AT)  # no stamp: older than any
    assert before_retirement({"updated_at": "2026-06-02"}, RETIRED_AT) is False
    assert before_retirement({"updated_at": "2026-05-01"}, None) is False
    assert before_retirement(None, RETIRED_AT) is False
    assert before_retirement({}, RETIRED_AT) is False


# -- one request, several unlinked people ---------------------------------------------------


def test_a_request_naming_two_unlinked_people_plans_each_its_own_purposes(
    fake: FakeGraph,
) -> None:
    # Given one email out of sale and another out of sale and profiling, never linked
    fake.node(E, own("sale"))
    fake.node(E2, own("sale", "profiling"))
    derivation, _ = derive([E, E2])
    first, more = derivation.request_plans()
    # Then the request's own job per system carries one person's purposes, and a further one
    # the other's: nobody is told the other's profiling, nor the union
    assert {n: (p.purposes, set(p.needs)) for n, p in first.items()} == {"crm": ({"sale"}, {E})}
    assert {k: {n: (p.purposes, set(p.needs)) for n, p in v.items()} for k, v in more.items()} == {
        ("sale", "profiling"): {"crm": ({"sale", "profiling"}, {E2})}
    }


def test_a_request_naming_one_person_has_no_further_job(fake: FakeGraph) -> None:
    fake.node(D, own("sale"))
    fake.node(E, own("sale", "profiling"))
    fake.link(D, E)
    derivation, _ = derive([D])
    first, more = derivation.request_plans()
    assert set(first) == {"adtech", "crm"} and more == {}
    assert first["crm"].purposes == {"sale", "profiling"}  # the cluster's own union: one person


def test_two_people_with_the_same_purposes_share_one_job(fake: FakeGraph) -> None:
    fake.node(D, own("sale"))
    fake.node(D2, own("sale"))
    derivation, _ = derive([D, D2])
    first, more = derivation.request_plans()
    assert set(first["adtech"].needs) == {D, D2} and more == {}


def test_grouping_the_plans_never_changes_the_passs_own(fake: FakeGraph) -> None:
    fake.node(E, own("sale"))
    fake.node(E2, own("profiling"))
    derivation, _ = derive([E, E2])
    assert derivation.merged_plans()["crm"].purposes == {"sale", "profiling"}
    # a merge before does not leak into the per-person plans after (nor into the pass's)
    first, more = derivation.request_plans()
    assert (first["crm"].purposes, set(first["crm"].needs)) == ({"profiling"}, {E2})
    assert set(more[("sale",)]["crm"].needs) == {E}
    assert [set(p.needs) for plans in derivation.plans.values() for p in plans] == [{E}, {E2}]
