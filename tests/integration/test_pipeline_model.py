"""A model-based (stateful) test of the whole pipeline: random sequences of what the real world
does (webform, banner and GPC opt-outs and requests to limit, emails, phones, customer ids and
devices, identity links and tokens, strangers' assertions and opt-ins, vendors answering done /
no_record / retry / refuse, stream records late, twice, out of order or lost, queue messages
lost or twice, the clock moved on with the sweep and the deadline watch running, an operator's
replay, denial before or after the resolution, retirement of a system removed from the config
(answered 404 or 200 as README's on-record rule says, where the model can tell), and a system
added after the first deploy, or a retired one added back, then backfilled), checked against
what counsel relies on after every step and once everything has drained:

- nothing lost: every request and backfill is final, and every identifier a system takes for a
  purpose it is opted out of has that system's receipt, or a visible failure (a system out of
  the config is owed nothing until it is added and backfilled, then all of it);
- no false proof: no view says done/delivered for a system that never answered for it;
- the views agree (the public status may lag the operator's, never lead it), and once final
  the public status says what README's contract derives from the request: `denied` (no system
  when denied before its resolution), else `failed` or `completed`, counting each system that
  takes an identifier type the request named and serves a purpose it asked, less one out of the
  config (retired, or not added yet) with no job of its own there or its job retired;
- an opt-out is sticky and stays with its person: a state never shows an opt-out no captured
  event could have reached it with, and never loses one an event that named it made;
- each accepted capture is one AWS call.

The capture, admin and resolver handlers are the real ones over moto (tests/support/pipeline.py),
the worker's DeliveryService runs behind a stand-in vendor, and one clock drives them all
(tests/support/model_clock.py). The examples share one moto account, emptied before each.
`OPTOUT_MODEL_EXAMPLES` runs a longer search; `test_every_kind_of_step_in_one_sequence` walks
one fixed sequence through the steps a few random examples seldom reach."""

import json
import os
from collections import defaultdict
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    precondition,
    rule,
    run_state_machine_as_test,
)

from optout.connectors.base import Job, Outcome
from optout.connectors.errors import DeliveryError
from optout.delivery.batch import Received
from optout.delivery.service import DeliveryService
from optout.delivery.settings import WorkerSettings
from optout.ops.watch import Watch, WatchSettings
from optout.status import REPLAY_CAP
from optout.store.table import Table
from optout.sweep import Sweeper, SweepSettings
from tests.conftest import Aws, moto_account
from tests.integration.test_resolver_delivery import SYSTEMS
from tests.support import iam
from tests.support.http_events import http_event, json_body
from tests.support.lambdas import invoke, load_function
from tests.support.model_clock import ModelClock, model_clock
from tests.support.pipeline import Pipeline, build_pipeline
from tests.support.tokens import token_for

EMAILS = ("ann@example.com", "bob@example.com")
PHONES = ("+14155550101",)
CUSTOMERS = ("cust-model-0001",)
DEVICES = ("dev-model-device-0001", "dev-model-device-0002")
STRANGER = "dev-model-stranger-001"
OPT_OUTS = ("sale", "share", "targeted_advertising", "profiling")
PURPOSES = (*OPT_OUTS, "limit_sensitive")  # a request to limit only when it is listed
GPC = frozenset({"sale", "share", "targeted_advertising"})
ANSWERS = ("done", "no_record", "retry", "refuse", "partial")  # partial: one type refused
SYSTEM_NAMES = tuple(s.name for s in SYSTEMS.systems)
SWEEP_EVERY = timedelta(minutes=10)  # the schedule's rate (template.yaml)
# The sweep reads each checkpoint's window in one slice: slices only keep the progress of a run
# cut short for time, and the model's runs have no deadline (2-minute slices: 6x the Queries).
SWEEP = SweepSettings(slice=SweepSettings().catch_up)
# A first watch run enrols two days back, not 31: each example's table starts empty.
WATCH = WatchSettings(backfill_days=2)
FULL_CONFIG = str(Path("local/systems.json").resolve())
FINAL = ("completed", "failed", "denied")

Ident = tuple[str, str]  # (type, value)
LINKABLE: tuple[tuple[Ident, Ident], ...] = (
    *((("device_id", d), ("email", e)) for d in DEVICES for e in EMAILS),
    (("device_id", DEVICES[0]), ("customer_id", CUSTOMERS[0])),
    (("email", EMAILS[0]), ("customer_id", CUSTOMERS[0])),
)
DENIAL = {"reason_code": "suspected_fraud", "reason": "one of many scripted submissions"}
RETIREMENT = {"reason": "contract ended; the system was removed from the config"}


def model_settings() -> settings:
    """Quick and deterministic in the suite: one example of 6 steps, hypothesis's simplest (a
    smoke run of the machine; the fixed sequence below is the suite's coverage: derandomized
    examples are fixed sequences too, and its first ones hardly leave the initial opt-out);
    OPTOUT_MODEL_EXAMPLES=N searches longer."""
    search = int(os.environ.get("OPTOUT_MODEL_EXAMPLES", "0"))
    return settings(
        phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink],  # no tracing
        max_examples=search or 1,
        stateful_step_count=25 if search else 6,
        deadline=None,
        derandomize=not search,
        suppress_health_check=list(HealthCheck),
        print_blob=True,
    )


@dataclass
class Captured:
    """One accepted capture as the model reads it."""

    request_id: str
    seq: int
    own: dict[Ident, dict[str, bool]]  # identity -> purpose -> opted out (True) / in (False)
    links: list[tuple[Ident, Ident]] = field(default_factory=list)  # verified
    asserts: list[tuple[Ident, Ident]] = field(default_factory=list)  # asserter -> asserted
    named: frozenset[str] = frozenset()  # identifier types the request named itself
    asked: frozenset[str] = frozenset()  # purposes it opted out of (or limited)
    denied: bool = False
    void: bool = False  # denied before it was resolved: carried out nowhere

    @property
    def opts_out(self) -> bool:
        """A request to opt out in the §7102 figures (sale, share, ads, profiling)."""
        return bool(self.asked & set(OPT_OUTS))

    @property
    def limits(self) -> bool:
        return "limit_sensitive" in self.asked

    @property
    def is_request(self) -> bool:
        return self.opts_out or self.limits


@dataclass
class Answered:
    job_id: str
    system: str
    status: str
    purposes: frozenset[str]
    identifiers: frozenset[Ident]
    sent: frozenset[str] | None = None  # types the vendor took (None: all the job carried)


