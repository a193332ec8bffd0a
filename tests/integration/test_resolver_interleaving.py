"""Resolvers running at once on one cluster end where one resolver alone would.

Two or three resolvers (separate instances, as separate Lambda invocations on different stream
shards are) each resolve one event over the same moto table. A deterministic scheduler
(tests/support/interleave.py) switches between them at every DynamoDB call, in an order
hypothesis draws, so many interleavings are explored and a failing one shrinks and replays.
The final STATE of every identity must equal what the same events give when resolved one
after the other. Small models are also explored exhaustively (every single preemption point).
Both fail on the resolver of before issue 10, and on today's with the flush's check after
writing switched off. States are not enough: every purpose a STATE says is opted out must also
be carried by a job to each system that takes that identity (`unjobbed`), which a flush that
derived states again without making their jobs broke (the s9 review).
"""

import itertools
import json
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import ReadTimeoutError
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
from optout.store import keys
from optout.store.codec import deserialize, serialize
from optout.store.table import Table
from optout.sweep import Sweeper
from optout.systems import load_systems
from tests.conftest import Aws
from tests.support.interleave import BatonClient, Scheduler

SECRET = LOCAL_HASH_KEY.encode()
T0 = datetime(2026, 11, 1, tzinfo=UTC)
SYSTEMS = load_systems("layers/common/config/systems.json")
QUEUE_KEYS = sorted({s.queue_key for s in SYSTEMS.systems})
_tables = itertools.count()
Clock = Callable[[], datetime]
pytestmark = pytest.mark.usefixtures("expressions_parsed_once")  # moto's parsing: half the time


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
# A device's own choices with `confirm_opt_in` (the banner's confirmed opt-in, CCPA §7028):
# `own`'s false entries are unconfirmed and dropped, so only this kind can lift an opt-out.
confirming = st.tuples(st.just("confirm"), st.sampled_from(range(len(DEVICES))), choices)


def event_item(n: int, spec: tuple[Any, ...]) -> dict[str, Any]:
    kind = spec[0]
    fields: dict[str, Any] = {"opt_out": {}, "gpc": False, "identifiers": (), "links": ()}
    if kind == "own":
        fields.update(opt_out=spec[2], gpc=spec[3], identifiers=(IDENTITIES[spec[1]],))
    elif kind == "confirm":
        fields.update(opt_out=spec[2], identifiers=(DEVICES[spec[1]],), confirm_opt_in=True)
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


def resolver_on(table: Table, queue: JobQueue, clock: Clock | None = None) -> Resolver:
    if clock is None:
        return Resolver(table, SYSTEMS, queue, Caps(max_size=50))
    return Resolver(table, SYSTEMS, queue, Caps(max_size=50), clock=clock)


States = dict[str, tuple[dict[str, bool], bool]]


def final_states(aws: Aws, table: Table) -> States:
    """Each identity's STATE item, read by its key (a Scan would run every event, job and mark
    of the table through moto's response serialiser: most of a model's time)."""
    nothing = (dict.fromkeys(ALL_PURPOSES, False), False)
    states: States = {}
    for who in IDENTITIES:
        key = {"pk": {"S": who.pk}, "sk": {"S": keys.STATE_SK}}
        raw = aws.dynamodb.get_item(TableName=table.name, Key=key, ConsistentRead=True)
        stored = deserialize(raw["Item"]) if "Item" in raw else None
        states[who.pk] = (stored["opt_out"], stored["gpc"]) if stored else nothing
    return states


