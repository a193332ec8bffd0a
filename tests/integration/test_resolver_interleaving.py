"""Resolvers running at once on one cluster end where one resolver alone would.

Two or three resolvers (separate instances, as separate Lambda invocations on different stream
shards are) each resolve one event over the same moto table. A deterministic scheduler
(tests/support/interleave.py) switches between them at every DynamoDB call, in an order
hypothesis draws, so many interleavings are explored and a failing one shrinks and replays.
The final STATE of every identity must equal what the same events give when resolved one
after the other.
"""

import itertools
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.moto_shims import partition_scoped_query
from local.aws_resources import create_queues, create_table
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


def final_states(aws: Aws, table: Table) -> dict[str, tuple[dict[str, bool], bool]]:
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


@pytest.mark.filterwarnings("ignore::UserWarning")
@settings(
    max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    history=st.lists(st.one_of(own, link, asserting), max_size=2),
    specs=st.lists(st.one_of(own, link, asserting), min_size=2, max_size=3),
    schedule=st.lists(st.integers(min_value=0, max_value=2), max_size=150),
)
def test_concurrent_resolvers_end_in_the_state_one_resolver_gives(
    aws: Aws,
    queue: JobQueue,
    history: list[tuple[Any, ...]],
    specs: list[tuple[Any, ...]],
    schedule: list[int],
) -> None:
    past = [event_item(n, spec) for n, spec in enumerate(history)]
    events = [event_item(len(past) + n, spec) for n, spec in enumerate(specs)]
    # Given the state one resolver reaches with every event, one after the other
    alone = fresh_table(aws)
    for event in past + events:
        resolver_on(alone, queue).process(event)
    expected = final_states(aws, alone)

    # When, after the same history, one resolver per new event runs at once, switching at
    # every DynamoDB call
    shared = fresh_table(aws)
    for event in past:
        resolver_on(shared, queue).process(event)
    scheduler = Scheduler(schedule)
    baton = Table(BatonClient(aws.dynamodb, scheduler), shared.name)
    tasks = {
        f"resolver-{n}": (lambda e=event: resolver_on(baton, queue).process(e) and None)
        for n, event in enumerate(events)
    }
    with partition_scoped_query():  # one thread at a time holds the baton: safe to swap
        scheduler.run(tasks)

    # Then every identity ends in the same effective state
    assert final_states(aws, shared) == expected, scheduler.trace
