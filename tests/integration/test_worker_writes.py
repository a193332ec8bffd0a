"""How often the worker writes a job: once per delivery attempt, after the vendor call (no
claim before it). What that allows, two deliveries of one job at once, ends in one receipt."""

import hashlib
import math
from datetime import datetime
from typing import Any

import boto3
import pytest

from optout.connectors.hashing import sha256_hex
from optout.store import keys
from optout.store.codec import deserialize, serialize
from optout.store.delivery import settled
from tests.integration.test_worker import EMAIL, Stack, stack  # noqa: F401 - the fixture
from tests.support.aws_hooks import lose_answer, session_hooks
from tests.support.iam import current_function

ANSWERED_AT = "2026-11-01T12:00:00.000Z"  # a no_record job's completed_at
ANSWERED_EPOCH = int(datetime.fromisoformat(ANSWERED_AT).timestamp())


def test_a_delivered_job_is_written_once_and_only_after_the_vendor_call(
    stack: Stack,  # noqa: F811 - the fixture imported above
) -> None:
    # Given a pending webhook job and its message
    stack.put_request("r1", ["webhook"], EMAIL)
    stack.send("webhook", "r1")
    writes: list[str] = []
    sandbox = stack.server.sandboxes["webhook"]
    assert boto3.DEFAULT_SESSION is not None
    events = boto3.DEFAULT_SESSION.events
    seen_at_write: list[int] = []

    def hook(params: dict[str, Any], **_: Any) -> None:
        if params.get("Key", {}).get("sk", {}).get("S", "").startswith("JOB#"):
            writes.append(params["Key"]["sk"]["S"])
            seen_at_write.append(len(sandbox.recorded()))

    events.register("provide-client-params.dynamodb.UpdateItem", hook, unique_id="w")
    try:
        # When the worker delivers it
        answer, _ = stack.run("webhook")
    finally:
        events.unregister("provide-client-params.dynamodb.UpdateItem", unique_id="w")
    # Then the job item was written once, after the vendor had the opt-out, and it is done
    assert answer["batchItemFailures"] == []
    assert writes == ["JOB#webhook"] and seen_at_write == [1]
    job = stack.job("r1", "webhook")
    assert job["status"] == "done" and job["attempts"] == 1


def test_the_same_job_twice_in_one_batch_reaches_the_vendor_once(
    stack: Stack,  # noqa: F811
) -> None:
    # Given two messages for one pending job (SQS delivered a duplicate), in one batch
    stack.put_request("r1", ["webhook"], EMAIL)
    stack.send("webhook", "r1")
    stack.send("webhook", "r1")
    # When the worker takes the batch
    answer, messages = stack.run("webhook")
    # Then both messages are acknowledged, the vendor was called once, and the job is done
    assert len(messages) == 2 and answer["batchItemFailures"] == []
    assert len(stack.server.sandboxes["webhook"].recorded()) == 1
    job = stack.job("r1", "webhook")
    assert job["status"] == "done" and job["attempts"] == 1


