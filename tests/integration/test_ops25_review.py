"""Review s25 ops O1 (an operator following docs/operations.md on the local stack): a denial
opts no one back in, so a later backfill sends the identity's opt-out under the backfill's own
ids; the denied request stays denied, with no new job and the same §7102 figure (README's
deny row, docs/decisions.md "A denial opts no one back in")."""

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from optout.store import keys
from tests.conftest import Aws
from tests.integration.test_backfill import FULL, backfill, deploy, left_out, run_chain
from tests.integration.test_backfill import work as work_under
from tests.integration.test_operator_routes import call, deny, ok, watch
from tests.integration.test_resolver_delivery import Vendor
from tests.support.pipeline import Pipeline, build_pipeline

EMAIL = "denied.backfill@example.com"


@pytest.fixture
def pipe(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> Iterator[Pipeline]:
    yield build_pipeline(aws, monkeypatch)


def figures(pipe: Pipeline) -> tuple[int, int, int]:
    year = str(datetime.now(UTC).year)
    found = ok(call(pipe, "GET", "/v1/admin/metrics", query={"year": year}))["requests"]
    return found["received"], found["open"], found["denied"]


def test_a_backfill_after_a_denial_sends_under_its_own_ids_and_the_request_stays_denied(
    pipe: Pipeline, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Given an opt-out resolved under a config without meta, no system confirmed yet (the
    # vendors were down), denied by the operator as fraud and counted denied
    left_out(pipe, monkeypatch, tmp_path, "meta")
    request_id = pipe.post("/v1/opt-out", {"email": EMAIL})["request_id"]
    pipe.resolve()
    pipe.drain_all()
    ok(deny(pipe, request_id))
    watch(pipe, datetime.now(UTC) + timedelta(minutes=10))
    assert figures(pipe) == (1, 0, 1)
    # When meta is added and backfilled, as operations.md says, and meta's worker sends it
    deploy(pipe, monkeypatch, FULL)
    (record,) = run_chain(pipe, backfill(pipe, "meta")["request_id"])
    vendor = Vendor()
    work_under(pipe, FULL, "meta", vendor)
    # Then the identity still reads opted out (a denial opts no one back in), and meta gets
    # it in the backfill's own job: its own request id and job id, not the denied request's
    assert record["planned"] == 1
    job_request = str(record["job_request_id"])
    assert job_request != request_id and job_request.split("~", maxsplit=1)[0] != request_id
    (job,) = [i for i in pipe.items(keys.request_pk(job_request)) if i["sk"] == "JOB#meta"]
    assert job["request_id"] == job_request and job["status"] == "done"
    assert [i.value for j in vendor.received for i in j.identifiers if i.type == "email"] == [EMAIL]
    # ... and the denied request has no new job, reads denied with no meta, and its §7102
    # figure is still denied after the watch reads it again
    assert not [i for i in pipe.items(keys.request_pk(request_id)) if i["sk"] == "JOB#meta"]
    detail = ok(call(pipe, "GET", f"/v1/admin/requests/{request_id}",
                     params={"request_id": request_id}))  # fmt: skip
    assert detail["status"] == "denied"
    assert "meta" not in [s["system"] for s in detail["systems"]]
    assert pipe.get(f"/v1/requests/{request_id}")["status"] == "denied"
    watch(pipe, datetime.now(UTC) + timedelta(hours=2))
    assert figures(pipe) == (1, 0, 1)
