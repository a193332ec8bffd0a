"""Two copies of one job message in their vendor calls at once (SQS standard delivers at least
once; the worker takes no claim): the first answer written stands, and the other copy's write
changes nothing on the job, whatever order the answers come in.

The order is forced by a stand-in vendor that runs "the other party" (the second copy's whole
delivery, or an operator replay) after it answered and before its worker writes that answer.
The capture API and the resolver run their real handlers, the worker's domain service runs
over moto (tests/support/pipeline.py)."""

import json
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from optout.connectors.base import Connector, Job, Outcome, Submitted
from optout.connectors.errors import DeliveryError
from optout.delivery.batch import BatchReport
from optout.delivery.messages import JobMessage
from optout.delivery.service import DeliveryService, Received
from optout.delivery.settings import WorkerSettings
from optout.store import keys
from optout.store.codec import serialize
from optout.store.table import Table
from optout.systems import load_systems
from tests.conftest import Aws
from tests.integration.test_resolver_delivery import SYSTEMS, Vendor, emails_sent, work
from tests.integration.test_resolver_replay import replay
from tests.support.http_events import http_event, json_body
from tests.support.lambdas import invoke
from tests.support.pipeline import Pipeline, build_pipeline

EMAIL = "pat@example.com"
REFUSED = DeliveryError("400 bad request", retryable=False, http_status=400)
THROTTLED = DeliveryError("429 throttled", retryable=True, http_status=429)


