"""A normal first batch of the resolver and of a worker, recorded over moto in this process, for
a fresh interpreter to replay with botocore's Stubber (the cold stage's `first_batch_ms`;
tests/unit/test_cold_imports.py checks what such a batch imports).

The resolver's batch is the stream record of one banner opt-out; the webhook worker's is that
opt-out's job message, its vendor call answered 200 in place of the network. Each comes with
the AWS calls the function made, in order, and their answers (ResponseMetadata left out):
`REPLAY` gives them back in the same order, so the replayed batch takes the recorded path.
"""

import json
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from types import ModuleType
from typing import Any
from unittest import mock

from bench.environment import load_function

REGION = "us-east-1"
DEVICE = "first-batch-device-0001"
SYSTEM = "webhook"  # the one system a banner opt-out by device reaches (it takes device_id)

# The replay, as code for the fresh interpreter: `recorded` (one function's record) and `app`
# (its module, services built) must exist; `CLIENTS[function]` names its clients.
REPLAY = """
import botocore
from botocore.stub import Stubber
recorded = json.loads({recorded!r})
clients = {{{clients}}}
stubs = {{}}
for service, operation, answer in recorded["calls"]:
    if service not in stubs:
        stubs[service] = Stubber(clients[service]())
    stubs[service].add_response(botocore.xform_name(operation), answer)
for stub in stubs.values():
    stub.activate()
{vendor}
class Context:
    function_name, memory_limit_in_mb, aws_request_id = "{function}", 512, "first-batch"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:{function}"
    def get_remaining_time_in_millis(self):  # the worker and resolver bound their work by it
        return 30_000
"""
HANDLE = """
answer = app.handler(recorded["event"], Context())
assert answer == {"batchItemFailures": []}, answer
"""
CHECK = """
for stub in stubs.values():
    stub.assert_no_pending_responses()
"""
CLIENTS = {
    "resolver": '"dynamodb": lambda: app.resolver()._table.client, '
    '"sqs": lambda: app.resolver()._queue._client',
    "worker": '"dynamodb": lambda: app.services().delivery.table.client, '
    '"sqs": lambda: app.services().sqs',
}
VENDOR_OK = (200, {"content-type": "application/json"}, b"{}")  # a canned 200 from the vendor
VENDOR_ANSWERS_OK = f"""
from optout.connectors.http import HttpClient, HttpResponse
HttpClient.send = lambda *_, **__: HttpResponse(*{VENDOR_OK!r})
"""
REPLAY_ENV = {"SYSTEM_NAME": SYSTEM}  # a production worker serves one system


def replay(function: str, recorded: dict[str, Any]) -> str:
    """Code that prepares the replay of `recorded` (stubs, context); HANDLE then runs it."""
    return REPLAY.format(
        recorded=json.dumps(recorded),
        clients=CLIENTS[function],
        vendor=VENDOR_ANSWERS_OK if function == "worker" else "",
        function=function,
    )


