"""A job carries when the consumer chose (review s18 time T3): the resolver keeps the
request's `received_at` on the job item as `chosen_at`, and the worker hands it to the
connector (Segment sends it as the consent event's `timestamp`: tests/unit/connectors/
test_requests.py). A job stored before the field existed is still delivered, without it."""

from collections.abc import Iterator
from typing import Any

import pytest

from optout.resolver.outbox import Outbox
from tests.conftest import Aws
from tests.integration.test_resolver_delivery import Vendor, work
from tests.support.pipeline import Pipeline, build_pipeline


@pytest.fixture
def pipe(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> Iterator[Pipeline]:
    yield build_pipeline(aws, monkeypatch)


def _item(pipe: Pipeline, request_id: str, sk: str) -> dict[str, Any]:
    item: dict[str, Any] = pipe.aws.dynamodb.get_item(
        TableName=pipe.aws.table_name,
        Key={"pk": {"S": f"REQ#{request_id}"}, "sk": {"S": sk}},
        ConsistentRead=True,
    )["Item"]
    return item


def test_a_job_carries_when_its_request_was_received_up_to_the_connector(
    pipe: Pipeline,
) -> None:
    request_id = pipe.post("/v1/opt-out", {"email": "t3a@example.com"})["request_id"]
    pipe.resolve()
    received = _item(pipe, request_id, "EVENT")["received_at"]["S"]
    assert _item(pipe, request_id, "JOB#webhook")["chosen_at"] == {"S": received}
    vendor = Vendor()
    work(pipe, "webhook", vendor)
    assert [job.chosen_at for job in vendor.received] == [received]
    # and once done, the item keeps it no longer (only the send needed it; 1 KB: its size test)
    assert "chosen_at" not in _item(pipe, request_id, "JOB#webhook")


def test_a_job_stored_before_the_choice_time_was_kept_is_still_delivered(
    pipe: Pipeline,
) -> None:
    # Given a job queued before the upgrade: its item has no chosen_at
    request_id = pipe.post("/v1/opt-out", {"email": "t3b@example.com"})["request_id"]
    pipe.resolve()
    pipe.aws.dynamodb.update_item(
        TableName=pipe.aws.table_name,
        Key={"pk": {"S": f"REQ#{request_id}"}, "sk": {"S": "JOB#webhook"}},
        UpdateExpression="REMOVE chosen_at",
    )
    # When the worker takes its message
    vendor = Vendor()
    work(pipe, "webhook", vendor)
    # Then the connector gets it, with no choice time (it says now, as before)
    assert [(job.request_id, job.chosen_at) for job in vendor.received] == [(request_id, "")]
    assert _item(pipe, request_id, "JOB#webhook")["status"] == {"S": "done"}


def test_a_job_made_for_a_batch_of_requests_carries_the_latest_choice() -> None:
    outbox = Outbox()
    for received in ("2026-12-01T10:00:00.000Z", "2026-12-01T10:00:02.500Z",
                     "2026-12-01T09:59:59.999Z"):  # fmt: skip
        outbox.note_choice(received)
    assert outbox.chosen_at == "2026-12-01T10:00:02.500Z"
    outbox.clear()
    assert outbox.chosen_at == ""
