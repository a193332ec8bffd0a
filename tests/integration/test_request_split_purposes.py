"""A request naming several unlinked people tells each identifier exactly its own cluster's
opt-outs (docs/decisions.md, "A request naming several unlinked people"): one job of the
request's per purpose set and system, `<request>:<system>` and `<request>~<hex>:<system>`, never
one job with the union of both people's states. The further job belongs to the request: its
status counts one entry per system, done only when each of that system's jobs is done; its
RESOLUTION, export and operator record name it; a stream retry finds it again (no new job);
the sweep finds it stuck; and a request naming one person makes none."""

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from optout.admin import AdminService
from optout.ops.contribution import contribution_of
from optout.ops.export import request_records
from optout.store.proof import load_with_proof
from optout.store.table import Table
from optout.sweep import Sweeper, SweepSettings
from tests.conftest import Aws
from tests.integration.test_resolver_delivery import SYSTEMS, Vendor, deliver, work
from tests.support.pipeline import Pipeline, build_pipeline

EMAIL = "split-person@example.com"
PHONE = "+14155550188"  # someone else's: nothing verified links it to the email


@pytest.fixture
def pipe(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> Iterator[Pipeline]:
    yield build_pipeline(aws, monkeypatch)


def webhook_jobs(pipe: Pipeline, request_id: str) -> dict[str, dict[str, Any]]:
    """The request's webhook jobs (its own and further ones), by job id."""
    return {str(j["job_id"]): j for j in pipe.items(f"REQ#{request_id}")
            if j["sk"] == "JOB#webhook"}  # fmt: skip


def by_type(job: Any) -> dict[str, str]:
    return {i.type: i.value for i in job.identifiers}


def phone_out_of_profiling_then_a_form_naming_both(pipe: Pipeline) -> str:
    """Given a phone opted out of profiling (its jobs done), when a webform names an email and
    that phone, asking sale: the new request's id, resolved, no job worked yet."""
    pipe.post("/v1/opt-out", {"phone": PHONE, "purposes": ["profiling"]})
    pipe.resolve()
    for system in SYSTEMS.systems:
        work(pipe, system.queue_key, Vendor())
    request = pipe.post("/v1/opt-out", {"email": EMAIL, "phone": PHONE, "purposes": ["sale"]})
    pipe.resolve()
    return str(request["request_id"])


def test_each_identifier_is_told_its_own_clusters_opt_outs_and_the_status_waits_for_both(
    pipe: Pipeline,
) -> None:
    request_id = phone_out_of_profiling_then_a_form_naming_both(pipe)
    # Then the webhook (it takes both) gets two jobs of this request: the email's says only
    # sale, the phone's sale and profiling (its own STATE)
    jobs = webhook_jobs(pipe, request_id)
    purposes = {by_type_of(job): job["purposes"] for job in jobs.values()}
    assert purposes == {"email": ["sale"], "phone": ["sale", "profiling"]}
    assert f"{request_id}:webhook" in jobs
    (further,) = [j for j in jobs if j != f"{request_id}:webhook"]
    assert further.startswith(f"{request_id}~")
    # ... and what the vendor is told matches, identifier by identifier
    messages = pipe.drain("webhook")
    assert sorted(m["job_id"] for m in messages) == sorted(jobs)
    first = Vendor()
    deliver(pipe, [m for m in messages if m["job_id"] == f"{request_id}:webhook"], first)
    for system in SYSTEMS.systems:
        if system.name != "webhook":
            work(pipe, system.queue_key, Vendor())
    # The status counts the webhook once, and not done while one of its jobs is pending
    # (read past any earlier answer's replayed time: only the pending job holds it)
    later = datetime.now(UTC) + timedelta(days=2)
    status = pipe.get_at(later, f"/v1/requests/{request_id}", request_id=request_id)
    assert status["status"] == "processing"
    table = Table(pipe.aws.dynamodb, pipe.aws.table_name)
    detail = AdminService(table, b"k" * 32).request_detail(request_id)
    (webhook,) = [s for s in detail["systems"] if s["system"] == "webhook"]
    assert webhook["satisfied"] == "processing"
    assert detail["systems_done"] == detail["systems_total"] - 1
    # ... nor in the §7102 figures: the webhook is one system, still open, and no repeat
    figures = contribution_of(*load_with_proof(table, request_id, consistent=True, quiet=True))
    assert figures is not None and figures.systems["webhook"] == "processing"
    assert figures.outcome == "open" and not figures.repeat
    second = Vendor()
    deliver(pipe, [m for m in messages if m["job_id"] == further], second)
    told = [(by_type(j), list(j.purposes)) for j in [*first.received, *second.received]]
    assert sorted(told, key=lambda t: sorted(t[0])) == sorted(
        [({"email": EMAIL}, ["sale"]), ({"phone": PHONE}, ["sale", "profiling"])],
        key=lambda t: sorted(t[0]),
    )
    status = pipe.get_at(later, f"/v1/requests/{request_id}", request_id=request_id)
    assert status["status"] == "completed"
    # The public count: one entry per system (the webhook once), every one done
    assert status["systems_done"] == status["systems_total"]
    items, covering = load_with_proof(table, request_id, consistent=True)
    (resolution,) = [i for i in items if i["sk"] == "RESOLUTION"]
    assert resolution["split_jobs"] == {"webhook": [further]}
    figures = contribution_of(*load_with_proof(table, request_id, consistent=True, quiet=True))
    assert figures is not None and figures.systems["webhook"] == "done"
    assert list(figures.systems).count("webhook") == 1
    # The proof names both: the export's job records and the operator's system view
    records = request_records(request_id, items, covering)
    exported = {r["job_id"] for r in records if r.get("record") == "job"}
    assert {f"{request_id}:webhook", further} <= exported
    detail = AdminService(table, b"k" * 32).request_detail(request_id)
    (webhook,) = [s for s in detail["systems"] if s["system"] == "webhook"]
    assert [j["job_id"] for j in webhook["split_jobs"]] == [further]
    assert webhook["satisfied"] == "done"


def by_type_of(job: dict[str, Any]) -> str:
    (only,) = {str(i["type"]) for i in job["identifiers"]}
    return only


def test_a_redelivered_record_finds_the_further_job_and_makes_no_other(pipe: Pipeline) -> None:
    pipe.post("/v1/opt-out", {"phone": PHONE, "purposes": ["profiling"]})
    pipe.resolve()
    pipe.drain_all()
    request = pipe.post("/v1/opt-out", {"email": EMAIL, "phone": PHONE, "purposes": ["sale"]})
    request_id = str(request["request_id"])
    batch = pipe.event_records()
    pipe.resolve(batch)
    before = webhook_jobs(pipe, request_id)
    pipe.drain_all()
    # When the stream delivers the same record again
    pipe.resolve(batch)
    # Then the same two jobs stand, unchanged, and both are sent again (workers know repeats)
    assert webhook_jobs(pipe, request_id) == before
    assert len([i for i in pipe.items("REQ#") if "~" in str(i.get("request_id", ""))
                and i["sk"].startswith("JOB#")]) == 1  # fmt: skip
    assert sorted(m["job_id"] for m in pipe.drain("webhook")) == sorted(before)


def test_the_sweep_finds_a_stuck_further_job(pipe: Pipeline) -> None:
    request_id = phone_out_of_profiling_then_a_form_naming_both(pipe)
    (further,) = [j for j in webhook_jobs(pipe, request_id) if "~" in j]
    pipe.drain_all()  # every message lost: the jobs stay pending
    # When the sweep checks the request past the grace
    table = Table(pipe.aws.dynamodb, pipe.aws.table_name)
    later = datetime.now(UTC) + timedelta(hours=2, minutes=20)
    report = Sweeper(table, SweepSettings(), clock=lambda: later).sweep()
    # Then it finds the further job stuck too, as its own
    assert further in report.stuck_jobs
    assert f"{request_id}:webhook" in report.stuck_jobs


def test_a_request_naming_one_person_makes_no_further_job(pipe: Pipeline) -> None:
    pipe.post("/v1/opt-out", {"phone": PHONE, "purposes": ["profiling"]})
    pipe.resolve()
    pipe.drain_all()
    request = pipe.post("/v1/opt-out", {"phone": PHONE, "purposes": ["sale"]})
    pipe.resolve()
    request_id = str(request["request_id"])
    assert not [i for i in pipe.items("REQ#") if "~" in str(i.get("request_id", ""))]
    (resolution,) = [i for i in pipe.items(f"REQ#{request_id}") if i["sk"] == "RESOLUTION"]
    assert "split_jobs" not in resolution


@pytest.fixture
def asking(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> Iterator[Pipeline]:
    """No quiet period after a no_record answer: the re-open asks the vendor again at once."""
    yield build_pipeline(aws, monkeypatch, NO_RECORD_QUIET_HOURS="0")


def test_a_reopen_of_such_a_request_sends_each_identifier_its_own_purposes(
    asking: Pipeline,
) -> None:
    pipe = asking
    # Given the phone out of sale and profiling, the email out of sale, each by its own request
    # whose webhook job is still in flight
    pipe.post("/v1/opt-out", {"phone": PHONE, "purposes": ["sale", "profiling"]})
    pipe.post("/v1/opt-out", {"email": EMAIL, "purposes": ["sale"]})
    pipe.resolve()
    # ... a form naming both, asking sale, cites those two jobs at the webhook (no job of its own)
    request = pipe.post("/v1/opt-out", {"email": EMAIL, "phone": PHONE, "purposes": ["sale"]})
    request_id = str(request["request_id"])
    pipe.resolve()
    assert webhook_jobs(pipe, request_id) == {}
    # ... and both end no_record (no proof for it), every other system done
    work(pipe, "webhook", Vendor(status="no_record"))
    for system in SYSTEMS.systems:
        if system.name != "webhook":
            work(pipe, system.queue_key, Vendor())
    # When the sweep re-opens it and the resolver carries the redrive out
    table = Table(pipe.aws.dynamodb, pipe.aws.table_name)
    later = datetime.now(UTC) + timedelta(minutes=16)
    report = Sweeper(
        table, SweepSettings(slice=SweepSettings().window), clock=lambda: later
    ).sweep()
    assert report.reopened == [request_id]
    pipe.resolve()
    # Then the webhook gets two jobs of the request: the email told sale, the phone its own
    jobs = webhook_jobs(pipe, request_id)
    assert {by_type_of(j): j["purposes"] for j in jobs.values()} == {
        "email": ["sale"], "phone": ["sale", "profiling"]
    }  # fmt: skip
    (further,) = [j for j in jobs if "~" in j]
    (resolution,) = [i for i in pipe.items(f"REQ#{request_id}") if i["sk"] == "RESOLUTION"]
    assert resolution["split_jobs"] == {"webhook": [further]}
    # ... and the request completes once both are done, and only then
    messages = pipe.drain("webhook")
    deliver(pipe, [m for m in messages if m["job_id"] == f"{request_id}:webhook"], Vendor())
    after = datetime.now(UTC) + timedelta(days=2)
    path = f"/v1/requests/{request_id}"
    assert pipe.get_at(after, path, request_id=request_id)["status"] == "processing"
    deliver(pipe, [m for m in messages if m["job_id"] == further], Vendor())
    assert pipe.get_at(after, path, request_id=request_id)["status"] == "completed"


def test_the_two_ends_of_an_assertion_are_each_told_their_own_opt_outs(pipe: Pipeline) -> None:
    # Given an email out of share, and a browser out of profiling, never linked
    device = "dev-split-assert-aaaaaa"
    pipe.post("/v1/opt-out", {"email": EMAIL, "purposes": ["share"]})
    pipe.post("/v1/consent", {"device_id": device, "opt_out": {"profiling": True}})
    pipe.resolve()
    pipe.drain_all()
    # When a form from that browser names the email (the browser asserts it), asking sale
    request = pipe.post("/v1/opt-out", {"email": EMAIL, "device_id": device, "purposes": ["sale"]})
    pipe.resolve()
    # Then the webhook (it takes both) tells the browser its own opt-outs, never the email's
    # share (one way: the email's cluster also counts what the browser carried to it)
    jobs = webhook_jobs(pipe, str(request["request_id"]))
    assert {by_type_of(j): j["purposes"] for j in jobs.values()} == {
        "device_id": ["sale", "profiling"], "email": ["sale", "share", "profiling"]
    }  # fmt: skip