def record(env: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    """Both first batches, over a fresh moto account; `env` as the functions read it (local
    mode, the local systems and secrets files). The process's environment is restored after."""
    import boto3  # noqa: PLC0415 - the recording needs moto, the functions do not
    from moto import mock_aws  # noqa: PLC0415

    from local.aws_resources import create_queues, create_table  # noqa: PLC0415
    from local.queue_poller import sqs_record  # noqa: PLC0415
    from local.stream_records import to_lambda_record  # noqa: PLC0415
    from optout.connectors.http import HttpClient  # noqa: PLC0415
    from optout.systems import load_systems  # noqa: PLC0415

    with mock.patch.dict(os.environ, env), mock_aws(), _recording() as calls:
        dynamodb = boto3.client("dynamodb", region_name=REGION)
        sqs = boto3.client("sqs", region_name=REGION)
        stream_arn = create_table(dynamodb, os.environ["TABLE_NAME"])
        keys = sorted({s.queue_key for s in load_systems(os.environ["SYSTEMS_CONFIG"]).systems})
        urls, _, _ = create_queues(sqs, keys, "first-batch")
        os.environ["QUEUE_URL_TEMPLATE"] = urls[SYSTEM].replace(f"-{SYSTEM}-", "-{queue_key}-")
        os.environ.pop("SYSTEM_NAME", None)

        capture = _load("capture_api")
        answer = capture.handler(_consent(), _context("capture"))
        assert answer["statusCode"] == 202, answer
        stream = {"Records": _event_records(stream_arn, to_lambda_record)}
        assert len(stream["Records"]) == 1

        resolver = _load("resolver")
        calls.clear()
        assert resolver.handler(stream, _context("resolver")) == {"batchItemFailures": []}
        resolver_calls = list(calls)

        url = urls[SYSTEM]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
        queue_arn = arn["Attributes"]["QueueArn"]
        jobs = {"Records": [sqs_record(dict(m), queue_arn) for m in messages]}
        assert len(jobs["Records"]) == 1
        os.environ["SYSTEM_NAME"] = SYSTEM
        worker = _load("worker")
        calls.clear()
        with mock.patch.object(HttpClient, "send", _vendor_answers_ok):
            assert worker.handler(jobs, _context("worker")) == {"batchItemFailures": []}
        worker_calls = list(calls)
    return {
        "resolver": {"event": stream, "calls": resolver_calls},
        "worker": {"event": jobs, "calls": worker_calls},
    }


@contextmanager
def _recording() -> Iterator[list[tuple[str, str, dict[str, Any]]]]:
    import botocore.client  # noqa: PLC0415

    calls: list[tuple[str, str, dict[str, Any]]] = []
    original = botocore.client.BaseClient._make_api_call  # type: ignore[attr-defined]

    def recorded(client: Any, operation: str, params: dict[str, Any]) -> Any:
        answer = original(client, operation, params)
        kept = {k: v for k, v in answer.items() if k != "ResponseMetadata"}
        calls.append((client.meta.service_model.service_name, operation, kept))
        return answer

    with mock.patch.object(botocore.client.BaseClient, "_make_api_call", recorded):
        yield calls


def _load(function: str) -> ModuleType:
    """A fresh functions/<function>/app.py, as a new container imports it."""
    return load_function(function, f"first_batch_{function}")


def _context(function: str) -> Any:
    """A Lambda context for `function`, with the request id the replay's context has."""
    from local.lambdas import LambdaContext  # noqa: PLC0415 - needs the layer on the path

    return LambdaContext(function, 30, aws_request_id="first-batch")


def _consent() -> dict[str, Any]:
    from bench import workload  # noqa: PLC0415

    body = {"device_id": DEVICE, "opt_out": {"sale": True, "share": True}}
    return workload.http_event(workload.Request("banner", "/v1/consent", body, {}))


def _event_records(stream_arn: str, convert: Any) -> list[dict[str, Any]]:
    """The stream's inserted EVENT items, in Lambda's shape (the resolver's FilterCriteria)."""
    import boto3  # noqa: PLC0415

    streams = boto3.client("dynamodbstreams", region_name=REGION)
    records: list[dict[str, Any]] = []
    for shard in streams.describe_stream(StreamArn=stream_arn)["StreamDescription"]["Shards"]:
        iterator = streams.get_shard_iterator(
            StreamArn=stream_arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        for raw in streams.get_records(ShardIterator=iterator)["Records"]:
            record = convert(raw, stream_arn)
            image = record["dynamodb"].get("NewImage", {})
            if record["eventName"] == "INSERT" and image.get("sk", {}).get("S") == "EVENT":
                records.append(record)
    return records


def _vendor_answers_ok(*_: Any, **__: Any) -> Any:
    from optout.connectors.http import HttpResponse  # noqa: PLC0415

    return HttpResponse(*VENDOR_OK)
