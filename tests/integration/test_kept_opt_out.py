"""An opt-out has no end (Civ. Code §1798.120(d)): an opted-out STATE item is kept without an
expiry, and when the identity's node (which holds the identifier's value, and still expires)
is gone, the next event seeds the new node from that kept STATE.

The resolver runs over moto with a clock the test moves past RecordRetentionDays; the items
DynamoDB's TTL would have deleted by then are deleted by the test (`expire`)."""

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from local.aws_resources import create_queues
from optout.admin import AdminService
from optout.events import CapturedEvent, KeyedIdentifier
from optout.identifiers import Identifier
from optout.jobs_queue import JobQueue
from optout.ops.export import ExportService
from optout.queries import QueryService
from optout.resolver.clusters import Caps, Graph
from optout.resolver.derive import Pass
from optout.resolver.outbox import Outbox
from optout.resolver.service import Resolver
from optout.settings import LOCAL_HASH_KEY
from optout.store import keys
from optout.store.codec import serialize
from optout.store.table import Table
from optout.systems import load_systems
from tests.conftest import Aws

SECRET = LOCAL_HASH_KEY.encode()
SYSTEMS = load_systems("layers/common/config/systems.json")
RETENTION = 1095
T0 = datetime(2026, 11, 1, tzinfo=UTC)
LATER = T0 + timedelta(days=RETENTION + 1)  # past every expiry written at T0
DEVICE = "dev-kept-aaaaaaaaaaaa"
ME = KeyedIdentifier.of(SECRET, Identifier("device_id", DEVICE))


class World:
    """One table, one resolver whose clock the test sets, and the banner's read."""

    def __init__(self, aws: Aws) -> None:
        queues, _, _ = create_queues(aws.sqs, sorted({s.queue_key for s in SYSTEMS.systems}),
                                     aws.table_name)  # fmt: skip
        key, url = next(iter(queues.items()))
        self.aws = aws
        self.table = Table(aws.dynamodb, aws.table_name)
        self.now = T0
        queue = JobQueue(aws.sqs, url.replace(f"-{key}-jobs", "-{queue_key}-jobs"))
        self.resolver = Resolver(self.table, SYSTEMS, queue, Caps(max_size=50),
                                 clock=lambda: self.now, retention_days=RETENTION)  # fmt: skip
        self._n = 0

    def event(self, at: datetime, opt_out: dict[str, bool], gpc: bool = False) -> dict[str, Any]:
        """A banner event of the device, received at `at`, stored (as capture does) and
        resolved at the resolver's current clock. Opt-ins are confirmed (CCPA §7028)."""
        self._n += 1
        item = CapturedEvent(
            request_id=f"00000000-0000-4000-8000-{self._n:012d}", event_type="consent",
            source="banner", received_at=at, deadline=(at + timedelta(days=45)).date(),
            opt_out=opt_out, gpc=gpc, identifiers=(ME,), links=(), evidence={},
            fingerprint="x", asserts=(), roles=("device",), confirm_opt_in=True,
        ).to_item(RETENTION)  # fmt: skip
        self.table.client.put_item(TableName=self.table.name, Item=serialize(item))
        self.resolver.process(item)
        return item

    def item(self, sk: str) -> dict[str, Any] | None:
        found = {(i["pk"], i["sk"]): i for i in self.aws.items()}
        return found.get((ME.pk, sk))

    def opted_out(self) -> dict[str, bool]:
        return dict(QueryService(self.table, SECRET).consent_state(DEVICE).opt_out)

    def expire(self) -> int:
        """Delete what DynamoDB's TTL would have by now: every item whose expires_at passed."""
        now = self.now.timestamp()
        gone = [i for i in self.aws.items() if "expires_at" in i and i["expires_at"] < now]
        for i in gone:
            key = {"pk": {"S": i["pk"]}, "sk": {"S": i["sk"]}}
            self.aws.dynamodb.delete_item(TableName=self.aws.table_name, Key=key)
        return len(gone)


@pytest.fixture
def world(aws: Aws) -> Iterator[World]:
    yield World(aws)


@pytest.fixture
def forgotten(world: World) -> World:
    """A device that opted out of sale and share at T0 and sent nothing since, seen at LATER,
    after the TTL removed everything that expires."""
    world.event(T0, {"sale": True, "share": True})
    world.now = LATER
    assert world.expire() > 0
    assert world.item(keys.NODE_SK) is None  # the identifier's value is gone
    return world