class ModelVendor:
    """Answers every job of a pass as the rule says, and remembers what it answered."""

    def __init__(self, answer: str, log: list[Answered]) -> None:
        self.answer = answer
        self.log = log

    def deliver(self, jobs: list[Job]) -> list[Outcome]:
        outcomes = []
        for job in jobs:
            idents = frozenset((i.type, i.value) for i in job.identifiers)
            purposes = frozenset(job.purposes)
            types = sorted({kind for kind, _ in idents})
            if self.answer == "partial" and len(types) > 1:
                # done, but the vendor refused the first type inside the accepted call
                self.log.append(Answered(job.job_id, job.system, "done", purposes, idents,
                                         frozenset(types[1:])))  # fmt: skip
                outcomes.append(Outcome(job.job_id, "done", http_status=200,
                                        identifier_types_sent=tuple(types[1:]),
                                        identifier_types_rejected=tuple(types[:1]),
                                        note="invalid identifier"))  # fmt: skip
                continue
            answer = "done" if self.answer == "partial" else self.answer
            self.log.append(Answered(job.job_id, job.system, answer, purposes, idents))
            if self.answer == "retry":
                error = DeliveryError("503", retryable=True, http_status=503)
                outcomes.append(Outcome(job.job_id, None, http_status=503, error=error))
            elif self.answer == "refuse":
                error = DeliveryError("400 bad request", retryable=False, http_status=400)
                outcomes.append(Outcome(job.job_id, None, http_status=400, error=error))
            else:
                status: Any = answer
                outcomes.append(Outcome(job.job_id, status, http_status=200))
        return outcomes


@dataclass
class Message:
    body: dict[str, Any]
    receives: int = 0


def accepts(system: str) -> tuple[set[str], set[str]]:
    config = SYSTEMS.get(system)
    return set(config.identifier_types), set(config.purposes)


@dataclass
class World:
    """What the examples share: one moto account (table, stream, queues), emptied before each
    example (making it again took seconds an example), and the configs a retirement deploys."""

    aws: Aws
    patch: pytest.MonkeyPatch
    queue_urls: dict[str, str]
    configs: Path
    iterators: dict[str, str] = field(default_factory=dict)  # the stream read so far

    def deploy(self, without: set[str] | frozenset[str] = frozenset()) -> None:
        """The systems config the functions load at their next cold start."""
        config = FULL_CONFIG
        if without:
            loaded = json.loads(Path(FULL_CONFIG).read_text())
            loaded["systems"] = [s for s in loaded["systems"] if s["name"] not in without]
            config = str(self.configs / f"without-{'-'.join(sorted(without))}.json")
            Path(config).write_text(json.dumps(loaded))
        self.patch.setenv("SYSTEMS_CONFIG", config)

    def fresh_pipeline(self) -> Pipeline:
        """Cold functions over an empty table, empty queues and a stream read to its end."""
        self.deploy()
        self.empty_table()
        pipe = Pipeline(self.aws, load_function("capture_api"), load_function("admin_api"),
                        load_function("resolver"), self.queue_urls, self.iterators)  # fmt: skip
        pipe.drain_all()
        while pipe.stream_records():
            pass
        return pipe

    def empty_table(self) -> None:
        client, name = self.aws.dynamodb, self.aws.table_name
        pages = client.get_paginator("scan").paginate(TableName=name, ProjectionExpression="pk, sk")
        keys = [item for page in pages for item in page["Items"]]
        for start in range(0, len(keys), 25):
            deletes = [{"DeleteRequest": {"Key": key}} for key in keys[start : start + 25]]
            client.batch_write_item(RequestItems={name: deletes})


@contextmanager
def model_world(configs: Path) -> Iterator[World]:
    with pytest.MonkeyPatch.context() as patch, moto_account() as aws:
        pipe = build_pipeline(aws, patch)
        yield World(aws, patch, pipe.queue_urls, configs)


