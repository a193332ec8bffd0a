"""The benchmark's capacity estimate bills what DynamoDB bills: a transaction's every action
twice, an update on the item's size; and the time moto spends answering is kept apart from
the functions' own. Behaviour checks on the counter (the last against moto, in process)."""

import time
from collections import defaultdict
from typing import Any

import boto3
from moto import mock_aws

from bench import counting
from bench.counting import CallCounter


def _item(pk: str, padding: int) -> dict[str, Any]:
    return {"pk": {"S": pk}, "sk": {"S": "JOB#x"}, "blob": {"S": "x" * padding}}


def test_each_action_of_a_transaction_costs_twice_its_write_units() -> None:
    # Given a counter and a transaction of a 1.5 KB put and an update of a small item
    counter = CallCounter()
    body = {
        "TransactItems": [
            {"Put": {"TableName": "t", "Item": _item("A", 1500)}},
            {
                "Update": {
                    "TableName": "t",
                    "Key": {"pk": {"S": "B"}, "sk": {"S": "DELIVERY#x"}},
                    "UpdateExpression": "SET n = :n",
                    "ExpressionAttributeValues": {":n": {"N": "1"}},
                }
            },
        ]
    }
    # When its capacity is estimated
    wru, rru = counter._capacity("TransactWriteItems", body, {})
    # Then the put costs 2 x 2 units (two started KB) and the update 2 x 1
    assert (wru, rru) == (6.0, 0.0)


def test_an_update_after_a_transactional_put_is_billed_on_the_item_the_put_wrote() -> None:
    # Given a 1.5 KB item written inside a transaction
    counter = CallCounter()
    counter._capacity(
        "TransactWriteItems", {"TransactItems": [{"Put": {"Item": _item("A", 1500)}}]}, {}
    )
    # When a plain update of that item follows
    update = {"Key": {"pk": {"S": "A"}, "sk": {"S": "JOB#x"}}, "ExpressionAttributeValues": {}}
    wru, _ = counter._capacity("UpdateItem", update, {})
    # Then it costs the item's two started KB, not the minimum
    assert wru == 2.0


def test_the_time_moto_spends_answering_is_counted_apart_from_the_stage() -> None:
    # Given a counter hooked into an emulated AWS, and a stage whose code waits 50 ms itself
    # besides one call to the emulator
    with mock_aws():
        counter = CallCounter()
        counter.install()
        sqs = boto3.client("sqs", region_name="us-east-1")
        before = counting.emulator_seconds()
        started = time.perf_counter()
        # When the stage runs
        with counter.stage("resolver") as tally:
            sqs.create_queue(QueueName="q")
            time.sleep(0.05)
        elapsed = time.perf_counter() - started
    # Then the emulator's time is the call's share only: some, and not the stage's own wait
    assert tally.calls["sqs:CreateQueue"] == 1
    assert 0 < tally.emulator_seconds == counting.emulator_seconds() - before
    assert tally.emulator_seconds < elapsed - 0.05


def test_an_update_is_billed_on_the_larger_of_the_item_before_and_after_as_moto_holds_it() -> None:
    # Given a counter hooked into an emulated table holding a 1.5 KB item
    with mock_aws():
        counter = CallCounter()
        counter.install()
        dynamodb = boto3.client("dynamodb", region_name="us-east-1")
        dynamodb.create_table(
            TableName="t",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"},
                       {"AttributeName": "sk", "KeyType": "RANGE"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                                  {"AttributeName": "sk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )  # fmt: skip
        dynamodb.put_item(TableName="t", Item=_item("A", 1500))
        key = {"pk": {"S": "A"}, "sk": {"S": "JOB#x"}}
        small = {":b": {"S": "y"}}
        # When one update replaces the large attribute with a small one, and a second follows
        with counter.stage("worker") as shrink:
            dynamodb.update_item(TableName="t", Key=key, UpdateExpression="SET #b = :b",
                                 ExpressionAttributeNames={"#b": "blob"},
                                 ExpressionAttributeValues=small)  # fmt: skip
        with counter.stage("worker") as after:
            dynamodb.update_item(TableName="t", Key=key, UpdateExpression="SET #b = :b",
                                 ExpressionAttributeNames={"#b": "blob"},
                                 ExpressionAttributeValues=small)  # fmt: skip
    # Then the first costs the item before it (two started KB), the second the small item's one
    # (not the sizes seen so far plus each request's values)
    assert (shrink.wru, after.wru) == (2.0, 1.0)


def test_write_units_are_told_apart_by_the_kind_of_item_their_key_names() -> None:
    # Given a transaction putting a link and updating a node, and a plain put of a job
    counter = CallCounter()
    node = {"pk": {"S": "ID#email#k"}, "sk": {"S": "NODE"}}
    link = {"pk": {"S": "ID#email#k"}, "sk": {"S": "LINK#device_id#d"}}
    job = {"pk": {"S": "REQ#r1"}, "sk": {"S": "JOB#webhook"}, "blob": {"S": "x" * 1500}}
    transaction = {"TransactItems": [
        {"Put": {"Item": link}},
        {"Update": {"Key": node, "ExpressionAttributeValues": {":n": {"N": "1"}}}},
    ]}  # fmt: skip
    # When the counter bills them as the hook does
    counter._kinds = defaultdict(float)
    counter._capacity("TransactWriteItems", transaction, {})
    counter._capacity("PutItem", {"Item": job}, {})
    # Then each kind carries its own units: a transaction's twice, the 1.5 KB job two
    assert dict(counter._kinds) == {"link": 2.0, "node": 2.0, "job": 2.0}
