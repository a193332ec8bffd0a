"""Property: the effective state does not depend on the order events, links and assertions
arrive in. Own events here are confirmed and verified (the unrestricted register model);
assertions (a device typing an email) carry the device cluster's own opt-outs one way, each
unless the email's own confirmed opt-in of that purpose is newer than the device's latest
naming of the email."""

import itertools
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from local.aws_resources import create_queues, create_table
from optout.events import CapturedEvent, KeyedIdentifier
from optout.identifiers import Identifier
from optout.jobs_queue import JobQueue
from optout.purposes import ALL_PURPOSES, GPC_PURPOSES
from optout.resolver.clusters import Caps
from optout.resolver.service import Resolver
from optout.settings import LOCAL_HASH_KEY
from optout.store.codec import deserialize
from optout.store.table import Table
from optout.systems import SystemsConfig, load_systems
from tests.conftest import Aws

SECRET = LOCAL_HASH_KEY.encode()
DEVICES = [f"device-{n}-aaaaaaaaaa" for n in range(2)]
EMAILS = [f"person{n}@example.com" for n in range(2)]
T0 = datetime(2026, 11, 1, tzinfo=UTC)
_tables = itertools.count()
pytestmark = pytest.mark.usefixtures("expressions_parsed_once")  # moto's parsing: half the time


def keyed(id_type: str, value: str) -> KeyedIdentifier:
    return KeyedIdentifier.of(SECRET, Identifier(id_type, value))  # type: ignore[arg-type]


IDENTITIES = [keyed("device_id", d) for d in DEVICES] + [keyed("email", e) for e in EMAILS]

choice = st.fixed_dictionaries(
    {}, optional={p: st.booleans() for p in ALL_PURPOSES}
)  # a purpose left out is unchanged
own_event = st.tuples(st.sampled_from(range(len(IDENTITIES))), choice, st.booleans())
link = st.tuples(st.sampled_from(range(len(DEVICES))), st.sampled_from(range(len(EMAILS))))
# (device, email, k): the device asserts (names) the email just after own event k
assertion = st.tuples(
    st.sampled_from(range(len(DEVICES))), st.sampled_from(range(len(EMAILS))), st.integers(0, 5)
)


def event_item(n: int, kind: str, at: float | None = None, **fields: Any) -> dict[str, Any]:
    """Event `n`, captured at minute `at` (default: n)."""
    event = CapturedEvent(
        request_id=f"00000000-0000-4000-8000-{n:012d}", event_type=kind,  # type: ignore[arg-type]
        source="banner", received_at=T0 + timedelta(minutes=n if at is None else at),
        deadline=date(2026, 12, 1),
        opt_out=fields.get("opt_out", {}), gpc=fields.get("gpc", False),
        identifiers=fields.get("identifiers", ()), links=fields.get("links", ()),
        evidence={}, fingerprint="x", asserts=fields.get("asserts", ()),
        roles=("verified",) * len(fields.get("identifiers", ())), confirm_opt_in=True,
    )  # fmt: skip
    return event.to_item(1095)


def expected_states(
    own: list[tuple[int, dict[str, bool], bool]],
    links: list[tuple[int, int]],
    asserts: list[tuple[int, int, float]] = (),  # type: ignore[assignment]
):
    """Reference model, written independently of optout.resolver.policy. Own event n is at
    minute n; an assertion (device, email, minute) names the email at that minute."""
    latest: dict[int, dict[str, tuple[bool, int]]] = {i: {} for i in range(len(IDENTITIES))}
    gpc_on: dict[int, bool] = dict.fromkeys(range(len(IDENTITIES)), False)
    gpc_at: dict[int, int] = {}
    for n, (who, choices, gpc) in enumerate(own):  # in time order: event n at minute n
        latest[who].update({p: (v, n) for p, v in choices.items()})
        if gpc or False in choices.values():
            gpc_on[who], gpc_at[who] = gpc, n
    parent = list(range(len(IDENTITIES)))

    def find(x: int) -> int:
        while parent[x] != x:
            x = parent[x]
        return x

    for d, e in links:
        parent[find(d)] = find(len(DEVICES) + e)
    opted: dict[int, set[str]] = {}
    for i in range(len(IDENTITIES)):
        mine = {p for p, (v, _) in latest[i].items() if v}
        if gpc_on[i]:
            mine.update(GPC_PURPOSES)
        opted.setdefault(find(i), set()).update(mine)
    named: dict[tuple[int, int], float] = {}  # (device, email) -> the latest naming
    for d, e, at in asserts:
        named[(d, e)] = max(named.get((d, e), -1), at)
    told: dict[int, set[str]] = {}
    for (d, e), at in named.items():  # one way, one hop: the device cluster's own opt-outs...
        email = len(DEVICES) + e
        source, target = find(d), find(email)
        if source == target:
            continue
        for p in opted.get(source, set()):
            register = latest[email].get(p)  # ...unless the email's opt-in is newer than at
            if register is None or register[0] or register[1] <= at:
                told.setdefault(target, set()).add(p)
    return {
        IDENTITIES[i].pk: (
            {p: p in opted[find(i)] | told.get(find(i), set()) for p in ALL_PURPOSES},
            gpc_on[i],
        )
        for i in range(len(IDENTITIES))
    }


