"""An account's count of undecided holds (store/holds.py `put_counted`) stays right while
resolvers and an operator's decision run at once (holds37; docs/decisions.md, "One account's
undecided holds are bounded").

An email E whose cluster is full (cap 2: E and a browser) already has BOUND - 1 undecided login
holds. Then, at once: two logins of E on two new browsers (room for one), the same login
resolved twice (a retried batch beside its first run), and an operator rejecting one of the
holds. The scheduler of tests/support/interleave.py switches at every DynamoDB call, at every
single point in turn and in orders hypothesis draws. After each run:
- nothing raised;
- the count is the number of E's holds still `held` (none counted twice, none lost);
- never more than BOUND are held, and a new login found room when one was free.

Holds38: a hold that lapses undecided (its `expires_at` passed, nobody released or rejected
it) no longer keeps its place. E has one such hold beside BOUND - 1 live ones; two logins on
new browsers, a retry of one and an operator's reject of the lapsed hold run at once: exactly
one login is held (one place is free; racing prunes of the lapsed entry never let both in), and
the count is exactly E's live undecided holds.
"""

import itertools
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from local.aws_resources import create_queues, create_table
from local.moto_guard import guarded
from optout.events import CapturedEvent, KeyedIdentifier
from optout.identifiers import Identifier
from optout.jobs_queue import JobQueue
from optout.purposes import Purpose
from optout.resolver.clusters import Caps
from optout.resolver.service import Resolver
from optout.review import ReviewService
from optout.settings import LOCAL_HASH_KEY
from optout.store import holds, keys, query
from optout.store.codec import Item, deserialize
from optout.store.table import Table
from optout.systems import load_systems
from tests.conftest import Aws
from tests.support.interleave import BatonClient, Scheduler

SECRET = LOCAL_HASH_KEY.encode()
SYSTEMS = load_systems("layers/common/config/systems.json")
QUEUE_KEYS = sorted({s.queue_key for s in SYSTEMS.systems})
RETENTION = 1095
T0 = datetime(2026, 11, 1, tzinfo=UTC)
BOUND = 3
OPERATOR = "arn:aws:iam::123456789012:user/operator"
pytestmark = [
    pytest.mark.usefixtures("expressions_parsed_once"),  # moto's parsing: half the time
    pytest.mark.filterwarnings("ignore::UserWarning"),
]
_n = itertools.count(1)
_tables = itertools.count()


def keyed(id_type: str, value: str) -> KeyedIdentifier:
    return KeyedIdentifier.of(SECRET, Identifier(id_type, value))  # type: ignore[arg-type]


E = keyed("email", "bound-race@example.com")
DEVICES = [keyed("device_id", f"dev-bound-race-{n:02d}-aaaaa") for n in range(BOUND + 3)]


def login(device: KeyedIdentifier, at: datetime) -> Item:
    """A browser's login: its device linked to E by a token."""
    return CapturedEvent(
        request_id=f"00000000-0000-4000-8000-{next(_n):012d}", event_type="consent",
        source="banner", received_at=at, deadline=(at + timedelta(days=45)).date(),
        opt_out={}, gpc=False, identifiers=(device, E), links=((device, E),), evidence={},
        fingerprint="x", asserts=(), confirm_opt_in=True, roles=("device", "verified"),
    ).to_item(RETENTION)  # fmt: skip


