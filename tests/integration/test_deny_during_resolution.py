"""A denial that lands while the resolver resolves the request (session 36, proof35 L2).

The resolver reads the request's DENIAL once, with its identity nodes; a denial written after
that read is too late to stop the run, whose jobs go to the vendors. Before session 36 the deny
answered 200 `denied` and nothing said so: only the record's timestamps showed jobs made after
`denied_at`. Now the deny reads the request again after its write and answers the systems its
jobs were made for (`systems_under_way`, and `resolved` false while the resolver has recorded
nothing), and the resolver reads the denials of its batch's requests again once their jobs are
stored and before they are sent, adding its systems to the denial's record. Interleaved on
purpose: the denial lands before each of the run's job writes in turn, and after its last read.
"""

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError

from local.aws_resources import create_queues
from local.moto_guard import guarded
from optout.jobs_queue import JobQueue
from optout.ops import denial as denial_module
from optout.ops.denial import DenialService
from optout.resolver import service as resolver_service
from optout.resolver.outbox import Outbox
from optout.store import keys
from optout.store.batch import put
from optout.store.requests import load_request, mark_rederived, note_under_way
from optout.store.table import Table
from tests.conftest import Aws
from tests.integration.test_operator_routes import call, deny, ok
from tests.integration.test_resolver_interleaving import (
    QUEUE_KEYS,
    event_item,
    fresh_table,
    resolver_on,
)
from tests.support.interleave import BatonClient, Scheduler
from tests.support.pipeline import Pipeline, build_pipeline

EMAIL = "deny-during@example.com"