class PipelineModel(RuleBasedStateMachine):
    def __init__(self, world: World) -> None:
        super().__init__()
        self._stack = ExitStack()
        self.world = world
        self.aws = world.aws
        self.pipe: Pipeline = world.fresh_pipeline()
        self.clock: ModelClock = self._stack.enter_context(model_clock(self.pipe.admin))
        self.captured: list[Captured] = []
        self.stream: list[dict[str, Any]] = []  # records read, not yet given to the resolver
        self.seen: list[dict[str, Any]] = []  # records given to the resolver (to repeat one)
        self.queued: dict[str, list[Message]] = defaultdict(list)
        self.answered: list[Answered] = []
        self.last_state: dict[Ident, set[str]] = {}
        self.calls: list[tuple[str | None, str]] = []
        self.retired: str | None = None  # the system an operator removed and retired
        self.retire_expectation: int | None = None  # the model's, at the last retire
        # Systems out of the deployed config now: retired, or not added yet (`first_deploy`);
        # nothing is owed to them until an operator adds them and backfills.
        self.absent: set[str] = set()
        self.backfills: list[str] = []  # the operator's backfill events
        # per system added (back): the requests resolved before it was, which may lack its job
        self.resolved_without: dict[str, set[str]] = {}
        self.queues_used: set[str] = set()  # queues a job message was ever read from
        self._count_calls()

    # -- helpers ----------------------------------------------------------------------------

    def _count_calls(self) -> None:
        assert boto3.DEFAULT_SESSION is not None
        events = boto3.DEFAULT_SESSION.events
        unique = f"model-count-{id(self)}"

        def note(event_name: str, **_: Any) -> None:
            self.calls.append((iam.current_function.get(), event_name.split(".", 1)[1]))

        events.register("before-call", note, unique_id=unique)
        self._stack.callback(events.unregister, "before-call", unique_id=unique)

    def teardown(self) -> None:
        try:
            if self.captured:
                self.drain_everything()
                self.check_final()
        finally:
            self.close()

    def close(self) -> None:
        self._stack.close()

    def capture(self, path: str, body: dict[str, Any], **kwargs: Any) -> str:
        """Posts a capture, checks it made one AWS call, and returns its request id."""
        before = len(self.calls)
        answer = self.pipe.post(path, body, **kwargs)
        made = [c for c in self.calls[before:] if c[0] is not None]
        assert len(made) == 1, f"{path}: {made}"
        return str(answer["request_id"])

    def record(self, request_id: str, own: dict[Ident, dict[str, bool]], **kw: Any) -> None:
        if any(c.request_id == request_id for c in self.captured):
            return  # an idempotent repeat
        asked = frozenset(p for choices in own.values() for p, v in choices.items() if v)
        named = frozenset(kind for kind, _ in own)
        kw = {"named": named, **kw}
        self.captured.append(Captured(request_id, len(self.captured), own, asked=asked, **kw))

    def read_stream(self) -> None:
        self.stream.extend(self.pipe.event_records())

    def feed(self, records: list[dict[str, Any]]) -> None:
        if records:
            assert self.pipe.resolve(records) == {"batchItemFailures": []}
            self.seen.extend(records)

    def pull(self, key: str) -> None:
        bodies = self.pipe.drain(key)
        if bodies:
            self.queues_used.add(key)
        self.queued[key].extend(Message(b) for b in bodies)

    def work(self, key: str, answer: str) -> None:
        self.pull(key)
        messages, self.queued[key] = self.queued[key], []
        if not messages:
            return
        vendor = ModelVendor(answer, self.answered)
        service = DeliveryService(
            Table(self.aws.dynamodb, self.aws.table_name), SYSTEMS,
            WorkerSettings(table_name=self.aws.table_name), lambda _s: vendor,  # type: ignore[arg-type,return-value]
            clock=lambda: self.clock.now(UTC),
        )  # fmt: skip
        received = []
        for n, message in enumerate(messages):
            message.receives += 1
            received.append(Received(f"m{n}", json.dumps(message.body), message.receives))
        checks: list[Any] = []
        report = service.deliver(received, lambda m, d: checks.append((m, d)))
        assert checks == []  # no stand-in answers "submitted"
        for n, message in enumerate(messages):
            decision = report.decisions.get(f"m{n}")
            back = decision is not None and decision.retry_in is not None
            if back and message.receives < service.settings.max_receive_count:
                self.queued[key].append(message)  # back on the queue (else: the DLQ)

    def sweep_and_watch(self) -> None:
        table = Table(self.aws.dynamodb, self.aws.table_name)
        Sweeper(table, SWEEP, clock=lambda: self.clock.now(UTC)).sweep()
        Watch(table, WATCH, clock=lambda: self.clock.now(UTC)).run()

    def advance(self, by: timedelta) -> None:
        """The clock moves on; the sweep and the watch run at their schedule's rate."""
        steps = max(1, int(by / SWEEP_EVERY))
        for _ in range(steps):
            self.clock.advance(SWEEP_EVERY)
            self.sweep_and_watch()

    def admin_get(self, path: str, **params: str) -> Any:
        event = http_event("GET", path, path_parameters=params, iam=True)
        answer = invoke(self.pipe.admin, event)
        assert answer["statusCode"] == 200, answer["body"]
        return json_body(answer)

    def admin_post(
        self, path: str, body: Any, *, ok: int = 200, query: str = "", **params: str
    ) -> Any:
        event = http_event("POST", path, body, path_parameters=params or None, iam=True)
        if query:
            name, _, value = query.partition("=")
            event["queryStringParameters"] = {name: value}
            event["rawQueryString"] = query
        answer = invoke(self.pipe.admin, event)
        if answer["statusCode"] == 404:
            return None
        assert answer["statusCode"] == ok, answer["body"]
        return json_body(answer)

    def public_status(self, request_id: str, at: datetime | None = None) -> dict[str, Any]:
        path = f"/v1/requests/{request_id}"
        return self.pipe.get_at(at or self.clock.now(UTC), path, request_id=request_id)

    def admin_status(self, request_id: str) -> dict[str, Any]:
        found: dict[str, Any] = self.admin_get(
            f"/v1/admin/requests/{request_id}", request_id=request_id
        )
        return found

    def effective(self, ident: Ident) -> set[str]:
        """The effective opt-outs as the banner (a device) or the operator (any) reads them."""
        kind, value = ident
        if kind == "device_id":
            state = self.pipe.get(f"/v1/consent/{value}", device_id=value)["opt_out"]
        else:
            found = self.admin_post("/v1/admin/lookup", {"type": kind, "value": value})
            state = (found or {}).get("effective") or {}
        return {p for p, v in state.items() if v}

    # -- the model's own derivation ---------------------------------------------------------

    def expected(self, events: list[Captured]) -> dict[Ident, set[str]]:
        """Effective opt-outs as README's "Identity resolution" states them: per identity, its
        own choices last-writer-wins; a cluster (verified links) opted out where any member
        is; and one hop from an identity that asserted a member, of what its cluster chose."""
        parent: dict[Ident, Ident] = {}

        def find(x: Ident) -> Ident:
            parent.setdefault(x, x)
            while parent[x] != x:
                x = parent[x]
            return x

        own: dict[Ident, dict[str, bool]] = defaultdict(dict)
        asserts: set[tuple[Ident, Ident]] = set()
        for event in sorted(events, key=lambda e: e.seq):
            if event.void:
                continue  # denied before the resolver took it: no identity changes
            for a, b in event.links:
                parent[find(a)] = find(b)
            asserts.update(event.asserts)
            for ident, choices in event.own.items():
                find(ident)
                own[ident].update(choices)
        chosen: dict[Ident, set[str]] = defaultdict(set)  # cluster root -> its own opt-outs
        for ident, choices in own.items():
            chosen[find(ident)] |= {p for p, v in choices.items() if v}
        result: dict[Ident, set[str]] = {}
        for ident in list(parent):
            result[ident] = set(chosen[find(ident)])
        for asserter, asserted in asserts:
            for ident in list(parent):
                if find(ident) == find(asserted):
                    result[ident] |= chosen[find(asserter)]
        return result

    def unheld(self, captured: Captured) -> Captured:
        """`captured` without its links when its resolution held them (a banner login's one
        link; backend links are never held here: the model stays below the cluster cap); the
        held account asserts the browser instead (its opt-outs carried there, one way)."""
        if not captured.links or captured.void:
            return captured
        resolution = self.admin_status(captured.request_id).get("resolution") or {}
        if not resolution.get("links_held"):
            return captured
        assert len(captured.links) == 1 and captured.links[0][0][0] == "device_id", captured
        ((device, account),) = captured.links
        return replace(captured, links=[], asserts=[*captured.asserts, (account, device)])

    def ever(self) -> dict[Ident, set[str]]:
        """The most any state may show: every opt-out ever captured, none ever lifted."""
        lifted = [
            Captured(c.request_id, c.seq, {i: {p: v for p, v in ch.items() if v}
                                           for i, ch in c.own.items()}, c.links, c.asserts)
            for c in self.captured
        ]  # fmt: skip
        return self.expected(lifted)

    # -- rules: what the world sends --------------------------------------------------------

    @initialize(later=st.none() | st.sampled_from(sorted(SYSTEM_NAMES)))
    def first_deploy(self, later: str | None) -> None:
        """The config first deployed: every system, or all but one the operator adds later
        (README "Downstream systems": it gets the opt-outs recorded before it by a backfill)."""
        if later is not None:
            self.absent.add(later)
            self.redeploy()

    def redeploy(self) -> None:
        self.world.deploy(without=self.absent)
        self.cold_start()

    @initialize(email=st.sampled_from(EMAILS))
    def first_opt_out(self, email: str) -> None:
        request_id = self.capture("/v1/opt-out", {"email": email})
        self.record(request_id, {("email", email): dict.fromkeys(OPT_OUTS, True)})

    @rule(
        email=st.none() | st.sampled_from(EMAILS),
        phone=st.none() | st.sampled_from(PHONES),
        customer=st.none() | st.sampled_from(CUSTOMERS),
        purposes=st.none() | st.sets(st.sampled_from(PURPOSES), min_size=1),
        device=st.none() | st.sampled_from(DEVICES),
        gpc=st.booleans(),
    )
    def webform(
        self, email: str | None, phone: str | None, customer: str | None,
        purposes: set[str] | None, device: str | None, gpc: bool,
    ) -> None:  # fmt: skip
        named = [("email", email), ("phone", phone), ("customer_id", customer)]
        idents: list[Ident] = [(k, v) for k, v in named if v]
        if not idents:
            return
        body: dict[str, Any] = dict(idents)
        if purposes:
            body["purposes"] = sorted(purposes)
        if device:
            body["device_id"] = device
        chosen = set(purposes or OPT_OUTS) | (GPC if gpc else set())
        headers = {"Sec-GPC": "1"} if gpc else None
        request_id = self.capture("/v1/opt-out", body, headers=headers)
        own = {i: dict.fromkeys(chosen, True) for i in idents}
        asserts = []
        if device:
            own[("device_id", device)] = dict.fromkeys(chosen, True)
            asserts = [(("device_id", device), i) for i in idents]
        self.record(request_id, own, asserts=asserts)

    @rule(
        device=st.sampled_from(DEVICES),
        purposes=st.sets(st.sampled_from(PURPOSES)),
        token_email=st.none() | st.sampled_from(EMAILS),
        gpc=st.booleans(),
    )
    def banner(self, device: str, purposes: set[str], token_email: str | None, gpc: bool) -> None:
        body: dict[str, Any] = {"device_id": device, "opt_out": dict.fromkeys(purposes, True)}
        if token_email:
            body["identity_token"] = token_for(
                email=token_email, device_id=device, issued=self.clock.now(UTC)
            )
        headers = {"Sec-GPC": "1"} if gpc else None
        request_id = self.capture("/v1/consent", body, headers=headers)
        chosen = purposes | (GPC if gpc else set())
        dev: Ident = ("device_id", device)
        own = {dev: dict.fromkeys(chosen, True)}
        links = []
        if token_email:
            mail: Ident = ("email", token_email)
            own[mail] = dict.fromkeys(chosen, True)
            links = [(dev, mail)]
        self.record(request_id, own, links=links)

    @rule(pair=st.sampled_from(LINKABLE))
    def identity_link(self, pair: tuple[Ident, Ident]) -> None:
        """The backend links two of a person's identifiers (a login: a browser and an email or
        a customer id; an account: its email and customer id)."""
        (ta, va), (tb, vb) = pair
        link = {"a": {"type": ta, "value": va}, "b": {"type": tb, "value": vb}}
        request_id = self.capture("/v1/identity-links", {"links": [link]}, iam=True)
        self.record(request_id, {}, links=[pair])

    @rule(
        email=st.sampled_from(EMAILS),
        opt_out=st.booleans(),
        confirm=st.booleans(),
    )
    def stranger(self, email: str, opt_out: bool, confirm: bool) -> None:
        """A browser that is not the person's names their email without a token, and opts out
        of sale (README: an asserted identity is honoured for the opt-outs asked for it, as a
        typed one is), or back in (confirmed or not: either lifts only its own register)."""
        body: dict[str, Any] = {"device_id": STRANGER, "opt_out": {"sale": opt_out},
                                "identity": {"email": email}}  # fmt: skip
        if confirm:
            body["confirm_opt_in"] = True
        request_id = self.capture("/v1/consent", body)
        dev: Ident = ("device_id", STRANGER)
        choice = {"sale": opt_out} if opt_out or confirm else {}
        own = {dev: choice}
        if opt_out:  # honoured as the email's own opt-out, which no opt-in of the browser lifts
            own[("email", email)] = {"sale": True}
        self.record(
            request_id,
            own,
            asserts=[(dev, ("email", email))],
            named=frozenset({"device_id", "email"}),
        )

    # -- rules: the stream --------------------------------------------------------------------

    @rule(order=st.sampled_from(["in order", "reversed", "newest only"]))
    def stream_delivers(self, order: str) -> None:
        self.read_stream()
        batch, self.stream = self.stream, []
        if order == "reversed":
            batch.reverse()
        elif order == "newest only" and batch:
            self.stream, batch = batch[:-1], batch[-1:]  # the rest arrive later
        self.feed(batch)

    @precondition(lambda self: bool(self.seen))
    @rule(data=st.data())
    def record_again(self, data: st.DataObject) -> None:
        """Lambda delivers an already resolved record again."""
        self.feed([data.draw(st.sampled_from(self.seen))])

    def record_of(self, captured: Captured) -> dict[str, Any]:
        """The stream record of a capture the resolver was given (for a fixed sequence)."""
        image = "NewImage"
        return next(r for r in self.seen
                    if r["dynamodb"][image]["request_id"]["S"] == captured.request_id)  # fmt: skip

    @rule(data=st.data())
    def lose_record(self, data: st.DataObject) -> None:
        """A record the resolver never sees (the sweep must find its request)."""
        self.read_stream()
        if self.stream:
            self.stream.pop(data.draw(st.integers(0, len(self.stream) - 1)))

    def lose_record_of(self, captured: Captured) -> None:
        """The same, for one capture's record (for a fixed sequence)."""
        self.read_stream()
        image = "NewImage"
        left = [r for r in self.stream
                if r["dynamodb"][image]["request_id"]["S"] != captured.request_id]  # fmt: skip
        assert len(left) == len(self.stream) - 1, captured
        self.stream = left

    # -- rules: the queues and the vendors --------------------------------------------------------

    @rule(key=st.sampled_from(sorted(SYSTEM_NAMES)), answer=st.sampled_from(ANSWERS))
    def vendor_answers(self, key: str, answer: str) -> None:
        self.work(queue_key_of(key), answer)

    @rule(key=st.sampled_from(sorted(SYSTEM_NAMES)))
    def lose_message(self, key: str) -> None:
        queue = queue_key_of(key)
        self.pull(queue)
        if self.queued[queue]:
            self.queued[queue].pop(0)

    @rule(key=st.sampled_from(sorted(SYSTEM_NAMES)))
    def message_twice(self, key: str) -> None:
        queue = queue_key_of(key)
        self.pull(queue)
        if self.queued[queue]:
            first = self.queued[queue][0]
            self.queued[queue].append(Message(first.body))

    # -- rules: time and the operator ---------------------------------------------------------

    @rule(minutes=st.sampled_from([10, 20, 60, 140]))
    def time_passes(self, minutes: int) -> None:
        self.advance(timedelta(minutes=minutes))

    @rule(system=st.sampled_from(sorted(SYSTEM_NAMES)))
    def operator_replay(self, system: str) -> None:
        """A replay of a retired system is a 404 (it is not in the deployed config)."""
        self.admin_post(f"/v1/admin/systems/{system}/replay", None, ok=202, system=system)

    @precondition(lambda self: any(c.is_request and not c.denied for c in self.captured))
    @rule(data=st.data())
    def operator_denies(self, data: st.DataObject) -> None:
        """An operator denies a request: refused (409) once any system confirmed it; one the
        resolver has not resolved yet is carried out nowhere (README, the deny route)."""
        open_requests = [c for c in self.captured if c.is_request and not c.denied]
        self.deny(data.draw(st.sampled_from(open_requests)))

    def deny(self, captured: Captured) -> int:
        """The deny route's answer to this request, as the model expects it."""
        before = self.admin_status(captured.request_id)
        path = f"/v1/admin/requests/{captured.request_id}/deny"
        event = http_event("POST", path, DENIAL, path_parameters={"request_id":
                           captured.request_id}, iam=True)  # fmt: skip
        answer = invoke(self.pipe.admin, event)
        confirmed = before["status"] == "completed" or before["systems_done"] > 0
        expected = 409 if confirmed else 200
        assert answer["statusCode"] == expected, (captured, before, answer["body"])
        if expected == 200:
            captured.denied = True
            captured.void = before["status"] == "received"
        return expected

    @precondition(lambda self: self.retired is None)
    @rule(system=st.sampled_from(sorted(SYSTEM_NAMES)))
    def operator_retires(self, system: str) -> None:
        """The operator removes a system from the config, deploys, and retires it: its open
        jobs are no longer owed. A name not on record is a 404 (README, the retire route): the
        operator puts it back (no event is resolved in between, so no opt-out missed it)."""
        expected = self.retire_expectation = self.retire_expected(system)
        self.world.deploy(without=self.absent | {system})
        self.cold_start()
        path = f"/v1/admin/systems/{system}/retire"
        event = http_event("POST", path, RETIREMENT, path_parameters={"system": system},
                           iam=True)  # fmt: skip
        answer = invoke(self.pipe.admin, event)
        assert expected in (None, answer["statusCode"]), (system, expected, answer["body"])
        if answer["statusCode"] == 404:
            self.redeploy()
            return
        assert answer["statusCode"] == 200, answer["body"]
        assert json_body(answer)["status"] == "retired"
        self.retired = system
        self.absent.add(system)

    def retire_expected(self, system: str) -> int | None:
        """The retire route's answer README's rule gives, where the model can tell: 404 for a
        name no job, view or queue ever held (so no failed listing, ledger or overdue count
        can name it: never configured, or never asked anything), 200 for one with a job that
        failed (listed for replay) or in the year's §7102 per-system figures; None between
        (the ledgers name a system once the watch has folded a request at it, and the model
        does not follow the watch's reminders)."""
        details = [self.admin_status(c.request_id) for c in self.captured]
        details += [self.admin_status(b) for b in self.backfills]
        views = [v for d in details for v in (d.get("systems") or []) + (d.get("jobs") or [])
                 if v.get("system") == system]  # fmt: skip
        cited = [c for d in details for v in d.get("systems") or ()
                 for c in v.get("satisfied_by") or () if c.get("system") == system]  # fmt: skip
        if not views and not cited and queue_key_of(system) not in self.queues_used:
            return 404
        if any(v.get("status") == "failed" for v in views):
            return 200
        return 200 if system in self.metrics()["systems"] else None

    @precondition(lambda self: bool(self.absent))
    @rule(data=st.data(), resend=st.booleans())
    def operator_adds_and_backfills(self, data: st.DataObject, resend: bool) -> None:
        self.add_and_backfill(data.draw(st.sampled_from(sorted(self.absent))), resend)

    def add_and_backfill(self, system: str, resend: bool) -> None:
        """The operator adds a system (or a retired one back) to the config, deploys, and
        backfills it (README "Downstream systems"): from then on it is owed every opt-out it
        takes, earlier ones by the backfill's jobs."""
        self.resolved_without[system] = {
            c.request_id for c in self.captured
            if self.admin_status(c.request_id)["status"] != "received"
        }  # fmt: skip
        self.absent.discard(system)
        self.redeploy()
        path = f"/v1/admin/systems/{system}/backfill"
        query = "resend=true" if resend else ""
        answer = self.admin_post(path, None, ok=202, query=query, system=system)
        assert (answer["system"], answer["status"]) == (system, "backfilling"), answer
        self.backfills.append(str(answer["request_id"]))

    def cold_start(self) -> None:
        """The resolver's and the admin function's next invocations load the deployed config."""
        self.pipe.resolver.resolver.cache_clear()
        self.pipe.admin.services.cache_clear()

    # -- invariants ---------------------------------------------------------------------------

    @rule()
    def states_show_only_what_was_captured_and_keep_what_they_showed(self) -> None:
        """An observation (a rule, not an invariant: reading every view after every step
        took minutes an example)."""
        most = self.ever()
        for ident in list(most):
            shown = self.effective(ident)
            assert shown <= most.get(ident, set()), (ident, shown, most.get(ident))
            # an opt-out stays, unless an opt-in could lift it: the opting-in browser's own,
            # or one that browser's assertion alone gave an identity
            kept = self.last_state.get(ident, set()) - self.liftable(ident)
            assert kept <= shown, (ident, kept, shown)
            self.last_state[ident] = shown

    def liftable(self, ident: Ident) -> set[str]:
        lifted: set[str] = set()
        for captured in self.captured:
            for who, choices in captured.own.items():
                off = {p for p, v in choices.items() if not v}
                if off and (who == ident or self.asserted_into(who, ident)):
                    lifted |= off
        return lifted

    def asserted_into(self, asserter: Ident, ident: Ident) -> bool:
        """Whether `asserter` asserted an identity of `ident`'s cluster (every link captured)."""
        members = self.cluster_of(ident)
        return any(a == asserter and b in members for c in self.captured for a, b in c.asserts)

    def cluster_of(self, ident: Ident) -> set[Ident]:
        links = [link for c in self.captured for link in c.links]
        members, grew = {ident}, True
        while grew:
            grew = False
            for a, b in links:
                if (a in members) != (b in members):
                    members |= {a, b}
                    grew = True
        return members

    @rule()
    def no_view_claims_an_answer_no_vendor_gave(self) -> None:
        for captured in self.captured:
            detail = self.admin_status(captured.request_id)
            for system in detail.get("systems") or ():
                self.assert_proof_is_an_answer(captured.request_id, system)
            public = self.public_status(captured.request_id)
            assert_public_never_leads(public, detail)
        for backfill in self.backfills:  # a backfill's jobs: their status is a vendor's answer
            for job in self.admin_status(backfill)["jobs"]:
                if job.get("status") in ("done", "no_record"):
                    assert self.last_answer(str(job["job_id"])) == job["status"], (backfill, job)

    def last_answer(self, job_id: str) -> str | None:
        answers = [a.status for a in self.answered if a.job_id == job_id]
        return answers[-1] if answers else None

    def assert_proof_is_an_answer(self, request_id: str, system: dict[str, Any]) -> None:
        """A system the operator's view reads done rests on a vendor's answer: its own job's
        last answer was done or no_record, or a cited job's was done; a job's stored status
        is never done or no_record without that answer."""
        name = system["system"]
        own = f"{request_id}:{name}"
        if system.get("proof") != "earlier" and system.get("status") in ("done", "no_record"):
            assert self.last_answer(own) == system["status"], (own, system)
        for cited in system.get("satisfied_by") or ():
            if cited.get("status") in ("done", "no_record"):
                assert self.last_answer(str(cited["job_id"])) == cited["status"], (own, cited)
        if system.get("satisfied") != "done":
            return
        answers = {self.last_answer(own)} if system.get("proof") in ("own", "both") else set()
        answers |= {self.last_answer(str(c["job_id"])) for c in system.get("satisfied_by") or ()}
        assert answers & {"done", "no_record"}, (own, system)

    # -- the end: drain everything, then check --------------------------------------------------

    def drain_everything(self) -> None:
        """Every record resolved, every message worked (the vendors now answer done), and the
        clock moved through the sweep's checkpoints and the watch's first checks."""
        self.feed(self.stream)
        self.stream = []
        end = self.clock.now(UTC) + timedelta(hours=32)
        while True:
            self.read_stream()
            batch, self.stream = self.stream, []
            self.feed(batch)
            for key in self.pipe.queue_urls:
                if key not in self.absent_queues:  # its worker went with the deploy
                    self.work(key, "done")
            if self.all_final() or self.clock.now(UTC) >= end:
                break
            self.advance(SWEEP_EVERY)

    @property
    def absent_queues(self) -> set[str]:
        return {queue_key_of(system) for system in self.absent}

    def all_final(self) -> bool:
        waiting = [m for key, m in self.queued.items() if m and key not in self.absent_queues]
        if self.stream or waiting:
            return False
        ids = [c.request_id for c in self.captured] + self.backfills
        details = [self.admin_status(i) for i in ids]
        # A request denied after its resolution is final with its jobs still owed an answer:
        # one whose message was lost is sent again by the sweep at its checkpoint, later
        unanswered = [s for d in details for s in d.get("systems") or ()
                      if s.get("status") in ("pending", "submitted")
                      and s.get("satisfied") != "retired"
                      and s["system"] not in self.absent]  # fmt: skip
        return not unanswered and all(d["status"] in FINAL for d in details)

    def check_final(self) -> None:
        # nothing lost: every request is final in the operator's view and the public one
        later = self.clock.now(UTC) + REPLAY_CAP
        for captured in self.captured:
            detail = self.admin_status(captured.request_id)
            assert detail["status"] in FINAL, (captured, detail)
            if captured.is_request:
                self.check_public(captured, detail, later)
            else:  # links, opt-ins: final, with nothing asked of anyone
                public = self.public_status(captured.request_id, later)
                assert public["status"] in FINAL, (captured, public)
        for backfill in self.backfills:  # and every backfill's jobs answered or failed
            detail = self.admin_status(backfill)
            assert detail["status"] in FINAL, (backfill, detail)
        # every state is exactly what the events make it, the links the resolver held left
        # out: a login joining a browser to a second account waits for an operator, and which
        # login is the second depends on the order they were resolved in (docs/decisions.md,
        # "A second account on one browser is held")
        expected = self.expected([self.unheld(c) for c in self.captured])
        for ident, purposes in expected.items():
            assert self.effective(ident) == purposes, (ident, self.effective(ident), purposes)
        # every identifier a system takes, opted out of a purpose it serves, has its receipt
        # (delivered or no such person) or a visible failure
        for ident, purposes in expected.items():
            found = self.admin_post("/v1/admin/lookup", {"type": ident[0], "value": ident[1]})
            assert found is not None or not purposes, ident
            for system in SYSTEM_NAMES:
                if system in self.absent:
                    continue  # no longer (or not yet) owed
                types, served = accepts(system)
                owed = purposes & served if ident[0] in types else set()
                if not owed:
                    continue
                self.assert_answered_or_failed(ident, system, owed, found or {})
        # the exports and the §7102 figures say the same: the watch folds a request again at
        # its next check, at most a day after the last (a young request's reminder grows x3
        # from 5 minutes up to a day: docs/operations.md), so the figures are read after one
        self.clock.advance(timedelta(hours=25))
        self.sweep_and_watch()
        for ident in expected:
            self.check_export(ident)
        self.check_figures()

    def check_public(self, captured: Captured, detail: dict[str, Any], at: datetime) -> None:
        """The public status once final, as README's GET /v1/requests says: `denied` (with no
        system if denied before it was resolved), else `failed` if a counted system failed,
        else `completed`; the counts are those of the counted systems."""
        public = self.public_status(captured.request_id, at)
        if captured.void:
            assert (public["status"], public["systems_total"]) == ("denied", 0), (captured, public)
            return
        counted = self.counted(captured, detail)
        assert public["systems_total"] == len(counted), (captured, sorted(counted), public, detail)
        if captured.denied:
            assert public["status"] == "denied", (captured, public)
            return
        states = [s["satisfied"] for s in detail["systems"] if s["system"] in counted]
        failed = states.count("failed")
        assert public["status"] == ("failed" if failed else "completed"), (captured, public, detail)
        counts = (public["systems_done"], public["systems_failed"])
        assert counts == (len(counted) - failed, failed), (captured, public, detail)

    def counted(self, captured: Captured, detail: dict[str, Any]) -> set[str]:
        """The systems a request's public status counts: each that takes an identifier type the
        request named itself and serves a purpose it asked (a system reached only through a
        link is left out), but one out of the config (retired, or not added yet) whose job here
        it retired or never made; once a system is added (back), only a request resolved
        before that may lack its job."""
        counted = set()
        for name in SYSTEM_NAMES:
            types, served = accepts(name)
            if types & captured.named and served & captured.asked:
                counted.add(name)
        listed = {s["system"]: s for s in detail["systems"]}
        for name in sorted(counted):
            if name in self.absent or captured.request_id in self.resolved_without.get(name, ()):
                own = listed.get(name)
                if own is None or own["satisfied"] == "retired":
                    counted.discard(name)
        return counted

    def export_records(self, ident: Ident) -> list[dict[str, Any]]:
        records: list[dict[str, Any]] = []
        body: dict[str, Any] = {"type": ident[0], "value": ident[1]}
        while True:
            page = self.admin_post("/v1/admin/exports/identity", body)
            if page is None:
                return records
            records += page["records"]
            if not page.get("cursor"):
                return records
            body = {**body, "cursor": page["cursor"]}

    def check_export(self, ident: Ident) -> None:
        """An identity export says what the operator's views say."""
        found = self.admin_post("/v1/admin/lookup", {"type": ident[0], "value": ident[1]}) or {}
        for record in self.export_records(ident):
            kind = record["record"]
            if kind == "request":
                detail = self.admin_status(record["request_id"])
                assert record["status"] == detail["status"], (ident, record, detail["status"])
            elif kind == "delivery":
                held = set((found.get("delivered") or {}).get(record["system"]) or ())
                assert set(record["confirmed"]) == held, (ident, record, found)
            elif kind == "identity":
                effective = {p for p, v in record["effective"].items() if v}
                assert effective == self.effective(ident), (ident, record)

    def metrics(self) -> dict[str, Any]:
        """The admin metrics route's answer for the model clock's year."""
        year = str(self.clock.now(UTC).year)
        event = http_event("GET", "/v1/admin/metrics", iam=True)
        event["queryStringParameters"] = {"year": year}
        event["rawQueryString"] = f"year={year}"
        answer = invoke(self.pipe.admin, event)
        assert answer["statusCode"] == 200, answer["body"]
        return dict(json_body(answer))

    def check_figures(self) -> None:
        """The year's §7102 figures count each opt-out request once (received, or a repeat)
        and none is still open."""
        answer = self.metrics()
        figures = answer["requests"]
        opt_outs = [c for c in self.captured if c.opts_out]
        assert figures["received"] + figures["repeats"] == len(opt_outs), figures
        limits = answer["limit_requests"]
        asked = sum(1 for c in self.captured if c.limits)
        assert limits["received"] + limits["repeats"] == asked, limits
        assert figures["open"] == 0, figures
        outcomes = ("complied_whole", "complied_part", "denied", "failed")
        assert sum(figures[o] for o in outcomes) == figures["received"], figures
        details = [self.admin_status(c.request_id) for c in opt_outs]
        statuses = [d["status"] for d in details]
        # a completed request a system did not take a named type of is complied with in part
        # (`not_taken`: a partial receipt; review s26 counsel F3)
        part = sum(1 for d in details if d["status"] == "completed" and d.get("not_taken"))
        whole = statuses.count("completed") - part
        assert figures["complied_whole"] <= whole, (figures, statuses, part)
        assert figures["complied_part"] + figures["failed"] <= statuses.count("failed") + part, (
            figures, statuses, part)  # fmt: skip

    def assert_answered_or_failed(
        self, ident: Ident, system: str, owed: set[str], found: dict[str, Any]
    ) -> None:
        delivered = set((found.get("delivered") or {}).get(system) or ())
        no_record = (found.get("no_record") or {}).get(system)
        # no false proof: delivered only what the vendor took for this identifier
        took = {p for a in self.answered if a.system == system and a.status == "done"
                and ident in a.identifiers and (a.sent is None or ident[0] in a.sent)
                for p in a.purposes}  # fmt: skip
        assert delivered <= took, (ident, system, delivered, took)
        if owed <= delivered or no_record:
            return
        refused = any(a.system == system and a.status in ("refuse", "retry")
                      and ident in a.identifiers for a in self.answered)  # fmt: skip
        views = [self.admin_status(c.request_id)["systems"] for c in self.captured]
        views += [self.admin_status(b)["jobs"] for b in self.backfills]  # a backfill's receipts
        failed = any(s.get("system") == system and s.get("status") == "failed"
                     for systems in views for s in systems)  # fmt: skip
        if refused and failed:
            return
        # a partial receipt: done for the job's other types, this one refused, and it says so
        # (README: a receipt names what the vendor refused; never proof for that identifier)
        partial = any(a.system == system and a.status == "done" and ident in a.identifiers
                      and a.sent is not None and ident[0] not in a.sent
                      for a in self.answered)  # fmt: skip
        said = any(ident[0] in ((s.get("receipt") or {}).get("identifier_types_rejected") or ())
                   for systems in views for s in systems if s.get("system") == system)  # fmt: skip
        assert partial and said, (ident, system, owed, found)


