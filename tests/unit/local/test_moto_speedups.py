"""The local stack's cheaper moto calls answer exactly what moto answers without them."""

import base64
import json
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from local import moto_speedups
from local.aws_resources import create_table

REGION = "us-east-1"
KEY = {"pk": {"S": "REQ#1"}, "sk": {"S": "JOB#webhook"}}
ITEM = {
    **KEY,
    "status": {"S": "pending"},
    "attempts": {"N": "2"},
    "done": {"BOOL": False},
    "gone": {"NULL": True},
    "receipt": {"M": {"http_status": {"N": "200"}, "ref": {"S": "abc"}, "ok": {"BOOL": True}}},
    "identifiers": {"L": [{"M": {"type": {"S": "email"}, "key": {"S": "f" * 64}}}]},
    "systems": {"SS": ["braze", "segment"]},
    "blob": {"B": b"\x00\x01binary"},
}

Calls = Callable[[Any], list[Any]]


def calls(client: Any) -> list[Any]:
    """One of each call the handlers make, with items of every attribute type."""
    answers: list[Any] = [client.put_item(TableName="t", Item=ITEM)]
    answers.append(client.put_item(TableName="t", Item=ITEM, ReturnValues="ALL_OLD"))
    answers.append(client.get_item(TableName="t", Key=KEY, ConsistentRead=True))
    answers.append(
        client.query(
            TableName="t",
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": "REQ#1"}},
        )
    )
    answers.append(
        client.batch_get_item(
            RequestItems={"t": {"Keys": [KEY, {"pk": {"S": "none"}, "sk": {"S": "x"}}]}}
        )
    )
    for returned in ("UPDATED_NEW", "ALL_NEW"):
        answers.append(
            client.update_item(
                TableName="t",
                Key=KEY,
                UpdateExpression="SET receipt.#ref = :r ADD attempts :one",
                ExpressionAttributeNames={"#ref": "ref"},
                ExpressionAttributeValues={":r": {"S": "def"}, ":one": {"N": "1"}},
                ReturnValues=returned,
            )
        )
    answers.append(client.scan(TableName="t"))
    for answer in answers:
        answer.pop("ResponseMetadata", None)
    return answers


@pytest.fixture
def restore() -> Iterator[None]:
    yield
    moto_speedups.uninstall()


def run(speedups: bool) -> list[Any]:
    if speedups:
        moto_speedups.install()
    else:
        moto_speedups.uninstall()
    with mock_aws():
        client = boto3.client("dynamodb", region_name=REGION)
        create_table(client, "t")
        return calls(client)


def test_answers_with_the_speedups_are_the_answers_without_them(restore: None) -> None:
    # Given the same calls on a fresh moto, once as shipped and once with the speedups
    shipped = run(speedups=False)
    faster = run(speedups=True)
    # Then every answer is the same, binary attribute included
    assert faster == shipped
    assert faster[2]["Item"]["blob"]["B"] == b"\x00\x01binary"


def test_requests_go_unsigned_only_with_the_speedups(restore: None) -> None:
    seen: list[str | None] = []

    def record(request: Any, **_: Any) -> None:
        seen.append(request.headers.get("Authorization"))

    for speedups in (False, True):
        if speedups:
            moto_speedups.install()
        with mock_aws():  # starting the mock replaces boto3's default session: still unsigned
            client = boto3.client("dynamodb", region_name=REGION)
            client.meta.events.register("before-send.dynamodb.ListTables", record)
            client.list_tables()
    assert seen[0] is not None and seen[1] is None


def parsed_put_item(body: dict[str, Any]) -> Any:
    """What moto's request parser makes of a PutItem body (as `parse_parameters` calls it)."""
    from botocore.session import get_session  # noqa: PLC0415
    from moto.core.parse import JSONParser  # noqa: PLC0415

    model = get_session().get_service_model("dynamodb").operation_model("PutItem")
    return JSONParser(model, map_type=dict).parse(
        {"method": "POST", "values": {}, "headers": {}, "body": json.dumps(body).encode(),
         "url_path": "/", "url_params": {}}
    )  # fmt: skip


def test_a_request_body_parses_to_what_moto_parses_without_the_speedups(restore: None) -> None:
    # Given a PutItem body with every attribute type (blobs as botocore sends them: base64)
    item = {**ITEM, "blob": {"B": base64.b64encode(b"\x00\x01binary").decode()}}
    body = {"TableName": "t", "Item": item, "ConditionExpression": "attribute_not_exists(pk)"}
    moto_speedups.uninstall()
    shipped = parsed_put_item(body)
    # When moto parses it with the speedups
    moto_speedups.install()
    faster = parsed_put_item(body)
    # Then the parameters are the same, the blob decoded as before
    assert faster == shipped
    assert faster["Item"]["blob"]["B"] == b"\x00\x01binary"