def test_two_deliveries_of_one_job_at_once_leave_one_receipt_and_one_done_mark(
    stack: Stack,  # noqa: F811
) -> None:
    # Given a pending job carried by an identity's in-flight mark, and a second delivery of it
    # that runs while the first is in its vendor call (both read the job as pending)
    stack.put_request("r1", ["webhook"], EMAIL)
    _flight(stack, "r1", "webhook")
    stack.send("webhook", "r1")
    services = stack.worker.services()
    connector = services.connector_for(services.delivery.systems.get("webhook"))
    original = connector.deliver
    second: list[Any] = []
    nested = [False]

    def deliver_while_another_runs(jobs: Any) -> Any:
        if not nested[0]:  # the first delivery: the duplicate arrives meanwhile and finishes
            nested[0] = True
            # The test's own send, not the worker's (whose role may not send to its queue)
            outside = current_function.set(None)
            try:
                stack.send("webhook", "r1")
            finally:
                current_function.reset(outside)
            second.append(stack.run("webhook"))
        return original(jobs)

    connector.deliver = deliver_while_another_runs  # type: ignore[method-assign]
    try:
        # When the first delivery completes after the second one did
        answer, _ = stack.run("webhook")
    finally:
        connector.deliver = original  # type: ignore[method-assign]
    # Then the vendor heard the opt-out twice (harmless: opting out twice is one opt-out),
    # both messages are acknowledged, and the job holds one final receipt and one attempt
    assert len(stack.server.sandboxes["webhook"].recorded()) == 2
    assert answer["batchItemFailures"] == [] and second[0][0]["batchItemFailures"] == []
    job = stack.job("r1", "webhook")
    assert job["status"] == "done" and job["attempts"] == 1
    # And the identity's marks read as confirmed, with nothing left in flight
    assert settled(stack.table, {"webhook": _mark(stack, "webhook")})["webhook"][:2] == (
        {"sale", "share"},
        set(),
    )


def test_a_done_job_writes_its_receipt_and_no_mark(
    stack: Stack,  # noqa: F811
) -> None:
    # Given a pending job whose identity the resolver marked in flight for it
    stack.put_request("r1", ["webhook"], EMAIL)
    _flight(stack, "r1", "webhook")
    stack.send("webhook", "r1")
    written: list[str] = []
    assert boto3.DEFAULT_SESSION is not None
    events = boto3.DEFAULT_SESSION.events

    def hook(params: dict[str, Any], **_: Any) -> None:
        written.append(params.get("Key", {}).get("sk", {}).get("S", ""))

    events.register("provide-client-params.dynamodb.UpdateItem", hook, unique_id="m")
    try:
        # When the vendor confirms it
        answer, _ = stack.run("webhook")
    finally:
        events.unregister("provide-client-params.dynamodb.UpdateItem", unique_id="m")
    # Then the job's receipt is the one write, and the mark, which names the job, reads done
    assert answer["batchItemFailures"] == [] and written == ["JOB#webhook"]
    assert settled(stack.table, {"webhook": _mark(stack, "webhook")})["webhook"][:2] == (
        {"sale", "share"},
        set(),
    )


def test_a_failed_job_frees_its_purposes_from_the_mark(
    stack: Stack,  # noqa: F811
) -> None:
    # Given a pending job marked in flight, and a vendor that refuses it for good
    stack.put_request("r1", ["webhook"], EMAIL)
    _flight(stack, "r1", "webhook")
    stack.send("webhook", "r1")
    stack.server.sandboxes["webhook"].set_faults(1.0, 400)
    # When the worker delivers it
    stack.run("webhook")
    # Then the job failed and its purposes are no longer in flight (the next event resends)
    assert stack.job("r1", "webhook")["status"] == "failed"
    assert not _mark(stack, "webhook").get("inflight")
    assert settled(stack.table, {"webhook": _mark(stack, "webhook")})["webhook"][:2] == (
        set(),
        set(),
    )


def test_a_no_record_job_whose_marks_were_not_freed_frees_them_when_its_message_returns(
    stack: Stack,  # noqa: F811
) -> None:
    # Given a job the vendor answered no_record, whose worker crashed before freeing its
    # identity's mark (the receipt is written, the mark still holds the purposes in flight)
    stack.put_request("r1", ["webhook"], EMAIL)
    _flight(stack, "r1", "webhook")
    stack.aws.dynamodb.update_item(
        TableName=stack.aws.table_name,
        Key={"pk": {"S": "REQ#r1"}, "sk": {"S": "JOB#webhook"}},
        UpdateExpression="SET #s = :s, completed_at = :at",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={":s": {"S": "no_record"}, ":at": {"S": ANSWERED_AT}},
    )
    # When its message comes back to the worker
    stack.send("webhook", "r1")
    answer, _ = stack.run("webhook")
    # Then nothing is sent, and the mark is freed: the next event may ask the vendor again
    assert answer["batchItemFailures"] == []
    assert stack.server.sandboxes["webhook"].recorded() == []
    mark = _mark(stack, "webhook")
    assert not mark.get("inflight")
    # And stamped with when the vendor answered (not when the message came back), for the
    # resolver's quiet period
    assert (mark["no_record_at"], mark["no_record_job"]) == (ANSWERED_EPOCH, "r1:webhook")


