"""What each alarm is fed by, as the runbook must say it (ops37).

test_alarm_metrics.py proves that every alarm on our namespace reads a metric some handler
publishes. This file holds the other half: every path that feeds an alarm is named by that
alarm's runbook row (docs/operations.md), so the on-call reads the right log group for the
right line; and every alarm, on our metrics or AWS's, reads a metric of a resource the stack
has, in a shape that can fire (one series, the dimensions CloudWatch publishes it with).

CloudWatch matches an alarm to a metric by namespace, name and the exact set of dimensions
(https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/cloudwatch_concepts.html,
"Dimensions", checked 2026-12-04); an EMF line publishes each metric of a directive under each
of its dimension sets
(https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html,
checked 2026-12-04).
"""

import re
from collections.abc import Callable
from types import ModuleType
from typing import Any

import pytest
from botocore.exceptions import ClientError

from optout import secrets as secret_store
from tests.conftest import Aws
from tests.support import sam
from tests.support.aws_hooks import session_hooks
from tests.support.emf import STACK_NAME, EmittedMetrics, MetricKey
from tests.support.http_events import http_event
from tests.support.lambdas import invoke, load_event, load_function
from tests.support.production_secrets import production_secrets

NAMESPACE = "OptOutBridge"
UNAVAILABLE = MetricKey(NAMESPACE, "CaptureUnavailable", frozenset({("service", STACK_NAME)}))
UNKNOWN_REQUEST = "00000000-0000-4000-8000-000000000000"
LINKS = {"links": [{"a": {"type": "device_id", "value": "dev-links-aaaaaaaaaaaa"},
                    "b": {"type": "customer_id", "value": "C-1"}}]}  # fmt: skip


@pytest.fixture(scope="module")
def translated() -> dict[str, Any]:
    with pytest.MonkeyPatch.context() as env:
        env.setenv("AWS_DEFAULT_REGION", "us-east-1")
        return sam.translate()


def runbook_row(alarm: str, document: str = "docs/operations.md") -> str:
    rows = [line for line in (sam.ROOT / document).read_text(encoding="utf-8").splitlines()
            if line.startswith(f"| `{alarm}` |")]  # fmt: skip
    assert len(rows) == 1, (alarm, document)
    return rows[0]


def _throttle(**_: Any) -> None:
    error = {"Code": "ThrottlingException", "Message": "Rate exceeded"}
    raise ClientError({"Error": error}, "Call")  # type: ignore[typeddict-item]


# -- CaptureErrorsAlarm: every 503 counted in `CaptureUnavailable` ----------------------------

# path -> (function, the AWS call refused, the request, the WARNING it logs, its log group)
BUSY_PATHS: dict[str, tuple[str, str, Callable[[], dict[str, Any]], str, str]] = {
    "opt-out write": (
        "capture_api", "dynamodb.PutItem",
        lambda: http_event("POST", "/v1/opt-out", {"email": "busy@example.com"}),
        "event store unavailable", "CaptureLogGroup",
    ),
    "banner state read": (
        "capture_api", "dynamodb.GetItem", lambda: load_event("consent_get.json"),
        "state store unavailable", "CaptureLogGroup",
    ),
    "status read": (
        "capture_api", "dynamodb.Query",
        lambda: http_event("GET", f"/v1/requests/{UNKNOWN_REQUEST}",
                           path_parameters={"request_id": UNKNOWN_REQUEST}),
        "request store unavailable", "CaptureLogGroup",
    ),
    "cold start secret read": (
        "capture_api", "secretsmanager.GetSecretValue",
        lambda: http_event("POST", "/v1/opt-out", {"email": "cold@example.com"}),
        "secret store unavailable", "CaptureLogGroup",
    ),
    # The backend's identity links are the same capture write, in the admin function
    "backend identity links": (
        "admin_api", "dynamodb.PutItem",
        lambda: http_event("POST", "/v1/identity-links", LINKS, iam=True),
        "event store unavailable", "AdminLogGroup",
    ),
}  # fmt: skip


