"""Properties of state resolution (hypothesis), on the pure policy functions the resolver
applies: an identity's own state is the same whatever order its events arrive in and however
often one is replayed; a cluster is opted out of whatever any member is; an asserted or
unconfirmed request can never lift an opt-out; GPC is never turned off by its absence.

(The resolver end to end, over DynamoDB and shuffled arrivals, is
tests/integration/test_resolver_order.py.)"""

from hypothesis import given
from hypothesis import strategies as st

from optout.events import Role
from optout.purposes import ALL_PURPOSES, GPC_PURPOSES, OptOutMap
from optout.resolver.policy import OwnState, allowed, apply_event, cluster_opted_out

CHOICES = st.dictionaries(st.sampled_from(ALL_PURPOSES), st.booleans(), max_size=5)
# Distinct stamps: (time, request id) is a total order over events.
EVENTS = st.lists(
    st.tuples(CHOICES, st.booleans(), st.integers(0, 9_999)), max_size=8, unique_by=lambda e: e[2]
)
ROLES: tuple[Role, ...] = ("device", "verified", "asserted")


def _stamp(n: int) -> tuple[str, str]:
    return (f"2026-11-29T00:00:{n // 1000:02d}.{n % 1000:03d}Z", f"req-{n:05d}")


def _replay(events: list[tuple[OptOutMap, bool, int]]) -> OwnState:
    state = OwnState.empty()
    for choices, gpc, n in events:
        state = apply_event(state, choices, gpc, _stamp(n))
    return state


@given(events=EVENTS, data=st.data())
def test_own_state_does_not_depend_on_arrival_order(
    events: list[tuple[OptOutMap, bool, int]], data: st.DataObject
) -> None:
    shuffled = data.draw(st.permutations(events), label="arrival order")
    assert _replay(shuffled) == _replay(events)


@given(events=EVENTS, data=st.data())
def test_replaying_an_event_changes_nothing(
    events: list[tuple[OptOutMap, bool, int]], data: st.DataObject
) -> None:
    if not events:
        return
    again = data.draw(st.sampled_from(events), label="redelivered")
    assert _replay([*events, again]) == _replay(events)


@given(events=EVENTS)
def test_the_latest_choice_for_each_purpose_wins(events: list[tuple[OptOutMap, bool, int]]) -> None:
    state = _replay(events)
    for purpose in ALL_PURPOSES:
        stamped = [(n, c[purpose]) for c, _, n in events if purpose in c]
        if stamped:
            assert state.choices[purpose].value == max(stamped)[1]
        else:
            assert purpose not in state.choices


@given(events=EVENTS, later=st.lists(st.tuples(CHOICES, st.integers(10_001, 20_000)), max_size=4))
def test_a_gpc_signal_is_not_turned_off_by_later_events_without_it_that_opt_in_nothing(
    events: list[tuple[OptOutMap, bool, int]], later: list[tuple[OptOutMap, int]]
) -> None:
    state = apply_event(_replay(events), {}, True, _stamp(10_000))
    for choices, n in later:
        state = apply_event(state, {p: True for p in choices}, False, _stamp(n))
    assert state.gpc_on
    assert set(GPC_PURPOSES) <= state.opted_out()


@given(members=st.lists(EVENTS, max_size=4), extra=EVENTS)
def test_a_cluster_is_opted_out_of_what_any_member_is_and_a_new_member_removes_nothing(
    members: list[list[tuple[OptOutMap, bool, int]]], extra: list[tuple[OptOutMap, bool, int]]
) -> None:
    states = [_replay(m) for m in members]
    cluster = cluster_opted_out(states)
    assert cluster == set().union(*(s.opted_out() for s in states))
    assert cluster <= cluster_opted_out([*states, _replay(extra)])


@given(role=st.sampled_from(ROLES), choices=CHOICES, gpc=st.booleans(), confirmed=st.booleans())
def test_only_a_confirmed_request_of_the_person_may_opt_in(
    role: Role, choices: OptOutMap, gpc: bool, confirmed: bool
) -> None:
    kept, signal = allowed(role, choices, gpc, confirmed)
    # Every opt-out is kept, whoever sent it
    assert {p for p, v in choices.items() if v} <= {p for p, v in kept.items() if v}
    if role == "asserted" or not confirmed:
        assert all(kept.values()), "an opt-in that may not count is dropped, not stored"
    if role == "asserted":
        assert signal is False, "an asserted identity never gets a GPC register"


@given(role=st.sampled_from(ROLES), events=EVENTS, choices=CHOICES, gpc=st.booleans())
def test_an_unconfirmed_or_asserted_request_never_lifts_an_opt_out(
    role: Role, events: list[tuple[OptOutMap, bool, int]], choices: OptOutMap, gpc: bool
) -> None:
    before = _replay(events)
    kept, signal = allowed(role, choices, gpc, confirmed=role == "asserted")
    after = apply_event(before, kept, signal, _stamp(20_001))
    assert before.opted_out() <= after.opted_out()