def test_the_user_agent_header_is_the_same_with_the_speedups(restore: None) -> None:
    seen: list[str] = []

    def record(request: Any, **_: Any) -> None:
        seen.append(request.headers["User-Agent"])

    for speedups in (False, True, True):
        if speedups:
            moto_speedups.install()
        with mock_aws():
            client = boto3.client("dynamodb", region_name=REGION)
            client.meta.events.register("before-send.dynamodb.ListTables", record)
            client.list_tables()
    assert len(set(seen)) == 1


def parsed_params(speedups: bool) -> list[Any]:
    """The parameters moto parsed for each DynamoDB and SQS call of `calls` and a queue's round."""
    from moto.core.responses import BaseResponse  # noqa: PLC0415

    seen: list[Any] = []
    parse = BaseResponse.parse_parameters

    def recording(self: Any, request: Any) -> None:
        parse(self, request)
        seen.append((type(self).__name__, self.params))

    if speedups:
        moto_speedups.install()
    else:
        moto_speedups.uninstall()
    with pytest.MonkeyPatch.context() as patch, mock_aws():
        patch.setattr(BaseResponse, "parse_parameters", recording)
        client = boto3.client("dynamodb", region_name=REGION)
        create_table(client, "t")
        calls(client)
        sqs = boto3.client("sqs", region_name=REGION)
        url = sqs.create_queue(QueueName="q", Attributes={"VisibilityTimeout": "30"})["QueueUrl"]
        sqs.send_message_batch(
            QueueUrl=url,
            Entries=[
                {"Id": "1", "MessageBody": '{"job": 1}', "DelaySeconds": 1},
                {"Id": "2", "MessageBody": "two", "MessageAttributes": {
                    "kind": {"DataType": "String", "StringValue": "check"},
                    "raw": {"DataType": "Binary", "BinaryValue": b"\x00\x01"}}},
            ],
        )  # fmt: skip
        got = sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"]
        )
        sqs.delete_message_batch(
            QueueUrl=url,
            Entries=[{"Id": "0", "ReceiptHandle": m["ReceiptHandle"]} for m in got["Messages"]],
        )
    # Receipt handles are random per run: compare their presence, not their value.
    for _, params in seen:
        for entry in params.get("Entries", []):
            if "ReceiptHandle" in entry:
                entry["ReceiptHandle"] = "<handle>"
    return seen


def test_dynamodb_and_sqs_requests_parse_as_without_the_speedups(restore: None) -> None:
    # Given the same DynamoDB and SQS calls, as shipped and with the speedups
    shipped = parsed_params(speedups=False)
    faster = parsed_params(speedups=True)
    # Then moto parsed the same parameters from every request, a binary attribute included
    assert faster == shipped
    assert len(faster) == 14
    assert any(kind == "SQSResponse" for kind, _ in faster)


def test_a_message_is_within_retention_exactly_when_moto_says_so(restore: None) -> None:
    from moto.core import DEFAULT_ACCOUNT_ID  # noqa: PLC0415
    from moto.sqs.models import SQSBackend, sqs_backends  # noqa: PLC0415

    shipped = SQSBackend.is_message_valid_based_on_retention_period
    moto_speedups.install()
    with mock_aws():
        # Given a queue that keeps messages 60 s, and one message in it
        sqs = boto3.client("sqs", region_name=REGION)
        url = sqs.create_queue(QueueName="q", Attributes={"MessageRetentionPeriod": "60"})[
            "QueueUrl"
        ]
        sqs.send_message(QueueUrl=url, MessageBody="m")
        backend = sqs_backends[DEFAULT_ACCOUNT_ID][REGION]
        message = backend.get_queue("q")._messages[0]
        sent = message.sent_timestamp
        answers = []
        # When it is checked as sent now, 59 s ago and 61 s ago
        for age in (0, 59, 61):
            message.sent_timestamp = sent - age * 1000
            answers.append(
                (
                    backend.is_message_valid_based_on_retention_period("q", message),
                    shipped(backend, "q", message),
                )
            )
    # Then the check answers as moto's own, and the old message is out
    assert [faster for faster, _ in answers] == [as_shipped for _, as_shipped in answers]
    assert [faster for faster, _ in answers] == [True, True, False]


