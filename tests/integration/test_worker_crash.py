"""A worker dying mid-batch (botocore event hook): the batch comes back, nothing is lost, and
what was already finished is not sent again."""

import json
from typing import Any

import boto3
import pytest
from moto.sqs.models import sqs_backends

from tests.integration.test_worker import EMAIL, Stack, stack  # noqa: F401 - the fixture


class Crash(Exception):
    """Stands in for the process dying: nothing after it runs."""


def crash_on_second_receipt() -> Any:
    seen = [0]

    def hook(params: dict[str, Any], **_: Any) -> None:
        if b"completed_at" in (params.get("body") or b""):
            seen[0] += 1
            if seen[0] == 2:
                raise Crash

    return hook


def test_a_worker_dying_mid_batch_loses_no_job_and_resends_none_it_finished(
    stack: Stack,  # noqa: F811 - the fixture imported above
) -> None:
    # Given three webhook jobs in one batch, and the worker dying while it records the second
    # receipt (after the vendor call)
    for n in range(3):
        stack.put_request(f"r{n}", ["webhook"], EMAIL)
        stack.send("webhook", f"r{n}")
    assert boto3.DEFAULT_SESSION is not None
    events = boto3.DEFAULT_SESSION.events
    events.register("before-call.dynamodb.UpdateItem", crash_on_second_receipt(), unique_id="x")
    try:
        with pytest.raises(Crash):
            stack.run("webhook")
    finally:
        events.unregister("before-call.dynamodb.UpdateItem", unique_id="x")
    done_before = {f"r{n}" for n in range(3) if stack.job(f"r{n}", "webhook")["status"] == "done"}
    # When the messages come back after their visibility timeout and a new worker takes them
    _reset_visibility(stack)
    answer, redelivered = stack.run("webhook")
    # Then every job is done, and only the unfinished ones reached the vendor again
    assert answer["batchItemFailures"] == [] and len(redelivered) == 3
    assert {stack.job(f"r{n}", "webhook")["status"] for n in range(3)} == {"done"}
    sent = [
        json.loads(c["body"])["request_id"] for c in stack.server.sandboxes["webhook"].recorded()
    ]
    assert set(sent) == {"r0", "r1", "r2"}
    assert len(done_before) == 1 and sent.count(next(iter(done_before))) == 1


def _reset_visibility(running: Stack) -> None:
    """What the visibility timeout does with time: every in-flight message visible again."""
    name = running.queues["webhook"].rsplit("/", 1)[-1]
    queue = sqs_backends["123456789012"]["us-east-1"].queues[name]
    for message in queue._messages:
        message.change_visibility(0)
