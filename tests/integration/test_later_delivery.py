"""A failed job whose opt-out later jobs delivered (ops/later.py): R1 {email, sale} is sent,
the vendor refuses its Braze job J1 for good; R2 (same) is resolved while J1 is in flight and
cites it; R3 (same) later gets its own Braze job J3, which ends done. Once the deadline watch
has checked R1 and R2, every view reads them done at J3's answer, and keeps reading that.
On the old code both read `failed` in every view until an operator's replay."""

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from local.moto_guard import guarded
from optout.delivery.service import DeliveryService, Received
from optout.delivery.settings import WorkerSettings
from optout.ops.backfills import year_figures
from optout.ops.contribution import contribution_of
from optout.ops.export import request_records
from optout.ops.watch import Watch, WatchReport
from optout.resolver.clusters import Caps
from optout.resolver.service import Resolver
from optout.store import keys
from optout.store.proof import load_with_proof
from optout.store.table import Table
from optout.timestamps import iso
from tests.conftest import Aws
from tests.integration.test_backfill import EMAIL as BACKFILLED
from tests.integration.test_backfill import FULL, opted_out_before, run_chain
from tests.integration.test_backfill import backfill as backfill_system
from tests.integration.test_backfill import work as backfill_work
from tests.integration.test_cli import Cli
from tests.integration.test_covering_proof import (
    WATCH,
    first_braze_job_answered,
    status,
    watch_at,
)
from tests.integration.test_operator_routes import call, deny, ok
from tests.integration.test_request_split_purposes import PHONE as SPLIT_PHONE
from tests.integration.test_request_split_purposes import (
    phone_out_of_profiling_then_a_form_naming_both,
    webhook_jobs,
)
from tests.integration.test_resolver_delivery import SYSTEMS, Vendor, deliver, work
from tests.integration.test_retire import redeploy, retire, without
from tests.integration.test_watch import MinutesLeft
from tests.support.cli import AdminTransport
from tests.support.interleave import BatonClient, Scheduler
from tests.support.lambdas import load_function
from tests.support.pipeline import Pipeline, build_pipeline

EMAIL = "later@example.com"
PHONE = "+14155550123"
BODY = {"email": EMAIL, "purposes": ["sale"]}
DAY = timedelta(days=1, minutes=5)  # every reminder of a failed request is due by then