def queue_round(speedups: bool) -> list[Any]:
    """Sends, receives, deletes (again, stale and unknown handles) and the queue's counts."""
    if speedups:
        moto_speedups.install()
    else:
        moto_speedups.uninstall()
    answers: list[Any] = []

    def keep(answer: Any) -> None:
        answer.pop("ResponseMetadata", None)
        answers.append(answer)

    with mock_aws():
        sqs = boto3.client("sqs", region_name=REGION)
        url = sqs.create_queue(QueueName="q", Attributes={"VisibilityTimeout": "0"})["QueueUrl"]
        for n in range(6):
            sqs.send_message(QueueUrl=url, MessageBody=f"m{n}", DelaySeconds=0)
        first = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=3)["Messages"]
        again = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]  # timeout 0
        stale = first[0]["ReceiptHandle"]  # a handle from the first receive, re-received since
        keep(sqs.delete_message_batch(
            QueueUrl=url,
            Entries=[{"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]}
                     for n, m in enumerate(again[:2])],
        ))  # fmt: skip
        for handle in (stale, stale, again[1]["ReceiptHandle"]):  # stale, then already deleted
            try:
                keep(sqs.delete_message(QueueUrl=url, ReceiptHandle=handle))
            except sqs.exceptions.ClientError as error:
                answers.append(error.response["Error"]["Code"])
        try:
            sqs.delete_message(QueueUrl=url, ReceiptHandle="not-a-handle")
        except sqs.exceptions.ClientError as error:
            answers.append(error.response["Error"]["Code"])
        left = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
        answers.append(sorted(m["Body"] for m in left))
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        answers.append({k: v for k, v in attributes.items() if "Timestamp" not in k})
    return answers


def test_a_queue_round_answers_as_without_the_speedups(restore: None) -> None:
    # Given sends, receives and deletes by current, stale, spent and unknown handles
    shipped = queue_round(speedups=False)
    faster = queue_round(speedups=True)
    # Then every answer, the messages left and the queue's attributes are the same
    assert faster == shipped
    assert "ReceiptHandleIsInvalid" in faster
    assert faster[-1]["ApproximateNumberOfMessagesNotVisible"] == "0"


def _environ(request: Any) -> list[tuple[str, Any]]:
    """A request's WSGI environ in order, its body stream by content, the request by type."""
    shown = {"wsgi.input": lambda stream: stream.getvalue(), "werkzeug.request": type}
    return [(key, shown.get(key, _same)(value)) for key, value in request.environ.items()]


def _same(value: Any) -> Any:
    return value


def test_a_json_request_is_the_request_moto_makes_of_it(restore: None) -> None:
    from moto.core import botocore_stubber  # noqa: PLC0415

    # Given the speedups, and moto's own normalize_request beside the quicker one
    moto_speedups.install()
    shipped = moto_speedups._patches.original(botocore_stubber, "normalize_request")
    quick = botocore_stubber.normalize_request
    pairs: list[tuple[Any, Any]] = []

    def both(request: Any) -> Any:
        pairs.append((moto_speedups._json_request(request), shipped(request)))
        return quick(request)

    # When every DynamoDB call of `calls` and a queue's round reach moto
    with pytest.MonkeyPatch.context() as patch, mock_aws():
        patch.setattr(botocore_stubber, "normalize_request", both)
        client = boto3.client("dynamodb", region_name=REGION)
        create_table(client, "t")
        calls(client)
        sqs = boto3.client("sqs", region_name=REGION)
        url = sqs.create_queue(QueueName="q")["QueueUrl"]
        sqs.send_message(QueueUrl=url, MessageBody="one")
        for message in sqs.receive_message(QueueUrl=url)["Messages"]:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    # Then each took the quick path and made the very environ moto's builder makes
    assert len(pairs) >= 14
    for fast, made in pairs:
        assert fast is not None and type(fast) is type(made)
        assert _environ(fast) == _environ(made)
        assert fast.get_data() == made.get_data() and fast.raw_url == made.raw_url


@pytest.mark.parametrize(
    ("url", "headers"),
    [
        ("https://dynamodb.us-east-1.amazonaws.com/?x=1", {}),
        ("https://dynamodb.us-east-1.amazonaws.com/path", {}),
        ("https://dynamodb.us-east-1.amazonaws.com/", {"Content-Encoding": "gzip"}),
        ("https://dynamodb.us-east-1.amazonaws.com/", {"Transfer-Encoding": "chunked"}),
        ("https://dynamodb.us-east-1.amazonaws.com/", {"Content-Type": "text/xml"}),
    ],
)
def test_anything_but_a_plain_json_request_takes_moto_s_own_path(
    url: str, headers: dict[str, str]
) -> None:
    from botocore.awsrequest import AWSPreparedRequest  # noqa: PLC0415

    sent = {"Content-Type": "application/x-amz-json-1.0", **headers}
    request = AWSPreparedRequest("POST", url, sent, b"{}", stream_output=False)
    assert moto_speedups._json_request(request) is None