def unjobbed(aws: Aws, table: Table) -> list[str]:
    """Every (identity, system, purpose) a STATE says is opted out whose system takes that
    identity, but whose mark names no existing job carrying that identity and purpose."""
    raw = aws.dynamodb.scan(TableName=table.name)["Items"]
    items = {(i["pk"], i["sk"]): i for i in map(deserialize, raw)}
    missing: list[str] = []
    for who in IDENTITIES:
        opted = {p for p, v in items.get((who.pk, "STATE"), {}).get("opt_out", {}).items() if v}
        for system in SYSTEMS.systems:
            if not system.accepts(who.type):
                continue
            mark = items.get((who.pk, keys.delivery_sk(system.name)), {})
            for purpose in sorted(opted & set(system.purposes)):
                job_id = str(mark.get(f"job_{purpose}", ":"))
                request_id, _ = job_id.rsplit(":", 1)
                job = items.get((keys.request_pk(request_id), keys.job_sk(system.name)), {})
                carried = {i["key"] for i in job.get("identifiers", [])}
                if purpose not in mark.get("inflight", ()) or who.key not in carried:
                    missing.append(f"{who.type} {system.name} {purpose}")
    return missing


@pytest.fixture
def queue(aws: Aws) -> JobQueue:
    urls, _, _ = create_queues(aws.sqs, QUEUE_KEYS, "interleave")
    return JobQueue(aws.sqs, urls[QUEUE_KEYS[0]].replace(f"-{QUEUE_KEYS[0]}-", "-{queue_key}-"))


def events_of(history: list[Any], specs: list[Any]) -> tuple[list[Any], list[Any]]:
    past = [event_item(n, spec) for n, spec in enumerate(history)]
    return past, [event_item(len(past) + n, spec) for n, spec in enumerate(specs)]


def one_after_another(aws: Aws, queue: JobQueue, history: list[Any], specs: list[Any]) -> States:
    """The states one resolver reaches with the history's events, then the new ones, in turn."""
    past, events = events_of(history, specs)
    alone = fresh_table(aws)
    try:
        for event in past + events:
            resolver_on(alone, queue).process(event)
        return final_states(aws, alone)
    finally:
        # moto copies every table for each transaction: keep only this example's alive
        aws.dynamodb.delete_table(TableName=alone.name)


def at_once(
    aws: Aws,
    queue: JobQueue,
    history: list[Any],
    specs: list[Any],
    plan: list[tuple[int, int]],
    missing: list[str] | None = None,
) -> tuple[States, list[str]]:
    """(the states after the history, then one resolver per new event at once under `plan`;
    the interleaving). `missing`, when given, gets what `unjobbed` finds at the end."""
    past, events = events_of(history, specs)
    shared = fresh_table(aws)
    try:
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
        if missing is not None:
            missing.extend(unjobbed(aws, shared))
        return final_states(aws, shared), scheduler.trace
    finally:
        aws.dynamodb.delete_table(TableName=shared.name)


def run_both(
    aws: Aws, queue: JobQueue, history: list[Any], specs: list[Any], plan: list[tuple[int, int]]
) -> tuple[States, States, list[str]]:
    """(one resolver after another, resolvers at once under `plan`, the interleaving)."""
    expected = one_after_another(aws, queue, history, specs)
    return expected, *at_once(aws, queue, history, specs, plan)


@pytest.mark.filterwarnings("ignore::UserWarning")
@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    history=st.lists(st.one_of(own, link, asserting, confirming), max_size=2),
    specs=st.lists(st.one_of(own, link, asserting, confirming), min_size=2, max_size=3),
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
    # The model's events one after the other: the same for every preemption point (the same
    # events on a fresh table; the states compared hold no time), so computed once
    expected = one_after_another(aws, queue, history, specs)
    for first in (0, 1):
        for point in PREEMPTION_POINTS:
            plan = [(first, point), (1 - first, 10**6)]
            got, trace = at_once(aws, queue, history, specs, plan)
            assert got == expected, (first, point, trace)


