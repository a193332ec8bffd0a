"""Drive capture -> stream -> resolver in one test, over moto, with the real handlers.

The stream is read from moto's DynamoDB Streams and each record converted to the shape Lambda
delivers (local/stream_records.py), so the resolver sees what it sees in production.
"""

import json
from dataclasses import dataclass, field
from datetime import datetime
from types import ModuleType
from typing import Any

import boto3
import pytest

from local.aws_resources import create_queues
from local.moto_guard import guarded
from local.stream_records import to_lambda_record
from optout.store.codec import deserialize
from tests.conftest import Aws
from tests.support.http_events import http_event, json_body
from tests.support.lambdas import invoke, load_function

QUEUE_KEYS = ["webhook", "segment", "braze", "salesforce", "googleads", "meta", "tradedesk"]


@dataclass
class Pipeline:
    aws: Aws
    capture: ModuleType
    admin: ModuleType
    resolver: ModuleType
    queue_urls: dict[str, str]
    _iterators: dict[str, str] = field(default_factory=dict)

    # -- the API --------------------------------------------------------------------------

    def function_for(self, path: str) -> ModuleType:
        """The handler template.yaml routes this path to (the IAM routes: the admin function)."""
        iam_route = path == "/v1/identity-links" or path.startswith("/v1/admin/")
        return self.admin if iam_route else self.capture

    def post(self, path: str, body: Any, **kwargs: Any) -> dict[str, Any]:
        answer = invoke(self.function_for(path), http_event("POST", path, body, **kwargs))
        assert answer["statusCode"] == 202, answer["body"]
        result: dict[str, Any] = json_body(answer)
        return result

    def get(self, path: str, **params: str) -> dict[str, Any]:
        answer = invoke(self.function_for(path), http_event("GET", path, path_parameters=params))
        assert answer["statusCode"] == 200, answer["body"]
        result: dict[str, Any] = json_body(answer)
        return result

    def get_at(self, at: datetime, path: str, **params: str) -> dict[str, Any]:
        """`get`, as read at `at` (the public status replays earlier answers' times)."""
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr("optout.queries.read_at", lambda: at)
            return self.get(path, **params)

    # -- the stream ---------------------------------------------------------------------

    def stream_records(self) -> list[dict[str, Any]]:
        """New records on the table's stream since the last call, in Lambda's shape."""
        streams = boto3.client("dynamodbstreams", region_name="us-east-1")
        arn = self.aws.stream_arn
        records: list[dict[str, Any]] = []
        shards = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]
        for shard in shards:
            shard_id = shard["ShardId"]
            iterator = (
                self._iterators.get(shard_id)
                or streams.get_shard_iterator(
                    StreamArn=arn, ShardId=shard_id, ShardIteratorType="TRIM_HORIZON"
                )["ShardIterator"]
            )
            page = streams.get_records(ShardIterator=iterator)
            records.extend(to_lambda_record(r, arn) for r in page["Records"])
            self._iterators[shard_id] = page["NextShardIterator"]
        return records

    def event_records(self) -> list[dict[str, Any]]:
        """New records the resolver's FilterCriteria lets through: inserted EVENT items."""
        return [
            r
            for r in self.stream_records()
            if r["eventName"] == "INSERT" and r["dynamodb"]["NewImage"]["sk"]["S"] == "EVENT"
        ]

    def resolve(self, records: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        batch = self.event_records() if records is None else records
        result: dict[str, Any] = invoke(self.resolver, {"Records": batch})
        return result

    # -- the queues -------------------------------------------------------------------------

    def drain(self, queue_key: str) -> list[dict[str, Any]]:
        """Receive (and delete) every message waiting on a system's jobs queue."""
        url = self.queue_urls[queue_key]
        bodies: list[dict[str, Any]] = []
        while True:
            page = self.aws.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)
            messages = page.get("Messages", [])
            if not messages:
                return bodies
            for message in messages:
                bodies.append(json.loads(message["Body"]))
                self.aws.sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])

    def drain_all(self) -> dict[str, list[dict[str, Any]]]:
        return {key: self.drain(key) for key in self.queue_urls}

    def items(self, prefix: str = "") -> list[dict[str, Any]]:
        return [i for i in self.aws.items() if i["pk"].startswith(prefix)]

    def partition(self, pk: str) -> list[dict[str, Any]]:
        """Every item of one partition, by a Query: a Scan runs each item of the whole table
        through moto's response serialiser, seconds per thousand items (`items` above)."""
        pages = self.aws.dynamodb.get_paginator("query").paginate(
            TableName=self.aws.table_name,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": pk}},
            ConsistentRead=True,
        )
        with guarded():  # moto's Query reads only this partition, as DynamoDB does
            return [deserialize(raw) for page in pages for raw in page["Items"]]


def build_pipeline(aws: Aws, monkeypatch: pytest.MonkeyPatch, **env: str) -> Pipeline:
    queue_urls, _, _ = create_queues(aws.sqs, QUEUE_KEYS, "optout-test")
    any_url = queue_urls["webhook"]
    monkeypatch.setenv("QUEUE_URL_TEMPLATE", any_url.replace("-webhook-jobs", "-{queue_key}-jobs"))
    monkeypatch.setenv("SYSTEMS_CONFIG", "local/systems.json")
    monkeypatch.setenv("LOCAL_STACK_URL", "http://127.0.0.1:9")
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return Pipeline(
        aws,
        load_function("capture_api"),
        load_function("admin_api"),
        load_function("resolver"),
        queue_urls,
    )
