"""The refreshes that keep an opt-out (resolver/derive.py `_keep_edges`, `_keep_node`, and the
asserter's side in `_push`) racing other events and DynamoDB's TTL.

A cluster: an email E that opted out of sale, a device D linked to it by a login, and a device
A that opted out of share and asserted E (its edge carries share into E's cluster). Everything
of it was written at T0; the resolver runs later, when those items are past half the retention
(refreshed when an event of the cluster is derived) or past their expiry (TTL may delete them
at any moment, each item on its own; until it does they are read as usual).

Resolvers run at once over one moto table under the deterministic scheduler of
tests/support/interleave.py (switching at every DynamoDB call, in orders hypothesis draws, or at
every single point in turn); TTL is a task of its own deleting expired items one by one, as
DynamoDB's does (only while still expired). After each run:
- no event raised (it would go back to the stream, and at last to the DLQ);
- an item TTL deleted is still gone: no refresh re-created a link, node or edge, and no half of
  a pair was refreshed without the other;
- every identity's STATE is what one resolver gives processing the same events one after the
  other (TTL's deletions as events too, in some order);
- the graph (nodes, links, edges: versions, choices, what an edge carries) is what that one
  resolver leaves: a refresh overwrote no other event's change.

moto raises no TransactionConflict (it is serial): the refresh's conflict path is injected.
"""

import itertools
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from local.aws_resources import create_queues, create_table
from local.moto_guard import guarded
from optout.events import CapturedEvent, KeyedIdentifier
from optout.identifiers import Identifier
from optout.jobs_queue import JobQueue
from optout.purposes import ALL_PURPOSES, OptOutMap, Purpose
from optout.resolver.clusters import Caps
from optout.resolver.service import Resolver
from optout.settings import LOCAL_HASH_KEY
from optout.store import keys
from optout.store.codec import Item, deserialize, serialize
from optout.store.conditional import CONFLICT_ATTEMPTS
from optout.store.table import Table
from optout.systems import load_systems
from tests.conftest import Aws
from tests.support.interleave import BatonClient, Scheduler

SECRET = LOCAL_HASH_KEY.encode()
SYSTEMS = load_systems("layers/common/config/systems.json")
QUEUE_KEYS = sorted({s.queue_key for s in SYSTEMS.systems})
RETENTION = 1095
T0 = datetime(2026, 11, 1, tzinfo=UTC)
STALE = T0 + timedelta(days=700)  # past half the retention: refreshed by the cluster's events
EXPIRED = T0 + timedelta(days=RETENTION + 5)  # past the expiry: TTL may delete them any moment
pytestmark = [
    pytest.mark.usefixtures("expressions_parsed_once"),  # moto's parsing: half the time
    pytest.mark.filterwarnings("ignore::UserWarning"),
]


def keyed(id_type: str, value: str) -> KeyedIdentifier:
    return KeyedIdentifier.of(SECRET, Identifier(id_type, value))  # type: ignore[arg-type]


D = keyed("device_id", "dev-keep-race-dddddddd")
E = keyed("email", "keep-race@example.com")
A = keyed("device_id", "dev-keep-race-aaaaaaaa")
WHO = (D, E, A)
_n = itertools.count(1)
_tables = itertools.count()


def event(
    at: datetime,
    ids: tuple[KeyedIdentifier, ...],
    opt_out: OptOutMap,
    links: tuple[tuple[KeyedIdentifier, KeyedIdentifier], ...] = (),
    asserts: tuple[tuple[KeyedIdentifier, KeyedIdentifier], ...] = (),
) -> Item:
    """A banner event received at `at`; a device is the requester's own, an email verified.
    Opt-ins are confirmed (CCPA §7028). Request ids come from one counter: every event of the
    module is a new request."""
    return CapturedEvent(
        request_id=f"00000000-0000-4000-8000-{next(_n):012d}", event_type="consent",
        source="banner", received_at=at, deadline=(at + timedelta(days=45)).date(),
        opt_out=opt_out, gpc=False, identifiers=ids, links=links, evidence={},
        fingerprint="x", asserts=asserts, confirm_opt_in=True,
        roles=tuple("device" if i.type == "device_id" else "verified" for i in ids),
    ).to_item(RETENTION)  # fmt: skip