class Tables:
    def __init__(self, aws: Aws) -> None:
        urls, _, _ = create_queues(aws.sqs, QUEUE_KEYS, "bound-race")
        self.aws = aws
        self.queue = JobQueue(aws.sqs, urls[QUEUE_KEYS[0]].replace(f"-{QUEUE_KEYS[0]}-",
                                                                   "-{queue_key}-"))  # fmt: skip

    def resolver(self, table: Table, at: datetime = T0 + timedelta(hours=1)) -> Resolver:
        return Resolver(table, SYSTEMS, self.queue, Caps(max_size=2, max_asserted=BOUND),
                        clock=lambda: at, retention_days=RETENTION)  # fmt: skip

    def fresh(self) -> tuple[Table, Item]:
        """E's cluster full, with BOUND - 1 undecided holds; the first hold's item."""
        name = f"bound-race-{next(_tables)}"
        create_table(self.aws.dynamodb, name)
        table = Table(self.aws.dynamodb, name)
        for n in range(BOUND):  # the first is linked (the cap), the others held
            self.resolver(table).process(login(DEVICES[n], T0 + timedelta(minutes=n)))
        first = sorted(holds.list_holds(table, 100), key=lambda h: str(h["held_at"]))[0]
        assert undecided(table) == BOUND - 1
        return table, first

    def lapsed(self) -> tuple[Table, Item]:
        """E's cluster full, its count full at LATER: one hold that lapsed undecided (held at
        T0) and BOUND - 1 live ones (held at LATER); the lapsed hold's item."""
        name = f"bound-race-{next(_tables)}"
        create_table(self.aws.dynamodb, name)
        table = Table(self.aws.dynamodb, name)
        for n in range(2):  # the first is linked (the cap), the second held
            self.resolver(table).process(login(DEVICES[n], T0 + timedelta(minutes=n)))
        for n in range(2, BOUND + 1):
            self.resolver(table, LATER).process(login(DEVICES[n], LATER))
        old = sorted(holds.list_holds(table, 100), key=lambda h: str(h["held_at"]))[0]
        assert int(old["expires_at"]) < NOW < min(int(h["expires_at"]) for h in live(table))
        assert (undecided(table), len(live(table))) == (BOUND, BOUND - 1)
        return table, old


LATER = T0 + timedelta(days=RETENTION + 1)  # the holds made at T0 lapsed undecided
NOW = int(LATER.timestamp())


def live(table: Table) -> list[Item]:
    """E's undecided holds that have not lapsed (moto keeps expired items: NOTES)."""
    return [h for h in holds.list_holds(table, 100)
            if h["status"] == "held" and int(h["expires_at"]) >= NOW]  # fmt: skip


def entries(table: Table) -> set[str]:
    raw = table.client.get_item(TableName=table.name, ConsistentRead=True, Key={
        "pk": {"S": keys.HOLD_PK}, "sk": {"S": holds.count_sk(E.pk)}})  # fmt: skip
    return set(deserialize(raw["Item"]).get("holds") or ()) if "Item" in raw else set()


def undecided(table: Table) -> int:
    raw = table.client.get_item(TableName=table.name, ConsistentRead=True, Key={
        "pk": {"S": keys.HOLD_PK}, "sk": {"S": holds.count_sk(E.pk)}})  # fmt: skip
    return len(deserialize(raw["Item"]).get("holds") or ()) if "Item" in raw else 0


def run_at_once(aws: Aws, plan: list[tuple[int, int]]) -> str:
    tables = Tables(aws)
    table, first = tables.fresh()
    late = [login(DEVICES[BOUND], T0 + timedelta(minutes=30)),
            login(DEVICES[BOUND + 1], T0 + timedelta(minutes=31))]  # fmt: skip
    scheduler = Scheduler(plan)
    baton = Table(BatonClient(aws.dynamodb, scheduler), table.name)  # type: ignore[arg-type]

    def resolving(item: Item) -> Callable[[], None]:
        def run() -> None:
            tables.resolver(baton).process(item)

        return run

    def rejecting() -> None:
        ReviewService(baton, None, RETENTION).reject(keys.hold_id(first["sk"]), OPERATOR)

    tasks = {"a-login": resolving(late[0]), "b-login": resolving(late[1]),
             "c-retry": resolving(late[0]), "d-reject": rejecting}  # fmt: skip
    with guarded():
        scheduler.run(tasks)
    every = holds.list_holds(table, 100)
    held = [h for h in every if h["status"] == "held"]
    trace = "".join(name[0] for name in scheduler.trace)
    assert undecided(table) == len(held), trace
    assert all(h.get("counted") == holds.count_sk(E.pk) for h in every), trace
    # BOUND - 1 held, one rejected (a place freed), two logins: the first to write always
    # finds room, the second when the reject was written before it
    new = [h for h in every if h["a"]["key"] in (DEVICES[BOUND].key, DEVICES[BOUND + 1].key)]
    assert len(new) in (1, 2), trace
    assert len(held) == BOUND - 1 - 1 + len(new) <= BOUND, trace
    table.client.delete_table(TableName=table.name)
    return trace


