"""Further jobs an earlier run of a request made (`<request>~<hex>`, named by its split marker)
stay the request's whatever a re-run finds (review s31 union, residuals left by unionfix31):
a denial that lands while that run made only further jobs (they live under request ids of
their own, so "has it a job?" must read the split marker, or the re-run stops as "denied,
nothing asked" while the sweep still sends them); and a re-run that meets no mark naming one
(an opt-in since) names it anyway, so the status does not read `completed` while it is
unanswered."""

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from optout.ops.denial import DenialService
from optout.resolver.outbox import Outbox
from optout.resolver.service import Resolver
from optout.store import keys
from optout.store.table import Table
from optout.sweep import Sweeper, SweepSettings
from tests.conftest import Aws
from tests.integration.test_resolver_delivery import SYSTEMS, Vendor, deliver, work
from tests.support.http_events import http_event, json_body
from tests.support.lambdas import invoke
from tests.support.pipeline import Pipeline, build_pipeline
from tests.support.tokens import token_for

EMAIL = "split-denial@example.com"
PHONE = "+14155550178"  # someone else's: nothing verified links it to the email


@pytest.fixture
def pipe(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> Iterator[Pipeline]:
    yield build_pipeline(aws, monkeypatch)


def work_all(pipe: Pipeline) -> None:
    for system in SYSTEMS.systems:
        work(pipe, system.queue_key, Vendor())


def only_further_jobs_then_denied(pipe: Pipeline) -> tuple[str, list[dict[str, Any]], set[str]]:
    """Given an email out of profiling and sale and a phone out of share (every job done), a
    form naming both asks sale: the email's set (first in order, the request's own) needs
    nothing anywhere, the phone's set needs sale, so a run makes only further jobs. That run
    dies before its flush; then a second form from the same two (its registers now name that
    one) resolves, and an operator denies the first request. Returns its id, its stream
    record and its further jobs' request ids."""
    pipe.post("/v1/opt-out", {"email": EMAIL, "purposes": ["profiling", "sale"]})
    pipe.resolve()
    pipe.post("/v1/opt-out", {"phone": PHONE, "purposes": ["share"]})
    pipe.resolve()
    work_all(pipe)
    request = pipe.post("/v1/opt-out", {"email": EMAIL, "phone": PHONE, "purposes": ["sale"]})
    request_id = str(request["request_id"])
    batch = pipe.event_records()
    (event,) = [i for i in pipe.partition(keys.request_pk(request_id)) if i["sk"] == "EVENT"]
    pipe.resolver.resolver().process(dict(event), Outbox())  # stored, never flushed
    partition = pipe.partition(keys.request_pk(request_id))
    assert not [i for i in partition if str(i["sk"]).startswith(keys.JOB_PREFIX)]
    further = {str(j["request_id"]) for j in pipe.items("REQ#")
               if str(j["sk"]).startswith(keys.JOB_PREFIX)
               and str(j["request_id"]).startswith(f"{request_id}~")}  # fmt: skip
    assert further  # the scenario: only further jobs
    pipe.post("/v1/opt-out", {"email": EMAIL, "phone": PHONE, "purposes": ["sale"]})
    pipe.resolve()
    table = Table(pipe.aws.dynamodb, pipe.aws.table_name)
    DenialService(table).deny(request_id, "suspected_fraud", "Looks automated", "arn:test",
                              datetime.now(UTC))  # fmt: skip
    return request_id, batch, further


def test_a_rerun_after_a_denial_finishes_the_further_jobs_it_began(pipe: Pipeline) -> None:
    request_id, batch, further = only_further_jobs_then_denied(pipe)
    # When the stream retries the request
    pipe.resolve(batch)
    # Then its record is not "denied, no system asked" beside jobs of its own: the run that
    # began them is finished as it began (as one that made its own job), and names them
    (resolution,) = [i for i in pipe.partition(keys.request_pk(request_id))
                     if i["sk"] == keys.RESOLUTION_SK]  # fmt: skip
    assert not resolution.get("denied"), resolution
    named = {str(j).rsplit(":", 1)[0] for jobs in (resolution.get("split_jobs") or {}).values()
             for j in jobs}  # fmt: skip
    assert named == further


def test_the_sweep_does_not_take_a_denied_record_beside_further_jobs_as_resolved(
    pipe: Pipeline,
) -> None:
    request_id, _, _ = only_further_jobs_then_denied(pipe)
    # Given the record of a run that stopped at the denial, landed before the record of the
    # run that made the further jobs (whose flush then failed for good: review s22 diff D4)
    table = Table(pipe.aws.dynamodb, pipe.aws.table_name)
    table.client.put_item(TableName=table.name, Item={
        "pk": {"S": keys.request_pk(request_id)}, "sk": {"S": keys.RESOLUTION_SK},
        "kind": {"S": "resolution"}, "jobs_total": {"N": "0"}, "denied": {"BOOL": True},
    })  # fmt: skip
    pipe.drain_all()
    # When the sweep checks it
    later = datetime.now(UTC) + timedelta(minutes=20)
    report = Sweeper(table, SweepSettings(), clock=lambda: later).sweep()
    # Then the request counts as unresolved (its event is run again), as with a job of its own
    assert request_id in report.unresolved


DEVICE = "dev-split-optin-aaaaaaa"  # the form's browser: asserts the email, not linked to it


def test_a_rerun_names_an_earlier_runs_further_job_no_mark_names_now(pipe: Pipeline) -> None:
    """Union review residual: a run made the browser's further job, died before its flush, and
    the browser opted back in before the re-run; the re-run meets no mark naming that job, yet
    it is the request's: its status must not read `completed` while it is unanswered."""
    # Given the email out of share and the browser out of targeted advertising (jobs done),
    # then a form from that browser naming the email, asking sale: the email's set (sale,
    # share, and the browser's carried targeted advertising) is the request's own job, the
    # browser's (sale, targeted advertising) a further one
    pipe.post("/v1/opt-out", {"email": EMAIL, "purposes": ["share"]})
    pipe.post("/v1/consent", {"device_id": DEVICE, "opt_out": {"targeted_advertising": True}})
    pipe.resolve()
    work_all(pipe)
    request = pipe.post("/v1/opt-out", {"email": EMAIL, "device_id": DEVICE, "purposes": ["sale"]})
    request_id = str(request["request_id"])
    batch = pipe.event_records()
    (event,) = [i for i in pipe.partition(keys.request_pk(request_id)) if i["sk"] == "EVENT"]
    pipe.resolver.resolver().process(dict(event), Outbox())  # stored, never flushed
    webhook = {str(j["job_id"]): j for j in pipe.items("REQ#") if j["sk"] == "JOB#webhook"}
    (further,) = [job for job in webhook if job.startswith(f"{request_id}~")]
    assert [i["type"] for i in webhook[further]["identifiers"]] == ["device_id"]
    # ... the browser confirms an opt-in to both, then the stream retries the request
    back_in = {"sale": False, "targeted_advertising": False}
    pipe.post("/v1/consent", {"device_id": DEVICE, "opt_out": back_in, "confirm_opt_in": True})
    pipe.resolve()
    pipe.resolve(batch)
    # Then its record names that job with its own, and the status waits for its answer
    (resolution,) = [i for i in pipe.partition(keys.request_pk(request_id))
                     if i["sk"] == keys.RESOLUTION_SK]  # fmt: skip
    assert further in (resolution.get("split_jobs") or {}).get("webhook", []), resolution
    # ... every job answered but that one (the email's jobs that carried only the browser's
    # targeted advertising are its own and pending, unsent since: answered here too)
    pipe.drain_all()
    for system in SYSTEMS.systems:
        owed = [{"job_id": str(j["job_id"]), "request_id": request_id, "system": system.name}
                for j in pipe.partition(keys.request_pk(request_id))
                if j["sk"] == keys.job_sk(system.name) and j["status"] == "pending"]  # fmt: skip
        deliver(pipe, owed, Vendor())
    jobs = {str(j["job_id"]): j for j in pipe.items("REQ#") if str(j["sk"]).startswith("JOB#")}
    assert jobs[further]["status"] == "pending"
    assert jobs[f"{request_id}:webhook"]["status"] == "done"
    later = datetime.now(UTC) + timedelta(days=2)
    status = pipe.get_at(later, f"/v1/requests/{request_id}", request_id=request_id)
    assert status["status"] != "completed", status


OTHER = "dev-split-optin-bbbbbbb"  # the email's second browser, where it logs in


def further_job_then_every_register_replaced(
    pipe: Pipeline, opt_in: dict[str, bool]
) -> tuple[str, str, list[dict[str, Any]]]:
    """The scenario above, then the email, logged in on a second browser, confirms an opt-in
    to `opt_in` too, before the stream retries the request: no register names it any longer.
    Returns the request id, its further job's id (at webhook) and its stream record."""
    pipe.post("/v1/opt-out", {"email": EMAIL, "purposes": ["share"]})
    pipe.post("/v1/consent", {"device_id": DEVICE, "opt_out": {"targeted_advertising": True}})
    pipe.resolve()
    work_all(pipe)
    request = pipe.post("/v1/opt-out", {"email": EMAIL, "device_id": DEVICE, "purposes": ["sale"]})
    request_id = str(request["request_id"])
    batch = pipe.event_records()
    (event,) = [i for i in pipe.partition(keys.request_pk(request_id)) if i["sk"] == "EVENT"]
    pipe.resolver.resolver().process(dict(event), Outbox())  # stored, never flushed
    webhook = {str(j["job_id"]): j for j in pipe.items("REQ#") if j["sk"] == "JOB#webhook"}
    (further,) = [job for job in webhook if job.startswith(f"{request_id}~")]
    back_in = {"sale": False, "targeted_advertising": False}
    pipe.post("/v1/consent", {"device_id": DEVICE, "opt_out": back_in, "confirm_opt_in": True})
    login = token_for(email=EMAIL, device_id=OTHER)
    pipe.post("/v1/consent", {"device_id": OTHER, "opt_out": opt_in, "confirm_opt_in": True,
                              "identity_token": login})  # fmt: skip
    pipe.resolve()
    registers = [r for node in pipe.items("ID#") if node["sk"] == keys.NODE_SK
                 for r in [*(node.get("own") or {}).values(), node.get("gpc") or {}]]  # fmt: skip
    assert registers and all(r.get("req") != request_id for r in registers)  # the scenario
    pipe.drain_all()
    return request_id, further, batch


def statuses(pipe: Pipeline, request_id: str) -> tuple[str, str]:
    """The request's public and operator status, read two days on."""
    later = datetime.now(UTC) + timedelta(days=2)
    public = pipe.get_at(later, f"/v1/requests/{request_id}", request_id=request_id)
    path = f"/v1/admin/requests/{request_id}"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("optout.queries.read_at", lambda: later)
        event = http_event("GET", path, iam=True, path_parameters={"request_id": request_id})
        answer = invoke(pipe.admin, event)
    assert answer["statusCode"] == 200, answer["body"]
    return str(public["status"]), str(json_body(answer)["status"])


@pytest.mark.parametrize(
    "opt_in",
    [{"sale": False}, {"sale": False, "share": False}],
    ids=["the_email_keeps_share", "nothing_left_at_webhook"],
)
def test_a_rerun_no_register_names_still_names_and_sends_its_further_job(
    pipe: Pipeline, opt_in: dict[str, bool]
) -> None:
    """Review s32 merges F4: every identity the request named changed those choices since
    (the browser and the email opted back in), so no register names the request and the
    re-run was not seen as one; the marks of the jobs its first run made still name them."""
    request_id, further, batch = further_job_then_every_register_replaced(pipe, opt_in)
    # When the stream retries the request
    pipe.resolve(batch)
    # Then its record names the further job with its own, and the job is sent again
    (resolution,) = [i for i in pipe.partition(keys.request_pk(request_id))
                     if i["sk"] == keys.RESOLUTION_SK]  # fmt: skip
    assert further in (resolution.get("split_jobs") or {}).get("webhook", []), resolution
    assert "webhook" not in (resolution.get("carried_only") or []), resolution
    sent = pipe.drain(SYSTEMS.get("webhook").queue_key)
    assert further in [m["job_id"] for m in sent]
    # ... and, every other job of the request answered, its status waits for that one
    for system in SYSTEMS.systems:
        owed = [{"job_id": str(j["job_id"]), "request_id": request_id, "system": system.name}
                for j in pipe.partition(keys.request_pk(request_id))
                if j["sk"] == keys.job_sk(system.name) and j["status"] == "pending"]  # fmt: skip
        deliver(pipe, owed, Vendor())
    jobs = {str(j["job_id"]): j for j in pipe.items("REQ#") if str(j["sk"]).startswith("JOB#")}
    assert jobs[further]["status"] == "pending"
    assert "completed" not in statuses(pipe, request_id)
    # ... until it is answered
    deliver(pipe, [m for m in sent if m["job_id"] == further], Vendor())
    assert statuses(pipe, request_id) == ("completed", "completed")


def test_a_first_run_with_further_jobs_is_not_taken_for_a_rerun(
    pipe: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The marks that tell a re-run are written after the derivation reads them: a first run
    of a request that makes further jobs never reads the split marker (`_made_before`); its
    stream retry does."""
    read: list[str] = []
    real = Resolver._made_before

    def made_before(self: Resolver, request_id: str) -> Any:
        read.append(request_id)
        return real(self, request_id)

    monkeypatch.setattr(Resolver, "_made_before", made_before)
    pipe.post("/v1/opt-out", {"email": EMAIL, "purposes": ["share"]})
    pipe.post("/v1/consent", {"device_id": DEVICE, "opt_out": {"targeted_advertising": True}})
    pipe.resolve()
    request = pipe.post("/v1/opt-out", {"email": EMAIL, "device_id": DEVICE, "purposes": ["sale"]})
    request_id = str(request["request_id"])
    batch = pipe.event_records()
    pipe.resolve(batch)
    further = [j for j in pipe.items("REQ#") if str(j["sk"]).startswith(keys.JOB_PREFIX)
               and str(j["request_id"]).startswith(f"{request_id}~")]  # fmt: skip
    assert further and read == []
    pipe.resolve(batch)
    assert read == [request_id]
