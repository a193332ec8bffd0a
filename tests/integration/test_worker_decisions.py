"""The worker's decision for one message, as the job it reads is stored: finished (acknowledged,
no vendor call), submitted (a status check follows), or sent; and what the attempt's one write
leaves on the job. Written for the mutants of session 21 that the other worker tests let
through (notes/review-s21-mutg.md). The domain service runs over moto with a scripted vendor."""

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError

from optout.connectors.base import Job, Outcome, Submitted
from optout.connectors.errors import DeliveryError
from optout.delivery import job_store
from optout.delivery.batch import BatchReport
from optout.delivery.messages import JobMessage
from optout.delivery.service import DeliveryService, Received
from optout.delivery.settings import WorkerSettings
from optout.store import keys
from optout.store.codec import Item, deserialize, serialize
from optout.store.table import Table
from optout.systems import load_systems
from tests.conftest import Aws
from tests.support.log_lines import logged_lines

SYSTEMS = load_systems("layers/common/config/systems.json")
NOW = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)
EMAIL = {"type": "email", "value": "pat@example.com", "key": "k1"}


@dataclass
class Scripted:
    """A vendor that answers each send with `answer(job)` and each status check with
    `checked(submitted)`, recording what reached it."""

    answer: Callable[[Job], Outcome] = lambda job: Outcome(job.job_id, "done", 200)
    checked: Callable[[Submitted], Outcome] = lambda s: Outcome(s.job_id, "done", 200)
    sent: list[Job] = field(default_factory=list)
    asked: list[Submitted] = field(default_factory=list)
    meanwhile: Callable[[], object] | None = None  # runs inside the next vendor call

    def deliver(self, jobs: list[Job]) -> list[Outcome]:
        self.sent.extend(jobs)
        self._meanwhile()
        return [self.answer(job) for job in jobs]

    def confirm(self, submitted: Sequence[Submitted]) -> list[Outcome]:
        self.asked.extend(submitted)
        self._meanwhile()
        return [self.checked(s) for s in submitted]

    def _meanwhile(self) -> None:
        if self.meanwhile is not None:
            meanwhile, self.meanwhile = self.meanwhile, None
            meanwhile()

    def calls_per_job(self, job: Job) -> int:
        return 1

    def confirm_give_up_seconds(self, configured: float) -> float:
        return configured


def put_job(aws: Aws, request_id: str, system: str = "webhook", **fields: Any) -> None:
    job: Item = {
        "pk": keys.request_pk(request_id),
        "sk": keys.job_sk(system),
        "kind": "job",
        "job_id": f"{request_id}:{system}",
        "request_id": request_id,
        "system": system,
        "purposes": ["sale"],
        "identifiers": [EMAIL],
        "status": "pending",
        "attempts": 0,
        "created_at": "2026-11-01T10:00:00+00:00",
        "updated_at": "2026-11-01T10:00:00+00:00",
        **fields,
    }
    aws.dynamodb.put_item(TableName=aws.table_name, Item=serialize(job))


def stored(aws: Aws, request_id: str, system: str = "webhook") -> Item:
    key = {"pk": {"S": keys.request_pk(request_id)}, "sk": {"S": keys.job_sk(system)}}
    raw = aws.dynamodb.get_item(TableName=aws.table_name, Key=key, ConsistentRead=True)
    return deserialize(raw["Item"])


def message(
    request_id: str, system: str = "webhook", confirm: int | None = None, receives: int = 1,
    message_id: str | None = None,
) -> Received:  # fmt: skip
    body: dict[str, Any] = {"job_id": f"{request_id}:{system}", "request_id": request_id,
                            "system": system}  # fmt: skip
    if confirm is not None:
        body["confirm"] = confirm
    return Received(message_id or f"m-{request_id}-{confirm}", json.dumps(body), receives)


