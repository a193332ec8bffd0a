"""A wrong Segment `customer_id_form` (one its examples fit but a real customer's id does not)
makes that person's Segment job `no_record`, nothing sent (review s34 M2). The recovery
docs/deploy.md gives (the session-34 upgrade row), checked here: fix the form and deploy, then
`optout backfill segment --resend` sends the person at once; a plain backfill does not within
the quiet period of that `no_record` (NoRecordQuietHours), and does after it.

The worker runs the real Segment connector with an HTTP client that records each call and
answers 200 (no network)."""

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from optout.connectors import CONNECTORS
from optout.connectors.credentials import fixed
from optout.connectors.http import HttpClient, HttpResponse
from optout.delivery.service import DeliveryService, Received
from optout.delivery.settings import WorkerSettings
from optout.resolver import service
from optout.store.table import Table
from optout.systems import load_systems
from tests.conftest import Aws
from tests.integration.test_backfill import backfill, config, deploy, run_chain
from tests.support.pipeline import Pipeline, build_pipeline

REAL_ID = "cust-20a1"  # the shop's ids hold letters; the first form said digits only
WRONG = {"prefix": "cust-", "characters": "0-9", "examples": ["cust-2026"]}
FIXED = {"prefix": "cust-", "characters": "0-9a-z", "examples": ["cust-2026", REAL_ID]}


@pytest.fixture
def pipe(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> Iterator[Pipeline]:
    yield build_pipeline(aws, monkeypatch)


class Recording(HttpClient):
    def __init__(self) -> None:
        super().__init__(2.0)
        self.bodies: list[dict[str, Any]] = []

    def _once(self, method: str, url: str, step: str, headers: Any, body: Any, *rest: Any
              ) -> HttpResponse:  # fmt: skip
        self.bodies.append(json.loads(body))
        return HttpResponse(200, {}, b"{}")


def with_form(form: dict[str, Any]) -> Any:
    def edit(systems: list[dict[str, Any]]) -> list[dict[str, Any]]:
        for system in systems:
            if system["name"] == "segment":
                system["options"]["customer_id_form"] = form
        return systems

    return edit


def work_segment(pipe: Pipeline, path: str) -> list[str]:
    """One Segment worker pass under the config at `path`: the userIds sent."""
    systems = load_systems(path)
    (segment,) = [s for s in systems.systems if s.name == "segment"]
    http = Recording()
    connector = CONNECTORS["segment"](segment, fixed({"write_key": "wk"}), http)
    delivery = DeliveryService(
        Table(pipe.aws.dynamodb, pipe.aws.table_name), systems,
        WorkerSettings(table_name=pipe.aws.table_name), lambda _system: connector,
    )  # fmt: skip
    bodies = pipe.drain("segment")
    received = [Received(f"m{n}", json.dumps(b), 1) for n, b in enumerate(bodies)]
    delivery.deliver(received, lambda message, delay: None)
    return [e["userId"] for b in http.bodies for e in b["batch"]]


def test_a_wrong_form_is_mended_at_once_by_a_resend_backfill_not_a_plain_one_in_the_quiet_period(
    pipe: Pipeline, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Given a deployed form that a real customer's id does not fit: their opt-out sends nothing
    wrong = config(tmp_path, "wrong", with_form(WRONG))
    deploy(pipe, monkeypatch, wrong)
    pipe.post("/v1/opt-out", {"customer_id": REAL_ID})
    pipe.resolve()
    assert work_segment(pipe, wrong) == []
    (job,) = [i for i in pipe.items("REQ#") if i["sk"] == "JOB#segment"]
    assert job["status"] == "no_record"
    assert job["receipt"]["identifier_types_unformed"] == ["customer_id"]
    pipe.drain_all()
    # When the form is fixed and deployed, a plain backfill within the quiet period sends no one
    fixed_path = config(tmp_path, "fixed", with_form(FIXED))
    deploy(pipe, monkeypatch, fixed_path)
    (record,) = run_chain(pipe, backfill(pipe, "segment")["request_id"])
    assert record["jobs_total"] == 0
    assert work_segment(pipe, fixed_path) == []
    # Then `--resend` sends the person at once
    (record,) = run_chain(pipe, backfill(pipe, "segment", resend=True)["request_id"])
    assert record["jobs_total"] == 1
    assert work_segment(pipe, fixed_path) == [REAL_ID]


def test_after_the_quiet_period_a_plain_backfill_sends_the_person_a_wrong_form_left_out(
    pipe: Pipeline, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    wrong = config(tmp_path, "wrong", with_form(WRONG))
    deploy(pipe, monkeypatch, wrong)
    pipe.post("/v1/opt-out", {"customer_id": REAL_ID})
    pipe.resolve()
    assert work_segment(pipe, wrong) == []
    pipe.drain_all()
    # the quiet period over (NoRecordQuietHours 0: none), the form fixed and deployed
    monkeypatch.setattr(service.Resolver, "_quiet_since", lambda self: None)
    fixed_path = config(tmp_path, "fixed", with_form(FIXED))
    deploy(pipe, monkeypatch, fixed_path)

    (record,) = run_chain(pipe, backfill(pipe, "segment")["request_id"])

    assert record["jobs_total"] == 1
    assert work_segment(pipe, fixed_path) == [REAL_ID]
