"""An operator's backfill: a system added to the systems config (or whose destination changed)
is sent the opt-outs recorded before (review s13 config, findings 1 and 2).

The stores are built under one systems config, then the admin route, the resolver and the
worker's domain service run under another: a redeploy is SYSTEMS_CONFIG swapped and the
functions' cached services built again. The worker is tests/integration/test_resolver_delivery.py's
stand-in vendor."""

import json
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from optout.admin import AdminService
from optout.connectors.base import Outcome
from optout.delivery.service import DeliveryService, Received
from optout.delivery.settings import WorkerSettings
from optout.ops.backfills import open_earlier, records_since, year_figures
from optout.resolver import service
from optout.status import covering_keys, not_asked, proofs, quiet_keys
from optout.store import keys
from optout.store.batch import batch_get
from optout.store.codec import serialize
from optout.store.table import Table
from optout.sweep import Sweeper, SweepSettings
from optout.systems import load_systems
from optout.timestamps import iso
from tests.conftest import Aws
from tests.integration.test_resolver_delivery import Vendor
from tests.support.http_events import http_event, json_body
from tests.support.lambdas import FakeLambdaContext, invoke
from tests.support.pipeline import Pipeline, build_pipeline
from tests.support.tokens import token_for

FULL = str(Path("local/systems.json").resolve())
EMAIL = "pat.backfill@example.com"
DEVICE = "dev-backfill-aaaaaaaaaa"


def config(tmp: Path, name: str, edit: Callable[[list[dict[str, Any]]], Any]) -> str:
    """local/systems.json changed by `edit` (its list of systems), written under `tmp`."""
    data = json.loads(Path(FULL).read_text(encoding="utf-8"))
    data["systems"] = edit(data["systems"])
    path = tmp / f"{name}.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return str(path)


def without(name: str) -> Callable[[list[dict[str, Any]]], Any]:
    return lambda systems: [s for s in systems if s["name"] != name]


