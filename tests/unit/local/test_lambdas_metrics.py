"""The local stack runs every function in one process with metrics off: Powertools' shared
metric set must not pile up across invocations and print itself (review s29 newcomer F7: a
~10 KB EMF line on the console every ~100 `VendorPaceSeconds` values)."""

import json
from collections.abc import Iterator
from typing import Any

import pytest
from aws_lambda_powertools.metrics import Metrics

from local.lambdas import LocalFunction

metrics = Metrics(namespace="OptOutBridge")


@metrics.log_metrics
def _paced_batch(event: dict[str, Any], context: Any) -> None:
    # As the worker does once per batch that waited for its vendor's rate.
    metrics.add_metric(name="VendorPaceSeconds", unit="Seconds", value=0.25)


@pytest.fixture(autouse=True)
def empty_metric_set() -> Iterator[None]:
    Metrics().clear_metrics()
    yield
    Metrics().clear_metrics()


def test_with_metrics_off_no_metric_line_reaches_the_console_after_many_values(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given the local stack's setting (local/environment.py)
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    worker = LocalFunction("braze-worker", _paced_batch, 30)
    # When a worker runs 250 batches, each adding a value of one metric
    for _ in range(250):
        worker.invoke({})
    # Then nothing was printed: no EMF blob among the stage lines
    assert capsys.readouterr().out == ""


def test_with_metrics_on_each_invocation_still_publishes_its_own_values(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given metrics on (the PII canary's and the alarm tests' setting)
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")
    worker = LocalFunction("braze-worker", _paced_batch, 30)
    # When it runs three batches
    for _ in range(3):
        worker.invoke({})
    # Then each printed its one value, as on Lambda
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["VendorPaceSeconds"] for line in lines] == [[0.25]] * 3
