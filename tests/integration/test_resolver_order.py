"""Property: the effective state does not depend on the order events, links and assertions
arrive in. Own events here are confirmed and verified (the unrestricted register model);
assertions (a device typing an email) carry the device cluster's own opt-outs one way, each
unless the email's own confirmed opt-in of that purpose is newer."""

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
assertion = link  # (device, email): the device asserts the email


def event_item(n: int, kind: str, **fields: Any) -> dict[str, Any]:
    event = CapturedEvent(
        request_id=f"00000000-0000-4000-8000-{n:012d}", event_type=kind,  # type: ignore[arg-type]
        source="banner", received_at=T0 + timedelta(minutes=n), deadline=date(2026, 12, 1),
        opt_out=fields.get("opt_out", {}), gpc=fields.get("gpc", False),
        identifiers=fields.get("identifiers", ()), links=fields.get("links", ()),
        evidence={}, fingerprint="x", asserts=fields.get("asserts", ()),
        roles=("verified",) * len(fields.get("identifiers", ())), confirm_opt_in=True,
    )  # fmt: skip
    return event.to_item(1095)


def expected_states(
    own: list[tuple[int, dict[str, bool], bool]],
    links: list[tuple[int, int]],
    asserts: list[tuple[int, int]] = (),  # type: ignore[assignment]
):
    """Reference model, written independently of optout.resolver.policy."""
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
    since: dict[int, dict[str, int]] = {}  # cluster -> purpose -> its members' latest opt-out
    for i in range(len(IDENTITIES)):
        mine = {p: n for p, (v, n) in latest[i].items() if v}
        if gpc_on[i]:
            mine.update({p: max(mine.get(p, -1), gpc_at[i]) for p in GPC_PURPOSES})
        opted.setdefault(find(i), set()).update(mine)
        for p, n in mine.items():
            since.setdefault(find(i), {})[p] = max(since.get(find(i), {}).get(p, -1), n)
    told: dict[int, set[str]] = {}
    for d, e in asserts:  # one way, one hop: the device cluster's own opt-outs...
        email = len(DEVICES) + e
        source, target = find(d), find(email)
        if source == target:
            continue
        for p, n in since.get(source, {}).items():
            register = latest[email].get(p)  # ...unless the email's own opt-in is newer
            if register is None or register[0] or register[1] <= n:
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
        event_item(len(own) + len(links) + n, "consent", identifiers=(IDENTITIES[d],),
                   asserts=((IDENTITIES[d], IDENTITIES[len(DEVICES) + e]),))
        for n, (d, e) in enumerate(asserts)
    ]  # fmt: skip
    expected = expected_states(own, links, asserts)
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


@pytest.mark.parametrize("again", [False, True], ids=["opt-in newest", "stranger again after"])
def test_a_carried_opt_out_and_the_emails_newer_opt_in_in_every_order(
    aws: Aws, sinks: tuple[SystemsConfig, str], again: bool
) -> None:
    """Review s30 stranger F1: device 0 (a stranger) opts out of sale naming email 0 (an
    assertion), whose person (device 1, linked) then confirms an opt-in of sale by the email;
    with `again` the stranger opts out of sale once more after that, on his own device."""
    device, person, email = IDENTITIES[0], IDENTITIES[1], IDENTITIES[2]
    own = [(0, {"sale": True}, False), (2, {"sale": False}, False)]
    own += [(0, {"sale": True}, False)] if again else []
    items = [
        event_item(n, "consent", opt_out=c, gpc=g, identifiers=(IDENTITIES[who],),
                   asserts=((device, email),) if n == 0 else ())
        for n, (who, c, g) in enumerate(own)
    ] + [event_item(10, "links", links=((person, email),))]  # fmt: skip
    expected = expected_states(own, [(1, 0)], [(0, 0)])
    assert expected[person.pk][0]["sale"] is again  # the model says what the review asks
    for order in itertools.permutations(items):
        arrival = [i["request_id"][-2:] for i in order]
        assert resolved_states(aws, sinks, list(order)) == expected, arrival
