"""One event resolved twice at once: the sweep's redrive of an event it found unresolved, and
its late stream record (review s22 race R5).

The first resolver writes the Braze job and is paused just before it marks the person in flight
for it; meanwhile the second finds the job stored ("a replayed event: the stored job stands")
and sends its message, and the worker ends it "no such person", freeing and stamping a mark the
first has not written yet. The first then marks the person in flight for a job that has ended,
and its write removes the quiet period's stamp."""

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from optout.connectors.base import Outcome
from optout.connectors.errors import DeliveryError
from optout.resolver.service import DAY, Resolver
from optout.store import delivery, keys
from optout.store.codec import serialize
from optout.timestamps import iso
from tests.conftest import Aws
from tests.integration.test_backfill import backfill
from tests.integration.test_resolver_delivery import Vendor, deliver
from tests.support import iam
from tests.support.pipeline import Pipeline, build_pipeline

EMAIL = "twice@example.com"


@pytest.fixture
def pipe(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> Iterator[Pipeline]:
    yield build_pipeline(aws, monkeypatch)


def resolution_of(pipe: Pipeline, request_id: str) -> dict[str, Any]:
    return next(i for i in pipe.partition(f"REQ#{request_id}") if i["sk"] == "RESOLUTION")


def resolve_twice_at_once(
    pipe: Pipeline, monkeypatch: pytest.MonkeyPatch, vendor: Any, body: dict[str, Any]
) -> str:
    """The opt-out `body` resolved by the late stream record's resolver, paused before its
    first Braze mark while the sweep's redrive resolves it and a worker delivers the job to
    `vendor`; its request id."""
    first: str = pipe.post("/v1/opt-out", body)["request_id"]
    records = pipe.event_records()
    original = delivery.mark_flight
    paused: list[str] = []

    def second_resolver_and_worker_first(
        table: Any, system: str, *args: Any, **kwargs: Any
    ) -> bool:
        if system == "braze" and not paused:
            paused.append(system)
            assert pipe.resolve(records) == {"batchItemFailures": []}  # the sweep's redrive
            outside = iam.current_function.set(None)  # the worker's calls are not the resolver's
            deliver(pipe, pipe.drain("braze"), vendor)
            iam.current_function.reset(outside)
        return bool(original(table, system, *args, **kwargs))

    monkeypatch.setattr(delivery, "mark_flight", second_resolver_and_worker_first)
    assert pipe.resolve(records) == {"batchItemFailures": []}  # the late stream record
    monkeypatch.setattr(delivery, "mark_flight", original)
    assert paused
    return first


@pytest.mark.parametrize("answer", ["no_record", "failed"])
def test_an_event_resolved_twice_at_once_leaves_no_mark_naming_a_job_that_has_ended(
    pipe: Pipeline, monkeypatch: pytest.MonkeyPatch, answer: str
) -> None:
    vendor = Vendor(refuse=True) if answer == "failed" else Vendor(status=answer)
    first = resolve_twice_at_once(pipe, monkeypatch, vendor, {"email": EMAIL, "purposes": ["sale"]})
    pipe.drain_all()
    # When the same person opts out again within the quiet period
    second = pipe.post("/v1/opt-out", {"email": EMAIL, "purposes": ["sale"]})["request_id"]
    pipe.resolve()
    # Then Braze is quiet for them, as after the same answer in the serial order (the mark the
    # first resolver wrote late named the ended job in flight, so the second cited it as its
    # proof, read processing, and waited for the sweep's re-open)
    resolution = resolution_of(pipe, second)
    assert "braze" not in (resolution.get("covered") or {})
    if answer == "no_record":
        assert [q["job_id"] for q in resolution["not_asked"]["braze"]] == [f"{first}:braze"]
    else:
        # after a failure the next request asks again, with a job of its own
        assert "braze" not in (resolution.get("not_asked") or {})
        assert any(i["sk"] == "JOB#braze" for i in pipe.partition(f"REQ#{second}"))
    # ... and the first request's job kept its answer (nothing re-planned over it)
    job = next(i for i in pipe.partition(f"REQ#{first}") if i["sk"] == "JOB#braze")
    assert job["status"] == answer


def test_a_done_job_found_in_the_race_keeps_the_marks_of_the_types_it_proved(
    pipe: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    # review s22 diff A2: Braze answered done having sent the email only; the worker freed the
    # customer id's mark (a type not proven), which sorts first, and the late resolver stopped
    # there, leaving the email it proved unmarked: the person's next opt-out sent Braze again
    body = {"email": EMAIL, "customer_id": "cust-000123", "purposes": ["sale"]}
    first = resolve_twice_at_once(pipe, monkeypatch, Vendor(sent=("email",)), body)
    pipe.drain_all()
    marks = {i["pk"].split("#")[1]: i for i in pipe.items("ID#") if i["sk"] == "DELIVERY#braze"}
    assert marks["email"]["job_sale"] == f"{first}:braze"
    assert "sale" in marks["email"]["inflight"]
    assert "sale" not in marks["customer_id"].get("inflight", set())
    # When the same person opts out again by email, Braze is not asked again: done proves it
    second = pipe.post("/v1/opt-out", {"email": EMAIL, "purposes": ["sale"]})["request_id"]
    pipe.resolve()
    assert pipe.drain("braze") == []
    assert resolution_of(pipe, second)["covered"]["braze"] == [f"{first}:braze"]


def assert_names_ended(mark: dict[str, Any], request_id: str) -> None:
    """The mark names `request_id`'s Braze job for sale, and not in flight (it ended)."""
    assert mark["job_sale"] == f"{request_id}:braze"
    assert "sale" not in mark.get("inflight", set())


def braze_mark(pipe: Pipeline) -> dict[str, Any]:
    (mark,) = [i for i in pipe.items("ID#email#") if i["sk"] == "DELIVERY#braze"]
    return mark


def an_older_job_in_flight(pipe: Pipeline) -> dict[str, Any]:
    """An earlier opt-out of sale by EMAIL, every job still in flight: the Braze mark."""
    pipe.post("/v1/opt-out", {"email": EMAIL, "purposes": ["sale"]})
    assert pipe.resolve() == {"batchItemFailures": []}
    pipe.drain_all()
    return braze_mark(pipe)


def test_a_job_ended_in_the_race_does_not_keep_a_legacy_mark_it_took(
    pipe: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    # review s22 diff A3 (b): the Braze mark names an older job in flight with no expiry (a
    # mark written before `until_` was kept), so the late resolver may take it; the worker's
    # free of the ended job could not name it (the mark named the older job) and wrote nothing
    mark = an_older_job_in_flight(pipe)
    key = {"pk": {"S": mark["pk"]}, "sk": {"S": "DELIVERY#braze"}}
    pipe.aws.dynamodb.update_item(
        TableName=pipe.aws.table_name, Key=key, UpdateExpression="REMOVE until_sale"
    )
    body = {"email": EMAIL, "purposes": ["sale"]}
    first = resolve_twice_at_once(pipe, monkeypatch, Vendor(status="no_record"), body)
    pipe.drain_all()
    # Then the taken mark does not name the ended job in flight, and carries its answer
    mark = braze_mark(pipe)
    assert "sale" not in mark.get("inflight", set())
    assert mark["no_record_job"] == f"{first}:braze"
    # ... so the person's next opt-out within the quiet period is not asked (before: it cited
    # the ended job as its proof and read processing)
    second = pipe.post("/v1/opt-out", body)["request_id"]
    pipe.resolve()
    resolution = resolution_of(pipe, second)
    assert "braze" not in (resolution.get("covered") or {})
    assert [q["job_id"] for q in resolution["not_asked"]["braze"]] == [f"{first}:braze"]


def test_a_job_ended_in_the_race_does_not_keep_a_retired_mark_it_replaced(
    pipe: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    # review s22 diff A3 (a): Braze retired after the person's mark was written, and configured
    # again; the late resolver replaces the stale mark (`_replace_retired`) after the worker's
    # free of the failed job wrote nothing (the mark named the retired contract's job)
    mark = an_older_job_in_flight(pipe)
    retired_at = iso(datetime.now(UTC))
    assert str(mark["updated_at"]) < retired_at
    retirement = {"pk": keys.RETIRED_PK, "sk": "braze", "kind": "retirement", "system": "braze",
                  "retired_at": retired_at, "retired_by": "test", "reason": "contract ended",
                  "event_id": "retire-1"}  # fmt: skip
    pipe.aws.dynamodb.put_item(TableName=pipe.aws.table_name, Item=serialize(retirement))
    pipe.resolver.resolver.cache_clear()  # new containers: they read the retirement
    body = {"email": EMAIL, "purposes": ["sale"]}
    first = resolve_twice_at_once(pipe, monkeypatch, Vendor(refuse=True), body)
    pipe.drain_all()
    # Then the replaced mark does not name the failed job in flight
    mark = braze_mark(pipe)
    assert_names_ended(mark, first)
    # ... so the person's next opt-out asks Braze again, with a job of its own
    second = pipe.post("/v1/opt-out", body)["request_id"]
    pipe.resolve()
    assert [b["request_id"] for b in pipe.drain("braze")] == [second]
    assert "braze" not in (resolution_of(pipe, second).get("covered") or {})


class Busy:
    """Answers every job "try again later" (a retryable 503): the job stays pending, tried."""

    def deliver(self, jobs: list[Any]) -> list[Outcome]:
        error = DeliveryError("503 unavailable", retryable=True, http_status=503)
        return [Outcome(j.job_id, None, http_status=503, error=error) for j in jobs]


@pytest.mark.parametrize(
    ("identifiers", "answer"),
    [(["email"], "done"), (["customer_id", "email"], "done"), (["email"], "retry"),
     (["customer_id", "email"], "retry")],
)  # fmt: skip
def test_a_job_answered_while_its_resolver_plans_again_keeps_its_answer(
    pipe: Pipeline, monkeypatch: pytest.MonkeyPatch, identifiers: list[str], answer: str
) -> None:
    # review s22 diff A7: the late resolver's email mark is refused by a third job's (made
    # meanwhile), and Braze answers the job, sent by the sweep's redrive, while it plans
    # again. Before, its next round wrote the job afresh (pending, no receipt: sent again)
    # or, with nothing left to carry, deleted it with its receipt. Also when Braze said "try
    # again later": the job, still pending, was tried (`attempts`; review s23 diff A7)
    body = {"email": EMAIL, "customer_id": "cust-000123", "purposes": ["sale"]}
    body = {k: v for k, v in body.items() if k in [*identifiers, "purposes"]}
    first: str = pipe.post("/v1/opt-out", body)["request_id"]
    records = pipe.event_records()
    original_mark, original_replan = delivery.mark_flight, Resolver._replan
    paused: list[str] = []

    def redrive_and_a_third_job_first(table: Any, system: str, *args: Any, **kwargs: Any) -> bool:
        if system == "braze" and not paused:
            paused.append(system)
            assert pipe.resolve(records) == {"batchItemFailures": []}  # the sweep's redrive
            (job,) = [i for i in pipe.partition(f"REQ#{first}") if i["sk"] == "JOB#braze"]
            (email,) = [i for i in job["identifiers"] if i["type"] == "email"]
            flight = {"pk": keys.identity_pk("email", email["key"]), "purposes": ["sale"]}
            third = "5f1d2c3b-0000-4000-8000-00000000000a:braze"
            assert original_mark(table, "braze", flight, job["created_at"], None, third,
                                 until=int(job["expires_at"]) + DAY)  # fmt: skip
        return bool(original_mark(table, system, *args, **kwargs))

    def answered_first(resolver: Resolver, plan: Any, pks: list[str]) -> None:
        if plan.system.name == "braze" and len(paused) == 1:
            paused.append("replan")
            outside = iam.current_function.set(None)
            deliver(pipe, pipe.drain("braze"), Vendor() if answer == "done" else Busy())
            iam.current_function.reset(outside)
        original_replan(resolver, plan, pks)

    monkeypatch.setattr(delivery, "mark_flight", redrive_and_a_third_job_first)
    monkeypatch.setattr(Resolver, "_replan", answered_first)
    assert pipe.resolve(records) == {"batchItemFailures": []}  # the late stream record
    assert paused == ["braze", "replan"]
    # Then the job keeps its answer and receipt, and is not sent again
    jobs = [i for i in pipe.partition(f"REQ#{first}") if i["sk"] == "JOB#braze"]
    status, http = ("done", 200) if answer == "done" else ("pending", 503)
    assert [(j["status"], j["receipt"]["http_status"], j["attempts"]) for j in jobs] == [
        (status, http, 1)
    ]
    assert pipe.drain("braze") == []


def test_a_two_purpose_job_ended_in_the_race_is_refused_when_one_purpose_was_taken_since(
    pipe: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    # review s22 diff A11: a job of two purposes, failed and freed by its worker before the
    # late resolver marks it; then an older job's replayed round (its expiry before this
    # request's record: takeable) took one of them. The freed one alone must refuse the mark
    body = {"email": EMAIL, "purposes": ["sale", "share"]}
    first: str = pipe.post("/v1/opt-out", body)["request_id"]
    records = pipe.event_records()
    original = delivery.mark_flight
    older = "5f1d2c3b-0000-4000-8000-00000000000b:braze"
    paused: list[str] = []

    def ended_then_share_taken(table: Any, system: str, *args: Any, **kwargs: Any) -> bool:
        if system == "braze" and not paused:
            paused.append(system)
            assert pipe.resolve(records) == {"batchItemFailures": []}  # the sweep's redrive
            outside = iam.current_function.set(None)
            deliver(pipe, pipe.drain("braze"), Vendor(refuse=True))
            iam.current_function.reset(outside)
            (job,) = [i for i in pipe.partition(f"REQ#{first}") if i["sk"] == "JOB#braze"]
            (email,) = job["identifiers"]
            flight = {"pk": keys.identity_pk("email", email["key"]), "purposes": ["share"]}
            soon = int(datetime.now(UTC).timestamp()) + DAY
            assert original(table, "braze", flight, job["created_at"], None, older, until=soon)
        return bool(original(table, system, *args, **kwargs))

    monkeypatch.setattr(delivery, "mark_flight", ended_then_share_taken)
    assert pipe.resolve(records) == {"batchItemFailures": []}  # the late stream record
    assert paused
    # Then the failed job is not marked in flight for either purpose: share stays the older
    # job's, sale free (an `AND` of the two purposes' "ended here" let the write through)
    mark = braze_mark(pipe)
    assert (mark["job_sale"], mark["job_share"]) == (f"{first}:braze", older)
    assert set(mark["inflight"]) == {"share"}


def test_a_resend_backfill_job_ended_in_the_race_does_not_keep_the_marks_it_took(
    pipe: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    # review s22 diff A3 (c): a --resend backfill step resolved twice at once; the second run
    # sends its job, which Meta refuses for good, before the first takes the person's marks.
    # The worker's free wrote nothing (the marks named the person's earlier Meta job)
    pipe.post("/v1/opt-out", {"email": EMAIL})
    pipe.resolve()
    deliver(pipe, pipe.drain("meta"), Vendor())
    pipe.drain_all()
    backfill(pipe, "meta", resend=True)
    records = pipe.event_records()
    original = delivery.take_flight
    paused: list[str] = []

    def second_run_and_worker_first(table: Any, system: str, *args: Any, **kwargs: Any) -> bool:
        if not paused:
            paused.append(system)
            assert pipe.resolve(records) == {"batchItemFailures": []}  # the sweep's redrive
            outside = iam.current_function.set(None)
            deliver(pipe, pipe.drain("meta"), Vendor(refuse=True))
            iam.current_function.reset(outside)
        return bool(original(table, system, *args, **kwargs))

    monkeypatch.setattr(delivery, "take_flight", second_run_and_worker_first)
    assert pipe.resolve(records) == {"batchItemFailures": []}  # the late stream record
    assert paused == ["meta"]
    # Then the marks it took name the failed job for its purposes, none in flight (before:
    # in flight for good, so the person's next opt-out cited a failed job)
    (mark,) = [i for i in pipe.items("ID#email#") if i["sk"] == "DELIVERY#meta"]
    named = {str(v) for k, v in mark.items() if k.startswith("job_")}
    (job,) = [i for i in pipe.items("REQ#") if i["sk"] == "JOB#meta" and i["job_id"] in named]
    assert job["status"] == "failed"
    assert not mark.get("inflight")


@pytest.mark.parametrize("answer", ["failed", "no_record"])
def test_a_job_ended_in_the_race_is_named_on_a_mark_freed_by_an_earlier_job(
    pipe: Pipeline, monkeypatch: pytest.MonkeyPatch, answer: str
) -> None:
    # review s23 diff A1: the person's Braze mark names an earlier job that failed (freed, not
    # in flight), so the worker's free of the ended job was refused and wrote nothing, and the
    # late resolver marked the ended job in flight: the next opt-out cited it as its proof
    body = {"email": EMAIL, "purposes": ["sale"]}
    pipe.post("/v1/opt-out", body)
    assert pipe.resolve() == {"batchItemFailures": []}
    deliver(pipe, pipe.drain("braze"), Vendor(refuse=True))
    pipe.drain_all()
    earlier = braze_mark(pipe)
    assert "sale" not in earlier.get("inflight", set())
    vendor = Vendor(refuse=True) if answer == "failed" else Vendor(status=answer)
    first = resolve_twice_at_once(pipe, monkeypatch, vendor, body)
    pipe.drain_all()
    # Then the mark names the ended job, not in flight
    mark = braze_mark(pipe)
    assert_names_ended(mark, first)
    # ... and the person's next opt-out does not cite it (a failure: asked again; no such
    # person: quiet, as in the serial order)
    second = pipe.post("/v1/opt-out", body)["request_id"]
    pipe.resolve()
    resolution = resolution_of(pipe, second)
    assert "braze" not in (resolution.get("covered") or {})
    if answer == "no_record":
        assert mark["no_record_job"] == f"{first}:braze"
        assert [q["job_id"] for q in resolution["not_asked"]["braze"]] == [f"{first}:braze"]
    else:
        assert [b["request_id"] for b in pipe.drain("braze")] == [second]


def test_a_late_free_of_an_earlier_job_leaves_a_mark_naming_a_later_ended_job(
    pipe: Pipeline,
) -> None:
    # the A1 fallback names a job only over an older one: a failed job's message back from
    # the DLQ after the person's next job also failed leaves that later job named
    body = {"email": EMAIL, "purposes": ["sale"]}
    earlier = pipe.post("/v1/opt-out", body)["request_id"]
    pipe.resolve()
    held = pipe.drain("braze")
    deliver(pipe, held, Vendor(refuse=True))
    pipe.drain_all()
    # made a day earlier (its expiry, in seconds, may else equal the later job's)
    key = {"pk": {"S": f"REQ#{earlier}"}, "sk": {"S": "JOB#braze"}}
    pipe.aws.dynamodb.update_item(
        TableName=pipe.aws.table_name, Key=key, UpdateExpression="ADD expires_at :back",
        ExpressionAttributeValues={":back": {"N": str(-DAY)}},
    )  # fmt: skip
    later = pipe.post("/v1/opt-out", body)["request_id"]
    pipe.resolve()
    deliver(pipe, pipe.drain("braze"), Vendor(refuse=True))
    pipe.drain_all()
    deliver(pipe, held, Vendor(refuse=True))  # the earlier job's after-steps run again
    mark = braze_mark(pipe)
    assert mark["job_sale"] == f"{later}:braze"
    assert "sale" not in mark.get("inflight", set())


@pytest.mark.parametrize("answer", ["failed", "done"])
def test_a_job_ended_in_the_race_frees_a_legacy_mark_it_took_beside_one_it_was_refused(
    pipe: Pipeline, monkeypatch: pytest.MonkeyPatch, answer: str
) -> None:
    # review s23 diff A7 (mutants M15, M18): the person's customer id mark names an older job
    # in flight with no expiry (takeable), and the job is sent and answered before the late
    # resolver marks it. Failed: its worker freed the email (the customer id named the older
    # job), the late resolver takes the customer id, then is refused the email and reads the
    # job ended. Done with the email proven only: the customer id was never sent, so the job
    # read after the takeover must free it (a done job is ended too)
    pipe.post("/v1/opt-out", {"customer_id": "cust-000123", "purposes": ["sale"]})
    assert pipe.resolve() == {"batchItemFailures": []}
    pipe.drain_all()
    (older,) = [i for i in pipe.items("ID#customer_id#") if i["sk"] == "DELIVERY#braze"]
    key = {"pk": {"S": older["pk"]}, "sk": {"S": "DELIVERY#braze"}}
    pipe.aws.dynamodb.update_item(
        TableName=pipe.aws.table_name, Key=key, UpdateExpression="REMOVE until_sale"
    )
    vendor = Vendor(refuse=True) if answer == "failed" else Vendor(sent=("email",))
    body = {"email": EMAIL, "customer_id": "cust-000123", "purposes": ["sale"]}
    first = resolve_twice_at_once(pipe, monkeypatch, vendor, body)
    pipe.drain_all()
    # Then the customer id's mark names the job, not in flight: a type it did not prove
    (mark,) = [i for i in pipe.items("ID#customer_id#") if i["sk"] == "DELIVERY#braze"]
    assert_names_ended(mark, first)
    email = braze_mark(pipe)
    assert ("sale" in email.get("inflight", set())) == (answer == "done")


class NoRecordFirst:
    """Braze answering the person's earlier job (held) "no such person" first, then refusing
    the jobs of this call for good: that answer lands between the late resolver's plan and
    the end of the job it made."""

    def __init__(self, pipe: Pipeline, held: list[dict[str, Any]]) -> None:
        self.pipe, self.held = pipe, held

    def deliver(self, jobs: list[Any]) -> list[Outcome]:
        deliver(self.pipe, self.held, Vendor(status="no_record"))
        return Vendor(refuse=True).deliver(jobs)


@pytest.mark.parametrize(
    ("purpose", "order"), [("sale", "race"), ("sale", "serial"), ("share", "race"),
                           ("share", "serial")],
)  # fmt: skip
def test_a_job_failed_in_the_race_over_an_earlier_no_record_does_not_quiet_the_next_request(
    pipe: Pipeline, monkeypatch: pytest.MonkeyPatch, purpose: str, order: str
) -> None:
    # race24 (fixd23's leftover): the person's earlier Braze job (sale) is in flight, and an
    # event asking `purpose` is resolved twice at once. Sale: the earlier job's mark has no
    # expiry (legacy: takeable), so the event makes a job of its own for it. The earlier job
    # answers "no such person" (freed, stamped) before the event's job fails, whose worker's
    # free then names it over the earlier job (sale: the A1 fallback) or names it first
    # (share: the mark named no job for it)
    pipe.post("/v1/opt-out", {"email": EMAIL, "purposes": ["sale"]})
    assert pipe.resolve() == {"batchItemFailures": []}
    held = pipe.drain("braze")
    pipe.drain_all()
    mark = braze_mark(pipe)
    key = {"pk": {"S": mark["pk"]}, "sk": {"S": "DELIVERY#braze"}}
    if purpose == "sale":
        pipe.aws.dynamodb.update_item(
            TableName=pipe.aws.table_name, Key=key, UpdateExpression="REMOVE until_sale"
        )
    else:  # made a day earlier (its expiry, in seconds, may else equal the later job's)
        back = {":back": {"N": str(-DAY)}}
        job_key = {
            "pk": {"S": f"REQ#{mark['job_sale'].rsplit(':', 1)[0]}"},
            "sk": {"S": "JOB#braze"},
        }
        for k, attribute in ((key, "until_sale"), (job_key, "expires_at")):
            pipe.aws.dynamodb.update_item(
                TableName=pipe.aws.table_name, Key=k, UpdateExpression=f"ADD {attribute} :back",
                ExpressionAttributeValues=back,
            )  # fmt: skip
    body = {"email": EMAIL, "purposes": [purpose]}
    if order == "race":
        first = resolve_twice_at_once(pipe, monkeypatch, NoRecordFirst(pipe, held), body)
    else:  # the same answers, the job marked before either
        first = pipe.post("/v1/opt-out", body)["request_id"]
        assert pipe.resolve() == {"batchItemFailures": []}
        deliver(pipe, pipe.drain("braze"), NoRecordFirst(pipe, held))
    pipe.drain_all()
    job = next(i for i in pipe.partition(f"REQ#{first}") if i["sk"] == "JOB#braze")
    assert job["status"] == "failed"
    assert braze_mark(pipe)[f"job_{purpose}"] == f"{first}:braze"
    # When the person opts out again within the earlier answer's quiet period
    second = pipe.post("/v1/opt-out", body)["request_id"]
    pipe.resolve()
    # Then Braze is asked, as in the serial order (the failed job's mark removes the earlier
    # stamp; before, the stamp stayed beside the failed job's name and the request was quiet
    # on the earlier "no such person": not asked, and counted done in its public status)
    assert "braze" not in (resolution_of(pipe, second).get("not_asked") or {})
    assert [b["request_id"] for b in pipe.drain("braze")] == [second]
