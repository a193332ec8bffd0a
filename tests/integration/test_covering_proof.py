"""A request that cites another request's job while it is in flight (`RESOLUTION.covered`) is
proven by that job only if it ends done for an identifier type the request relied on; one that
ends no_record, or done without that type, leaves the system processing, and the sweep's
redrive re-opens the request, which then gets a job of its own (review s12 interleave 1); after
the sweep's last checkpoint (23 h), the deadline watch re-opens it the same way (review s16 F2).

The order is the one AWS allows and the serial pipeline never produces: the second request is
captured and resolved after the vendor answered the first request's job but before the worker
wrote that answer (a stand-in vendor runs it inside its call)."""

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from optout.connectors.base import Job, Outcome
from optout.delivery.service import DeliveryService, Received
from optout.delivery.settings import WorkerSettings
from optout.ops.watch import Watch, WatchReport, WatchSettings
from optout.status import REPLAY_CAP
from optout.store import keys
from optout.store.codec import serialize
from optout.store.table import Table
from optout.sweep import Sweeper, SweepReport, SweepSettings
from tests.conftest import Aws
from tests.integration.test_operator_routes import call, ok
from tests.integration.test_resolver_delivery import SYSTEMS, Vendor, deliver, work
from tests.integration.test_watch import MinutesLeft
from tests.support.lambdas import FakeLambdaContext, load_function
from tests.support.pipeline import Pipeline, build_pipeline

EMAIL = "covering@example.com"
CUSTOMER = "cust-covering-1"
BY_AGENT = {"agent": {"name": "Agent"}}
FIRST_CHECK = timedelta(minutes=16)  # the sweep's first checkpoint (15 min) has passed
# The sweep reads each checkpoint's window in one slice (by default six of 2 minutes, each a
# Query per shard): the same events, in 16 Queries a window, not 96; how a window is sliced
# (a run cut short in one) is tests/integration/test_sweeper.py's.
SWEEP = SweepSettings(slice=SweepSettings().window)
# The requests arrive now and the watch runs at most 3 days on: its first run reads back 4
# days, not the default 31 (16 Queries a day).
WATCH = WatchSettings(backfill_days=4)


