"""A job too big for one DynamoDB item is sent as parts (docs/decisions.md, "A job item is split
by size"; review s31 abuse F2: a cluster whose browsers named people before a login joined
them made one job of ~1,050 identities, past DynamoDB's 400 KB at `MaxClusterSize` 99, so the
write failed, the event was parked and the opt-out never reached the vendor).

The worst case is measured with the real bound (`parts.JOB_ITEM_BOUND`); the pipeline tests
lower it so that a cluster of a few dozen long identifiers is over it, and check what a part
changes: every identity reaches the vendor once, no item passes the bound (a receipt
included), the status is `completed` only when every part answered, and the RESOLUTION, the
export, the operator record and the §7102 figures count every part as the request's own."""

import random
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bench.counting import item_size
from optout.admin import AdminService
from optout.api_formats import JOB_REQUEST_ID_PATTERN
from optout.ops.contribution import contribution_of
from optout.ops.export import request_records
from optout.purposes import ALL_PURPOSES
from optout.resolver import parts
from optout.resolver.fanout import JobPlan, Member
from optout.resolver.outbox import Outbox
from optout.resolver.policy import OwnState
from optout.resolver.service import Resolver, _job_item, split_request_id
from optout.store import keys
from optout.store.batch import put
from optout.store.codec import deserialize, serialize
from optout.store.proof import load_with_proof, marked_jobs
from optout.store.requests import load_request
from optout.store.table import Table
from optout.sweep import Sweeper, SweepSettings
from optout.systems import load_systems
from tests.conftest import Aws
from tests.integration.test_pending_resend import watch_at
from tests.integration.test_resolver_delivery import SYSTEMS, Vendor, deliver, work
from tests.integration.test_sweeper import forget_the_mark, job_messages
from tests.support.http_events import http_event, json_body
from tests.support.lambdas import invoke
from tests.support.pipeline import Pipeline, build_pipeline
from tests.support.tokens import token_for

ACCOUNT = "account@example.com"
DEVICE = "dev-parts-browser-aaaaaaaa"
NAMED = 15  # webforms from the browser, each naming a long email and a long customer id
BOUND = 16_000  # the pipeline tests' bound: the browser's cluster's job is about 3x this
MAX_ITEM = 400 * 1024  # DynamoDB's item limit


def long_email(n: int) -> str:
    """A valid 254-character email (the longest the API takes), unique per `n`."""
    local = f"p{n:05d}" + "x" * 58  # 64, the longest local part
    domain = ".".join(["a" * 63, "b" * 63, "c" * 57]) + ".com"  # 189
    email = f"{local}@{domain}"
    assert len(email) == 254
    return email


def long_customer(n: int) -> str:
    return f"c{n:05d}" + "y" * 122  # 128, the longest customer id


def member(id_type: str, key: str, value: str) -> Member:
    return Member(keys.identity_pk(id_type, key), id_type, key, value, OwnState.empty())


def test_the_worst_case_job_is_past_dynamodbs_item_limit_whole_and_each_part_fits() -> None:
    # Given the largest job a cluster reaches at `MaxClusterSize` 99 (review s31 abuse F2):
    # 98 browsers that each named 20 people (10 forms of an email and a customer id) before
    # one account logged in on each, their values as long as the API takes: 2,058 identities
    # (1,100 of them, the 50 browsers F2 measured, make 311 KB as written)
    webhook = load_systems("layers/common/config/systems.json").get("webhook")
    named = [(t, f"{n:064x}", v) for n in range(980)
             for t, v in (("email", long_email(n)), ("customer_id", long_customer(n)))]  # fmt: skip
    named += [("device_id", f"d{n:063x}", f"dev-browser-{n:02d}-" + "z" * 100) for n in range(98)]
    members = [member(t, key, value) for t, key, value in named]
    purposes = list(ALL_PURPOSES)
    plan = JobPlan(webhook, set(purposes), {m.pk: (m, purposes) for m in members})
    now, until = "2026-12-03T18:00:00.000000Z", 1_900_000_000

    def written(p: JobPlan) -> dict[str, Any]:
        targets = [p.needs[pk] for pk in sorted(p.needs)]
        return _job_item("0f0e0d0c-0b0a-4908-8706-050403020100", p, targets, now, until,
                         ["US-CA"], now)  # fmt: skip

    # When it is written whole (as before parts): DynamoDB would refuse it
    whole = written(plan)
    assert item_size(serialize(whole)) > MAX_ITEM
    assert parts.job_bytes(whole) > parts.JOB_ITEM_BOUND
    # Then as parts: each under the bound, a worst receipt included, and far under 400 KB
    split = parts.split_plan(plan, lambda p: parts.job_bytes(written(p)))
    assert len(split) >= 2
    for piece in split.values():
        item = written(piece)
        assert item_size(serialize(item)) <= parts.job_bytes(item) <= parts.JOB_ITEM_BOUND
    # ... every identity in exactly one part
    placed = [pk for piece in split.values() for pk in piece.needs]
    assert sorted(placed) == sorted(m.pk for m in members)
    # ... and the same parts whatever order the identities were read in (a re-run's)
    shuffled = list(plan.needs.items())
    random.Random(7).shuffle(shuffled)
    again = JobPlan(webhook, set(purposes), dict(shuffled))
    resplit = parts.split_plan(again, lambda p: parts.job_bytes(written(p)))
    assert {k: set(p.needs) for k, p in resplit.items()} == {
        k: set(p.needs) for k, p in split.items()
    }


