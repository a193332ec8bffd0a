"""moto with each URL's handler found once answers what moto as shipped answers."""

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.core.botocore_stubber import BotocoreStubber

from local import moto_guard, moto_routes
from local.aws_resources import create_table
from tests.unit.local import test_moto_speedups

REGION = "us-east-1"


@pytest.fixture
def restore() -> Iterator[None]:
    yield
    moto_guard.uninstall()
    moto_routes.uninstall()


def outcome(call: Any) -> Any:
    try:
        answer = call()
    except ClientError as error:
        return ("error", error.response["Error"]["Code"])
    answer.pop("ResponseMetadata", None)
    return answer


def calls() -> list[Any]:
    """DynamoDB, its stream and SQS calls, answers and errors, twice each (route cached)."""
    dynamodb = boto3.client("dynamodb", region_name=REGION)
    streams = boto3.client("dynamodbstreams", region_name=REGION)
    sqs = boto3.client("sqs", region_name=REGION)
    create_table(dynamodb, "t")
    answers: list[Any] = []
    for _ in range(2):
        answers.extend(test_moto_speedups.calls(dynamodb))
        answers.append(outcome(lambda: dynamodb.describe_table(TableName="missing")))
        arn = dynamodb.describe_table(TableName="t")["Table"]["LatestStreamArn"]
        shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]
        iterator = streams.get_shard_iterator(
            StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        records = streams.get_records(ShardIterator=iterator)["Records"]
        answers.append([(r["eventName"], r["dynamodb"]["Keys"]) for r in records])
        url = sqs.create_queue(QueueName="q")["QueueUrl"]
        sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"n": 1}))
        got = sqs.receive_message(QueueUrl=url, MessageAttributeNames=["All"])["Messages"]
        answers.append([m["Body"] for m in got])
        answers.append(outcome(lambda: sqs.get_queue_url(QueueName="missing")))
    return answers


def run(routes: bool) -> list[Any]:
    moto_guard.uninstall()
    moto_routes.uninstall()
    if routes:
        moto_routes.install()
    moto_guard.install()
    with mock_aws():
        return calls()


def test_answers_and_errors_match_moto_as_shipped(restore: None) -> None:
    # Given the same calls on a fresh moto, with and without the kept routes (guard on both)
    shipped = run(routes=False)
    routed = run(routes=True)
    # Then every answer and error is the same, the stream's records and the queue's included
    assert routed == shipped
    assert ("error", "ResourceNotFoundException") in routed
    assert ['{"n": 1}'] in routed
    # and the three services' URLs were each searched once and kept
    kept = {route[0] for route in moto_routes._routes.values() if route}
    assert kept == {"dynamodb", "dynamodbstreams", "sqs"}


def test_the_routes_go_under_the_lock_not_around_it(restore: None) -> None:
    # Given the lock installed first
    moto_guard.install()
    # When the routes would replace what the lock wraps
    # Then they refuse, and the lock's wrapper stays in place
    wrapped = BotocoreStubber.process_request
    with pytest.raises(RuntimeError):
        moto_routes.install()
    assert BotocoreStubber.process_request is wrapped


def test_the_routes_refuse_a_moto_whose_dispatch_no_longer_matches_their_copy(
    restore: None,
) -> None:
    # Given moto's process_request as 5.2.1 spelled it: botocore's request to the handler,
    # never moto's normalized one (a copy of it answered AttributeError on moto 5.2.4+)
    def process_request(self: Any, request: Any) -> Any:
        from moto.moto_api import recorder  # noqa: PLC0415

        recorder._record_request(request)
        return None

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(BotocoreStubber, "process_request", process_request)
        # When the routes are installed over it
        # Then they refuse, naming what moto no longer calls, and swap nothing
        with pytest.raises(RuntimeError, match="normalize_request"):
            moto_routes.install()
        assert not moto_routes.installed()
        assert BotocoreStubber.process_request is process_request
