"""Every request carries its proof: a system that already holds a person's opt-out is counted
for a later request too, citing the earlier receipt (its request id and date)."""

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from optout.status import REPLAY_CAP
from tests.conftest import Aws
from tests.integration.test_resolver_delivery import Vendor, work
from tests.support.http_events import http_event, json_body
from tests.support.lambdas import invoke
from tests.support.pipeline import QUEUE_KEYS, Pipeline, build_pipeline

EMAIL = "proof@example.com"
EMAIL_SYSTEMS = {"webhook", "braze", "salesforce", "google_ads", "meta", "trade_desk"}


@pytest.fixture
def pipe(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> Iterator[Pipeline]:
    yield build_pipeline(aws, monkeypatch)


def work_everything(pipe: Pipeline) -> None:
    for key in QUEUE_KEYS:
        work(pipe, key, Vendor())


def status(pipe: Pipeline, request_id: str) -> dict[str, Any]:
    """The public status once any earlier answer it relies on is replayed (tests/unit/
    test_status.py times that): what the proofs decide, whatever the vendors' timings."""
    after_replays = datetime.now(UTC) + REPLAY_CAP
    return pipe.get_at(after_replays, f"/v1/requests/{request_id}", request_id=request_id)


def detail(pipe: Pipeline, request_id: str) -> dict[str, Any]:
    path = f"/v1/admin/requests/{request_id}"
    event = http_event("GET", path, path_parameters={"request_id": request_id}, iam=True)
    answer = invoke(pipe.admin, event)
    assert answer["statusCode"] == 200, answer["body"]
    found: dict[str, Any] = json_body(answer)
    return found


def test_a_repeat_opt_out_counts_the_systems_that_hold_the_earlier_one(pipe: Pipeline) -> None:
    # Given an opt-out delivered to every system that takes an email
    first = pipe.post("/v1/opt-out", {"email": EMAIL})["request_id"]
    pipe.resolve()
    work_everything(pipe)
    assert status(pipe, first)["status"] == "completed"
    # When the same person opts out again
    second = pipe.post("/v1/opt-out", {"email": EMAIL})["request_id"]
    pipe.resolve()
    # Then no job is sent again, yet the status counts every system that holds the opt-out
    assert pipe.drain_all() == {key: [] for key in QUEUE_KEYS}
    answer = status(pipe, second)
    assert answer["status"] == "completed"
    assert (answer["systems_total"], answer["systems_done"]) == (6, 6)
    assert answer["completed_at"] is not None


def test_the_record_names_the_earlier_receipt_with_its_request_and_date(pipe: Pipeline) -> None:
    first = pipe.post("/v1/opt-out", {"email": EMAIL})["request_id"]
    pipe.resolve()
    work_everything(pipe)
    second = pipe.post("/v1/opt-out", {"email": EMAIL})["request_id"]
    pipe.resolve()
    # When an operator reads the second request's record
    systems = {s["system"]: s for s in detail(pipe, second)["systems"]}
    # Then each system cites the first request's receipt
    assert set(systems) == EMAIL_SYSTEMS
    for system in systems.values():
        assert system["proof"] == "earlier"
        (cited,) = system["satisfied_by"]
        assert cited["request_id"] == first
        assert cited["status"] == "done" and cited["completed_at"]


def test_a_repeat_while_the_first_is_in_flight_completes_when_the_first_does(
    pipe: Pipeline,
) -> None:
    # Given an opt-out whose jobs are still queued
    pipe.post("/v1/opt-out", {"email": EMAIL})
    pipe.resolve()
    # When the same person opts out again before any system answered
    second = pipe.post("/v1/opt-out", {"email": EMAIL})["request_id"]
    pipe.resolve()
    # Then the second is processing on the first's jobs, and completes with them
    before = status(pipe, second)
    assert (before["status"], before["systems_total"], before["systems_done"]) == (
        "processing", 6, 0,
    )  # fmt: skip
    work_everything(pipe)
    after = status(pipe, second)
    assert (after["status"], after["systems_done"]) == ("completed", 6)


def test_a_wider_repeat_has_its_own_job_and_cites_the_earlier_one(pipe: Pipeline) -> None:
    # Given an opt-out of sale only, delivered
    first = pipe.post("/v1/opt-out", {"email": EMAIL, "purposes": ["sale"]})["request_id"]
    pipe.resolve()
    work_everything(pipe)
    # When the person opts out of sale and share
    second = pipe.post("/v1/opt-out", {"email": EMAIL, "purposes": ["sale", "share"]})
    pipe.resolve()
    # Then each system gets a job of its own (for share), and the record cites the first
    braze = next(s for s in detail(pipe, second["request_id"])["systems"] if s["system"] == "braze")
    assert braze["proof"] == "both"
    assert [c["request_id"] for c in braze["satisfied_by"]] == [first]
    assert status(pipe, second["request_id"])["status"] == "processing"
    work_everything(pipe)
    assert status(pipe, second["request_id"])["status"] == "completed"


def test_a_request_that_names_someone_and_asks_nothing_learns_nothing_of_their_opt_out(
    pipe: Pipeline,
) -> None:
    # Given a person whose opt-out every system that takes an email has confirmed
    pipe.post("/v1/opt-out", {"email": EMAIL})
    pipe.resolve()
    work_everything(pipe)
    # When a stranger's browser names that email, without a token, and opts out of nothing
    probe = pipe.post("/v1/consent", {"device_id": "dev-stranger-probe-0001", "opt_out": {},
                                      "identity": {"email": EMAIL}})["request_id"]  # fmt: skip
    pipe.resolve()
    # Then the stranger's own status says nothing about which systems hold the person's opt-out
    answer = status(pipe, probe)
    assert (answer["systems_total"], answer["systems_done"]) == (0, 0)
    assert pipe.drain_all() == {key: [] for key in QUEUE_KEYS}


@pytest.mark.parametrize(
    ("request_path", "named"),
    [
        ("/v1/opt-out", {"email": EMAIL}),
        ("/v1/consent", {"device_id": "dev-known-browser-0001", "opt_out": {"profiling": True}}),
    ],
    ids=["an email linked to a customer id", "a browser linked to an email"],
)
def test_a_requests_public_status_does_not_tell_who_the_named_identifier_is_linked_to(
    pipe: Pipeline, request_path: str, named: dict[str, Any]
) -> None:
    # Given the business's backend linked the email to a customer id and to a browser
    links = [
        {"a": {"type": "email", "value": EMAIL}, "b": {"type": "customer_id", "value": "c-7"}},
        {"a": {"type": "email", "value": EMAIL},
         "b": {"type": "device_id", "value": "dev-known-browser-0001"}},
    ]  # fmt: skip
    pipe.post("/v1/identity-links", {"links": links}, iam=True)
    pipe.resolve()
    pipe.drain_all()
    # When a stranger sends an opt-out naming the linked identifier, and the same kind of
    # opt-out naming an identifier of the same type that nobody linked
    stranger = {"email": "nobody@example.com"} if "email" in named else {
        "device_id": "dev-unknown-browser-01", "opt_out": {"profiling": True}}  # fmt: skip
    linked = pipe.post(request_path, named)["request_id"]
    unlinked = pipe.post(request_path, stranger)["request_id"]
    pipe.resolve()
    # Then both public statuses count the same systems: those that take what was named
    public = [status(pipe, linked), status(pipe, unlinked)]
    counts = [(s["systems_total"], s["status"]) for s in public]
    assert counts[0] == counts[1], counts
    # ... while the operator's view of the linked one shows every system it reached
    everything = detail(pipe, linked)
    assert len(everything["systems"]) > public[0]["systems_total"]
