"""Review s24 diff-A (an outside read of race24): repros of its findings (D1: fixed in
session 25, deny25)."""

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest

from local.aws_resources import create_queues
from optout.jobs_queue import JobQueue
from optout.ops.keys import DENIAL_SK
from optout.resolver import service
from optout.resolver.clusters import Caps
from optout.resolver.service import Resolver, _DeniedMeanwhile
from optout.store import batch, delivery, keys
from optout.store.codec import serialize
from optout.store.table import Table
from optout.sweep import Sweeper, SweepSettings
from tests.conftest import Aws
from tests.integration.test_covering_proof import (
    FIRST_CHECK,
    cites_an_email_only_proof,
)
from tests.integration.test_mark_takeover import SYSTEMS, T0, _template, opt_out
from tests.integration.test_operator_routes import call, ok
from tests.support.pipeline import Pipeline, build_pipeline


@pytest.fixture
def pipe(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> Iterator[Pipeline]:
    yield build_pipeline(aws, monkeypatch)


def test_a_denial_landing_during_the_reopen_gets_no_job_of_its_own(
    pipe: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As test_covering_proof's denied re-open: an agent's request naming a customer id cites
    # an earlier job done for the email only (no proof for the customer id); the sweep names it
    request_id = cites_an_email_only_proof(pipe)
    pipe.drain_all()
    table = Table(pipe.aws.dynamodb, pipe.aws.table_name)
    sweep = Sweeper(table, SweepSettings(), clock=lambda: datetime.now(UTC) + FIRST_CHECK)
    assert sweep.sweep().reopened == [request_id]
    # When the operator's denial lands while the re-open runs, past its read of the request's
    # items (review s24 diff A D1 denied just after that read): here at the latest point the
    # fix covers, just after the re-open stored the request's Braze job, before it reads the
    # DENIAL again (one case only: each costs ~10 s of setup; a denial landing earlier is
    # caught by the same read)
    path = f"/v1/admin/requests/{request_id}/deny"
    body = {"reason_code": "suspected_fraud", "reason": "a burst of 400 requests from one IP"}
    put_once = batch.put_once
    denied: list[bool] = []

    def put_then_deny(table: Table, item: Any, ours: Any) -> bool:
        stored = put_once(table, item, ours)
        if (item["pk"], item["sk"]) == (f"REQ#{request_id}", "JOB#braze") and not denied:
            denied.append(True)
            ok(call(pipe, "POST", path, body, params={"request_id": request_id}))
        return stored

    monkeypatch.setattr(service, "put_once", put_then_deny)
    pipe.resolve()  # the redrive's re-open
    assert denied
    assert pipe.get(f"/v1/requests/{request_id}")["status"] == "denied"
    # Then the job is withdrawn before anything sends it: nothing reaches Braze's queue
    # (before: JOB#braze stayed and its message was queued, so Braze got the customer id after
    # the denial), no job is left for the sweep's stuck-job redrive, and no identity's
    # in-flight mark names it
    assert pipe.drain_all() == {key: [] for key in pipe.queue_urls}
    assert "JOB#braze" not in {i["sk"] for i in pipe.partition(f"REQ#{request_id}")}
    assert f"{request_id}:braze" not in json.dumps(pipe.items("ID#"), default=str)


def test_the_reopens_denial_read_is_made_on_the_reopen_path_only(
    aws: Aws, dynamodb_calls: list[str]
) -> None:
    # D1's fix reads the DENIAL once a re-open stored its job: a first resolution (the normal
    # path) makes no GetItem and no DeleteItem for it
    table = Table(boto3.client("dynamodb"), aws.table_name)  # created after the call counter
    queues, _, _ = create_queues(
        aws.sqs, sorted({s.queue_key for s in SYSTEMS.systems}), aws.table_name
    )
    resolver = Resolver(table, SYSTEMS, JobQueue(aws.sqs, _template(queues)), Caps(max_size=50),
                        clock=lambda: T0)  # fmt: skip
    event = opt_out(1, T0)
    aws.dynamodb.put_item(TableName=aws.table_name, Item=serialize(event))  # as capture does
    assert resolver.process(event).jobs  # it made jobs
    assert "PutItem" in dynamodb_calls
    assert {"GetItem", "DeleteItem"}.isdisjoint(dynamodb_calls)
    # The check itself: no DENIAL, the job stands; a DENIAL, the job this run stored is deleted
    # untried and the re-open stops; one it found stored (another run's) is left to that run
    request_id = str(event["request_id"])
    job = (keys.request_pk(request_id), keys.job_sk("braze"))
    dynamodb_calls.clear()
    resolver._unless_denied(False, request_id, job)  # not a re-open: nothing read
    resolver._unless_denied(True, request_id, job)  # no DENIAL
    assert dynamodb_calls == ["GetItem"]
    denial = {"pk": keys.request_pk(request_id), "sk": DENIAL_SK, "kind": "denial"}
    aws.dynamodb.put_item(TableName=aws.table_name, Item=serialize(denial))
    with pytest.raises(_DeniedMeanwhile):
        resolver._unless_denied(True, request_id, None)
    assert delivery.get_job(table, request_id, "braze") is not None
    with pytest.raises(_DeniedMeanwhile):
        resolver._unless_denied(True, request_id, job)
    assert delivery.get_job(table, request_id, "braze") is None