def test_an_opted_out_state_has_no_expiry_and_an_opted_back_in_one_has(world: World) -> None:
    world.event(T0, {"sale": True})
    state = world.item(keys.STATE_SK)
    assert state is not None and state["opt_out"]["sale"] is True
    assert "expires_at" not in state
    node = world.item(keys.NODE_SK)
    assert node is not None and "expires_at" in node  # the node (the value) still expires
    world.event(T0 + timedelta(minutes=1), {"sale": False})
    state = world.item(keys.STATE_SK)
    assert state is not None and state["opt_out"]["sale"] is False
    assert int(state["expires_at"]) == int((T0 + timedelta(days=RETENTION)).timestamp())


def test_an_opt_out_is_still_read_after_the_retention(forgotten: World) -> None:
    assert forgotten.opted_out()["sale"] is True
    assert forgotten.opted_out()["share"] is True


def test_a_page_view_after_the_retention_leaves_the_device_opted_out(forgotten: World) -> None:
    # When the device comes back with no choice, long after its node expired
    forgotten.event(LATER, {})
    # Then its new node starts from the kept opt-outs, and the state still says opted out
    assert forgotten.opted_out()["sale"] is True and forgotten.opted_out()["share"] is True
    node = forgotten.item(keys.NODE_SK)
    assert node is not None and node["value"] == DEVICE
    assert {p for p, r in node["own"].items() if r["v"]} == {"sale", "share"}
    state = forgotten.item(keys.STATE_SK)
    assert state is not None and "expires_at" not in state


def test_a_newer_opt_in_lifts_a_kept_opt_out(forgotten: World) -> None:
    forgotten.event(LATER, {"sale": False, "share": False})
    assert forgotten.opted_out()["sale"] is False and forgotten.opted_out()["share"] is False
    state = forgotten.item(keys.STATE_SK)
    assert state is not None and "expires_at" in state  # nothing kept: it expires again


def test_an_older_replayed_opt_in_does_not_lift_a_kept_opt_out(forgotten: World) -> None:
    # An opt-in received before the opt-out was resolved (a replay, a late stream record)
    forgotten.event(T0 - timedelta(minutes=1), {"sale": False})
    assert forgotten.opted_out()["sale"] is True


def test_a_kept_gpc_opt_out_stays_but_the_signal_is_not_claimed(world: World) -> None:
    world.event(T0, {}, gpc=True)
    assert QueryService(world.table, SECRET).consent_state(DEVICE).gpc_honored is True
    world.now = LATER
    world.expire()
    # When the device comes back without the signal (its absence is no consent: §7025(c)(5))
    world.event(LATER, {})
    after = QueryService(world.table, SECRET).consent_state(DEVICE)
    assert after.opt_out["sale"] is True and after.opt_out["share"] is True
    assert after.gpc_honored is False  # the signal is not on now
    node = world.item(keys.NODE_SK)
    assert node is not None and node.get("gpc") is None


def test_an_opted_out_state_written_with_an_expiry_loses_it_on_the_next_touch(
    world: World,
) -> None:
    # Given an opted-out STATE written before this rule (with an expiry), and a fresh node
    world.event(T0, {"sale": True})
    state = world.item(keys.STATE_SK)
    assert state is not None
    expiry = int((T0 + timedelta(days=RETENTION)).timestamp())
    world.table.client.put_item(TableName=world.table.name,
                                Item=serialize({**state, "expires_at": expiry}))  # fmt: skip
    # When the device sends anything an hour later (node fresh, nothing changed)
    world.now = T0 + timedelta(hours=1)
    world.event(world.now, {})
    # Then the state is rewritten without its expiry
    state = world.item(keys.STATE_SK)
    assert state is not None and state["opt_out"]["sale"] is True
    assert "expires_at" not in state


def test_an_operator_lookup_finds_a_kept_opt_out_without_its_node(forgotten: World) -> None:
    # `optout lookup` must not answer "no record" while an opt-out of that identifier is in force
    found = AdminService(forgotten.table, SECRET).lookup("device_id", DEVICE)
    assert found["effective"]["sale"] is True and found["effective"]["share"] is True
    assert found["own_choices"] == {}  # the node (with its registers) has expired


def test_an_access_export_includes_a_kept_opt_out_without_its_node(forgotten: World) -> None:
    records = ExportService(forgotten.table, SECRET).identity("device_id", DEVICE, None)["records"]
    (identity,) = [r for r in records if r["record"] == "identity"]
    assert identity["effective"]["sale"] is True and identity["own_choices"] == {}


