"""An operator replay landing between a worker's final `failed` write and its after-steps (the
free of the job's marks and its `FAILED#` listing), while the job's earlier failure is still
listed (review s22 race R2).

A replay lists the job's failed listing, then resets the job. The listing of an earlier failure
outlives that failure's replay when its `forget_failed` fails (best effort) or the replay dies
after sending (its stream retry, or a second replay, reads it again). If the job has failed
again meanwhile and its worker has written the status but not yet its after-steps, a replay
reading that older listing used to reset the job for a new round; the worker's after-steps
then freed the new round's marks and listed a job that was pending. The worker's pause is
forced: its table client runs the replay just before the worker's first free of a mark.

Also (review s22 diff A1, A5): a listing as written before 8308004 (`failed_at` the time its
after-steps last ran) is replayed, and a replay's re-run of an ended job's frees leaves the
listing, and its `JobsFailed` count, to the worker."""

import json
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from optout.connectors.base import Job, Outcome
from optout.delivery import service as worker_service
from optout.delivery.service import DeliveryService, Received
from optout.delivery.settings import WorkerSettings
from optout.store import delivery, keys
from optout.store.codec import serialize
from optout.store.table import Table
from optout.timestamps import iso
from tests.conftest import Aws
from tests.integration.test_resolver_delivery import SYSTEMS, Vendor
from tests.integration.test_resolver_replay import SYSTEM, replay, resolution
from tests.support.http_events import http_event
from tests.support.lambdas import invoke
from tests.support.pipeline import Pipeline, build_pipeline

EMAIL = "replay-steps@example.com"


