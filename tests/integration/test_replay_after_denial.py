"""A failed job that `optout replay` sends again after its request was denied is named in the
denial's record (`systems_under_way`): it may reach its vendor, as any job made before a
denial (proof36 L2: the record named only the systems whose jobs were under way when the
denial was written, or made by a resolution it landed in)."""

from collections.abc import Iterator

import pytest

from local.moto_guard import guarded
from tests.conftest import Aws
from tests.integration.test_deny_during_resolution import record_of
from tests.integration.test_operator_routes import call, deny, ok
from tests.integration.test_resolver_delivery import Vendor, deliver, work
from tests.support.pipeline import Pipeline, build_pipeline

EMAIL = "replayed-after-denial@example.com"


@pytest.fixture
def pipe(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> Iterator[Pipeline]:
    with guarded():
        yield build_pipeline(aws, monkeypatch)


def test_a_job_replayed_after_the_denial_is_under_way_in_its_record(pipe: Pipeline) -> None:
    # Given an opt-out whose every job was refused for good, then denied (nothing under way)
    request_id = pipe.post("/v1/opt-out", {"email": EMAIL, "purposes": ["sale"]})["request_id"]
    pipe.resolve()
    for bodies in pipe.drain_all().values():
        if bodies:
            deliver(pipe, bodies, Vendor(refuse=True))
    assert ok(deny(pipe, request_id))["systems_under_way"] == []
    # When an operator replays Braze, and the resolver carries it out
    ok(call(pipe, "POST", "/v1/admin/systems/braze/replay", params={"system": "braze"}), 202)
    pipe.resolve()
    (message,) = work(pipe, "braze", Vendor())
    assert message["job_id"] == f"{request_id}:braze"
    # Then the denial's record names Braze: its job went to the vendor after the denial
    record = record_of(pipe, request_id)
    assert record["status"] == "denied"
    assert record["denial"]["systems_under_way"] == ["braze"]


def test_a_replay_of_a_job_whose_request_was_not_denied_writes_no_denial(pipe: Pipeline) -> None:
    request_id = pipe.post("/v1/opt-out", {"email": EMAIL, "purposes": ["sale"]})["request_id"]
    pipe.resolve()
    work(pipe, "braze", Vendor(refuse=True))
    ok(call(pipe, "POST", "/v1/admin/systems/braze/replay", params={"system": "braze"}), 202)
    pipe.resolve()
    work(pipe, "braze", Vendor())
    record = record_of(pipe, request_id)
    assert "denial" not in record or record["denial"] is None
