"""Fixtures shared by the integration tests: the table read through the domain code, and
Secrets Manager with the secrets cache's clock held still."""

import os
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from local import moto_expressions
from local.moto_guard import guarded
from optout import secrets
from optout.observability import metrics
from optout.store.table import Table
from tests.conftest import Aws
from tests.support.emf import EmittedMetrics


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


@pytest.fixture
def expressions_parsed_once() -> Iterator[None]:
    """moto with the local stack's expression caches (local/moto_expressions.py): each
    UpdateExpression and condition text parsed once, and its expression-only validation passes
    walked once, instead of on every call. The resolver's property and scale tests make
    thousands of UpdateItems with a few dozen texts, and moto's parsing was half their time.
    Every answer, error, stored item and stream record is the same as moto's as shipped
    (tests/unit/local/test_moto_expressions.py); the caches are emptied afterwards."""
    if moto_expressions.installed():  # someone else's (a stack in this process): leave it
        yield
        return
    moto_expressions.install()
    try:
        yield
    finally:
        moto_expressions.uninstall()


@pytest.fixture
def emitted_metrics(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> Iterator[EmittedMetrics]:
    """The metrics the handlers publish from here on, read from the EMF lines they print
    (tests/support/emf.py), with Powertools' metrics on as on Lambda. The shared Metrics is
    emptied first: a flush with metrics off prints nothing and keeps what it held, so an earlier
    test's metrics would otherwise be published by this test's first flush."""
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")
    if metrics.service is None:
        # Powertools reads POWERTOOLS_SERVICE_NAME (the `service` dimension) when Metrics is
        # made, at import; on Lambda the environment is there first, here it is set per test,
        # after the import: read it as Lambda's import would.
        monkeypatch.setattr(metrics, "service", os.environ.get("POWERTOOLS_SERVICE_NAME"))
    metrics.clear_metrics()
    capsys.readouterr()
    yield EmittedMetrics(capsys)
    metrics.clear_metrics()