def deliver(
    aws: Aws,
    received: list[Received],
    vendor: Scripted,
    at: datetime = NOW,
) -> tuple[BatchReport, list[tuple[JobMessage, int]]]:
    """One worker invocation over `received`, its clock at `at`; returns its report and the
    status checks it scheduled (message, delay)."""
    service = DeliveryService(
        Table(aws.dynamodb, aws.table_name), SYSTEMS,
        WorkerSettings(table_name=aws.table_name), lambda _system: vendor,  # type: ignore[arg-type,return-value]
        clock=lambda: at,
    )  # fmt: skip
    scheduled: list[tuple[JobMessage, int]] = []
    report = service.deliver(received, lambda m, delay: scheduled.append((m, delay)))
    return report, scheduled


def retryable(job: Job) -> Outcome:
    error = DeliveryError("503 unavailable", retryable=True, http_status=503)
    return Outcome(job.job_id, None, 503, error=error)


def acknowledged(report: BatchReport, message_id: str) -> bool:
    """The worker's handler acknowledges a message with no decision, or one of ACK."""
    decision = report.decisions.get(message_id)
    return decision is None or decision.retry_in is None


def after(seconds: float) -> datetime:
    return NOW + timedelta(seconds=seconds)


def test_a_send_message_back_for_a_submitted_job_schedules_a_check_that_is_then_made(
    aws: Aws,
) -> None:
    # Given a job the vendor accepted, whose status checks have reached number 3, and its send
    # message back (a crash after the job was written submitted)
    receipt = {"vendor_ref": "ref-1", "submitted_at": "2026-11-02T11:00:00+00:00"}
    put_job(aws, "r1", "segment", status="submitted", confirms=3, attempts=1, receipt=receipt)
    vendor = Scripted()
    # When the worker reads it
    report, scheduled = deliver(aws, [message("r1", "segment")], vendor)
    # Then nothing is sent again; the message is acknowledged and check number 4 follows
    assert vendor.sent == [] and acknowledged(report, "m-r1-None")
    assert [(m.confirm, delay) for m, delay in scheduled] == [(4, 480)]  # its own delay
    # And that check is made: the vendor is asked and the job is done
    report, _ = deliver(aws, [Received("c4", scheduled[0][0].to_json(), 1)], vendor)
    assert [s.vendor_ref for s in vendor.asked] == ["ref-1"]
    assert stored(aws, "r1", "segment")["status"] == "done"


def test_google_ads_first_status_check_waits_googles_30_minutes_others_a_minute(
    aws: Aws,
) -> None:
    # Given Google Ads and Segment regulation jobs the vendors accept as submitted
    put_job(aws, "r1", "google_ads")
    put_job(aws, "r2", "segment")
    vendor = Scripted(answer=lambda job: Outcome(job.job_id, "submitted", 200, "ref-1"))
    # When the worker sends them
    _, scheduled = deliver(aws, [message("r1", "google_ads"), message("r2", "segment")], vendor)
    # Then Segment's first check follows in a minute, as before; Google's waits SQS's
    # longest delay (15 minutes), the first leg of the 30 minutes Google asks for
    delays = {m.system: (m.confirm, delay) for m, delay in scheduled}
    assert delays == {"segment": (1, 60), "google_ads": (1, 900)}
    (check,) = [m for m, _ in scheduled if m.system == "google_ads"]
    # And that check, back after 15 minutes, asks Google nothing and waits the rest
    report, _ = deliver(aws, [Received("c1", check.to_json(), 1)], vendor, at=after(900))
    assert vendor.asked == []
    assert report.decisions["c1"].retry_in == 900
    assert stored(aws, "r1", "google_ads")["status"] == "submitted"
    # And back at 30 minutes, it reads Google's status
    deliver(aws, [Received("c1", check.to_json(), 2)], vendor, at=after(1800))
    assert [s.vendor_ref for s in vendor.asked] == ["ref-1"]


