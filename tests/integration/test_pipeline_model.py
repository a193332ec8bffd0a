"""A model-based (stateful) test of the whole pipeline: random sequences of what the real world
does (webform, banner and GPC opt-outs, identity links and tokens, strangers' assertions and
opt-ins, vendors answering done / no_record / retry / refuse, stream records late, twice, out
of order or lost, queue messages lost or twice, the clock moved on with the sweep and the
deadline watch running, an operator's replay), checked against what counsel relies on after
every step and once everything has drained:

- nothing lost: every request is final, and every identifier a system takes for a purpose it
  is opted out of has that system's receipt, or a visible failure;
- no false proof: no view says done/delivered for a system that never answered for it;
- the views agree (the public status may lag the operator's, never lead it);
- an opt-out is sticky and stays with its person: a state never shows an opt-out no captured
  event could have reached it with, and never loses one an event that named it made;
- each accepted capture is one AWS call.

The capture, admin and resolver handlers are the real ones over moto (tests/support/pipeline.py),
the worker's DeliveryService runs behind a stand-in vendor, and one clock drives them all
(tests/support/model_clock.py). `OPTOUT_MODEL_EXAMPLES` runs a longer search."""

import json
import os
from collections import defaultdict
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
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
from tests.conftest import moto_account
from tests.integration.test_resolver_delivery import SYSTEMS
from tests.support import iam
from tests.support.http_events import http_event, json_body
from tests.support.lambdas import invoke
from tests.support.model_clock import ModelClock, model_clock
from tests.support.pipeline import Pipeline, build_pipeline
from tests.support.tokens import token_for

EMAILS = ("ann@example.com", "bob@example.com")
PHONES = ("+14155550101",)
DEVICES = ("dev-model-device-0001", "dev-model-device-0002")
STRANGER = "dev-model-stranger-001"
OPT_OUTS = ("sale", "share", "targeted_advertising", "profiling")
GPC = frozenset({"sale", "share", "targeted_advertising"})
ANSWERS = ("done", "no_record", "retry", "refuse")
SYSTEM_NAMES = tuple(s.name for s in SYSTEMS.systems)
SWEEP_EVERY = timedelta(minutes=10)  # the schedule's rate (template.yaml)
FINAL = ("completed", "failed", "denied")

Ident = tuple[str, str]  # (type, value)


def model_settings() -> settings:
    """Quick and deterministic in the suite; OPTOUT_MODEL_EXAMPLES=N searches longer."""
    search = int(os.environ.get("OPTOUT_MODEL_EXAMPLES", "0"))
    return settings(
        phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink],  # no tracing
        max_examples=search or 3,
        stateful_step_count=25 if search else 10,
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
    opts_out: bool = False


@dataclass
class Answered:
    job_id: str
    system: str
    status: str
    purposes: frozenset[str]
    identifiers: frozenset[Ident]


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
            self.log.append(Answered(job.job_id, job.system, self.answer, purposes, idents))
            if self.answer == "retry":
                error = DeliveryError("503", retryable=True, http_status=503)
                outcomes.append(Outcome(job.job_id, None, http_status=503, error=error))
            elif self.answer == "refuse":
                error = DeliveryError("400 bad request", retryable=False, http_status=400)
                outcomes.append(Outcome(job.job_id, None, http_status=400, error=error))
            else:
                status: Any = self.answer
                outcomes.append(Outcome(job.job_id, status, http_status=200))
        return outcomes


@dataclass
class Message:
    body: dict[str, Any]
    receives: int = 0


def accepts(system: str) -> tuple[set[str], set[str]]:
    config = SYSTEMS.get(system)
    return set(config.identifier_types), set(config.purposes)