@pytest.mark.parametrize("path", list(BUSY_PATHS))
def test_every_503_capture_errors_counts_is_named_by_its_runbook_row(
    aws: Aws,
    monkeypatch: pytest.MonkeyPatch,
    emitted_metrics: EmittedMetrics,
    caplog: pytest.LogCaptureFixture,
    translated: dict[str, Any],
    path: str,
) -> None:
    function, call, request, warning, log_group = BUSY_PATHS[path]
    monkeypatch.setattr("time.sleep", lambda _: None)  # botocore's back-off
    if call.startswith("secretsmanager"):
        production_secrets(monkeypatch)
    module: ModuleType = load_function(function)

    def fresh_clients() -> None:  # the next request builds its clients, with the hooks of now
        module.services.cache_clear()
        secret_store._client.cache_clear()

    # Given AWS refusing the call past the client's retries
    with session_hooks("alarm-sources", fresh_clients) as register:
        register(f"provide-client-params.{call}", _throttle)
        # When the request comes: our 503, nothing raised (Lambda's Errors stays 0)
        answer = invoke(module, request())
    fresh_clients()
    assert answer["statusCode"] == 503, answer["body"]
    # Then CaptureErrorsAlarm's own metric is published, and the WARNING logged
    stats = translated["Resources"]["CaptureErrorsAlarm"]["Properties"]["Metrics"]
    assert any(m.get("MetricStat", {}).get("Metric", {}).get("MetricName") == UNAVAILABLE.name
               for m in stats)  # fmt: skip
    assert emitted_metrics.totals().get(UNAVAILABLE, 0) > 0
    assert warning in caplog.messages
    # And the alarm's runbook row names that line and the log group it is in
    assert log_group in translated["Resources"]
    row = runbook_row("CaptureErrorsAlarm")
    assert f"`{warning}`" in row and f"`{log_group}`" in row, (path, warning, log_group)
    if function == "admin_api":  # README's row too: the alarm is not capture's alone
        assert "/v1/identity-links" in runbook_row("CaptureErrorsAlarm", "README.md")
        # and the admin function's own alarm sends the on-call here for these
        for document in ("docs/operations.md", "README.md"):
            assert "`CaptureErrorsAlarm`" in runbook_row("AdminErrorsAlarm", document)


# -- JobsFailedAlarm: the reason classes its row lists --------------------------------------


def test_the_jobs_failed_row_lists_every_reason_class_a_failure_logs() -> None:
    # The row lists the reason classes of `job failed`; "Failures in the logs" has one row per
    # class the code sets. A class missing from the alarm's row sends the on-call guessing.
    text = (sam.ROOT / "docs/operations.md").read_text(encoding="utf-8")
    table = text.split("| `reason_class` | the job failed because |", 1)[1].split("\n\n", 1)[0]
    classes = {c for cell in re.findall(r"^\| ([^|]+) \|", table, re.M)
               for c in re.findall(r"`([a-z_]+)`", cell)}  # fmt: skip
    assert {"retries_exhausted", "config_invalid", "too_big_for_pace", "unknown"} <= classes
    row = runbook_row("JobsFailedAlarm")
    listed = row.split("`reason_class` (", 1)[1].split(")", 1)[0]
    assert set(re.findall(r"`([a-z_]+)`", listed)) == classes


# -- every alarm: a resource of the stack, one series, an action ----------------------------

# AWS's metrics the alarms read, with the one dimension CloudWatch publishes them under here
# and the resource type it names (SQS: QueueName, the queue's name, not its URL; Lambda:
# FunctionName, aggregating versions; DynamoDB: TableName):
# https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-available-cloudwatch-metrics.html
# https://docs.aws.amazon.com/lambda/latest/dg/monitoring-metrics-types.html
# https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/metrics-dimensions.html
# (all checked 2026-12-04)
AWS_METRICS = {
    "AWS/SQS": ("QueueName", "AWS::SQS::Queue", {
        "ApproximateNumberOfMessagesVisible": "Maximum",
        "ApproximateAgeOfOldestMessage": "Maximum"}),
    "AWS/Lambda": ("FunctionName", "AWS::Lambda::Function", {
        "Errors": "Sum", "Throttles": "Sum", "IteratorAge": "Maximum"}),
    "AWS/DynamoDB": ("TableName", "AWS::DynamoDB::Table", {"ConsumedWriteCapacityUnits": "Sum"}),
}  # fmt: skip
# Functions a metric math expression may use and stay one series per input
SINGLE_SERIES = {"FILL"}


def _alarms(translated: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: r["Properties"] for name, r in translated["Resources"].items()
            if r["Type"] == "AWS::CloudWatch::Alarm"}  # fmt: skip


def _read(props: dict[str, Any]) -> list[tuple[dict[str, Any], str]]:
    """(metric, statistic) of each metric the alarm reads."""
    if "MetricName" in props:
        return [(props, props["Statistic"])]
    return [(m["MetricStat"]["Metric"], m["MetricStat"]["Stat"])
            for m in props["Metrics"] if "MetricStat" in m]  # fmt: skip


