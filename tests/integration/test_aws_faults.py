"""AWS faults injected with botocore event hooks: throttled writes, a partly failed
SendMessageBatch, a resolver dying mid-batch. The retry Lambda makes (the same records again),
and the reconciliation sweep behind it, leave every job created once and every job queued."""

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from optout.store.delivery import settled
from optout.store.table import Table
from tests.conftest import Aws
from tests.support.aws_hooks import lose_answer, session_hooks
from tests.support.pipeline import Pipeline, build_pipeline

EMAIL = "faults@example.com"
DEVICE = "dev-faultsfaultsfaults"


@pytest.fixture
def pipe(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> Iterator[Pipeline]:
    yield build_pipeline(aws, monkeypatch)


@pytest.fixture
def hooks(aws: Aws) -> Iterator[Callable[[str, Callable[..., Any]], None]]:
    """Register a handler on boto3's default session (clients made later get it)."""
    with session_hooks("fault") as register:
        yield register


def jobs(pipe: Pipeline) -> list[tuple[str, str]]:
    return sorted(
        (i["request_id"], i["system"]) for i in pipe.items() if i["sk"].startswith("JOB#")
    )


def queued(pipe: Pipeline) -> list[tuple[str, str]]:
    return sorted((m["request_id"], m["system"]) for ms in pipe.drain_all().values() for m in ms)


def fail_times(times: int, code: str, operation: str) -> Callable[..., None]:
    left = [times]

    def hook(params: dict[str, Any], **_: Any) -> None:
        if left[0] > 0 and _is_job_write(params):
            left[0] -= 1
            raise ClientError({"Error": {"Code": code, "Message": "injected"}}, operation)

    return hook


def _is_job_write(params: dict[str, Any]) -> bool:
    """The resolver's write of a job item (a PutItem of a `JOB#<system>` item)."""
    return str(params.get("Item", {}).get("sk", {}).get("S", "")).startswith("JOB#")


JOB_WRITE = "provide-client-params.dynamodb.PutItem"


def test_a_throttled_job_write_fails_its_record_and_the_retry_queues_every_job_once(
    pipe: Pipeline, hooks: Callable[[str, Callable[..., Any]], None]
) -> None:
    # Given two opt-outs in one batch, and DynamoDB throttling the resolver's second job write
    pipe.post("/v1/consent", {"device_id": DEVICE, "opt_out": {"sale": True}})
    pipe.post("/v1/opt-out", {"email": EMAIL})
    batch = pipe.event_records()
    calls = [0]

    def throttle_second(params: dict[str, Any], **_: Any) -> None:
        if not _is_job_write(params):
            return
        calls[0] += 1
        if calls[0] == 2:
            raise ClientError(
                {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "x"}},
                "PutItem",
            )

    hooks(JOB_WRITE, throttle_second)
    # When the resolver runs, and Lambda retries the records it reported
    first = pipe.resolve(batch)
    failed = {f["itemIdentifier"] for f in first["batchItemFailures"]}
    retry = [r for r in batch if r["dynamodb"]["SequenceNumber"] in failed]
    second = pipe.resolve(retry)
    # Then one record failed alone, and after its retry every job exists once and is queued
    assert len(failed) == 1 and second == {"batchItemFailures": []}
    assert len(jobs(pipe)) == len(set(jobs(pipe))) > 1
    assert set(queued(pipe)) == set(jobs(pipe))