def queue_key_of(system: str) -> str:
    return {"google_ads": "googleads", "trade_desk": "tradedesk"}.get(system, system)


def assert_public_never_leads(public: dict[str, Any], detail: dict[str, Any]) -> None:
    """The public status counts the systems the request named an identifier of (not those
    it reached only through a link, nor only for purposes it did not ask), and may read
    processing while the operator's view is final (the replay hold), never final before it on
    those systems."""
    resolution = detail["resolution"]
    hidden = set(resolution.get("linked_only") or ()) | set(resolution.get("carried_only") or ())
    counted = [s for s in detail["systems"] if s["system"] not in hidden]
    states = {s["satisfied"] for s in counted}
    if public["status"] == "completed":
        assert states <= {"done", "not_asked", "not_planned", "retired"}, (public, detail)
    if public["status"] == "failed":
        assert "failed" in states and "processing" not in states, (public, detail)
    if detail["status"] == "received":
        assert public["status"] == "received", (public, detail)
    if public["status"] in ("received", "processing"):  # no progress shown before the end
        assert (public["systems_done"], public["systems_failed"]) == (0, 0), public
    if public["status"] == "received":  # nor which systems, before the resolution
        assert public["systems_total"] == 0, public
    if detail["status"] in ("denied",):
        assert public["status"] == "denied", (public, detail)