@pytest.mark.parametrize("first", range(4))
def test_every_single_preemption_keeps_the_count_right(aws: Aws, first: int) -> None:
    every_cut(lambda calls: run_at_once(aws, [(first, calls)]))


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(plan=st.lists(st.tuples(st.integers(0, 3), st.integers(1, 8)), max_size=12))
def test_drawn_interleavings_keep_the_count_right(aws: Aws, plan: list[tuple[int, int]]) -> None:
    run_at_once(aws, plan)


def test_holds_that_lapsed_undecided_free_their_places(aws: Aws) -> None:
    # Given E's count full of holds nobody reviewed, all lapsed (held at T0, expired by LATER)
    tables = Tables(aws)
    table = Table(aws.dynamodb, "bound-lapsed")
    create_table(aws.dynamodb, table.name)
    for n in range(BOUND + 1):  # the first is linked (the cap), the others held
        tables.resolver(table).process(login(DEVICES[n], T0 + timedelta(minutes=n)))
    assert (undecided(table), live(table)) == (BOUND, [])
    # When E logs in on new browsers after they lapsed
    for n in range(BOUND + 1, BOUND + 3):
        tables.resolver(table, LATER).process(login(DEVICES[n], LATER))
    # Then each is held (and counted): only the live holds are counted, the lapsed are gone
    assert len(live(table)) == 2
    assert entries(table) == {holds.entry(h) for h in live(table)}


def run_lapsed_at_once(aws: Aws, plan: list[tuple[int, int]]) -> str:
    tables = Tables(aws)
    table, old = tables.lapsed()
    late = [login(DEVICES[BOUND + 1], LATER), login(DEVICES[BOUND + 2], LATER)]
    scheduler = Scheduler(plan)
    baton = Table(BatonClient(aws.dynamodb, scheduler), table.name)  # type: ignore[arg-type]

    def resolving(item: Item) -> Callable[[], None]:
        def run() -> None:
            tables.resolver(baton, LATER).process(item)

        return run

    def rejecting() -> None:  # an operator rejects the lapsed hold, still listed (TTL lags)
        ReviewService(baton, None, RETENTION).reject(keys.hold_id(old["sk"]), OPERATOR)

    tasks = {"a-login": resolving(late[0]), "b-login": resolving(late[1]),
             "c-retry": resolving(late[0]), "d-reject": rejecting}  # fmt: skip
    with guarded():
        scheduler.run(tasks)
    trace = "".join(name[0] for name in scheduler.trace)
    held = live(table)
    # Then one place was free and exactly one login took it, whatever the order
    new = [h for h in held if h["a"]["key"] in (DEVICES[BOUND + 1].key, DEVICES[BOUND + 2].key)]
    assert len(new) == 1, trace
    assert len(held) == BOUND, trace
    # ... and the count is E's live undecided holds, the lapsed one's entry gone
    assert entries(table) == {holds.entry(h) for h in held}, trace
    table.client.delete_table(TableName=table.name)
    return trace


@pytest.mark.parametrize("first", range(4))
def test_every_single_preemption_keeps_lapsed_holds_uncounted(aws: Aws, first: int) -> None:
    every_cut(lambda calls: run_lapsed_at_once(aws, [(first, calls)]))


def every_cut(run: Callable[[int], str], most: int = 45) -> None:
    """`run` with the first task cut after each of its calls in turn (a burst of 0 runs one
    call, as 1 does): once it ends within its burst, every longer burst is the same schedule
    (the same trace), so the walk stops there."""
    before = None
    for calls in range(1, most):
        trace = run(calls)
        if trace == before:
            return
        before = trace
    raise AssertionError(f"the first task made more than {most} calls: raise `most`")


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(plan=st.lists(st.tuples(st.integers(0, 3), st.integers(1, 8)), max_size=12))
def test_drawn_interleavings_keep_lapsed_holds_uncounted(
    aws: Aws, plan: list[tuple[int, int]]
) -> None:
    run_lapsed_at_once(aws, plan)


