"""scripts/keep_opt_outs.py on moto: it removes `expires_at` from opted-out STATE items only,
raises an old import's records to its RESOLUTION's expiry (never lowers, never creates), writes
nothing in a dry run, and resumes from the key it printed."""

from datetime import UTC, datetime, timedelta
from typing import Any

from optout.ops import keys as ops_keys
from optout.ops.importer import ImportService
from optout.settings import LOCAL_HASH_KEY
from optout.store import keys
from optout.store.codec import serialize
from optout.store.table import Table
from optout.timestamps import iso
from scripts import keep_opt_outs
from tests.conftest import Aws

EXPIRY = 1_900_000_000
KEY = {"pk": {"S": "ID#device_id#k001"}, "sk": {"S": "STATE"}}
NOTHING = {"sale": False, "share": False, "targeted_advertising": False, "profiling": False,
           "limit_sensitive": False}  # fmt: skip


def state(n: int, **opted: bool) -> dict[str, Any]:
    return {"pk": f"ID#device_id#k{n:03d}", "sk": "STATE", "kind": "state", "id_type": "device_id",
            "opt_out": {**NOTHING, **opted}, "gpc": False, "updated_at": "2026-11-01T00:00:00.000Z",
            "expires_at": EXPIRY}  # fmt: skip


def seed(aws: Aws) -> None:
    items = [
        state(1, sale=True),
        state(2, limit_sensitive=True),
        state(3),  # not opted out: keeps its expiry
        {**state(4), "pk": "ID#email#k004", "sk": "NODE", "kind": "node",
         "opt_out": {"sale": True}},  # not a STATE (a made-up field): keeps its expiry
        {"pk": "REQ#r1", "sk": "EVENT", "kind": "event", "opt_out": {"sale": True},
         "expires_at": EXPIRY},
    ]  # fmt: skip
    for item in items:
        aws.dynamodb.put_item(TableName=aws.table_name, Item=serialize(item))


def expiries(aws: Aws) -> dict[str, int | None]:
    return {f"{i['pk']} {i['sk']}": i.get("expires_at") for i in aws.items()}


def test_it_clears_the_expiry_of_opted_out_states_only(aws: Aws) -> None:
    seed(aws)
    lines: list[str] = []
    progress = keep_opt_outs.keep(aws.dynamodb, aws.table_name, apply=True, report=lines.append)
    assert (progress.found, progress.cleared, progress.changed) == (2, 2, 0)
    assert expiries(aws) == {
        "ID#device_id#k001 STATE": None,
        "ID#device_id#k002 STATE": None,
        "ID#device_id#k003 STATE": EXPIRY,
        "ID#email#k004 NODE": EXPIRY,
        "REQ#r1 EVENT": EXPIRY,
    }
    assert lines and "cleared 2" in lines[-1] and "none (done)" in lines[-1]


def test_a_dry_run_writes_nothing(aws: Aws) -> None:
    seed(aws)
    before = expiries(aws)
    progress = keep_opt_outs.keep(aws.dynamodb, aws.table_name, report=lambda _: None)
    assert progress.found == 2 and progress.cleared == 0
    assert expiries(aws) == before


def test_one_page_at_a_time_resumes_where_it_stopped(aws: Aws) -> None:
    seed(aws)
    found = cleared = pages = 0
    after = None
    while True:
        step = keep_opt_outs.keep(aws.dynamodb, aws.table_name, apply=True, start_after=after,
                                  max_pages=1, page_size=2, report=lambda _: None)  # fmt: skip
        found, cleared, pages = found + step.found, cleared + step.cleared, pages + step.pages
        after = step.after
        if after is None:
            break
    assert pages >= 3 and (found, cleared) == (2, 2)
    assert sum(v is None for v in expiries(aws).values()) == 2


