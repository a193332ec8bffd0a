"""A backfill's record stays small however many steps its chain takes (review s30 receipts F3).

Each step's line was a `steps.<hex>` entry of the one BACKFILL record: about 263 bytes with
three jobs, so DynamoDB refused the record's UpdateItem past 400 KB (about 1,556 steps) and the
backfill stalled. moto does not enforce that limit on UpdateItem, so the size is measured here
with the bench's item-size rule (bench.counting.item_size, DynamoDB's documented sizes)."""

import uuid

from bench.counting import item_size
from optout.ops import backfills
from optout.store import keys
from optout.store.codec import serialize
from optout.store.table import Table
from tests.conftest import Aws

STEPS = 2_000  # past the ~1,556 steps a single record could hold
ONE_KB = 1024


def test_a_long_backfill_keeps_every_item_under_1_kb_and_its_figures_whole(aws: Aws) -> None:
    table = Table(aws.dynamodb, aws.table_name)
    first = str(uuid.uuid4())
    record = keys.backfill_sk(2026, first)
    operation: dict[str, str | int] = {"system": "webhook", "record": record}
    started = backfills.record_item(first, operation, "2026-12-03T00:00:00Z", "arn:op", 1)
    table.client.put_item(TableName=table.name, Item=serialize(started))
    # When a chain of STEPS steps each records three jobs (three purpose sets) and 200 people
    for n in range(STEPS):
        jobs = [f"{first}~{uuid.uuid4().hex[:12]}" for _ in range(3)]
        line = {"job_request_id": jobs[0], "job_request_ids": jobs, "identities": 200}
        last = "2026-12-03T01:00:00Z" if n == STEPS - 1 else None
        backfills.record_step(table, record, uuid.uuid4().hex[:12], line, last, 2)
    # Then no item of the partition is near DynamoDB's 400 KB: each fits one write unit
    raw = aws.dynamodb.get_paginator("query").paginate(
        TableName=table.name, KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": keys.BACKFILL_PK}},
    )  # fmt: skip
    sizes = [item_size(item) for page in raw for item in page["Items"]]
    assert max(sizes) < ONE_KB
    # ... and the year's record reads every step, finished, with its figures
    (found,) = backfills.records_since(table, 2026)
    assert (len(found["steps"]), found["finished_at"]) == (STEPS, "2026-12-03T01:00:00Z")
    row = backfills.figures([found], {})["webhook"]
    assert (row["backfills"], row["unfinished"], row["identities"]) == (1, 0, 200 * STEPS)


def test_a_record_written_before_keeps_its_own_step_lines_beside_new_ones(aws: Aws) -> None:
    # Given a backfill started before 2026-12-03 (its lines in the record) still running
    table = Table(aws.dynamodb, aws.table_name)
    first = str(uuid.uuid4())
    record = keys.backfill_sk(2026, first)
    operation: dict[str, str | int] = {"system": "meta", "record": record}
    old = backfills.record_item(first, operation, "2026-12-02T00:00:00Z", "arn:op", 1)
    old["steps"] = {"aaaaaaaaaaaa": {"job_request_id": f"{first}~aaaaaaaaaaaa", "identities": 2}}
    table.client.put_item(TableName=table.name, Item=serialize(old))
    # When its next step records its line (and a step of a record past its retention does)
    backfills.record_step(table, record, "bbbbbbbbbbbb",
                          {"job_request_id": f"{first}~bbbbbbbbbbbb", "identities": 3},
                          "2026-12-03T00:00:00Z", 2)  # fmt: skip
    gone = keys.backfill_sk(2026, str(uuid.uuid4()))
    backfills.record_step(table, gone, "cccccccccccc", {"identities": 1}, None, 2)
    # ... and a retry of the step writes another line: the first stands
    backfills.record_step(table, record, "bbbbbbbbbbbb", {"identities": 99}, None, 2)
    # Then the year's records are the one backfill, with both lines, finished
    (found,) = backfills.records_since(table, 2026)
    assert found["steps"] == {
        "aaaaaaaaaaaa": {"job_request_id": f"{first}~aaaaaaaaaaaa", "identities": 2},
        "bbbbbbbbbbbb": {"job_request_id": f"{first}~bbbbbbbbbbbb", "identities": 3},
    }
    assert found["finished_at"] == "2026-12-03T00:00:00Z"
    assert backfills.step_jobs(found["steps"]["bbbbbbbbbbbb"]) == [f"{first}~bbbbbbbbbbbb"]
