"""Reads that a lagging replica answers (consistency34): DynamoDB's default reads may miss a
write made a moment ago, and two reads of one view may reach two replicas, one current and one
behind. A view that states an outcome (the range export: a proof under §7101) reads what it
states strongly consistent, so a stale replica cannot make it say `completed` while a job the
request's own RESOLUTION names is pending. `LaggingClient` stands in for that replica: moto
itself is strongly consistent."""

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from optout.hash_key import load_hash_key
from optout.ops.export import ExportService
from optout.settings import Settings
from optout.store.table import Table
from tests.conftest import Aws
from tests.integration.test_backfill import backfill, opted_out_before, run_chain
from tests.integration.test_request_split_purposes import (
    PHONE,
    phone_out_of_profiling_then_a_form_naming_both,
    webhook_jobs,
)
from tests.integration.test_resolver_delivery import SYSTEMS, Vendor, deliver, work
from tests.support.pipeline import Pipeline, build_pipeline
from tests.support.stale_reads import LaggingClient


@pytest.fixture
def pipe(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> Iterator[Pipeline]:
    yield build_pipeline(aws, monkeypatch)


def test_a_range_export_never_reads_a_further_job_pending_as_done_from_a_lagging_replica(
    pipe: Pipeline,
) -> None:
    # Given a request naming two unlinked people: the webhook has its own job and a further
    # one (`<request>~<hex>:webhook`, named by the RESOLUTION's split_jobs); every job is done
    # but the further one, still pending
    request_id = phone_out_of_profiling_then_a_form_naming_both(pipe)
    (further,) = [j for j in webhook_jobs(pipe, request_id) if j != f"{request_id}:webhook"]
    messages = pipe.drain("webhook")
    deliver(pipe, [m for m in messages if m["job_id"] != further], Vendor())
    for system in SYSTEMS.systems:
        if system.name != "webhook":
            work(pipe, system.queue_key, Vendor())
    table = Table(pipe.aws.dynamodb, pipe.aws.table_name)
    today = datetime.now(UTC).date()

    def exported(reader: Table) -> dict[str, object]:
        answer = ExportService(reader, b"k" * 32).range(today, today, None)
        (request,) = [r for r in answer["records"]
                      if r["record"] == "request" and r["request_id"] == request_id]  # fmt: skip
        return request

    assert exported(table)["status"] == "processing"
    # When the export's read of the further job reaches a replica that has not applied the
    # write that made it (the RESOLUTION naming it, written after it, read from one that has)
    further_key = (f"REQ#{further.rpartition(':')[0]}", "JOB#webhook")
    lagging = LaggingClient(table.client, unseen={further_key})
    request = exported(replace(table, client=lagging))
    # Then it still says the request is open, not completed, and its outcome open
    assert request["status"] == "processing"
    assert request["outcome"] == "open"
    assert request["answered_at"] is None


def test_the_identity_export_lists_a_further_job_once_while_its_resolution_lags(
    pipe: Pipeline,
) -> None:
    # Given a request naming two unlinked people, resolved and worked: the phone's webhook job
    # is a further one (`<request>~<hex>:webhook`), which the request's RESOLUTION names
    request_id = phone_out_of_profiling_then_a_form_naming_both(pipe)
    for system in SYSTEMS.systems:
        work(pipe, system.queue_key, Vendor())
    table = Table(pipe.aws.dynamodb, pipe.aws.table_name)
    # When the phone's export reads that RESOLUTION from a replica that has not applied it
    # (the request's own records are read strongly consistent, so they name the further job)
    lagging = LaggingClient(table.client, unseen={(f"REQ#{request_id}", "RESOLUTION")})
    key = load_hash_key(Settings.from_env())  # the stack's own: the export finds by it
    answer = ExportService(replace(table, client=lagging), key).identity("phone", PHONE, None)
    # Then the further job is one record, the request's, not a second one beside it as a job
    # only the identity's marks name
    jobs = [r for r in answer["records"] if r["record"] == "job"
            and str(r.get("job_id")).startswith(f"{request_id}~")]  # fmt: skip
    assert len(jobs) == 1
    assert lagging.stale_reads == 0  # nothing this export reads comes from the lagging replica


def test_a_range_export_reads_a_replayed_backfill_job_as_pending_not_as_its_failure(
    pipe: Pipeline, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Given a backfill of meta whose one step made one job, pending now (sent again by a
    # replay a moment ago: a lagging replica still holds the copy the failure left)
    opted_out_before(pipe, monkeypatch, tmp_path, "meta")
    request_id = backfill(pipe, "meta")["request_id"]
    (record,) = run_chain(pipe, request_id)
    key = (f"REQ#{record['job_request_id']}", "JOB#meta")
    (job,) = [i for i in pipe.partition(key[0]) if i["sk"] == key[1]]
    assert job["status"] == "pending"
    failed_copy = {**job, "status": "failed", "completed_at": job["created_at"]}
    lagging = LaggingClient(pipe.aws.dynamodb, unseen=set(), older={key: failed_copy})
    table = replace(Table(pipe.aws.dynamodb, pipe.aws.table_name), client=lagging)
    # When the day is exported
    day = datetime.now(UTC).date()
    records = ExportService(table, b"k" * 32).range(day, day, None)["records"]
    # Then the step and its job read as they are: open, not failed
    (step,) = [r for r in records if r["record"] == "request" and r["request_id"] == request_id]
    assert (step["status"], step["systems_failed"]) == ("processing", 0)
    (exported,) = [r for r in records if r["record"] == "job" and r.get("made_by") == request_id]
    assert exported["status"] == "pending"
