"""The worker keeps no vendor text that could carry a person's values or outgrow the job item,
and logs an unexpected connector exception by its class only (review s12-pii 1, 2, 3)."""

import json
from typing import Any

import pytest

from local.sandbox.wire import SandboxRequest, SandboxResponse, json_response
from optout.connectors.webhook import WebhookConnector
from tests.integration.test_worker import (  # noqa: F401 - the fixture
    EMAIL,
    Stack,
    failed_ids,
    stack,
)

VALUE = EMAIL[0]["value"]  # jane.doe@example.com


def receiver_answering(running: Stack, payload: dict[str, Any]) -> None:
    def handle(_: SandboxRequest) -> SandboxResponse:
        return json_response(200, payload)

    running.server.sandboxes["webhook"].vendor.handle = handle  # type: ignore[method-assign]


def test_a_receivers_reference_echoing_the_email_is_not_kept_on_the_receipt(
    stack: Stack,  # noqa: F811 - the fixture imported above
) -> None:
    # Given a receiver that answers with the person's email in its reference
    receiver_answering(stack, {"reference": f"applied for {VALUE}"})
    stack.put_request("r1", ["webhook"], EMAIL)
    stack.send("webhook", "r1")

    stack.run("webhook")

    # Then the job is done and its receipt keeps no reference, only a value-free note
    job = stack.job("r1", "webhook")
    assert job["status"] == "done"
    assert job["receipt"].get("vendor_ref") is None
    assert job["receipt"]["note"] == "reference not kept: not a reference"
    assert VALUE not in json.dumps(job, default=str)


def test_a_420_000_character_reference_does_not_stop_the_receipts_write(
    stack: Stack,  # noqa: F811 - the fixture imported above
) -> None:
    # Given a receiver answering a reference beyond DynamoDB's 400 KB item limit (the old
    # worker's receipt write failed, after the receiver had applied the opt-out)
    receiver_answering(stack, {"reference": "r" * 420_000})
    stack.put_request("r1", ["webhook"], EMAIL)
    stack.send("webhook", "r1")

    answer, _ = stack.run("webhook")

    job = stack.job("r1", "webhook")
    assert failed_ids(answer) == set() and job["status"] == "done"
    assert len(json.dumps(job["receipt"], default=str)) < 1024


def test_an_unexpected_connector_exception_retries_the_job_and_logs_its_class_only(
    stack: Stack,  # noqa: F811 - the fixture imported above
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Given a connector raising something other than a DeliveryError, with a value in its text
    def send(*_: object) -> Any:
        raise ValueError(f"unexpected answer about {VALUE}")

    monkeypatch.setattr(WebhookConnector, "send", send)
    stack.put_request("r1", ["webhook"], EMAIL)
    stack.send("webhook", "r1")

    # When the worker runs: it returns (the old one let the exception out of the handler,
    # and Lambda logs its message)
    answer, messages = stack.run("webhook")

    # Then the job is retried like after a vendor outage, with the class as its error
    assert failed_ids(answer) == {messages[0]["MessageId"]}
    job = stack.job("r1", "webhook")
    assert (job["status"], job["receipt"]["error"]) == ("pending", "webhook: ValueError")
    (raised,) = [r for r in caplog.records if r.getMessage() == "connector raised"]
    assert (raised.levelname, raised.error) == ("ERROR", "ValueError")
    assert VALUE not in json.dumps([vars(r) for r in caplog.records], default=str)