def test_a_message_back_long_before_its_retry_time_waits_and_is_counted_once(aws: Aws) -> None:
    # Given a pending job whose last attempt set its retry an hour from now
    put_job(aws, "r1", retry_at=after(3600).isoformat(), attempts=1)
    vendor = Scripted()
    # When its message is back now (not its last receive)
    report, _ = deliver(aws, [message("r1", receives=2)], vendor)
    # Then no vendor call: the message hides until the retry time, counted RetriesWaiting once
    assert vendor.sent == []
    assert report.decisions["m-r1-None"].retry_in == 3600
    assert report.counts["RetriesWaiting"] == 1
    assert stored(aws, "r1")["attempts"] == 1


def test_a_duplicate_message_in_the_batch_is_acknowledged_and_counted_once(aws: Aws) -> None:
    # Given a pending job and two copies of its message in one batch
    put_job(aws, "r1")
    vendor = Scripted()
    copies = [message("r1", message_id="m1"), message("r1", message_id="m2")]
    # When the worker takes the batch
    report, _ = deliver(aws, copies, vendor)
    # Then the vendor is called once, both messages are acknowledged, one counted a duplicate,
    # and the job counted done once (not failed)
    assert [j.job_id for j in vendor.sent] == ["r1:webhook"]
    assert acknowledged(report, "m1") and acknowledged(report, "m2")
    assert report.counts["DuplicateMessages"] == 1
    assert (report.counts["JobsDone"], report.counts["JobsFailed"]) == (1, 0)
    job = stored(aws, "r1")
    assert (job["status"], job["attempts"]) == ("done", 1)


def test_an_older_status_check_than_the_jobs_live_one_is_acknowledged_and_counted(
    aws: Aws,
) -> None:
    # Given a submitted job whose live status check is number 3, and check number 2 back
    receipt = {"vendor_ref": "ref-1", "submitted_at": "2026-11-02T11:00:00+00:00"}
    put_job(aws, "r1", "segment", status="submitted", confirms=3, attempts=1, receipt=receipt)
    vendor = Scripted()
    # When the worker reads it
    report, scheduled = deliver(aws, [message("r1", "segment", confirm=2)], vendor)
    # Then the vendor is not asked, nothing follows, and it is counted superseded once
    assert vendor.asked == [] and scheduled == [] and acknowledged(report, "m-r1-2")
    assert report.counts["ChecksSuperseded"] == 1
    job = stored(aws, "r1", "segment")
    assert (job["status"], job["confirms"]) == ("submitted", 3)


def test_a_copy_of_a_status_check_while_the_first_holds_the_lease_does_not_ask_the_vendor(
    aws: Aws,
) -> None:
    # Given a submitted job and two copies of its first status check, the second read by
    # another worker while the first is in its vendor call
    receipt = {"vendor_ref": "ref-1", "submitted_at": "2026-11-02T11:00:00+00:00"}
    put_job(aws, "r1", "segment", status="submitted", confirms=1, attempts=1, receipt=receipt)
    other = Scripted()
    copy: list[BatchReport] = []
    first = Scripted(meanwhile=lambda: copy.append(
        deliver(aws, [message("r1", "segment", confirm=1, message_id="c-copy")], other, after(5))[0]
    ))  # fmt: skip
    # When the first check runs
    deliver(aws, [message("r1", "segment", confirm=1, message_id="c-first")], first)
    # Then the copy found the job leased: no vendor call, its message comes back later
    assert other.asked == [] and len(first.asked) == 1
    assert copy[0].decisions["c-copy"].reason == "job leased elsewhere"
    assert stored(aws, "r1", "segment")["status"] == "done"


