"""Review s30 races: interleavings of concurrent invocations moto's serial world never shows
by itself (docs/decisions.md, "A read, not a claim"; docs/architecture.md, "Concurrency").

The other invocation runs whole inside this one: a stand-in vendor runs the second copy of a
send before its own answer is written, or a patched `Resolver._fan_out` resolves the other
shard's event while this one plans."""

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from local.moto_guard import guarded
from optout.connectors.base import Job, Outcome
from optout.delivery import job_store
from optout.resolver.service import Resolver
from optout.status import REPLAY_CAP
from optout.store import keys
from optout.store.table import Table
from tests.conftest import Aws
from tests.integration import test_backfill as tb
from tests.integration.test_resolver_delivery import Vendor, deliver, work
from tests.integration.test_worker_duplicates import Answers
from tests.integration.test_worker_duplicates import deliver as deliver_copy
from tests.support.cli import LOCAL_URL, AdminTransport, optout
from tests.support.pipeline import Pipeline, build_pipeline

EMAIL = "r30-dup@example.com"
DEVICE = "r30-device-aaaaaaaaaaaa"


@pytest.fixture
def pipe(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> Iterator[Pipeline]:
    with guarded():
        yield build_pipeline(aws, monkeypatch)


def status_later(pipe: Pipeline, request_id: str) -> dict[str, Any]:
    """The public status once every wait it may show has passed."""
    later = datetime.now(UTC) + REPLAY_CAP
    return pipe.get_at(later, f"/v1/requests/{request_id}", request_id=request_id)


def the_job(pipe: Pipeline, request_id: str, system: str) -> dict[str, Any]:
    (found,) = [i for i in pipe.items(keys.request_pk(request_id)) if i["sk"] == f"JOB#{system}"]
    return found


class Deleting:
    """A webhook receiver that deletes the person on an opt-out and does not de-duplicate
    `job_id`: its first call applies the opt-out and, before that call's answer is written,
    a second copy of the send runs whole and finds no one (`no_record`, written first)."""

    def __init__(self, pipe: Pipeline, message: dict[str, Any]) -> None:
        self.pipe, self.message = pipe, message
        self.held, self.calls = True, 0

    def deliver(self, jobs: list[Job]) -> list[Outcome]:
        self.calls += 1
        if self.calls == 1:
            self.held = False  # applied: the person is gone
            deliver(self.pipe, [self.message], self)  # copy B, whole
            return [Outcome(j.job_id, "done", http_status=200, vendor_ref="rcv-1") for j in jobs]
        status: Any = "done" if self.held else "no_record"
        return [Outcome(j.job_id, status, http_status=200) for j in jobs]


def opted_out(pipe: Pipeline) -> tuple[str, dict[str, Any]]:
    request_id = pipe.post("/v1/opt-out", {"email": EMAIL, "purposes": ["sale"]})["request_id"]
    pipe.resolve()
    (message,) = pipe.drain("webhook")
    pipe.drain_all()
    return request_id, message


# -- R1: a copy's `done` that lost to the other copy's `no_record` -----------------------------


def test_a_done_that_lost_to_another_copys_no_record_is_kept_beside_the_receipt(
    pipe: Pipeline, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # Given a webhook job and two copies of its message: A's call applies the opt-out, B's
    # call a moment later finds no one, and B's no_record is written first
    request_id, message = opted_out(pipe)
    receiver = Deleting(pipe, message)
    # When A writes its done
    deliver(pipe, [message], receiver)
    assert receiver.calls == 2
    # Then the first answer still stands (status, receipt, the mark freed and stamped with
    # the no_record time), and A's answer is kept on the job beside it
    job = the_job(pipe, request_id, "webhook")
    assert job["status"] == "no_record" and "vendor_ref" not in job["receipt"]
    (lost,) = job["lost_answers"]
    assert {k: lost[k] for k in ("status", "http_status", "vendor_ref")} == {
        "status": "done", "http_status": 200, "vendor_ref": "rcv-1"}  # fmt: skip
    assert lost["at"] >= job["completed_at"]
    (mark,) = [i for i in pipe.items("ID#email") if i["sk"] == "DELIVERY#webhook"]
    assert not mark.get("inflight") and mark["no_record_job"] == f"{request_id}:webhook"
    assert list(pipe.items(keys.failed_pk("webhook"))) == []
    # And the operator sees it wherever the receipt is shown: `optout status` (JSON and text)
    transport = AdminTransport(pipe.admin)

    def cli(*argv: str) -> str:
        ran = optout(capsys, transport, "--base-url", LOCAL_URL, *argv)
        assert ran.code == 0, ran.err
        return ran.out

    shown = json.loads(cli("status", request_id, "--json"))
    (webhook,) = [s for s in shown["systems"] if s["system"] == "webhook"]
    assert webhook["status"] == "no_record" and webhook["lost_answers"] == [lost]
    text = cli("status", request_id)
    block = text[text.index("webhook") :]
    assert f"also answered done at {lost['at']} (HTTP 200; rcv-1)" in block
    # ... the identity export's and the range export's job records
    person, day = tmp_path / "person.jsonl", tmp_path / "day.jsonl"
    cli("export", "--email", EMAIL, "-o", str(person))
    today = job["completed_at"][:10]
    cli("export", "--from", today, "--to", today, "-o", str(day))
    for path in (person, day):
        records = [json.loads(line) for line in path.read_text().splitlines()]
        job_id = f"{request_id}:webhook"
        (record,) = [r for r in records if r["record"] == "job" and r["job_id"] == job_id]
        assert record["status"] == "no_record" and record["lost_answers"] == [lost]


def test_two_copies_that_both_answer_done_keep_no_lost_answer(pipe: Pipeline) -> None:
    # Given a webhook job and two copies of its message, both answered done (a receiver that
    # answers a repeat as the first time)
    request_id, message = opted_out(pipe)
    calls: list[int] = []

    class Repeating:
        def deliver(self, jobs: list[Job]) -> list[Outcome]:
            calls.append(1)
            if len(calls) == 1:
                deliver(pipe, [message], self)  # copy B, whole
            return [Outcome(j.job_id, "done", http_status=200) for j in jobs]

    deliver(pipe, [message], Repeating())
    assert len(calls) == 2
    # Then the job is done, with nothing kept beside it: the same answer is not a second one
    job = the_job(pipe, request_id, "webhook")
    assert job["status"] == "done" and "lost_answers" not in job


def test_keeping_a_lost_answer_is_written_once_and_bounded(pipe: Pipeline) -> None:
    # Given a job that ended no_record
    request_id, message = opted_out(pipe)
    deliver(pipe, [message], Vendor(status="no_record"))
    table = Table(pipe.aws.dynamodb, pipe.aws.table_name)
    stored = the_job(pipe, request_id, "webhook")
    answer = {"status": "done", "http_status": 200, "at": "2026-12-03T00:00:00.000Z"}
    # When the same keep is sent twice (a committed write whose answer was lost, retried)
    assert job_store.keep_lost_answer(table, stored, answer)
    assert job_store.keep_lost_answer(table, stored, answer)
    # Then it is recognised as written, and kept once
    assert the_job(pipe, request_id, "webhook")["lost_answers"] == [answer]
    # And the list stops at its bound
    for n in range(1, job_store.LOST_ANSWERS_KEPT + 1):
        more = answer | {"at": f"2026-12-03T00:00:0{n}.000Z"}
        written = job_store.keep_lost_answer(table, the_job(pipe, request_id, "webhook"), more)
        assert written == (n < job_store.LOST_ANSWERS_KEPT)
    kept = the_job(pipe, request_id, "webhook")["lost_answers"]
    assert len(kept) == job_store.LOST_ANSWERS_KEPT and kept[0] == answer
    # And nothing is kept on a job no longer holding the answer it was read with
    moved = stored | {"completed_at": "2020-01-01T00:00:00.000Z"}
    assert not job_store.keep_lost_answer(table, moved, answer | {"http_status": 202})


def test_a_lost_answer_that_cannot_be_kept_leaves_the_job_and_the_message_as_before(
    pipe: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the race above, and the keeping write refused by DynamoDB (throttled past
    # botocore's retries)
    request_id, message = opted_out(pipe)

    refused: list[int] = []

    def throttled(*_args: Any) -> bool:
        refused.append(1)
        error = {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "-"}}
        raise ClientError(error, "UpdateItem")  # type: ignore[arg-type]

    monkeypatch.setattr(job_store, "keep_lost_answer", throttled)
    first = Deleting(pipe, message)
    first.calls = 1  # this copy is the later one: it finds no one
    first.held = False
    # When copy A (answered done) writes after copy B's no_record
    report = deliver_copy(pipe, message, Answers(
        lambda job: Outcome(job.job_id, "done", 200),
        lambda: deliver(pipe, [message], first)))  # fmt: skip
    # Then B's answer stands, nothing is kept, and A's message is acknowledged all the same
    job = the_job(pipe, request_id, "webhook")
    assert refused and job["status"] == "no_record" and "lost_answers" not in job
    assert report.counts["JobWritesLost"] == 1 and report.decisions["m-copy"].retry_in is None


# -- R2, R3: an opt-out and a newer confirmed opt-in of one device, on two shards ------------


def consent_pair(pipe: Pipeline) -> tuple[str, str]:
    """A: an opt-out of sale (t1); B: a confirmed opt-in of the same device (t2 > t1)."""
    a = pipe.post("/v1/consent", {"device_id": DEVICE, "opt_out": {"sale": True}})["request_id"]
    b = pipe.post("/v1/consent", {"device_id": DEVICE, "opt_out": {"sale": False},
                                  "confirm_opt_in": True})["request_id"]  # fmt: skip
    return a, b


@pytest.mark.parametrize(("order", "systems"), [("out-first", 1), ("in-first", 0)])
def test_an_opt_out_and_a_newer_confirmed_opt_in_on_two_shards_end_opted_in_either_order(
    pipe: Pipeline, order: str, systems: int
) -> None:
    # Given the pair, on two shards whose resolvers run in no fixed order
    a, _b = consent_pair(pipe)
    records = pipe.event_records()
    assert len(records) == 2
    if order == "in-first":
        records = records[::-1]
    # When each shard's resolver runs its record, and the workers deliver what was sent
    for record in records:
        assert pipe.resolve([record]) == {"batchItemFailures": []}
    for key in pipe.queue_urls:
        work(pipe, key, Vendor(status="done"))
    # Then the final state is the same: not opted out (last writer wins on received_at)
    state = pipe.get(f"/v1/consent/{DEVICE}", device_id=DEVICE)
    assert state["opt_out"]["sale"] is False
    # And the opt-out completes either way: sent to the webhook when it resolved first, to
    # nobody when the opt-in had already landed (its register older: no job)
    shown = status_later(pipe, a)
    assert (shown["status"], shown["systems_total"], shown["systems_done"]) == (
        "completed", systems, systems)  # fmt: skip


def test_an_opt_in_resolved_while_the_older_opt_out_plans_still_lets_the_opt_out_be_sent(
    pipe: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the pair, and B resolved whole while A's resolver is inside its planning (after
    # A's derivation read the device's node)
    a, b = consent_pair(pipe)
    records = pipe.event_records()
    rec_a = next(r for r in records if r["dynamodb"]["NewImage"]["request_id"]["S"] == a)
    b_event = next(i for i in pipe.partition(keys.request_pk(b)) if i["sk"] == "EVENT")
    original = Resolver._fan_out
    ran: list[str] = []

    def fan_out(self: Any, request_id: str, *args: Any, **kw: Any) -> Any:
        if request_id == a and not ran:
            ran.append(request_id)
            self.process(b_event)  # the other shard's resolver
        return original(self, request_id, *args, **kw)

    monkeypatch.setattr(Resolver, "_fan_out", fan_out)
    # When A's resolver finishes
    assert pipe.resolve([rec_a]) == {"batchItemFailures": []}
    assert ran == [a]
    # Then A's job is made and sent (over-honouring: the vendor only ever gets an opt-out),
    # and the flush, seeing its basis move, writes the right state: not opted out
    sent = [m for key in pipe.queue_urls for m in pipe.drain(key)]
    assert [m["job_id"] for m in sent] == [f"{a}:webhook"]
    state = pipe.get(f"/v1/consent/{DEVICE}", device_id=DEVICE)
    assert state["opt_out"]["sale"] is False
    assert (status_later(pipe, a)["status"], status_later(pipe, a)["systems_total"]) == (
        "processing", 1)  # fmt: skip


# -- a backfill planning while a new opt-out of the same person resolves ----------------------


def test_a_backfill_planning_while_a_new_opt_out_of_the_same_person_resolves_leaves_one_job(
    pipe: Pipeline, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Given braze added after a person opted out, its backfill asked, and a new opt-out of
    # the same person captured on another shard
    tb.opted_out_before(pipe, monkeypatch, tmp_path, "braze")
    first = tb.backfill(pipe, "braze")["request_id"]
    records = pipe.event_records()
    new = pipe.post("/v1/opt-out", {"email": tb.EMAIL, "purposes": ["sale"]})["request_id"]
    new_records = pipe.event_records()
    original = Resolver._fan_out
    ran: list[str] = []

    def fan_out(self: Any, request_id: str, *args: Any, **kw: Any) -> Any:
        if "~" in request_id and not ran:  # the backfill step's job request, planning
            ran.append(request_id)
            event = next(i for i in pipe.partition(keys.request_pk(new)) if i["sk"] == "EVENT")
            pipe.resolver.resolver().process(event)  # the other shard's resolver, whole
        return original(self, request_id, *args, **kw)

    monkeypatch.setattr(Resolver, "_fan_out", fan_out)
    # When the backfill resolves with the new opt-out resolved inside its planning, and the
    # new opt-out's stream record comes late (a repeat)
    assert pipe.resolve(records) == {"batchItemFailures": []}
    assert len(ran) == 1
    monkeypatch.setattr(Resolver, "_fan_out", original)
    assert pipe.resolve(new_records) == {"batchItemFailures": []}
    # Then the person has one braze job, the new opt-out's, and every message names it
    jobs = [i for i in pipe.items("REQ#") if i["sk"] == "JOB#braze"]
    assert [j["job_id"] for j in jobs] == [f"{new}:braze"]
    assert {m["job_id"] for m in pipe.drain("braze")} == {f"{new}:braze"}
    # ... the backfill planned the person and made no job for them (the mark was taken)
    step = tb.resolution(pipe, first)
    assert (step["planned"], step["jobs_total"]) == (1, 0)
    assert tb.resolution(pipe, new)["jobs_total"] == 1
