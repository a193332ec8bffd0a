"""Shared fixtures: a moto account with the table created from template.yaml."""

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import boto3
import pytest
from hypothesis import settings
from moto import mock_aws
from moto.core import models as moto_models

from local import moto_speedups, moto_transactions
from local.aws_resources import create_table
from local.environment import LOCAL_IAM_CALLER
from optout.store.codec import deserialize
from tests.support import iam, shared_models
from tests.support.emf import STACK_NAME

# No property test has a time limit: on a loaded 2-core machine one example took 259 ms
# against hypothesis's default 200 ms deadline and failed the run. Speed is the bench's to
# measure, never a test's to assert (a test passes or fails on behaviour only).
settings.register_profile("optout", deadline=None)
settings.load_profile("optout")

shared_models.install()  # botocore's service models read once per process, not per test


# Each mock_aws start also registers, for the `requests` library, one callback response per
# AWS URL pattern and method (about 1,300 objects, ~20 ms a test); they are the same every
# time (pattern, method, callback) and no test sends `requests` calls, so they are made once.
# moto still resets its registry and its backends on every start.
_callback_response = cache(moto_models.CallbackResponse)
moto_models.CallbackResponse = lambda method, url, callback: _callback_response(  # type: ignore[attr-defined]
    method=method, url=url, callback=callback
)

SAMPLE_LINKER_ROLE = "arn:aws:iam::123456789012:role/optout-bridge-LinkerRole-EXAMPLE"
SAMPLE_OPERATOR_ROLE = "arn:aws:iam::123456789012:role/optout-bridge-OperatorRole-EXAMPLE"
TEST_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
    "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_SERVICE_NAME": STACK_NAME,  # the stack's name, as the template sets it
    "POWERTOOLS_METRICS_NAMESPACE": "OptOutBridge",
    "POWERTOOLS_DEV": "false",
    "TABLE_NAME": "optout-test",
    "ALLOWED_ORIGINS": "https://shop.example.com",
    # Local mode (the development hash key) and the IAM callers the admin function allows.
    "OPTOUT_LOCAL_MODE": "true",
    # The samples in events/ are signed by the stack's roles (assumed-role sessions).
    "LINKER_PRINCIPALS": f"{LOCAL_IAM_CALLER},{SAMPLE_LINKER_ROLE}",
    "OPERATOR_PRINCIPALS": f"{LOCAL_IAM_CALLER},{SAMPLE_OPERATOR_ROLE}",
}


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """`make test` runs on two pytest-xdist workers (`--dist loadgroup`): every test that starts
    a local stack or a browser goes to one of them, so stacks never race for a free port and
    each worker keeps its session-wide stack; everything else is spread over both."""
    e2e = Path(__file__).parent / "e2e"
    for item in items:
        if e2e in Path(item.path).parents:
            item.add_marker(pytest.mark.xdist_group("local-stack"))


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
    # What the functions' calls asked of IAM (tests/support/iam.py), checked at the end.
    calls: list[iam.Request] = field(default_factory=list)

    def items(self) -> list[dict[str, Any]]:
        pages = self.dynamodb.get_paginator("scan").paginate(TableName=self.table_name)
        return [deserialize(raw) for page in pages for raw in page["Items"]]


@contextmanager
def moto_account() -> Iterator[Aws]:
    """A moto account with the table. It uses the local stack's TransactWriteItems
    (local/moto_transactions.py): moto's own copies the whole table on every transaction,
    minutes for the resolver tests that store thousands of items;
    tests/unit/local/test_moto_transactions.py shows both give the same answers. And the
    local stack's two wire-format shortcuts (`moto_speedups.install_wire`: a plain attribute
    value parsed and written as it is, not walked member by member through botocore's shape
    model, which was a tenth of the suite's time); tests/unit/local/test_moto_speedups.py
    shows the answers are the same."""
    moto_transactions.install()
    ours = not moto_speedups.wire_installed()  # else a stack in this process installed them
    if ours:
        moto_speedups.install_wire()
    try:
        with mock_aws(), iam.record_calls() as calls:
            dynamodb = boto3.client("dynamodb", region_name="us-east-1")
            stream_arn = create_table(dynamodb, os.environ["TABLE_NAME"])
            sqs = boto3.client("sqs", region_name="us-east-1")
            yield Aws(dynamodb, sqs, os.environ["TABLE_NAME"], stream_arn, calls)
            # moto enforces no IAM: a call the function's role does not allow fails only on AWS.
            refused = iam.denied(calls)
            assert not refused, "calls template.yaml's roles do not allow:\n" + "\n".join(
                sorted({str(r) for r in refused})
            )
    finally:
        moto_transactions.uninstall()
        if ours:
            moto_speedups.uninstall_wire()


@contextmanager
def module_account() -> Iterator[Aws]:
    """moto_account() with the test environment, for a module-scoped fixture (the autouse
    environment is per test)."""
    with pytest.MonkeyPatch.context() as env:
        for key, value in TEST_ENV.items():
            env.setenv(key, value)
        env.delenv("HASH_KEY_SECRET_NAME", raising=False)
        with moto_account() as account:
            yield account


@pytest.fixture
def aws() -> Iterator[Aws]:
    with moto_account() as account:
        yield account


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
