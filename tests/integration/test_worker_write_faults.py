"""AWS faults on the worker's own writes, after the vendor call (review s17, F1 F4 F5): a
throttled write past botocore's retries, or a write whose answer was lost. One message's
failed write brings back that message alone; a job whose final status is written but whose
after-steps (marks freed, failure listed) are not is finished by the next message of it,
and its failure is counted once."""

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError

from optout.store import keys
from optout.store.delivery import record_delivered
from optout.store.table import Table
from tests.integration.test_worker import EMAIL, Stack, failed_ids, stack  # noqa: F401
from tests.integration.test_worker_writes import _flight, _mark
from tests.support.aws_hooks import Register, lose_answer, session_hooks

THROTTLED = {"Code": "ProvisionedThroughputExceededException", "Message": "injected"}


@pytest.fixture
def hooks(stack: Stack) -> Iterator[Register]:  # noqa: F811
    """Hooks on the default session; the worker builds its clients again after each."""
    with session_hooks("faultw", stack.worker.services.cache_clear) as register:
        yield register


def throttle_once(matches: Callable[[dict[str, Any]], bool], armed: list[bool]) -> Any:
    """A provide-client-params handler: the first matching call while `armed` is throttled."""
    hit: list[bool] = []

    def hook(params: dict[str, Any], **_: Any) -> None:
        if armed and not hit and matches(params):
            hit.append(True)
            raise ClientError({"Error": THROTTLED}, "Write")

    return hook


def _frees_marks(params: dict[str, Any]) -> bool:
    sk = str(params.get("Key", {}).get("sk", {}).get("S", ""))
    return sk.startswith("DELIVERY#") and "DELETE inflight" in str(params["UpdateExpression"])