@pytest.fixture
def pipe(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> Iterator[Pipeline]:
    yield build_pipeline(aws, monkeypatch)


def deploy(pipe: Pipeline, monkeypatch: pytest.MonkeyPatch, path: str) -> None:
    """A redeploy with another systems config: the functions build their services again."""
    monkeypatch.setenv("SYSTEMS_CONFIG", path)
    pipe.resolver.resolver.cache_clear()
    pipe.admin.services.cache_clear()


def work(pipe: Pipeline, path: str, queue_key: str, vendor: Vendor) -> list[dict[str, Any]]:
    """One worker pass over a system's queue under the config at `path`."""
    bodies = pipe.drain(queue_key)
    delivery = DeliveryService(
        Table(pipe.aws.dynamodb, pipe.aws.table_name), load_systems(path),
        WorkerSettings(table_name=pipe.aws.table_name), lambda _system: vendor,  # type: ignore[arg-type,return-value]
    )  # fmt: skip
    received = [Received(f"m{n}", json.dumps(b), 1) for n, b in enumerate(bodies)]
    delivery.deliver(received, lambda message, delay: None)
    return bodies


def backfill(pipe: Pipeline, system: str, resend: bool = False) -> dict[str, Any]:
    event = http_event("POST", f"/v1/admin/systems/{system}/backfill", iam=True,
                       path_parameters={"system": system})  # fmt: skip
    if resend:
        event["queryStringParameters"] = {"resend": "true"}
        event["rawQueryString"] = "resend=true"
    answer = invoke(pipe.admin, event)
    assert answer["statusCode"] == 202, answer["body"]
    result: dict[str, Any] = json_body(answer)
    return result


def resolution(pipe: Pipeline, request_id: str) -> dict[str, Any]:
    (found,) = [i for i in pipe.items(keys.request_pk(request_id)) if i["sk"] == "RESOLUTION"]
    return found


def run_chain(pipe: Pipeline, first: str) -> list[dict[str, Any]]:
    """Resolve what the stream brings until the backfill's last event has run."""
    chain = [first]
    for _ in range(10):
        assert pipe.resolve() == {"batchItemFailures": []}
        following = resolution(pipe, chain[-1]).get("continued_by")
        if not following:
            break
        chain.append(str(following))
    return [resolution(pipe, r) for r in chain]


def values(vendor: Vendor) -> list[str]:
    return sorted(i.value for job in vendor.received for i in job.identifiers)


def left_out(pipe: Pipeline, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, system: str) -> str:
    """Deploy a config without `system` (the one it is added to later); its path."""
    before = config(tmp_path, "before", without(system))
    deploy(pipe, monkeypatch, before)
    return before


def opted_out_before(
    pipe: Pipeline,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    system: str,
    emails: tuple[str, ...] = (EMAIL,),
    work_others: bool = False,
) -> None:
    """Given `emails` opted out (and resolved) under a config without `system`, the other
    systems' jobs delivered (`work_others`) or their queues drained, then the full config
    deployed: `system` is now configured but was sent nobody."""
    before = left_out(pipe, monkeypatch, tmp_path, system)
    for email in emails:
        pipe.post("/v1/opt-out", {"email": email})
    pipe.resolve()
    if work_others:
        for queue_key in pipe.queue_urls:
            work(pipe, before, queue_key, Vendor())
    else:
        pipe.drain_all()
    deploy(pipe, monkeypatch, FULL)


def test_a_system_added_after_people_opted_out_is_sent_them_by_a_backfill(
    pipe: Pipeline, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Given a person opted out under a config without meta, every job delivered
    opted_out_before(pipe, monkeypatch, tmp_path, "meta", work_others=True)
    # When meta is added and an operator backfills it
    started = backfill(pipe, "meta")
    assert started["status"] == "backfilling" and started["system"] == "meta"
    (record,) = run_chain(pipe, started["request_id"])
    # Then meta's queue has one job carrying the person's email, for what meta serves
    (message,) = pipe.drain("meta")
    job_request = record["job_request_id"]
    assert message == {"job_id": f"{job_request}:meta", "request_id": job_request,
                       "system": "meta"}  # fmt: skip
    (job,) = [i for i in pipe.items(keys.request_pk(job_request)) if i["sk"] == "JOB#meta"]
    assert [i["value"] for i in job["identifiers"]] == [EMAIL]
    assert job["purposes"] == ["share", "targeted_advertising"]
    # ... the record says what it read and planned, and names the job for the sweep
    assert (record["scanned"], record["planned"], record["jobs_total"]) == (1, 1, 1)
    assert "continued_by" not in record
    (marker,) = [i for i in pipe.items(keys.request_pk(started["request_id"]))
                 if i["sk"].startswith("REDERIVED#")]  # fmt: skip
    assert marker["request_ids"] == {job_request}  # the step's one marker names its jobs
    # ... the other systems got nothing, and meta, once it answers, holds the opt-out
    assert all(not bodies for bodies in pipe.drain_all().values())
    (email_pk,) = {i["pk"] for i in pipe.items("ID#email#") if i["sk"] == "STATE"}
    vendor = Vendor()
    delivery = DeliveryService(
        Table(pipe.aws.dynamodb, pipe.aws.table_name), load_systems(FULL),
        WorkerSettings(table_name=pipe.aws.table_name), lambda _system: vendor,  # type: ignore[arg-type,return-value]
    )  # fmt: skip
    delivery.deliver([Received("m0", json.dumps(message), 1)], lambda message, delay: None)
    assert values(vendor) == [EMAIL]
    (mark,) = [i for i in pipe.items(email_pk) if i["sk"] == "DELIVERY#meta"]
    assert mark["job_share"] == job["job_id"]


def test_a_second_backfill_sends_nothing_new(
    pipe: Pipeline, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Given meta added after a person opted out, and backfilled once (delivered)
    opted_out_before(pipe, monkeypatch, tmp_path, "meta")
    run_chain(pipe, backfill(pipe, "meta")["request_id"])
    assert len(work(pipe, FULL, "meta", Vendor())) == 1
    # When the operator backfills meta again (without --resend)
    (record,) = run_chain(pipe, backfill(pipe, "meta")["request_id"])
    # Then no job is made and nothing is queued
    assert (record["planned"], record["jobs_total"]) == (1, 0)
    assert "job_request_id" not in record
    assert pipe.drain("meta") == []


def test_a_resend_after_a_destination_change_sends_everyone_again_once(
    pipe: Pipeline, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Given two people opted out and delivered to meta's first ad account
    pipe.post("/v1/opt-out", {"email": EMAIL})
    pipe.post("/v1/opt-out", {"phone": "+14155550142"})
    pipe.resolve()
    first = Vendor()
    assert len(work(pipe, FULL, "meta", first)) == 2
    pipe.drain_all()

    def new_account(systems: list[dict[str, Any]]) -> Any:
        for system in systems:
            if system["name"] == "meta":
                system["options"]["ad_account_id"] = "act_2222222222"
        return systems

    # When meta's ad account changes, a plain backfill sends nothing (the marks say done)
    moved = config(tmp_path, "moved", new_account)
    deploy(pipe, monkeypatch, moved)
    (plain,) = run_chain(pipe, backfill(pipe, "meta")["request_id"])
    assert plain["jobs_total"] == 0 and pipe.drain("meta") == []
    # ... and a --resend backfill sends both again, in one job
    (record,) = run_chain(pipe, backfill(pipe, "meta", resend=True)["request_id"])
    assert record["resend"] is True and record["jobs_total"] == 1
    again = Vendor()
    assert len(work(pipe, moved, "meta", again)) == 1
    assert values(again) == values(first)
    # ... whose job the marks now name, so a later request by the same person cites it
    later = pipe.post("/v1/opt-out", {"email": EMAIL})["request_id"]
    pipe.resolve()
    assert pipe.drain("meta") == []
    covered = resolution(pipe, later)["covered"]["meta"]
    assert covered == [f"{record['job_request_id']}:meta"]
    # ... and a plain backfill after it sends nothing more
    (after,) = run_chain(pipe, backfill(pipe, "meta")["request_id"])
    assert after["jobs_total"] == 0 and pipe.drain("meta") == []


def test_a_resend_backfill_processed_twice_sends_its_one_job_again(
    pipe: Pipeline,
) -> None:
    # Given a person delivered to meta, and a --resend backfill of meta
    pipe.post("/v1/opt-out", {"email": EMAIL})
    pipe.resolve()
    work(pipe, FULL, "meta", Vendor())
    pipe.drain_all()
    request_id = backfill(pipe, "meta", resend=True)["request_id"]
    batch = pipe.event_records()
    assert pipe.resolve(batch) == {"batchItemFailures": []}
    (message,) = pipe.drain("meta")
    # When the stream delivers its event again (a retried batch)
    assert pipe.resolve(batch) == {"batchItemFailures": []}
    # Then the same job's message goes out again, and no second job is made
    assert pipe.drain("meta") == [message]
    jobs = [i for i in pipe.items("REQ#") if i["sk"] == "JOB#meta"]
    assert len(jobs) == 2  # the opt-out's own job and the backfill's
    assert resolution(pipe, request_id)["jobs_total"] == 1


def test_a_backfill_job_whose_message_was_lost_is_sent_again_by_the_sweep(
    pipe: Pipeline, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Given meta added after a person opted out, and its backfill job's message lost
    opted_out_before(pipe, monkeypatch, tmp_path, "meta")
    (record,) = run_chain(pipe, backfill(pipe, "meta")["request_id"])
    (lost,) = pipe.drain("meta")
    # When the sweep checks the backfill at its 2 h 15 checkpoint (past the jobs' grace)
    table = Table(pipe.aws.dynamodb, pipe.aws.table_name)
    later = datetime.now(UTC) + timedelta(hours=2, minutes=20)
    report = Sweeper(table, SweepSettings(), clock=lambda: later).sweep()
    # Then it finds the job still pending, and its redrive sends the message again
    assert f"{record['job_request_id']}:meta" in report.stuck_jobs
    assert pipe.resolve() == {"batchItemFailures": []}
    assert pipe.drain("meta") == [lost]


@dataclass
class NoTimeLeft(FakeLambdaContext):
    def get_remaining_time_in_millis(self) -> int:
        return 0


def test_a_backfill_out_of_time_plans_nothing_and_its_follow_up_carries_on(
    pipe: Pipeline, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Given a person opted out before meta was added
    opted_out_before(pipe, monkeypatch, tmp_path, "meta")
    # When the backfill reaches a resolver with no time left
    request_id = backfill(pipe, "meta")["request_id"]
    answer = pipe.resolver.handler({"Records": pipe.event_records()}, NoTimeLeft())
    assert answer == {"batchItemFailures": []}
    # Then it reads and plans nothing, and names a follow-up event for the same backfill
    record = resolution(pipe, request_id)
    assert (record["scanned"], record["planned"], record["jobs_total"]) == (0, 0, 0)
    follow_up = str(record["continued_by"])
    (event,) = [i for i in pipe.items(keys.request_pk(follow_up)) if i["sk"] == "EVENT"]
    assert event["event_type"] == "backfill"
    assert event["operation"]["continues"] == request_id
    assert event["operation"]["system"] == "meta"
    assert pipe.drain("meta") == []
    # ... which, resolved with time, sends the person to meta
    assert pipe.resolve() == {"batchItemFailures": []}
    assert resolution(pipe, follow_up)["jobs_total"] == 1
    assert len(work(pipe, FULL, "meta", Vendor())) == 1


def test_a_backfill_bounded_per_event_sends_each_cluster_once_through_follow_ups(
    pipe: Pipeline, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Given, before meta was added, a browser verified as an email (one cluster, two STATE
    # items) opted out of sharing, two more people opted out, and the bound one identity
    left_out(pipe, monkeypatch, tmp_path, "meta")
    login = token_for(email=EMAIL, device_id=DEVICE)
    pipe.post("/v1/consent", {"device_id": DEVICE, "identity_token": login,
                              "opt_out": {"share": True}})  # fmt: skip
    pipe.post("/v1/opt-out", {"email": "second.backfill@example.com"})
    pipe.post("/v1/opt-out", {"email": "third.backfill@example.com"})
    pipe.resolve()
    pipe.drain_all()
    states = [i for i in pipe.items("ID#") if i["sk"] == "STATE"]
    assert len(states) == 4
    deploy(pipe, monkeypatch, FULL)
    monkeypatch.setattr(service, "BACKFILL_IDENTITIES", 1)
    # When meta is backfilled
    first = backfill(pipe, "meta")["request_id"]
    chain = run_chain(pipe, first)
    # Then it went on through follow-up events, each job carrying one identity, and read
    # every STATE item once
    assert len(chain) >= 3
    assert sum(int(r["planned"]) for r in chain) == 4
    assert [r["identities"] for r in chain if r["jobs_total"]] == [1, 1, 1]
    # ... and the cluster reached twice got one job: three jobs, each email once
    vendor = Vendor()
    assert len(work(pipe, FULL, "meta", vendor)) == 3
    assert Counter(values(vendor)) == Counter(
        [EMAIL, "second.backfill@example.com", "third.backfill@example.com"]
    )
    assert pipe.event_records() == []


def test_an_opted_in_person_is_not_sent(
    pipe: Pipeline, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Given, before the webhook was added, one browser opted out and another that opted out
    # and then confirmed opting back in
    left_out(pipe, monkeypatch, tmp_path, "webhook")
    pipe.post("/v1/consent", {"device_id": "dev-backfill-out-aaaaaa", "opt_out": {"sale": True}})
    back_in = "dev-backfill-in-aaaaaaa"
    pipe.post("/v1/consent", {"device_id": back_in, "opt_out": {"sale": True}})
    pipe.resolve()
    pipe.post("/v1/consent", {"device_id": back_in, "opt_out": {"sale": False},
                              "confirm_opt_in": True})  # fmt: skip
    pipe.resolve()
    pipe.drain_all()
    # When the webhook is added and backfilled
    deploy(pipe, monkeypatch, FULL)
    (record,) = run_chain(pipe, backfill(pipe, "webhook")["request_id"])
    # Then only the browser still opted out is sent
    assert (record["scanned"], record["planned"]) == (2, 1)
    vendor = Vendor()
    assert len(work(pipe, FULL, "webhook", vendor)) == 1
    assert values(vendor) == ["dev-backfill-out-aaaaaa"]


def test_an_unknown_system_is_not_found(pipe: Pipeline) -> None:
    event = http_event("POST", "/v1/admin/systems/nosuch/backfill", iam=True,
                       path_parameters={"system": "nosuch"})  # fmt: skip
    answer = invoke(pipe.admin, event)
    assert answer["statusCode"] == 404, answer["body"]
    assert pipe.event_records() == []


def test_an_unknown_system_is_answered_with_the_configured_names_close_to_it(
    pipe: Pipeline,
) -> None:
    # review s14 operator 10: the 404 named neither the configured systems nor the near match
    event = http_event("POST", "/v1/admin/systems/tradedesk/backfill", iam=True,
                       path_parameters={"system": "tradedesk"})  # fmt: skip
    answer = invoke(pipe.admin, event)
    assert answer["statusCode"] == 404
    assert "did you mean trade_desk?" in answer["body"]
    assert "configured: braze, " in answer["body"]


def test_a_backfill_retried_by_the_stream_records_the_identities_its_job_carries(
    pipe: Pipeline, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Given meta added after a person opted out, and its backfill's event resolved
    opted_out_before(pipe, monkeypatch, tmp_path, "meta")
    request_id = backfill(pipe, "meta")["request_id"]
    batch = pipe.event_records()
    assert pipe.resolve(batch) == {"batchItemFailures": []}
    assert resolution(pipe, request_id)["identities"] == 1
    # When the batch failed after the job and its marks, before its record (another event's
    # error), and the stream delivers the event again: its own marks now name its job
    pipe.aws.dynamodb.delete_item(TableName=pipe.aws.table_name, Key={
        "pk": {"S": keys.request_pk(request_id)}, "sk": {"S": keys.RESOLUTION_SK}})  # fmt: skip
    assert pipe.resolve(batch) == {"batchItemFailures": []}
    # Then the record still counts the one identity the job carries (review s14 operator 7:
    # it said 0 identities in 1 job)
    record = resolution(pipe, request_id)
    assert (record["jobs_total"], record["identities"]) == (1, 1)


def test_a_backfills_status_shows_its_job_and_receipt(
    pipe: Pipeline, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Given meta added after a person opted out, and its backfill run (review s14 operator 1:
    # its status read "completed, 0 of 0" whatever happened to its job)
    opted_out_before(pipe, monkeypatch, tmp_path, "meta")
    request_id = backfill(pipe, "meta")["request_id"]
    (record,) = run_chain(pipe, request_id)

    def detail() -> dict[str, Any]:
        event = http_event("GET", f"/v1/admin/requests/{request_id}", iam=True,
                           path_parameters={"request_id": request_id})  # fmt: skip
        answer = invoke(pipe.admin, event)
        assert answer["statusCode"] == 200, answer["body"]
        found: dict[str, Any] = json_body(answer)
        return found

    # Then, before meta answers, the operator's view lists the job, pending, and the step
    # is processing
    shown = detail()
    (job,) = shown["jobs"]
    assert job["job_id"] == f"{record['job_request_id']}:meta" and job["status"] == "pending"
    assert (shown["status"], shown["systems_total"], shown["systems_done"]) == ("processing", 1, 0)
    # ... and once meta answered, done with its receipt
    work(pipe, FULL, "meta", Vendor())
    shown = detail()
    (job,) = shown["jobs"]
    assert job["status"] == "done" and job["receipt"]
    assert (shown["status"], shown["systems_done"], shown["systems_failed"]) == ("completed", 1, 0)


def test_a_refused_backfill_job_shows_in_its_status_its_job_request_and_the_range_export(
    pipe: Pipeline, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Given meta added after a person opted out, and meta refusing the backfill's job for good
    opted_out_before(pipe, monkeypatch, tmp_path, "meta")
    request_id = backfill(pipe, "meta")["request_id"]
    (record,) = run_chain(pipe, request_id)
    work(pipe, FULL, "meta", Vendor(refuse=True))
    job_request = record["job_request_id"]

    def get(path_id: str) -> dict[str, Any]:
        event = http_event("GET", f"/v1/admin/requests/{path_id}", iam=True,
                           path_parameters={"request_id": path_id})  # fmt: skip
        answer = invoke(pipe.admin, event)
        assert answer["statusCode"] == 200, answer["body"]
        found: dict[str, Any] = json_body(answer)
        return found

    # Then the backfill's status is failed, naming the refused job and its receipt (review
    # s14 operator 1: it read "completed, 0 of 0")
    shown = get(request_id)
    assert (shown["status"], shown["systems_total"], shown["systems_failed"]) == ("failed", 1, 1)
    (job,) = shown["jobs"]
    assert job["status"] == "failed" and job["receipt"]["http_status"] == 400
    # ... the job's own request id opens (it answered 422) and names the backfill
    opened = get(job_request)
    assert opened["made_by"] == request_id and opened["status"] == "failed"
    assert [j["job_id"] for j in opened["jobs"]] == [f"{job_request}:meta"]
    # ... and the range export of the day holds the job's record under the backfill
    day = shown["received_at"][:10]
    export = invoke(pipe.admin, http_event("POST", "/v1/admin/exports/range",
                                           {"from": day, "to": day}, iam=True))  # fmt: skip
    records = json_body(export)["records"]
    (exported,) = [r for r in records if r["record"] == "job" and "~" in r["request_id"]]
    assert exported["job_id"] == f"{job_request}:meta" and exported["status"] == "failed"
    assert exported["made_by"] == request_id
    (step,) = [r for r in records if r["record"] == "request" and r["request_id"] == request_id]
    assert (step["status"], step["systems_total"], step["systems_failed"]) == ("failed", 1, 1)


def test_a_backfill_job_left_open_by_its_systems_retirement_is_no_longer_owed(
    pipe: Pipeline, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Given meta added after a person opted out, backfilled, and retired (its item as the
    # retire route writes it) before it answered the backfill's job
    opted_out_before(pipe, monkeypatch, tmp_path, "meta")
    request_id = backfill(pipe, "meta")["request_id"]
    run_chain(pipe, request_id)
    retirement = {"pk": keys.RETIRED_PK, "sk": "meta", "kind": "retirement", "system": "meta",
                  "retired_at": iso(datetime.now(UTC)), "retired_by": "op", "reason": "ended",
                  "event_id": "e"}  # fmt: skip
    pipe.aws.dynamodb.put_item(TableName=pipe.aws.table_name, Item=serialize(retirement))
    # When the operator reads the backfill's status and the day's range export
    event = http_event("GET", f"/v1/admin/requests/{request_id}", iam=True,
                       path_parameters={"request_id": request_id})  # fmt: skip
    shown = json_body(invoke(pipe.admin, event))
    day = shown["received_at"][:10]
    export = invoke(pipe.admin, http_event("POST", "/v1/admin/exports/range",
                                           {"from": day, "to": day}, iam=True))  # fmt: skip
    (step,) = [r for r in json_body(export)["records"]
               if r["record"] == "request" and r["request_id"] == request_id]  # fmt: skip
    # Then both read the step completed, its job retired and counted in neither count
    for found in (shown, step):
        assert (found["status"], found["systems_total"], found.get("systems_retired")) == (
            "completed", 0, 1)  # fmt: skip
    (job,) = shown["jobs"]
    assert (job["status"], job["retired"]["reason"]) == ("pending", "ended")


def identity_export(pipe: Pipeline, email: str) -> list[dict[str, Any]]:
    event = http_event("POST", "/v1/admin/exports/identity", {"type": "email", "value": email},
                       iam=True)  # fmt: skip
    answer = invoke(pipe.admin, event)
    assert answer["statusCode"] == 200, answer["body"]
    body = json_body(answer)
    assert body["cursor"] is None
    records: list[dict[str, Any]] = body["records"]
    return records


def test_an_identity_export_holds_the_job_record_of_a_backfill_job_its_delivery_names(
    pipe: Pipeline, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Given meta added after a person opted out, its backfill delivered
    opted_out_before(pipe, monkeypatch, tmp_path, "meta", work_others=True)
    request_id = backfill(pipe, "meta")["request_id"]
    (record,) = run_chain(pipe, request_id)
    work(pipe, FULL, "meta", Vendor())
    job_id = f"{record['job_request_id']}:meta"
    # When counsel exports the person
    records = identity_export(pipe, EMAIL)
    # Then the meta delivery record names the backfill's job, and the file holds that job's
    # record with its completion time (review s14 operator 1: only the opt-out's own jobs)
    (meta,) = [r for r in records if r["record"] == "delivery" and r["system"] == "meta"]
    assert set(meta["jobs"].values()) == {job_id}
    (job,) = [r for r in records if r["record"] == "job" and r["job_id"] == job_id]
    assert job["status"] == "done" and job["completed_at"] and job["receipt"]
    assert job["request_id"] == record["job_request_id"] and job["made_by"] == request_id
    # ... each job once: the opt-out's own jobs come with its request, not a second time
    jobs = [r["job_id"] for r in records if r["record"] == "job"]
    assert len(jobs) == len(set(jobs)) == 6


def deliver(pipe: Pipeline, message: dict[str, Any], vendor: Vendor) -> None:
    """One message of a jobs queue, delivered by the worker's domain service to `vendor`."""
    delivery = DeliveryService(
        Table(pipe.aws.dynamodb, pipe.aws.table_name), load_systems(FULL),
        WorkerSettings(table_name=pipe.aws.table_name), lambda _system: vendor,  # type: ignore[arg-type,return-value]
    )  # fmt: skip
    delivery.deliver([Received("m0", json.dumps(message), 1)], lambda message, delay: None)


def metrics(pipe: Pipeline, year: str) -> dict[str, Any]:
    event = http_event("GET", "/v1/admin/metrics", iam=True)
    event["queryStringParameters"] = {"year": year}
    event["rawQueryString"] = f"year={year}"
    answer = invoke(pipe.admin, event)
    assert answer["statusCode"] == 200, answer["body"]
    found: dict[str, Any] = json_body(answer)
    return found


def test_the_years_figures_count_each_backfill_its_identities_and_its_jobs_outcomes(
    pipe: Pipeline, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Given meta added after two people opted out, and backfilled in two steps (one identity
    # each), one job delivered and the other refused for good
    opted_out_before(pipe, monkeypatch, tmp_path, "meta", (EMAIL, "second.backfill@example.com"))
    monkeypatch.setattr(service, "BACKFILL_IDENTITIES", 1)
    request_id = backfill(pipe, "meta")["request_id"]
    chain = run_chain(pipe, request_id)
    assert [r["jobs_total"] for r in chain if r["jobs_total"]] == [1, 1]
    messages = pipe.drain("meta")
    for message, vendor in zip(messages, (Vendor(), Vendor(refuse=True)), strict=True):
        deliver(pipe, message, vendor)
    # When the operator asks for the year's figures (review s14 operator 1: no line for it)
    year = str(datetime.now(UTC).year)
    found = metrics(pipe, year)
    # Then meta has one backfill, the two identities it sent, one job done and one failed
    assert found["backfills"] == {"meta": {
        "backfills": 1, "resends": 0, "unfinished": 0, "identities": 2, "in_flight_earlier": 0,
        "jobs_done": 1, "jobs_failed": 1, "jobs_open": 0, "jobs_retired": 0}}  # fmt: skip
    # ... from the backfill's record, which names each step (a line item per step beside it,
    # folded in by records_since) and says it finished
    (record,) = records_since(Table(pipe.aws.dynamodb, pipe.aws.table_name), int(year))
    assert record["backfill_id"] == request_id and record["sk"] == f"{year}#{request_id}"
    assert len(record["steps"]) == len(chain) and record["finished_at"]
    assert len(pipe.items("BACKFILL")) == 1 + len(chain)


def test_a_second_backfill_while_the_first_ones_job_is_open_counts_and_names_it(
    pipe: Pipeline, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Given meta added after a person opted out, and backfilled: its job not answered yet
    opted_out_before(pipe, monkeypatch, tmp_path, "meta")
    first = backfill(pipe, "meta")["request_id"]
    run_chain(pipe, first)
    (message,) = pipe.drain("meta")
    # When the operator backfills meta again (review s14 operator 6: it said nothing, and
    # counted the person as carried)
    second = backfill(pipe, "meta")
    (record,) = run_chain(pipe, second["request_id"])
    # Then the answer names the open backfill, and the step counts the person apart, naming it
    assert second["open_backfills"] == [first]
    assert (record["jobs_total"], record["in_flight_earlier"]) == (0, 1)
    assert record["earlier_backfills"] == [first]
    # ... a --resend now warns the same way, and sends the person again, counted apart too
    resend = backfill(pipe, "meta", resend=True)
    assert resend["open_backfills"] == [first]
    (again,) = run_chain(pipe, resend["request_id"])
    assert (again["jobs_total"], again["identities"], again["in_flight_earlier"]) == (1, 1, 1)
    assert again["earlier_backfills"] == [first]
    year = str(datetime.now(UTC).year)
    row = metrics(pipe, year)["backfills"]["meta"]
    assert (row["backfills"], row["resends"], row["in_flight_earlier"]) == (3, 1, 2)
    # ... and once every job has its answer, a later backfill names none
    deliver(pipe, message, Vendor())
    for later in pipe.drain("meta"):
        deliver(pipe, later, Vendor())
    last = backfill(pipe, "meta")
    assert last["open_backfills"] is None
    (quiet,) = run_chain(pipe, last["request_id"])
    assert "in_flight_earlier" not in quiet and "earlier_backfills" not in quiet


def put_backfill(table: Table, backfill_id: str, jobs: dict[str, tuple[str, str]]) -> None:
    """A finished backfill of meta (its record), and its step jobs: step -> (status, made)."""
    steps = {step: {"job_request_id": f"{backfill_id}~{step}", "identities": 1}
             for step in jobs}  # fmt: skip
    items = [
        {
            "pk": keys.BACKFILL_PK,
            "sk": f"2026#{backfill_id}",
            "kind": "backfill",
            "backfill_id": backfill_id,
            "system": "meta",
            "resend": 0,
            "steps": steps,
            "started_at": "2026-11-01T00:00:00Z",
            "finished_at": "2026-11-01T00:01:00Z",
        }
    ]
    items += [{"pk": keys.request_pk(f"{backfill_id}~{step}"), "sk": keys.job_sk("meta"),
               "system": "meta", "status": status, "created_at": made}
              for step, (status, made) in jobs.items()]  # fmt: skip
    for item in items:
        table.client.put_item(TableName=table.name, Item=serialize(item))


def test_a_backfill_job_its_system_retired_is_counted_neither_open_nor_failed(
    table: Table,
) -> None:
    # Given meta retired on 1 November at noon, with an earlier backfill's jobs made before it
    # (one pending, one failed, one done) and a later backfill's job made once the name was
    # added back (pending)
    table.client.put_item(TableName=table.name, Item=serialize({
        "pk": keys.RETIRED_PK, "sk": "meta", "system": "meta",
        "retired_at": "2026-11-01T12:00:00Z"}))  # fmt: skip
    before, after = "2026-11-01T10:00:00Z", "2026-11-02T10:00:00Z"
    put_backfill(table, "b-old", {"a1": ("pending", before), "a2": ("failed", before),
                                  "a3": ("done", before)})  # fmt: skip
    put_backfill(table, "b-new", {"c1": ("pending", after)})
    # When the year's figures are read, and a third backfill asks which are still open
    row = year_figures(table, 2026)["meta"]
    earlier = open_earlier(table, "meta", 2026, "b-third")
    # Then the jobs the retirement left open are counted apart, in neither open nor failed,
    # the done one stays done, and the later backfill's job (the name added back) is open
    assert earlier == ["b-new"]
    assert {k: row.get(k) for k in ("jobs_done", "jobs_failed", "jobs_open", "jobs_retired")} == {
        "jobs_done": 1, "jobs_failed": 0, "jobs_open": 1, "jobs_retired": 2}  # fmt: skip
    # ... and `optout status` on a retired job reads it no longer owed, the later one open
    admin = AdminService(table, b"k" * 32)
    old = admin.request_detail("b-old~a1")
    assert (old["status"], old["systems_total"], old["systems_retired"]) == ("completed", 0, 1)
    assert old["jobs"][0]["status"] == "pending"  # as stored
    assert old["jobs"][0]["retired"]["retired_at"] == "2026-11-01T12:00:00Z"
    new = admin.request_detail("b-new~c1")
    assert (new["status"], new["systems_total"], "retired" in new["jobs"][0]) == (
        "processing", 1, False)  # fmt: skip


NO_FORM = "+news@gmail.com"  # Google's gmail rule leaves it no local part: never sent


@dataclass
class NoFormBeside:
    """Google's connector on a job of several people's emails (`Connector._naming_left_out`):
    the address it has no form of is not sent, the others are; the email type reads sent."""

    received: list[Any] = field(default_factory=list)

    def deliver(self, jobs: list[Any]) -> list[Outcome]:
        self.received.extend(jobs)
        return [Outcome(j.job_id, "done", 200, None, ("email",), note="email (some values) "
                        "not sent: no Google form",
                        unformed_at=tuple(n for n, i in enumerate(j.identifiers)
                                          if i.value == NO_FORM)) for j in jobs]  # fmt: skip


def test_a_backfill_job_that_sent_another_persons_email_is_no_proof_for_this_one(
    pipe: Pipeline, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Given two people opted out before google_ads was added: one by an email Google has no
    # form of, one by an email it takes; a backfill's one job carries both
    opted_out_before(pipe, monkeypatch, tmp_path, "google_ads", (NO_FORM, EMAIL), True)
    started = backfill(pipe, "google_ads")
    (record,) = run_chain(pipe, started["request_id"])
    (message,) = pipe.drain("googleads")
    (job,) = [i for i in pipe.items(keys.request_pk(record["job_request_id"]))
              if i["sk"] == "JOB#google_ads"]  # fmt: skip
    assert sorted(i["value"] for i in job["identifiers"]) == sorted([NO_FORM, EMAIL])
    # When Google takes the job, sending the one email and not the other (review s28 P1)
    vendor = NoFormBeside()
    delivery = DeliveryService(
        Table(pipe.aws.dynamodb, pipe.aws.table_name), load_systems(FULL),
        WorkerSettings(table_name=pipe.aws.table_name), lambda _system: vendor,  # type: ignore[arg-type,return-value]
    )  # fmt: skip
    delivery.deliver([Received("m0", json.dumps(message), 1)], lambda message, delay: None)
    # Then the receipt names the identity never sent, by its keyed hash, never its value
    (done,) = [i for i in pipe.items(keys.request_pk(record["job_request_id"]))
               if i["sk"] == "JOB#google_ads"]  # fmt: skip
    unsent = keys.identity_pk("email", _key_of(job, NO_FORM))
    assert done["status"] == "done" and done["receipt"]["identities_unformed"] == [unsent]
    assert NO_FORM not in json.dumps(done["receipt"])
    # ... its mark no longer names that job, the other person's still does
    marks = {i["pk"]: i for i in pipe.items("ID#email#") if i["sk"] == "DELIVERY#google_ads"}
    assert not marks[unsent].get("inflight")
    (sent_pk,) = set(marks) - {unsent}
    assert marks[sent_pk]["inflight"] and marks[sent_pk]["job_share"] == job["job_id"]
    # ... and stamped as a "no such person" answer, in that same write (review s28 p1 F4)
    assert marks[unsent]["no_record_job"] == job["job_id"] and marks[unsent]["no_record_at"]
    assert "no_record_at" not in marks[sent_pk]
    # And when that person opts out again, the backfill's job is no proof Google ever had that
    # email (before P1, it was cited as done), and Google is not asked again within the quiet
    # period (before F4, a job of this request's own that could only answer the same): the
    # request records that answer, and reads in part for Google, as its own job's would
    again = pipe.post("/v1/opt-out", {"email": NO_FORM})["request_id"]
    pipe.resolve()
    assert pipe.drain("googleads") == []
    record = resolution(pipe, again)
    assert "google_ads" not in (record.get("covered") or {})
    assert [e["job_id"] for e in record["not_asked"]["google_ads"]] == [job["job_id"]]
    items = pipe.items(keys.request_pk(again))
    table = Table(pipe.aws.dynamodb, pipe.aws.table_name)
    covering = batch_get(table, covering_keys(items) + quiet_keys(items), consistent=True)
    google = next(p for p in proofs(items, covering) if p.system == "google_ads")
    assert (google.settled, google.in_part, google.in_part_publicly) == (True, True, True)
    (note,) = [q["note"] for q in not_asked(items, covering) if q["system"] == "google_ads"]
    assert note.startswith(f"not asked: job {job['job_id']} did not send this identifier")


def _key_of(job: dict[str, Any], value: str) -> str:
    return next(str(i["key"]) for i in job["identifiers"] if i.get("value") == value)


def test_a_backfill_sends_an_undated_carried_opt_out_newer_than_the_persons_opt_in(
    pipe: Pipeline, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Review s30 trust F1 (t2b): an edge written before `named_at`, met by the first backfill
    after the deploy, counted as older than the person's opt-in: the new system was never told
    an opt-out newer than it (a backfill runs once). Backfills weigh edges as events do."""
    victim, device, phone = "victim@example.com", "dev-victim-aaaaaaaaaaa", "dev-victim-phone-cc"
    left_out(pipe, monkeypatch, tmp_path, "meta")  # meta is added later
    pipe.post(
        "/v1/consent",
        {"device_id": device, "identity_token": token_for(email=victim, device_id=device)},
    )
    pipe.resolve()
    pipe.post(
        "/v1/consent",
        {
            "device_id": device,
            "opt_out": {"share": False},
            "confirm_opt_in": True,
            "identity_token": token_for(email=victim, device_id=device),
        },
    )
    pipe.resolve()
    # Then, on their phone, they name the email (limiting profiling), and later opt out of share
    pipe.post("/v1/consent", {"device_id": phone, "identity": {"email": victim},
                              "opt_out": {"profiling": True}})  # fmt: skip
    pipe.resolve()
    pipe.post("/v1/consent", {"device_id": phone, "opt_out": {"share": True}})
    pipe.resolve()
    pipe.drain_all()
    for edge in [i for i in pipe.aws.items() if "carried" in i]:  # as written before session 30
        pipe.aws.dynamodb.update_item(
            TableName=pipe.aws.table_name,
            Key={"pk": {"S": edge["pk"]}, "sk": {"S": edge["sk"]}},
            UpdateExpression="REMOVE named_at, carried_at",
        )
    deploy(pipe, monkeypatch, FULL)
    run_chain(pipe, backfill(pipe, "meta")["request_id"])
    jobs = [i for i in pipe.aws.items() if i["sk"] == "JOB#meta"]
    assert any(victim in json.dumps(job["identifiers"]) for job in jobs)