def history() -> list[Item]:
    """The cluster, written at T0: E opts out of sale, D is linked to it, A opts out of share
    and asserts E."""
    return [
        event(T0, (E,), {"sale": True}),
        event(T0 + timedelta(minutes=1), (D, E), {}, links=((D, E),)),
        event(T0 + timedelta(minutes=2), (A,), {"share": True}, asserts=((A, E),)),
    ]


def visit(who: KeyedIdentifier, at: datetime) -> Item:
    """A page view: no choice."""
    return event(at, (who,), {})


def opt_in(who: KeyedIdentifier, purpose: Purpose, at: datetime) -> Item:
    """An opt-back-in (confirmed) of one purpose."""
    return event(at, (who,), {purpose: False})


LINK = [(D.pk, keys.edge_sk(keys.LINK_PREFIX, E.pk)), (E.pk, keys.edge_sk(keys.LINK_PREFIX, D.pk))]
ASSERTION = [(A.pk, keys.edge_sk(keys.ASSERTS_PREFIX, E.pk)),
             (E.pk, keys.edge_sk(keys.ASSERTED_PREFIX, A.pk))]  # fmt: skip
PAIRS = [LINK, ASSERTION]
# What TTL may delete under a visit of D: the cluster's items D's event does not name.
EXPIRING = [*LINK, (E.pk, keys.NODE_SK), *ASSERTION]


@pytest.fixture
def queue(aws: Aws) -> JobQueue:
    urls, _, _ = create_queues(aws.sqs, QUEUE_KEYS, "keep-race")
    return JobQueue(aws.sqs, urls[QUEUE_KEYS[0]].replace(f"-{QUEUE_KEYS[0]}-", "-{queue_key}-"))


class Tables:
    """Fresh tables holding the cluster as its history left it (written once, copied)."""

    def __init__(self, aws: Aws, queue: JobQueue) -> None:
        self.aws, self.queue = aws, queue
        self._seed: list[dict[str, Any]] | None = None

    def resolver(self, table: Table, now: datetime) -> Resolver:
        return Resolver(table, SYSTEMS, self.queue, Caps(max_size=50), clock=lambda: now,
                        retention_days=RETENTION)  # fmt: skip

    def fresh(self) -> Table:
        name = f"keep-race-{next(_tables)}"
        create_table(self.aws.dynamodb, name)
        table = Table(self.aws.dynamodb, name)
        if self._seed is None:
            for item in history():
                self.resolver(table, datetime.fromisoformat(item["received_at"])).process(item)
            self._seed = self.aws.dynamodb.scan(TableName=name)["Items"]
        else:
            for start in range(0, len(self._seed), 25):
                chunk = self._seed[start : start + 25]
                self.aws.dynamodb.batch_write_item(
                    RequestItems={name: [{"PutRequest": {"Item": raw}} for raw in chunk]}
                )
        return table

    def drop(self, table: Table) -> None:
        # moto keeps every table in memory: keep only this example's alive
        self.aws.dynamodb.delete_table(TableName=table.name)


@pytest.fixture
def tables(aws: Aws, queue: JobQueue) -> Tables:
    return Tables(aws, queue)


# -- what a run leaves -------------------------------------------------------------------------

States = dict[str, tuple[OptOutMap, bool]]
GRAPH_KINDS = {"node", "link", "asserts", "asserted"}


def items_of(table: Table) -> dict[tuple[str, str], Item]:
    raw = table.client.scan(TableName=table.name)["Items"]
    return {(i["pk"], i["sk"]): i for i in map(deserialize, raw)}


def states(table: Table) -> States:
    found = items_of(table)
    nothing = (dict.fromkeys(ALL_PURPOSES, False), False)
    out: States = {}
    for who in WHO:
        state = found.get((who.pk, keys.STATE_SK))
        out[who.pk] = (state["opt_out"], state["gpc"]) if state else nothing
    return out


def graph(table: Table) -> dict[tuple[str, str], Item]:
    """The cluster's nodes and edges, whole (versions, registers, carried, expiries)."""
    return {k: i for k, i in items_of(table).items() if i.get("kind") in GRAPH_KINDS}