def test_a_partly_failed_send_message_batch_loses_no_job(
    pipe: Pipeline, hooks: Callable[[str, Callable[..., Any]], None]
) -> None:
    # Given two opt-outs in one batch, and SQS refusing one entry of the resolver's first
    # SendMessageBatch (one per queue: each queue's holds a job of each opt-out)
    pipe.post("/v1/opt-out", {"email": EMAIL})
    pipe.post("/v1/opt-out", {"email": "other." + EMAIL})
    batch = pipe.event_records()
    dropped: list[str] = []  # the refused entry's id, once
    unreported: list[str] = []

    def drop_last(params: dict[str, Any], **_: Any) -> None:
        if not dropped and len(params["Entries"]) > 1:
            dropped.append(params["Entries"].pop()["Id"])
            unreported.append(dropped[0])

    def report_dropped(parsed: dict[str, Any], **_: Any) -> None:
        if unreported:
            failure = {"Id": unreported.pop(), "SenderFault": False, "Code": "InternalError"}
            parsed["Failed"] = [failure]

    hooks("provide-client-params.sqs.SendMessageBatch", drop_last)
    hooks("after-call.sqs.SendMessageBatch", report_dropped)
    # When the resolver runs (the invocation fails) and Lambda retries the batch
    with pytest.raises(RuntimeError, match="SendMessageBatch failed"):
        pipe.resolve(batch)
    assert pipe.resolve(batch) == {"batchItemFailures": []}
    # Then a message was really refused, and the retry alone queues every job (its own jobs
    # are sent again, not left for the sweep), none created twice
    assert dropped
    assert len(jobs(pipe)) == len(set(jobs(pipe))) > 1
    assert set(queued(pipe)) == set(jobs(pipe))


def test_a_resolver_dying_mid_batch_is_retried_without_duplicate_jobs(
    pipe: Pipeline, hooks: Callable[[str, Callable[..., Any]], None]
) -> None:
    # Given a batch of two opt-outs, and the resolver dying (an error it does not expect) on
    # its first job write
    pipe.post("/v1/consent", {"device_id": DEVICE, "opt_out": {"sale": True}})
    pipe.post("/v1/opt-out", {"email": EMAIL})
    batch = pipe.event_records()
    hooks(JOB_WRITE, fail_times(1, "InternalServerError", "PutItem"))
    # When Lambda retries what failed (the whole batch, as after a crash)
    pipe.resolve(batch)
    assert pipe.resolve(batch) == {"batchItemFailures": []}
    # Then every job exists once and is queued at least once
    assert len(jobs(pipe)) == len(set(jobs(pipe))) > 1
    assert set(queued(pipe)) == set(jobs(pipe))


def _is_mark_write(params: dict[str, Any]) -> bool:
    """The resolver's in-flight mark of an identity (an UpdateItem of a `DELIVERY#` item)."""
    return str(params.get("Key", {}).get("sk", {}).get("S", "")).startswith("DELIVERY#")


def test_a_resolver_dying_between_a_job_and_its_mark_still_queues_the_job(
    pipe: Pipeline, hooks: Callable[[str, Callable[..., Any]], None]
) -> None:
    # Given two opt-outs, and the resolver dying after its first job is written, before that
    # job's identity is marked in flight
    pipe.post("/v1/consent", {"device_id": DEVICE, "opt_out": {"sale": True}})
    pipe.post("/v1/opt-out", {"email": EMAIL})
    batch = pipe.event_records()
    failed = [False]

    def die_on_first_mark(params: dict[str, Any], **_: Any) -> None:
        if _is_mark_write(params) and not failed[0]:
            failed[0] = True
            raise ClientError({"Error": {"Code": "InternalServerError", "Message": "x"}}, "x")

    hooks("provide-client-params.dynamodb.UpdateItem", die_on_first_mark)
    # When Lambda retries the batch (every record, as after a crash)
    first = pipe.resolve(batch)
    second = pipe.resolve(batch)
    # Then the job written before the crash stands and is queued, with every other job
    assert failed[0] and first["batchItemFailures"] and second == {"batchItemFailures": []}
    assert len(jobs(pipe)) == len(set(jobs(pipe))) > 1
    assert set(queued(pipe)) == set(jobs(pipe))