def test_the_pipeline_keeps_its_promises_over_any_sequence(tmp_path: Path) -> None:
    with model_world(tmp_path) as world:
        run_state_machine_as_test(lambda: PipelineModel(world), settings=model_settings())


def test_every_kind_of_step_in_one_sequence(tmp_path: Path) -> None:
    """One fixed sequence through the steps random examples seldom reach together: customer
    ids and requests to limit, a partial receipt, a denial before and one after the
    resolution (and one refused), stream records late, lost and delivered twice, a system
    added after the first deploy (a retire of it refused, 404, while it was never configured)
    and backfilled (its job refused, then replayed), a system retired on record (200) with its
    jobs left open, then the same drain and final checks (a retired system added back and
    backfilled is left to the random examples, to keep the file's time)."""
    with model_world(tmp_path) as world:
        model = PipelineModel(world)
        try:
            every_kind_of_step(model)
        except BaseException:
            model.close()
            raise
        model.teardown()


def every_kind_of_step(model: PipelineModel) -> None:
    ann, bob = EMAILS
    first, second = DEVICES
    customer, phone = CUSTOMERS[0], PHONES[0]
    model.first_deploy(later="google_ads")  # added to the config later
    model.first_opt_out(email=ann)
    model.webform(email=None, phone=phone, customer=customer, purposes={"sale", "limit_sensitive"},
                  device=first, gpc=False)  # fmt: skip
    model.banner(device=second, purposes={"limit_sensitive"}, token_email=bob, gpc=True)
    model.identity_link(pair=(("email", ann), ("customer_id", customer)))
    model.stranger(email=bob, opt_out=True, confirm=False)
    stranger = model.captured[-1]
    assert model.deny(stranger) == 200 and stranger.void  # before its resolution
    model.stream_delivers(order="reversed")
    model.operator_retires(system="google_ads")
    assert (model.retire_expectation, model.retired) == (404, None)  # never configured
    model.vendor_answers(key="webhook", answer="partial")  # the customer id refused
    assert model.deny(model.captured[0]) == 409  # a system confirmed it
    model.webform(email=None, phone=phone, customer=None, purposes={"profiling"}, device=None,
                  gpc=False)  # fmt: skip
    profiling = model.captured[-1]
    model.webform(email=bob, phone=None, customer=None, purposes={"share"}, device=None,
                  gpc=False)  # fmt: skip
    model.lose_record_of(model.captured[-1])  # the sweep finds it
    model.stream_delivers(order="in order")
    model.vendor_answers(key="webhook", answer="retry")
    assert model.deny(profiling) == 200 and not profiling.void  # resolved, nothing confirmed
    model.feed([model.record_of(model.captured[0])])  # a record delivered again
    model.states_show_only_what_was_captured_and_keep_what_they_showed()
    model.lose_message(key="braze")
    model.message_twice(key="salesforce")
    model.time_passes(minutes=10)  # the watch folds them: braze is on record
    model.operator_retires(system="braze")
    assert (model.retire_expectation, model.retired) == (200, "braze")
    model.webform(email=bob, phone=None, customer=customer, purposes=None, device=None, gpc=False)
    model.identity_link(pair=(("device_id", first), ("customer_id", customer)))
    model.stream_delivers(order="newest only")
    model.vendor_answers(key="segment", answer="refuse")
    model.operator_replay(system="segment")
    model.stream_delivers(order="in order")  # the late records
    # No event follows: only the backfill reaches the earlier opt-outs
    model.add_and_backfill("google_ads", resend=False)
    model.stream_delivers(order="in order")
    model.vendor_answers(key="google_ads", answer="refuse")  # the backfill's job fails
    model.operator_replay(system="google_ads")  # and is sent again
    model.no_view_claims_an_answer_no_vendor_gave()


