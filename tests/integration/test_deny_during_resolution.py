"""A denial that lands while the resolver resolves the request (session 36, proof35 L2).

The resolver reads the request's DENIAL once, with its identity nodes; a denial written after
that read is too late to stop the run, whose jobs go to the vendors. Before session 36 the deny
answered 200 `denied` and nothing said so: only the record's timestamps showed jobs made after
`denied_at`. Now the deny reads the request again after its write and answers the systems its
jobs were made for (`systems_under_way`, and `resolved` false while the resolver has recorded
nothing), and the resolver reads the denials of its batch's requests again once their jobs are
stored and before they are sent, adding its systems to the denial's record. Interleaved on
purpose: the denial lands before each of the run's job writes in turn, and after its last read.
"""

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from local.moto_guard import guarded
from optout.resolver import service as resolver_service
from optout.resolver.outbox import Outbox
from tests.conftest import Aws
from tests.integration.test_operator_routes import call, deny, ok
from tests.support.pipeline import Pipeline, build_pipeline

EMAIL = "deny-during@example.com"


@pytest.fixture
def pipe(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> Iterator[Pipeline]:
    with guarded():
        yield build_pipeline(aws, monkeypatch)


def job_systems(pipe: Pipeline, request_id: str) -> list[str]:
    """The systems of the request's own jobs, as stored now."""
    items = pipe.partition(f"REQ#{request_id}")
    return sorted(str(i["sk"]).removeprefix("JOB#") for i in items
                  if str(i["sk"]).startswith("JOB#"))  # fmt: skip


def denying_at(pipe: Pipeline, request_id: str, nth: int, answers: list[Any]) -> Callable[..., Any]:
    """`put_once` for the resolver: the operator's deny lands just before its `nth` job write
    (0: before the first); the deny's answer and the jobs stored then are kept in `answers`."""
    original = resolver_service.put_once
    seen: list[str] = []

    def put(table: Any, item: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        if str(item.get("sk", "")).startswith("JOB#"):
            if len(seen) == nth and not answers:
                answers.append((job_systems(pipe, request_id), ok(deny(pipe, request_id))))
            seen.append(str(item["sk"]))
        return original(table, item, *args, **kwargs)

    return put


def record_of(pipe: Pipeline, request_id: str) -> dict[str, Any]:
    path = f"/v1/admin/requests/{request_id}"
    return ok(call(pipe, "GET", path, params={"request_id": request_id}))  # type: ignore[no-any-return]


def sent(pipe: Pipeline) -> set[str]:
    """The request ids of every job message waiting (the queues are emptied)."""
    return {m["request_id"] for ms in pipe.drain_all().values() for m in ms}


@pytest.mark.parametrize("nth", [0, 1, 3, 5])
def test_a_denial_landing_while_the_jobs_are_made_names_every_system_they_go_to(
    pipe: Pipeline, monkeypatch: pytest.MonkeyPatch, nth: int
) -> None:
    # Given an opt-out the resolver has begun: it read no denial, and is making its jobs
    request_id = pipe.post("/v1/opt-out", {"email": EMAIL})["request_id"]
    answers: list[Any] = []
    monkeypatch.setattr(resolver_service, "put_once", denying_at(pipe, request_id, nth, answers))
    # When an operator's denial lands before its nth job write, and the run finishes
    assert pipe.resolve() == {"batchItemFailures": []}
    ((before, answer),) = answers
    made = job_systems(pipe, request_id)
    assert len(made) > nth and len(before) == nth
    # Then the deny's answer named the systems whose jobs were stored when it was written, and
    # said the resolver had not recorded the request yet (more may follow)
    assert answer["status"] == "denied"
    assert (answer["systems_under_way"], answer["resolved"]) == (before, False)
    # ... the run's jobs went on (a denial stops no job already begun) ...
    assert sent(pipe) == {request_id}
    # ... and the denial's record names every system they went to, as does the export
    record = record_of(pipe, request_id)
    assert record["status"] == "denied"
    assert record["denial"]["systems_under_way"] == made
    today = datetime.now(UTC).date().isoformat()
    export = ok(call(pipe, "POST", "/v1/admin/exports/range", {"from": today, "to": today}))
    (denial,) = [r for r in export["records"] if r["record"] == "denial"]
    assert denial["systems_under_way"] == made


def test_a_denial_landing_after_the_resolvers_last_read_is_answered_with_every_system(
    pipe: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given an opt-out whose run has stored its jobs and read no denial since, about to send
    request_id = pipe.post("/v1/opt-out", {"email": EMAIL})["request_id"]
    answers: list[Any] = []
    original = Outbox.flush

    def flush(self: Outbox, *args: Any, **kwargs: Any) -> None:
        if not answers:
            answers.append(ok(deny(pipe, request_id)))
        original(self, *args, **kwargs)

    monkeypatch.setattr(Outbox, "flush", flush)
    # When the denial lands then, and the run sends its jobs
    assert pipe.resolve() == {"batchItemFailures": []}
    # Then the deny's own answer named every system (the resolver's read came first)
    made = job_systems(pipe, request_id)
    ((answer),) = answers
    assert made and answer["systems_under_way"] == made and answer["resolved"] is False
    assert sent(pipe) == {request_id}
    assert record_of(pipe, request_id)["denial"]["systems_under_way"] == made


def test_a_denial_of_a_resolved_request_answers_its_jobs_under_way(pipe: Pipeline) -> None:
    # Given an opt-out resolved, its jobs sent and not answered yet
    request_id = pipe.post("/v1/opt-out", {"email": EMAIL})["request_id"]
    assert pipe.resolve() == {"batchItemFailures": []}
    made = job_systems(pipe, request_id)
    # When an operator denies it
    answer = ok(deny(pipe, request_id))
    # Then the answer says which systems its jobs may still reach, and that it was resolved
    assert (answer["systems_under_way"], answer["resolved"]) == (made, True)
    assert record_of(pipe, request_id)["denial"]["systems_under_way"] == made


def test_a_denial_before_the_resolution_names_no_system(pipe: Pipeline) -> None:
    # Given an opt-out the resolver has not taken yet
    request_id = pipe.post("/v1/opt-out", {"email": EMAIL})["request_id"]
    # When an operator denies it, and the resolver then takes it
    answer = ok(deny(pipe, request_id))
    assert pipe.resolve() == {"batchItemFailures": []}
    # Then nothing was under way, and nothing was made or sent since
    assert (answer["systems_under_way"], answer["resolved"]) == ([], False)
    assert job_systems(pipe, request_id) == [] and sent(pipe) == set()
    assert record_of(pipe, request_id)["denial"]["systems_under_way"] == []
