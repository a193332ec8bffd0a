"""TransactWriteItems without moto's table copy: the same items, errors and stream records."""

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.dynamodb.models import dynamodb_backends

from local import moto_transactions

REGION = "us-east-1"


def key(pk: str) -> dict[str, Any]:
    return {"pk": {"S": pk}, "sk": {"S": "JOB#webhook"}}


@pytest.fixture(params=["shipped", "installed"])
def client(request: pytest.FixtureRequest) -> Iterator[Any]:
    if request.param == "installed":
        moto_transactions.install()
    try:
        with mock_aws():
            dynamodb = boto3.client("dynamodb", region_name=REGION)
            dynamodb.create_table(
                TableName="t",
                KeySchema=[
                    {"AttributeName": "pk", "KeyType": "HASH"},
                    {"AttributeName": "sk", "KeyType": "RANGE"},
                ],
                AttributeDefinitions=[
                    {"AttributeName": "pk", "AttributeType": "S"},
                    {"AttributeName": "sk", "AttributeType": "S"},
                ],
                BillingMode="PAY_PER_REQUEST",
                StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
            )
            dynamodb.put_item(TableName="t", Item={**key("A"), "status": {"S": "pending"}})
            yield dynamodb
    finally:
        moto_transactions.uninstall()


def state(dynamodb: Any) -> tuple[list[Any], list[str]]:
    items = sorted(dynamodb.scan(TableName="t")["Items"], key=lambda i: i["pk"]["S"])
    shard = dynamodb_backends["123456789012"][REGION].tables["t"].stream_shard
    return items, [record.record["eventName"] for record in shard.items]


def transaction(last_condition: str) -> list[dict[str, Any]]:
    return [
        {"Put": {"TableName": "t", "Item": {**key("B"), "status": {"S": "pending"}},
                 "ConditionExpression": "attribute_not_exists(pk)"}},
        {"Update": {"TableName": "t", "Key": key("A"), "UpdateExpression": "SET #s = :d",
                    "ExpressionAttributeNames": {"#s": "status"},
                    "ExpressionAttributeValues": {":d": {"S": "done"}}}},
        {"Put": {"TableName": "t", "Item": {**key("C"), "n": {"N": "1"}},
                 "ConditionExpression": last_condition}},
    ]  # fmt: skip


def test_a_cancelled_transaction_leaves_items_and_stream_as_they_were(client):
    before = state(client)

    with pytest.raises(ClientError) as raised:
        client.transact_write_items(TransactItems=transaction("attribute_exists(pk)"))

    reasons = [r["Code"] for r in raised.value.response["CancellationReasons"]]
    assert reasons == ["None", "None", "ConditionalCheckFailed"]
    assert state(client) == before


def test_a_committed_transaction_writes_every_item_and_its_stream_records(client):
    client.transact_write_items(TransactItems=transaction("attribute_not_exists(pk)"))

    items, events = state(client)
    assert [(i["pk"]["S"], i.get("status", {}).get("S")) for i in items] == [
        ("A", "done"), ("B", "pending"), ("C", None),
    ]  # fmt: skip
    assert events == ["INSERT", "INSERT", "MODIFY", "INSERT"]
