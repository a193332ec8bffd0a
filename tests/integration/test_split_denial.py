"""A denial that lands while a request's earlier run made only further jobs (review s31 union,
info; union review s31 "an unlikely variant of F1"): those jobs live under request ids of their
own (`<request>~<hex>`), so "has it a job?" must read the request's split marker, or the re-run
stops as "denied, nothing asked" while its further jobs wait to be sent by the sweep."""

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from optout.ops.denial import DenialService
from optout.resolver.outbox import Outbox
from optout.store import keys
from optout.store.table import Table
from optout.sweep import Sweeper, SweepSettings
from tests.conftest import Aws
from tests.integration.test_resolver_delivery import SYSTEMS, Vendor, work
from tests.support.pipeline import Pipeline, build_pipeline

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
