"""An operator's replay of a system's failed jobs, whatever their size and whatever fails.

The admin route puts a replay event, the resolver carries it out from the stream (over moto),
and the worker's domain service (tests/integration/test_resolver_delivery.py's stand-in
vendor) sends what it queued. Faults are injected with botocore event hooks."""

import hashlib
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError
from botocore.exceptions import ClientError, ReadTimeoutError

from optout.resolver import service
from optout.store import keys
from optout.store.codec import serialize
from tests.conftest import Aws
from tests.integration.test_resolver_delivery import Vendor, emails_sent, work
from tests.support.aws_hooks import lose_answer, session_hooks
from tests.support.http_events import http_event, json_body
from tests.support.lambdas import FakeLambdaContext, invoke
from tests.support.pipeline import Pipeline, build_pipeline

SYSTEM = "salesforce"


@pytest.fixture
def pipe(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> Iterator[Pipeline]:
    yield build_pipeline(aws, monkeypatch)


@pytest.fixture
def hooks(pipe: Pipeline) -> Iterator[Callable[[str, Callable[..., Any]], None]]:
    """Register a handler on boto3's default session (clients made later get it), and have
    the resolver make its clients again (a warm container keeps the ones it made first)."""
    with session_hooks("replay-fault", pipe.resolver.resolver.cache_clear) as register:
        yield register


def failed_job(pipe: Pipeline, email: str, identities: int = 1) -> dict[str, Any]:
    """A salesforce job the vendor refused for good, carrying `email` and `identities - 1`
    more emails (each with its node, as a device that asserted them all would leave: a job
    this wide cannot come from one cluster, MAX_CLUSTER_SIZE is at most 99)."""
    pipe.post("/v1/opt-out", {"email": email, "purposes": ["sale"]})
    pipe.resolve()
    (job,) = [i for i in pipe.items("REQ#") if i["sk"] == f"JOB#{SYSTEM}" and _carries(i, email)]
    if identities > 1:
        first = job["identifiers"][0]
        (node,) = [i for i in pipe.items(keys.identity_pk(first["type"], first["key"]))
                   if i["sk"] == keys.NODE_SK]  # fmt: skip
        added = []
        for n in range(1, identities):
            key = hashlib.sha256(f"{email}-{n}".encode()).hexdigest()
            value = f"wide{n}.{email}"
            pk = keys.identity_pk("email", key)
            other = {**node, "pk": pk, "key": key, "value": value}
            pipe.aws.dynamodb.put_item(TableName=pipe.aws.table_name, Item=serialize(other))
            added.append({"type": "email", "key": key, "value": value})
        job["identifiers"] = job["identifiers"] + added
        job["flights"] = [{} for _ in job["identifiers"]]  # short form: each carries `sale`
        pipe.aws.dynamodb.put_item(TableName=pipe.aws.table_name, Item=serialize(job))
    work(pipe, SYSTEM, Vendor(refuse=True))
    (failed,) = [i for i in pipe.items(job["pk"]) if i["sk"] == f"JOB#{SYSTEM}"]
    assert failed["status"] == "failed" and len(failed["identifiers"]) == identities
    return failed


def _carries(job: dict[str, Any], email: str) -> bool:
    return any(i.get("value") == email for i in job["identifiers"])


def replay(pipe: Pipeline, system: str = SYSTEM) -> str:
    event = http_event("POST", f"/v1/admin/systems/{system}/replay",
                       path_parameters={"system": system}, iam=True)  # fmt: skip
    answer = invoke(pipe.admin, event)
    assert answer["statusCode"] == 202, answer["body"]
    return str(json_body(answer)["request_id"])


def job_of(pipe: Pipeline, job: dict[str, Any]) -> dict[str, Any]:
    (found,) = [i for i in pipe.items(job["pk"]) if i["sk"] == job["sk"]]
    return found


def listed(pipe: Pipeline) -> set[str]:
    return {i["sk"] for i in pipe.items(keys.failed_pk(SYSTEM))}


def marks(pipe: Pipeline) -> dict[str, dict[str, Any]]:
    return {i["pk"]: i for i in pipe.items("ID#") if i["sk"] == f"DELIVERY#{SYSTEM}"}


def resolution(pipe: Pipeline, request_id: str) -> dict[str, Any]:
    (found,) = [i for i in pipe.items(keys.request_pk(request_id)) if i["sk"] == "RESOLUTION"]
    return found


@pytest.mark.usefixtures("expressions_parsed_once")  # 150 marks: moto's parsing
def test_a_failed_job_of_150_identities_is_replayed_whole(pipe: Pipeline) -> None:
    # Given a salesforce job for 150 identities that failed for good (more than one
    # DynamoDB transaction holds: 100 items)
    job = failed_job(pipe, "wide@example.com", identities=150)
    # When an operator replays salesforce
    request_id = replay(pipe)
    assert pipe.resolve() == {"batchItemFailures": []}
    # Then the job is pending, off the failed list, every identity is marked in flight for it,
    # and the replay's record says it replayed one job
    again = job_of(pipe, job)
    assert (again["status"], again["replays"], listed(pipe)) == ("pending", 1, set())
    marked = marks(pipe)  # one Scan (the table does not change until the worker runs)
    named = {m.get("job_sale") for m in marked.values() if "sale" in m.get("inflight", ())}
    assert len(marked) == 150 and named == {job["job_id"]}
    assert all(m.get("expires_at") and m["kind"] == "delivery" for m in marked.values())
    assert resolution(pipe, request_id)["replayed"] == 1
    # ... and its message is queued: the worker sends all 150 emails
    vendor = Vendor()
    assert len(work(pipe, SYSTEM, vendor)) == 1
    assert len(set(emails_sent(vendor))) == 150


def test_a_mark_another_job_took_during_the_replay_keeps_that_jobs_name(
    pipe: Pipeline, hooks: Callable[[str, Callable[..., Any]], None]
) -> None:
    # Given a failed salesforce job for two identities, and another request's job marking one
    # of them in flight after the replay read the marks (just before the replay marks it)
    job = failed_job(pipe, "taken@example.com", identities=2)
    taken: list[str] = []

    def another_job_marks_first(params: dict[str, Any], **_: Any) -> None:
        writes = [params] + [op.get("Update", {}) for op in params.get("TransactItems", [])]
        for write in writes:
            key = write.get("Key", {})
            if taken or key.get("sk", {}).get("S") != f"DELIVERY#{SYSTEM}":
                continue
            taken.append(key["pk"]["S"])
            pipe.aws.dynamodb.put_item(TableName=pipe.aws.table_name, Item={
                "pk": key["pk"], "sk": key["sk"], "inflight": {"SS": ["sale"]},
                "job_sale": {"S": f"other-request:{SYSTEM}"},
            })  # fmt: skip

    hooks("provide-client-params.dynamodb.UpdateItem", another_job_marks_first)
    hooks("provide-client-params.dynamodb.TransactWriteItems", another_job_marks_first)
    # When an operator replays salesforce
    replay(pipe)
    assert pipe.resolve() == {"batchItemFailures": []}
    # Then the job is replayed (pending, queued) for the identity it could still mark, the
    # taken mark keeps the other job's name, and the job's flights no longer claim it
    again = job_of(pipe, job)
    assert again["status"] == "pending" and taken
    found = marks(pipe)
    assert found[taken[0]]["job_sale"] == f"other-request:{SYSTEM}"
    (other,) = set(found) - {taken[0]}
    assert found[other]["job_sale"] == job["job_id"] and "sale" in found[other]["inflight"]
    assert [f["pk"] for f in again["flights"]] == [other]
    # ... and when it fails again it frees only its own identity, never the other job's
    assert len(work(pipe, SYSTEM, Vendor(refuse=True))) == 1
    found = marks(pipe)
    assert "sale" in found[taken[0]]["inflight"] and "sale" not in found[other].get("inflight", ())


@pytest.mark.parametrize("transport", [False, True], ids=["refused", "read_timeout"])
def test_a_job_whose_replay_write_is_refused_stays_failed_and_the_others_replay(
    pipe: Pipeline, hooks: Callable[[str, Callable[..., Any]], None], transport: bool
) -> None:
    # Given two failed salesforce jobs, and DynamoDB refusing the first replay write that
    # touches one of them with a ValidationException (as an oversized item or transaction)
    refused = failed_job(pipe, "refused@example.com")
    fine = failed_job(pipe, "fine@example.com")
    raised: list[str] = []

    def refuse_once(params: dict[str, Any], **_: Any) -> None:
        writes = [params] + [op.get("Update", {}) for op in params.get("TransactItems", [])]
        touches = any(w.get("Key", {}).get("pk", {}).get("S") == refused["pk"] for w in writes)
        if touches and not raised:
            raised.append(refused["job_id"])
            if transport:  # a timeout after the client's retries: no answer (review s17 F6)
                raise ReadTimeoutError(endpoint_url="https://dynamodb.invalid/")
            error = {"Code": "ValidationException", "Message": "injected"}
            raise ClientError({"Error": error}, "UpdateItem")

    hooks("provide-client-params.dynamodb.UpdateItem", refuse_once)
    hooks("provide-client-params.dynamodb.TransactWriteItems", refuse_once)
    # When an operator replays salesforce
    request_id = replay(pipe)
    assert pipe.resolve() == {"batchItemFailures": []}
    # Then the other job is replayed and queued, the refused one stays failed and listed, and
    # the replay's record counts it
    assert raised
    assert job_of(pipe, fine)["status"] == "pending"
    assert (job_of(pipe, refused)["status"], listed(pipe)) == ("failed", {refused["job_id"]})
    assert resolution(pipe, request_id)["not_replayed"] == 1
    vendor = Vendor()
    assert len(work(pipe, SYSTEM, vendor)) == 1 and emails_sent(vendor) == ["fine@example.com"]
    # ... and the next replay sends it
    replay(pipe)
    assert pipe.resolve() == {"batchItemFailures": []}
    vendor = Vendor()
    assert len(work(pipe, SYSTEM, vendor)) == 1
    assert emails_sent(vendor) == ["refused@example.com"]


def test_a_replay_that_dies_before_its_message_is_sent_is_sent_by_its_retry(
    pipe: Pipeline, hooks: Callable[[str, Callable[..., Any]], None]
) -> None:
    # Given a failed salesforce job, and SQS refusing the replay's first send
    job = failed_job(pipe, "unsent@example.com")
    sends: list[int] = []

    def refuse_first_send(**_: Any) -> None:
        sends.append(1)
        if len(sends) == 1:
            error = {"Code": "InternalError", "Message": "injected"}
            raise ClientError({"Error": error}, "SendMessageBatch")

    hooks("before-call.sqs.SendMessageBatch", refuse_first_send)
    # When the resolver fails on the replay event and Lambda retries the same record
    replay(pipe)
    batch = pipe.event_records()
    with suppress(BatchProcessingError, ClientError):  # the invocation fails, wherever it sends
        pipe.resolve(batch)
    assert len(sends) == 1 and job_of(pipe, job)["status"] == "pending"
    assert pipe.resolve(batch) == {"batchItemFailures": []}
    # Then the job is not left pending without a message: the retry queued it, and it is
    # off the failed list only now
    assert listed(pipe) == set()
    vendor = Vendor()
    assert len(work(pipe, SYSTEM, vendor)) == 1 and emails_sent(vendor) == ["unsent@example.com"]
    assert job_of(pipe, job)["status"] == "done"


def test_a_replay_whose_reset_answer_is_lost_still_sends_the_job(
    pipe: Pipeline, hooks: Callable[[str, Callable[..., Any]], None]
) -> None:
    # Given a failed salesforce job, and the answer to the replay's reset of it lost after
    # the write committed (botocore sends the same conditional write again)
    job = failed_job(pipe, "lost-answer@example.com")
    handler, lost = lose_answer(lambda body: "replayed_at" in body and ":failed" in body)
    hooks("needs-retry.dynamodb.UpdateItem", handler)
    # When an operator replays salesforce
    request_id = replay(pipe)
    assert pipe.resolve() == {"batchItemFailures": []}
    # Then the retry's refused condition is read as our own write: the job is pending, off
    # the failed list, counted as replayed, and its message is queued
    assert lost == [1]
    again = job_of(pipe, job)
    assert (again["status"], again["replays"], listed(pipe)) == ("pending", 1, set())
    assert resolution(pipe, request_id)["replayed"] == 1
    vendor = Vendor()
    assert len(work(pipe, SYSTEM, vendor)) == 1
    assert emails_sent(vendor) == ["lost-answer@example.com"]


def test_a_replay_asks_the_deadline_watch_to_read_each_replayed_request_at_its_next_run(
    pipe: Pipeline,
) -> None:
    # Given a failed job (its request's next planned check may be a day away)
    job = failed_job(pipe, "remind@example.com")
    before = datetime.now(UTC)
    # When an operator replays salesforce
    replay(pipe)
    pipe.resolve()
    # Then a reminder for that request is due now, not at its planned check
    due = [i for i in pipe.items("WATCH") if i["sk"].startswith("DUE#")
           and i["request_id"] == job["request_id"]]  # fmt: skip
    assert len(due) == 1
    at = datetime.fromisoformat(due[0]["sk"].split("#")[1].replace("Z", "+00:00"))
    assert before - timedelta(seconds=1) <= at <= datetime.now(UTC)
    assert due[0]["expires_at"] > 0


def test_a_replayed_job_names_the_replay_that_re_sent_it(pipe: Pipeline) -> None:
    # Given a job that failed for good
    job = failed_job(pipe, "named@example.com")
    # When an operator replays its system
    request_id = replay(pipe)
    assert pipe.resolve() == {"batchItemFailures": []}
    # Then the job names that replay, whose record says who asked for it
    assert job_of(pipe, job)["replayed_by"] == request_id
    detail = invoke(pipe.admin, http_event("GET", f"/v1/admin/requests/{job['request_id']}",
                                           path_parameters={"request_id": job["request_id"]},
                                           iam=True))  # fmt: skip
    (system,) = [s for s in json_body(detail)["systems"] if s["system"] == SYSTEM]
    assert system["replayed_by"] == request_id


# -- a replay bounded per event -----------------------------------------------------------------


def events_of(pipe: Pipeline, request_id: str) -> dict[str, Any]:
    (found,) = [i for i in pipe.items(keys.request_pk(request_id)) if i["sk"] == "EVENT"]
    return found


def test_a_replay_of_more_jobs_than_its_bound_finishes_through_follow_ups_sending_each_once(
    pipe: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given five failed salesforce jobs, and a replay bound of two listings per event
    jobs = [failed_job(pipe, f"bound{n}@example.com") for n in range(5)]
    monkeypatch.setattr(service, "MAX_REPLAY_JOBS", 2)
    # When an operator replays salesforce and the resolver carries out what the stream brings
    first = replay(pipe)
    chain = [first]
    for _ in range(5):
        assert pipe.resolve() == {"batchItemFailures": []}
        following = resolution(pipe, chain[-1]).get("continued_by")
        if not following:
            break
        chain.append(str(following))
    # Then it took three events, each following the one before, for the same system and signer
    assert [resolution(pipe, r)["replayed"] for r in chain] == [2, 2, 1]
    for follow_up in chain[1:]:
        event = events_of(pipe, follow_up)
        assert event["event_type"] == "replay"
        assert event["operation"]["continues"] == first
        assert event["operation"]["system"] == SYSTEM
        assert event["evidence"] == events_of(pipe, first)["evidence"]
    # ... every job was re-sent exactly once, none is left listed, and nothing more comes
    sent = Counter(m["job_id"] for m in pipe.drain(SYSTEM))
    assert sent == Counter(j["job_id"] for j in jobs)
    assert listed(pipe) == set()
    assert pipe.event_records() == []


def test_a_replay_killed_after_its_first_chunk_has_sent_it_and_its_retry_sends_the_rest(
    pipe: Pipeline, hooks: Callable[[str, Callable[..., Any]], None],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    # Given five failed salesforce jobs, sent two at a time, and the replay's run killed at
    # its second send (as a timeout would stop it there)
    jobs = [failed_job(pipe, f"killed{n}@example.com") for n in range(5)]
    monkeypatch.setattr(service, "REPLAY_CHUNK", 2)
    sends: list[int] = []

    def killed_at_second_send(**_: Any) -> None:
        sends.append(1)
        if len(sends) == 2:
            raise TimeoutError("killed")

    hooks("before-call.sqs.SendMessageBatch", killed_at_second_send)
    request_id = replay(pipe)
    batch = pipe.event_records()
    with suppress(BatchProcessingError, TimeoutError):
        pipe.resolve(batch)
    # Then the first chunk is out and off the list; every other job is still listed (pending
    # or failed), so no job is pending with neither a message nor a listing
    out = {m["job_id"] for m in pipe.drain(SYSTEM)}
    assert len(out) == 2
    still = {j["job_id"] for j in jobs} - out
    assert listed(pipe) == still
    # ... and the record's retry sends the rest, each once
    assert pipe.resolve(batch) == {"batchItemFailures": []}
    assert Counter(m["job_id"] for m in pipe.drain(SYSTEM)) == Counter(still)
    assert listed(pipe) == set()
    assert resolution(pipe, request_id)["replayed"] == 3


@dataclass
class NoTimeLeft(FakeLambdaContext):
    def get_remaining_time_in_millis(self) -> int:
        return 0


def test_a_replay_out_of_time_starts_no_job_and_its_follow_up_replays_them(
    pipe: Pipeline,
) -> None:
    # Given two failed salesforce jobs, and a replay reaching a resolver with no time left
    jobs = [failed_job(pipe, f"late{n}@example.com") for n in range(2)]
    request_id = replay(pipe)
    answer = pipe.resolver.handler({"Records": pipe.event_records()}, NoTimeLeft())
    assert answer == {"batchItemFailures": []}
    # Then it starts none of them: both stay failed and listed, and no message goes out
    assert [job_of(pipe, j)["status"] for j in jobs] == ["failed", "failed"]
    assert len(listed(pipe)) == 2 and pipe.drain(SYSTEM) == []
    # ... and its follow-up, resolved with time, replays both
    follow_up = resolution(pipe, request_id)["continued_by"]
    assert pipe.resolve() == {"batchItemFailures": []}
    assert resolution(pipe, follow_up)["replayed"] == 2
    assert {m["job_id"] for m in pipe.drain(SYSTEM)} == {j["job_id"] for j in jobs}
