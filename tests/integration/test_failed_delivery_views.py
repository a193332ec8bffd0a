"""A system whose job failed for good is named in the per-person proofs (review s34 proof F1).

The lookup and the identity export listed per system what was confirmed, what a pending job
carries and the vendors' "no such person"; a failed job is none of these, so the system
vanished from both while the vendor may hold the person and was never told.
"""

from collections.abc import Iterator

import pytest

from local.moto_guard import guarded
from tests.conftest import Aws
from tests.integration.test_operator_routes import call, ok, watch
from tests.integration.test_resolver_delivery import Vendor, work
from tests.support.pipeline import Pipeline, build_pipeline

EMAIL = "failed-view@example.com"


@pytest.fixture
def pipe(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> Iterator[Pipeline]:
    with guarded():
        yield build_pipeline(aws, monkeypatch)


def failed_at_braze(pipe: Pipeline) -> tuple[str, str]:
    """An opt-out braze refused for good; its request id and the job's completed_at."""
    request_id = pipe.post("/v1/opt-out", {"email": EMAIL, "purposes": ["sale"]})["request_id"]
    pipe.resolve()
    work(pipe, "braze", Vendor(refuse=True))
    (job,) = [i for i in pipe.items(f"REQ#{request_id}") if i["sk"] == "JOB#braze"]
    assert job["status"] == "failed"
    return request_id, str(job["completed_at"])


def test_a_lookup_names_the_system_whose_job_failed(pipe: Pipeline) -> None:
    # Given an opt-out braze refused for good
    request_id, completed_at = failed_at_braze(pipe)
    # When an operator looks the person up
    found = ok(call(pipe, "POST", "/v1/admin/lookup", {"type": "email", "value": EMAIL}))
    # Then braze is not delivered, not in flight, and it is listed as failed with its job
    assert "braze" not in found["delivered"] and "braze" not in found["in_flight"]
    assert found["failed"]["braze"] == [
        {"job_id": f"{request_id}:braze", "purposes": ["sale"], "completed_at": completed_at}
    ]


def test_an_identity_exports_delivery_names_the_failed_job(pipe: Pipeline) -> None:
    # Given the same failure, read by the watch
    request_id, completed_at = failed_at_braze(pipe)
    watch(pipe)
    # When an operator exports the email's records
    body = {"type": "email", "value": EMAIL}
    records = ok(call(pipe, "POST", "/v1/admin/exports/identity", body))["records"]
    # Then braze's delivery record says which job failed, for which purposes
    (delivery,) = [r for r in records if r["record"] == "delivery" and r["system"] == "braze"]
    assert (delivery["confirmed"], delivery["in_flight"]) == ([], [])
    assert delivery["failed"] == [
        {"job_id": f"{request_id}:braze", "purposes": ["sale"], "completed_at": completed_at}
    ]


def test_a_replayed_job_leaves_the_failed_list(pipe: Pipeline) -> None:
    # Given the failure, then the operator's replay and braze confirming the job
    failed_at_braze(pipe)
    ok(call(pipe, "POST", "/v1/admin/systems/braze/replay", params={"system": "braze"}), 202)
    pipe.resolve()
    work(pipe, "braze", Vendor())
    # Then the lookup reads it delivered and no longer failed
    found = ok(call(pipe, "POST", "/v1/admin/lookup", {"type": "email", "value": EMAIL}))
    assert found["delivered"]["braze"] == ["sale"]
    assert "braze" not in found["failed"]
