"""A request an operator denies before the resolver has resolved it is not carried out
(review s22 diff B1): no system is asked, no identity state changes, and its record, its status
page and the §7102 figures say denied with no systems. Run through the real handlers: capture,
the admin route, the stream, the resolver, the sweep's redrive and the workers."""

import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError

from local.moto_guard import guarded
from optout.resolver import service as resolver_service
from optout.resolver.outbox import Outbox
from optout.resolver.service import Resolver
from optout.store.codec import deserialize
from optout.store.table import Table
from optout.sweep import Sweeper, SweepSettings
from tests.conftest import Aws
from tests.integration.test_operator_routes import call, deny, ok, watch
from tests.integration.test_resolver_delivery import Vendor, deliver, work
from tests.support.aws_hooks import session_hooks
from tests.support.http_events import http_event
from tests.support.lambdas import invoke
from tests.support.pipeline import QUEUE_KEYS, Pipeline, build_pipeline

EMAIL = "deny-first@example.com"
OTHER = "not-denied@example.com"


@pytest.fixture
def pipe(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> Iterator[Pipeline]:
    with guarded():
        yield build_pipeline(aws, monkeypatch)


def page_text(pipe: Pipeline, request_id: str) -> str:
    """The status page's main text, tags as " | "."""
    path = f"/v1/requests/{request_id}"
    event = http_event("GET", path, path_parameters={"request_id": request_id},
                       headers={"accept": "text/html"})  # fmt: skip
    body = invoke(pipe.capture, event)["body"].split("<main>")[1]
    return re.sub(r"(\s*\|\s*)+", " | ", re.sub(r"<[^>]+>", " | ", body))


def queued(pipe: Pipeline) -> set[str]:
    """The request ids of every job message waiting (the queues are emptied)."""
    return {m["request_id"] for ms in pipe.drain_all().values() for m in ms}


def own_items(pipe: Pipeline, request_id: str) -> dict[str, dict[str, Any]]:
    return {i["sk"]: i for i in pipe.partition(f"REQ#{request_id}")}


def assert_denied_without_systems(pipe: Pipeline, request_id: str) -> None:
    items = own_items(pipe, request_id)
    assert not [sk for sk in items if sk.startswith("JOB#")]
    assert {k: items["RESOLUTION"].get(k) for k in ("jobs_total", "denied")} == {
        "jobs_total": 0, "denied": True,
    }  # fmt: skip
    status = pipe.get(f"/v1/requests/{request_id}", request_id=request_id)
    assert (status["status"], status["systems_total"], status["systems_done"]) == ("denied", 0, 0)
    text = page_text(pipe, request_id)
    assert "we could not act on this request" in text and "Systems | none |" in text
    assert "asked" not in text and "keep your opt-out" not in text


@pytest.mark.parametrize("purposes", [None, ["limit_sensitive"]], ids=["opt_out", "limit"])
def test_a_request_denied_before_it_is_resolved_asks_no_system(
    pipe: Pipeline, purposes: list[str] | None
) -> None:
    # Given an opt-out (or a request to limit) and another person's, both not resolved yet
    body: dict[str, Any] = {"email": EMAIL} | ({"purposes": purposes} if purposes else {})
    request_id = pipe.post("/v1/opt-out", body)["request_id"]
    other = pipe.post("/v1/opt-out", {"email": OTHER})["request_id"]
    # When an operator denies the first (a fraud burst, the resolver lagging), and then the
    # resolver takes both in one batch and the workers run
    ok(deny(pipe, request_id))
    records = pipe.event_records()
    assert pipe.resolve(records) == {"batchItemFailures": []}
    waiting = queued(pipe)
    for key in QUEUE_KEYS:
        work(pipe, key, Vendor())
    # Then no job was made for it, and the other request was carried out as usual
    assert waiting == {other}
    assert_denied_without_systems(pipe, request_id)
    # ... nor did it change any identity: its email has no node, state or link
    assert not [i for i in pipe.items("ID#") if i["pk"].endswith(own_key(pipe, request_id))]
    # ... and its stream record delivered again (the stream's retry) makes none either
    again = [r for r in records if r["dynamodb"]["NewImage"]["request_id"]["S"] == request_id]
    assert pipe.resolve(again) == {"batchItemFailures": []}
    assert queued(pipe) == set()
    assert_denied_without_systems(pipe, request_id)
    # ... and the sweep, at its 2 h 15 min checkpoint, finds it resolved: "denied, no
    # systems" with no job of its own is the record of what was done (review s23 diff A7:
    # only a denied record beside jobs is redriven, D4)
    table = Table(pipe.aws.dynamodb, pipe.aws.table_name)
    later = datetime.now(UTC) + timedelta(hours=2, minutes=16)
    assert Sweeper(table, SweepSettings(), clock=lambda: later).sweep().unresolved == []


def own_key(pipe: Pipeline, request_id: str) -> str:
    """The keyed hash of the email the request named (as its EVENT stores it)."""
    event = own_items(pipe, request_id)["EVENT"]
    (identifier,) = event["identifiers"]
    return str(identifier["key"])


def test_a_denied_request_the_sweep_redrives_asks_no_system(pipe: Pipeline) -> None:
    # Given an opt-out whose stream record was lost before the resolver ran, then denied
    request_id = pipe.post("/v1/opt-out", {"email": EMAIL})["request_id"]
    pipe.event_records()  # read and dropped
    ok(deny(pipe, request_id))
    # When the sweep finds it unresolved and the resolver takes its redrive event
    table = Table(pipe.aws.dynamodb, pipe.aws.table_name)
    later = datetime.now(UTC) + timedelta(hours=2, minutes=16)
    report = Sweeper(table, SweepSettings(), clock=lambda: later).sweep()
    assert report.unresolved == [request_id]
    assert pipe.resolve() == {"batchItemFailures": []}
    # Then it is resolved as denied, and no job was made or sent
    assert queued(pipe) == set()
    assert_denied_without_systems(pipe, request_id)
    # ... and the §7102 figures count it denied
    watch(pipe, datetime.now(UTC) + timedelta(minutes=10))
    year = str(datetime.now(UTC).year)
    figures = ok(call(pipe, "GET", "/v1/admin/metrics", query={"year": year}))["requests"]
    assert (figures["received"], figures["denied"], figures["open"]) == (1, 1, 0)
    # ... as does its export, with no system
    today = datetime.now(UTC).date().isoformat()
    export = ok(call(pipe, "POST", "/v1/admin/exports/range", {"from": today, "to": today}))
    mine = {r["record"]: r for r in export["records"] if r["request_id"] == request_id}
    assert (mine["request"]["status"], mine["request"]["systems_total"]) == ("denied", 0)
    assert (mine["resolution"]["denied"], mine["resolution"]["jobs_total"]) == (True, 0)
    assert mine["denial"]["reason_code"] == "suspected_fraud"


def test_a_denial_after_the_resolver_made_the_jobs_lets_its_retry_send_them(
    pipe: Pipeline,
) -> None:
    # Given an opt-out whose first resolution made its jobs, then failed to send them (SQS down)
    request_id = pipe.post("/v1/opt-out", {"email": EMAIL})["request_id"]
    records = pipe.event_records()

    def unavailable(**_: Any) -> None:
        raise ClientError({"Error": {"Code": "ServiceUnavailable", "Message": "injected"}},
                          "SendMessageBatch")  # fmt: skip

    with session_hooks("deny-first", pipe.resolver.resolver.cache_clear) as register:
        register("before-call.sqs.SendMessageBatch", unavailable)
        with pytest.raises(ClientError):
            pipe.resolve(records)
    pipe.resolver.resolver.cache_clear()
    made = [sk for sk in own_items(pipe, request_id) if sk.startswith("JOB#")]
    assert made
    # When an operator denies it (no system has answered yet), and the stream retries the batch
    ok(deny(pipe, request_id))
    assert pipe.resolve(records) == {"batchItemFailures": []}
    # Then the jobs already made are sent (as after a denial that lands once it is resolved:
    # they may complete), and none is left pending with no message
    assert queued(pipe) == {request_id}
    assert "denied" not in own_items(pipe, request_id)["RESOLUTION"]
    assert pipe.get(f"/v1/requests/{request_id}", request_id=request_id)["status"] == "denied"


def test_a_denial_after_the_resolver_wrote_the_nodes_lets_its_retry_finish(
    pipe: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given an opt-out whose first resolution wrote its identity's node, then died before any
    # job (a throttle, a timeout)
    request_id = pipe.post("/v1/opt-out", {"email": EMAIL})["request_id"]
    records = pipe.event_records()
    with monkeypatch.context() as patch:
        patch.setattr(Resolver, "_link", died)
        assert pipe.resolve(records)["batchItemFailures"]
    pipe.resolver.resolver.cache_clear()
    assert not [sk for sk in own_items(pipe, request_id) if sk.startswith("JOB#")]
    # When an operator denies it, and the stream retries the batch
    ok(deny(pipe, request_id))
    assert pipe.resolve(records) == {"batchItemFailures": []}
    # Then the run is finished as it began (review s22 diff C1: its retry found the denial and
    # no job and stopped, but the node already held the opt-out, and a later event of the
    # person's cluster, here a link asking nothing, carried it to every system under its own id)
    assert queued(pipe) == {request_id}
    links = {"links": [{"a": {"type": "customer_id", "value": "cust-deny-1"},
                        "b": {"type": "email", "value": EMAIL}}]}  # fmt: skip
    linked = pipe.post("/v1/identity-links", links, iam=True)["request_id"]
    assert pipe.resolve() == {"batchItemFailures": []}
    queued(pipe)
    # ... and the link's own jobs carry the newly linked customer id only: the email was asked
    # by the request itself
    carried = {i["type"] for sk, job in own_items(pipe, linked).items() if sk.startswith("JOB#")
               for i in job["identifiers"]}  # fmt: skip
    assert carried <= {"customer_id"}
    assert pipe.get(f"/v1/requests/{request_id}", request_id=request_id)["status"] == "denied"


def denied_by_a_second_run(
    pipe: Pipeline, request_id: str, event: dict[str, Any], fired: list[bool]
) -> Callable[..., Any]:
    """`put_versioned` for the run that began: before its first node write, the operator denies
    the request and a second run of the same event reads the denial, finds nothing begun and
    records "denied, no jobs" (once; `fired` says it happened)."""
    original = resolver_service.put_versioned

    def put(*args: Any, **kwargs: Any) -> Any:
        if not fired:
            fired.append(True)
            ok(deny(pipe, request_id))
            assert pipe.resolver.resolver().process(dict(event)).jobs == []
            assert own_items(pipe, request_id)["RESOLUTION"]["denied"] is True
        return original(*args, **kwargs)

    return put


def test_two_runs_at_once_keep_the_record_of_the_one_that_made_jobs(
    pipe: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given one event resolved twice at once (its late stream record and the sweep's redrive):
    # the first run read no denial and is about to write its node; the operator denies; the
    # second run reads the denial, no node of it and no job, and records "denied, no jobs" first
    request_id = pipe.post("/v1/opt-out", {"email": EMAIL})["request_id"]
    records = pipe.event_records()
    event = deserialize(records[0]["dynamodb"]["NewImage"])
    fired: list[bool] = []
    monkeypatch.setattr(
        resolver_service, "put_versioned", denied_by_a_second_run(pipe, request_id, event, fired)
    )
    assert pipe.resolve(records) == {"batchItemFailures": []}
    assert fired
    # Then the first run's jobs went out, and the record is theirs, not "denied, no jobs"
    # (review s22 diff C2: it said no system was asked while six were, and lacked the
    # linked-only systems the public view must leave out)
    items = own_items(pipe, request_id)
    jobs = [sk for sk in items if sk.startswith("JOB#")]
    assert jobs and queued(pipe) == {request_id}
    assert "denied" not in items["RESOLUTION"]
    assert items["RESOLUTION"]["jobs_total"] == len(jobs)
    status = pipe.get(f"/v1/requests/{request_id}", request_id=request_id)
    assert (status["status"], status["systems_total"]) == ("denied", len(jobs))


def test_a_request_resolved_then_denied_asks_nothing_new_when_run_again(pipe: Pipeline) -> None:
    # Given a request resolved with no job of its own (an earlier request's jobs, in flight,
    # carry its opt-out), then denied
    pipe.post("/v1/opt-out", {"email": EMAIL})
    assert pipe.resolve() == {"batchItemFailures": []}
    held = pipe.drain_all()
    request_id = pipe.post("/v1/opt-out", {"email": EMAIL})["request_id"]
    records = pipe.event_records()
    assert pipe.resolve(records) == {"batchItemFailures": []}
    assert own_items(pipe, request_id)["RESOLUTION"].get("covered")
    ok(deny(pipe, request_id))
    # ... and the covering jobs are refused for good since
    for bodies in held.values():
        deliver(pipe, bodies, Vendor(refuse=True))
    # When its event is run again (a stream retry from an earlier failed record of its batch)
    assert pipe.resolve(records) == {"batchItemFailures": []}
    # Then the denied request asks no system (review s22 diff D2: its nodes named it, so it
    # read as begun and made six jobs of its own), and its record stays the one it had
    items = own_items(pipe, request_id)
    assert not [sk for sk in items if sk.startswith("JOB#")]
    assert queued(pipe) == set()
    assert "denied" not in items["RESOLUTION"]


def test_jobs_made_after_deriving_again_are_never_owned_by_a_denied_request(
    pipe: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given one stream batch: a request denied before it was resolved, then another person's
    # opt-out, both run and not yet flushed
    denied = pipe.post("/v1/opt-out", {"email": OTHER})["request_id"]
    ok(deny(pipe, denied))
    request_id = pipe.post("/v1/opt-out", {"email": EMAIL})["request_id"]
    limit = pipe.post("/v1/opt-out", {"email": EMAIL, "purposes": ["limit_sensitive"]})
    images = (r["dynamodb"]["NewImage"] for r in pipe.event_records())
    events = {e["request_id"]: e for e in map(deserialize, images)}
    resolver = pipe.resolver.resolver()
    batch = Outbox()
    resolver.process(dict(events[denied]), batch)
    resolver.process(dict(events[request_id]), batch)
    # ... and another invocation's run (the person's request to limit) that wrote the
    # email's node and died before its jobs
    with monkeypatch.context() as patch, pytest.raises(RuntimeError, match="injected"):
        patch.setattr(Resolver, "_link", died)
        resolver.process(dict(events[limit["request_id"]]), Outbox())
    # When the batch is flushed: its check sees the node moved, derives again and makes the
    # job the state now calls for (limit_sensitive, to the webhook)
    resolver.flush(batch)
    # Then that job is owned by the request that was carried out, not by the denied one
    # (review s22 diff C3/D6: the denied request's record would name a job made "by" it)
    made = [sk for sk in own_items(pipe, request_id) if sk.startswith("REDERIVED#")]
    assert len(made) == 1 and made[0].startswith(f"REDERIVED#{request_id}~")
    assert set(own_items(pipe, denied)) == {"EVENT", "DENIAL", "RESOLUTION"}
    assert_denied_without_systems(pipe, denied)
    assert queued(pipe) == {request_id, made[0].removeprefix("REDERIVED#")}


def died(*_: Any, **__: Any) -> Any:
    raise RuntimeError("injected after the nodes")


def test_a_denied_record_that_landed_beside_jobs_is_replaced_when_the_sweep_redrives_it(
    pipe: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given an email linked to a customer number (segment takes only the number), then an
    # opt-out naming the email, resolved twice at once: the run that began reads no denial;
    # the operator denies; the second run records "denied, no jobs" first; the first run's
    # jobs go out, and its flush then fails for good before its record (the stream gives up)
    links = {"links": [{"a": {"type": "customer_id", "value": "cust-deny-d4"},
                        "b": {"type": "email", "value": EMAIL}}]}  # fmt: skip
    pipe.post("/v1/identity-links", links, iam=True)
    assert pipe.resolve() == {"batchItemFailures": []}
    request_id = pipe.post("/v1/opt-out", {"email": EMAIL})["request_id"]
    records = pipe.event_records()
    event = deserialize(records[0]["dynamodb"]["NewImage"])
    second_run_denied = denied_by_a_second_run(pipe, request_id, event, [])
    recorded = Resolver._resolved

    def flush_failed(resolver: Resolver, outbox: Outbox) -> None:
        if not all(r.get("denied") for r in outbox.resolutions):  # the run that made jobs
            raise RuntimeError("injected: the flush fails before the record")
        recorded(resolver, outbox)

    with monkeypatch.context() as patch, pytest.raises(RuntimeError, match="injected"):
        patch.setattr(resolver_service, "put_versioned", second_run_denied)
        patch.setattr(Resolver, "_resolved", flush_failed)
        pipe.resolve(records)
    pipe.resolver.resolver.cache_clear()
    items = own_items(pipe, request_id)
    jobs = sorted(sk for sk in items if sk.startswith("JOB#"))
    assert "JOB#segment" in jobs and items["RESOLUTION"]["denied"] is True
    queued(pipe)
    # When the sweep checks the request at its 2 h 15 min checkpoint, and the resolver takes
    # what it found
    table = Table(pipe.aws.dynamodb, pipe.aws.table_name)
    later = datetime.now(UTC) + timedelta(hours=2, minutes=16)
    report = Sweeper(table, SweepSettings(), clock=lambda: later).sweep()
    assert pipe.resolve() == {"batchItemFailures": []}
    # Then it was redriven as not resolved: "denied, no systems" beside jobs is no record of
    # what was done (review s22 diff D4), and the record is now the run's that made the jobs,
    # with the system reached only through the link left out of the public count
    assert request_id in report.unresolved
    items = own_items(pipe, request_id)
    assert "denied" not in items["RESOLUTION"]
    assert items["RESOLUTION"]["linked_only"] == ["segment"]
    assert sorted(sk for sk in items if sk.startswith("JOB#")) == jobs
    status = pipe.get(f"/v1/requests/{request_id}", request_id=request_id)
    assert (status["status"], status["systems_total"]) == ("denied", len(jobs) - 1)