# -- an active identity keeps its links --------------------------------------------------------

EMAIL = KeyedIdentifier.of(SECRET, Identifier("email", "kept-links@example.com"))
OTHER = KeyedIdentifier.of(SECRET, Identifier("device_id", "dev-kept-bbbbbbbbbbbb"))


def send(world: World, at: datetime, ids: tuple[KeyedIdentifier, ...], opt_out: dict[str, bool],
         links: tuple[tuple[KeyedIdentifier, KeyedIdentifier], ...] = (),
         asserts: tuple[tuple[KeyedIdentifier, KeyedIdentifier], ...] = ()) -> None:  # fmt: skip
    """An event naming `ids` (a device as the requester's, the rest verified), resolved at the
    resolver's clock set to `at`, after deleting what the TTL would have deleted by then."""
    world.now = at
    world.expire()
    world._n += 1
    item = CapturedEvent(
        request_id=f"00000000-0000-4000-8000-{world._n:012d}", event_type="consent",
        source="banner", received_at=at, deadline=(at + timedelta(days=45)).date(),
        opt_out=opt_out, gpc=False, identifiers=ids, links=links, evidence={},
        fingerprint="x", asserts=asserts, confirm_opt_in=True,
        roles=tuple("device" if i.type == "device_id" else "verified" for i in ids),
    ).to_item(RETENTION)  # fmt: skip
    world.table.client.put_item(TableName=world.table.name, Item=serialize(item))
    world.resolver.process(item)


def item_of(world: World, pk: str, sk: str) -> dict[str, Any] | None:
    return {(i["pk"], i["sk"]): i for i in world.aws.items()}.get((pk, sk))


def link_sks(a: KeyedIdentifier, b: KeyedIdentifier) -> list[tuple[str, str]]:
    return [
        (a.pk, keys.edge_sk(keys.LINK_PREFIX, b.pk)),
        (b.pk, keys.edge_sk(keys.LINK_PREFIX, a.pk)),
    ]


@pytest.fixture
def linked(world: World) -> World:
    """An email that opted out of sale at T0, and a device linked to it by a login then."""
    send(world, T0, (EMAIL,), {"sale": True})
    send(world, T0 + timedelta(minutes=1), (ME, EMAIL), {}, links=((ME, EMAIL),))
    assert world.opted_out()["sale"] is True
    return world


def test_a_linked_device_visiting_for_years_stays_opted_out(linked: World) -> None:
    # When the device (never logging in again) comes back every 60 days for 1200 days
    for day in range(60, 1201, 60):
        send(linked, T0 + timedelta(days=day), (ME,), {})
    # Then its link and the email's node (its own opt-out) are still there, and it is opted out
    assert all(item_of(linked, pk, sk) is not None for pk, sk in link_sks(ME, EMAIL))
    assert item_of(linked, EMAIL.pk, keys.NODE_SK) is not None
    state = linked.item(keys.STATE_SK)
    assert state is not None and state["opt_out"]["sale"] is True
    assert linked.opted_out()["sale"] is True


def test_the_link_of_a_cluster_nobody_touches_still_expires(linked: World) -> None:
    # Another identity's events do not keep this cluster's link
    for day in range(60, 1201, 60):
        send(linked, T0 + timedelta(days=day), (OTHER,), {})
    assert all(item_of(linked, pk, sk) is None for pk, sk in link_sks(ME, EMAIL))
    assert item_of(linked, EMAIL.pk, keys.NODE_SK) is None


def test_a_fresh_link_is_not_written_again(linked: World) -> None:
    before = [item_of(linked, pk, sk) for pk, sk in link_sks(ME, EMAIL)]
    email_node = item_of(linked, EMAIL.pk, keys.NODE_SK)
    # A visit 100 days on: the link and the email's node expire more than half the retention
    # away, so nothing of them is written (the device's own node is, as before: nothing new)
    send(linked, T0 + timedelta(days=100), (ME,), {})
    assert [item_of(linked, pk, sk) for pk, sk in link_sks(ME, EMAIL)] == before
    assert item_of(linked, EMAIL.pk, keys.NODE_SK) == email_node


