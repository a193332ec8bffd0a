"""Review s31 union: a request's further jobs (`<request>~<hex>:<system>`) are never lost,
miscounted or cited as another request's: a run that stored them but died before its flush,
then a re-run grouped otherwise (F1); a denial after one of them confirmed (F2); a replay's
reminder (F3); the identity export (F4)."""

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from optout.admin import AdminService
from optout.errors import Conflict
from optout.ops import keys as ops_keys
from optout.ops.denial import DenialService
from optout.resolver.outbox import Outbox
from optout.store.proof import marked_jobs
from optout.store.table import Table
from optout.sweep import Sweeper, SweepSettings
from tests.conftest import Aws
from tests.integration.test_resolver_delivery import SYSTEMS, Vendor, deliver, work
from tests.integration.test_resolver_replay import replay
from tests.support.http_events import http_event, json_body
from tests.support.lambdas import invoke
from tests.support.pipeline import Pipeline, build_pipeline

EMAIL = "split-review@example.com"
PHONE = "+14155550177"  # someone else's: nothing verified links it to the email


@pytest.fixture
def pipe(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> Iterator[Pipeline]:
    yield build_pipeline(aws, monkeypatch)


def webhook_jobs(pipe: Pipeline, request_id: str) -> dict[str, dict[str, Any]]:
    return {str(j["job_id"]): j for j in pipe.items(f"REQ#{request_id}")
            if j["sk"] == "JOB#webhook"}  # fmt: skip


def phone_out_of_profiling(pipe: Pipeline) -> None:
    pipe.post("/v1/opt-out", {"phone": PHONE, "purposes": ["profiling"]})
    pipe.resolve()
    for system in SYSTEMS.systems:
        work(pipe, system.queue_key, Vendor())


def form_naming_both(pipe: Pipeline) -> str:
    request = pipe.post("/v1/opt-out", {"email": EMAIL, "phone": PHONE, "purposes": ["sale"]})
    return str(request["request_id"])


def run_unflushed(pipe: Pipeline, request_id: str) -> str:
    """A resolver run that stores the request's jobs and marks, then dies before its flush (no
    message, no STATE, no RESOLUTION): the phone's further webhook job's id."""
    (event,) = [i for i in pipe.partition(f"REQ#{request_id}") if i["sk"] == "EVENT"]
    pipe.resolver.resolver().process(dict(event), Outbox())
    phone_jobs = [str(j["job_id"]) for j in pipe.items("REQ#")
                  if j["sk"] == "JOB#webhook" and str(j["job_id"]).startswith(f"{request_id}~")
                  and any(i["type"] == "phone" for i in j["identifiers"])]  # fmt: skip
    (further,) = phone_jobs
    return further


def resolution_of(pipe: Pipeline, request_id: str) -> dict[str, Any]:
    (resolution,) = [i for i in pipe.partition(f"REQ#{request_id}") if i["sk"] == "RESOLUTION"]
    return resolution


def test_a_rerun_grouped_otherwise_sends_and_names_the_first_runs_further_job(
    pipe: Pipeline,
) -> None:
    phone_out_of_profiling(pipe)
    request_id = form_naming_both(pipe)
    batch = pipe.event_records()
    further = run_unflushed(pipe, request_id)
    # Meanwhile the email's person opts out of profiling too: the re-run sees one purpose set
    pipe.post("/v1/opt-out", {"email": EMAIL, "purposes": ["profiling"]})
    pipe.resolve()
    for system in SYSTEMS.systems:
        work(pipe, system.queue_key, Vendor())
    pipe.resolve(batch)  # the stream's retry of the request
    messages = pipe.drain("webhook")
    sent = [m["job_id"] for m in messages]
    assert further in sent
    assert f"{request_id}:webhook" in sent
    resolution = resolution_of(pipe, request_id)
    assert resolution["split_jobs"] == {"webhook": [further]}
    assert further not in (resolution.get("covered") or {}).get("webhook", [])
    # Every queue worked: the request is complete, and the phone's job is done
    deliver(pipe, messages, Vendor())
    for system in SYSTEMS.systems:
        work(pipe, system.queue_key, Vendor())
    assert webhook_jobs(pipe, further.rsplit(":", 1)[0])[further]["status"] == "done"
    later = datetime.now(UTC) + timedelta(days=2)
    status = pipe.get_at(later, f"/v1/requests/{request_id}", request_id=request_id)
    assert status["status"] == "completed", status


def test_the_sweep_finds_a_further_job_no_resolution_names(pipe: Pipeline) -> None:
    phone_out_of_profiling(pipe)
    request_id = form_naming_both(pipe)
    further = run_unflushed(pipe, request_id)
    pipe.drain_all()
    table = Table(pipe.aws.dynamodb, pipe.aws.table_name)
    later = datetime.now(UTC) + timedelta(hours=2, minutes=20)
    report = Sweeper(table, SweepSettings(), clock=lambda: later).sweep()
    assert further in report.stuck_jobs
    assert report.stuck_jobs.count(further) == 1
    # ... and the operator view lists it once (the RESOLUTION, once written, names it)
    pipe.resolve()
    pipe.drain_all()
    items = [i for i in pipe.partition(f"REQ#{request_id}")]
    assert marked_jobs(table, items) == []  # not a backfill's or a flush's rederived job
    detail = AdminService(table, b"k" * 32).request_detail(request_id)
    (view,) = [s for s in detail["systems"] if s["system"] == "webhook"]
    assert [j["job_id"] for j in view["split_jobs"]] == [further]


def test_a_denial_after_one_of_a_systems_jobs_confirmed_is_refused(pipe: Pipeline) -> None:
    phone_out_of_profiling(pipe)
    request_id = form_naming_both(pipe)
    pipe.resolve()
    messages = pipe.drain("webhook")
    # The webhook confirms the email's job (the request's own); its further job is pending
    deliver(pipe, [m for m in messages if m["job_id"] == f"{request_id}:webhook"], Vendor())
    table = Table(pipe.aws.dynamodb, pipe.aws.table_name)
    with pytest.raises(Conflict):
        DenialService(table).deny(request_id, "suspected_fraud", "Looks automated",
                                  "arn:test", datetime.now(UTC))  # fmt: skip


def test_a_denial_after_only_a_further_job_confirmed_is_refused(pipe: Pipeline) -> None:
    phone_out_of_profiling(pipe)
    request_id = form_naming_both(pipe)
    pipe.resolve()
    messages = pipe.drain("webhook")
    deliver(pipe, [m for m in messages if "~" in m["job_id"]], Vendor())
    table = Table(pipe.aws.dynamodb, pipe.aws.table_name)
    with pytest.raises(Conflict):
        DenialService(table).deny(request_id, "suspected_fraud", "Looks automated",
                                  "arn:test", datetime.now(UTC))  # fmt: skip


def test_a_replayed_further_job_reminds_its_request(pipe: Pipeline) -> None:
    phone_out_of_profiling(pipe)
    request_id = form_naming_both(pipe)
    pipe.resolve()
    messages = pipe.drain("webhook")
    deliver(pipe, [m for m in messages if "~" not in m["job_id"]], Vendor())
    deliver(pipe, [m for m in messages if "~" in m["job_id"]], Vendor(refuse=True))
    before = {str(i["sk"]) for i in pipe.items(ops_keys.WATCH_PK)}
    replay(pipe, "webhook")
    pipe.resolve()
    after = [i for i in pipe.items(ops_keys.WATCH_PK) if str(i["sk"]) not in before]
    assert {i.get("request_id") for i in after} == {request_id}


def test_the_identity_export_lists_a_further_job_once(pipe: Pipeline) -> None:
    phone_out_of_profiling(pipe)
    request_id = form_naming_both(pipe)
    pipe.resolve()
    for system in SYSTEMS.systems:
        work(pipe, system.queue_key, Vendor())
    event = http_event("POST", "/v1/admin/exports/identity", {"type": "phone", "value": PHONE},
                       iam=True)  # fmt: skip
    answer = invoke(pipe.admin, event)
    assert answer["statusCode"] == 200, answer["body"]
    records = json_body(answer)["records"]
    assert request_id in {r.get("request_id") for r in records if r["record"] == "request"}
    further = [r for r in records if r["record"] == "job" and "~" in str(r.get("job_id"))]
    assert len(further) == 1


def test_jobs_queued_counts_each_job_of_a_split_request(
    pipe: Pipeline, capsys: pytest.CaptureFixture[str]
) -> None:
    phone_out_of_profiling(pipe)
    request_id = form_naming_both(pipe)
    capsys.readouterr()
    pipe.resolve()
    metrics = [json.loads(line) for line in capsys.readouterr().out.splitlines()
               if line.startswith("{") and '"JobsQueued"' in line]  # fmt: skip
    (queued,) = [m["JobsQueued"] for m in metrics]
    jobs = [j for j in pipe.items("REQ#") if str(j["sk"]).startswith("JOB#")
            and str(j["job_id"]).startswith(request_id)]  # fmt: skip
    assert len(jobs) == 5  # four systems, two jobs at the webhook
    assert queued == [float(len(jobs))]