# The pairs of one person's events that two shards resolve at once (race38): a webform
# opt-out and a confirmed opt-in of the device it is linked to, either one the newer; a second
# opt-out with other purposes; a webform opt-out of the email while a login links the email to
# a device (and the device's own opt-out beside that link). Each also checks the proof: every
# purpose a STATE says is opted out has a job per system that takes that identity.
PAIRS = {
    "an opt-out then a newer confirmed opt-in": ([], [("own", 0, {"sale": True}, False),
                                                      ("confirm", 0, {"sale": False})]),
    "a confirmed opt-in then a newer opt-out": ([], [("confirm", 0, {"sale": False}),
                                                     ("own", 0, {"sale": True}, False)]),
    "an email's opt-out and its device's newer opt-in": (
        [("link", 0), ("own", 0, {"share": True}, False)],
        [("own", 2, {"share": True}, False), ("confirm", 0, {"share": False})]),
    "two opt-outs of other purposes of one email": ([], [("own", 2, {"sale": True}, False),
                                                         ("own", 2, {"profiling": True}, False)]),
    "an email's opt-out while a login links it": ([], [("own", 2, {"sale": True}, False),
                                                       ("link", 0)]),
    "an email's opt-out while a browser asserts it": ([], [("own", 2, {"sale": True}, False),
                                                           ("assert", 0)]),
    "a login while the linked device opts out": ([("own", 2, {"profiling": True}, False)],
                                                 [("link", 1), ("own", 1, {"sale": True}, False)]),
}  # fmt: skip


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("pair", sorted(PAIRS))
def test_every_single_preemption_of_one_persons_two_events_ends_where_one_resolver_does(
    aws: Aws, queue: JobQueue, pair: str
) -> None:
    history, specs = PAIRS[pair]
    expected = one_after_another(aws, queue, history, specs)
    for first in (0, 1):
        for point in range(1, 21):  # each resolver here makes at most 19 store calls
            # When one resolver stops after `point` store calls while the other runs whole
            missing: list[str] = []
            got, trace = at_once(aws, queue, history, specs, [(first, point), (1 - first, 10**6)],
                                 missing)  # fmt: skip
            # Then the states are one resolver's, and every opt-out they say has its jobs
            assert (got, missing) == (expected, []), (first, point, trace)


# Device 0 asserted the email (no token); then at once: P (device 0 opts out of sale), Q
# (device 0 opts out of share) and T (device 1 linked to the email). With P's bursts around Q's
# whole run, P reads device 0 before Q writes it, pushes its stale "sale" to the email after
# Q's "sale, share", and T links device 1 then, planning its jobs from "sale"; P's flush sees
# its basis moved and derives the states again (the s9 review's schedule).
STALE_CARRY = ([("assert", 0)], [("own", 0, {"sale": True}, False),
                                 ("own", 0, {"share": True}, False), ("link", 1)])  # fmt: skip


def race_stale_carry(
    aws: Aws, table: Table, queue: JobQueue, first: int, second: int, clock: Clock | None = None
) -> None:
    """STALE_CARRY's events, P stopped after `first` and again after `second` store calls.
    P's first store call is its container's one read of the RETIRED records (review s18 M2),
    so the cut that lands in the flush's re-derive is 5, then 4 (it was 4, 4 before it)."""
    history, specs = STALE_CARRY
    past = [event_item(n, spec) for n, spec in enumerate(history)]
    events = [event_item(len(past) + n, spec) for n, spec in enumerate(specs)]
    for event in past:
        resolver_on(table, queue, clock).process(event)
    scheduler = Scheduler([(0, first), (1, 10**6), (0, second), (1, 10**6)])
    baton = Table(BatonClient(aws.dynamodb, scheduler), table.name)
    tasks = {f"resolver-{n}": (lambda e=event: resolver_on(baton, queue, clock).process(e) and None)
             for n, event in enumerate(events)}  # fmt: skip
    with guarded():
        scheduler.run(tasks)


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_a_device_linked_while_a_stale_opt_out_is_carried_gets_a_job_for_every_purpose(
    aws: Aws, queue: JobQueue
) -> None:
    for first in range(1, 9):  # P's cut before Q's run, the RETIRED read included
        for second in (2, 5):
            table = fresh_table(aws)
            try:
                # When STALE_CARRY's events run under that interleaving
                race_stale_carry(aws, table, queue, first, second)
                # Then every purpose a state says is opted out has a job for each system
                assert unjobbed(aws, table) == [], (first, second)
            finally:
                aws.dynamodb.delete_table(TableName=table.name)


