"""Resolvers running at once on one cluster end where one resolver alone would.

Two or three resolvers (separate instances, as separate Lambda invocations on different stream
shards are) each resolve one event over the same moto table. A deterministic scheduler
(tests/support/interleave.py) switches between them at every DynamoDB call, in an order
hypothesis draws, so many interleavings are explored and a failing one shrinks and replays.
The final STATE of every identity must equal what the same events give when resolved one
after the other. Small models are also explored exhaustively (every single preemption point).
Both fail on the resolver of before issue 10, and on today's with the flush's check after
writing switched off.
"""

import itertools
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from local.aws_resources import create_queues, create_table
from local.moto_guard import guarded
from optout.events import CapturedEvent, KeyedIdentifier
from optout.identifiers import Identifier
from optout.jobs_queue import JobQueue
from optout.purposes import ALL_PURPOSES
from optout.resolver.clusters import Caps
from optout.resolver.service import Resolver
from optout.settings import LOCAL_HASH_KEY
from optout.store.codec import deserialize
from optout.store.table import Table
from optout.systems import load_systems
from tests.conftest import Aws
from tests.support.interleave import BatonClient, Scheduler

SECRET = LOCAL_HASH_KEY.encode()
T0 = datetime(2026, 11, 1, tzinfo=UTC)
SYSTEMS = load_systems("layers/common/config/systems.json")
QUEUE_KEYS = sorted({s.queue_key for s in SYSTEMS.systems})
_tables = itertools.count()


def keyed(id_type: str, value: str) -> KeyedIdentifier:
    return KeyedIdentifier.of(SECRET, Identifier(id_type, value))  # type: ignore[arg-type]


DEVICES = [keyed("device_id", f"device-{n}-interleave") for n in range(2)]
EMAIL = keyed("email", "shared@example.com")
IDENTITIES = [*DEVICES, EMAIL]

choices = st.fixed_dictionaries({}, optional={p: st.booleans() for p in ALL_PURPOSES})
own = st.tuples(st.just("own"), st.sampled_from(range(len(IDENTITIES))), choices, st.booleans())
link = st.tuples(st.just("link"), st.sampled_from(range(len(DEVICES))))
# A browser sending the email without a token: asserted, carries opt-outs one way.
asserting = st.tuples(st.just("assert"), st.sampled_from(range(len(DEVICES))))


def event_item(n: int, spec: tuple[Any, ...]) -> dict[str, Any]:
    kind = spec[0]
    fields: dict[str, Any] = {"opt_out": {}, "gpc": False, "identifiers": (), "links": ()}
    if kind == "own":
        fields.update(opt_out=spec[2], gpc=spec[3], identifiers=(IDENTITIES[spec[1]],))
    elif kind == "assert":
        fields.update(identifiers=(DEVICES[spec[1]],), asserts=((DEVICES[spec[1]], EMAIL),))
    else:
        fields.update(links=((DEVICES[spec[1]], EMAIL),))
    event = CapturedEvent(
        request_id=f"00000000-0000-4000-8000-{n:012d}",
        event_type="links" if kind == "link" else "consent",
        source="backend" if kind == "link" else "banner",
        received_at=T0 + timedelta(minutes=n), deadline=date(2026, 12, 1),
        evidence={}, fingerprint="x", **fields,
    )  # fmt: skip
    return event.to_item(1095)


def fresh_table(aws: Aws) -> Table:
    name = f"interleave-{next(_tables)}"
    create_table(aws.dynamodb, name)
    return Table(aws.dynamodb, name)


def resolver_on(table: Table, queue: JobQueue) -> Resolver:
    return Resolver(table, SYSTEMS, queue, Caps(max_size=50))


States = dict[str, tuple[dict[str, bool], bool]]


