"""Shared fixtures: a moto account with the table created from template.yaml."""

import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from moto import mock_aws

from local.aws_resources import create_table
from optout.store.codec import deserialize

TEST_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
    "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_SERVICE_NAME": "optout-bridge",
    "POWERTOOLS_METRICS_NAMESPACE": "OptOutBridge",
    "POWERTOOLS_DEV": "false",
    "TABLE_NAME": "optout-test",
    "LOCAL_MODE": "true",  # development hash and token keys (README: Configuration)
    "ALLOWED_ORIGINS": "https://shop.example.com",
}


@pytest.fixture(autouse=True)
def _test_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in TEST_ENV.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("HASH_KEY_SECRET_NAME", raising=False)


@dataclass
class Aws:
    dynamodb: Any
    sqs: Any
    table_name: str
    stream_arn: str

    def items(self) -> list[dict[str, Any]]:
        pages = self.dynamodb.get_paginator("scan").paginate(TableName=self.table_name)
        return [deserialize(raw) for page in pages for raw in page["Items"]]


@pytest.fixture
def aws() -> Iterator[Aws]:
    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name="us-east-1")
        stream_arn = create_table(dynamodb, os.environ["TABLE_NAME"])
        sqs = boto3.client("sqs", region_name="us-east-1")
        yield Aws(dynamodb, sqs, os.environ["TABLE_NAME"], stream_arn)


@pytest.fixture
def dynamodb_calls(aws: Aws) -> Iterator[list[str]]:
    """Names of the DynamoDB operations called by clients created after this fixture."""
    calls: list[str] = []
    assert boto3.DEFAULT_SESSION is not None  # moto's mock (the aws fixture) set it up afresh
    hooks = boto3.DEFAULT_SESSION.events
    hooks.register(
        "before-call.dynamodb",
        lambda event_name, **_: calls.append(event_name.split(".")[-1]),
        unique_id="count-dynamodb-calls",
    )
    yield calls
    hooks.unregister("before-call.dynamodb", unique_id="count-dynamodb-calls")