def test_a_stale_link_is_refreshed_without_a_version_bump(linked: World) -> None:
    versions = [int(item_of(linked, i.pk, keys.NODE_SK)["version"]) for i in (ME, EMAIL)]  # type: ignore[index]
    at = T0 + timedelta(days=600)  # past half the retention: the link is refreshed
    send(linked, at, (ME,), {})
    expiry = int((at + timedelta(days=RETENTION)).timestamp())
    assert [int(item_of(linked, pk, sk)["expires_at"]) for pk, sk in link_sks(ME, EMAIL)] == [  # type: ignore[index]
        expiry,
        expiry,
    ]
    email = item_of(linked, EMAIL.pk, keys.NODE_SK)
    assert email is not None and int(email["expires_at"]) == expiry
    assert int(email["version"]) == versions[1]  # an expiry is no graph change


def test_a_backfill_pass_refreshes_nothing(linked: World) -> None:
    before = linked.aws.items()
    at = T0 + timedelta(days=600)
    refresh = int((at + timedelta(days=RETENTION / 2)).timestamp())
    expiry = int((at + timedelta(days=RETENTION)).timestamp())
    backfill = Pass(Graph(linked.table, Caps(max_size=50)), SYSTEMS, at.isoformat(), expiry,
                    refresh, plan_only=True)  # fmt: skip
    backfill.run([ME.pk], Outbox())
    assert backfill.plans  # it did derive the cluster
    assert linked.aws.items() == before


def test_an_assertion_carrying_an_opt_out_into_an_active_identity_is_kept(world: World) -> None:
    # Given a device that opted out and asserted an email (carried: its opt-out)
    send(world, T0, (OTHER,), {"sale": True}, asserts=((OTHER, EMAIL),))
    edge = item_of(world, EMAIL.pk, keys.edge_sk(keys.ASSERTED_PREFIX, OTHER.pk))
    assert edge is not None and edge["carried"] == ["sale"]
    # When the email keeps coming back (the asserting device never does)
    for day in range(60, 1201, 60):
        send(world, T0 + timedelta(days=day), (EMAIL,), {})
    # Then the edge still carries the device's opt-out into the email's state
    assert item_of(world, OTHER.pk, keys.edge_sk(keys.ASSERTS_PREFIX, EMAIL.pk)) is not None
    state = item_of(world, EMAIL.pk, keys.STATE_SK)
    assert state is not None and state["opt_out"]["sale"] is True


def test_an_active_asserters_events_still_resolve_once_the_asserted_node_has_expired(
    world: World,
) -> None:
    # Given a device that opted out and asserted an email nobody names again, and that keeps
    # visiting past the retention (its edge to the email is kept alive; the email's node,
    # untouched, is deleted by TTL: review s15 keep 1, every later event of the device failed)
    send(world, T0, (OTHER,), {"sale": True}, asserts=((OTHER, EMAIL),))
    for day in range(60, 1201, 60):
        send(world, T0 + timedelta(days=day), (OTHER,), {})
    assert item_of(world, EMAIL.pk, keys.NODE_SK) is None
    assert item_of(world, EMAIL.pk, keys.edge_sk(keys.ASSERTED_PREFIX, OTHER.pk)) is not None
    # When what the device carries changes, and then the device opts back in
    send(world, T0 + timedelta(days=1210), (OTHER,), {"share": True})
    state = item_of(world, OTHER.pk, keys.STATE_SK)
    assert state is not None and state["opt_out"]["share"] is True
    send(world, T0 + timedelta(days=1215), (OTHER,), {"sale": False, "share": False})
    # Then both events resolved: the opt-in lifted the device's opt-out
    state = item_of(world, OTHER.pk, keys.STATE_SK)
    assert state is not None and not any(state["opt_out"].values())
    assert "expires_at" in state


def test_a_device_whose_own_choice_changed_keeps_its_linked_opt_out_after_a_silence(
    world: World,
) -> None:
    # Given an email that opted out of sale, a device linked to it, and the device's own
    # choice changed 100 days on (its node rewritten: it would outlive the link and the
    # email's node, which nothing else touched: review s15 keep 2)
    send(world, T0, (EMAIL,), {"sale": True})
    send(world, T0 + timedelta(minutes=1), (ME, EMAIL), {}, links=((ME, EMAIL),))
    send(world, T0 + timedelta(days=100), (ME,), {"share": True})
    # When the device comes back after a silence longer than the link's first retention
    send(world, T0 + timedelta(days=1100), (ME,), {})
    # Then the link and the email's node are still there, and the device is still opted out
    # of sale (the email's choice) and share (its own)
    assert item_of(world, EMAIL.pk, keys.NODE_SK) is not None
    assert all(item_of(world, pk, sk) is not None for pk, sk in link_sks(ME, EMAIL))
    assert world.opted_out()["sale"] is True and world.opted_out()["share"] is True