def test_an_opt_in_written_after_the_scan_keeps_its_expiry(aws: Aws) -> None:
    # Given an opted-out STATE the scan reads, then an opt-in rewrites before the update
    aws.dynamodb.put_item(TableName=aws.table_name, Item=serialize(state(1, sale=True)))
    progress = keep_opt_outs.Progress()
    test, names, values = keep_opt_outs._opted_out()
    aws.dynamodb.put_item(TableName=aws.table_name, Item=serialize(state(1)))
    keep_opt_outs._clear(aws.dynamodb, aws.table_name, KEY, test, names, values, progress)
    assert (progress.cleared, progress.changed) == (0, 1)
    assert expiries(aws) == {"ID#device_id#k001 STATE": EXPIRY}
    # And an item deleted meanwhile (the TTL) is not created again
    aws.dynamodb.delete_item(TableName=aws.table_name, Key=KEY)
    keep_opt_outs._clear(aws.dynamodb, aws.table_name, KEY, test, names, values, progress)
    assert aws.items() == []


# -- imported requests' records (review s18 S1) -------------------------------------------------

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
RETENTION = 731
OLD = int((NOW - timedelta(days=700) + timedelta(days=RETENTION)).timestamp())  # 31 days left
ANSWERED = int((NOW + timedelta(days=RETENTION)).timestamp())  # the RESOLUTION's, from now


def import_old_row(aws: Aws) -> dict[str, Any]:
    """A row received 700 days ago, imported, resolved and folded now, its records written as
    before 2026-12-01: the EVENT, its REQREFs and FOLDED expire 731 days from the old receipt."""
    table = Table(aws.dynamodb, aws.table_name)
    row = {"line": 2, "external_id": "old-1", "received_at": iso(NOW - timedelta(days=700)),
           "email": "old.ks18@example.com", "device_id": "dev-ks18-0000000001"}  # fmt: skip
    service = ImportService(table, LOCAL_HASH_KEY.encode(), RETENTION)
    request_id = service.import_rows([row], NOW, "arn:aws:iam::123456789012:user/op").request_ids[0]
    pk = keys.request_pk(request_id.request_id)
    event = next(i for i in aws.items() if (i["pk"], i["sk"]) == (pk, keys.EVENT_SK))
    records = [{**event, "expires_at": OLD},
               {"pk": pk, "sk": keys.RESOLUTION_SK, "kind": "resolution", "expires_at": ANSWERED},
               {"pk": pk, "sk": ops_keys.FOLDED_SK, "kind": "folded", "version": 1,
                "expires_at": OLD}]  # fmt: skip
    records += reqrefs(event, OLD)
    for item in records:
        aws.dynamodb.put_item(TableName=aws.table_name, Item=serialize(item))
    return event


def reqrefs(event: dict[str, Any], expires: int) -> list[dict[str, Any]]:
    sk = ops_keys.ref_sk(str(event["received_at"]), str(event["request_id"]))
    return [{"pk": keys.identity_pk(i["type"], i["key"]), "sk": sk, "kind": "reqref",
             "request_id": event["request_id"], "expires_at": expires}
            for i in event["identifiers"]]  # fmt: skip


def a_normal_request(aws: Aws) -> None:
    """Captured here: its EVENT expires from its receipt, a little before its RESOLUTION."""
    event = {"pk": "REQ#r-normal", "sk": keys.EVENT_SK, "kind": "event", "request_id": "r-normal",
             "received_at": iso(NOW), "evidence": {"jurisdiction": "US-CA"},
             "identifiers": [{"type": "email", "key": "k-normal", "value": "n@example.com"}],
             "expires_at": OLD}  # fmt: skip
    items = [event, {"pk": "REQ#r-normal", "sk": keys.RESOLUTION_SK, "expires_at": ANSWERED},
             {"pk": "REQ#r-normal", "sk": ops_keys.FOLDED_SK, "expires_at": OLD},
             *reqrefs(event, OLD)]  # fmt: skip
    for item in items:
        aws.dynamodb.put_item(TableName=aws.table_name, Item=serialize(item))


