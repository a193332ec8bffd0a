"""The queue poller against moto's SQS, with a fake worker: delete, keep, redrive."""

import json
import threading
from typing import Any

from local.aws_resources import create_queues, queue_arn
from local.queue_poller import QueuePoller, failed_ids, sqs_record
from local.template_config import QueueSource
from tests.conftest import Aws


class FakeWorker:
    def __init__(self, fail: bool = False) -> None:
        self.events: list[dict[str, Any]] = []
        self.fail = fail

    def __call__(self, event: dict[str, Any]) -> dict[str, Any]:
        self.events.append(event)
        ids = [r["messageId"] for r in event["Records"]]
        return {"batchItemFailures": [{"itemIdentifier": i} for i in ids if self.fail]}


def counts(aws: Aws, url: str) -> tuple[int, int]:
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    got = aws.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
    return int(got[names[0]]), int(got[names[1]])


def make(aws: Aws, worker: FakeWorker, url: str) -> QueuePoller:
    source = QueueSource("WorkerFunction", batch_size=10, report_batch_item_failures=True)
    arn = queue_arn(aws.sqs, url)
    return QueuePoller(aws.sqs, "braze", url, arn, source, worker, threading.Event())


def test_done_messages_are_deleted_and_records_have_lambdas_shape(aws: Aws) -> None:
    queues, _, _ = create_queues(aws.sqs, ["braze"], "t")
    body = json.dumps({"job_id": "r:braze", "request_id": "r", "system": "braze"})
    aws.sqs.send_message(QueueUrl=queues["braze"], MessageBody=body)
    worker = FakeWorker()
    assert make(aws, worker, queues["braze"]).poll_once()
    [record] = worker.events[0]["Records"]
    assert record["body"] == body
    assert record["eventSource"] == "aws:sqs"
    assert record["eventSourceARN"].endswith(":t-braze-jobs")
    assert record["attributes"]["ApproximateReceiveCount"] == "1"
    assert record["receiptHandle"]
    assert counts(aws, queues["braze"]) == (0, 0)


def test_failed_messages_stay_in_flight_for_the_templates_visibility_timeout(aws: Aws) -> None:
    queues, _, _ = create_queues(aws.sqs, ["braze"], "t")
    aws.sqs.send_message(QueueUrl=queues["braze"], MessageBody="{}")
    make(aws, FakeWorker(fail=True), queues["braze"]).poll_once()
    assert counts(aws, queues["braze"]) == (0, 1)


def test_the_redrive_policy_moves_a_failing_message_to_the_dlq(aws: Aws) -> None:
    dlq = aws.sqs.create_queue(QueueName="t-dlq")["QueueUrl"]
    redrive = {"deadLetterTargetArn": queue_arn(aws.sqs, dlq), "maxReceiveCount": "2"}
    url = aws.sqs.create_queue(
        QueueName="t-jobs",
        Attributes={"VisibilityTimeout": "0", "RedrivePolicy": json.dumps(redrive)},
    )["QueueUrl"]
    aws.sqs.send_message(QueueUrl=url, MessageBody="{}")
    subject = make(aws, FakeWorker(fail=True), url)
    for _ in range(3):
        subject.poll_once()
    assert counts(aws, url) == (0, 0)
    assert counts(aws, dlq)[0] == 1


def test_failed_ids_reads_the_answer_as_lambda_does() -> None:
    ids = {"a", "b"}
    assert failed_ids({"batchItemFailures": [{"itemIdentifier": "a"}]}, ids, True) == {"a"}
    assert failed_ids({"batchItemFailures": [{"itemIdentifier": "x"}]}, ids, True) == ids
    assert failed_ids({"batchItemFailures": [{"itemIdentifier": "a"}]}, ids, False) == set()
    assert failed_ids(None, ids, True) == set()


def test_message_attributes_are_spelled_as_lambda_spells_them() -> None:
    message = {
        "MessageId": "m", "ReceiptHandle": "h", "Body": "{}", "Attributes": {},
        "MessageAttributes": {"kind": {"DataType": "String", "StringValue": "job"}},
    }  # fmt: skip
    record = sqs_record(message, "arn:aws:sqs:us-east-1:123456789012:q")
    assert record["messageAttributes"]["kind"]["stringValue"] == "job"
    assert record["md5OfBody"]
