"""One event resolved twice at once: the sweep's redrive of an event it found unresolved, and
its late stream record (review s22 race R5).

The first resolver writes the Braze job and is paused just before it marks the person in flight
for it; meanwhile the second finds the job stored ("a replayed event: the stored job stands")
and sends its message, and the worker ends it "no such person", freeing and stamping a mark the
first has not written yet. The first then marks the person in flight for a job that has ended,
and its write removes the quiet period's stamp."""

from collections.abc import Iterator
from typing import Any

import pytest

from optout.store import delivery
from tests.conftest import Aws
from tests.integration.test_resolver_delivery import Vendor, deliver
from tests.support import iam
from tests.support.pipeline import Pipeline, build_pipeline

EMAIL = "twice@example.com"


@pytest.fixture
def pipe(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> Iterator[Pipeline]:
    yield build_pipeline(aws, monkeypatch)


def resolution_of(pipe: Pipeline, request_id: str) -> dict[str, Any]:
    return next(i for i in pipe.partition(f"REQ#{request_id}") if i["sk"] == "RESOLUTION")


def resolve_twice_at_once(
    pipe: Pipeline, monkeypatch: pytest.MonkeyPatch, vendor: Any, body: dict[str, Any]
) -> str:
    """The opt-out `body` resolved by the late stream record's resolver, paused before its
    first Braze mark while the sweep's redrive resolves it and a worker delivers the job to
    `vendor`; its request id."""
    first: str = pipe.post("/v1/opt-out", body)["request_id"]
    records = pipe.event_records()
    original = delivery.mark_flight
    paused: list[str] = []

    def second_resolver_and_worker_first(
        table: Any, system: str, *args: Any, **kwargs: Any
    ) -> bool:
        if system == "braze" and not paused:
            paused.append(system)
            assert pipe.resolve(records) == {"batchItemFailures": []}  # the sweep's redrive
            outside = iam.current_function.set(None)  # the worker's calls are not the resolver's
            deliver(pipe, pipe.drain("braze"), vendor)
            iam.current_function.reset(outside)
        return bool(original(table, system, *args, **kwargs))

    monkeypatch.setattr(delivery, "mark_flight", second_resolver_and_worker_first)
    assert pipe.resolve(records) == {"batchItemFailures": []}  # the late stream record
    monkeypatch.setattr(delivery, "mark_flight", original)
    assert paused
    return first


@pytest.mark.parametrize("answer", ["no_record", "failed"])
def test_an_event_resolved_twice_at_once_leaves_no_mark_naming_a_job_that_has_ended(
    pipe: Pipeline, monkeypatch: pytest.MonkeyPatch, answer: str
) -> None:
    vendor = Vendor(refuse=True) if answer == "failed" else Vendor(status=answer)
    first = resolve_twice_at_once(pipe, monkeypatch, vendor, {"email": EMAIL, "purposes": ["sale"]})
    pipe.drain_all()
    # When the same person opts out again within the quiet period
    second = pipe.post("/v1/opt-out", {"email": EMAIL, "purposes": ["sale"]})["request_id"]
    pipe.resolve()
    # Then Braze is quiet for them, as after the same answer in the serial order (the mark the
    # first resolver wrote late named the ended job in flight, so the second cited it as its
    # proof, read processing, and waited for the sweep's re-open)
    resolution = resolution_of(pipe, second)
    assert "braze" not in (resolution.get("covered") or {})
    if answer == "no_record":
        assert [q["job_id"] for q in resolution["not_asked"]["braze"]] == [f"{first}:braze"]
    else:
        # after a failure the next request asks again, with a job of its own
        assert "braze" not in (resolution.get("not_asked") or {})
        assert any(i["sk"] == "JOB#braze" for i in pipe.partition(f"REQ#{second}"))
    # ... and the first request's job kept its answer (nothing re-planned over it)
    job = next(i for i in pipe.partition(f"REQ#{first}") if i["sk"] == "JOB#braze")
    assert job["status"] == answer


def test_a_done_job_found_in_the_race_keeps_the_marks_of_the_types_it_proved(
    pipe: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    # review s22 diff A2: Braze answered done having sent the email only; the worker freed the
    # customer id's mark (a type not proven), which sorts first, and the late resolver stopped
    # there, leaving the email it proved unmarked: the person's next opt-out sent Braze again
    body = {"email": EMAIL, "customer_id": "cust-000123", "purposes": ["sale"]}
    first = resolve_twice_at_once(pipe, monkeypatch, Vendor(sent=("email",)), body)
    pipe.drain_all()
    marks = {i["pk"].split("#")[1]: i for i in pipe.items("ID#") if i["sk"] == "DELIVERY#braze"}
    assert marks["email"]["job_sale"] == f"{first}:braze"
    assert "sale" in marks["email"]["inflight"]
    assert "sale" not in marks["customer_id"].get("inflight", set())
    # When the same person opts out again by email, Braze is not asked again: done proves it
    second = pipe.post("/v1/opt-out", {"email": EMAIL, "purposes": ["sale"]})["request_id"]
    pipe.resolve()
    assert pipe.drain("braze") == []
    assert resolution_of(pipe, second)["covered"]["braze"] == [f"{first}:braze"]