def test_a_mark_taken_by_another_job_meanwhile_leaves_no_job_of_this_event_for_it(
    pipe: Pipeline, hooks: Callable[[str, Callable[..., Any]], None]
) -> None:
    # Given an opt-out, and another request's job marking the identity's purposes in flight
    # for one system after this resolver read the marks and wrote its own job
    pipe.post("/v1/opt-out", {"email": EMAIL})
    batch = pipe.event_records()
    taken: list[str] = []

    def another_job_marks_first(params: dict[str, Any], **_: Any) -> None:
        if not _is_mark_write(params) or taken:
            return
        taken.append(params["Key"]["sk"]["S"])
        purposes = [v["S"] for k, v in params["ExpressionAttributeValues"].items()
                    if k[:2] == ":p" and k[2:].isdigit()]  # fmt: skip
        pipe.aws.dynamodb.put_item(
            TableName=pipe.aws.table_name,
            Item={
                "pk": params["Key"]["pk"],
                "sk": params["Key"]["sk"],
                "inflight": {"SS": purposes},
                **{f"job_{p}": {"S": "other-request:x"} for p in purposes},
                # as a resolver writes it: its job outlives this request's record, so it is
                # cited, not taken over (a mark without it predates the kept expiry)
                **{f"until_{p}": {"N": "4000000000"} for p in purposes},
            },
        )

    hooks("provide-client-params.dynamodb.UpdateItem", another_job_marks_first)
    # When the resolver runs
    assert pipe.resolve(batch) == {"batchItemFailures": []}
    # Then this event made no job for that system (the other one carries it), its other jobs
    # are queued, and no mark names a job that does not exist
    system = taken[0].removeprefix("DELIVERY#")
    made = jobs(pipe)
    assert system not in {s for _, s in made} and len(made) > 0
    assert set(queued(pipe)) == set(made)
    job_ids = {f"{r}:{s}" for r, s in made} | {"other-request:x"}
    marks = [i for i in pipe.items() if i["sk"].startswith("DELIVERY#")]
    named = {v for m in marks for k, v in m.items() if k.startswith("job_")}
    assert named <= job_ids


def test_a_mark_write_whose_answer_was_lost_counts_as_this_jobs_and_the_job_is_queued(
    pipe: Pipeline, hooks: Callable[[str, Callable[..., Any]], None]
) -> None:
    # Given an opt-out, and the resolver's first mark write committing but its answer lost,
    # so botocore sends the same write again (which finds the purposes already in flight)
    pipe.post("/v1/opt-out", {"email": EMAIL})
    batch = pipe.event_records()
    committed: list[str] = []

    def first_answer_lost(params: dict[str, Any], **_: Any) -> None:
        if _is_mark_write(params) and not committed:
            committed.append(params["Key"]["sk"]["S"])
            pipe.aws.dynamodb.update_item(**params)

    hooks("provide-client-params.dynamodb.UpdateItem", first_answer_lost)
    # When the resolver runs
    assert pipe.resolve(batch) == {"batchItemFailures": []}
    # Then that system's job stands and is queued, its mark names it, and the purposes read
    # in flight (nothing was sent yet), not confirmed
    system = committed[0].removeprefix("DELIVERY#")
    made = jobs(pipe)
    (request_id,) = {r for r, s in made if s == system}
    assert set(queued(pipe)) == set(made)
    mark = next(i for i in pipe.items() if i["sk"] == committed[0])
    assert {mark[f"job_{p}"] for p in mark["inflight"]} == {f"{request_id}:{system}"}
    table = Table(pipe.aws.dynamodb, pipe.aws.table_name)
    assert settled(table, {system: mark})[system][:2] == (set(), set(mark["inflight"]))


def test_a_job_write_whose_answer_was_lost_still_marks_its_identities(
    pipe: Pipeline,
) -> None:
    # Given an opt-out, and the resolver's first conditional job write committing but its
    # answer lost, so botocore sends it again and the retry fails its own condition (review
    # s17 F3: read as a replayed event, the job was queued without in-flight marks)
    pipe.post("/v1/opt-out", {"email": EMAIL})
    batch = pipe.event_records()
    handler, lost = lose_answer(lambda body: '"JOB#' in body and "attribute_not_exists" in body)
    with session_hooks("lost-job") as register:
        register("needs-retry.dynamodb.PutItem", handler)
        assert pipe.resolve(batch) == {"batchItemFailures": []}
    assert lost == [1]
    # Then every job is queued once and every job is named by its identity's mark
    made = jobs(pipe)
    assert sorted(queued(pipe)) == made
    marks = [i for i in pipe.items() if str(i["sk"]).startswith("DELIVERY#")]
    named = {v for m in marks for k, v in m.items() if k.startswith("job_")}
    assert {f"{r}:{s}" for r, s in made} <= named
    # And a second opt-out of the same person makes no second job for any system
    pipe.post("/v1/opt-out", {"email": EMAIL, "purposes": ["sale", "share"]})
    pipe.resolve()
    assert len({s for _, s in jobs(pipe)}) == len(jobs(pipe)) == len(made)
