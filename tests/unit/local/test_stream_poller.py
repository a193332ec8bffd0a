"""The stream poller against moto's stream, with a fake resolver: filter, batch, retry, give up."""

import threading
from typing import Any

from local.moto_reads import StreamReader
from local.patterns import parse_filters
from local.stream_poller import StreamPoller, settle
from local.template_config import StreamSource
from tests.conftest import Aws

PATTERN = '{"eventName": ["INSERT"], "dynamodb": {"NewImage": {"sk": {"S": ["EVENT"]}}}}'
FILTER = {"Filters": [{"Pattern": PATTERN}]}


def put(aws: Aws, pk: str, sk: str) -> None:
    aws.dynamodb.put_item(TableName=aws.table_name, Item={"pk": {"S": pk}, "sk": {"S": sk}})


class FakeResolver:
    def __init__(self, fail_pk: str | None = None) -> None:
        self.batches: list[list[dict[str, Any]]] = []
        self.fail_pk = fail_pk

    def __call__(self, event: dict[str, Any]) -> dict[str, Any]:
        records = event["Records"]
        self.batches.append(records)
        failed = [
            {"itemIdentifier": r["dynamodb"]["SequenceNumber"]}
            for r in records
            if r["dynamodb"]["Keys"]["pk"]["S"] == self.fail_pk
        ]
        return {"batchItemFailures": failed}


def poller(
    aws: Aws, resolver: FakeResolver, failures: list[dict[str, Any]], **settings: Any
) -> StreamPoller:
    source = StreamSource(
        function="ResolverFunction",
        report_batch_item_failures=True,
        filters=parse_filters(FILTER),
        **settings,
    )
    reader = StreamReader(aws.stream_arn)
    return StreamPoller(
        reader, aws.stream_arn, source, resolver, failures.append, threading.Event()
    )


def test_only_inserted_event_items_reach_the_resolver_in_lambda_shape(aws: Aws) -> None:
    resolver = FakeResolver()
    put(aws, "REQ#1", "EVENT")
    put(aws, "REQ#1", "JOB#braze")
    put(aws, "ID#email#ab", "STATE")
    poller(aws, resolver, []).poll_once()
    [batch] = resolver.batches
    [record] = batch
    assert record["dynamodb"]["Keys"]["pk"]["S"] == "REQ#1"
    assert record["eventSourceARN"] == aws.stream_arn
    assert isinstance(record["dynamodb"]["ApproximateCreationDateTime"], int)
    assert record["eventSource"] == "aws:dynamodb"


def test_batches_respect_batch_size(aws: Aws) -> None:
    resolver = FakeResolver()
    for n in range(5):
        put(aws, f"REQ#{n}", "EVENT")
    subject = poller(aws, resolver, [], batch_size=2)
    for _ in range(3):
        subject.poll_once()
    assert [len(b) for b in resolver.batches] == [2, 2, 1]


def test_a_partial_failure_retries_from_the_first_failed_record(aws: Aws) -> None:
    resolver = FakeResolver(fail_pk="REQ#1")
    for n in range(3):
        put(aws, f"REQ#{n}", "EVENT")
    subject = poller(aws, resolver, [], maximum_retry_attempts=5)
    subject.poll_once()
    resolver.fail_pk = None
    subject.poll_once()
    pks = [[r["dynamodb"]["Keys"]["pk"]["S"] for r in b] for b in resolver.batches]
    assert pks == [["REQ#0", "REQ#1", "REQ#2"], ["REQ#1", "REQ#2"]]


def test_exhausted_retries_go_to_the_on_failure_destination_and_the_shard_moves_on(
    aws: Aws,
) -> None:
    resolver = FakeResolver(fail_pk="REQ#0")
    put(aws, "REQ#0", "EVENT")
    failures: list[dict[str, Any]] = []
    subject = poller(aws, resolver, failures, maximum_retry_attempts=1)
    for _ in range(3):
        subject.poll_once()
    assert len(resolver.batches) == 2  # the first try and one retry
    [failure] = failures
    info = failure["DDBStreamBatchInfo"]
    assert info["batchSize"] == 1 and info["streamArn"] == aws.stream_arn
    assert failure["requestContext"]["condition"] == "RetryAttemptsExhausted"
    put(aws, "REQ#9", "EVENT")
    subject.poll_once()
    assert resolver.batches[-1][0]["dynamodb"]["Keys"]["pk"]["S"] == "REQ#9"


def test_settle_reads_the_answer_as_lambda_does() -> None:
    batch = [{"dynamodb": {"SequenceNumber": s}} for s in ("1", "2", "3")]
    assert settle(batch, {"batchItemFailures": []}, partial=True).failed is False
    assert settle(batch, None, partial=True).failed is False
    outcome = settle(
        batch, {"batchItemFailures": [{"itemIdentifier": "3"}, {"itemIdentifier": "2"}]}, True
    )
    assert (outcome.settled, outcome.failed) == (1, True)
    assert settle(batch, {"batchItemFailures": [{"itemIdentifier": "9"}]}, True).settled == 0
    assert settle(batch, {"batchItemFailures": [{"itemIdentifier": ""}]}, True).settled == 0
    assert settle(batch, {"batchItemFailures": [{"itemIdentifier": "2"}]}, False).failed is False
