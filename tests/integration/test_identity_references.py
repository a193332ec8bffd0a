"""Request references (`XREF#`) stay out of an identity's graph reads (review s19 SC2): the
resolver's `read_partition` and the admin lookup read `sk < XREF#`, one Query, none of the
references; the identity export lists the same requests in the same order as before, its
later pages reading only the next references, never the whole partition again."""

import base64
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from optout.admin import AdminService
from optout.errors import InvalidInput
from optout.events import KeyedIdentifier
from optout.identifiers import Identifier
from optout.ops import keys as ops_keys
from optout.ops.export import PAGE_REQUESTS, ExportService
from optout.ops.watch import Watch, WatchSettings
from optout.store import keys
from optout.store.batch import batch_put, batch_write
from optout.store.identity import read_partition
from optout.store.table import Table
from optout.timestamps import iso
from optout_cli import export_out
from tests.conftest import Aws
from tests.support.seed import SECRET, seed_request

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
EMAIL = "family.s19@example.com"
KEY = KeyedIdentifier.of(SECRET, Identifier("email", EMAIL)).key
PK = keys.identity_pk("email", KEY)
OTHER = keys.identity_pk("device_id", "k-device-0001")


@dataclass
class Read:
    condition: str
    pk: str
    scanned: int


@contextmanager
def queries(aws: Aws) -> Iterator[list[Read]]:
    """Every Query made meanwhile: its key condition, partition and items read (ScannedCount)."""
    asked: list[dict[str, Any]] = []
    reads: list[Read] = []

    def ask(params: dict[str, Any], **_: Any) -> None:
        asked.append(params)

    def answered(parsed: dict[str, Any], **_: Any) -> None:
        params = asked[len(reads)]
        pk = params["ExpressionAttributeValues"].get(":pk", {}).get("S", "")
        reads.append(Read(params["KeyConditionExpression"], pk, int(parsed["ScannedCount"])))

    events = aws.dynamodb.meta.events
    events.register("provide-client-params.dynamodb.Query", ask, unique_id="refs-ask")
    events.register("after-call.dynamodb.Query", answered, unique_id="refs-answered")
    try:
        yield reads
    finally:
        events.unregister("provide-client-params.dynamodb.Query", unique_id="refs-ask")
        events.unregister("after-call.dynamodb.Query", unique_id="refs-answered")


def graph(pk: str = PK, **node: Any) -> list[dict[str, Any]]:
    """A node, its state and one verified link (both ways), as the resolver writes them."""
    link = {"kind": "link", "request_id": "r-link", "linked_at": iso(NOW - timedelta(days=9))}
    return [
        {"pk": pk, "sk": keys.NODE_SK, "kind": "node", "version": 3, **node},
        {"pk": pk, "sk": keys.STATE_SK, "kind": "state", "opt_out": {"sale": True},
         "updated_at": iso(NOW)},
        {"pk": pk, "sk": keys.edge_sk(keys.LINK_PREFIX, OTHER), **link},
        {"pk": OTHER, "sk": keys.edge_sk(keys.LINK_PREFIX, pk), **link},
    ]  # fmt: skip


def references(count: int) -> list[dict[str, Any]]:
    return [{"pk": PK, "sk": ops_keys.ref_sk(iso(NOW - timedelta(minutes=n)), f"r-{n:05d}"),
             "kind": "reqref", "request_id": f"r-{n:05d}",
             "received_at": iso(NOW - timedelta(minutes=n)), "event_type": "opt_out"}
            for n in range(count)]  # fmt: skip


def test_the_resolver_reads_an_identity_in_one_query_without_its_references(aws: Aws) -> None:
    # Given an identity named by 600 requests (600 references in its partition)
    table = Table(aws.dynamodb, aws.table_name)
    batch_put(table, graph() + references(600))
    # When the resolver reads it
    with queries(aws) as reads:
        found = read_partition(table, PK)
    # Then one Query read its node, state and link, and none of the references
    assert found.node is not None and found.state is not None and OTHER in found.links
    assert [(r.pk, r.scanned) for r in reads] == [(PK, 3)]
    assert "sk < :refs" in reads[0].condition


def test_the_admin_lookup_reads_no_reference(aws: Aws) -> None:
    table = Table(aws.dynamodb, aws.table_name)
    batch_put(table, graph() + references(600))
    with queries(aws) as reads:
        found = AdminService(table, SECRET).lookup("email", EMAIL)
    assert found["links"] == [{"type": "device_id", "key": "k-device-0001"}]
    assert found["effective"] == {"sale": True}
    identity_reads = [r for r in reads if r.pk == PK]
    assert [r.scanned for r in identity_reads] == [3]


# -- the identity export --------------------------------------------------------------------


def export_all(table: Table) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Every page's answer, and every record in order."""
    exports = ExportService(table, SECRET, clock=lambda: NOW)
    answers = [exports.identity("email", EMAIL, None)]
    while answers[-1]["cursor"] is not None:
        answers.append(exports.identity("email", EMAIL, answers[-1]["cursor"]))
    return answers, [record for answer in answers for record in answer["records"]]


