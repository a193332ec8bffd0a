"""Two jobs of one person at one vendor in flight at once, answered in turn (review s22 race).

The resolver, the worker's domain service and the admin routes run over moto; each job's
message is held and delivered when the test says, so the order of the answers is chosen, not
hoped for. The vendor is a stand-in answering per request (the vendors' own shapes are tested
in tests/unit/connectors)."""

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from optout.connectors.base import Job, Outcome
from tests.conftest import Aws
from tests.integration.test_resolver_delivery import deliver
from tests.support.pipeline import Pipeline, build_pipeline

EMAIL = "overlap@example.com"


@dataclass
class Vendor:
    """Answers each job with the status `answers` names for its request (done otherwise)."""

    answers: dict[str, str] = field(default_factory=dict)
    received: list[Job] = field(default_factory=list)

    def deliver(self, jobs: list[Job]) -> list[Outcome]:
        self.received.extend(jobs)
        return [
            Outcome(j.job_id, self.answers.get(j.job_id, "done"), http_status=200)  # type: ignore[arg-type]
            for j in jobs
        ]


@pytest.fixture
def pipe(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> Iterator[Pipeline]:
    yield build_pipeline(aws, monkeypatch)


def opt_out_at(
    pipe: Pipeline, monkeypatch: pytest.MonkeyPatch, seconds: int, purposes: list[str]
) -> str:
    """An opt-out of `purposes` by EMAIL, resolved `seconds` from now: its request id."""
    request_id = str(pipe.post("/v1/opt-out", {"email": EMAIL, "purposes": purposes})["request_id"])
    later = datetime.now(UTC) + timedelta(seconds=seconds)
    monkeypatch.setattr(pipe.resolver.resolver(), "_clock", lambda: later)
    pipe.resolve()
    return request_id


def resolution_of(pipe: Pipeline, request_id: str) -> dict[str, Any]:
    return next(i for i in pipe.partition(f"REQ#{request_id}") if i["sk"] == "RESOLUTION")


def test_a_no_record_answer_landing_after_a_newer_job_was_marked_does_not_quiet_that_job(
    pipe: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given an opt-out of sale whose Braze job is still in flight when the same person opts
    # out of targeted advertising (a second Braze job, made a minute later)
    first = opt_out_at(pipe, monkeypatch, 0, ["sale"])
    first_job = pipe.drain("braze")
    second = opt_out_at(pipe, monkeypatch, 60, ["targeted_advertising"])
    second_job = pipe.drain("braze")
    assert [b["request_id"] for b in first_job + second_job] == [first, second]
    # When Braze answers the first "no such person" and then the second done (the person
    # became its customer between the two, or its lookup lagged)
    vendor = Vendor({f"{first}:braze": "no_record"})
    deliver(pipe, first_job, vendor)
    deliver(pipe, second_job, vendor)
    # Then a third opt-out, of sharing, within the quiet period, still asks Braze: its newest
    # word on this person is the done receipt, not the older "no such person" (before: the
    # first job's free stamped the mark the second job had cleared, and the share opt-out was
    # recorded as not asked, never sent to a vendor that holds the person)
    third = opt_out_at(pipe, monkeypatch, 120, ["share"])
    assert [b["request_id"] for b in pipe.drain("braze")] == [third]
    assert "braze" not in resolution_of(pipe, third).get("not_asked", {})


def test_a_no_record_answer_still_quiets_the_person_when_no_newer_job_is_marked(
    pipe: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given an older opt-out's Braze job confirmed done, then a newer one's answered "no such
    # person" (the vendor forgot the person since)
    older = opt_out_at(pipe, monkeypatch, 0, ["sale"])
    deliver(pipe, pipe.drain("braze"), Vendor())
    newer = opt_out_at(pipe, monkeypatch, 60, ["targeted_advertising"])
    deliver(pipe, pipe.drain("braze"), Vendor({f"{newer}:braze": "no_record"}))
    # When the person opts out of sharing within the quiet period
    third = opt_out_at(pipe, monkeypatch, 120, ["share"])
    # Then Braze is not asked: the newest answer is "no such person"
    assert pipe.drain("braze") == []
    quiet = resolution_of(pipe, third)["not_asked"]["braze"]
    assert [q["job_id"] for q in quiet] == [f"{newer}:braze"]
    assert older != newer
