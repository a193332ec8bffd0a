"""The metrics the handlers publish, read from the EMF lines they print, and the metrics the
template's alarms read, in one shape so the two can be compared.

On Lambda, Powertools prints one embedded-metric-format (EMF) JSON line per flush and
CloudWatch turns it into metrics: for every dimension set of a directive, every metric of it,
under the directive's namespace, with the dimension values read from the line's top-level
keys. CloudWatch matches an alarm to a metric by namespace, name and the exact set of
dimensions (names and values), so that triple is what both sides are reduced to here.
"""

import json
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

Dimensions = frozenset[tuple[str, str]]
# The stack the tests stand for: an alarm's `!Ref AWS::StackName` dimension value reads as this,
# and the tests' POWERTOOLS_SERVICE_NAME (tests/conftest.py) is it. Not samconfig.toml's
# `optout-bridge`, the service's old fixed value: a handler that hard-coded it would pass.
STACK_NAME = "optout-test-stack"


@dataclass(frozen=True)
class MetricKey:
    namespace: str
    name: str
    dimensions: Dimensions

    def __str__(self) -> str:
        dims = ", ".join(f"{k}={v}" for k, v in sorted(self.dimensions))
        return f"{self.namespace}/{self.name}{{{dims}}}"


def published(line: str) -> Iterator[tuple[MetricKey, float]]:
    """Each metric one printed line publishes, with the sum of its values (none for a line
    that is not EMF: the handlers' JSON log lines share stdout)."""
    try:
        blob = json.loads(line)
    except ValueError:
        return
    if not isinstance(blob, dict) or "_aws" not in blob:
        return
    for directive in blob["_aws"]["CloudWatchMetrics"]:
        for dimension_set in directive["Dimensions"]:
            dimensions = frozenset((name, str(blob[name])) for name in dimension_set)
            for metric in directive["Metrics"]:
                values = blob[metric["Name"]]
                total = sum(values) if isinstance(values, list) else values
                yield MetricKey(directive["Namespace"], metric["Name"], dimensions), float(total)


class EmittedMetrics:
    """What the handlers printed to stdout during a test, as CloudWatch would publish it. Reading
    takes the captured output (capsys), so the lines are kept here between reads."""

    def __init__(self, capsys: pytest.CaptureFixture[str]) -> None:
        self._capsys = capsys
        self._totals: dict[MetricKey, float] = defaultdict(float)

    def totals(self) -> dict[MetricKey, float]:
        for line in self._capsys.readouterr().out.splitlines():
            for key, value in published(line):
                self._totals[key] += value
        return dict(self._totals)


def alarm_metrics(template: dict[str, Any], namespace: str) -> dict[str, list[MetricKey]]:
    """Alarm name -> the metrics of `namespace` it reads: its own metric, or each metric of its
    metric math (`Metrics[].MetricStat`)."""
    read: dict[str, list[MetricKey]] = {}
    for name, resource in template["Resources"].items():
        if resource["Type"] != "AWS::CloudWatch::Alarm":
            continue
        props = resource["Properties"]
        stats = [m["MetricStat"]["Metric"] for m in props.get("Metrics", []) if "MetricStat" in m]
        keys = [_alarm_key(metric) for metric in [props, *stats] if "MetricName" in metric]
        ours = [key for key in keys if key.namespace == namespace]
        if ours:
            read[name] = ours
    return read


def log_filter_metrics(template: dict[str, Any]) -> set[tuple[str, str, frozenset[str]]]:
    """(namespace, name, dimension names) of every metric a log metric filter makes: a log
    line, not a handler's EMF, publishes these (their dimension values come from the line)."""
    made: set[tuple[str, str, frozenset[str]]] = set()
    for resource in template["Resources"].values():
        if resource["Type"] != "AWS::Logs::MetricFilter":
            continue
        for metric in resource["Properties"]["MetricTransformations"]:
            dimensions = frozenset(d["Key"] for d in metric.get("Dimensions", []))
            made.add((metric["MetricNamespace"], metric["MetricName"], dimensions))
    return made


def _alarm_key(metric: dict[str, Any]) -> MetricKey:
    dimensions = frozenset(
        (d["Name"], _dimension_value(d["Value"])) for d in metric.get("Dimensions", [])
    )
    return MetricKey(metric["Namespace"], metric["MetricName"], dimensions)


def _dimension_value(value: Any) -> str:
    return STACK_NAME if value == {"Ref": "AWS::StackName"} else str(value)
