"""Review s24 diff-A (an outside read of race24): repros of its findings (D1: fixed in
session 25, deny25)."""

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from optout.resolver import service
from optout.store.table import Table
from optout.sweep import Sweeper, SweepSettings
from tests.conftest import Aws
from tests.integration.test_covering_proof import (
    FIRST_CHECK,
    cites_an_email_only_proof,
)
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
    put_once = service.put_once
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