@pytest.fixture
def pipe(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> Iterator[Pipeline]:
    yield build_pipeline(aws, monkeypatch)


class Answers(Vendor):
    """Answers every job with `outcome(job)`, after running `meanwhile` (the other party)."""

    def __init__(
        self, outcome: Callable[[Job], Outcome], meanwhile: Callable[[], object] | None = None
    ) -> None:
        super().__init__()
        self.outcome, self.meanwhile = outcome, meanwhile

    def deliver(self, jobs: list[Job]) -> list[Outcome]:
        self.received.extend(jobs)
        if self.meanwhile is not None:
            self.meanwhile()
        return [self.outcome(job) for job in jobs]

    def confirm(self, submitted: Sequence[Submitted]) -> list[Outcome]:
        """A status check: the vendor finished what it accepted."""
        return [Outcome(s.job_id, "done", 200, s.vendor_ref, s.identifier_types_sent)
                for s in submitted]  # fmt: skip

    def confirm_give_up_seconds(self, configured: float) -> float:
        return configured


def refused(job: Job) -> Outcome:
    return Outcome(job.job_id, None, 400, error=REFUSED, identifier_types_attempted=("email",))


def throttled(job: Job) -> Outcome:
    return Outcome(job.job_id, None, 429, error=THROTTLED, identifier_types_attempted=("email",))


def done(job: Job) -> Outcome:
    return Outcome(job.job_id, "done", 200, identifier_types_sent=("email",))


def accepted(job: Job) -> Outcome:
    return Outcome(job.job_id, "submitted", 200, "ref-1", ("customer_id",))


class PassThrough(Connector):  # type: ignore[type-arg]
    """The base Connector's deliver() over a vendor that takes anything it is sent."""

    calls: list[Job]

    def configure(self) -> None:
        self.calls = []

    def send(self, jobs: Sequence[Job]) -> list[Outcome]:
        self.calls.extend(jobs)
        return [done(job) for job in jobs]


def deliver(
    pipe: Pipeline,
    message: dict[str, Any],
    vendor: Any,
    checks: list[JobMessage] | None = None,
    later: timedelta = timedelta(0),
) -> BatchReport:
    """One copy of `message` delivered by its own worker invocation (first receive), its
    clock `later` than now; the status checks it schedules go to `checks`."""
    service = DeliveryService(
        Table(pipe.aws.dynamodb, pipe.aws.table_name), SYSTEMS,
        WorkerSettings(table_name=pipe.aws.table_name), lambda _system: vendor,
        clock=lambda: datetime.now(UTC) + later,
    )  # fmt: skip
    scheduled = [] if checks is None else checks
    return service.deliver(
        [Received("m-copy", json.dumps(message), 1)], lambda m, _delay: scheduled.append(m)
    )


def opt_out(pipe: Pipeline, system: str, body: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """A captured and resolved opt-out: its request id and `system`'s job message; the other
    systems' messages are dropped."""
    request_id = pipe.post("/v1/opt-out", body)["request_id"]
    pipe.resolve()
    (message,) = pipe.drain(system)
    pipe.drain_all()
    return request_id, message


def job(pipe: Pipeline, request_id: str, system: str) -> dict[str, Any]:
    (found,) = [i for i in pipe.items(keys.request_pk(request_id)) if i["sk"] == f"JOB#{system}"]
    return found


def listed(pipe: Pipeline, system: str) -> set[str]:
    return {i["sk"] for i in pipe.items(keys.failed_pk(system))}


def in_flight(pipe: Pipeline, system: str) -> list[set[str]]:
    marks = [i for i in pipe.items("ID#") if i["sk"] == f"DELIVERY#{system}"]
    return [set(m.get("inflight", ())) for m in marks]


def test_a_retry_written_after_another_copys_final_failure_leaves_the_job_failed_and_listed(
    pipe: Pipeline,
) -> None:
    # Given a pending Braze job, and two copies of its message: copy A reads the job; while
    # its vendor call runs, copy B's whole delivery ends for good (a 400); then A's call is
    # throttled (a 429, retryable)
    request_id, message = opt_out(pipe, "braze", {"email": EMAIL, "purposes": ["sale"]})
    copy_b = Answers(refused)
    # When A writes its answer after B's
    report = deliver(pipe, message, Answers(throttled, lambda: deliver(pipe, message, copy_b)))
    # Then B's failure stands: the job is failed, listed for the operator's replay, its marks
    # freed, and A's retry re-opened nothing (its message is acknowledged, not retried)
    failed = job(pipe, request_id, "braze")
    assert (failed["status"], failed["receipt"]["error"]) == ("failed", "400 bad request")
    assert listed(pipe, "braze") == {f"{request_id}:braze"}
    assert in_flight(pipe, "braze") == [set()]
    assert report.decisions["m-copy"].retry_in is None
    assert (report.counts["JobWritesLost"], report.counts["JobsRetried"]) == (1, 0)
    # And a later copy of the message (SQS, or a DLQ redrive) reaches no vendor: the request
    # reads failed, not completed by a "no such person" nobody was asked
    braze = load_systems("local/systems.json").get("braze")  # no placeholder in its options
    connector = PassThrough(braze, None, None)  # type: ignore[arg-type]
    deliver(pipe, message, connector, later=timedelta(minutes=10))
    assert connector.calls == [] and job(pipe, request_id, "braze")["status"] == "failed"
    path = f"/v1/admin/requests/{request_id}"  # the operator's record counts each system
    record = http_event("GET", path, path_parameters={"request_id": request_id}, iam=True)
    status = json_body(invoke(pipe.admin, record))
    assert status["status"] != "completed" and status["systems_failed"] == 1
    # (the public answer counts no progress while other systems are pending, review s20 C1)
    public = pipe.get(f"/v1/requests/{request_id}", request_id=request_id)
    assert public["status"] != "completed"


def test_a_pending_job_without_identifier_values_is_failed_for_the_replay_not_sent(
    pipe: Pipeline,
) -> None:
    # Given a pending salesforce job that holds no identifier values (an item a retry
    # re-opened before attempt writes were conditional, or a bug)
    request_id, message = opt_out(pipe, "salesforce", {"email": EMAIL, "purposes": ["sale"]})
    item = job(pipe, request_id, "salesforce")
    kept = [{k: v for k, v in i.items() if k != "value"} for i in item["identifiers"]]
    item["identifiers"] = kept
    pipe.aws.dynamodb.put_item(TableName=pipe.aws.table_name, Item=serialize(item))
    # When its message is delivered
    vendor = Vendor()
    report = deliver(pipe, message, vendor)
    # Then nothing reaches the vendor: the job fails, needing the operator's replay
    assert vendor.received == []
    failed = job(pipe, request_id, "salesforce")
    assert (failed["status"], failed["receipt"]["error"]) == (
        "failed",
        "no identifier values to send",
    )
    assert listed(pipe, "salesforce") == {f"{request_id}:salesforce"}
    assert report.counts["FailedJobsNeedReplay"] == 1
    # And a later copy of its message (an SQS duplicate, a DLQ redrive) counts it no more:
    # once per failure (review s18 B6: counted again here)
    again_later = deliver(pipe, message, Vendor(), later=timedelta(minutes=10))
    assert again_later.counts["FailedJobsNeedReplay"] == 0 and vendor.received == []
    # And the replay sends it with its values read back from the identities' nodes
    replay(pipe)
    assert pipe.resolve() == {"batchItemFailures": []}
    again = Vendor()
    assert len(work(pipe, "salesforce", again)) == 1 and emails_sent(again) == [EMAIL]
    assert job(pipe, request_id, "salesforce")["status"] == "done"


def test_a_duplicates_final_failure_does_not_overwrite_a_job_the_vendor_accepted(
    pipe: Pipeline,
) -> None:
    # Given a pending Segment job (a regulation the vendor works on asynchronously), and two
    # copies of its message: A's call is accepted (submitted, reference ref-1) and written
    # while B's call, made at the same time, is refused for good and written after
    body = {"customer_id": "cust-seg-1", "purposes": ["sale"], "agent": {"name": "Agent"}}
    request_id, message = opt_out(pipe, "segment", body)
    checks: list[JobMessage] = []
    copy_a = Answers(accepted)
    copy_b = Answers(refused, lambda: deliver(pipe, message, copy_a, checks))
    # When B writes its failure
    report = deliver(pipe, message, copy_b)
    # Then A's submitted job stands, with the vendor's reference, and is not listed as failed
    submitted = job(pipe, request_id, "segment")
    assert (submitted["status"], submitted["receipt"]["vendor_ref"]) == ("submitted", "ref-1")
    assert listed(pipe, "segment") == set() and report.counts["JobWritesLost"] == 1
    # And A's status check, when it comes, asks the vendor and records it done
    (check,) = checks
    deliver(pipe, json.loads(check.to_json()), copy_a)
    confirmed = job(pipe, request_id, "segment")
    assert (confirmed["status"], confirmed["receipt"]["vendor_ref"]) == ("done", "ref-1")


def test_a_duplicates_done_written_after_a_final_failure_changes_nothing_but_is_kept_beside_it(
    pipe: Pipeline,
) -> None:
    # Given a pending Braze job and two copies of its message: B's delivery ends for good (a
    # 400) while A's call, made at the same time, is answered done and written after
    request_id, message = opt_out(pipe, "braze", {"email": EMAIL, "purposes": ["sale"]})
    # When A writes its done
    report = deliver(pipe, message, Answers(done, lambda: deliver(pipe, message, Answers(refused))))
    # Then the job is as B left it, and all of it agrees: failed with B's receipt, listed for
    # the replay, its marks freed (the next event sends it again)
    failed = job(pipe, request_id, "braze")
    assert (failed["status"], failed["receipt"]["error"]) == ("failed", "400 bad request")
    assert listed(pipe, "braze") == {f"{request_id}:braze"}
    assert in_flight(pipe, "braze") == [set()]
    assert (report.counts["JobWritesLost"], report.counts["JobsDone"]) == (1, 0)
    # ... and A's answer is kept beside B's receipt, for the operator (review s30 races R1)
    (lost,) = failed["lost_answers"]
    assert (lost["status"], lost["http_status"]) == ("done", 200)
    assert lost["at"] >= failed["completed_at"]


def test_a_stale_copys_failure_does_not_end_a_job_an_operator_replayed(
    pipe: Pipeline,
) -> None:
    # Given a pending salesforce job and two copies of its message: A reads the job; while its
    # vendor call runs, B's delivery ends for good (a 400) and an operator replays salesforce
    # (the job is pending again, with its values, its message queued)
    request_id, message = opt_out(pipe, "salesforce", {"email": EMAIL, "purposes": ["sale"]})

    def failed_then_replayed() -> None:
        deliver(pipe, message, Answers(refused))
        replay(pipe)
        assert pipe.resolve() == {"batchItemFailures": []}

    # When A's call is refused too, and A writes its failure after the replay
    report = deliver(pipe, message, Answers(refused, failed_then_replayed))
    # Then the replayed job is untouched: pending, off the failed list, in flight again
    replayed = job(pipe, request_id, "salesforce")
    assert (replayed["status"], replayed["replays"]) == ("pending", 1)
    assert listed(pipe, "salesforce") == set()
    assert in_flight(pipe, "salesforce") == [{"sale"}]
    assert report.counts["JobWritesLost"] == 1
    # And the replay's message sends it
    vendor = Vendor()
    assert len(work(pipe, "salesforce", vendor)) == 1 and emails_sent(vendor) == [EMAIL]
    assert job(pipe, request_id, "salesforce")["status"] == "done"