def requests_named(count: int, table: Table) -> list[tuple[str, str]]:
    """`count` real requests naming the email, a day apart in minutes; the watch references
    them. Also one request it does not (another email's), named by the email's link only."""
    seeded = [seed_request(table, n, NOW - timedelta(days=2, minutes=7 * n), "completed",
                           email=EMAIL) for n in range(1, count + 1)]  # fmt: skip
    alone = seed_request(table, 900, NOW - timedelta(days=2, minutes=100), "completed")
    Watch(table, WatchSettings(backfill_days=5), clock=lambda: NOW).run()
    linked_at = iso(NOW - timedelta(days=2, minutes=99))
    link = {"kind": "link", "request_id": alone.request_id, "linked_at": linked_at}
    batch_put(table, [
        {"pk": PK, "sk": keys.NODE_SK, "kind": "node", "version": 1,
         "updated_at": iso(NOW)},
        {"pk": PK, "sk": keys.edge_sk(keys.LINK_PREFIX, OTHER), **link},
    ])  # fmt: skip
    listed = [(iso(s.received_at), s.request_id) for s in seeded] + [(linked_at, alone.request_id)]
    return sorted(listed)


def move_back(aws: Aws, table: Table, request_ids: set[str]) -> None:
    """Those requests' references under their key before session 19, as an older watch left
    them (`REQREF#`, inside the graph's range)."""
    old = [item for item in scan_references(aws) if item["request_id"] in request_ids]
    batch_write(table, [], [(item["pk"], item["sk"]) for item in old])
    batch_put(table, [item | {"sk": ops_keys.legacy_ref_sk(item["received_at"],
                                                                item["request_id"])}
                      for item in old])  # fmt: skip


def scan_references(aws: Aws) -> list[dict[str, Any]]:
    return [i for i in aws.items() if ops_keys.is_reference(str(i["sk"])) and i["pk"] == PK]


def test_the_watch_writes_references_past_the_graph(aws: Aws) -> None:
    table = Table(aws.dynamodb, aws.table_name)
    requests_named(3, table)
    refs = scan_references(aws)
    assert len(refs) == 3 and all(str(r["sk"]).startswith("XREF#") for r in refs)


def test_an_identity_export_lists_its_requests_in_order_reading_only_the_next_page(
    aws: Aws,
) -> None:
    # Given an email named by 61 requests (a link names one more the watch did not reference),
    # 5 of them referenced as before session 19 (REQREF#, not moved yet)
    table = Table(aws.dynamodb, aws.table_name)
    listed = requests_named(61, table)
    move_back(aws, table, {rid for _, rid in listed[10:15]})
    # When the operator exports it, page after page
    with queries(aws) as reads:
        answers, records = export_all(table)
    # Then every request is there once, oldest first (a reference's arrival, else the link's)
    exported = [r["request_id"] for r in records if r["record"] == "request"]
    assert exported == [rid for _, rid in listed]
    # And the pages count them as the export always did
    assert [a["progress"]["done"] for a in answers] == [25, 50, 62]
    assert {a["progress"]["total"] for a in answers} == {62}
    assert [a["cursor"] is None for a in answers] == [False, False, True]
    # And the first page read the graph once and the references once; a later page read at
    # most a page of each kind of reference, never every reference again, and the (small)
    # graph only while a request no reference lists was still to come (page 2: the link's)
    identity = [r for r in reads if r.pk == PK]
    first, later = identity[:2], identity[2:]
    assert "sk < :refs" in first[0].condition and first[0].scanned == 2 + 5  # node, link, old
    assert first[1].scanned == 56
    refs = [r for r in later if "BETWEEN" in r.condition]
    assert len(refs) == 4 and all(r.scanned <= PAGE_REQUESTS + 2 for r in refs)
    graphs = [r for r in later if "sk < :refs" in r.condition]
    assert [r.scanned for r in graphs] == [2 + 5] and len(later) == 5


def test_a_cursor_of_the_export_before_session_19_is_refused(aws: Aws) -> None:
    # an export under way across the upgrade starts again (the CLI asks for every page at once)
    table = Table(aws.dynamodb, aws.table_name)
    requests_named(2, table)
    exports = ExportService(table, SECRET, clock=lambda: NOW)
    old_cursor = base64.urlsafe_b64encode(json.dumps({"next": 25}).encode()).decode()
    with pytest.raises(InvalidInput) as refused:
        exports.identity("email", EMAIL, old_cursor)
    assert refused.value.field == "cursor"


def edge(request_id: str, at: str, n: int) -> dict[str, Any]:
    """An edge of the email naming a request (another identity asserted it)."""
    sk = keys.edge_sk(keys.ASSERTED_PREFIX, f"ID#device_id#k{n:04d}")
    return {"pk": PK, "sk": sk, "kind": "asserted", "request_id": request_id,
            "asserted_at": at, "carried": []}  # fmt: skip


