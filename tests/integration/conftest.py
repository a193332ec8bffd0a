"""Fixtures shared by the integration tests: the table read through the domain code, and
Secrets Manager with the secrets cache's clock held still."""

import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from local.moto_guard import guarded
from optout import secrets
from optout.store.table import Table
from tests.conftest import Aws


@pytest.fixture
def table(aws: Aws) -> Iterator[Table]:
    """The test account's table, with moto's Query scoped to the partition asked for (as
    DynamoDB reads it) instead of sorting the whole table: local/moto_guard.py."""
    with guarded():
        yield Table(aws.dynamodb, aws.table_name)


@pytest.fixture
def manager(aws: Aws) -> Any:
    """moto's Secrets Manager in the test account."""
    return boto3.client("secretsmanager", region_name="us-east-1")


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """optout.secrets' cache, emptied, on a clock the test moves (`clock[0] += seconds`)."""
    now = [1000.0]
    monkeypatch.setattr(time, "monotonic", lambda: now[0])
    monkeypatch.setattr(secrets, "_cached", {})
    return now