def test_a_request_that_asks_nothing_counts_no_quiet_system(tmp_path: Path) -> None:
    """README (GET /v1/requests): a request that names someone's identifier and opts out of
    nothing gets no systems, so its status never tells a stranger what that person chose. The
    resolver lists a vendor's recent "no such person" for that identifier under `not_asked`
    whatever the request asked (resolver/service.py `_not_asked`), and the public status
    counts it as done: 1 system where a person meta holds reads 0 (found by the model's search;
    likewise a stranger's opt-out of `sale` counts meta, which serves no `sale`, and a banner
    opt-out of a device counts salesforce's "no such person" for the email a token linked to
    it: `_linked_only` looks at jobs and cited jobs, not at the quiet ones)."""
    with model_world(tmp_path) as world:
        model = PipelineModel(world)
        try:
            model.first_opt_out(email=EMAILS[0])
            model.stream_delivers(order="in order")
            model.vendor_answers(key="meta", answer="no_record")
            model.stranger(email=EMAILS[0], opt_out=False, confirm=False)
            model.stream_delivers(order="in order")
            asks_nothing = model.captured[-1].request_id
            later = model.clock.now(UTC) + REPLAY_CAP
            assert model.public_status(asks_nothing, later)["systems_total"] == 0
        finally:
            model.close()