def test_a_last_receive_whose_failure_loses_to_another_copys_done_is_not_sent_to_the_dlq(
    aws: Aws,
) -> None:
    # Given a pending job on its message's last allowed receive, and another copy of the
    # message delivered (done) while this one's vendor call fails retryably
    put_job(aws, "r1", attempts=7)
    done = Scripted()
    last = Scripted(
        answer=retryable,
        meanwhile=lambda: deliver(aws, [message("r1", message_id="m-other")], done),
    )
    # When the last receive's attempt ends
    report, _ = deliver(aws, [message("r1", receives=8, message_id="m-last")], last)
    # Then its "retries exhausted" write loses: the job stays done, and the message is
    # acknowledged (not moved to the DLQ), the lost write counted
    assert stored(aws, "r1")["status"] == "done"
    assert acknowledged(report, "m-last")
    assert report.counts["JobWritesLost"] == 1 and report.counts["JobsFailed"] == 0


def test_a_message_of_a_done_job_is_acknowledged_counted_and_logged_without_a_vendor_call(
    aws: Aws,
) -> None:
    # Given a job already done (its values dropped) and a message of it back
    receipt = {"http_status": 200, "completed_at": "2026-11-02T11:00:00+00:00"}
    put_job(aws, "r1", status="done", attempts=1, receipt=receipt, identifiers=[])
    vendor = Scripted()
    # When the worker reads it
    with logged_lines() as lines:
        report, _ = deliver(aws, [message("r1")], vendor)
    # Then no vendor call, the message is acknowledged, counted and logged once, job as it was
    assert vendor.sent == [] and acknowledged(report, "m-r1-None")
    assert report.counts["JobsSkippedFinished"] == 1
    skipped = [line for line in lines if line["message"] == "job already finished"]
    assert [(line["job_id"], line["status"]) for line in skipped] == [("r1:webhook", "done")]
    assert stored(aws, "r1")["attempts"] == 1


def test_the_final_write_refuses_a_status_that_is_not_final(aws: Aws) -> None:
    # Given a pending job
    put_job(aws, "r1")
    table = Table(aws.dynamodb, aws.table_name)
    # When a final write is asked with a status that is not final, it raises
    with pytest.raises(ValueError, match="not a final status"):
        job_store.finish(table, stored(aws, "r1"), "pending", {}, NOW.isoformat())
    # Then the job still holds its values, as it was
    job = stored(aws, "r1")
    assert (job["status"], job["identifiers"]) == ("pending", [EMAIL])


def test_a_copy_whose_submit_loses_to_another_copys_submit_schedules_no_second_check(
    aws: Aws,
) -> None:
    # Given a pending job whose asynchronous vendor accepts it twice: another copy of its
    # message is delivered (and written submitted) while this one is in its vendor call
    put_job(aws, "r1", "segment")

    def accepted(ref: str) -> Callable[[Job], Outcome]:
        return lambda job: Outcome(job.job_id, "submitted", 200, ref, ("email",))

    other = Scripted(answer=accepted("ref-other"))
    first = Scripted(
        answer=accepted("ref-first"),
        meanwhile=lambda: deliver(
            aws, [message("r1", "segment", message_id="m2")], other, after(5)
        ),
    )
    # When this copy's answer is written
    report, scheduled = deliver(aws, [message("r1", "segment", message_id="m1")], first)
    # Then it loses: the other copy's receipt stands, and this one neither counts a
    # submission nor schedules a check of its own (the other copy scheduled one)
    job = stored(aws, "r1", "segment")
    assert (job["status"], job["receipt"]["vendor_ref"], job["attempts"]) == (
        "submitted", "ref-other", 1
    )  # fmt: skip
    assert report.counts["JobWritesLost"] == 1 and report.counts["JobsSubmitted"] == 0
    assert scheduled == [] and acknowledged(report, "m1")