@pytest.fixture
def pipe(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> Iterator[Pipeline]:
    yield build_pipeline(aws, monkeypatch)


@pytest.fixture
def asking(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> Iterator[Pipeline]:
    """No quiet period after a no_record answer (NoRecordQuietHours=0): the re-open asks the
    vendor again at once (with the default, the answer quiets the person for a day)."""
    yield build_pipeline(aws, monkeypatch, NO_RECORD_QUIET_HOURS="0")


class DuringCall(Vendor):
    """Answers as `Vendor`; then, before the worker writes that answer, runs `meanwhile`."""

    def __init__(self, meanwhile: Callable[[], None], **kw: Any) -> None:
        super().__init__(**kw)
        self.meanwhile = meanwhile

    def deliver(self, jobs: list[Job]) -> list[Outcome]:
        answer = super().deliver(jobs)
        self.meanwhile()
        return answer


def first_braze_job_answered(
    pipe: Pipeline, first: dict[str, Any], second: dict[str, Any], vendor: dict[str, Any]
) -> str:
    """`first` is captured and resolved; its Braze job's vendor answers as `vendor` says,
    and `second` is captured and resolved before the worker writes that answer; then every
    other job is done. Returns the second request's id."""
    pipe.post("/v1/opt-out", first)
    pipe.resolve()
    (message,) = pipe.drain("braze")
    others = pipe.drain_all()
    later: list[str] = []

    def second_request() -> None:
        later.append(pipe.post("/v1/opt-out", second)["request_id"])
        pipe.resolve()

    deliver(pipe, [message], DuringCall(second_request, **vendor))
    for bodies in others.values():
        if bodies:
            deliver(pipe, bodies, Vendor())
    (request_id,) = later
    return request_id


def status(pipe: Pipeline, request_id: str) -> str:
    """The public status once any earlier answer it relies on is replayed (tests/unit/
    test_status.py times that): what the proofs decide, whatever the vendors' timings."""
    after_replays = datetime.now(UTC) + REPLAY_CAP
    path = f"/v1/requests/{request_id}"
    return str(pipe.get_at(after_replays, path, request_id=request_id)["status"])


def sweep_and_resolve(pipe: Pipeline) -> SweepReport:
    return sweep_at(pipe, FIRST_CHECK)


def sweep_at(pipe: Pipeline, offset: timedelta) -> SweepReport:
    """A sweep run `offset` from now, and the resolver carrying out the redrive it wrote."""
    table = Table(pipe.aws.dynamodb, pipe.aws.table_name)
    later = datetime.now(UTC) + offset
    report = Sweeper(table, SWEEP, clock=lambda: later).sweep()
    if report.redrive_events:
        pipe.resolve()  # the redrive event
    return report


def watch_at(pipe: Pipeline, offset: timedelta) -> WatchReport:
    """A deadline watch run `offset` from now, and the resolver carrying out what it wrote."""
    table = Table(pipe.aws.dynamodb, pipe.aws.table_name)
    later = datetime.now(UTC) + offset
    report = Watch(table, WATCH, clock=lambda: later).run()
    if report.redrive_events:
        pipe.resolve()
    return report


def citing_jobs_in_flight(pipe: Pipeline, held: tuple[str, ...]) -> tuple[list[Any], str]:
    """An agent's opt-out naming a customer id and an email, whose jobs at the `held` systems
    stay in flight (a day-long Retry-After, a Segment regulation still running) while every
    other job is done; then a second opt-out naming the customer id alone, which cites them.
    Returns the held messages and the second request's id."""
    first = {"customer_id": CUSTOMER, "email": EMAIL, "purposes": ["sale"], **BY_AGENT}
    second = {"customer_id": CUSTOMER, "purposes": ["sale"], **BY_AGENT}
    pipe.post("/v1/opt-out", first)
    pipe.resolve()
    messages = [message for system in held for message in pipe.drain(system)]
    for bodies in pipe.drain_all().values():
        if bodies:
            deliver(pipe, bodies, Vendor())
    request_id = str(pipe.post("/v1/opt-out", second)["request_id"])
    pipe.resolve()
    assert pipe.drain_all() == {key: [] for key in pipe.queue_urls}  # it made no job
    return messages, request_id


def test_a_cited_job_ending_as_no_proof_after_the_sweeps_last_check_is_reopened_by_the_watch(
    pipe: Pipeline,
) -> None:
    # Given a request citing another request's Braze job, which is still in flight when the
    # deadline watch enrols it, and after the sweep's last checkpoint (23 h)
    (braze,), request_id = citing_jobs_in_flight(pipe, ("braze",))
    assert watch_at(pipe, timedelta(minutes=5)).reopened == []
    # When the job ends a day and a half later, done for the email only (no Braze profile
    # holds the customer id), the sweep no longer looks at the request
    deliver(pipe, [braze], Vendor(sent=("email",)))
    assert status(pipe, request_id) == "processing"
    assert sweep_at(pipe, timedelta(hours=36)).reopened == []
    # Then the watch's next check of it re-opens it, and the resolver gives it a Braze job of
    # its own, which sends the customer id
    report = watch_at(pipe, timedelta(days=2))
    assert report.reopened == [request_id]
    vendor = Vendor(sent=("customer_id",))
    (message,) = work(pipe, "braze", vendor)
    assert message["job_id"] == f"{request_id}:braze"
    assert [(i.type, i.value) for job in vendor.received for i in job.identifiers] == [
        ("customer_id", CUSTOMER)
    ]
    # and the request completes on that job's receipt, and is not re-opened again
    assert status(pipe, request_id) == "completed"
    assert watch_at(pipe, timedelta(days=3)).reopened == []
    assert pipe.drain("braze") == []


def test_a_request_whose_late_cited_job_proved_what_it_relied_on_is_not_reopened(
    pipe: Pipeline,
) -> None:
    # Given a request citing another request's Braze and Segment jobs, both still in flight
    (braze, segment), request_id = citing_jobs_in_flight(pipe, ("braze", "segment"))
    assert watch_at(pipe, timedelta(minutes=5)).reopened == []
    # When, after the sweep's last checkpoint, Braze's ends done for the customer id while
    # Segment's still runs (the request is still processing)
    deliver(pipe, [braze], Vendor(sent=("customer_id", "email")))
    # Then the watch re-opens nothing, and no job is made (the cited Segment job, untouched
    # for two days here with its message held, is named to send again: test_pending_resend.py)
    report = watch_at(pipe, timedelta(days=2))
    assert report.reopened == [] and request_id not in {j.split(":")[0] for j in report.resent}
    assert status(pipe, request_id) == "processing"
    # (the re-send, carried out by the resolver: the held job's own message again)
    assert {k: [m["job_id"] for m in ms] for k, ms in pipe.drain_all().items() if ms} == {
        "segment": [segment["job_id"]]
    }
    # and once Segment's ends done, the cited jobs complete the request
    deliver(pipe, [segment], Vendor())
    assert status(pipe, request_id) == "completed"
    assert watch_at(pipe, timedelta(days=3)).reopened == []


def test_the_watch_function_may_write_the_reopen(
    pipe: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a request whose cited Braze job ended done for the email only, old enough for the
    # watch to re-open (the age it waits for made nil, the index's lag too: a run at once)
    (braze,), request_id = citing_jobs_in_flight(pipe, ("braze",))
    deliver(pipe, [braze], Vendor(sent=("email",)))
    monkeypatch.setattr("optout.ops.watch.REOPEN_AFTER", timedelta(0))
    monkeypatch.setenv("WATCH_LAG_SECONDS", "0")
    # When EventBridge invokes the watch function (its calls are checked against its role)
    load_function("watch").handler({"detail-type": "Scheduled Event"}, MinutesLeft())
    # Then its redrive event re-opens the request: a Braze job of its own
    pipe.resolve()
    (message,) = pipe.drain("braze")
    assert message["job_id"] == f"{request_id}:braze"


def test_the_watch_leaves_a_request_younger_than_the_sweeps_last_check_to_the_sweep(
    pipe: Pipeline,
) -> None:
    # Given a request whose cited Braze job ended an hour after it arrived, done for the email
    # only
    (braze,), request_id = citing_jobs_in_flight(pipe, ("braze",))
    deliver(pipe, [braze], Vendor(sent=("email",)))
    # When the watch checks it before the sweep's last checkpoint, it writes nothing (the two
    # never re-open one request at once)
    assert watch_at(pipe, timedelta(hours=2)).reopened == []
    assert pipe.drain("braze") == []
    # Then the sweep's next checkpoint re-opens it, as before
    assert sweep_at(pipe, timedelta(hours=2, minutes=16)).reopened == [request_id]
    (message,) = pipe.drain("braze")
    assert message["job_id"] == f"{request_id}:braze"


def test_a_cited_job_done_without_the_type_relied_on_reopens_the_request(pipe: Pipeline) -> None:
    # Given an agent's opt-out naming a customer id and an email, whose Braze job is answered
    # done for the email only (Braze holds no profile for the customer id), while a second
    # opt-out naming the customer id alone is resolved and cites that job
    first = {"customer_id": CUSTOMER, "email": EMAIL, "purposes": ["sale"], **BY_AGENT}
    second = {"customer_id": CUSTOMER, "purposes": ["sale"], **BY_AGENT}
    request_id = first_braze_job_answered(pipe, first, second, {"sent": ("email",)})
    assert pipe.drain("braze") == []  # it made no Braze job of its own
    # Then once that job has ended, the second request is not completed: Braze never got its
    # customer id
    assert status(pipe, request_id) == "processing"
    # When the sweep's first check runs, and the resolver carries out its redrive
    report = sweep_and_resolve(pipe)
    # Then the request was re-opened and has its own Braze job, which sends the customer id
    assert report.reopened == [request_id]
    braze = Vendor(sent=("customer_id",))
    (message,) = work(pipe, "braze", braze)
    assert message["job_id"] == f"{request_id}:braze"
    assert [(i.type, i.value) for job in braze.received for i in job.identifiers] == [
        ("customer_id", CUSTOMER)
    ]
    # and it completes on its own receipt
    assert status(pipe, request_id) == "completed"
    assert sweep_and_resolve(pipe).reopened == []


def test_a_cited_job_answered_no_record_before_the_request_reopens_it(
    asking: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    pipe = asking
    # Given an opt-out whose Braze job is answered no_record, and a second opt-out by the same
    # email resolved after that answer but before the worker wrote it (so it cites the job)
    body = {"email": EMAIL, "purposes": ["sale"]}
    request_id = first_braze_job_answered(pipe, body, body, {"status": "no_record"})
    assert pipe.drain("braze") == []
    # Then the no_record answer, a receipt for the first request only, does not complete it,
    # and the operator's record shows the cited job as no proof
    assert status(pipe, request_id) == "processing"
    detail = ok(call(pipe, "GET", f"/v1/admin/requests/{request_id}",
                     params={"request_id": request_id}))  # fmt: skip
    (braze,) = [s for s in detail["systems"] if s["system"] == "braze"]
    assert (braze["proof"], braze["satisfied"]) == ("earlier", "processing")
    assert [(c["status"], c.get("no_proof")) for c in braze["satisfied_by"]] == [
        ("no_record", True)
    ]
    # When the scheduled sweep runs (its first check at once here), and the resolver carries
    # out its redrive
    monkeypatch.setenv("SWEEP_CHECKPOINTS_SECONDS", "0.001")
    answer = load_function("sweeper").handler({"source": "aws.events"}, FakeLambdaContext())
    assert answer["reopened_requests"] == 1
    pipe.resolve()
    # Then Braze is asked again for this request, with its email, and it completes
    braze = Vendor(sent=("email",))
    (message,) = work(pipe, "braze", braze)
    assert message["job_id"] == f"{request_id}:braze"
    assert [i.value for job in braze.received for i in job.identifiers] == [EMAIL]
    assert status(pipe, request_id) == "completed"


def test_a_reopened_request_cites_the_job_a_later_request_made_meanwhile(
    asking: Pipeline,
) -> None:
    pipe = asking
    # Given the no_record race, and then a third opt-out by the same email, resolved after the
    # no_record freed the mark: it makes its own Braze job, still in flight at the sweep
    body = {"email": EMAIL, "purposes": ["sale"]}
    request_id = first_braze_job_answered(pipe, body, body, {"status": "no_record"})
    third = pipe.post("/v1/opt-out", body)["request_id"]
    pipe.resolve()
    (waiting,) = pipe.drain("braze")
    assert waiting["job_id"] == f"{third}:braze"
    pipe.drain_all()  # the third request's other systems: not this test's concern
    # When the sweep's first check runs, and the resolver carries out its redrive
    assert sweep_and_resolve(pipe).reopened == [request_id]
    # Then no second Braze job is made: the request cites the third's job, and follows it
    assert pipe.drain("braze") == []
    resolution = next(i for i in pipe.items(f"REQ#{request_id}") if i["sk"] == "RESOLUTION")
    assert resolution["covered"]["braze"][-1] == f"{third}:braze"
    assert status(pipe, request_id) == "processing"
    deliver(pipe, [waiting], Vendor(sent=("email",)))
    assert status(pipe, request_id) == "completed"


def test_a_reopened_request_inside_the_quiet_period_is_not_asked_and_completes(
    pipe: Pipeline,
) -> None:
    # Given the no_record race with the default quiet period: the request cited the job that
    # then answered no_record
    body = {"email": EMAIL, "purposes": ["sale"]}
    request_id = first_braze_job_answered(pipe, body, body, {"status": "no_record"})
    assert status(pipe, request_id) == "processing"
    # When the sweep re-opens it and the resolver carries out the redrive
    assert sweep_and_resolve(pipe).reopened == [request_id]
    # Then Braze is not asked again within the day (as for a request that arrived after the
    # answer), the RESOLUTION names the answer it relied on, and Braze is not counted
    assert pipe.drain("braze") == []
    resolution = next(i for i in pipe.items(f"REQ#{request_id}") if i["sk"] == "RESOLUTION")
    (heard,) = resolution["not_asked"]["braze"]
    assert heard["job_id"].endswith(":braze") and not heard["job_id"].startswith(request_id)
    pipe.drain_all()
    assert sweep_and_resolve(pipe).reopened == []  # not re-opened at the next checkpoint


def test_a_mark_left_in_flight_by_a_no_record_job_is_freed_by_the_reopen(asking: Pipeline) -> None:
    # Given a Braze job that answered no_record whose marks were never freed (a worker that
    # died before its free, or a mark stored before no_record freed marks), and a later opt-out
    # by the same email, which cites it
    pipe = asking
    body = {"email": EMAIL, "purposes": ["sale"]}
    first = pipe.post("/v1/opt-out", body)["request_id"]
    pipe.resolve()
    (message,) = pipe.drain("braze")
    pipe.drain_all()
    job = next(i for i in pipe.items(f"REQ#{first}") if i["sk"] == "JOB#braze")
    answered = {**job, "status": "no_record", "completed_at": "2026-11-01T00:00:00.000Z",
                "receipt": {"http_status": 200, "identifier_types_sent": []}}  # fmt: skip
    pipe.aws.dynamodb.put_item(TableName=pipe.aws.table_name, Item=serialize(answered))
    later = pipe.post("/v1/opt-out", body)["request_id"]
    pipe.resolve()
    assert pipe.drain("braze") == []  # cited: the mark still names the first job in flight
    pipe.drain_all()
    assert status(pipe, later) == "processing"
    # When the sweep re-opens the later request
    assert sweep_and_resolve(pipe).reopened == [later]
    # Then the stale mark is freed and Braze gets the later request's own job
    (own,) = pipe.drain("braze")
    assert own["job_id"] == f"{later}:braze" and message["job_id"] == f"{first}:braze"


def test_a_cited_job_done_for_the_type_relied_on_completes_the_request(
    pipe: Pipeline,
) -> None:
    # Given the same race, where Braze's receipt lists the customer id as sent
    first = {"customer_id": CUSTOMER, "email": EMAIL, "purposes": ["sale"], **BY_AGENT}
    second = {"customer_id": CUSTOMER, "purposes": ["sale"], **BY_AGENT}
    sent = {"sent": ("email", "customer_id")}
    request_id = first_braze_job_answered(pipe, first, second, sent)
    # Then the cited receipt proves it: completed, and the sweep re-opens nothing
    assert status(pipe, request_id) == "completed"
    assert sweep_and_resolve(pipe).reopened == []
    assert pipe.drain("braze") == []


def test_a_cited_job_that_failed_reads_failed_and_is_left_to_the_replay(pipe: Pipeline) -> None:
    # Given the same race, where Braze refuses the first request's job for good
    body = {"email": EMAIL, "purposes": ["sale"]}
    request_id = first_braze_job_answered(pipe, body, body, {"refuse": True})
    # Then the second request reads failed (an operator's replay of that job re-sends it),
    # and the sweep does not re-open it
    assert status(pipe, request_id) == "failed"
    assert sweep_and_resolve(pipe).reopened == []
    assert pipe.drain("braze") == []


def test_one_identitys_quiet_period_does_not_excuse_another_identitys_unproved_citation(
    pipe: Pipeline,
) -> None:
    # Given a Braze "no such person" for one email (its quiet period), and then a request
    # naming a customer id and that email, which cites another request's in-flight Braze job
    # for the customer id; that job ends done for its email only (no profile for the id)
    quiet = "quiet@example.com"
    pipe.post("/v1/opt-out", {"email": quiet, "purposes": ["sale"], **BY_AGENT})
    pipe.resolve()
    work(pipe, "braze", Vendor(status="no_record"))
    for bodies in pipe.drain_all().values():
        if bodies:
            deliver(pipe, bodies, Vendor())
    first = {"customer_id": CUSTOMER, "email": EMAIL, "purposes": ["sale"], **BY_AGENT}
    second = {"customer_id": CUSTOMER, "email": quiet, "purposes": ["sale"], **BY_AGENT}
    request_id = first_braze_job_answered(pipe, first, second, {"sent": ("email",)})
    assert pipe.drain("braze") == []
    # Then the quiet email does not excuse the customer id: Braze reads processing, and the
    # sweep's re-open gives the request its own Braze job for the customer id alone
    assert status(pipe, request_id) == "processing"
    assert sweep_and_resolve(pipe).reopened == [request_id]
    (own,) = pipe.drain("braze")
    assert own["job_id"] == f"{request_id}:braze"
    braze = Vendor(sent=("customer_id",))
    deliver(pipe, [own], braze)
    assert [i.type for job in braze.received for i in job.identifiers] == ["customer_id"]
    assert status(pipe, request_id) == "completed"


def test_a_reopen_with_nothing_left_to_plan_is_recorded_and_not_repeated(asking: Pipeline) -> None:
    # Given a browser's GPC opt-out that cites the same browser's in-flight webhook job, which
    # then answers no_record, and the person then confirms opting back in
    pipe = asking
    device = "dev-covering-optin-0001"
    body = {"device_id": device, "opt_out": {"sale": True}, "gpc": True}
    pipe.post("/v1/consent", body)
    pipe.resolve()
    (message,) = pipe.drain("webhook")
    later: list[str] = []

    def second() -> None:
        later.append(pipe.post("/v1/consent", body)["request_id"])
        pipe.resolve()

    deliver(pipe, [message], DuringCall(second, status="no_record"))
    (request_id,) = later
    assert status(pipe, request_id) == "processing"
    back = {"sale": False, "share": False, "targeted_advertising": False}
    opt_in = {"device_id": device, "gpc": False, "confirm_opt_in": True, "opt_out": back}
    pipe.post("/v1/consent", opt_in)
    pipe.resolve()
    pipe.drain_all()
    # When the sweep re-opens the request
    assert sweep_and_resolve(pipe).reopened == [request_id]
    # Then nothing is sent (the person opted back in), the RESOLUTION says the system had
    # nothing left to plan, the request completes, and the next checkpoint does not re-open it
    assert pipe.drain("webhook") == []
    resolution = next(i for i in pipe.items(f"REQ#{request_id}") if i["sk"] == "RESOLUTION")
    assert set(resolution["not_planned"]) == {"webhook"}
    assert status(pipe, request_id) == "completed"
    detail = ok(call(pipe, "GET", f"/v1/admin/requests/{request_id}",
                     params={"request_id": request_id}))  # fmt: skip
    (webhook,) = [s for s in detail["systems"] if s["system"] == "webhook"]
    assert webhook["satisfied"] == "not_planned"
    assert webhook["not_planned_reason"] == "not_opted_out"
    assert sweep_and_resolve(pipe).reopened == []


def test_a_reopen_at_a_system_removed_from_the_config_says_so(
    asking: Pipeline, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Given a GPC opt-out citing the same browser's in-flight webhook job, which then answers
    # no_record, and webhook then removed from the config (review s13 config 5)
    pipe = asking
    body = {"device_id": "dev-covering-removed-01", "opt_out": {"sale": True}, "gpc": True}
    pipe.post("/v1/consent", body)
    pipe.resolve()
    (message,) = pipe.drain("webhook")
    later: list[str] = []

    def second() -> None:
        later.append(pipe.post("/v1/consent", body)["request_id"])
        pipe.resolve()

    deliver(pipe, [message], DuringCall(second, status="no_record"))
    (request_id,) = later
    config = json.loads(Path("local/systems.json").read_text())
    config["systems"] = [s for s in config["systems"] if s["name"] != "webhook"]
    (tmp_path / "systems.json").write_text(json.dumps(config))
    monkeypatch.setenv("SYSTEMS_CONFIG", str(tmp_path / "systems.json"))
    pipe.resolver.resolver.cache_clear()
    # When the sweep re-opens the request
    assert sweep_and_resolve(pipe).reopened == [request_id]
    # Then nothing is planned, and the record says the system was removed, not that the
    # person opted back in
    resolution = next(i for i in pipe.items(f"REQ#{request_id}") if i["sk"] == "RESOLUTION")
    assert set(resolution["not_planned"]) == set(resolution["not_configured"]) == {"webhook"}
    detail = ok(call(pipe, "GET", f"/v1/admin/requests/{request_id}",
                     params={"request_id": request_id}))  # fmt: skip
    (webhook,) = [s for s in detail["systems"] if s["system"] == "webhook"]
    assert (webhook["satisfied"], webhook["not_planned_reason"]) == (
        "not_planned",
        "system_removed",
    )


def test_a_request_resolved_before_the_cited_proof_rule_keeps_its_answer(pipe: Pipeline) -> None:
    # Given a request that cited a job which then answered no_record, resolved by a version
    # before the rule (its RESOLUTION has no proof_rule): it was answered completed then
    body = {"email": EMAIL, "purposes": ["sale"]}
    request_id = first_braze_job_answered(pipe, body, body, {"status": "no_record"})
    pipe.drain_all()
    key = {"pk": {"S": f"REQ#{request_id}"}, "sk": {"S": "RESOLUTION"}}
    pipe.aws.dynamodb.update_item(TableName=pipe.aws.table_name, Key=key,
                                  UpdateExpression="REMOVE proof_rule")  # fmt: skip
    # Then it keeps that answer (settled then: neither the sweep nor the watch looks at it
    # again), and the same request under the rule reads processing
    assert status(pipe, request_id) == "completed"
    assert sweep_and_resolve(pipe).reopened == []
    pipe.aws.dynamodb.update_item(TableName=pipe.aws.table_name, Key=key,
                                  UpdateExpression="SET proof_rule = :two",
                                  ExpressionAttributeValues={":two": {"N": "2"}})  # fmt: skip
    assert status(pipe, request_id) == "processing"


class FreeThrottled:
    """A DynamoDB client whose first write freeing a mark is throttled (past botocore's
    retries): the worker's after-steps fail, and its message comes back."""

    def __init__(self, client: Any) -> None:
        self._client, self.throttled = client, False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def update_item(self, **kwargs: Any) -> Any:
        if not self.throttled and "DELETE inflight" in kwargs.get("UpdateExpression", ""):
            self.throttled = True
            error = {"Code": "ProvisionedThroughputExceededException", "Message": "injected"}
            raise ClientError({"Error": error}, "UpdateItem")
        return self._client.update_item(**kwargs)


def worker_counts(pipe: Pipeline, client: Any, message: dict[str, Any], vendor: Vendor) -> Any:
    """One worker invocation over `message` through `client`: its counts."""
    service = DeliveryService(
        Table(client, pipe.aws.table_name), SYSTEMS,
        WorkerSettings(table_name=pipe.aws.table_name), lambda _system: vendor,  # type: ignore[arg-type,return-value]
    )  # fmt: skip
    report = service.deliver([Received("m0", json.dumps(message), 1)], lambda _m, _d: None)
    return report.counts


def test_a_cited_failure_reopened_before_its_worker_listed_it_is_counted_by_that_worker(
    pipe: Pipeline,
) -> None:
    # Given a request citing a Braze job made before Braze was retired (and configured again:
    # the job is no proof for a request resolved after that), which Braze refuses for good,
    # and whose worker's after-steps are throttled (its message comes back, not listed yet)
    (braze,), request_id = citing_jobs_in_flight(pipe, ("braze",))
    job = next(i for i in pipe.partition(f"REQ#{braze['request_id']}") if i["sk"] == "JOB#braze")
    retired_at = str(job["created_at"])  # the job made at or before it
    resolved = next(i for i in pipe.partition(f"REQ#{request_id}") if i["sk"] == "RESOLUTION")
    assert retired_at < resolved["resolved_at"]
    retirement = {"pk": keys.RETIRED_PK, "sk": "braze", "kind": "retirement", "system": "braze",
                  "retired_at": retired_at, "retired_by": "test", "reason": "contract ended",
                  "event_id": "retire-1"}  # fmt: skip
    pipe.aws.dynamodb.put_item(TableName=pipe.aws.table_name, Item=serialize(retirement))
    client = FreeThrottled(pipe.aws.dynamodb)
    counts = worker_counts(pipe, client, braze, Vendor(refuse=True))
    assert client.throttled and counts["JobWritesFailed"] == 1 and counts["JobsFailed"] == 0
    # When the deadline watch re-opens the citing request first (its cited job is no proof)
    assert watch_at(pipe, timedelta(days=2)).reopened == [request_id]
    # Then the worker's run of the message that comes back lists the failure and counts it
    # (review s22 diff C5: the re-open listed it first, and JobsFailed, which JobsFailedAlarm
    # reads, was never counted)
    counts = worker_counts(pipe, pipe.aws.dynamodb, braze, Vendor(refuse=True))
    assert counts["JobsFailed"] == 1
    assert [i["job_id"] for i in pipe.partition(keys.failed_pk("braze"))] == [braze["job_id"]]


def test_a_request_whose_only_cited_job_is_stale_is_reopened_by_the_sweep(pipe: Pipeline) -> None:
    # Given a request citing a Braze job still in flight, made before Braze was retired (and
    # configured again), so no proof for a request resolved after that retirement
    (braze,), request_id = citing_jobs_in_flight(pipe, ("braze",))
    job = next(i for i in pipe.partition(f"REQ#{braze['request_id']}") if i["sk"] == "JOB#braze")
    retirement = {"pk": keys.RETIRED_PK, "sk": "braze", "kind": "retirement", "system": "braze",
                  "retired_at": str(job["created_at"]), "retired_by": "test",
                  "reason": "contract ended", "event_id": "retire-1"}  # fmt: skip
    pipe.aws.dynamodb.put_item(TableName=pipe.aws.table_name, Item=serialize(retirement))
    # When the sweep's first check runs
    report = sweep_at(pipe, FIRST_CHECK)
    # Then it re-opens the request, as the watch would: its read of the request carries the
    # resolution's time, which tells a stale citation (review s23 race: it left that out, so
    # only the watch, a day later, re-opened it)
    assert report.reopened == [request_id]


def cites_an_email_only_proof(pipe: Pipeline) -> str:
    """An agent's opt-out naming a customer id alone, resolved while the Braze job of an
    earlier one naming it with an email is answered done for the email only: it cites that
    job, which proves nothing for the customer id. Its request id."""
    first = {"customer_id": CUSTOMER, "email": EMAIL, "purposes": ["sale"], **BY_AGENT}
    second = {"customer_id": CUSTOMER, "purposes": ["sale"], **BY_AGENT}
    pipe.post("/v1/opt-out", first)
    pipe.resolve()
    (message,) = pipe.drain("braze")
    pipe.drain_all()
    later: list[str] = []

    def second_request() -> None:
        later.append(pipe.post("/v1/opt-out", second)["request_id"])
        pipe.resolve()

    deliver(pipe, [message], DuringCall(second_request, sent=("email",)))
    (request_id,) = later
    return request_id


@pytest.mark.parametrize("denied", ["before the sweep", "before its redrive"])
def test_a_request_denied_after_its_resolution_is_not_reopened_with_a_job_of_its_own(
    pipe: Pipeline, denied: str
) -> None:
    # race24 (carried from review s22's deny reviews): an agent's opt-out naming a customer id
    # alone cites the Braze job of an earlier one naming it with an email, which Braze answers
    # done for the email only (no proof for the customer id); the other systems' jobs are
    # still in flight, so nothing is confirmed, and an operator denies it
    request_id = cites_an_email_only_proof(pipe)
    assert pipe.drain_all() == {key: [] for key in pipe.queue_urls}  # it made no job
    path = f"/v1/admin/requests/{request_id}/deny"
    body = {"reason_code": "suspected_fraud", "reason": "a burst of 400 requests from one IP"}
    table = Table(pipe.aws.dynamodb, pipe.aws.table_name)
    sweep = Sweeper(table, SWEEP, clock=lambda: datetime.now(UTC) + FIRST_CHECK)
    # When it is denied, and the sweep's first check runs and the resolver carries out its
    # redrive (or the sweep names it first, and the denial lands before the redrive runs)
    if denied == "before the sweep":
        ok(call(pipe, "POST", path, body, params={"request_id": request_id}))
        report = sweep.sweep()
        assert (report.reopened, report.redrive_events) == ([], [])  # not named, not counted
    else:
        assert sweep.sweep().reopened == [request_id]
        ok(call(pipe, "POST", path, body, params={"request_id": request_id}))
        pipe.resolve()  # the redrive
    # Then no job of its own is made or sent: Braze never gets the customer id for it (before:
    # the re-open made its Braze job and queued it after the denial)
    assert "JOB#braze" not in {i["sk"] for i in pipe.partition(f"REQ#{request_id}")}
    assert pipe.drain_all() == {key: [] for key in pipe.queue_urls}
    assert pipe.get(f"/v1/requests/{request_id}")["status"] == "denied"