@pytest.fixture
def sinks(aws: Aws) -> tuple[SystemsConfig, str]:
    """The systems and the jobs queues (URL template), made once for all of a test's examples:
    the resolver only sends to the queues, and the test reads the table (each example's own)."""
    queues, _, _ = create_queues(aws.sqs, ["webhook", "segment", "braze", "salesforce",
                                           "googleads", "meta", "tradedesk"], "order")  # fmt: skip
    template = queues["webhook"].replace("-webhook-jobs", "-{queue_key}-jobs")
    return load_systems("layers/common/config/systems.json"), template


@pytest.mark.filterwarnings("ignore::UserWarning")
@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    own=st.lists(own_event, min_size=1, max_size=6),
    links=st.lists(link, max_size=4),
    asserts=st.lists(assertion, max_size=2),
    data=st.data(),
)
def test_any_arrival_order_gives_the_same_final_state(
    aws: Aws,
    sinks: tuple[SystemsConfig, str],
    own: list[Any],
    links: list[Any],
    asserts: list[Any],
    data: st.DataObject,
) -> None:
    # Given events and links with fixed capture times
    items = [
        event_item(n, "consent", opt_out=c, gpc=g, identifiers=(IDENTITIES[who],))
        for n, (who, c, g) in enumerate(own)
    ] + [
        event_item(len(own) + n, "links", links=((IDENTITIES[d], IDENTITIES[len(DEVICES) + e]),))
        for n, (d, e) in enumerate(links)
    ] + [
        event_item(len(own) + len(links) + n, "consent", at=k + 0.5, identifiers=(IDENTITIES[d],),
                   asserts=((IDENTITIES[d], IDENTITIES[len(DEVICES) + e]),))
        for n, (d, e, k) in enumerate(asserts)
    ]  # fmt: skip
    expected = expected_states(own, links, [(d, e, k + 0.5) for d, e, k in asserts])
    # When the resolver receives them in a shuffled order, on a fresh table
    items = data.draw(st.permutations(items), label="arrival order")
    # Then every identity's state is what the order-free model says
    assert resolved_states(aws, sinks, items) == expected


def resolved_states(
    aws: Aws, sinks: tuple[SystemsConfig, str], items: list[dict[str, Any]]
) -> dict[str, tuple[dict[str, bool], bool]]:
    """Each identity's (opt_out, gpc) once a resolver took `items` in this order (fresh table)."""
    name = f"order-{next(_tables)}"
    create_table(aws.dynamodb, name)
    systems, template = sinks
    table = Table(aws.dynamodb, name)
    resolver = Resolver(table, systems, JobQueue(aws.sqs, template), Caps(max_size=50))
    for item in items:
        resolver.process(item)
    raw = aws.dynamodb.scan(TableName=name)["Items"]
    states = {i["pk"]: i for i in map(deserialize, raw) if i["sk"] == "STATE"}
    none = {"opt_out": dict.fromkeys(ALL_PURPOSES, False), "gpc": False}
    return {
        i.pk: (states.get(i.pk, none)["opt_out"], states.get(i.pk, none)["gpc"]) for i in IDENTITIES
    }


CASES = {
    # Review s30 stranger F1: device 0 (a stranger) opts out of sale naming email 0, whose
    # person (device 1, linked) then confirms an opt-in of sale by the email
    "opt-in newest": ([(0, {"sale": True}, False), (2, {"sale": False}, False)], [0], False),
    # ... and then the stranger names the email again (no choice of his own)
    "named again after": (
        [(0, {"sale": True}, False), (2, {"sale": False}, False), (0, {}, False)],
        [0, 2],
        True,
    ),
    # Review s30 trust F4 (t1): his GPC browser named the email; the person opted in; his next
    # session's GPC post names no one
    "gpc session after": ([(0, {}, True), (2, {"sale": False}, False), (0, {}, True)], [0], False),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_carried_opt_out_and_the_emails_newer_opt_in_in_every_order(
    aws: Aws, sinks: tuple[SystemsConfig, str], case: str
) -> None:
    """Every arrival order of a case: own events at minutes 0, 1, 2 (those listed in `naming`
    also name email 0 from device 0), and the person's link (device 1, email 0)."""
    own, naming, sale = CASES[case]
    device, person, email = IDENTITIES[0], IDENTITIES[1], IDENTITIES[2]
    items = [
        event_item(n, "consent", opt_out=c, gpc=g, identifiers=(IDENTITIES[who],),
                   asserts=((device, email),) if n in naming else ())
        for n, (who, c, g) in enumerate(own)
    ] + [event_item(10, "links", links=((person, email),))]  # fmt: skip
    expected = expected_states(own, [(1, 0)], [(0, 0, n) for n in naming])
    assert expected[person.pk][0]["sale"] is sale  # the model says what the reviews ask
    for order in itertools.permutations(items):
        arrival = [i["request_id"][-2:] for i in order]
        assert resolved_states(aws, sinks, list(order)) == expected, arrival