def test_requests_named_by_edges_come_once_each_in_order_across_pages(aws: Aws) -> None:
    # Given 40 requests naming the email (referenced), each also named by an edge written
    # after its arrival (3 of them long after: as an import's), and 8 requests only edges name
    table = Table(aws.dynamodb, aws.table_name)
    seeded = [seed_request(table, n, NOW - timedelta(days=2, minutes=7 * n), "completed",
                           email=EMAIL) for n in range(1, 41)]  # fmt: skip
    Watch(table, WatchSettings(backfill_days=5), clock=lambda: NOW).run()
    edges = [edge(s.request_id, iso(s.received_at + timedelta(minutes=10)), n)
             for n, s in enumerate(seeded[:-3])]  # fmt: skip
    edges += [edge(s.request_id, iso(NOW - timedelta(hours=1)), 100 + n)
              for n, s in enumerate(seeded[-3:])]  # fmt: skip
    listed = [(iso(s.received_at), s.request_id) for s in seeded]
    for n in range(6):
        other = seed_request(
            table, 900 + n, NOW - timedelta(days=2, minutes=45 * n + 3), "completed"
        )
        at = iso(other.received_at + timedelta(minutes=1))
        edges.append(edge(other.request_id, at, 200 + n))
        listed.append((at, other.request_id))
    for n in range(2):  # arrived before every other, named by an edge written long after
        other = seed_request(table, 950 + n, NOW - timedelta(days=4, minutes=n), "completed")
        at = iso(NOW - timedelta(minutes=30 + n))
        edges.append(edge(other.request_id, at, 300 + n))
        listed.append((at, other.request_id))
    batch_put(table, [{"pk": PK, "sk": keys.NODE_SK, "kind": "node", "version": 1}, *edges])
    # When the operator exports it, page after page
    answers, records = export_all(table)
    # Then each request came once, at its reference's arrival, else at its edge's time
    exported = [r["request_id"] for r in records if r["record"] == "request"]
    assert exported == [rid for _, rid in sorted(listed)]
    assert [a["progress"]["done"] for a in answers] == [25, 48]
    # And the last page's seal is the chain over every page's records, in order (review s26
    # counsel F1), as the CLI computes it again; no earlier page has one
    chain = export_out.CHAIN_START
    for record in records:
        chain = export_out._link(chain, record)
    assert answers[-1]["seal"] == {"export": {"identifier_type": "email", "identifier_key": KEY},
                                   "exported_at": iso(NOW), "records": len(records),
                                   "records_sha256": chain.hex()}  # fmt: skip
    assert all("seal" not in answer for answer in answers[:-1])


def test_a_cursor_cannot_name_a_request_for_the_export_to_read(aws: Aws) -> None:
    # Given the email's requests, and another person's request
    table = Table(aws.dynamodb, aws.table_name)
    listed = requests_named(30, table)
    other = seed_request(table, 950, NOW - timedelta(days=3), "completed")
    exports = ExportService(table, SECRET, clock=lambda: NOW)
    cursor = json.loads(base64.urlsafe_b64decode(exports.identity("email", EMAIL, None)["cursor"]))
    # When an operator forges a cursor naming that request (as the cursor of session 19 did
    # list requests to read) and placing its position anywhere
    for position in (["", ""], cursor["after"], ["z", "z"]):
        forged = cursor | {"after": position, "alone": [["z", other.request_id]],
                           "unreferenced": True}  # fmt: skip
        token = base64.urlsafe_b64encode(json.dumps(forged).encode()).decode()
        # Then it is refused (its seal was made for another position: review s26 diff B F1),
        # and were it not, the page would hold only the email's own requests
        with pytest.raises(InvalidInput):
            exports.identity("email", EMAIL, token)
        unsealed = {k: v for k, v in forged.items() if k != "seal"}  # the page's own rule
        bare = base64.urlsafe_b64encode(json.dumps(unsealed).encode()).decode()
        records = exports._identity("email", EMAIL, bare)["records"]
        got = {r["request_id"] for r in records if "request_id" in r}
        assert other.request_id not in got
        assert got <= {rid for _, rid in listed}
    # And a cursor whose chain was changed, or made for another export, is refused: the last
    # page's seal (and the log line of it) is only ever the chain the server made
    seal = cursor["seal"]
    for forged_seal in (
        [seal[0], seal[1] - 1, *seal[2:]],
        [seal[0], seal[1], seal[3][:22] + seal[2][22:], seal[3]],
    ):
        forged = json.dumps(cursor | {"seal": forged_seal}).encode()
        with pytest.raises(InvalidInput):
            exports.identity("email", EMAIL, base64.urlsafe_b64encode(forged).decode())
    (real,) = [c for c in [exports.identity("email", EMAIL, None)["cursor"]] if c]
    with pytest.raises(InvalidInput):
        exports.identity("email", "someone.else@example.com", real)
    # And the cursors it gives stay short, whatever the email's requests (the export's seal,
    # its chain so far, adds a fixed ~130 characters: review s26 counsel F1)
    assert len(exports.identity("email", EMAIL, None)["cursor"]) < 400