@pytest.fixture
def pipe(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> Iterator[Pipeline]:
    yield build_pipeline(aws, monkeypatch)


def table(pipe: Pipeline) -> Table:
    return Table(pipe.aws.dynamodb, pipe.aws.table_name)


def refused_then_cited(pipe: Pipeline, body: dict[str, Any]) -> tuple[str, str]:
    """R1 captured and resolved, its Braze job refused for good while R2 (same body) is
    resolved and cites it; every other job done. Returns (R1, R2)."""
    second = first_braze_job_answered(pipe, body, body, {"refuse": True})
    (first,) = [i["request_id"] for i in pipe.items("REQ#")
                if i["sk"] == keys.EVENT_SK and i["request_id"] != second]  # fmt: skip
    return first, second


def later_request(
    pipe: Pipeline, body: dict[str, Any], vendor: Vendor, system: str = "braze"
) -> str:
    """R3: its own `system` job, answered as `vendor` says; every other job done."""
    request_id = pipe.post("/v1/opt-out", body)["request_id"]
    pipe.resolve()
    (message,) = work(pipe, system, vendor)
    assert message["job_id"] == f"{request_id}:{system}"
    for bodies in pipe.drain_all().values():
        if bodies:
            deliver(pipe, bodies, Vendor())
    return request_id


def job(pipe: Pipeline, request_id: str, system: str = "braze") -> dict[str, Any]:
    (found,) = [i for i in pipe.items(keys.request_pk(request_id))
                if i["sk"] == keys.job_sk(system)]  # fmt: skip
    return found


def record(pipe: Pipeline, request_id: str) -> dict[str, Any]:
    path = f"/v1/admin/requests/{request_id}"
    found: dict[str, Any] = ok(call(pipe, "GET", path, params={"request_id": request_id}))
    return found


def exported(pipe: Pipeline, request_id: str) -> list[dict[str, Any]]:
    items, covering = load_with_proof(table(pipe), request_id, consistent=True, quiet=True)
    return request_records(request_id, items, covering)


def figures(pipe: Pipeline, request_id: str) -> Any:
    items, covering = load_with_proof(table(pipe), request_id, consistent=True, quiet=True)
    return contribution_of(items, covering)


def test_a_failed_request_reads_done_once_the_watch_finds_a_later_job_delivered_it(
    pipe: Pipeline,
) -> None:
    # Given R1 refused at Braze for good, R2 citing its job, and R3's own Braze job done
    first, second = refused_then_cited(pipe, BODY)
    assert (status(pipe, first), status(pipe, second)) == ("failed", "failed")
    third = later_request(pipe, BODY, Vendor())
    delivered_at = job(pipe, third)["completed_at"]
    assert status(pipe, third) == "completed"
    # When the deadline watch checks them
    watch_at(pipe, DAY)
    # Then both read completed in the public answer: R1 when J3 answered; R2 no sooner (the
    # public view replays the wait of the job it cited, status.replayed_until)
    for request_id in (first, second):
        answer = pipe.get_at(datetime.now(UTC) + timedelta(days=2), f"/v1/requests/{request_id}",
                             request_id=request_id)  # fmt: skip
        assert answer["status"] == "completed"
        assert answer["completed_at"] >= delivered_at
        if request_id == first:
            assert answer["completed_at"] == delivered_at
        assert (answer["systems_done"], answer["systems_failed"]) == (
            answer["systems_total"], 0)  # fmt: skip
        # in the operator record (what `optout status` prints), with what delivered it
        detail = record(pipe, request_id)
        assert (detail["status"], detail["completed_at"]) == ("completed", delivered_at)
        (braze,) = [s for s in detail["systems"] if s["system"] == "braze"]
        assert braze["satisfied"] == "done"
        (later,) = braze["delivered_later"]
        assert later["job_id"] == f"{first}:braze"
        assert later["completed_at"] == delivered_at
        assert [(d["job_id"], d["purposes"]) for d in later["delivered_by"]] == [
            (f"{third}:braze", ["sale"])]  # fmt: skip
        # in the export
        records = exported(pipe, request_id)
        (request,) = [r for r in records if r["record"] == "request"]
        assert (request["status"], request["answered_at"]) == ("completed", delivered_at)
        assert [r["job_id"] for r in records if r["record"] == "later_delivery"] == [
            f"{first}:braze"]  # fmt: skip
        # and in the §7102 figures
        found = figures(pipe, request_id)
        assert (found.status, found.outcome, found.responded_at) == (
            "completed", "complied_whole", delivered_at)  # fmt: skip
        assert found.systems["braze"] == "done"
        # and in what the watch folded into the §7102 ledger
        (folded,) = [i for i in pipe.items(keys.request_pk(request_id)) if i["sk"] == "FOLDED"]
        assert folded["outcome"] == "complied_whole"
    # and J1 itself still says how it ended
    assert job(pipe, first)["status"] == "failed"


def test_a_later_delivery_is_never_taken_back(pipe: Pipeline) -> None:
    # Given R1's failed job delivered by R3's, recorded by the watch
    first, second = refused_then_cited(pipe, BODY)
    third = later_request(pipe, BODY, Vendor())
    delivered_at = job(pipe, third)["completed_at"]
    watch_at(pipe, DAY)
    # When the mark is renamed to a job that failed (as a `backfill --resend` or a renewal
    # 30 days on renames it: R1's failed job stands in for that job here), an operator's
    # replay sends R1's job again and the vendor confirms it, and the watch checks again
    mark = [i for i in pipe.items("ID#") if i["sk"] == keys.delivery_sk("braze")]
    assert len(mark) == 1
    pipe.aws.dynamodb.update_item(
        TableName=pipe.aws.table_name,
        Key={"pk": {"S": mark[0]["pk"]}, "sk": {"S": mark[0]["sk"]}},
        UpdateExpression="SET job_sale = :j",
        ExpressionAttributeValues={":j": {"S": f"{first}:braze"}},
    )
    ok(call(pipe, "POST", "/v1/admin/systems/braze/replay", params={"system": "braze"}), 202)
    pipe.resolve()
    (replayed,) = work(pipe, "braze", Vendor())
    assert replayed["job_id"] == f"{first}:braze"
    assert job(pipe, first)["status"] == "done"
    watch_at(pipe, 2 * DAY)
    # Then R1 and R2 still read completed at J3's answer, in every view
    for request_id in (first, second):
        found = figures(pipe, request_id)
        assert (found.status, found.responded_at) == ("completed", delivered_at)
        assert record(pipe, request_id)["completed_at"] == delivered_at
    assert status(pipe, first) == "completed"


def test_a_later_job_for_part_of_the_failed_flights_delivers_nothing(pipe: Pipeline) -> None:
    # Given R1 naming an email and a phone, refused at Braze for good (R2 citing it), and R3
    # naming the email alone, delivered
    body = {"email": EMAIL, "phone": PHONE, "purposes": ["sale"]}
    first, second = refused_then_cited(pipe, body)
    later_request(pipe, BODY, Vendor())
    # When the watch checks them
    watch_at(pipe, DAY)
    # Then both still read failed: Braze never confirmed the phone
    assert (status(pipe, first), status(pipe, second)) == ("failed", "failed")
    assert not [i for i in pipe.items(keys.request_pk(first))
                if str(i["sk"]).startswith(keys.LATER_PREFIX)]  # fmt: skip


def test_a_later_job_that_failed_too_delivers_nothing(pipe: Pipeline) -> None:
    first, second = refused_then_cited(pipe, BODY)
    later_request(pipe, BODY, Vendor(refuse=True))
    watch_at(pipe, DAY)
    assert (status(pipe, first), status(pipe, second)) == ("failed", "failed")


def test_a_denial_after_the_later_delivery_is_refused(pipe: Pipeline) -> None:
    first, _ = refused_then_cited(pipe, BODY)
    later_request(pipe, BODY, Vendor())
    watch_at(pipe, DAY)
    answer = deny(pipe, first)
    assert answer["statusCode"] == 409, answer["body"]


@pytest.mark.parametrize("cut", range(8))  # the check makes 7 calls: each cut
def test_the_watch_check_racing_the_later_jobs_answer(pipe: Pipeline, cut: int) -> None:
    """The watch's check of R1 stopped after `cut` DynamoDB calls while the worker writes J3's
    `done` (every call of it), then the check runs on (tests/support/interleave.py): the
    check records the cover or not, never one dated otherwise, and the next check records
    it; R1 then reads completed at J3's answer in every view, and never failed after."""
    first, second = refused_then_cited(pipe, BODY)
    third = pipe.post("/v1/opt-out", BODY)["request_id"]
    pipe.resolve()
    (message,) = pipe.drain("braze")
    for bodies in pipe.drain_all().values():
        if bodies:
            deliver(pipe, bodies, Vendor())
    scheduler = Scheduler([(0, cut), (1, 10**6), (0, 10**6)])
    baton = Table(BatonClient(pipe.aws.dynamodb, scheduler), pipe.aws.table_name)
    at = datetime.now(UTC) + DAY
    service = DeliveryService(baton, SYSTEMS, WorkerSettings(table_name=pipe.aws.table_name),
                              lambda _system: Vendor())  # fmt: skip
    checks: list[Any] = []
    tasks = {
        "a-watch": lambda: Watch(baton, WATCH, clock=lambda: at).check(
            first, at, WatchReport(run_at=iso(at))) and None,
        "b-worker": lambda: service.deliver(
            [Received("m0", json.dumps(message), 1)], lambda m, d: checks.append((m, d))),
    }  # fmt: skip
    with guarded():
        scheduler.run(tasks)
    delivered_at = job(pipe, third)["completed_at"]
    recorded = [i for i in pipe.items(keys.request_pk(first))
                if str(i["sk"]).startswith(keys.LATER_PREFIX)]  # fmt: skip
    assert [r["completed_at"] for r in recorded] in ([], [delivered_at])
    assert figures(pipe, first).status == ("completed" if recorded else "failed")
    # the next check (a day on) records it if this one did not, and changes nothing else
    watch_at(pipe, 2 * DAY)
    for request_id in (first, second):
        found = figures(pipe, request_id)
        assert (found.status, found.responded_at) == ("completed", delivered_at)


def test_the_watch_function_may_read_the_marks_and_write_the_record(
    pipe: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given R1 and R2 failed at Braze and R3's job done, and no index lag (a run at once)
    first, second = refused_then_cited(pipe, BODY)
    third = later_request(pipe, BODY, Vendor())
    monkeypatch.setenv("WATCH_LAG_SECONDS", "0")
    # When EventBridge invokes the watch function (its calls are checked against its role)
    load_function("watch").handler({"detail-type": "Scheduled Event"}, MinutesLeft())
    # Then both read completed at J3's answer
    for request_id in (first, second):
        assert record(pipe, request_id)["completed_at"] == job(pipe, third)["completed_at"]


def test_optout_status_says_which_later_job_delivered_the_failed_one(
    pipe: Pipeline, capsys: pytest.CaptureFixture[str]
) -> None:
    first, _ = refused_then_cited(pipe, BODY)
    third = later_request(pipe, BODY, Vendor())
    watch_at(pipe, DAY)
    ran = Cli(capsys, AdminTransport(pipe.admin))("status", first)
    assert ran.code == 0, ran.err
    delivered_at = job(pipe, third)["completed_at"]
    line = f"failed job {first}:braze delivered later by {third}:braze ({delivered_at})"
    assert line in " ".join(ran.out.split())
    assert "completed" in ran.out


class CountingClient:
    """The DynamoDB client, with the keys of each BatchGetItem call noted."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.batch_gets: list[list[str]] = []

    def batch_get_item(self, **kwargs: Any) -> Any:
        for request in kwargs["RequestItems"].values():
            self.batch_gets.append(sorted(k["pk"]["S"] for k in request["Keys"]))
        return self._client.batch_get_item(**kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


@pytest.mark.parametrize("later", ["none", "part"])
def test_a_check_of_a_failed_job_no_later_job_delivered_reads_only_its_marks(
    pipe: Pipeline, later: str
) -> None:
    """The marks still name the failed job (no later job took over: the usual failed request,
    checked daily, hourly once overdue, until a replay), or name it for one of its flights:
    nothing can cover it, so the check reads no job the marks name (review37b: it read the
    failed job itself again, a second BatchGetItem at every check)."""
    # Given R1 {email, phone} refused at Braze for good, and no later job, or one for the email
    body = {"email": EMAIL, "phone": PHONE, "purposes": ["sale"]}
    first, _ = refused_then_cited(pipe, body)
    if later == "part":
        later_request(pipe, BODY, Vendor())
    counting = CountingClient(pipe.aws.dynamodb)
    at = datetime.now(UTC) + DAY
    # When the watch checks R1
    Watch(Table(counting, pipe.aws.table_name), WATCH, clock=lambda: at).check(
        first, at, WatchReport(run_at=iso(at))
    )
    # Then the only BatchGetItem of ID# keys is the marks', and none reads a job after it
    marks = [n for n, pks in enumerate(counting.batch_gets) if pks[0].startswith("ID#")]
    assert len(marks) == 1, counting.batch_gets
    assert counting.batch_gets[marks[0] + 1 :] == []
    assert status(pipe, first) == "failed"


def test_a_denial_before_the_watch_recorded_the_later_delivery_is_refused(pipe: Pipeline) -> None:
    """Every system refused R1 for good (nothing confirmed: a denial is still allowed), then
    R3's jobs delivered its every flight, and the deadline watch has not checked R1 yet (up to
    a day): the denial finds the cover itself and is refused, as after the watch's record
    (review37b; before, it was written, and R1 read `denied` for good although every vendor
    had confirmed its opt-out)."""
    first = pipe.post("/v1/opt-out", BODY)["request_id"]
    pipe.resolve()
    for bodies in pipe.drain_all().values():
        if bodies:
            deliver(pipe, bodies, Vendor(refuse=True))
    assert status(pipe, first) == "failed"
    third = pipe.post("/v1/opt-out", BODY)["request_id"]
    pipe.resolve()
    for bodies in pipe.drain_all().values():
        if bodies:
            deliver(pipe, bodies, Vendor())
    assert status(pipe, third) == "completed"
    answer = deny(pipe, first)  # through the admin function, under its IAM role
    assert answer["statusCode"] == 409, answer["body"]
    assert status(pipe, first) == "completed"


def replay(pipe: Pipeline, system: str = "braze") -> dict[str, Any]:
    """An operator's replay of `system`, carried out by the resolver: its resolution."""
    path = f"/v1/admin/systems/{system}/replay"
    answer = ok(call(pipe, "POST", path, params={"system": system}), 202)
    pipe.resolve()
    resolution: dict[str, Any] = record(pipe, answer["request_id"])["resolution"]
    return resolution


@pytest.mark.parametrize("watched", [False, True], ids=["before-the-watch", "after-the-watch"])
def test_a_replay_sends_no_job_later_jobs_delivered(pipe: Pipeline, watched: bool) -> None:
    """R1's failed Braze job J1, every flight of it delivered by R3's J3: an operator's replay
    of Braze sends it no more (the vendor confirmed the opt-out; a second send would hand it
    the person's email again for nothing), says so in its record, and leaves R1 reading done
    at J3's answer, whether or not the deadline watch had recorded it yet. On the old code
    the replay sent J1 again (`replayed` 1, a Braze message)."""
    # Given R1 refused at Braze for good (R2 citing it), R3's Braze job done, and a second
    # failed request R4 no later job delivered (its phone: sent again as before)
    first, second = refused_then_cited(pipe, BODY)
    third = later_request(pipe, BODY, Vendor())
    delivered_at = job(pipe, third)["completed_at"]
    other = later_request(pipe, {"phone": PHONE, "purposes": ["sale"]}, Vendor(refuse=True))
    if watched:
        watch_at(pipe, DAY)
    # When the operator replays Braze
    outcome = replay(pipe)
    # Then only R4's job goes out again; J1's listing is gone too, J1 unchanged
    assert [m["job_id"] for m in pipe.drain("braze")] == [f"{other}:braze"]
    assert (outcome["replayed"], outcome["delivered_later"]) == (1, 1)
    assert pipe.items(keys.failed_pk("braze")) == []
    assert job(pipe, first)["status"] == "failed" and "replayed_at" not in job(pipe, first)
    # and R1 reads completed at J3's answer at once (the replay wrote the watch's record when
    # the watch had not), R2 once the watch checks it
    assert record(pipe, first)["completed_at"] == delivered_at
    watch_at(pipe, 2 * DAY)
    for request_id in (first, second):
        found = figures(pipe, request_id)
        assert (found.status, found.responded_at) == ("completed", delivered_at)


def test_optout_status_of_a_replay_counts_the_jobs_later_jobs_delivered(
    pipe: Pipeline, capsys: pytest.CaptureFixture[str]
) -> None:
    refused_then_cited(pipe, BODY)
    later_request(pipe, BODY, Vendor())
    path = "/v1/admin/systems/braze/replay"
    replay_id = ok(call(pipe, "POST", path, params={"system": "braze"}), 202)["request_id"]
    pipe.resolve()
    ran = Cli(capsys, AdminTransport(pipe.admin))("status", replay_id)
    assert ran.code == 0, ran.err
    shown = " ".join(ran.out.split())
    assert "braze, replayed 0 failed jobs, 1 delivered later (not re-sent)" in shown


@pytest.mark.parametrize("cut", range(16))  # the replay makes 15 calls or fewer: each cut
def test_a_replay_racing_the_later_jobs_answer(pipe: Pipeline, cut: int) -> None:
    """The replay of Braze stopped after `cut` DynamoDB calls while the worker writes J3's
    `done` (every call of it), then the replay runs on (tests/support/interleave.py): J1 is
    either sent again (the replay read the cover before J3 ended: as before) or not, and then
    R1 holds the record; never dropped unsent with R1 still failed. Either way J1's listing is
    gone, and once the watch checks, R1 and R2 read completed."""
    first, second = refused_then_cited(pipe, BODY)
    third = pipe.post("/v1/opt-out", BODY)["request_id"]
    pipe.resolve()
    (message,) = pipe.drain("braze")
    for bodies in pipe.drain_all().values():
        if bodies:
            deliver(pipe, bodies, Vendor())
    path = "/v1/admin/systems/braze/replay"
    replay_id = ok(call(pipe, "POST", path, params={"system": "braze"}), 202)["request_id"]
    assert len(pipe.event_records()) == 1  # the replay's event: run below, not by the stream
    (event,) = [i for i in pipe.items(keys.request_pk(replay_id)) if i["sk"] == keys.EVENT_SK]
    scheduler = Scheduler([(0, cut), (1, 10**6), (0, 10**6)])
    baton = Table(BatonClient(pipe.aws.dynamodb, scheduler), pipe.aws.table_name)
    base = pipe.resolver.resolver()
    replaying = Resolver(baton, SYSTEMS, base._queue, Caps(max_size=50))
    service = DeliveryService(baton, SYSTEMS, WorkerSettings(table_name=pipe.aws.table_name),
                              lambda _system: Vendor())  # fmt: skip
    tasks = {
        "a-replay": lambda: replaying.process(event) and None,
        "b-worker": lambda: service.deliver(
            [Received("m0", json.dumps(message), 1)], lambda m, d: None),
    }  # fmt: skip
    with guarded():
        scheduler.run(tasks)
    delivered_at = job(pipe, third)["completed_at"]
    sent = [m["job_id"] for m in pipe.drain("braze")]
    recorded = [i for i in pipe.items(keys.request_pk(first))
                if str(i["sk"]).startswith(keys.LATER_PREFIX)]  # fmt: skip
    assert (sent, len(recorded)) in (([f"{first}:braze"], 0), ([], 1)), scheduler.trace
    assert pipe.items(keys.failed_pk("braze")) == []
    if sent:  # sent again: the vendor confirms it this time
        deliver(pipe, [{"job_id": f"{first}:braze", "request_id": first, "system": "braze"}],
                Vendor())  # fmt: skip
    watch_at(pipe, DAY)
    for request_id in (first, second):
        assert figures(pipe, request_id).status == "completed"
    if recorded:
        assert figures(pipe, first).responded_at == delivered_at


def test_a_retirement_before_the_watchs_check_hides_no_later_delivery(
    pipe: Pipeline, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """R1's failed Braze job J1 delivered by R3's J3, then Braze removed and retired before the
    deadline watch's next check: R1 reads Braze done at J3's answer (its vendor confirmed the
    opt-out), not retired. On the old code the check skipped a retired system's failed job, and
    Braze read `retired` for good, the request dated at the retirement."""
    # Given R1 refused at Braze (R2 citing it) and R3's Braze job done
    first, second = refused_then_cited(pipe, BODY)
    third = later_request(pipe, BODY, Vendor())
    delivered_at = job(pipe, third)["completed_at"]
    # When Braze is removed from the config and retired, then the watch checks the requests
    redeploy(pipe, monkeypatch, without(tmp_path, "braze"))
    assert retire(pipe, "braze")["statusCode"] == 200
    pipe.resolve()
    watch_at(pipe, DAY)
    # Then R1 and R2 read Braze done by J3, in every view, and completed at J3's answer
    for request_id in (first, second):
        detail = record(pipe, request_id)
        (braze,) = [s for s in detail["systems"] if s["system"] == "braze"]
        assert braze["satisfied"] == "done", braze
        assert [d["job_id"] for d in braze["delivered_later"][0]["delivered_by"]] == [
            f"{third}:braze"]  # fmt: skip
        found = figures(pipe, request_id)
        assert (found.status, found.systems["braze"]) == ("completed", "done")
    assert record(pipe, first)["completed_at"] == delivered_at
    assert figures(pipe, first).responded_at == delivered_at


def test_a_chain_is_followed_by_the_marks_the_last_job_delivering_both(pipe: Pipeline) -> None:
    """A covering job that failed too (R3's J3), then delivered by a third (R5's J5): the marks
    name the last job to take each purpose over, so J5 covers J1 and J3 alike, with no second
    level read (docs/decisions.md, "A failed job delivered by later requests")."""
    first, second = refused_then_cited(pipe, BODY)
    third = later_request(pipe, BODY, Vendor(refuse=True))
    fifth = later_request(pipe, BODY, Vendor())
    delivered_at = job(pipe, fifth)["completed_at"]
    watch_at(pipe, DAY)
    for request_id in (first, second, third):
        found = figures(pipe, request_id)
        assert (found.status, found.responded_at) == ("completed", delivered_at), request_id
    (braze,) = [s for s in record(pipe, third)["systems"] if s["system"] == "braze"]
    assert [d["job_id"] for d in braze["delivered_later"][0]["delivered_by"]] == [
        f"{fifth}:braze"]  # fmt: skip


def test_a_replay_sends_a_denied_requests_delivered_job_no_more_and_keeps_the_denial(
    pipe: Pipeline,
) -> None:
    """R1 refused everywhere and denied, then R3 delivered its every flight: the replay sends
    R1's jobs no more (the vendors have the opt-out), writes no record under the denied
    request (its status is the denial's) and adds nothing to its `systems_under_way`."""
    first = pipe.post("/v1/opt-out", BODY)["request_id"]
    pipe.resolve()
    for bodies in pipe.drain_all().values():
        if bodies:
            deliver(pipe, bodies, Vendor(refuse=True))
    assert deny(pipe, first)["statusCode"] == 200
    (denial,) = [i for i in pipe.items(keys.request_pk(first)) if i["sk"] == "DENIAL"]
    later_request(pipe, BODY, Vendor())
    outcome = replay(pipe)
    assert pipe.drain("braze") == []
    assert (outcome["replayed"], outcome["delivered_later"]) == (0, 1)
    assert pipe.items(keys.failed_pk("braze")) == []
    items = pipe.items(keys.request_pk(first))
    assert not [i for i in items if str(i["sk"]).startswith(keys.LATER_PREFIX)]
    assert [i for i in items if i["sk"] == "DENIAL"] == [denial]
    assert status(pipe, first) == "denied"


def test_a_replay_sends_a_backfill_steps_delivered_job_again_no_view_reading_a_record(
    pipe: Pipeline, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A backfill step's Meta job refused for good, then the person's own later request's
    Meta job confirmed: the replay sends the step's job again, as before session 38. No view
    reads a later-delivery record for a job no request reads (the backfill figures and
    `optout status <id>~<hex>` read the job's own status), so the replay that dropped it unsent
    (proof38) left it `failed` in them for good, with its listing gone (review38b; on main:
    nothing sent, `delivered_later` 1, the year's figures `jobs_failed` 1 after the replay)."""
    # Given a person opted out before Meta was configured, Meta backfilled and its step's job
    # refused for good, then the person's later request's Meta job confirmed
    opted_out_before(pipe, monkeypatch, tmp_path, "meta", work_others=True)
    started = backfill_system(pipe, "meta")
    (step,) = run_chain(pipe, started["request_id"])
    job_request = str(step["job_request_id"])
    backfill_work(pipe, FULL, "meta", Vendor(refuse=True))
    assert job(pipe, job_request, "meta")["status"] == "failed"
    pipe.post("/v1/opt-out", {"email": BACKFILLED})
    pipe.resolve()
    for queue_key in pipe.queue_urls:
        backfill_work(pipe, FULL, queue_key, Vendor())
    # When the operator replays Meta
    outcome = replay(pipe, "meta")
    # Then the step's job goes out again, and once Meta confirms it reads done in the figures
    assert [m["job_id"] for m in pipe.drain("meta")] == [f"{job_request}:meta"]
    assert (outcome["replayed"], outcome.get("delivered_later")) == (1, None)
    deliver(pipe, [{"job_id": f"{job_request}:meta", "request_id": job_request,
                    "system": "meta"}], Vendor())  # fmt: skip
    assert job(pipe, job_request, "meta")["status"] == "done"
    row = year_figures(table(pipe), datetime.now(UTC).year)["meta"]
    assert (row["jobs_done"], row["jobs_failed"]) == (1, 0)


def test_a_replay_records_a_further_jobs_later_delivery_under_its_request(
    pipe: Pipeline,
) -> None:
    """A request's further job (the phone's, `<request>~<hex>:webhook`) refused for good, then
    the phone's own later request's webhook job confirmed: the replay sends it no more and
    writes the record under the request that owns it, which reads completed (review38b: the
    further-job path proof38 left without a test of its own; passes on main too)."""
    request_id = phone_out_of_profiling_then_a_form_naming_both(pipe)
    (further,) = [j for j in webhook_jobs(pipe, request_id) if j != f"{request_id}:webhook"]
    messages = pipe.drain("webhook")
    deliver(pipe, [m for m in messages if m["job_id"] != further], Vendor())
    deliver(pipe, [m for m in messages if m["job_id"] == further], Vendor(refuse=True))
    for system in SYSTEMS.systems:
        if system.name != "webhook":
            work(pipe, system.queue_key, Vendor())
    assert status(pipe, request_id) == "failed"
    later_request(pipe, {"phone": SPLIT_PHONE, "purposes": ["sale", "profiling"]}, Vendor(),
                  system="webhook")  # fmt: skip
    outcome = replay(pipe, "webhook")
    assert pipe.drain("webhook") == []
    assert (outcome["replayed"], outcome["delivered_later"]) == (0, 1)
    recorded = [i["sk"] for i in pipe.items(keys.request_pk(request_id))
                if str(i["sk"]).startswith(keys.LATER_PREFIX)]  # fmt: skip
    assert recorded == [f"LATER#webhook#{further}"]
    assert status(pipe, request_id) == "completed"
    found = figures(pipe, request_id)
    assert (found.status, found.systems["webhook"]) == ("completed", "done")