def _counted(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> dict[str, float]:  # noqa: F811
    """The worker's metrics, summed over the invocations that follow."""
    totals: dict[str, float] = {}
    real_add = stack.worker.metrics.add_metric

    def add(**kw: Any) -> Any:
        totals[kw["name"]] = totals.get(kw["name"], 0) + kw["value"]
        return real_add(**kw)

    monkeypatch.setattr(stack.worker.metrics, "add_metric", add)
    return totals


def _listed(stack: Stack, system: str) -> list[str]:  # noqa: F811
    return [i["sk"] for i in stack.aws.items() if i["pk"] == keys.failed_pk(system)]


def test_a_status_checks_failure_whose_marks_write_was_throttled_is_finished_when_it_returns(
    stack: Stack,  # noqa: F811
    hooks: Register,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a Google Ads job submitted, its identity in flight, that the vendor will fail
    armed: list[bool] = []
    hooks("provide-client-params.dynamodb.UpdateItem", throttle_once(_frees_marks, armed))
    stack.checks_without_delay(monkeypatch)
    counted = _counted(stack, monkeypatch)
    stack.server.sandboxes["google_ads"].vendor.fail_next = True
    stack.put_request("r1", ["google_ads"], EMAIL)
    _flight(stack, "r1", "google_ads")
    stack.send("google_ads", "r1")
    stack.run("google_ads")  # submitted, its status check sent
    stack.run("google_ads")  # check 1: still processing
    # When check 2 finds it failed and the write freeing its marks is throttled
    armed.append(True)
    answer, messages = stack.run("google_ads")
    # Then the batch does not fail: the check alone comes back, after its lease
    assert failed_ids(answer) == {messages[0]["MessageId"]}
    assert stack.job("r1", "google_ads")["status"] == "failed"
    assert counted.get("JobWritesFailed") == 1 and "JobsFailed" not in counted
    # And when it is back, the job's marks are freed, it is listed, its failure counted
    stack.fast_forward("google_ads", messages)
    answer, _ = stack.run("google_ads")
    assert answer["batchItemFailures"] == []
    assert not _mark(stack, "google_ads").get("inflight")
    assert _listed(stack, "google_ads") == ["r1:google_ads"]
    assert counted["JobsFailed"] == 1
    # And a stale check and a DLQ letter of it later run the same steps, counted no more
    stack.send("google_ads", "r1", {"job_id": "r1:google_ads", "request_id": "r1",
                                   "system": "google_ads", "confirm": 1})  # fmt: skip
    stack.send("google_ads", "r1")
    stack.run("google_ads")
    assert counted["JobsFailed"] == 1 and counted["FailedJobsNeedReplay"] == 1


def test_a_send_failing_on_its_last_receive_whose_marks_write_was_throttled_is_finished(
    stack: Stack,  # noqa: F811
    hooks: Register,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a webhook job in flight whose vendor answers 500 each time, on its 7th failure
    armed: list[bool] = []
    hooks("provide-client-params.dynamodb.UpdateItem", throttle_once(_frees_marks, armed))
    counted = _counted(stack, monkeypatch)
    stack.put_request("r1", ["webhook"], EMAIL)
    _flight(stack, "r1", "webhook")
    stack.send("webhook", "r1")
    stack.server.sandboxes["webhook"].set_faults(1.0, 500)
    now = [datetime.now(UTC)]
    monkeypatch.setattr(stack.worker.services().delivery, "clock", lambda: now[0])
    for _ in range(7):
        _, messages = stack.run("webhook")
        stack.fast_forward("webhook", messages)
        now[0] += timedelta(seconds=121)
    # When its last allowed receive fails it for good and the write freeing its marks is
    # throttled
    armed.append(True)
    answer, messages = stack.run("webhook")
    # Then the batch does not fail, and the message goes to the DLQ as on any last receive
    assert int(messages[0]["Attributes"]["ApproximateReceiveCount"]) == 8
    assert failed_ids(answer) == {messages[0]["MessageId"]}
    assert stack.job("r1", "webhook")["status"] == "failed"
    stack.fast_forward("webhook", messages)
    assert stack.run("webhook")[1] == []
    letters = stack.receive("webhook", queue="dlq")
    assert len(letters) == 1 and "JobsFailed" not in counted
    # And its redrive frees the marks, lists the job and counts its failure, once
    stack.send("webhook", "r1", json.loads(letters[0]["Body"]))
    stack.send("webhook", "r1", json.loads(letters[0]["Body"]))
    for _ in range(2):
        answer, _ = stack.run("webhook")
        assert answer["batchItemFailures"] == []
    assert not _mark(stack, "webhook").get("inflight")
    assert _listed(stack, "webhook") == ["r1:webhook"]
    # (the letter that listed it completed the failure; the copy counts it needing the
    # replay, once: review s17 diff-worker N4)
    assert counted["JobsFailed"] == 1 and counted["FailedJobsNeedReplay"] == 1


def test_a_failed_jobs_message_back_from_a_write_fault_is_not_counted_as_needing_replay(
    stack: Stack,  # noqa: F811
    hooks: Register,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a webhook job in flight that the vendor refuses for good (400), and the write
    # freeing its marks throttled
    armed = [True]
    hooks("provide-client-params.dynamodb.UpdateItem", throttle_once(_frees_marks, armed))
    counted = _counted(stack, monkeypatch)
    stack.put_request("r1", ["webhook"], EMAIL)
    _flight(stack, "r1", "webhook")
    stack.send("webhook", "r1")
    stack.server.sandboxes["webhook"].set_faults(1.0, 400)
    _, messages = stack.run("webhook")
    assert stack.job("r1", "webhook")["status"] == "failed"
    # When its message comes back from that fault, and later two letters of it are redriven
    stack.fast_forward("webhook", messages)
    stack.run("webhook")
    first = counted.copy()
    for _ in range(2):
        stack.send("webhook", "r1")
        stack.run("webhook")
    # Then the return completes the failure (listed, JobsFailed) and is no letter needing the
    # replay (review s17 diff-worker N4: it was counted FailedJobsNeedReplay too); the two
    # letters count the failed job once
    assert first["JobsFailed"] == 1 and "FailedJobsNeedReplay" not in first
    assert _listed(stack, "webhook") == ["r1:webhook"]
    assert counted["JobsFailed"] == 1 and counted["FailedJobsNeedReplay"] == 1


def test_one_jobs_throttled_status_check_send_brings_back_that_message_alone(
    stack: Stack,  # noqa: F811
    hooks: Register,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given two Google Ads jobs sent in one vendor call, the first status check's send throttled
    armed: list[bool] = []
    hooks("provide-client-params.sqs.SendMessage", throttle_once(lambda _: True, armed))
    counted = _counted(stack, monkeypatch)
    for request_id in ("r1", "r2"):
        stack.put_request(request_id, ["google_ads"], EMAIL)
        stack.send("google_ads", request_id)
    armed.append(True)
    # When the worker delivers them
    answer, messages = stack.run("google_ads")
    # Then one message comes back, the other's job stands: both submitted, one vendor call
    assert len(messages) == 2 and len(failed_ids(answer)) == 1
    assert counted["JobWritesFailed"] == 1
    assert {stack.job(r, "google_ads")["status"] for r in ("r1", "r2")} == {"submitted"}
    # Both counted submitted, the one whose check was not sent too (review s17 N2)
    assert counted["JobsSubmitted"] == 2
    removes = [c for c in stack.server.sandboxes["google_ads"].recorded() if "remove" in c["path"]]
    assert len(removes) == 1
    # And the one back schedules its job's status check without calling the vendor again
    stack.fast_forward("google_ads", [m for m in messages if m["MessageId"] in failed_ids(answer)])
    answer, _ = stack.run("google_ads")
    assert answer["batchItemFailures"] == []
    removes = [c for c in stack.server.sandboxes["google_ads"].recorded() if "remove" in c["path"]]
    assert len(removes) == 1 and stack.delayed("google_ads") == 2
    assert counted["JobsSubmitted"] == 2  # not again by the message that came back


def test_a_status_check_whose_lease_answer_was_lost_goes_on_with_its_own_lease(
    stack: Stack,  # noqa: F811
    hooks: Register,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a submitted Google Ads job and its status check
    handler, lost = lose_answer(lambda body: "lease_until = :until" in body)
    hooks("needs-retry.dynamodb.UpdateItem", handler)
    stack.checks_without_delay(monkeypatch)
    stack.put_request("r1", ["google_ads"], EMAIL)
    stack.send("google_ads", "r1")
    stack.run("google_ads")
    calls = len(stack.server.sandboxes["google_ads"].recorded())
    # When the check's lease write commits and its answer is lost (botocore sends it again)
    answer, _ = stack.run("google_ads")
    # Then the check is not refused by its own lease: it asks the vendor, and goes on
    assert lost == [1]
    assert answer["batchItemFailures"] == []
    assert len(stack.server.sandboxes["google_ads"].recorded()) > calls
    job = stack.job("r1", "google_ads")
    assert job["confirms"] == 2 and "lease_until" not in job


def test_an_attempt_whose_pending_write_answer_was_lost_is_counted_once(
    stack: Stack,  # noqa: F811
    hooks: Register,
) -> None:
    # Given a webhook job whose vendor answers 500, and the write keeping it pending (with its
    # receipt and retry time) committed with its answer lost: botocore sends it again
    stack.put_request("r1", ["webhook"], EMAIL)
    stack.send("webhook", "r1")
    stack.server.sandboxes["webhook"].set_faults(1.0, 500)
    handler, lost = lose_answer(lambda body: "retry_at = :retry_at" in body)
    hooks("needs-retry.dynamodb.UpdateItem", handler)
    # When the worker makes its one attempt
    answer, _ = stack.run("webhook")
    # Then the retried write is recognised as its own: one attempt, not two, and the message
    # comes back for its retry (not counted as a write lost to another delivery)
    assert lost == [1]
    job = stack.job("r1", "webhook")
    assert (job["status"], int(job["attempts"])) == ("pending", 1)
    assert "retry_at" in job and len(answer["batchItemFailures"]) == 1


def test_a_failure_is_newly_listed_once_and_again_after_a_replay(
    stack: Stack,  # noqa: F811
) -> None:
    # Given a failed job
    job = {"job_id": "r1:webhook", "request_id": "r1", "system": "webhook",
           "status": "failed", "completed_at": "2026-12-01T10:00:00+00:00"}  # fmt: skip
    # When its after-steps run, run again, and run for a second failure after a replay
    first = record_delivered(stack.table, job, "failed", job["completed_at"])
    again = record_delivered(stack.table, job, "failed", "2026-12-01T11:00:00+00:00")
    later = {**job, "completed_at": "2026-12-02T10:00:00+00:00"}
    second = record_delivered(stack.table, later, "failed", later["completed_at"])
    # Then the listing is new the first time and for the new failure only
    assert (first, again, second) == (True, False, True)
    listing = [i for i in stack.aws.items() if i["pk"] == keys.failed_pk("webhook")]
    assert [i["failed_at"] for i in listing] == ["2026-12-02T10:00:00+00:00"]


def test_a_listing_whose_answer_was_lost_is_still_new_to_the_run_that_wrote_it(
    stack: Stack,  # noqa: F811
    hooks: Register,
) -> None:
    # Given the failed-job listing's write committing and its answer lost (botocore retries)
    handler, lost = lose_answer(lambda body: "listed_by" in body)
    hooks("needs-retry.dynamodb.UpdateItem", handler)
    table = Table.connect(stack.aws.table_name)
    job = {"job_id": "r1:webhook", "request_id": "r1", "system": "webhook",
           "status": "failed", "completed_at": "2026-12-01T10:00:00+00:00"}  # fmt: skip
    # When the after-steps run
    listed = record_delivered(table, job, "failed", job["completed_at"])
    # Then the retry finds its own listing: newly listed, so the failure is counted
    assert lost == [1] and listed


def test_two_runs_listing_one_failure_while_an_answer_is_lost_count_it_once(
    stack: Stack,  # noqa: F811
    hooks: Register,
) -> None:
    # Given a failed job whose after-steps two runs take at once: the first run's listing
    # commits, its answer is lost, and the second run lists it before botocore's retry
    job = {"job_id": "r1:webhook", "request_id": "r1", "system": "webhook",
           "status": "failed", "completed_at": "2026-12-01T10:00:00+00:00"}  # fmt: skip
    other: list[bool] = []
    lost: list[int] = []

    def meanwhile(request_dict: dict[str, Any] | None = None, response: Any = None,
                  **_: Any) -> Any:  # fmt: skip
        body = str((request_dict or {}).get("body", b""))
        if lost or response is None or response[0].status_code != 200 or "listed_by" not in body:
            return None
        lost.append(1)
        other.append(record_delivered(table, job, "failed", job["completed_at"]))
        return 0  # botocore: the first run's write is sent again at once

    hooks("needs-retry.dynamodb.UpdateItem", meanwhile)
    table = Table.connect(stack.aws.table_name)  # after the hook: a client copies the handlers
    # When both finish
    first = record_delivered(table, job, "failed", job["completed_at"])
    # Then exactly one of them listed it, so JobsFailed is counted once (review s17 N5: each
    # read the other's token, and neither counted it)
    assert lost == [1] and [first, *other].count(True) == 1
    assert _listed(stack, "webhook") == ["r1:webhook"]


def test_throttled_writes_after_the_vendor_calls_stop_in_time_for_the_batch_response(
    stack: Stack,  # noqa: F811
    hooks: Register,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given ten webhook jobs whose vendor calls took 5 s of the 30, and a table throttling
    # every job write, each giving up after 3 s (aws.BUDGET's tries and sleeps)
    from tests.integration.test_worker_deadline import Clock, VirtualContext  # noqa: PLC0415

    names = [f"r{n}" for n in range(10)]
    for name in names:
        stack.put_request(name, ["webhook"], EMAIL)
        stack.send("webhook", name)
    clock = Clock()
    clock.now = 5.0

    def throttled(params: dict[str, Any], **_: Any) -> None:
        if str(params.get("Key", {}).get("sk", {}).get("S", "")).startswith("JOB#"):
            clock.advance(3.0)  # raises Killed past the function's timeout
            raise ClientError({"Error": THROTTLED}, "UpdateItem")

    hooks("provide-client-params.dynamodb.UpdateItem", throttled)
    counted = _counted(stack, monkeypatch)
    # When the worker settles them
    answer, _ = stack.run("webhook", VirtualContext(clock=clock))
    # Then it stops writing while 4 s are left (8 writes tried, at 5 .. 26 s) and answers:
    # every message comes back on its own, none lost to a killed invocation
    assert clock.now == pytest.approx(29.0)
    assert len(answer["batchItemFailures"]) == 10
    assert counted["JobWritesFailed"] == 8
    assert counted["JobWritesOutOfTime"] == 2
    assert [stack.job(n, "webhook")["status"] for n in names] == ["pending"] * 10


def test_an_entrys_slow_writes_stop_before_the_one_that_would_outlast_the_function(
    stack: Stack,  # noqa: F811
    hooks: Register,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a webhook job in flight that the vendor refuses for good, its call done with 8.5 s
    # of the function left, and each write taking 3 s (throttled, then through on botocore's
    # last try): its failure is three writes (the job, its marks, its listing)
    from tests.integration.test_worker_deadline import Clock, VirtualContext  # noqa: PLC0415

    stack.put_request("r1", ["webhook"], EMAIL)
    _flight(stack, "r1", "webhook")
    stack.send("webhook", "r1")
    stack.server.sandboxes["webhook"].set_faults(1.0, 400)
    clock = Clock()
    clock.now = 21.5
    slow = [True]

    def slow_write(**_: Any) -> None:
        if slow:
            clock.advance(3.0)  # raises Killed past the function's timeout

    hooks("provide-client-params.dynamodb.UpdateItem", slow_write)
    counted = _counted(stack, monkeypatch)
    # When the worker settles it
    answer, messages = stack.run("webhook", VirtualContext(clock=clock))
    # Then the listing's write, which would end past the timeout, is not started (review s17
    # W2: the time was checked per entry, before its first write only): the invocation
    # answers, and that message comes back on its own
    assert clock.now == pytest.approx(27.5)
    assert failed_ids(answer) == {messages[0]["MessageId"]}
    assert counted["JobWritesOutOfTime"] == 1
    assert stack.job("r1", "webhook")["status"] == "failed" and _listed(stack, "webhook") == []
    # And when it is back, the failure is listed and counted
    slow.clear()
    stack.fast_forward("webhook", messages)
    answer, _ = stack.run("webhook")
    assert answer["batchItemFailures"] == []
    assert _listed(stack, "webhook") == ["r1:webhook"] and counted["JobsFailed"] == 1


def test_out_of_time_for_writes_a_message_on_its_last_receive_is_written_first(
    stack: Stack,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a webhook job on its last allowed receive (2 here) behind nine received once, its
    # vendor calls done with 8 s left of the function, and job writes taking 3 s each
    from tests.integration.test_worker_deadline import (  # noqa: PLC0415
        Clock,
        VirtualContext,
        last_receive_is,
    )

    last_receive_is(stack, monkeypatch, 2)
    stack.put_request("last", ["webhook"], EMAIL)
    stack.send("webhook", "last")
    stack.fast_forward("webhook", stack.receive("webhook"))
    names = [f"r{n}" for n in range(9)]
    for name in names:
        stack.put_request(name, ["webhook"], EMAIL)
        stack.send("webhook", name)
    receive = stack.receive
    monkeypatch.setattr(stack, "receive", lambda system: list(reversed(receive(system))))
    clock = Clock()
    clock.now = 22.0

    def slow(params: dict[str, Any], **_: Any) -> None:
        if str(params.get("Key", {}).get("sk", {}).get("S", "")).startswith("JOB#"):
            clock.advance(3.0)

    with session_hooks("faultw2", stack.worker.services.cache_clear) as register:
        register("provide-client-params.dynamodb.UpdateItem", slow)
        answer, _ = stack.run("webhook", VirtualContext(clock=clock))
    # Then two writes fit (at 22 and 25 s): the last chance's first, so it is done, not left
    # to the DLQ; the others come back unwritten
    assert stack.job("last", "webhook")["status"] == "done"
    assert len(answer["batchItemFailures"]) == 8


def test_a_write_refused_for_a_bug_fails_the_invocation_not_the_message(
    stack: Stack,  # noqa: F811
    hooks: Register,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a status check's send refused with an error that will not pass by itself (a
    # grant missing, a malformed request): a bug, not AWS being busy (review s17 N3)
    armed: list[bool] = []
    denied = {"Code": "AccessDenied", "Message": "not allowed"}

    def refuse(params: dict[str, Any], **_: Any) -> None:
        if armed:
            raise ClientError({"Error": denied}, "SendMessage")

    hooks("provide-client-params.sqs.SendMessage", refuse)
    counted = _counted(stack, monkeypatch)
    stack.put_request("r1", ["google_ads"], EMAIL)
    stack.send("google_ads", "r1")
    armed.append(True)
    # When the worker delivers it, it raises (Lambda's Errors, the worker's alarm) instead of
    # counting a JobWritesFailed and retrying the message to the DLQ as if AWS were busy
    with pytest.raises(ClientError):
        stack.run("google_ads")
    assert "JobWritesFailed" not in counted