def serial(
    tables: Tables, events: list[Item], now: datetime, gone: Sequence[tuple[str, str]] = ()
) -> Table:
    """A table where `gone` was deleted, then one resolver processed `events` in turn."""
    table = tables.fresh()
    for key in gone:
        table.client.delete_item(TableName=table.name, Key=serialize({"pk": key[0], "sk": key[1]}))
    for item in events:
        tables.resolver(table, now).process(item)
    return table


def at_once(
    tables: Tables,
    events: list[Item],
    now: datetime,
    plan: list[tuple[int, int]],
    ttl: Sequence[tuple[str, str]] = (),
) -> tuple[Table, list[tuple[str, str]], list[str]]:
    """(the table after one resolver per event, and TTL deleting `ttl` in that order, ran at
    once under `plan`; the keys TTL deleted; the interleaving). Raises what a task raised."""
    table = tables.fresh()
    scheduler = Scheduler(plan)
    baton = Table(BatonClient(tables.aws.dynamodb, scheduler), table.name)  # type: ignore[arg-type]
    deleted: list[tuple[str, str]] = []

    def resolving(item: Item) -> Callable[[], None]:
        def run() -> None:
            tables.resolver(baton, now).process(item)

        return run

    tasks = {f"resolver-{n}": resolving(item) for n, item in enumerate(events)}
    if ttl:
        tasks["ttl"] = lambda: deleted.extend(k for k in ttl if expire(baton, k, now))
    with guarded():  # one thread at a time holds the baton: safe to swap
        scheduler.run(tasks)
    return table, deleted, scheduler.trace


def expire(table: Table, key: tuple[str, str], now: datetime) -> bool:
    """DynamoDB's TTL deleting one item: only while it is still expired (an item refreshed
    meanwhile is not deleted). Whether it was."""
    try:
        table.client.delete_item(
            TableName=table.name, Key=serialize({"pk": key[0], "sk": key[1]}),
            ConditionExpression="expires_at < :now",
            ExpressionAttributeValues={":now": {"N": str(int(now.timestamp()))}},
        )  # fmt: skip
    except ClientError as error:
        if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
            raise
        return False
    return True


def assert_nothing_resurrected(table: Table, deleted: list[tuple[str, str]], now: datetime) -> None:
    """Every item TTL deleted is still gone, and no half of a pair outlives the other with a
    refreshed expiry (one half of an edge is not kept alive without the other)."""
    found = items_of(table)
    assert [k for k in deleted if k in found] == []
    for pair in PAIRS:
        left = [found[k] for k in pair if k in found]
        if len(left) == 1:
            assert int(left[0]["expires_at"]) < now.timestamp(), pair


# -- a refresh racing an opt-in, and another refresh of the same items ---------------------------

RACES: dict[str, list[Item]] = {
    # D's page view refreshes the link, E's node and the assertion while E opts back in
    "visit and the email's opt-in": [visit(D, STALE), opt_in(E, "sale", STALE)],
    # ... while the asserter opts back in (it tells E "nothing" on the edge being refreshed)
    "visit and the asserter's opt-in": [visit(D, STALE), opt_in(A, "share", STALE)],
    # two events of the cluster refresh the same link, nodes and edge
    "two visits of the cluster": [visit(D, STALE), visit(E, STALE)],
    # ... and the asserter's own visit refreshes the edge from its side
    "visits of both ends of the edge": [visit(D, STALE), visit(E, STALE), visit(A, STALE)],
}  # fmt: skip

Outcome = tuple[States, dict[tuple[str, str], Item]]


class InTurn:
    """What one resolver leaves after a race's events in each order (which event rewrites a
    stale node and which only refreshes it depends on the order: all are serial outcomes).
    Computed once per race and order."""

    def __init__(self, tables: Tables) -> None:
        self._tables = tables
        self._known: dict[str, list[Outcome]] = {}

    def outcomes(self, race: str) -> list[Outcome]:
        if race not in self._known:
            self._known[race] = []
            for order in itertools.permutations(RACES[race]):
                table = serial(self._tables, list(order), STALE)
                try:
                    self._known[race].append((states(table), graph(table)))
                finally:
                    self._tables.drop(table)
        return self._known[race]


@pytest.fixture
def in_turn(tables: Tables) -> InTurn:
    return InTurn(tables)