@pytest.fixture
def pipe(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> Iterator[Pipeline]:
    with guarded():
        yield build_pipeline(aws, monkeypatch)


def job_systems(pipe: Pipeline, request_id: str) -> list[str]:
    """The systems of the request's own jobs, as stored now."""
    items = pipe.partition(f"REQ#{request_id}")
    return sorted(str(i["sk"]).removeprefix("JOB#") for i in items
                  if str(i["sk"]).startswith("JOB#"))  # fmt: skip


def denying_at(pipe: Pipeline, request_id: str, nth: int, answers: list[Any]) -> Callable[..., Any]:
    """`put_once` for the resolver: the operator's deny lands just before its `nth` job write
    (0: before the first); the deny's answer and the jobs stored then are kept in `answers`."""
    original = resolver_service.put_once
    seen: list[str] = []

    def put(table: Any, item: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        if str(item.get("sk", "")).startswith("JOB#"):
            if len(seen) == nth and not answers:
                answers.append((job_systems(pipe, request_id), ok(deny(pipe, request_id))))
            seen.append(str(item["sk"]))
        return original(table, item, *args, **kwargs)

    return put


def record_of(pipe: Pipeline, request_id: str) -> dict[str, Any]:
    path = f"/v1/admin/requests/{request_id}"
    return ok(call(pipe, "GET", path, params={"request_id": request_id}))  # type: ignore[no-any-return]


def sent(pipe: Pipeline) -> set[str]:
    """The request ids of every job message waiting (the queues are emptied)."""
    return {m["request_id"] for ms in pipe.drain_all().values() for m in ms}


@pytest.mark.parametrize("nth", [0, 1, 3, 5])
def test_a_denial_landing_while_the_jobs_are_made_names_every_system_they_go_to(
    pipe: Pipeline, monkeypatch: pytest.MonkeyPatch, nth: int
) -> None:
    # Given an opt-out the resolver has begun: it read no denial, and is making its jobs
    request_id = pipe.post("/v1/opt-out", {"email": EMAIL})["request_id"]
    answers: list[Any] = []
    monkeypatch.setattr(resolver_service, "put_once", denying_at(pipe, request_id, nth, answers))
    # When an operator's denial lands before its nth job write, and the run finishes
    assert pipe.resolve() == {"batchItemFailures": []}
    ((before, answer),) = answers
    made = job_systems(pipe, request_id)
    assert len(made) > nth and len(before) == nth
    # Then the deny's answer named the systems whose jobs were stored when it was written, and
    # said the resolver had not recorded the request yet (more may follow)
    assert answer["status"] == "denied"
    assert (answer["systems_under_way"], answer["resolved"]) == (before, False)
    # ... the run's jobs went on (a denial stops no job already begun) ...
    assert sent(pipe) == {request_id}
    # ... and the denial's record names every system they went to, as does the export
    record = record_of(pipe, request_id)
    assert record["status"] == "denied"
    assert record["denial"]["systems_under_way"] == made
    today = datetime.now(UTC).date().isoformat()
    export = ok(call(pipe, "POST", "/v1/admin/exports/range", {"from": today, "to": today}))
    (denial,) = [r for r in export["records"] if r["record"] == "denial"]
    assert denial["systems_under_way"] == made


def test_a_denial_landing_after_the_resolvers_last_read_is_answered_with_every_system(
    pipe: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given an opt-out whose run has stored its jobs and read no denial since, about to send
    request_id = pipe.post("/v1/opt-out", {"email": EMAIL})["request_id"]
    answers: list[Any] = []
    original = Outbox.flush

    def flush(self: Outbox, *args: Any, **kwargs: Any) -> None:
        if not answers:
            answers.append(ok(deny(pipe, request_id)))
        original(self, *args, **kwargs)

    monkeypatch.setattr(Outbox, "flush", flush)
    # When the denial lands then, and the run sends its jobs
    assert pipe.resolve() == {"batchItemFailures": []}
    # Then the deny's own answer named every system (the resolver's read came first)
    made = job_systems(pipe, request_id)
    ((answer),) = answers
    assert made and answer["systems_under_way"] == made and answer["resolved"] is False
    assert sent(pipe) == {request_id}
    assert record_of(pipe, request_id)["denial"]["systems_under_way"] == made


def test_a_denial_of_a_resolved_request_answers_its_jobs_under_way(pipe: Pipeline) -> None:
    # Given an opt-out resolved, its jobs sent and not answered yet
    request_id = pipe.post("/v1/opt-out", {"email": EMAIL})["request_id"]
    assert pipe.resolve() == {"batchItemFailures": []}
    made = job_systems(pipe, request_id)
    # When an operator denies it
    answer = ok(deny(pipe, request_id))
    # Then the answer says which systems its jobs may still reach, and that it was resolved
    assert (answer["systems_under_way"], answer["resolved"]) == (made, True)
    assert record_of(pipe, request_id)["denial"]["systems_under_way"] == made


def test_a_denial_before_the_resolution_names_no_system(pipe: Pipeline) -> None:
    # Given an opt-out the resolver has not taken yet
    request_id = pipe.post("/v1/opt-out", {"email": EMAIL})["request_id"]
    # When an operator denies it, and the resolver then takes it
    answer = ok(deny(pipe, request_id))
    assert pipe.resolve() == {"batchItemFailures": []}
    # Then nothing was under way, and nothing was made or sent since
    assert (answer["systems_under_way"], answer["resolved"]) == ([], False)
    assert job_systems(pipe, request_id) == [] and sent(pipe) == set()
    assert record_of(pipe, request_id)["denial"]["systems_under_way"] == []


def test_a_denial_before_the_record_names_a_further_job_finds_it_by_its_marker(
    pipe: Pipeline,
) -> None:
    # Given an opt-out whose run has so far stored only a further job (its split marker first,
    # then the job: several people named, or parts), and no RESOLUTION yet
    request_id = pipe.post("/v1/opt-out", {"email": EMAIL})["request_id"]
    table = Table(pipe.aws.dynamodb, pipe.aws.table_name)
    further = keys.own_request_id(request_id, "0123456789ab")
    expires = int((datetime.now(UTC) + timedelta(days=30)).timestamp())
    mark_rederived(table, request_id, keys.own_request_id(request_id, keys.SPLIT_MARK),
                   {further}, ["braze"], expires, kind=keys.SPLIT_MARK)  # fmt: skip
    put(table, {"pk": keys.request_pk(further), "sk": keys.job_sk("braze"), "kind": "job",
                "job_id": f"{further}:braze", "request_id": further, "system": "braze",
                "status": "pending", "expires_at": expires})  # fmt: skip
    # When an operator denies it
    answer = ok(deny(pipe, request_id))
    # Then the answer and the record name that job's system (the RESOLUTION, written last,
    # would have named it; the marker, written before the job, does)
    assert (answer["systems_under_way"], answer["resolved"]) == (["braze"], False)
    assert record_of(pipe, request_id)["denial"]["systems_under_way"] == ["braze"]


# Every single preemption (tests/support/interleave.py): the deny and one resolver run at once
# over one moto table, one stopped after each of its store calls in turn while the other runs
# to the end. Whatever the order, the record names every system a job was made for.
PREEMPTION_POINTS = range(1, 25)
REASON = "a burst of 400 requests from one IP"
OPERATOR = "arn:aws:iam::123456789012:user/operator"


@pytest.fixture
def jobs_queue(aws: Aws) -> JobQueue:
    urls, _, _ = create_queues(aws.sqs, QUEUE_KEYS, "deny-during")
    return JobQueue(aws.sqs, urls[QUEUE_KEYS[0]].replace(f"-{QUEUE_KEYS[0]}-", "-{queue_key}-"))


def deny_and_resolve_at_once(
    aws: Aws, queue: JobQueue, first: int, point: int
) -> tuple[set[str], set[str], set[str], list[str]]:
    """(the systems of the request's jobs, the denial's record of them, the deny's answer of
    them, the interleaving): an opt-out's deny and its resolution at once, on a fresh table."""
    event = event_item(0, ("own", 2, {"sale": True}, False))  # an opt-out naming an email
    request_id = str(event["request_id"])
    table = fresh_table(aws)
    try:
        put(table, dict(event))
        scheduler = Scheduler([(first, point), (1 - first, 10**6)])
        baton = Table(BatonClient(aws.dynamodb, scheduler), table.name)
        answers: list[Any] = []
        now = datetime.now(UTC)
        tasks = {
            "deny": lambda: answers.append(
                DenialService(baton).deny(request_id, "suspected_fraud", REASON, OPERATOR, now)),
            "resolver": lambda: resolver_on(baton, queue).process(dict(event)) and None,
        }  # fmt: skip
        with guarded():  # one thread at a time holds the baton: safe to swap
            scheduler.run(tasks)
        items = {i["sk"]: i for i in load_request(table, request_id, consistent=True)}
        made = {sk.removeprefix("JOB#") for sk in items if sk.startswith("JOB#")}
        recorded = set(items["DENIAL"].get("systems_under_way") or ())
        return made, recorded, set(answers[0].systems_under_way), scheduler.trace
    finally:
        aws.dynamodb.delete_table(TableName=table.name)


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_every_single_preemption_of_a_deny_and_a_resolution_records_every_job(
    aws: Aws, jobs_queue: JobQueue
) -> None:
    for first in (0, 1):
        for point in PREEMPTION_POINTS:
            # When the deny and the resolver run at once, one stopped after `point` calls
            made, recorded, answered, trace = deny_and_resolve_at_once(
                aws, jobs_queue, first, point
            )
            # Then the record names every job's system, and the answer none beyond them
            assert recorded == made, (first, point, trace)
            assert answered <= made, (first, point, trace)


def test_a_deny_sent_again_after_its_read_failed_completes_the_record(
    pipe: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given an opt-out resolved, its jobs sent and not answered yet, and a deny whose write
    # succeeded but whose read after it failed (DynamoDB throttling past botocore's retries):
    # the operator got a 500, and the record named no system (review s36)
    request_id = pipe.post("/v1/opt-out", {"email": EMAIL})["request_id"]
    assert pipe.resolve() == {"batchItemFailures": []}
    made = job_systems(pipe, request_id)
    original = note_under_way

    def throttled(*args: Any, **kwargs: Any) -> bool:
        error = {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "busy"}}
        raise ClientError(error, "UpdateItem")  # type: ignore[arg-type]

    monkeypatch.setattr(denial_module, "note_under_way", throttled)
    with pytest.raises(ClientError):  # the function's error: API Gateway answers 500
        deny(pipe, request_id)
    assert record_of(pipe, request_id)["denial"].get("systems_under_way") == []
    # When the operator sends the deny again
    monkeypatch.setattr(denial_module, "note_under_way", original)
    again = deny(pipe, request_id)
    # Then it is refused as before (already denied), and the record names the systems its
    # jobs may reach: the second read made what the first could not
    assert again["statusCode"] == 409
    assert record_of(pipe, request_id)["denial"]["systems_under_way"] == made