def opting_out(who: KeyedIdentifier, at: datetime) -> Item:
    """A choice on E (an opt-out of sale), or a browser's own event with none."""
    return CapturedEvent(
        request_id=f"00000000-0000-4000-8000-{next(_n):012d}", event_type="consent",
        source="banner", received_at=at, deadline=(at + timedelta(days=45)).date(),
        opt_out={"sale": True} if who == E else {}, gpc=False, identifiers=(who,), links=(),
        evidence={}, fingerprint="x", asserts=(), confirm_opt_in=True,
        roles=("verified",) if who == E else ("device",),
    ).to_item(RETENTION)  # fmt: skip


def test_a_carry_lives_while_its_browser_is_seen_not_while_its_account_is(aws: Aws) -> None:
    # The twin of the lapsed holds: an account's carries to the browsers it was held on count
    # toward its `max_asserted` (BOUND here), and the account's own activity refreshed every
    # one of them, so a browser seen once kept its place for good and a later browser, its
    # hold made, got no carry: it read none of the account's opt-outs (holds38)
    tables = Tables(aws)
    table = Table(aws.dynamodb, "carry-lapsed")
    create_table(aws.dynamodb, table.name)

    def at(when: datetime, item: Item) -> None:
        tables.resolver(table, when).process(item)

    # Given E opted out, linked to one browser (the cap) and held on BOUND others, each carrying
    at(T0, opting_out(E, T0))
    for n in range(BOUND + 1):
        at(T0 + timedelta(minutes=n + 1), login(DEVICES[n], T0 + timedelta(minutes=n + 1)))
    # ... then, past half the retention, E's cluster active (its linked browser's event), and
    # one held browser seen again (its own event); the others never came back
    mid = T0 + timedelta(days=RETENTION * 3 // 5)
    at(mid, opting_out(DEVICES[0], mid))
    at(mid, opting_out(DEVICES[1], mid))
    # When E logs in on a new browser after the first holds lapsed
    at(LATER, login(DEVICES[BOUND + 1], LATER))
    # Then the new browser reads E's opt-out, as the one seen again still does
    assert opted(table, DEVICES[BOUND + 1]) == opted(table, DEVICES[1]) == {"sale"}
    # ... and E's live carries are the browsers seen within the retention, no more than BOUND
    edges = query.items(table, KeyConditionExpression="pk = :pk AND begins_with(sk, :a)",
                        ExpressionAttributeValues={":pk": {"S": E.pk},
                                                   ":a": {"S": keys.ASSERTS_PREFIX}})  # fmt: skip
    live_to = {keys.edge_end(keys.ASSERTS_PREFIX, e["sk"]) for e in edges
               if int(e["expires_at"]) >= NOW}  # fmt: skip
    assert live_to == {DEVICES[1].pk, DEVICES[BOUND + 1].pk}


def opted(table: Table, who: KeyedIdentifier) -> set[str]:
    raw = table.client.get_item(TableName=table.name, ConsistentRead=True, Key={
        "pk": {"S": who.pk}, "sk": {"S": keys.STATE_SK}})  # fmt: skip
    state = deserialize(raw["Item"]).get("opt_out") or {} if "Item" in raw else {}
    return {p for p, v in state.items() if v}


def test_a_carry_lives_while_its_browser_is_seen_after_its_account_changed(aws: Aws) -> None:
    # A change of E's choices rewrote what the browser's half of the carry holds and moved
    # that half's expiry alone; the browser's own events refresh the carry only when that
    # half nears its expiry (`_keep_edges`), so E's half, the one `_push` walks and `_full`
    # counts, lapsed while the browser was seen: E's later opt-outs never reached it (review38a)
    tables = Tables(aws)
    table = Table(aws.dynamodb, "carry-after-change")
    create_table(aws.dynamodb, table.name)

    def at(when: datetime, item: Item) -> None:
        ttl(table, when)
        tables.resolver(table, when).process(item)

    def day(fraction: float) -> datetime:
        return T0 + timedelta(days=round(RETENTION * fraction))

    # Given E opted out, linked to one browser (the cap) and held on another, which carries it
    at(T0, choosing(E, T0, "sale"))
    at(T0 + timedelta(minutes=1), login(DEVICES[0], T0 + timedelta(minutes=1)))
    at(T0 + timedelta(minutes=2), login(DEVICES[1], T0 + timedelta(minutes=2)))
    assert opted(table, DEVICES[1]) == {"sale"}
    # ... E changed its choices past half the retention, after a quiet spell of that browser
    at(day(0.55), choosing(E, day(0.55), "profiling"))
    assert opted(table, DEVICES[1]) == {"sale", "profiling"}
    # ... and the browser was seen again and again (its own events) well within the retention
    for fraction in (0.6, 0.8, 0.95, 1.1, 1.3):
        at(day(fraction), opting_out(DEVICES[1], day(fraction)))
    # When E opts out of one more purpose (each expired item deleted, as TTL does)
    at(day(1.4), choosing(E, day(1.4), "share"))
    # Then the browser, seen all along, reads it too
    assert opted(table, DEVICES[1]) == {"sale", "profiling", "share"}


def choosing(who: KeyedIdentifier, at: datetime, purpose: Purpose) -> Item:
    """E's opt-out of `purpose` (its earlier ones stand)."""
    return CapturedEvent(
        request_id=f"00000000-0000-4000-8000-{next(_n):012d}", event_type="consent",
        source="banner", received_at=at, deadline=(at + timedelta(days=45)).date(),
        opt_out={purpose: True}, gpc=False, identifiers=(who,), links=(), evidence={},
        fingerprint="x", asserts=(), confirm_opt_in=True, roles=("verified",),
    ).to_item(RETENTION)  # fmt: skip


def ttl(table: Table, when: datetime) -> None:
    """What DynamoDB's TTL deletes by `when` (moto never does: NOTES): identity items past
    their expiry (an opted-out STATE has none)."""
    now = int(when.timestamp())
    for item in table.client.scan(TableName=table.name)["Items"]:
        found = deserialize(item)
        if str(found["pk"]).startswith("ID#") and int(found.get("expires_at", now)) < now:
            table.client.delete_item(TableName=table.name,
                                     Key={"pk": item["pk"], "sk": item["sk"]})  # fmt: skip


@pytest.mark.parametrize("decision", ["reject", "release"])
def test_a_hold_counted_before_the_set_is_decided_as_before(aws: Aws, decision: str) -> None:
    # A hold counted by a build before holds38 (the count a number `undecided`, no entry): its
    # decision's `DELETE holds {entry}` meets no set and changes nothing (DynamoDB, as moto,
    # ignores a DELETE from an attribute that is not there), and the account's next logins are
    # counted on the set alone (review38a)
    tables = Tables(aws)
    table, first = tables.fresh()
    count = {"pk": {"S": keys.HOLD_PK}, "sk": {"S": holds.count_sk(E.pk)}}
    raw = table.client.get_item(TableName=table.name, ConsistentRead=True, Key=count)["Item"]
    table.client.put_item(TableName=table.name, Item={
        **count, "undecided": {"N": str(BOUND - 1)}, "expires_at": raw["expires_at"]})  # fmt: skip
    # When an operator decides one of those holds
    review = ReviewService(table, None, RETENTION)
    answer = getattr(review, decision)(keys.hold_id(first["sk"]), OPERATOR)
    # Then it is decided, and the old number is left as it was, with no set made
    assert answer.status == ("rejected" if decision == "reject" else "releasing")
    raw = table.client.get_item(TableName=table.name, ConsistentRead=True, Key=count)["Item"]
    assert (raw["undecided"], "holds" in raw) == ({"N": str(BOUND - 1)}, False)
    # ... and a login on a new browser is held and counted in the set
    tables.resolver(table).process(login(DEVICES[BOUND], T0 + timedelta(minutes=BOUND)))
    assert undecided(table) == 1
