"""A job the flush makes after a concurrent change is made by the batch's request whose
derivation reached its clusters, never just the batch's first, which may be another person's;
and an identity export names a job's maker as its origin only when the identity's state reads
that request's choice (review s31 last F1 (c): another person's request, its opt-outs and its
time, were copied into the export of an identity whose job the flush made in the same batch)."""

import json
from collections.abc import Iterator
from typing import Any

import pytest

from optout.resolver import service
from optout.store import keys
from tests.conftest import Aws
from tests.integration.test_rederived_purposes import (
    BACK_IN,
    ONE,
    rederived_jobs,
    two_people_derived_again,
)
from tests.support.http_events import http_event, json_body
from tests.support.lambdas import invoke
from tests.support.pipeline import Pipeline, build_pipeline


@pytest.fixture
def pipe(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> Iterator[Pipeline]:
    yield build_pipeline(aws, monkeypatch)


def export(pipe: Pipeline, device: str) -> list[dict[str, Any]]:
    body = {"type": "device_id", "value": device}
    answer = invoke(pipe.admin, http_event("POST", "/v1/admin/exports/identity", body, iam=True))
    assert answer["statusCode"] == 200, answer["body"]
    records: list[dict[str, Any]] = json_body(answer)["records"]
    return records


def test_a_job_the_flush_makes_is_its_own_persons_request_and_no_origin_of_the_other(
    pipe: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given one stream batch with two people's requests (two unlinked devices), both of whose
    # clusters the flush derives again after a concurrent change, making a job for each
    ones, back_ins = two_people_derived_again(pipe, monkeypatch)
    key_of = {n["value"]: n["key"] for n in pipe.items("ID#") if n["sk"] == "NODE"}
    # Then each such job is made by the request of the device it carries, and named by a
    # marker in that request's partition
    made = {}
    for job in rederived_jobs(pipe):
        (carried,) = {i["key"] for i in job["identifiers"]}
        made[carried] = keys.made_by(job["request_id"])
    assert made == {key_of[ONE]: ones, key_of[BACK_IN]: back_ins}
    for owner in (ones, back_ins):
        markers = [i for i in pipe.partition(keys.request_pk(owner))
                   if i["sk"].startswith(keys.REDERIVED_PREFIX)]  # fmt: skip
        assert len(markers) == 1
    # ... and neither device's export holds anything of the other person's request: no
    # origin, no event copied, not even its id
    for device, other in ((BACK_IN, ones), (ONE, back_ins)):
        records = export(pipe, device)
        assert [r for r in records if r["record"] == "job" and "~" in r["request_id"]]
        assert other not in json.dumps(records), device
        assert [r for r in records if r["record"] == "origin"] == []


def test_no_origin_for_a_jobs_maker_whose_choices_the_state_does_not_read(
    pipe: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the same batch, but its flush's jobs all made by one of its requests, as before
    # 2026-12-03 (the batch's first): one device's job is "made by" the other's request
    monkeypatch.setattr(
        service, "_deriver",
        lambda derived_by, *_: min(r for by in derived_by.values() for r in by),
        raising=False,  # absent before the fix, where the batch's first request made them all
    )  # fmt: skip
    ones, back_ins = two_people_derived_again(pipe, monkeypatch)
    mine = {ONE: ones, BACK_IN: back_ins}
    foreign = 0
    for device, other in ((BACK_IN, ones), (ONE, back_ins)):
        records = export(pipe, device)
        makers = {r.get("made_by") for r in records if r["record"] == "job"}
        foreign += other in makers
        # Then no origin names a request whose choices this device's state does not read
        # (the other device's: nothing links or asserts them), nor copies its event
        origins = [r for r in records if r["record"] == "origin"]
        assert origins == [], origins
        assert mine[device] in makers or other in makers
    assert foreign == 1  # the scenario did put one device's job under the other's request
