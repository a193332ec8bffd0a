"""scripts/move_references.py on moto: it moves every `REQREF#` reference to its `XREF#` key
with the same attributes, writes nothing in a dry run, keeps a reference already moved by a
run stopped half-way, resumes from the key it printed, and a second run changes nothing. The
identity export gives the same pages before and after."""

from typing import Any

from optout.ops import keys as ops_keys
from optout.store.codec import serialize
from optout.store.table import Table
from scripts import move_references
from tests.conftest import Aws
from tests.integration.test_identity_references import (
    export_all,
    move_back,
    requests_named,
    scan_references,
)

EXPIRY = 1_900_000_000


def old_reference(pk: str, n: int, expires: int = EXPIRY) -> dict[str, Any]:
    received = f"2026-11-0{n}T10:00:00.000Z"
    return {"pk": pk, "sk": ops_keys.legacy_ref_sk(received, f"r-{n}"), "kind": "reqref",
            "request_id": f"r-{n}", "received_at": received, "event_type": "opt_out",
            "expires_at": expires}  # fmt: skip


def seed(aws: Aws) -> list[dict[str, Any]]:
    old = [old_reference("ID#email#k001", n) for n in (1, 2, 3)]
    old += [old_reference("ID#device_id#k002", n) for n in (1, 4)]
    others = [{"pk": "ID#email#k001", "sk": "NODE", "kind": "node", "expires_at": EXPIRY},
              {"pk": "ID#email#k001", "sk": "STATE", "kind": "state"},
              {"pk": "REQ#r-1", "sk": "EVENT", "kind": "event", "request_id": "r-1"}]  # fmt: skip
    for item in old + others:
        aws.dynamodb.put_item(TableName=aws.table_name, Item=serialize(item))
    return old


def moved(item: dict[str, Any]) -> dict[str, Any]:
    return item | {"sk": "XREF#" + item["sk"].removeprefix("REQREF#")}


def by_key(aws: Aws) -> dict[tuple[str, str], dict[str, Any]]:
    return {(i["pk"], i["sk"]): i for i in aws.items()}


def test_a_dry_run_counts_and_writes_nothing(aws: Aws) -> None:
    seed(aws)
    before = by_key(aws)
    lines: list[str] = []
    progress = move_references.move(aws.dynamodb, aws.table_name, report=lines.append)
    assert (progress.found, progress.written, progress.deleted) == (5, 0, 0)
    assert by_key(aws) == before
    assert "would move 5" in lines[-1] and "none (done)" in lines[-1]


def test_apply_moves_every_reference_with_its_attributes_and_again_changes_nothing(
    aws: Aws,
) -> None:
    # Given 5 references under REQREF# in two identities' partitions, and other items
    old = seed(aws)
    others = {k: v for k, v in by_key(aws).items() if not k[1].startswith("REQREF#")}
    # When the script applies
    done = move_references.move(aws.dynamodb, aws.table_name, apply=True, report=lambda _: None)
    # Then each is under XREF# with the same attributes (its expiry too), none under REQREF#
    assert (done.found, done.written, done.there, done.deleted) == (5, 5, 0, 5)
    after = by_key(aws)
    assert after == others | {(i["pk"], moved(i)["sk"]): moved(i) for i in old}
    # And a second run finds nothing to move and changes nothing
    again = move_references.move(aws.dynamodb, aws.table_name, apply=True, report=lambda _: None)
    assert (again.found, again.written, again.deleted) == (0, 0, 0)
    assert by_key(aws) == after


def test_a_reference_moved_by_a_run_stopped_half_way_is_kept_and_its_old_key_deleted(
    aws: Aws,
) -> None:
    # Given a run that wrote one new item (whose expiry was raised since) and stopped
    old = seed(aws)
    there = moved(old[0]) | {"expires_at": EXPIRY + 86_400}
    aws.dynamodb.put_item(TableName=aws.table_name, Item=serialize(there))
    # When the script runs again
    done = move_references.move(aws.dynamodb, aws.table_name, apply=True, report=lambda _: None)
    # Then that item is left as it is, the others are moved, no REQREF# is left
    assert (done.written, done.there, done.deleted) == (4, 1, 5)
    after = by_key(aws)
    assert after[(there["pk"], there["sk"])] == there
    assert not any(sk.startswith("REQREF#") for _, sk in after)


def test_one_page_at_a_time_resumes_where_it_stopped(aws: Aws) -> None:
    seed(aws)
    found = deleted = pages = 0
    after = None
    while True:
        step = move_references.move(aws.dynamodb, aws.table_name, apply=True, start_after=after,
                                    max_pages=1, page_size=2, report=lambda _: None)  # fmt: skip
        found, deleted, pages = found + step.found, deleted + step.deleted, pages + step.pages
        after = step.after
        if after is None:
            break
    assert pages >= 4 and (found, deleted) == (5, 5)
    assert sum(sk.startswith("XREF#") for _, sk in by_key(aws)) == 5


def test_the_identity_export_is_the_same_before_and_after_the_move(aws: Aws) -> None:
    # Given an email named by 30 requests, all referenced as before session 19
    table = Table(aws.dynamodb, aws.table_name)
    listed = requests_named(30, table)
    move_back(aws, table, {rid for _, rid in listed})
    assert all(str(r["sk"]).startswith("REQREF#") for r in scan_references(aws))
    before, _ = export_all(table)
    # When the references are moved
    move_references.move(aws.dynamodb, aws.table_name, apply=True, report=lambda _: None)
    # Then the export's pages are the same (cursors aside: the later ones no longer ask for
    # REQREF# references)
    after, _ = export_all(table)
    assert all(str(r["sk"]).startswith("XREF#") for r in scan_references(aws))
    assert [(a["records"], a["progress"]) for a in after] == [
        (b["records"], b["progress"]) for b in before
    ]
