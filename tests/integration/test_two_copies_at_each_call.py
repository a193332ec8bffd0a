"""Two copies of one job message, the second delivered whole at each DynamoDB call of the first
(race38). SQS standard delivers at least once and a message whose visibility ran out while its
worker was slow is received again: two worker invocations then deliver one job at once. The
worker takes no claim; the job's conditional writes decide (docs/architecture.md, "Jobs").

test_worker_duplicates.py cuts copy A at its vendor call only. Here copy A is cut before each of
its store calls in turn (its read of the job, its answer's write, the free of the person's mark,
the failure's listing, its read back) and copy B runs whole there, for every pair of answers
(done, refused for good, throttled; and for Segment, whose vendor accepts and works later:
accepted, refused, throttled). After both, whatever the cut:
- the job is done, failed or (both throttled) pending, and its marks and listing agree: failed
  is listed for the operator's replay with its marks freed; done and pending are not listed and
  keep the person in flight for the job;
- a copy's `done` the job does not end with is kept beside its receipt (no lost answer);
- the answer the job ended with is counted once (JobsFailed: the alarm's source; JobsDone);
- a later copy (an SQS duplicate, a DLQ redrive) changes nothing on an ended job.

Also at each of the worker's store calls: an operator's replay of the system (no failure is
lost: one more replay and delivery end the job done), and an operator's denial of the request
(refused once the job's done is written; else it stands and names the system while its job is
under way: the race docs/decisions.md accepts, "A request every system confirmed cannot be
denied").
"""

import json
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest

from optout.connectors.base import Job, Outcome
from optout.delivery.batch import BatchReport
from optout.delivery.service import DeliveryService, Received
from optout.delivery.settings import WorkerSettings
from optout.store.table import Table
from tests.conftest import Aws
from tests.integration.test_operator_routes import deny, ok
from tests.integration.test_resolver_delivery import SYSTEMS, Vendor, work
from tests.integration.test_resolver_replay import replay
from tests.integration.test_worker_duplicates import (
    Answers,
    accepted,
    done,
    job,
    listed,
    opt_out,
    refused,
    throttled,
)
from tests.integration.test_worker_duplicates import deliver as deliver_copy
from tests.support.pipeline import Pipeline, build_pipeline

EMAIL = "race38-copies@example.com"
ANSWERS: dict[str, Callable[[Job], Outcome]] = {
    "done": done, "refused": refused, "throttled": throttled}  # fmt: skip
CUTS = range(1, 7)  # a refused copy makes 5 store calls; 6: B runs after A, whole