@pytest.fixture
def pipe(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> Iterator[Pipeline]:
    yield build_pipeline(aws, monkeypatch)


class BeforeFree:
    """A DynamoDB client that runs `meanwhile` once, before the first write freeing a mark."""

    def __init__(self, client: Any, meanwhile: Callable[[], object]) -> None:
        self._client, self._meanwhile = client, meanwhile
        self.ran = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def update_item(self, **kwargs: Any) -> Any:
        if not self.ran and "DELETE inflight" in kwargs.get("UpdateExpression", ""):
            self.ran = True
            self._meanwhile()
        return self._client.update_item(**kwargs)


def work(
    pipe: Pipeline,
    vendor: Vendor,
    meanwhile: Callable[[], object] | None = None,
    bodies: list[dict[str, Any]] | None = None,
    counts: Counter[str] | None = None,
) -> int:
    """One worker invocation over salesforce's queue (or the messages `bodies`, held);
    `meanwhile` runs before its first free of a mark; its metric counts added to `counts`."""
    bodies = pipe.drain(SYSTEM) if bodies is None else bodies
    client: Any = pipe.aws.dynamodb
    if meanwhile is not None:
        client = BeforeFree(client, meanwhile)
    service = DeliveryService(
        Table(client, pipe.aws.table_name), SYSTEMS,
        WorkerSettings(table_name=pipe.aws.table_name), lambda _system: vendor,  # type: ignore[arg-type,return-value]
    )  # fmt: skip
    received = [Received(f"m{n}", json.dumps(b), 1) for n, b in enumerate(bodies)]
    report = service.deliver(received, lambda _message, _delay: None)
    if counts is not None:
        counts.update(report.counts)
    return len(bodies)


def listing(pipe: Pipeline) -> list[dict[str, Any]]:
    return pipe.partition(keys.failed_pk(SYSTEM))


def the_job(pipe: Pipeline, request_id: str) -> dict[str, Any]:
    (job,) = [i for i in pipe.partition(keys.request_pk(request_id)) if i["sk"] == f"JOB#{SYSTEM}"]
    return job


def in_flight(pipe: Pipeline) -> list[set[str]]:
    marks = [i for i in pipe.items("ID#") if i["sk"] == f"DELIVERY#{SYSTEM}"]
    return [set(m.get("inflight", ())) for m in marks]


def refused_for_good(pipe: Pipeline) -> str:
    """A salesforce opt-out refused for good and listed (the other queues emptied); its id."""
    request_id: str = pipe.post("/v1/opt-out", {"email": EMAIL, "purposes": ["sale"]})["request_id"]
    pipe.resolve()
    assert work(pipe, Vendor(refuse=True)) == 1
    pipe.drain_all()
    return request_id


def replayed_with_its_listing_left(
    pipe: Pipeline,
) -> tuple[str, dict[str, Any], list[dict[str, Any]]]:
    """`refused_for_good`, then replayed: its id, the listing the replay dropped (for the test
    to write back, as a replay whose forget failed leaves it) and the replay's held message."""
    request_id = refused_for_good(pipe)
    (first_listing,) = listing(pipe)
    replay(pipe)
    assert pipe.resolve() == {"batchItemFailures": []}
    return request_id, first_listing, pipe.drain(SYSTEM)


@pytest.mark.parametrize("shape", ["now", "before 8308004"])
def test_a_replay_reading_an_older_failures_listing_leaves_a_failure_its_worker_has_not_listed(
    pipe: Pipeline, shape: str
) -> None:
    # Given a salesforce job refused for good, listed, replayed, and its listing left behind
    # (the replay's forget failed: the next replay reads it again); as written today, or as
    # written before 2026-12-01 (no `listed_by`, and a `failed_at` later than the job's end:
    # its after-steps ran again, here just before the replay's reset)
    request_id = pipe.post("/v1/opt-out", {"email": EMAIL, "purposes": ["sale"]})["request_id"]
    pipe.resolve()
    assert work(pipe, Vendor(refuse=True)) == 1
    for key in pipe.queue_urls:
        if key != SYSTEM:
            pipe.drain(key)
    (first_listing,) = listing(pipe)
    replay(pipe)
    assert pipe.resolve() == {"batchItemFailures": []}
    assert listing(pipe) == []
    if shape != "now":
        del first_listing["listed_by"]
        first_listing["failed_at"] = the_job(pipe, request_id)["replayed_at"]
    pipe.aws.dynamodb.put_item(TableName=pipe.aws.table_name, Item=serialize(first_listing))
    second_replay: list[str] = []

    def operator_replays_again() -> None:
        second_replay.append(replay(pipe))
        assert pipe.resolve() == {"batchItemFailures": []}

    # When the replayed job is refused again, and a second replay runs after the worker wrote
    # that failure but before it freed the marks and listed it
    assert work(pipe, Vendor(refuse=True), operator_replays_again) == 1
    assert second_replay
    # (the replay counts it not replayed: `optout replay` says to run it again)
    assert resolution(pipe, second_replay[0])["replayed"] == 0
    assert resolution(pipe, second_replay[0])["not_replayed"] == 1
    # Then the job is failed and listed under its new failure, its marks freed, nothing queued
    job = the_job(pipe, request_id)
    assert job["status"] == "failed"
    assert [i["failed_at"] for i in listing(pipe)] == [job["completed_at"]]
    assert in_flight(pipe) == [set()]
    assert pipe.drain(SYSTEM) == []
    # And the next replay sends it, in flight for its new round
    replay(pipe)
    assert pipe.resolve() == {"batchItemFailures": []}
    assert the_job(pipe, request_id)["status"] == "pending"
    assert in_flight(pipe) == [{"sale"}]
    vendor = Vendor()
    assert work(pipe, vendor) == 1
    assert the_job(pipe, request_id)["status"] == "done"
    assert in_flight(pipe) == [{"sale"}] and listing(pipe) == []


def test_a_replay_marking_a_job_that_failed_again_meanwhile_leaves_no_mark_in_flight(
    pipe: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a salesforce job refused for good, replayed (its message held), and its listing
    # left behind (the replay's forget failed)
    request_id, first_listing, held = replayed_with_its_listing_left(pipe)
    pipe.aws.dynamodb.put_item(TableName=pipe.aws.table_name, Item=serialize(first_listing))
    # When a second replay reads the job still pending from the first, and before it marks
    # the job in flight again, the held message's delivery is refused for good (the worker
    # writes the failure, frees the marks and lists it)
    original = delivery.mark_replayed

    def worker_first(*args: Any, **kwargs: Any) -> Any:
        if held:
            assert work(pipe, Vendor(refuse=True), bodies=held) == 1
            held.clear()
        return original(*args, **kwargs)

    monkeypatch.setattr(delivery, "mark_replayed", worker_first)
    replay(pipe)
    assert pipe.resolve() == {"batchItemFailures": []}
    monkeypatch.setattr(delivery, "mark_replayed", original)
    # Then the failed job names no purpose in flight (before: the second replay's marks named
    # it, so the next request cited a failed job instead of making its own), and stays listed
    job = the_job(pipe, request_id)
    assert job["status"] == "failed"
    assert [i["failed_at"] for i in listing(pipe)] == [job["completed_at"]]
    assert in_flight(pipe) == [set()]
    # And the person's next opt-out gets a job of its own, which the vendor takes
    pipe.drain(SYSTEM)  # the second replay's message: its worker finds the job failed
    again = pipe.post("/v1/opt-out", {"email": EMAIL, "purposes": ["sale"]})["request_id"]
    pipe.resolve()
    assert [b["request_id"] for b in pipe.drain(SYSTEM)] == [again]


def test_a_redriven_message_of_a_failed_job_does_not_free_the_marks_of_its_replay(
    pipe: Pipeline,
) -> None:
    # Given a salesforce job refused for good and listed, and its message back from the DLQ
    # (`optout redrive`, which the runbook follows with `optout replay`)
    request_id = pipe.post("/v1/opt-out", {"email": EMAIL, "purposes": ["sale"]})["request_id"]
    pipe.resolve()
    (message,) = pipe.drain(SYSTEM)
    pipe.drain_all()
    assert work(pipe, Vendor(refuse=True), bodies=[message]) == 1

    def operator_replays() -> None:
        replay(pipe)
        assert pipe.resolve() == {"batchItemFailures": []}

    # When the redriven message's worker reads the failed job and runs its after-steps again,
    # and the replay resets, marks and sends the job just before that worker frees the marks
    assert work(pipe, Vendor(), operator_replays, bodies=[message]) == 1
    # Then the replayed job is pending and in flight again (before: its marks were freed, so
    # the vendor's done would not read as delivered and the next request sent it again)
    assert the_job(pipe, request_id)["status"] == "pending"
    assert in_flight(pipe) == [{"sale"}]
    # And once it is done, the listing the late after-steps wrote again (the worker may not
    # delete a listing) is dropped by the next replay, which sends nothing
    assert work(pipe, Vendor()) == 1
    assert the_job(pipe, request_id)["status"] == "done"
    assert len(listing(pipe)) == 1
    replay(pipe)
    assert pipe.resolve() == {"batchItemFailures": []}
    assert listing(pipe) == [] and pipe.drain(SYSTEM) == []
    assert in_flight(pipe) == [{"sale"}]


def test_a_listing_written_before_8308004_with_a_later_failed_at_is_replayed(
    pipe: Pipeline,
) -> None:
    # Given a salesforce job refused for good, listed as the worker wrote it before 2026-12-01
    # (commit 8308004): `failed_at` the time its after-steps last ran (a redriven message ran
    # them again a minute after the job's end), and no `listed_by`
    request_id = refused_for_good(pipe)
    (old,) = listing(pipe)
    ended = datetime.fromisoformat(the_job(pipe, request_id)["completed_at"])
    del old["listed_by"]
    old["failed_at"] = iso(ended + timedelta(minutes=1))
    pipe.aws.dynamodb.put_item(TableName=pipe.aws.table_name, Item=serialize(old))
    # When the operator replays the system
    replay_id = replay(pipe)
    assert pipe.resolve() == {"batchItemFailures": []}
    # Then the job is replayed (before: skipped as "failed again" by every replay, for good)
    assert resolution(pipe, replay_id)["replayed"] == 1
    assert "not_replayed" not in resolution(pipe, replay_id)
    assert the_job(pipe, request_id)["status"] == "pending"
    assert in_flight(pipe) == [{"sale"}] and listing(pipe) == []
    assert work(pipe, Vendor()) == 1
    assert the_job(pipe, request_id)["status"] == "done"


def test_a_failure_a_replay_frees_before_its_worker_lists_it_is_still_counted_by_that_worker(
    pipe: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a salesforce job refused for good, replayed (its message held), and its listing
    # left behind (the replay's forget failed)
    request_id, first_listing, held = replayed_with_its_listing_left(pipe)
    pending = the_job(pipe, request_id)
    pipe.aws.dynamodb.put_item(TableName=pipe.aws.table_name, Item=serialize(first_listing))
    # When the held message is refused again, and between the worker's `failed` write and its
    # after-steps a second replay reads the job still pending (its read came first), marks it,
    # and reads it again: failed
    original_get = delivery.get_job
    reads: list[int] = []

    def read_before_the_failure(*args: Any, **kwargs: Any) -> Any:
        reads.append(1)
        return dict(pending) if len(reads) == 1 else original_get(*args, **kwargs)

    def second_replay() -> None:
        monkeypatch.setattr(delivery, "get_job", read_before_the_failure)
        replay(pipe)
        assert pipe.resolve() == {"batchItemFailures": []}
        monkeypatch.setattr(delivery, "get_job", original_get)

    client: Any = BeforeFree(pipe.aws.dynamodb, second_replay)
    service = DeliveryService(
        Table(client, pipe.aws.table_name), SYSTEMS,
        WorkerSettings(table_name=pipe.aws.table_name), lambda _system: Vendor(refuse=True),  # type: ignore[arg-type,return-value]
    )  # fmt: skip
    report = service.deliver([Received("m0", json.dumps(held[0]), 1)], lambda _m, _d: None)
    assert client.ran and len(reads) == 2
    # Then the worker lists the failure and counts it (before: the replay's re-run of the
    # frees listed it first, and JobsFailed, which JobsFailedAlarm reads, was never counted)
    assert report.counts["JobsFailed"] == 1
    job = the_job(pipe, request_id)
    assert job["status"] == "failed"
    assert [i["failed_at"] for i in listing(pipe)] == [job["completed_at"]]
    assert in_flight(pipe) == [set()]


def test_a_job_that_fails_again_between_the_replays_read_and_its_reset_counts_not_replayed(
    pipe: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a salesforce job whose listing is an earlier failure's, and a replay that reads the
    # job as that failure (another round of it failed again before this replay's reset)
    request_id = refused_for_good(pipe)
    (old,) = listing(pipe)
    earlier = iso(datetime.fromisoformat(old["failed_at"]) - timedelta(minutes=5))
    old["failed_at"] = earlier
    pipe.aws.dynamodb.put_item(TableName=pipe.aws.table_name, Item=serialize(old))
    original_get = delivery.get_job
    reads: list[int] = []

    def stale_first(*args: Any, **kwargs: Any) -> Any:
        reads.append(1)
        found = original_get(*args, **kwargs)
        return {**found, "completed_at": earlier} if len(reads) == 1 else found

    monkeypatch.setattr(delivery, "get_job", stale_first)
    # When the operator replays the system
    replay_id = replay(pipe)
    assert pipe.resolve() == {"batchItemFailures": []}
    # Then the reset is refused, the job stays failed and listed, nothing is sent, and the
    # replay counts it not replayed (its new failure is for the next replay)
    assert len(reads) == 2
    assert resolution(pipe, replay_id)["not_replayed"] == 1
    assert the_job(pipe, request_id)["status"] == "failed"
    assert len(listing(pipe)) == 1 and pipe.drain(SYSTEM) == []


@pytest.mark.parametrize(("days", "replayed"), [(15, True), (13, False)], ids=["expired", "kept"])
def test_a_failure_never_listed_whose_dead_letter_expired_is_replayed(
    pipe: Pipeline, days: int, replayed: bool
) -> None:
    # Given a salesforce job whose listing names an earlier failure, and which failed again
    # `days` ago without its worker listing that (its listing write failed, and its message
    # went to the DLQ, which keeps it 14 days from its first enqueue)
    request_id = refused_for_good(pipe)
    (listed,) = listing(pipe)
    failed = datetime.now(UTC) - timedelta(days=days)
    job = the_job(pipe, request_id) | {"completed_at": iso(failed)}
    listed["failed_at"] = iso(failed - timedelta(hours=1))
    pipe.aws.dynamodb.put_item(TableName=pipe.aws.table_name, Item=serialize(job))
    pipe.aws.dynamodb.put_item(TableName=pipe.aws.table_name, Item=serialize(listed))
    # When the operator replays the system
    replay_id = replay(pipe)
    assert pipe.resolve() == {"batchItemFailures": []}
    # Then a failure whose letter has expired, which no worker will ever list, is replayed
    # (review s22 diff C6: it was `not_replayed` on every replay, and `optout replay` exited 1
    # for good); one whose letter may still be redriven is left to its worker, as before
    record = resolution(pipe, replay_id)
    if replayed:
        assert (record["replayed"], record.get("not_replayed")) == (1, None)
        assert the_job(pipe, request_id)["status"] == "pending" and listing(pipe) == []
        assert in_flight(pipe) == [{"sale"}]
        assert work(pipe, Vendor()) == 1
        assert the_job(pipe, request_id)["status"] == "done"
    else:
        assert (record["replayed"], record["not_replayed"]) == (0, 1)
        assert the_job(pipe, request_id)["status"] == "failed" and len(listing(pipe)) == 1


def test_a_failures_late_first_after_steps_leave_a_replay_that_came_between_in_flight(
    pipe: Pipeline,
) -> None:
    # review s22 diff A6: a salesforce job refused for good, whose worker is slow between its
    # `failed` write and its after-steps; meanwhile a duplicate of its message runs them (and
    # lists the failure), and the operator replays it (the job pending again, marked in flight)
    request_id = pipe.post("/v1/opt-out", {"email": EMAIL, "purposes": ["sale"]})["request_id"]
    pipe.resolve()
    held = pipe.drain(SYSTEM)
    pipe.drain_all()

    def duplicate_then_replay() -> None:
        assert work(pipe, Vendor(refuse=True), bodies=held) == 1
        assert len(listing(pipe)) == 1
        replay(pipe)
        assert pipe.resolve() == {"batchItemFailures": []}
        assert the_job(pipe, request_id)["status"] == "pending"

    # When the first worker's after-steps run late (its frees take the replay's marks)
    assert work(pipe, Vendor(refuse=True), duplicate_then_replay, held) == 1
    # Then it reads the job again and marks the replayed round in flight again (before: only
    # a message of a job read failed did: the new round named no purpose in flight, and the
    # person's next opt-out made a second job beside it)
    assert the_job(pipe, request_id)["status"] == "pending"
    assert in_flight(pipe) == [{"sale"}]
    # ... and the replayed round, sent, ends done in flight
    assert work(pipe, Vendor()) == 1
    assert the_job(pipe, request_id)["status"] == "done"
    assert in_flight(pipe) == [{"sale"}]


def test_a_failures_late_first_after_steps_count_it_once(
    pipe: Pipeline,
) -> None:
    # race24 (the A6 leftover): as above; the duplicate lists the failure and counts it, the
    # replay resets the job and drops that listing, then the late after-steps run
    request_id = pipe.post("/v1/opt-out", {"email": EMAIL, "purposes": ["sale"]})["request_id"]
    pipe.resolve()
    held = pipe.drain(SYSTEM)
    pipe.drain_all()
    counts: Counter[str] = Counter()

    def duplicate_then_replay() -> None:
        assert work(pipe, Vendor(refuse=True), bodies=held, counts=counts) == 1
        assert counts["JobsFailed"] == 1
        replay(pipe)
        assert pipe.resolve() == {"batchItemFailures": []}
        assert the_job(pipe, request_id)["status"] == "pending" and listing(pipe) == []

    assert work(pipe, Vendor(refuse=True), duplicate_then_replay, held, counts) == 1
    # Then the one failure is counted once (before: the late run listed it again and counted
    # it a second time, for JobsFailedAlarm)
    assert the_job(pipe, request_id)["status"] == "pending"
    assert counts["JobsFailed"] == 1
    # ... its late listing stays (a worker may not delete one: docs/decisions.md), and the
    # next replay drops it without sending the round, still in flight, again (before: sent)
    (late,) = listing(pipe)
    sent = pipe.drain(SYSTEM)
    replay(pipe)
    assert pipe.resolve() == {"batchItemFailures": []}
    assert listing(pipe) == [] and pipe.drain(SYSTEM) == [] and late["listed_by"]
    assert work(pipe, Vendor(), bodies=sent) == 1
    assert the_job(pipe, request_id)["status"] == "done"


def test_a_replayed_round_that_ends_before_it_is_marked_again_is_left_freed(
    pipe: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    # review s23 diff A3: as above, but the replayed round's worker fails it and frees its
    # marks between the late after-steps' re-read (pending) and their `mark_again`
    request_id = pipe.post("/v1/opt-out", {"email": EMAIL, "purposes": ["sale"]})["request_id"]
    pipe.resolve()
    held = pipe.drain(SYSTEM)
    pipe.drain_all()
    replayed: list[dict[str, Any]] = []

    def duplicate_then_replay() -> None:
        assert work(pipe, Vendor(refuse=True), bodies=held) == 1
        replay(pipe)
        assert pipe.resolve() == {"batchItemFailures": []}
        replayed.extend(pipe.drain(SYSTEM))
        assert the_job(pipe, request_id)["status"] == "pending"

    original = worker_service.mark_again

    def round_ends_first(table: Any, job: Any, now: str) -> None:
        assert work(pipe, Vendor(refuse=True), bodies=replayed) == 1
        assert the_job(pipe, request_id)["status"] == "failed"
        original(table, job, now)

    monkeypatch.setattr(worker_service, "mark_again", round_ends_first)
    assert work(pipe, Vendor(refuse=True), duplicate_then_replay, held) == 1
    # Then the failed round is named in flight nowhere (before: in flight for good, and the
    # person's next opt-out cited a failed job)
    assert the_job(pipe, request_id)["status"] == "failed"
    assert in_flight(pipe) == [set()]


@dataclass
class Segment:
    """A stand-in asynchronous vendor (Segment's regulations): refuses every job for good, or
    answers each `submitted` (its regulation running)."""

    refuse: bool = False

    def deliver(self, jobs: list[Job]) -> list[Outcome]:
        if self.refuse:
            return Vendor(refuse=True).deliver(jobs)
        return [Outcome(j.job_id, "submitted", http_status=200, vendor_ref="regulation-1",
                        identifier_types_sent=("customer_id",)) for j in jobs]  # fmt: skip


def test_a_redriven_message_of_a_failed_job_leaves_its_replay_submitted_in_flight(
    pipe: Pipeline,
) -> None:
    # review s22 diff A11 (R4 with an asynchronous vendor): a Segment job refused for good, its
    # message back from the DLQ; the replay resets, marks and sends it, and Segment answers
    # `submitted`, all before that message's worker frees the marks
    body = {"customer_id": "cust-replay-1", "purposes": ["sale"]}
    request_id = pipe.post("/v1/opt-out", body)["request_id"]
    pipe.resolve()
    (message,) = pipe.drain("segment")
    pipe.drain_all()
    assert work(pipe, Segment(refuse=True), bodies=[message]) == 1

    def replayed_and_submitted() -> None:
        path = "/v1/admin/systems/segment/replay"
        event = http_event("POST", path, path_parameters={"system": "segment"}, iam=True)
        answer = invoke(pipe.admin, event)
        assert answer["statusCode"] == 202, answer["body"]
        assert pipe.resolve() == {"batchItemFailures": []}
        assert work(pipe, Segment(), bodies=pipe.drain("segment")) == 1

    assert work(pipe, Segment(), replayed_and_submitted, bodies=[message]) == 1
    # Then the submitted round is in flight again (mark_again for a job read submitted, not
    # only pending)
    (job,) = [i for i in pipe.partition(keys.request_pk(request_id)) if i["sk"] == "JOB#segment"]
    assert job["status"] == "submitted"
    marks = [i for i in pipe.items("ID#") if i["sk"] == "DELIVERY#segment"]
    assert [set(m.get("inflight", ())) for m in marks] == [{"sale"}]


def test_a_late_listing_is_told_apart_only_by_the_replays_own_failure_and_token() -> None:
    # race24: the re-read job says whether a replay reset it from this failure having read
    # another run's listing (pure: no AWS)
    at, later = "2026-12-02T10:00:00+00:00", "2026-12-02T11:00:00+00:00"
    replayed = {"status": "pending", "failures": [{"failed_at": at}], "replayed_listing": "dup"}
    assert delivery.listed_again_after_replay(replayed, at, "mine")
    # the replay read this run's own listing: this run listed it first, and counts it
    assert not delivery.listed_again_after_replay(replayed, at, "dup")
    # reset from another failure, or kept no token (a replay of a failure never listed)
    assert not delivery.listed_again_after_replay(replayed, later, "mine")
    assert not delivery.listed_again_after_replay({**replayed, "replayed_listing": None}, at, "x")
    assert not delivery.listed_again_after_replay({"status": "failed"}, at, "mine")


def test_a_failure_replayed_from_its_own_runs_listing_before_that_run_reads_it_again_is_counted(
    pipe: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Review s24 diff A D3: the worker's token reaches its listing (`record_delivered`). A
    # salesforce job refused for good; its worker lists the failure, and before its re-read
    # of the job an operator replays it, reading this run's own listing.
    request_id = pipe.post("/v1/opt-out", {"email": EMAIL, "purposes": ["sale"]})["request_id"]
    pipe.resolve()
    held = pipe.drain(SYSTEM)
    pipe.drain_all()
    original = delivery.record_delivered  # the worker's own name for it is patched below
    replayed: list[str] = []

    def listed_then_replayed(*args: Any, **kwargs: Any) -> bool:
        listed = original(*args, **kwargs)
        (own,) = listing(pipe)
        replay(pipe)
        assert pipe.resolve() == {"batchItemFailures": []}
        replayed.append(str(the_job(pipe, request_id)["replayed_listing"]))
        assert replayed == [own["listed_by"]] and listing(pipe) == []
        return listed

    monkeypatch.setattr(worker_service, "record_delivered", listed_then_replayed)
    counts: Counter[str] = Counter()
    assert work(pipe, Vendor(refuse=True), bodies=held, counts=counts) == 1
    # Then the failure is counted once, by the run that listed it: the replay read that run's
    # own listing, not another's (a run whose token did not reach its listing counted 0)
    assert replayed and counts["JobsFailed"] == 1
    assert the_job(pipe, request_id)["status"] == "pending"