class PipelineModel(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self._stack = ExitStack()
        self.patch = self._stack.enter_context(pytest.MonkeyPatch.context())
        self.aws = self._stack.enter_context(moto_account())
        self.pipe: Pipeline = build_pipeline(self.aws, self.patch)
        self.clock: ModelClock = self._stack.enter_context(model_clock(self.pipe.admin))
        self.captured: list[Captured] = []
        self.stream: list[dict[str, Any]] = []  # records read, not yet given to the resolver
        self.seen: list[dict[str, Any]] = []  # records given to the resolver (to repeat one)
        self.queued: dict[str, list[Message]] = defaultdict(list)
        self.answered: list[Answered] = []
        self.last_state: dict[Ident, set[str]] = {}
        self.calls: list[tuple[str | None, str]] = []
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
        opts_out = any(any(v for v in p.values()) for p in own.values())
        self.captured.append(Captured(request_id, len(self.captured), own, opts_out=opts_out, **kw))

    def read_stream(self) -> None:
        self.stream.extend(self.pipe.event_records())

    def feed(self, records: list[dict[str, Any]]) -> None:
        if records:
            assert self.pipe.resolve(records) == {"batchItemFailures": []}
            self.seen.extend(records)

    def pull(self, key: str) -> None:
        self.queued[key].extend(Message(b) for b in self.pipe.drain(key))

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
        Sweeper(table, SweepSettings(), clock=lambda: self.clock.now(UTC)).sweep()
        Watch(table, WatchSettings(), clock=lambda: self.clock.now(UTC)).run()

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

    def admin_post(self, path: str, body: Any, *, ok: int = 200, **params: str) -> Any:
        event = http_event("POST", path, body, path_parameters=params or None, iam=True)
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

    def ever(self) -> dict[Ident, set[str]]:
        """The most any state may show: every opt-out ever captured, none ever lifted."""
        lifted = [
            Captured(c.request_id, c.seq, {i: {p: v for p, v in ch.items() if v}
                                           for i, ch in c.own.items()}, c.links, c.asserts)
            for c in self.captured
        ]  # fmt: skip
        return self.expected(lifted)

    # -- rules: what the world sends --------------------------------------------------------

    @initialize(email=st.sampled_from(EMAILS))
    def first_opt_out(self, email: str) -> None:
        request_id = self.capture("/v1/opt-out", {"email": email})
        self.record(request_id, {("email", email): dict.fromkeys(OPT_OUTS, True)})

    @rule(
        email=st.none() | st.sampled_from(EMAILS),
        phone=st.none() | st.sampled_from(PHONES),
        purposes=st.none() | st.sets(st.sampled_from(OPT_OUTS), min_size=1),
        device=st.none() | st.sampled_from(DEVICES),
        gpc=st.booleans(),
    )
    def webform(
        self, email: str | None, phone: str | None, purposes: set[str] | None,
        device: str | None, gpc: bool,
    ) -> None:  # fmt: skip
        named = [("email", email), ("phone", phone)]
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
        purposes=st.sets(st.sampled_from(OPT_OUTS)),
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

    @rule(device=st.sampled_from(DEVICES), email=st.sampled_from(EMAILS))
    def identity_link(self, device: str, email: str) -> None:
        link = {"a": {"type": "device_id", "value": device}, "b": {"type": "email", "value": email}}
        request_id = self.capture("/v1/identity-links", {"links": [link]}, iam=True)
        self.record(request_id, {}, links=[(("device_id", device), ("email", email))])

    @rule(
        email=st.sampled_from(EMAILS),
        opt_out=st.booleans(),
        confirm=st.booleans(),
    )
    def stranger(self, email: str, opt_out: bool, confirm: bool) -> None:
        """A browser that is not the person's names their email without a token, and opts out
        of sale, or back in (confirmed or not: either lifts only its own register)."""
        body: dict[str, Any] = {"device_id": STRANGER, "opt_out": {"sale": opt_out},
                                "identity": {"email": email}}  # fmt: skip
        if confirm:
            body["confirm_opt_in"] = True
        request_id = self.capture("/v1/consent", body)
        dev: Ident = ("device_id", STRANGER)
        choice = {"sale": opt_out} if opt_out or confirm else {}
        self.record(request_id, {dev: choice}, asserts=[(dev, ("email", email))])

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

    @rule(data=st.data())
    def lose_record(self, data: st.DataObject) -> None:
        """A record the resolver never sees (the sweep must find its request)."""
        self.read_stream()
        if self.stream:
            self.stream.pop(data.draw(st.integers(0, len(self.stream) - 1)))

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
        self.admin_post(f"/v1/admin/systems/{system}/replay", None, ok=202, system=system)

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
                self.work(key, "done")
            if self.all_final() or self.clock.now(UTC) >= end:
                break
            self.advance(SWEEP_EVERY)

    def all_final(self) -> bool:
        if self.stream or any(self.queued.values()):
            return False
        return all(self.admin_status(c.request_id)["status"] in FINAL for c in self.captured)

    def check_final(self) -> None:
        # nothing lost: every request is final in the operator's view and the public one
        later = self.clock.now(UTC) + REPLAY_CAP
        for captured in self.captured:
            detail = self.admin_status(captured.request_id)
            assert detail["status"] in FINAL, (captured, detail)
            public = self.public_status(captured.request_id, later)
            assert public["status"] in FINAL, (captured, public)
        # every state is exactly what the events make it
        expected = self.expected(self.captured)
        for ident, purposes in expected.items():
            assert self.effective(ident) == purposes, (ident, self.effective(ident), purposes)
        # every identifier a system takes, opted out of a purpose it serves, has its receipt
        # (delivered or no such person) or a visible failure
        for ident, purposes in expected.items():
            found = self.admin_post("/v1/admin/lookup", {"type": ident[0], "value": ident[1]})
            assert found is not None or not purposes, ident
            for system in SYSTEM_NAMES:
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

    def check_figures(self) -> None:
        """The year's §7102 figures count each opt-out request once (received, or a repeat)
        and none is still open."""
        year = str(self.clock.now(UTC).year)
        event = http_event("GET", "/v1/admin/metrics", iam=True)
        event["queryStringParameters"] = {"year": year}
        event["rawQueryString"] = f"year={year}"
        answer = invoke(self.pipe.admin, event)
        assert answer["statusCode"] == 200, answer["body"]
        figures = json_body(answer)["requests"]
        opt_outs = [c for c in self.captured if c.opts_out]
        assert figures["received"] + figures["repeats"] == len(opt_outs), figures
        assert figures["open"] == 0, figures
        outcomes = ("complied_whole", "complied_part", "denied", "failed")
        assert sum(figures[o] for o in outcomes) == figures["received"], figures
        statuses = [self.admin_status(c.request_id)["status"] for c in opt_outs]
        assert figures["complied_whole"] <= statuses.count("completed"), (figures, statuses)
        assert figures["complied_part"] + figures["failed"] <= statuses.count("failed"), figures

    def assert_answered_or_failed(
        self, ident: Ident, system: str, owed: set[str], found: dict[str, Any]
    ) -> None:
        delivered = set((found.get("delivered") or {}).get(system) or ())
        no_record = (found.get("no_record") or {}).get(system)
        # no false proof: delivered only what the vendor took for this identifier
        took = {p for a in self.answered if a.system == system and a.status == "done"
                and ident in a.identifiers for p in a.purposes}  # fmt: skip
        assert delivered <= took, (ident, system, delivered, took)
        if owed <= delivered or no_record:
            return
        refused = any(a.system == system and a.status in ("refuse", "retry")
                      and ident in a.identifiers for a in self.answered)  # fmt: skip
        views = [self.admin_status(c.request_id)["systems"] for c in self.captured]
        failed = any(s.get("system") == system and s.get("status") == "failed"
                     for systems in views for s in systems)  # fmt: skip
        assert refused and failed, (ident, system, owed, found)


def queue_key_of(system: str) -> str:
    return {"google_ads": "googleads", "trade_desk": "tradedesk"}.get(system, system)


def assert_public_never_leads(public: dict[str, Any], detail: dict[str, Any]) -> None:
    """The public status counts the systems the request named an identifier of (not those
    it reached only through a link), and may read processing while the operator's view is
    final (the replay hold), never final before it on those systems."""
    hidden = set(detail["resolution"].get("linked_only") or ())
    counted = [s for s in detail["systems"] if s["system"] not in hidden]
    states = {s["satisfied"] for s in counted}
    if public["status"] == "completed":
        assert states <= {"done", "not_asked", "not_planned", "retired"}, (public, detail)
    if public["status"] == "failed":
        assert "failed" in states and "processing" not in states, (public, detail)
    if detail["status"] == "received":
        assert public["status"] == "received", (public, detail)
    if detail["status"] in ("denied",):
        assert public["status"] == "denied", (public, detail)


def test_the_pipeline_keeps_its_promises_over_any_sequence() -> None:
    run_state_machine_as_test(PipelineModel, settings=model_settings())