def test_a_job_under_the_bound_is_not_split() -> None:
    webhook = load_systems("layers/common/config/systems.json").get("webhook")
    one = member("email", "k" * 64, "a@b.co")
    plan = JobPlan(webhook, {"sale"}, {one.pk: (one, ["sale"])})
    assert parts.split_plan(plan, lambda _p: parts.JOB_ITEM_BOUND) == {}
    # ... nor one whose identities all go to one part (a single identity): nothing to gain
    assert parts.split_plan(plan, lambda _p: parts.JOB_ITEM_BOUND + 1) == {}


@pytest.fixture
def pipe(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> Iterator[Pipeline]:
    # A browser may name as many as the test needs before the login joins it
    monkeypatch.setattr(parts, "JOB_ITEM_BOUND", BOUND)
    yield build_pipeline(aws, monkeypatch, MAX_ASSERTED=str(2 * NAMED))


def login(pipe: Pipeline, **body: Any) -> dict[str, Any]:
    token = token_for(email=ACCOUNT, device_id=DEVICE)
    return pipe.post("/v1/consent", {"device_id": DEVICE, "identity_token": token, **body})


def browser_named_then_logged_in(pipe: Pipeline) -> tuple[str, list[dict[str, Any]]]:
    """Given a browser that named NAMED long emails and customer ids before its account
    logged in (every job of theirs worked), when the account asks `profiling` there: the
    request's id and its stream records, resolved once, nothing worked yet."""
    for n in range(NAMED):
        body = {"device_id": DEVICE, "email": long_email(n), "customer_id": long_customer(n)}
        pipe.post("/v1/opt-out", {**body, "purposes": ["sale"]})
    pipe.resolve()
    login(pipe)
    pipe.resolve()
    for system in SYSTEMS.systems:
        work(pipe, system.queue_key, Vendor())
    request = login(pipe, opt_out={"profiling": True})
    batch = pipe.event_records()
    pipe.resolve(batch)
    return str(request["request_id"]), batch


def webhook_jobs(pipe: Pipeline, request_id: str) -> dict[str, dict[str, Any]]:
    """The request's webhook jobs, its own and its further ones (`<request>~<hex>`)."""
    return {str(j["job_id"]): j for j in pipe.items(f"REQ#{request_id}")
            if j["sk"] == "JOB#webhook"}  # fmt: skip


def raw_sizes(pipe: Pipeline, request_id: str) -> list[int]:
    """The request's job items as stored, sized by DynamoDB's documented rules."""
    return [item_size(serialize(j)) for j in pipe.items(f"REQ#{request_id}")
            if str(j["sk"]).startswith("JOB#")]  # fmt: skip


def test_a_job_over_the_bound_reaches_every_identity_as_parts_each_under_it(
    pipe: Pipeline,
) -> None:
    request_id, batch = browser_named_then_logged_in(pipe)
    # Then the webhook (it takes every type) has several jobs of the request, none over the
    # bound, together naming each identity of the cluster once
    jobs = webhook_jobs(pipe, request_id)
    assert len(jobs) >= 2
    assert all(job_id.startswith(f"{request_id}~") for job_id in jobs)
    assert max(raw_sizes(pipe, request_id)) <= BOUND
    assert all(parts.job_bytes(job) <= BOUND for job in jobs.values())
    named = [i["value"] for job in jobs.values() for i in job["identifiers"]]
    assert len(named) == len(set(named)) == 2 * NAMED + 2  # and the browser, the account
    # ... the RESOLUTION names every part as the request's own, and cites none of them
    (resolution,) = [i for i in pipe.partition(f"REQ#{request_id}") if i["sk"] == "RESOLUTION"]
    assert sorted(resolution["split_jobs"]["webhook"]) == sorted(jobs)
    assert not set(jobs) & set((resolution.get("covered") or {}).get("webhook", ()))
    # When the stream delivers the same record again: the same jobs, none more
    pipe.drain("webhook")
    pipe.resolve(batch)
    assert webhook_jobs(pipe, request_id) == jobs
    messages = pipe.drain("webhook")
    assert sorted(m["job_id"] for m in messages) == sorted(jobs)
    # When every part but one is worked
    for system in SYSTEMS.systems:
        if system.name != "webhook":
            work(pipe, system.queue_key, Vendor())
    last, *rest = sorted(messages, key=lambda m: str(m["job_id"]))
    first = Vendor(sent=("customer_id", "device_id", "email"))
    deliver(pipe, rest, first)
    # Then the status waits for it (read past any earlier answer's replayed time)
    later = datetime.now(UTC) + timedelta(days=2)
    status = pipe.get_at(later, f"/v1/requests/{request_id}", request_id=request_id)
    assert status["status"] == "processing"
    table = Table(pipe.aws.dynamodb, pipe.aws.table_name)
    detail = AdminService(table, b"k" * 32).request_detail(request_id)
    (webhook,) = [s for s in detail["systems"] if s["system"] == "webhook"]
    assert webhook["satisfied"] == "processing"
    # When the last part is worked: every identity was told, once, and the request completed
    second = Vendor(sent=("customer_id", "device_id", "email"))
    deliver(pipe, [last], second)
    told = [i.value for job in [*first.received, *second.received] for i in job.identifiers]
    assert sorted(told) == sorted(named)
    assert {long_email(n) for n in range(NAMED)} <= set(told)
    status = pipe.get_at(later, f"/v1/requests/{request_id}", request_id=request_id)
    assert status["status"] == "completed"
    assert status["systems_done"] == status["systems_total"]
    # ... no item grew past the bound with its receipt
    assert max(raw_sizes(pipe, request_id)) <= BOUND
    # ... and the proof counts every part: the export, the operator record, the figures
    items, covering = load_with_proof(table, request_id, consistent=True)
    exported = {r["job_id"] for r in request_records(request_id, items, covering)
                if r.get("record") == "job"}  # fmt: skip
    assert set(jobs) <= exported
    detail = AdminService(table, b"k" * 32).request_detail(request_id)
    (webhook,) = [s for s in detail["systems"] if s["system"] == "webhook"]
    assert sorted(j["job_id"] for j in webhook["split_jobs"]) == sorted(jobs)
    assert webhook["satisfied"] == "done"
    figures = contribution_of(*load_with_proof(table, request_id, consistent=True, quiet=True))
    assert figures is not None and figures.systems["webhook"] == "done"
    assert not figures.repeat


def test_the_sweep_finds_every_stuck_part(pipe: Pipeline) -> None:
    request_id, _ = browser_named_then_logged_in(pipe)
    jobs = webhook_jobs(pipe, request_id)
    assert len(jobs) >= 2
    pipe.drain_all()  # every message lost: the parts stay pending
    # When the sweep checks the request past the grace
    table = Table(pipe.aws.dynamodb, pipe.aws.table_name)
    later = datetime.now(UTC) + timedelta(hours=2, minutes=20)
    report = Sweeper(table, SweepSettings(), clock=lambda: later).sweep()
    # Then it finds each part stuck, as the request's own
    assert set(jobs) <= set(report.stuck_jobs)


def test_the_watch_sends_again_every_part_whose_message_was_lost(pipe: Pipeline) -> None:
    # Given the account's request whose webhook job was made as parts, every message lost, and
    # the sweep's checks over (review s32 merges F1: the watch named only its own partition's jobs)
    request_id, _ = browser_named_then_logged_in(pipe)
    jobs = webhook_jobs(pipe, request_id)
    assert len(jobs) >= 2 and all(j.startswith(f"{request_id}~") for j in jobs)
    lost = {f"{r}:{s}" for r, s in job_messages(pipe)}
    assert set(jobs) <= lost
    forget_the_mark(pipe)
    # When the watch checks it 25 hours on and the resolver takes its redrive event
    report = watch_at(pipe, timedelta(hours=25))
    pipe.resolve()
    # Then each pending part is named and sent again, as the request's own jobs are
    assert set(jobs) <= set(report.resent)
    assert {f"{r}:{s}" for r, s in job_messages(pipe)} == lost


def identity_export(pipe: Pipeline, id_type: str, value: str) -> list[dict[str, Any]]:
    body = {"type": id_type, "value": value}
    answer = invoke(pipe.admin, http_event("POST", "/v1/admin/exports/identity", body, iam=True))
    assert answer["statusCode"] == 200, answer["body"]
    records: list[dict[str, Any]] = json_body(answer)["records"]
    return records


def died(*_: Any, **__: Any) -> Any:
    raise RuntimeError("injected after the nodes")


def rederived_over_the_bound(pipe: Pipeline, monkeypatch: pytest.MonkeyPatch) -> str:
    """Given the browser's cluster (NAMED long emails and customer ids, then its account's
    login), one stream batch: the account asking `profiling`, run and not yet flushed, while
    another invocation wrote the browser's node for `share` and died before its jobs. The
    flush sees the node moved and derives the cluster again: its `share` job, made by the
    flush (`_rederived_jobs`), carries every identity of the cluster. Returns the batch's
    request id."""
    for n in range(NAMED):
        body = {"device_id": DEVICE, "email": long_email(n), "customer_id": long_customer(n)}
        pipe.post("/v1/opt-out", {**body, "purposes": ["sale"]})
    pipe.resolve()
    login(pipe)
    pipe.resolve()
    pipe.drain_all()
    request_id = str(login(pipe, opt_out={"profiling": True})["request_id"])
    answer = pipe.post("/v1/consent", {"device_id": DEVICE, "opt_out": {"share": True}})
    meanwhile = str(answer["request_id"])
    images = (r["dynamodb"]["NewImage"] for r in pipe.event_records())
    events = {e["request_id"]: e for e in map(deserialize, images)}
    resolver = pipe.resolver.resolver()
    batch = Outbox()
    resolver.process(dict(events[request_id]), batch)
    with monkeypatch.context() as patch:
        patch.setattr(Resolver, "_link", died)
        with pytest.raises(RuntimeError, match="injected"):
            resolver.process(dict(events[meanwhile]), Outbox())
    resolver.flush(batch)
    return request_id


def test_a_job_the_flush_makes_over_the_bound_is_made_as_parts_each_under_it(
    pipe: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    owner = rederived_over_the_bound(pipe, monkeypatch)
    # Then the flush's marker for the webhook (one per purpose set), in the owner's
    # partition, names the jobs it made there with `share`
    (marker,) = [i for i in pipe.partition(keys.request_pk(owner))
                 if i["sk"].startswith(keys.REDERIVED_PREFIX) and i.get("kind") == "rederived"
                 and "webhook" in i["systems"]]  # fmt: skip
    named = set(marker.get("request_ids") or [marker["request_id"]])
    jobs = {str(j["job_id"]): j for r in named for j in pipe.partition(keys.request_pk(r))
            if j["sk"] == "JOB#webhook"}  # fmt: skip
    # ... beside whole jobs of other systems under the flush's own id: the marker says which
    # system each id holds, so the operator's view and the export list exactly the jobs made,
    # none that was never made as pending (rederive33, low: every id with every system)
    made = {str(j["job_id"]) for r in named for j in pipe.partition(keys.request_pk(r))
            if j["sk"].startswith(keys.job_sk(""))}  # fmt: skip
    assert made > set(jobs) and marker["jobs"] == made
    table = Table(pipe.aws.dynamodb, pipe.aws.table_name)
    listed = marked_jobs(table, pipe.partition(keys.request_pk(owner)), consistent=True)
    assert {f"{r}:{s}" for r, s, _ in listed} >= made
    assert all(job is not None for _, _, job in listed)
    # ... as parts (review s32 jobsize32's gap: one item over the bound before), none over it
    # with its worst receipt, each a request id of its own the routes take, made by the owner
    assert len(jobs) >= 2
    assert all(parts.job_bytes(j) <= BOUND for j in jobs.values())
    assert all(re.fullmatch(JOB_REQUEST_ID_PATTERN, str(j["request_id"])) for j in jobs.values())
    assert {keys.made_by(str(j["request_id"])) for j in jobs.values()} == {owner}
    # ... their ids from the marker's id, the purposes and (part, of): the same on every count
    of = {len(jobs)}
    assert of <= set(parts.PART_COUNTS)
    purposes = {tuple(j["purposes"]) for j in jobs.values()}
    assert len(purposes) == 1 and "share" in next(iter(purposes))
    expected = {split_request_id(str(marker["request_id"]), next(iter(purposes)), (n, len(jobs)))
                for n in range(len(jobs))}  # fmt: skip
    assert {str(j["request_id"]) for j in jobs.values()} <= expected
    # ... every identity of the cluster in exactly one part
    values = [i["value"] for j in jobs.values() for i in j["identifiers"]]
    assert len(values) == len(set(values)) == 2 * NAMED + 2
    # When every message is lost, the sweep past the grace finds each part stuck
    messages = pipe.drain("webhook")
    assert set(jobs) <= {str(m["job_id"]) for m in messages}
    pipe.drain_all()
    later = datetime.now(UTC) + timedelta(hours=2, minutes=20)
    report = Sweeper(table, SweepSettings(), clock=lambda: later).sweep()
    assert set(jobs) <= set(report.stuck_jobs)
    # When the parts are worked: every identity is told `share` once, no item past the bound
    vendor = Vendor(sent=("customer_id", "device_id", "email"))
    deliver(pipe, [m for m in messages if str(m["job_id"]) in jobs], vendor)
    told = [i.value for job in vendor.received for i in job.identifiers]
    assert sorted(told) == sorted(values)
    stored = {str(j["job_id"]): j for r in named for j in pipe.partition(keys.request_pk(r))
              if j["sk"] == "JOB#webhook"}  # fmt: skip
    assert {j["status"] for j in stored.values()} == {"done"}
    assert max(item_size(serialize(j)) for j in stored.values()) <= BOUND
    # ... and the operator's view of each part and the identity export count it as the owner's
    admin = AdminService(table, b"k" * 32)
    for job_id in jobs:
        detail = admin.job_request_detail(job_id.rpartition(":")[0])
        assert detail["made_by"] == owner and detail["status"] == "completed"
    exported = identity_export(pipe, "email", long_email(0))
    (record,) = [r for r in exported if r.get("record") == "job" and r.get("job_id") in jobs]
    assert record["made_by"] == owner


def test_a_flush_marker_naming_parts_lists_only_the_jobs_it_made(aws: Aws) -> None:
    # Given a flush's marker as `_rederived_jobs` writes it when one system's job was made as
    # parts and another's whole (rederive33, low): its ids and systems are no cross product
    table = Table(aws.dynamodb, aws.table_name)
    owner = "r-parts-owner"
    flush = keys.own_request_id(owner, "a" * 12)
    one, two = (split_request_id(flush, ("share",), (n, 2)) for n in range(2))
    made = {f"{flush}:braze", f"{one}:webhook", f"{two}:webhook"}
    put(table, {"pk": keys.request_pk(owner), "sk": keys.rederived_sk(flush),
                "kind": "rederived", "request_id": flush, "systems": ["braze", "webhook"],
                "request_ids": {flush, one, two}, "jobs": made})  # fmt: skip
    for job_id in sorted(made - {f"{two}:webhook"}):  # the last part not written yet
        job_request, _, system = job_id.rpartition(":")
        put(table, {"pk": keys.request_pk(job_request), "sk": keys.job_sk(system),
                    "job_id": job_id, "request_id": job_request, "system": system,
                    "status": "done"})  # fmt: skip
    items = load_request(table, owner, consistent=True)
    # When its jobs are listed (the admin view and the export read them so)
    listed = marked_jobs(table, items, consistent=True)
    # Then each job made is listed once, the one not written yet as such, and no pair that
    # was never a job reads as pending
    assert sorted((r, s) for r, s, _ in listed) == sorted(
        (j.rpartition(":")[0], j.rpartition(":")[2]) for j in made
    )
    assert [f"{r}:{s}" for r, s, job in listed if job is None] == [f"{two}:webhook"]
    # ... and a marker without `jobs` (a backfill step's, one system) still names each id there
    put(table, {"pk": keys.request_pk(owner), "sk": keys.rederived_sk(one),
                "kind": "rederived", "request_id": one, "systems": ["webhook"]})  # fmt: skip
    again = marked_jobs(table, load_request(table, owner, consistent=True), consistent=True)
    assert [(r, s) for r, s, _ in again].count((one, "webhook")) == 2
