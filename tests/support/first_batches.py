"""A normal first batch of the resolver and of a worker, recorded over moto so that a fresh
interpreter can replay it with botocore's Stubber (tests/unit/test_cold_imports.py).

The resolver's: the stream record of one banner opt-out. The webhook worker's: that opt-out's
job message, its vendor call answered 200. Each comes with the AWS calls the function made,
in order, and their answers (without ResponseMetadata), for the Stubber to give back.
"""

from typing import Any

import botocore.client
import pytest

from local.queue_poller import sqs_record
from optout.connectors.http import HttpClient, HttpResponse
from tests.conftest import Aws
from tests.support.lambdas import invoke, load_function
from tests.support.pipeline import build_pipeline

DEVICE = "cold-imports-device-01"
Calls = list[tuple[str, str, dict[str, Any]]]  # service, operation, answer


def vendor_answers_ok(client: HttpClient, *args: Any, **kwargs: Any) -> HttpResponse:
    return HttpResponse(200, {"content-type": "application/json"}, b"{}")


def record(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> dict[str, dict[str, Any]]:
    calls: Calls = []
    original = botocore.client.BaseClient._make_api_call

    def recorded(client: Any, operation: str, params: dict[str, Any]) -> Any:
        answer = original(client, operation, params)
        kept = {k: v for k, v in answer.items() if k != "ResponseMetadata"}
        calls.append((client.meta.service_model.service_name, operation, kept))
        return answer

    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", recorded)
    monkeypatch.setattr(HttpClient, "send", vendor_answers_ok)
    pipe = build_pipeline(aws, monkeypatch)
    pipe.post("/v1/consent", {"device_id": DEVICE, "opt_out": {"sale": True, "share": True}})
    stream = {"Records": pipe.event_records()}
    calls.clear()
    assert pipe.resolve(stream["Records"]) == {"batchItemFailures": []}
    resolver_calls = list(calls)

    url = pipe.queue_urls["webhook"]
    received = aws.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    assert len(received) == 1
    arn = f"arn:aws:sqs:us-east-1:123456789012:{url.rsplit('/', 1)[1]}"
    jobs = {"Records": [sqs_record(m, arn) for m in received]}
    monkeypatch.setenv("LOCAL_SECRETS_FILE", "local/secrets.json")
    monkeypatch.setenv("SYSTEM_NAME", "webhook")
    worker = load_function("worker")
    calls.clear()
    answer = invoke(worker, jobs)
    assert answer == {"batchItemFailures": []}, answer
    worker_calls = list(calls)
    return {
        "resolver": {"event": stream, "calls": resolver_calls},
        "worker": {"event": jobs, "calls": worker_calls},
    }
