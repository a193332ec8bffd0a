"""scripts/keep_opt_outs.py on moto: it removes `expires_at` from opted-out STATE items only,
writes nothing in a dry run, and resumes from the key it printed."""

from typing import Any

from optout.store.codec import serialize
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