def test_a_no_record_answer_frees_and_stamps_each_mark_in_one_write(
    stack: Stack,  # noqa: F811
) -> None:
    # Given a webhook job for a person the receiver holds no record of, its identity in flight
    stack.put_request("r1", ["webhook"], EMAIL)
    _flight(stack, "r1", "webhook")
    # (the stack's webhook is sent sha256 hashes)
    stack.server.sandboxes["webhook"].vendor.unknown = {sha256_hex(EMAIL[0]["value"])}
    stack.send("webhook", "r1")
    writes: list[str] = []

    def hook(params: dict[str, Any], **_: Any) -> None:
        if params.get("Key", {}).get("sk", {}).get("S", "").startswith("DELIVERY#"):
            writes.append(params["UpdateExpression"])

    assert boto3.DEFAULT_SESSION is not None
    events = boto3.DEFAULT_SESSION.events
    events.register("provide-client-params.dynamodb.UpdateItem", hook, unique_id="marks")
    try:
        # When the worker delivers it and the receiver answers "no such person"
        answer, _ = stack.run("webhook")
    finally:
        events.unregister("provide-client-params.dynamodb.UpdateItem", unique_id="marks")
    # Then the job is no_record, and its identity's mark is freed and stamped with the
    # answer's time and the job, by one write (the free itself)
    assert answer["batchItemFailures"] == []
    job = stack.job("r1", "webhook")
    assert job["status"] == "no_record"
    assert len(writes) == 1 and "DELETE inflight" in writes[0]
    mark = _mark(stack, "webhook")
    # the stamp rounds up: never before the answer (review s26 counsel F9)
    answered = math.ceil(datetime.fromisoformat(job["completed_at"]).timestamp())
    assert not mark.get("inflight")
    assert (mark["no_record_at"], mark["no_record_job"]) == (answered, "r1:webhook")


def test_a_submitted_job_whose_answer_is_lost_still_schedules_its_status_check(
    stack: Stack,  # noqa: F811
) -> None:
    # Given a pending Google Ads job (the vendor answers "submitted"), and the answer to the
    # worker's submit write lost after it committed (botocore sends the same write again)
    stack.put_request("r1", ["google_ads"], EMAIL)
    stack.send("google_ads", "r1")
    handler, lost = lose_answer(lambda body: "submitted_at" in body)
    with session_hooks("submit-lost", stack.worker.services.cache_clear) as register:
        register("needs-retry.dynamodb.UpdateItem", handler)
        # When the worker delivers it
        answer, _ = stack.run("google_ads")
    # Then the retry's refused condition is read as our own write: the job is submitted once
    # and its delayed status check is on the queue (without it, it stays submitted for good)
    assert lost == [1] and answer["batchItemFailures"] == []
    job = stack.job("r1", "google_ads")
    assert (job["status"], job["attempts"]) == ("submitted", 1)
    assert stack.delayed("google_ads") == 1


