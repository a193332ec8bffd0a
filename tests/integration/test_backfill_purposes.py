"""A backfill step tells a system, for each person, only what that person chose (review s30
operator F1): people with different opt-outs go into one job per purpose set, never one job with
the union of everyone's purposes. A confirmed opt-in to one purpose stays out of that person's
job. The step's accounting (its record, the year's figures, `optout status`, the sweep, a retry)
covers every job it made. On test_backfill's pipeline and stand-in vendor."""

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from optout.admin import AdminService
from optout.ops.backfills import year_figures
from optout.store import keys
from optout.store.table import Table
from optout.sweep import Sweeper, SweepSettings
from tests.conftest import Aws
from tests.integration.test_backfill import (
    FULL,
    backfill,
    deploy,
    left_out,
    resolution,
    run_chain,
    work,
)
from tests.integration.test_resolver_delivery import Vendor
from tests.support.pipeline import Pipeline, build_pipeline

SALE_ONLY = "dev-purp-sale-aaaaaaaa"
THREE = "dev-purp-three-aaaaaaa"
OPTED_BACK_IN = "dev-purp-backin-aaaaaa"  # out of all four, then a confirmed opt-in to profiling
EMAILS = ("purp.one@example.com", "purp.two@example.com")
ADS = ["sale", "share", "targeted_advertising"]
ALL_FOUR = ["profiling", "sale", "share", "targeted_advertising"]


@pytest.fixture
def pipe(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> Iterator[Pipeline]:
    yield build_pipeline(aws, monkeypatch)


def mixed_people(pipe: Pipeline, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Given, before the webhook was configured, people with different opt-outs (the review's
    repro, plus one who confirmed opting back in to one purpose), then the webhook added."""
    left_out(pipe, monkeypatch, tmp_path, "webhook")
    pipe.post("/v1/consent", {"device_id": SALE_ONLY, "opt_out": {"sale": True}})
    pipe.post("/v1/consent", {"device_id": THREE, "opt_out": dict.fromkeys(ADS, True)})
    pipe.post("/v1/consent", {"device_id": OPTED_BACK_IN,
                              "opt_out": dict.fromkeys(ALL_FOUR, True)})  # fmt: skip
    for email in EMAILS:
        pipe.post("/v1/opt-out", {"email": email})
    pipe.resolve()
    pipe.post("/v1/consent", {"device_id": OPTED_BACK_IN, "opt_out": {"profiling": False},
                              "confirm_opt_in": True})  # fmt: skip
    pipe.resolve()
    pipe.drain_all()
    deploy(pipe, monkeypatch, FULL)


def sent(vendor: Vendor) -> dict[str, list[str]]:
    """Per identifier value, the purposes of the vendor call that carried it."""
    found: dict[str, list[str]] = {}
    for job in vendor.received:
        for identifier in job.identifiers:
            assert identifier.value not in found  # each person sent once
            found[identifier.value] = sorted(job.purposes)
    return found


def own_purposes(pipe: Pipeline, value: str) -> list[str]:
    """What the identity's STATE says it is opted out of (the webhook serves every purpose)."""
    (state,) = [i for i in pipe.items("ID#") if i["sk"] == "STATE"
                and any(n.get("value") == value for n in pipe.items(i["pk"])
                        if n["sk"] == "NODE")]  # fmt: skip
    return sorted(p for p, on in state["opt_out"].items() if on is True)


def test_each_person_in_a_backfill_is_sent_only_their_own_purposes(
    pipe: Pipeline, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    mixed_people(pipe, monkeypatch, tmp_path)
    # When the webhook is backfilled
    (record,) = run_chain(pipe, backfill(pipe, "webhook")["request_id"])
    vendor = Vendor()
    work(pipe, FULL, "webhook", vendor)
    # Then each person's call carries exactly what that person is opted out of
    bodies = sent(vendor)
    assert bodies == {
        SALE_ONLY: ["sale"], THREE: ADS, OPTED_BACK_IN: ADS,
        EMAILS[0]: ALL_FOUR, EMAILS[1]: ALL_FOUR,
    }  # fmt: skip
    for value, purposes in bodies.items():
        assert purposes == own_purposes(pipe, value)
    # ... the confirmed opt-in to profiling is not overridden at the vendor
    assert "profiling" not in bodies[OPTED_BACK_IN]
    # ... and each job record says the same as the body it sent, for the identities it holds
    ids = record["job_request_ids"]
    jobs = [i for i in pipe.items("REQ#") if i["sk"] == "JOB#webhook" and i["request_id"] in ids]
    assert len(jobs) == record["jobs_total"] == 3  # {sale}, the three, all four
    value_of = {n["key"]: n["value"] for n in pipe.items("ID#") if n["sk"] == "NODE"}
    for job in jobs:
        for identifier in job["identifiers"]:  # stored keyed, without the value
            assert sorted(job["purposes"]) == bodies[value_of[identifier["key"]]]
        for flight in job["flights"]:
            assert set(flight.get("purposes") or job["purposes"]) <= set(job["purposes"])
    # ... and the step counts every identity once, over its jobs
    assert record["identities"] == 5
    assert sorted(ids) == sorted(j["request_id"] for j in jobs)


def test_a_mixed_backfill_step_is_counted_listed_swept_and_retried_over_all_its_jobs(
    pipe: Pipeline, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    mixed_people(pipe, monkeypatch, tmp_path)
    # When the webhook is backfilled, the stream delivering the step's event twice
    backfill_id = backfill(pipe, "webhook")["request_id"]
    batch = pipe.event_records()
    assert pipe.resolve(batch) == {"batchItemFailures": []}
    first = sorted(json.dumps(m, sort_keys=True) for m in pipe.drain("webhook"))
    assert pipe.resolve(batch) == {"batchItemFailures": []}
    # Then the retry sends the same three jobs again and makes none more
    assert sorted(json.dumps(m, sort_keys=True) for m in pipe.drain("webhook")) == first
    record = resolution(pipe, backfill_id)
    assert (record["jobs_total"], record["identities"]) == (3, 5)
    ids = record["job_request_ids"]
    assert len([i for i in pipe.items("REQ#") if i["sk"] == "JOB#webhook"]) == 3
    # ... one marker in the step's partition names them all (one write, whatever the jobs)
    (marker,) = [i for i in pipe.items(keys.request_pk(backfill_id))
                 if i["sk"].startswith(keys.REDERIVED_PREFIX)]  # fmt: skip
    assert sorted(marker["request_ids"]) == sorted(ids)
    # ... `optout status` of the backfill lists the three jobs
    table = Table(pipe.aws.dynamodb, pipe.aws.table_name)
    detail = AdminService(table, b"k" * 32).request_detail(backfill_id)
    assert sorted(j["request_id"] for j in detail["jobs"]) == sorted(ids)
    # ... the year's figures count its identities and its three jobs, still open
    row = year_figures(table, datetime.now(UTC).year)["webhook"]
    assert (row["identities"], row["jobs_open"]) == (5, 3)
    # ... and the sweep, past the jobs' grace with no message delivered, finds all three
    later = datetime.now(UTC) + timedelta(hours=2, minutes=20)
    report = Sweeper(table, SweepSettings(), clock=lambda: later).sweep()
    assert {f"{r}:webhook" for r in ids} <= set(report.stuck_jobs)