def test_a_write_error_while_reading_one_message_brings_back_that_message_alone(aws: Aws) -> None:
    # Given a batch of a pending job's message, then a send message back for a submitted job
    # whose status check cannot be scheduled (SQS throttles the send)
    put_job(aws, "r2")
    receipt = {"vendor_ref": "ref-1", "submitted_at": "2026-11-02T11:00:00+00:00"}
    put_job(aws, "r1", "segment", status="submitted", confirms=1, attempts=1, receipt=receipt)
    vendor = Scripted()

    def throttled(_message: JobMessage, _delay: int) -> None:
        raise ClientError({"Error": {"Code": "ThrottlingException"}}, "SendMessage")

    service = DeliveryService(
        Table(aws.dynamodb, aws.table_name), SYSTEMS,
        WorkerSettings(table_name=aws.table_name), lambda _system: vendor,  # type: ignore[arg-type,return-value]
        clock=lambda: NOW,
    )  # fmt: skip
    # When the worker takes the batch
    report = service.deliver([message("r2"), message("r1", "segment")], throttled)
    # Then the submitted job's message comes back soon (its check is still to be scheduled),
    # counted; the other job is sent once and done
    assert report.decisions["m-r1-None"].reason == "job write failed"
    assert report.counts["JobWritesFailed"] == 1
    assert [j.job_id for j in vendor.sent] == ["r2:webhook"]
    assert stored(aws, "r2")["status"] == "done"


def test_a_message_whose_job_is_gone_is_retried_once_then_acknowledged_and_counted(
    aws: Aws,
) -> None:
    # review s25 F4: two runs of one re-open, one queued the job's message, the other withdrew
    # the job (its request denied meanwhile): retried to its last receive, the message went to
    # the DLQ, a dead-letter alarm with nothing to replay. No job item is stored here.
    request_id = "0b6a4c2e-1f3d-4e5a-9b7c-8d6e5f4a3b2c"
    vendor = Scripted()
    # When its message comes a first time: retried, as a message beating its job's write would be
    first, _ = deliver(aws, [message(request_id, message_id="m1")], vendor)
    assert not acknowledged(first, "m1") and first.counts["JobMessagesWithoutJob"] == 0
    # When it comes back: acknowledged (no DLQ), counted and logged, no vendor call
    with logged_lines() as lines:
        again, _ = deliver(aws, [message(request_id, receives=2, message_id="m2")], vendor)
    assert acknowledged(again, "m2") and vendor.sent == []
    assert again.counts["JobMessagesWithoutJob"] == 1
    gone = [line for line in lines if line["message"].startswith("job not found again")]
    assert [(line["request_id"], line["system"]) for line in gone] == [(request_id, "webhook")]
    # ... a body whose request id is not one is acknowledged without logging it
    with logged_lines() as lines:
        stray, _ = deliver(aws, [message("pat@example.com", receives=8, message_id="m3")], vendor)
    assert acknowledged(stray, "m3")
    assert not any("pat@example.com" in json.dumps(line) for line in lines)


def test_a_status_check_whose_claim_is_throttled_on_its_last_receive_is_scheduled_afresh(
    aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a submitted job and its status check on its last allowed receive, whose lease
    # write AWS throttles past botocore's retries
    receipt = {"vendor_ref": "ref-1", "submitted_at": "2026-11-02T11:00:00+00:00"}
    put_job(aws, "r1", "segment", status="submitted", confirms=2, attempts=1, receipt=receipt)
    throttled = {"Code": "ProvisionedThroughputExceededException", "Message": "injected"}

    def claim(*_: Any, **__: Any) -> bool:
        raise ClientError({"Error": throttled}, "UpdateItem")

    monkeypatch.setattr(job_store, "claim_confirm", claim)
    vendor = Scripted()
    last = WorkerSettings(table_name=aws.table_name).max_receive_count
    # When the worker reads it
    report, scheduled = deliver(aws, [message("r1", "segment", 2, last, "c-last")], vendor)
    # Then the vendor is not asked, and the same job's check is scheduled afresh (its own
    # receives: not to the DLQ), after the lease; the message is acknowledged
    assert vendor.asked == [] and acknowledged(report, "c-last")
    lease = WorkerSettings(table_name=aws.table_name).lease_seconds
    assert [(json.loads(m.to_json()), delay) for m, delay in scheduled] == [
        ({"job_id": "r1:segment", "request_id": "r1", "system": "segment", "confirm": 2},
         lease + 1)
    ]  # fmt: skip
