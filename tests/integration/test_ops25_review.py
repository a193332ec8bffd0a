"""Review s25 ops (an operator following docs/operations.md on the local stack): repros of
findings, strict xfail."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from optout.store import keys
from tests.conftest import Aws
from tests.integration.test_backfill import FULL, backfill, deploy, left_out, run_chain
from tests.integration.test_operator_routes import deny, ok
from tests.support.pipeline import Pipeline, build_pipeline

EMAIL = "denied.backfill@example.com"


@pytest.fixture
def pipe(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> Iterator[Pipeline]:
    yield build_pipeline(aws, monkeypatch)


@pytest.mark.xfail(
    strict=True,
    reason="review s25 ops O1: a request denied after its resolution (README's fraud-burst "
    "recipe) keeps its choices as the identity's own, so a later `optout backfill` of a "
    "system added since makes a new job for it and sends the denied opt-out; the deny row "
    "names only jobs already made and replays",
)
def test_a_backfill_after_a_denial_makes_no_job_for_the_denied_request(
    pipe: Pipeline, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Given an opt-out resolved under a config without meta, no system confirmed yet (the
    # vendors were down), denied by the operator as fraud
    left_out(pipe, monkeypatch, tmp_path, "meta")
    request_id = pipe.post("/v1/opt-out", {"email": EMAIL})["request_id"]
    pipe.resolve()
    pipe.drain_all()
    ok(deny(pipe, request_id))
    assert pipe.get(f"/v1/requests/{request_id}")["status"] == "denied"
    # When meta is added and backfilled, as operations.md says
    deploy(pipe, monkeypatch, FULL)
    (record,) = run_chain(pipe, backfill(pipe, "meta")["request_id"])
    # Then the denied request's email gets no new job after the denial (it gets one)
    assert record["planned"] == 1  # the identity still reads opted out: "opts no one back in"
    jobs = [
        i
        for i in pipe.items(keys.request_pk(str(record.get("job_request_id", "-"))))
        if i["sk"] == "JOB#meta"
    ]
    assert not any(EMAIL in [v["value"] for v in j["identifiers"]] for j in jobs)
