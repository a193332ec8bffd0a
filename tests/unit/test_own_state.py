"""One identity's own choices as stored on its node, and as rebuilt from a kept STATE
(optout.resolver.policy): what the resolver reads back must say what was written."""

from optout.purposes import ALL_PURPOSES, GPC_PURPOSES
from optout.resolver.policy import OwnState, Register, allowed, apply_event, as_map

T1 = ("2026-11-29T00:00:01.000Z", "req-1")
T2 = ("2026-11-29T00:00:02.000Z", "req-2")


def test_a_node_read_back_holds_the_choices_and_signal_written() -> None:
    state = apply_event(OwnState.empty(), {"sale": True, "profiling": False}, True, T1)
    item = state.to_item()
    assert item == {
        "own": {"sale": {"v": True, "at": T1[0], "req": "req-1"},
                "profiling": {"v": False, "at": T1[0], "req": "req-1"}},
        "gpc": {"v": True, "at": T1[0], "req": "req-1"},
    }  # fmt: skip
    assert OwnState.from_item(item) == state
    assert OwnState.from_item(item).opted_out() == {"sale", *GPC_PURPOSES}
    # A node without a signal reads back without one
    assert OwnState.from_item({"own": {}, "gpc": None}) == OwnState.empty()
    assert OwnState.empty().to_item() == {"own": {}, "gpc": None}


def test_a_kept_state_rebuilds_its_opt_outs_and_a_later_opt_in_still_wins() -> None:
    # The node expired; its STATE was kept opted out of sale (GPC on when written)
    kept = {"opt_out": {"sale": True, "share": False}, "gpc": True,
            "updated_at": "2026-11-29T00:00:01.500Z"}  # fmt: skip
    state = OwnState.kept(kept)
    assert state.opted_out() == {"sale"}
    assert state.gpc is None  # the signal then is not the signal now
    assert state.choices["sale"] == Register(True, "2026-11-29T00:00:01.500Z", "")
    # An older replayed opt-in does not lift it; a later confirmed one does
    assert apply_event(state, {"sale": False}, False, T1).opted_out() == {"sale"}
    assert apply_event(state, {"sale": False}, False, T2).opted_out() == set()
    assert OwnState.kept({}).opted_out() == set()


def test_a_confirmed_request_of_the_person_may_opt_in_and_keep_its_signal() -> None:
    for role in ("device", "verified"):
        assert allowed(role, {"sale": False, "share": True}, True, True) == (
            {"sale": False, "share": True},
            True,
        )
        assert allowed(role, {"sale": False}, True, False) == ({}, True)


def test_the_effective_map_names_every_purpose() -> None:
    assert as_map({"sale"}) == {p: p == "sale" for p in ALL_PURPOSES}
