"""Scheduled functions in the local stack: read from the template, fired on a timer."""

import threading
from typing import Any

import pytest

from local.schedule_poller import SchedulePoller
from local.template_config import ScheduleSource, schedule_sources


def template(schedule: str) -> dict[str, Any]:
    return {
        "Globals": {"Function": {"Timeout": 10}},
        "Resources": {
            "SweepFunction": {
                "Type": "AWS::Serverless::Function",
                "Properties": {
                    "CodeUri": "functions/sweep",
                    "Timeout": 60,
                    "Events": {
                        "Every": {"Type": "Schedule", "Properties": {"Schedule": schedule}},
                        "Api": {"Type": "HttpApi", "Properties": {"Path": "/x", "Method": "GET"}},
                    },
                },
            },
            "Other": {"Type": "AWS::SQS::Queue"},
        },
    }


@pytest.mark.parametrize(
    ("expression", "seconds"),
    [("rate(5 minutes)", 300), ("rate(1 minute)", 60), ("rate(2 hours)", 7200),
     ("rate(1 day)", 86400)],
)  # fmt: skip
def test_a_rate_schedule_is_read_from_the_template(expression: str, seconds: int) -> None:
    (source,) = schedule_sources(template(expression))
    assert source == ScheduleSource("SweepFunction", "Every", seconds, 60)


def test_a_schedule_the_local_stack_cannot_follow_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match=r"SweepFunction\.Every"):
        schedule_sources(template("cron(0 12 * * ? *)"))


def test_the_timer_fires_a_scheduled_event_and_survives_a_crash() -> None:
    # Given a function that fails on its first run
    calls: list[dict[str, Any]] = []

    def invoke(event: dict[str, Any]) -> None:
        calls.append(event)
        if len(calls) == 1:
            raise RuntimeError("first run fails")

    stop = threading.Event()
    source = ScheduleSource("SweepFunction", "Every", 300, 60)
    poller = SchedulePoller(source, invoke, stop, speedup=300)  # every 1 s
    # When it fires twice
    poller.fire()
    poller.fire()
    # Then both runs happened, with EventBridge's event shape
    assert len(calls) == 2
    assert calls[0]["detail-type"] == "Scheduled Event"
    assert calls[0]["source"] == "aws.events"
    assert calls[0]["resources"] == ["arn:aws:events:us-east-1:123456789012:rule/Every"]
    assert poller.period == 1.0


def test_the_timer_stops_with_the_stack() -> None:
    stop = threading.Event()
    poller = SchedulePoller(ScheduleSource("F", "E", 60, 3), lambda _: None, stop, speedup=60)
    thread = threading.Thread(target=poller.run)
    thread.start()
    stop.set()
    thread.join(5)
    assert not thread.is_alive()