def assert_like_one_resolver(
    tables: Tables, in_turn: InTurn, race: str, plan: list[tuple[int, int]]
) -> None:
    expected = in_turn.outcomes(race)
    got, _, trace = at_once(tables, RACES[race], STALE, plan)  # raises what an event raised
    try:
        outcome = (states(got), graph(got))
        serial_ones = [(s, unversioned(g)) for s, g in expected]
        assert (outcome[0], unversioned(outcome[1])) in serial_ones, (
            trace, [differences(outcome, e) for e in expected])  # fmt: skip
        for key, item in outcome[1].items():  # no node's version went back
            if item["kind"] == "node":
                assert item["version"] >= min(g[key]["version"] for _, g in expected), key
    finally:
        tables.drop(got)


def unversioned(found: dict[tuple[str, str], Item]) -> dict[tuple[str, str], Item]:
    """The graph without the nodes' version and time of writing: two events at once can each
    rewrite their own stale node where, one after the other, the first would have refreshed
    the other's (no version bump) and the second found it fresh. Choices, links, what edges
    carry and every expiry are compared."""
    return {k: {f: v for f, v in i.items() if i["kind"] != "node"
                or f not in ("version", "updated_at")} for k, i in found.items()}  # fmt: skip


def differences(got: Outcome, want: Outcome) -> list[str]:
    """Where a run's outcome differs from a serial one: item, field, (got, wanted)."""
    found = [f"STATE {pk[:12]} {got[0][pk]} != {want[0][pk]}"
             for pk in sorted(got[0]) if got[0][pk] != want[0][pk]]  # fmt: skip
    for key in sorted(set(got[1]) | set(want[1])):
        a, b = got[1].get(key) or {}, want[1].get(key) or {}
        fields = {f: (a.get(f), b.get(f)) for f in sorted(set(a) | set(b)) if a.get(f) != b.get(f)}
        if fields:
            found.append(f"{key[0][:12]} {key[1][:12]} {fields}")
    return found