@pytest.mark.parametrize("answer", ["failed", "no_record"])
def test_a_final_write_whose_answer_is_lost_still_frees_its_marks(
    stack: Stack,  # noqa: F811
    answer: str,
) -> None:
    # Given a pending webhook job marked in flight, a receiver that refuses it for good (or
    # holds no such person), and the answer to the worker's final write lost after it
    # committed (botocore sends the same conditional write again, which finds the job no
    # longer pending)
    stack.put_request("r1", ["webhook"], EMAIL)
    _flight(stack, "r1", "webhook")
    stack.send("webhook", "r1")
    sandbox = stack.server.sandboxes["webhook"]
    if answer == "failed":
        sandbox.set_faults(1.0, 400)
    else:
        sandbox.vendor.unknown = {hashlib.sha256(EMAIL[0]["value"].encode()).hexdigest()}
    handler, lost = lose_answer(lambda body: "completed_at" in body)
    with session_hooks("finish-lost", stack.worker.services.cache_clear) as register:
        register("needs-retry.dynamodb.UpdateItem", handler)
        # When the worker delivers it
        stack.run("webhook")
    # Then the retry's refused condition is read as our own write: the job is final once,
    # its purposes are freed (the next event asks the vendor again), and a failure is listed
    # for the operator's replay
    job = stack.job("r1", "webhook")
    assert lost == [1] and (job["status"], job["attempts"]) == (answer, 1)
    assert not _mark(stack, "webhook").get("inflight")
    listed = [i["sk"] for i in stack.aws.items() if i["pk"] == keys.failed_pk("webhook")]
    assert listed == (["r1:webhook"] if answer == "failed" else [])


def _mark_naming_a_missing_job() -> dict[str, object]:
    """A webhook mark for sale naming job r9 (never written), expiring at 2,000,000,000."""
    return {"pk": IDENTITY_PK, "sk": "DELIVERY#webhook", "inflight": {"sale"},
            "job_sale": "r9:webhook", "expires_at": 2_000_000_000}  # fmt: skip


def test_a_mark_naming_a_missing_job_reads_in_flight_until_the_mark_has_expired(
    stack: Stack,  # noqa: F811
) -> None:
    # Given a mark whose named job does not exist, written with the retention from now
    mark = _mark_naming_a_missing_job()
    # When an operator view reads it before its expiry
    found = settled(stack.table, {"webhook": mark}, now=1_999_999_999)
    # Then nothing says the vendor confirmed it: the purpose is in flight
    assert found["webhook"] == (set(), {"sale"}, (), set(), ())


def test_a_mark_naming_a_job_gone_past_the_retention_reads_confirmed(
    stack: Stack,  # noqa: F811
) -> None:
    # Given a mark whose named job does not exist, the mark itself past its expiry (so the
    # job, made before it with the same retention, expired by the TTL)
    mark = _mark_naming_a_missing_job()
    # When an operator view reads it
    found = settled(stack.table, {"webhook": mark}, now=2_000_000_001)
    # Then the purpose reads confirmed, as the mark's done set said before receipts
    assert found["webhook"] == ({"sale"}, set(), (), set(), ())


IDENTITY_PK = "ID#email#k1"


def _flight(running: Stack, request_id: str, system: str) -> None:
    """The job's identity in flight, as the resolver leaves it."""
    flights = [{"pk": IDENTITY_PK, "purposes": ["sale", "share"]}]
    running.aws.dynamodb.update_item(
        TableName=running.aws.table_name,
        Key={"pk": {"S": f"REQ#{request_id}"}, "sk": {"S": f"JOB#{system}"}},
        UpdateExpression="SET flights = :f",
        ExpressionAttributeValues=serialize({":f": flights}),
    )
    running.aws.dynamodb.put_item(
        TableName=running.aws.table_name,
        Item={
            "pk": {"S": IDENTITY_PK},
            "sk": {"S": f"DELIVERY#{system}"},
            "inflight": {"SS": ["sale", "share"]},
            "job_sale": {"S": f"{request_id}:{system}"},
            "job_share": {"S": f"{request_id}:{system}"},
        },
    )


def _mark(running: Stack, system: str) -> dict[str, Any]:
    item = running.aws.dynamodb.get_item(
        TableName=running.aws.table_name,
        Key={"pk": {"S": IDENTITY_PK}, "sk": {"S": f"DELIVERY#{system}"}},
    )["Item"]
    return deserialize(item)