def _resource(value: Any, resources: dict[str, Any]) -> tuple[str, str]:
    """(logical id, type) a dimension value names: `!Ref X` or `!GetAtt X.QueueName`."""
    if "Ref" in value:
        return value["Ref"], resources[value["Ref"]]["Type"]
    name, attribute = value["Fn::GetAtt"]
    assert attribute == "QueueName", value  # the name; an Arn or a QueueUrl never matches
    return name, resources[name]["Type"]


def test_every_alarm_reads_a_metric_of_the_stack_that_can_fire(
    translated: dict[str, Any],
) -> None:
    resources = translated["Resources"]
    alarms = _alarms(translated)
    assert len(alarms) >= 50
    for name, props in alarms.items():
        for metric, statistic in _read(props):
            dims = metric.get("Dimensions", [])
            if metric["Namespace"] == NAMESPACE:  # Powertools' one default dimension
                assert dims == [{"Name": "service", "Value": {"Ref": "AWS::StackName"}}], name
                continue
            dimension, kind, statistics = AWS_METRICS[metric["Namespace"]]
            assert statistics[metric["MetricName"]] == statistic, name
            ((dim,),) = (dims,)
            assert dim["Name"] == dimension, name
            assert _resource(dim["Value"], resources)[1] == kind, name
        # Every alarm tells the topic, when there is one
        assert props["AlarmActions"] == {
            "Fn::If": ["HasAlarmTopic", [{"Ref": "AlarmTopicArn"}], {"Ref": "AWS::NoValue"}]
        }, name
        # A heartbeat (a metric that must arrive) breaches when it is missing; any other
        # counts failures, and no failure published is no failure
        heartbeat = props["ComparisonOperator"].startswith("LessThan")
        assert props["TreatMissingData"] == ("breaching" if heartbeat else "notBreaching"), name
        periods = props["EvaluationPeriods"]
        assert 1 <= props.get("DatapointsToAlarm", periods) <= periods, name


def test_every_metric_math_alarm_returns_one_series_of_ids_it_has(
    translated: dict[str, Any],
) -> None:
    found = 0
    for name, props in _alarms(translated).items():
        if "Metrics" not in props:
            continue
        found += 1
        metrics = props["Metrics"]
        ids = {m["Id"] for m in metrics}
        assert len(ids) == len(metrics), name
        (returned,) = [m for m in metrics if m.get("ReturnData", True)]
        assert "Expression" in returned, name
        periods = {m["MetricStat"]["Period"] for m in metrics if "MetricStat" in m}
        assert len(periods) == 1, name  # summed per period: the same period on each input
        for m in metrics:
            if "Expression" not in m:
                continue
            words = set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", m["Expression"]))
            functions = set(re.findall(r"([A-Za-z_]+)\s*\(", m["Expression"]))
            assert functions <= SINGLE_SERIES, (name, functions)  # no SEARCH, no METRICS()
            assert words - functions <= ids - {m["Id"]}, (name, m["Expression"])
    assert found >= 3


# Lambda assigns INFO to a log line without a `level` key, which an EMF line is, and drops it
# when the function's ApplicationLogLevel is above INFO. The Standard log class supports every
# CloudWatch Logs feature, Infrequent Access a subset (EMF extraction and metric filters in it
# not checked): the log groups stay Standard.
# https://docs.aws.amazon.com/lambda/latest/dg/monitoring-cloudwatchlogs-log-level.html
# https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_CreateLogGroup.html
# (both checked 2026-12-04)
EMF_KEPT_AT = {None, "TRACE", "DEBUG", "INFO"}


def test_every_function_logs_where_its_metrics_are_extracted(translated: dict[str, Any]) -> None:
    # A WARN application level would silence every alarm on our namespace at once (only the
    # heartbeats would fire, as for no run at all).
    resources = translated["Resources"]
    functions = {n: r["Properties"] for n, r in resources.items()
                 if r["Type"] == "AWS::Lambda::Function"}  # fmt: skip
    assert functions
    groups = []
    for name, function in functions.items():
        logging = function["LoggingConfig"]
        assert logging.get("ApplicationLogLevel") in EMF_KEPT_AT, name
        groups.append(logging["LogGroup"]["Ref"])
    filters = [r["Properties"]["LogGroupName"]["Ref"] for r in resources.values()
               if r["Type"] == "AWS::Logs::MetricFilter"]  # fmt: skip
    for group in groups + filters:
        assert resources[group]["Type"] == "AWS::Logs::LogGroup", group
        assert resources[group]["Properties"].get("LogGroupClass", "STANDARD") == "STANDARD"