@pytest.fixture
def pipe(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> Iterator[Pipeline]:
    yield build_pipeline(aws, monkeypatch)


class CutAt:
    """A DynamoDB client that runs `meanwhile` once, just before its `at`-th call."""

    def __init__(self, client: Any, at: int, meanwhile: Callable[[], object]) -> None:
        self._client, self._at, self._meanwhile = client, at, meanwhile
        self.calls = 0

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        if name.startswith("_") or name in ("exceptions", "meta") or not callable(attribute):
            return attribute

        def call(*args: Any, **kwargs: Any) -> Any:
            self.calls += 1
            if self.calls == self._at:
                self._meanwhile()
            return attribute(*args, **kwargs)

        return call


def deliver(pipe: Pipeline, client: Any, message: dict[str, Any], vendor: Any) -> BatchReport:
    """One copy of `message`, by its own worker invocation over `client` (first receive)."""
    service = DeliveryService(
        Table(client, pipe.aws.table_name), SYSTEMS,
        WorkerSettings(table_name=pipe.aws.table_name), lambda _system: vendor,
    )  # fmt: skip
    return service.deliver([Received("m-copy", json.dumps(message), 1)], lambda _m, _d: None)


def the_mark(pipe: Pipeline, system: str = "braze") -> dict[str, Any]:
    (mark,) = [i for i in pipe.items("ID#") if i["sk"] == f"DELIVERY#{system}"]
    return mark


def deliver_cut(
    pipe: Pipeline, message: dict[str, Any], vendor: Any, cut: int, other: Callable[[], None]
) -> BatchReport:
    """A worker delivering `message`, `other` run whole just before the worker's `cut`-th store
    call (or, past its last call, right after it)."""
    client = CutAt(pipe.aws.dynamodb, cut, other)
    report = deliver(pipe, client, message, vendor)
    if client.calls < cut:
        other()
    return report


def assert_job_mark_and_listing_agree(
    pipe: Pipeline, system: str, job_id: str, status: str
) -> None:
    """A failed job is listed for replay and frees its purpose; any other keeps it in flight."""
    mark = the_mark(pipe, system)
    if status == "failed":
        assert listed(pipe, system) == {job_id}
        assert set(mark.get("inflight", ())) == set()
    else:
        assert listed(pipe, system) == set()
        assert set(mark.get("inflight", ())) == {"sale"}


@pytest.mark.parametrize("cut", CUTS)
@pytest.mark.parametrize("b_answer", sorted(ANSWERS))
@pytest.mark.parametrize("a_answer", sorted(ANSWERS))
def test_a_second_copy_at_each_call_of_the_first_leaves_job_marks_and_listing_agreeing(
    pipe: Pipeline, a_answer: str, b_answer: str, cut: int
) -> None:
    # Given a pending Braze job of one person, and two copies of its message
    request_id, message = opt_out(pipe, "braze", {"email": EMAIL, "purposes": ["sale"]})
    job_id = f"{request_id}:braze"
    reports: list[BatchReport] = []
    vendor_a, vendor_b = Answers(ANSWERS[a_answer]), Answers(ANSWERS[b_answer])

    def copy_b() -> None:
        reports.append(deliver(pipe, pipe.aws.dynamodb, message, vendor_b))

    # When copy A is delivered and copy B runs whole just before A's `cut`-th store call (or,
    # past A's last call, right after A)
    reports.append(deliver_cut(pipe, message, vendor_a, cut, copy_b))
    # Then the job, the person's mark and the failed listing agree
    ended = job(pipe, request_id, "braze")
    mark = the_mark(pipe)
    # (a copy that finds the job ended, or waiting out a retry, asks no vendor)
    answers = {name for name, vendor in ((a_answer, vendor_a), (b_answer, vendor_b))
               if vendor.received}  # fmt: skip
    assert answers
    expected = {"pending"} if answers == {"throttled"} else {"done", "failed"}
    assert ended["status"] in expected
    assert mark.get("job_sale") == job_id
    assert_job_mark_and_listing_agree(pipe, "braze", job_id, ended["status"])
    # ... a done the job did not end with is kept beside its receipt
    if "done" in answers and ended["status"] != "done":
        assert [lost["status"] for lost in ended.get("lost_answers", [])] == ["done"]
    # ... and the answer the job ended with is counted once, by the copy that wrote it (the
    # failure: JobsFailed, the alarm's source), the other copy's not at all
    counted = {name: sum(r.counts.get(name, 0) for r in reports)
               for name in ("JobsFailed", "JobsDone")}  # fmt: skip
    assert counted == {"JobsFailed": int(ended["status"] == "failed"),
                       "JobsDone": int(ended["status"] == "done")}  # fmt: skip
    # And a later copy of the message changes nothing on an ended job
    if ended["status"] != "pending":
        later = Vendor()
        deliver(pipe, pipe.aws.dynamodb, message, later)
        assert later.received == []
        assert job(pipe, request_id, "braze")["status"] == ended["status"]
        assert listed(pipe, "braze") == ({job_id} if ended["status"] == "failed" else set())


ASYNC_ANSWERS: dict[str, Callable[[Job], Outcome]] = {
    "accepted": accepted, "refused": refused, "throttled": throttled}  # fmt: skip


@pytest.mark.parametrize("cut", CUTS)
@pytest.mark.parametrize("b_answer", sorted(ASYNC_ANSWERS))
@pytest.mark.parametrize("a_answer", sorted(ASYNC_ANSWERS))
def test_a_second_copy_of_an_asynchronous_job_at_each_call_of_the_first_agrees_too(
    pipe: Pipeline, a_answer: str, b_answer: str, cut: int
) -> None:
    # Given a pending Segment job (the vendor accepts a regulation and works on it later),
    # and two copies of its message
    body = {"customer_id": "cust-race38", "purposes": ["sale"], "agent": {"name": "Agent"}}
    request_id, message = opt_out(pipe, "segment", body)
    job_id = f"{request_id}:segment"
    reports: list[BatchReport] = []
    vendor_a, vendor_b = Answers(ASYNC_ANSWERS[a_answer]), Answers(ASYNC_ANSWERS[b_answer])

    def copy_b() -> None:
        reports.append(deliver(pipe, pipe.aws.dynamodb, message, vendor_b))

    # When copy A is delivered and copy B runs whole just before A's `cut`-th store call
    reports.append(deliver_cut(pipe, message, vendor_a, cut, copy_b))
    # Then the job is submitted (with the vendor's reference), failed or (both throttled)
    # pending, and its mark, its listing and the counts agree with it
    ended = job(pipe, request_id, "segment")
    mark = the_mark(pipe, "segment")
    answers = {name for name, vendor in ((a_answer, vendor_a), (b_answer, vendor_b))
               if vendor.received}  # fmt: skip
    expected = {"pending"} if answers == {"throttled"} else {"submitted", "failed"}
    assert ended["status"] in expected
    assert mark.get("job_sale") == job_id
    assert_job_mark_and_listing_agree(pipe, "segment", job_id, ended["status"])
    if ended["status"] == "submitted":
        assert ended["receipt"]["vendor_ref"] == "ref-1"
    counted = {name: sum(r.counts.get(name, 0) for r in reports)
               for name in ("JobsFailed", "JobsSubmitted")}  # fmt: skip
    assert counted == {"JobsFailed": int(ended["status"] == "failed"),
                       "JobsSubmitted": int(ended["status"] == "submitted")}  # fmt: skip


# -- an operator's replay of the system at each call of a worker finishing the job ----------


@pytest.mark.parametrize("cut", CUTS)
@pytest.mark.parametrize("a_answer", sorted(ANSWERS))
def test_a_replay_at_each_call_of_a_worker_finishing_the_job_loses_no_failure(
    pipe: Pipeline, a_answer: str, cut: int
) -> None:
    # Given a pending Braze job of one person
    request_id, message = opt_out(pipe, "braze", {"email": EMAIL, "purposes": ["sale"]})
    job_id = f"{request_id}:braze"

    def replayed() -> None:  # the operator's replay of braze, and the resolver taking it
        replay(pipe, "braze")
        assert pipe.resolve() == {"batchItemFailures": []}

    # When a worker delivers the job's message (answered `a_answer`) and the replay lands
    # just before its `cut`-th store call (or right after it)
    deliver_cut(pipe, message, Answers(ANSWERS[a_answer]), cut, replayed)
    # Then the job, the mark and the listing agree, as after the worker alone
    ended = job(pipe, request_id, "braze")
    assert_job_mark_and_listing_agree(pipe, "braze", job_id, ended["status"])
    # And no failure is lost: one more replay, the job's messages (the SQS copy the worker
    # left, its retry or a DLQ redrive, and the replay's) delivered, and the job is done
    replayed()
    vendor = Vendor()
    deliver_copy(pipe, message, vendor, later=timedelta(minutes=10))
    work(pipe, "braze", vendor)
    assert job(pipe, request_id, "braze")["status"] == "done"
    assert listed(pipe, "braze") == set()
    assert set(the_mark(pipe).get("inflight", ())) == {"sale"}


# -- an operator's denial at each call of a worker finishing the job ------------------------


@pytest.mark.parametrize("cut", CUTS)
@pytest.mark.parametrize("a_answer", sorted(ANSWERS))
def test_a_denial_at_each_call_of_a_worker_finishing_the_job_is_refused_or_names_it(
    pipe: Pipeline, a_answer: str, cut: int
) -> None:
    # Given an opt-out whose jobs are pending (braze's among them)
    request_id, message = opt_out(pipe, "braze", {"email": EMAIL, "purposes": ["sale"]})
    answers: list[dict[str, Any]] = []

    def denied() -> None:  # the operator's denial, read and written whole
        answers.append(deny(pipe, request_id))

    # When braze's worker delivers the job (answered `a_answer`) and the denial lands just
    # before its `cut`-th store call (or right after it)
    deliver_cut(pipe, message, Answers(ANSWERS[a_answer]), cut, denied)
    (answer,) = answers
    ended = job(pipe, request_id, "braze")
    if answer["statusCode"] == 409:
        # Then either the job's done was written before the denial's read: refused, as a
        # request a system confirmed is
        assert ended["status"] == "done"
        return
    # ... or the denial stands, and names braze among the systems its jobs are under way to
    # unless braze's job had ended failed at its read: a done written after it is not hidden
    # (the record says the job may reach its vendor; docs/decisions.md, "A request every
    # system confirmed cannot be denied": that race is accepted and documented)
    record = ok(answer)
    assert record["status"] == "denied"
    under_way = "braze" in record["systems_under_way"]
    assert under_way == (ended["status"] != "failed" or cut <= 2), (ended["status"], record)