def test_an_old_import_s_records_are_raised_to_its_resolution_s_expiry(aws: Aws) -> None:
    # Given an old row imported before the fix (retention 731, 700 days old) and a normal request
    event = import_old_row(aws)
    a_normal_request(aws)
    before = expiries(aws)
    mine = {k for k in before if k.startswith(("REQ#", "ID#")) and event["request_id"] in k}
    assert len(mine) == 5 and {before[k] for k in mine} == {OLD, ANSWERED}  # 2 REQREFs
    # When the script runs dry: it counts the import, writes nothing, prints no values
    lines: list[str] = []
    dry = keep_opt_outs.keep(aws.dynamodb, aws.table_name, report=lines.append)
    assert (dry.imports, dry.raised, dry.found) == (1, 0, 0)
    assert expiries(aws) == before
    assert "imports expiring before their resolution 1, would raise" in lines[-1]
    assert not any("example.com" in line or "dev-ks18" in line for line in lines)
    # Then with --apply: the EVENT, FOLDED and both REQREFs expire with the RESOLUTION
    done = keep_opt_outs.keep(aws.dynamodb, aws.table_name, apply=True, report=lambda _: None)
    assert (done.imports, done.raised, done.kept) == (1, 4, 0)
    after = expiries(aws)
    assert {k: after[k] for k in mine} == dict.fromkeys(mine, ANSWERED)
    assert {k: v for k, v in after.items() if k not in mine} == {
        k: v for k, v in before.items() if k not in mine
    }  # the normal request untouched
    # And a second run finds nothing to raise and changes nothing
    again = keep_opt_outs.keep(aws.dynamodb, aws.table_name, apply=True, report=lambda _: None)
    assert (again.imports, again.raised, again.kept) == (0, 0, 0)
    assert expiries(aws) == after


def test_an_import_s_item_gone_or_kept_longer_is_not_written(aws: Aws) -> None:
    # Given an old import whose email REQREF TTL deleted, and whose FOLDED expires later already
    event = import_old_row(aws)
    gone = reqrefs(event, OLD)[0]
    aws.dynamodb.delete_item(TableName=aws.table_name,
                             Key=serialize({"pk": gone["pk"], "sk": gone["sk"]}))  # fmt: skip
    later = ANSWERED + 86_400
    aws.dynamodb.update_item(
        TableName=aws.table_name,
        Key=serialize({"pk": event["pk"], "sk": ops_keys.FOLDED_SK}),
        UpdateExpression="SET expires_at = :t", ExpressionAttributeValues={":t": {"N": str(later)}},
    )  # fmt: skip
    # When the script applies
    done = keep_opt_outs.keep(aws.dynamodb, aws.table_name, apply=True, report=lambda _: None)
    # Then the REQREF is not created again, the FOLDED is not lowered, the rest is raised
    assert (done.raised, done.kept) == (2, 2)
    after = expiries(aws)
    assert f"{gone['pk']} {gone['sk']}" not in after
    assert after[f"{event['pk']} FOLDED"] == later
    assert after[f"{event['pk']} EVENT"] == ANSWERED


def test_an_import_s_references_not_moved_yet_are_raised_under_their_old_key(aws: Aws) -> None:
    # Given an old import whose references are still under REQREF# (move_references.py not run)
    event = import_old_row(aws)
    for ref in reqrefs(event, OLD):
        aws.dynamodb.delete_item(TableName=aws.table_name,
                                 Key=serialize({"pk": ref["pk"], "sk": ref["sk"]}))  # fmt: skip
        old_key = ops_keys.legacy_ref_sk(str(event["received_at"]), str(event["request_id"]))
        aws.dynamodb.put_item(TableName=aws.table_name, Item=serialize(ref | {"sk": old_key}))
    # When the script applies
    done = keep_opt_outs.keep(aws.dynamodb, aws.table_name, apply=True, report=lambda _: None)
    # Then both references are raised where they are, and no XREF# item is created
    assert (done.imports, done.raised, done.kept) == (1, 4, 0)
    after = expiries(aws)
    refs = {k: v for k, v in after.items() if " REQREF#" in k or " XREF#" in k}
    assert len(refs) == 2 and all(" REQREF#" in k for k in refs)
    assert set(refs.values()) == {ANSWERED}