@settings(max_examples=6, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip
@given(
    race=st.sampled_from(sorted(RACES)),
    plan=st.lists(st.tuples(st.integers(0, 2), st.integers(1, 30)), max_size=10),
)
def test_a_refresh_racing_another_event_of_the_cluster_ends_where_one_resolver_does(
    tables: Tables, in_turn: InTurn, race: str, plan: list[tuple[int, int]]
) -> None:
    assert_like_one_resolver(tables, in_turn, race, plan)


# Where an event is stopped: after this many scheduler picks (its first starts it, each next one
# is one store call).
POINTS = [*range(1, 12), 16, 22]


@pytest.mark.parametrize("race", ["visit and the email's opt-in", "two visits of the cluster"])
def test_every_single_preemption_of_a_refresh_racing_the_cluster_ends_where_one_resolver_does(
    tables: Tables, in_turn: InTurn, race: str
) -> None:
    # The first resolver stops after each of its first store calls in turn (an event makes some
    # 22: it reads the cluster's partitions at its 3rd and 4th and refreshes at its 5th to 7th),
    # then as it makes jobs and checks what it wrote, while the other runs to the end; and
    # the other way round
    for first in (0, 1):
        for point in POINTS:
            assert_like_one_resolver(tables, in_turn, race, [(first, point), (1 - first, 10**6)])


# -- a refresh racing TTL --------------------------------------------------------------------


class Serial:
    """The STATEs one resolver gives a visit of D after TTL deleted some of EXPIRING first
    (each set computed once: the history and the visit are always the same)."""

    def __init__(self, tables: Tables) -> None:
        self._tables = tables
        self._known: dict[frozenset[tuple[str, str]], States] = {}

    def after(self, gone: frozenset[tuple[str, str]]) -> States:
        if gone not in self._known:
            table = serial(self._tables, [visit(D, EXPIRED)], EXPIRED, sorted(gone))
            try:
                self._known[gone] = states(table)
            finally:
                self._tables.drop(table)
        return self._known[gone]

    def any_order(self, deleted: list[tuple[str, str]]) -> list[States]:
        """Every outcome of the visit placed anywhere among TTL's deletions (in any order):
        the deletions before it are any subset of those made."""
        return [self.after(frozenset(gone)) for n in range(len(deleted) + 1)
                for gone in itertools.combinations(deleted, n)]  # fmt: skip


@pytest.fixture
def one_resolver(tables: Tables) -> Serial:
    return Serial(tables)


def assert_ttl_race(
    tables: Tables, one_resolver: Serial, ttl: list[tuple[str, str]], plan: list[tuple[int, int]]
) -> None:
    got, deleted, trace = at_once(tables, [visit(D, EXPIRED)], EXPIRED, plan, ttl)
    try:
        assert_nothing_resurrected(got, deleted, EXPIRED)
        assert states(got) in one_resolver.any_order(deleted), (deleted, trace)
    finally:
        tables.drop(got)


@settings(max_examples=10, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip
@given(
    ttl=st.lists(st.sampled_from(EXPIRING), min_size=1, unique=True),  # which, in what order
    plan=st.lists(st.tuples(st.integers(0, 1), st.integers(1, 20)), max_size=10),
)
def test_a_refresh_racing_ttl_never_brings_back_what_ttl_deleted(
    tables: Tables, one_resolver: Serial, ttl: list[tuple[str, str]], plan: list[tuple[int, int]]
) -> None:
    assert_ttl_race(tables, one_resolver, ttl, plan)


def test_ttl_deleting_the_cluster_at_every_point_of_a_refreshing_visit(
    tables: Tables, one_resolver: Serial
) -> None:
    # The visit stops after each of its store calls in turn; TTL then deletes every expired
    # item of the cluster it names not (one by one), and the visit goes on
    for point in POINTS:
        plan = [(0, point), (1, 10**6)]  # "resolver-0" sorts before "ttl"
        assert_ttl_race(tables, one_resolver, EXPIRING, plan)


# -- one item, one UpdateItem; and the refresh's conflict path ----------------------------------

REFRESH = "SET expires_at = :exp"
E_NODE = (E.pk, keys.NODE_SK)


class Refusing:
    """A DynamoDB client that refuses the refreshes' writes (`SET expires_at = :exp`) as AWS does
    while another transaction holds their item (moto, serial, never does): an UpdateItem with
    TransactionConflictException, a transaction cancelled for TransactionConflict. `before`
    is told each refresh's operation ahead of it (to have TTL delete its item, say). Every
    call is recorded."""

    def __init__(self, client: Any, times: int = 0, before: Callable[[str], None] | None = None):
        self._client, self.left, self._before = client, times, before
        self.refused = 0
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def update_item(self, **params: Any) -> Any:
        self.calls.append(("UpdateItem", params))
        if params.get("UpdateExpression") == REFRESH:
            self._refuse("UpdateItem")
        return self._client.update_item(**params)

    def transact_write_items(self, **params: Any) -> Any:
        self.calls.append(("TransactWriteItems", params))
        if all(op.get("Update", {}).get("UpdateExpression") == REFRESH
               for op in params["TransactItems"]):  # fmt: skip
            self._refuse("TransactWriteItems", len(params["TransactItems"]))
        return self._client.transact_write_items(**params)

    def _refuse(self, operation: str, actions: int = 1) -> None:
        if self._before is not None:
            self._before(operation)
        if not self.left:
            return
        self.left -= 1
        self.refused += 1
        if operation == "UpdateItem":
            error: dict[str, Any] = {
                "Error": {"Code": "TransactionConflictException", "Message": "ongoing"}
            }
        else:
            reasons = [{"Code": "TransactionConflict"}] + [{"Code": "None"}] * (actions - 1)
            error = {"Error": {"Code": "TransactionCanceledException", "Message": "cancelled"},
                     "CancellationReasons": reasons}  # fmt: skip
        raise ClientError(error, operation)  # type: ignore[arg-type]

    def refreshes(self) -> list[tuple[str, list[tuple[str, str]]]]:
        """Each refresh sent: (operation, the keys it names)."""
        found: list[tuple[str, list[tuple[str, str]]]] = []
        for operation, params in self.calls:
            ops = [o["Update"] for o in params.get("TransactItems", [])] or [params]
            if all(o.get("UpdateExpression") == REFRESH for o in ops):
                found.append((operation, [(o["Key"]["pk"]["S"], o["Key"]["sk"]["S"]) for o in ops]))
        return found


@pytest.fixture
def no_pause(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("optout.store.conditional.CONFLICT_PAUSE_SECONDS", 0.0)


def visit_through(tables: Tables, client: Refusing) -> tuple[Table, Item]:
    """D's page view at STALE (its cluster's link, E's node and the assertion near expiry),
    resolved through `client`: (the table, the event). Raises what the resolver raised."""
    table = tables.fresh()
    item = visit(D, STALE)
    tables.resolver(Table(client, table.name), STALE).process(item)  # type: ignore[arg-type]
    return table, item


def resolved(table: Table, item: Item) -> bool:
    return (keys.request_pk(item["request_id"]), keys.RESOLUTION_SK) in items_of(table)


def expiry(table: Table, key: tuple[str, str]) -> int | None:
    found = items_of(table).get(key)
    return int(found["expires_at"]) if found else None


def test_a_node_is_refreshed_with_one_conditional_update_item(tables: Tables) -> None:
    # A transaction of one item bills 2 WRU; an UpdateItem with the same condition bills 1
    client = Refusing(tables.aws.dynamodb)
    table, _ = visit_through(tables, client)
    assert ("UpdateItem", [E_NODE]) in client.refreshes()
    assert all(len(keys_) == 2 for op, keys_ in client.refreshes() if op == "TransactWriteItems")
    (update,) = [p for op, p in client.calls if op == "UpdateItem" and p["Key"]["pk"]["S"] == E.pk
                 and p.get("UpdateExpression") == REFRESH]  # fmt: skip
    assert update["ConditionExpression"] == "attribute_exists(pk)"
    assert expiry(table, E_NODE) == int((STALE + timedelta(days=RETENTION)).timestamp())
    tables.drop(table)


def test_a_node_ttl_deleted_just_before_its_refresh_is_not_brought_back(tables: Tables) -> None:
    # TTL deletes E's node after the resolver read it, just before the refresh's UpdateItem
    table_name: list[str] = []

    def ttl(operation: str) -> None:
        if operation == "UpdateItem":  # a node's refresh (a pair's is a transaction)
            key = serialize({"pk": E_NODE[0], "sk": E_NODE[1]})
            tables.aws.dynamodb.delete_item(TableName=table_name[0], Key=key)

    client = Refusing(tables.aws.dynamodb, before=ttl)
    table = tables.fresh()
    table_name.append(table.name)
    item = visit(D, STALE)
    # When D's page view is resolved: it does not raise
    tables.resolver(Table(client, table.name), STALE).process(item)  # type: ignore[arg-type]
    # Then the refresh's condition failed: the node stays gone, and the event resolved
    assert E_NODE not in items_of(table)
    assert resolved(table, item)
    tables.drop(table)


@pytest.mark.usefixtures("no_pause")
@pytest.mark.parametrize(("refreshed", "operation"), [(E_NODE, "UpdateItem"),
                                                      (LINK[0], "TransactWriteItems")])  # fmt: skip
def test_a_refresh_that_keeps_meeting_transactions_is_dropped_not_raised(
    tables: Tables, refreshed: tuple[str, str], operation: str
) -> None:
    # Given every refresh refused for a conflict, every time it is tried
    client = Refusing(tables.aws.dynamodb, times=10**6)
    before = tables.fresh()
    stale = expiry(before, refreshed)
    tables.drop(before)
    # When D's page view is resolved: it does not raise (its batch would go back to the stream)
    table, item = visit_through(tables, client)
    # Then each refresh was tried a bounded number of times and dropped; the event resolved
    sent = client.refreshes()
    assert (operation, [refreshed]) in sent or (operation, LINK) in sent
    distinct = {tuple(keys_) for _, keys_ in sent}
    assert client.refused == len(sent) == CONFLICT_ATTEMPTS * len(distinct)
    assert expiry(table, refreshed) == stale
    assert resolved(table, item)
    tables.drop(table)


@pytest.mark.usefixtures("no_pause")
def test_a_refresh_meeting_a_transaction_once_is_tried_again(tables: Tables) -> None:
    client = Refusing(tables.aws.dynamodb, times=1)  # the first refresh: E's node, or the link
    table, item = visit_through(tables, client)
    fresh = int((STALE + timedelta(days=RETENTION)).timestamp())
    assert client.refused == 1
    assert expiry(table, E_NODE) == expiry(table, LINK[0]) == expiry(table, LINK[1]) == fresh
    assert resolved(table, item)
    tables.drop(table)