class RefusingRederived(JobQueue):
    """SQS refusing the messages of jobs the flush made after deriving again (`~` ids), with
    `refusal` (an entry refused, or a timeout after the client's retries: review s17 F6)."""

    refusal: Exception = RuntimeError("SendMessageBatch failed for 1: injected")

    def send(self, queue_key: str, messages: list[dict[str, str]]) -> None:
        if any("~" in m["request_id"] for m in messages):
            raise self.refusal
        super().send(queue_key, messages)


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize(
    "refusal",
    [
        RuntimeError("SendMessageBatch failed for 1: injected"),
        ReadTimeoutError(endpoint_url="https://sqs.us-east-1.amazonaws.com/injected"),
    ],
    ids=["entry_refused", "read_timeout"],
)
def test_a_job_made_after_deriving_again_whose_send_fails_is_sent_by_a_redrive(
    aws: Aws, queue: JobQueue, refusal: Exception
) -> None:
    # Given STALE_CARRY's race, and SQS refusing the job the flush makes after deriving again
    refusing = RefusingRederived(aws.sqs, queue.url_for("{queue_key}"))
    refusing.refusal = refusal
    urls = [queue.url_for(key) for key in QUEUE_KEYS]
    table = fresh_table(aws)
    try:
        # When it runs: P's invocation fails (the stream retries it)
        with pytest.raises(type(refusal), match="injected"):
            race_stale_carry(aws, table, refusing, 5, 4)
        # Then a redrive event names that job, and the resolver that takes it sends it
        raw = aws.dynamodb.scan(TableName=table.name)["Items"]
        (redrive,) = [i for i in map(deserialize, raw) if i.get("event_type") == "redrive"]
        (ref,) = redrive["operation"]["jobs"].split()
        assert "~" in ref and unjobbed(aws, table) == []
        for url in urls:
            aws.sqs.purge_queue(QueueUrl=url)
        resolver_on(table, queue).process(redrive)
        sent = [json.loads(m["Body"]) for url in urls
                for m in aws.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get(
                    "Messages", [])]  # fmt: skip
        assert [f"{m['request_id']}:{m['system']}" for m in sent] == [ref]
    finally:
        aws.dynamodb.delete_table(TableName=table.name)


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_a_job_made_after_deriving_again_whose_message_is_lost_is_found_by_the_sweep(
    aws: Aws, queue: JobQueue
) -> None:
    # Given STALE_CARRY's race resolved at T0 + 4 minutes, whose flush makes a job again
    # (under a request id of its own, with no EVENT), and every message lost since
    urls = [queue.url_for(key) for key in QUEUE_KEYS]
    table = fresh_table(aws)
    try:
        race_stale_carry(aws, table, queue, 5, 4, clock=lambda: T0 + timedelta(minutes=4))
        raw = aws.dynamodb.scan(TableName=table.name)["Items"]
        made = sorted(f"{i['request_id']}:{i['system']}" for i in map(deserialize, raw)
                      if i.get("kind") == "job" and "~" in i["request_id"])  # fmt: skip
        assert made
        history, specs = STALE_CARRY
        for n, spec in enumerate(history + specs):  # as capture stored them
            aws.dynamodb.put_item(TableName=table.name, Item=serialize(event_item(n, spec)))
        for url in urls:
            aws.sqs.purge_queue(QueueUrl=url)
        # When the sweep checks the batch's requests at their 2 h 15 min checkpoint
        now = T0 + timedelta(hours=2, minutes=20)
        report = Sweeper(table, clock=lambda: now).sweep()
        # Then it finds the jobs made again, still pending, beside the events' own
        assert set(made) <= set(report.stuck_jobs)
        assert len(report.stuck_jobs) == len(set(report.stuck_jobs))
    finally:
        aws.dynamodb.delete_table(TableName=table.name)