def test_a_backfill_job_its_system_retired_is_not_open_for_good(tmp_path: Path) -> None:
    """README (the retire route): a retired system's open jobs are no longer owed, and the
    views count them neither done nor failed. A backfill's job was left out (model24, a strict
    xfail until fix-bretire24): the model's final check (every backfill final once drained)
    failed when a system added and backfilled is retired before it answered: `optout status
    BACKFILL_ID` read `processing` for good (the admin view's `_backfill_jobs` took the job's
    stored status, `pending`, with no retirement read); the report's row and `open_earlier`
    likewise (tests/integration/test_backfill.py covers those). Not fixed, not asserted here
    (it takes a day of watch runs): the job keeps its identifier values until its TTL, where a
    request's retired job loses them at the watch's next check (`drop_retired_values` runs
    per request, and a backfill's job belongs to none; docs/decisions.md)."""
    with model_world(tmp_path) as world:
        model = PipelineModel(world)
        try:
            model.first_deploy(later="meta")
            model.first_opt_out(email=EMAILS[0])
            model.stream_delivers(order="in order")
            model.add_and_backfill("meta", resend=False)  # its job carries ann
            model.first_opt_out(email=EMAILS[1])
            model.stream_delivers(order="in order")
            model.lose_message(key="meta")  # the backfill's (sent first)
            model.vendor_answers(key="meta", answer="refuse")  # bob's: failed, on record
            model.operator_retires(system="meta")  # before meta answered the backfill's job
            assert (model.retire_expectation, model.retired) == (200, "meta")
            backfill = model.admin_status(model.backfills[0])
            assert [job["status"] for job in backfill["jobs"]] == ["pending"]  # as left
            assert backfill["status"] in FINAL, backfill["status"]
        finally:
            model.close()
