"""The pollers' direct reads of moto's memory answer what its API answers."""

from typing import Any

import boto3

from local.moto_reads import StreamReader, has_visible_message
from local.stream_records import to_lambda_record
from tests.conftest import Aws


def put(aws: Aws, pk: str, sk: str = "EVENT") -> None:
    aws.dynamodb.put_item(TableName=aws.table_name, Item={"pk": {"S": pk}, "sk": {"S": sk}})


def api_records(aws: Aws) -> list[dict[str, Any]]:
    streams = boto3.client("dynamodbstreams", region_name="us-east-1")
    shard = streams.describe_stream(StreamArn=aws.stream_arn)["StreamDescription"]["Shards"][0]
    iterator = streams.get_shard_iterator(
        StreamArn=aws.stream_arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    records: list[dict[str, Any]] = streams.get_records(ShardIterator=iterator)["Records"]
    return records


def test_stream_records_read_in_place_are_the_records_getrecords_returns(aws: Aws) -> None:
    # Given an insert, an update and a delete on the table
    put(aws, "REQ#1")
    aws.dynamodb.update_item(
        TableName=aws.table_name,
        Key={"pk": {"S": "REQ#1"}, "sk": {"S": "EVENT"}},
        UpdateExpression="SET n = :n",
        ExpressionAttributeValues={":n": {"N": "1"}},
    )
    aws.dynamodb.delete_item(
        TableName=aws.table_name, Key={"pk": {"S": "REQ#1"}, "sk": {"S": "EVENT"}}
    )
    expected = [to_lambda_record(r, aws.stream_arn) for r in api_records(aws)]
    # When the reader reads the shard from its start
    reader = StreamReader(aws.stream_arn)
    batch = reader.read(reader.start("TRIM_HORIZON"))
    # Then it finds the same records, in Lambda's shape the same events
    assert [to_lambda_record(r, aws.stream_arn) for r in batch.records] == expected
    assert [r["eventName"] for r in expected] == ["INSERT", "MODIFY", "REMOVE"]


def test_records_already_read_are_dropped_and_numbering_goes_on(aws: Aws) -> None:
    # Given three records, two of them read
    reader = StreamReader(aws.stream_arn)
    start = reader.start("TRIM_HORIZON")
    for n in range(3):
        put(aws, f"REQ#{n}")
    first = reader.read(start, limit=2)
    # When the reader goes on from there and the table is written again
    second = reader.read(first.next_sequence)
    put(aws, "REQ#3")
    third = reader.read(second.next_sequence)
    # Then every record comes once, in order, with increasing sequence numbers
    keys = [r["dynamodb"]["Keys"]["pk"]["S"] for b in (first, second, third) for r in b.records]
    assert keys == ["REQ#0", "REQ#1", "REQ#2", "REQ#3"]
    numbers = [
        int(r["dynamodb"]["SequenceNumber"]) for b in (first, second, third) for r in b.records
    ]
    assert numbers == sorted(numbers) and len(set(numbers)) == 4
    # And moto keeps only what was not read yet
    assert reader.start("LATEST") == third.next_sequence
    assert reader.read(third.next_sequence).records == []


def test_a_queue_has_a_visible_message_only_while_a_receive_would_get_it(aws: Aws) -> None:
    url = aws.sqs.create_queue(QueueName="peek")["QueueUrl"]
    assert has_visible_message(url) is False
    aws.sqs.send_message(QueueUrl=url, MessageBody="{}")
    assert has_visible_message(url) is True
    aws.sqs.receive_message(QueueUrl=url, VisibilityTimeout=30)
    assert has_visible_message(url) is False  # in flight
    aws.sqs.send_message(QueueUrl=url, MessageBody="{}", DelaySeconds=30)
    assert has_visible_message(url) is False  # delayed