def final_states(aws: Aws, table: Table) -> States:
    raw = aws.dynamodb.scan(TableName=table.name)["Items"]
    stored = {i["pk"]: i for i in map(deserialize, raw) if i["sk"] == "STATE"}
    nothing = (dict.fromkeys(ALL_PURPOSES, False), False)
    return {
        who.pk: (stored[who.pk]["opt_out"], stored[who.pk]["gpc"]) if who.pk in stored else nothing
        for who in IDENTITIES
    }


@pytest.fixture
def queue(aws: Aws) -> JobQueue:
    urls, _, _ = create_queues(aws.sqs, QUEUE_KEYS, "interleave")
    return JobQueue(aws.sqs, urls[QUEUE_KEYS[0]].replace(f"-{QUEUE_KEYS[0]}-", "-{queue_key}-"))


def run_both(
    aws: Aws, queue: JobQueue, history: list[Any], specs: list[Any], plan: list[tuple[int, int]]
) -> tuple[States, States, list[str]]:
    """(one resolver after another, resolvers at once under `plan`, the interleaving)."""
    past = [event_item(n, spec) for n, spec in enumerate(history)]
    events = [event_item(len(past) + n, spec) for n, spec in enumerate(specs)]
    alone, shared = fresh_table(aws), fresh_table(aws)
    try:
        for event in past + events:
            resolver_on(alone, queue).process(event)
        for event in past:
            resolver_on(shared, queue).process(event)
        scheduler = Scheduler(plan)
        baton = Table(BatonClient(aws.dynamodb, scheduler), shared.name)
        tasks = {
            f"resolver-{n}": (lambda e=event: resolver_on(baton, queue).process(e) and None)
            for n, event in enumerate(events)
        }
        with guarded():  # one thread at a time holds the baton: safe to swap
            scheduler.run(tasks)
        return final_states(aws, alone), final_states(aws, shared), scheduler.trace
    finally:
        # moto copies every table for each transaction: keep only this example's alive
        for table in (alone, shared):
            aws.dynamodb.delete_table(TableName=table.name)


@pytest.mark.filterwarnings("ignore::UserWarning")
@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    history=st.lists(st.one_of(own, link, asserting), max_size=2),
    specs=st.lists(st.one_of(own, link, asserting), min_size=2, max_size=3),
    plan=st.lists(st.tuples(st.integers(0, 2), st.integers(1, 40)), max_size=12),
)
def test_concurrent_resolvers_end_in_the_state_one_resolver_gives(
    aws: Aws,
    queue: JobQueue,
    history: list[tuple[Any, ...]],
    specs: list[tuple[Any, ...]],
    plan: list[tuple[int, int]],
) -> None:
    # Given the state one resolver reaches with every event, one after the other; when, after
    # the same history, one resolver per new event runs at once, switching at store calls
    expected, got, trace = run_both(aws, queue, history, specs, plan)
    # Then every identity ends in the same effective state
    assert got == expected, trace


# Small models explored exhaustively: one resolver stops after each of its store calls in turn
# while the other runs to the end (a single preemption finds most races; CHESS's insight).
SCENARIOS = {
    "two choices on one device": ([], [("own", 0, {"sale": True}, False),
                                       ("own", 0, {"share": True}, False)]),
    "a link while the device opts out": ([("own", 2, {"profiling": True}, False)],
                                         [("link", 0), ("own", 0, {"sale": True}, True)]),
    "an assertion while the device opts out": ([], [("assert", 1),
                                                    ("own", 1, {"share": True}, False)]),
}  # fmt: skip
PREEMPTION_POINTS = range(1, 16)


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_every_single_preemption_of_a_small_model_ends_where_one_resolver_does(
    aws: Aws, queue: JobQueue, scenario: str
) -> None:
    history, specs = SCENARIOS[scenario]
    for first in (0, 1):
        for point in PREEMPTION_POINTS:
            plan = [(first, point), (1 - first, 10**6)]
            expected, got, trace = run_both(aws, queue, history, specs, plan)
            assert got == expected, (first, point, trace)
