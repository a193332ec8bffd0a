"""The operator CLI `optout` against the admin function (in-process, as the local stack
serves it): what it prints, what it sends, and one line and a non-zero exit on bad input."""

import csv
import hashlib
import json
import os
import re
import stat
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from botocore.stub import Stubber
from moto.core import DEFAULT_ACCOUNT_ID
from moto.dynamodb.models import dynamodb_backends

from local.moto_guard import guarded
from local.spawn import free_port
from optout import receipt_words
from optout.connectors.base import Outcome
from optout.connectors.errors import DeliveryError
from optout.ops.export import LATE_INDEX_MARGIN
from optout.ops.watch import Watch, WatchSettings
from optout.resolver import service as resolver_service
from optout.store import keys
from optout.store.table import Table
from optout.timestamps import iso
from optout_cli import main as cli_main
from tests.conftest import Aws
from tests.integration.test_resolver_delivery import Vendor, emails_sent, work
from tests.integration.test_retire import redeploy, without
from tests.support.cli import LOCAL_URL, AdminTransport, Ran, optout
from tests.support.log_lines import logged_lines
from tests.support.pipeline import Pipeline, build_pipeline
from tests.support.tokens import token_for

EMAIL = "cli-person@example.com"
UNKNOWN = "0b7e2b4c-1111-4222-8333-944455556666"


@pytest.fixture
def pipe(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> Iterator[Pipeline]:
    with guarded():
        yield build_pipeline(aws, monkeypatch)


@pytest.fixture
def cli(
    pipe: Pipeline, capsys: pytest.CaptureFixture[str]
) -> Iterator[tuple[AdminTransport, "Cli"]]:
    transport = AdminTransport(pipe.admin)
    yield transport, Cli(capsys, transport)


class Cli:
    def __init__(self, capsys: pytest.CaptureFixture[str], transport: httpx.BaseTransport) -> None:
        self.capsys, self.transport = capsys, transport

    def __call__(self, *argv: str) -> Ran:
        return optout(self.capsys, self.transport, "--base-url", LOCAL_URL, *argv)


def one_line_failure(ran: Ran) -> str:
    assert ran.code != 0
    assert ran.out == ""
    lines = ran.err.strip().splitlines()
    assert len(lines) == 1, ran.err
    assert lines[0].startswith("optout: ")
    assert "Traceback" not in ran.err
    return lines[0]


# -- status and lookup ---------------------------------------------------------------------------


def test_status_prints_a_requests_state_and_its_systems(
    pipe: Pipeline, cli: tuple[AdminTransport, Cli]
) -> None:
    # Given a resolved webform opt-out
    request_id = pipe.post("/v1/opt-out", {"email": EMAIL, "purposes": ["sale"]})["request_id"]
    pipe.resolve()
    # When the operator asks for its status
    ran = cli[1]("status", request_id)
    # Then it names the request, its status and every system it went to
    assert ran.code == 0, ran.err
    assert request_id in ran.out and "processing" in ran.out
    assert "salesforce" in ran.out and "braze" in ran.out
    assert EMAIL not in ran.out


def test_status_names_a_requests_further_job_for_another_person_it_named(
    pipe: Pipeline, cli: tuple[AdminTransport, Cli]
) -> None:
    # Given a phone out of profiling, then a form naming an email and that phone, asking sale:
    # the webhook gets the request's own job and a further one (each person's own purposes)
    phone = "+14155550177"
    pipe.post("/v1/opt-out", {"phone": phone, "purposes": ["profiling"]})
    pipe.resolve()
    pipe.drain_all()
    body = {"email": EMAIL, "phone": phone, "purposes": ["sale"]}
    request_id = pipe.post("/v1/opt-out", body)["request_id"]
    pipe.resolve()
    # When the operator asks for its status, Then the webhook's block names the further job
    ran = cli[1]("status", request_id)
    assert ran.code == 0, ran.err
    (line,) = [x for x in ran.out.splitlines() if x.startswith(f"  and its job {request_id}~")]
    assert line.endswith(":webhook (pending, -)")
    assert EMAIL not in ran.out and phone not in ran.out


def test_status_names_the_agent_who_filed_the_request(
    pipe: Pipeline, cli: tuple[AdminTransport, Cli]
) -> None:
    agent = {"name": "Acme [Agents]", "agent_id": "A-1"}
    request_id = pipe.post("/v1/opt-out", {"email": EMAIL, "agent": agent})["request_id"]
    ran = cli[1]("status", request_id)
    assert ran.code == 0, ran.err
    assert "filed by agent: Acme [Agents] (A-1)" in ran.out


def test_status_says_why_an_identity_token_was_left_out(
    pipe: Pipeline, cli: tuple[AdminTransport, Cli]
) -> None:
    # Given a webform opt-out naming the person, whose token the page's banner already used
    token = token_for(email=EMAIL, device_id="dev-cli-token-aaaa", jti="cli-left-out-1")
    pipe.post("/v1/consent", {"device_id": "dev-cli-token-aaaa", "identity_token": token,
                              "opt_out": {"sale": True}})  # fmt: skip
    form = {"email": EMAIL, "identity_token": token, "device_id": "dev-cli-token-aaaa"}
    request_id = pipe.post("/v1/opt-out", form)["request_id"]
    # When the operator asks for its status
    ran = cli[1]("status", request_id)
    # Then the record says the token was set aside, and why
    assert ran.code == 0, ran.err
    assert "identity token left out: identity_token was already used" in ran.out


class Referenced(Vendor):
    """Confirms every job with a long reference, as batch APIs answer."""

    def deliver(self, jobs: list[Any]) -> list[Outcome]:
        return [Outcome(j.job_id, "done", http_status=200, vendor_ref=f"batch-{'0f1e2d3c' * 6}")
                for j in jobs]  # fmt: skip


def test_status_prints_receipt_times_and_references_whole_at_80_columns(
    pipe: Pipeline, cli: tuple[AdminTransport, Cli], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given an opt-out braze confirmed, and an 80-column terminal
    monkeypatch.setenv("COLUMNS", "80")
    request_id = pipe.post("/v1/opt-out", {"email": EMAIL, "purposes": ["sale"]})["request_id"]
    pipe.resolve()
    work(pipe, "braze", Referenced())
    (job,) = [i for i in pipe.items(f"REQ#{request_id}") if i["sk"] == "JOB#braze"]
    # When the operator asks for its status
    ran = cli[1]("status", request_id)
    # Then braze's confirmation time and receipt reference are printed whole
    assert ran.code == 0, ran.err
    assert f"braze  done  {job['completed_at']}" in ran.out
    assert f"receipt: {job['receipt']['vendor_ref']}" in ran.out


def test_status_prints_what_an_earlier_requests_job_sent_when_it_satisfies_the_request(
    pipe: Pipeline, cli: tuple[AdminTransport, Cli]
) -> None:
    # Given an opt-out braze confirmed for the email, then the same opt-out again, which that
    # earlier job satisfies (no job of its own)
    first = pipe.post("/v1/opt-out", {"email": EMAIL, "purposes": ["sale"]})["request_id"]
    pipe.resolve()
    work(pipe, "braze", Vendor(sent=("email",)))
    second = pipe.post("/v1/opt-out", {"email": EMAIL, "purposes": ["sale"]})["request_id"]
    pipe.resolve()
    # When the operator asks for the second's status
    ran = cli[1]("status", second)
    # Then under "satisfied by" it prints what that job sent, as for a job of its own
    # (review s16 drill F5: types, purposes and HTTP status; never a value)
    assert ran.code == 0, ran.err
    lines = ran.out.splitlines()
    at = next(i for i, line in enumerate(lines) if f"satisfied by {first}" in line)
    assert lines[at + 1] == "    sent: email; purposes: sale; HTTP 200"
    assert EMAIL not in ran.out


def test_status_line_counts_identities_a_job_left_unsent_its_own_and_others() -> None:
    # Given a receipt as a request's view shows it: one of its own identities left unsent, two
    # other people's carried by the same job counted, never listed (review s29 mends M4)
    receipt = {
        "identifier_types_sent": ["email"],
        "identities_not_sent": ["email#k1"],
        "identities_not_shown": 2,
        "http_status": 200,
    }
    # When the status line is written
    line = cli_main._what_was_sent({"purposes": ["sale"]}, receipt)
    # Then both counts are there, and no keyed identity
    assert line == (
        "sent: email; not sent: 1 of this request's identities; "
        "not sent: 2 other identities the job carried; purposes: sale; HTTP 200"
    )
    assert "k1" not in line
    assert cli_main.UNSENT_LISTS == keys.UNSENT_LISTS


class NoSuchPerson(Vendor):
    """Answers every job "no such person", as Braze does for an email it holds no profile of."""

    def deliver(self, jobs: list[Any]) -> list[Outcome]:
        return [Outcome(j.job_id, "no_record", http_status=200, note="no such person")
                for j in jobs]  # fmt: skip


def test_status_says_a_vendor_held_no_such_person_not_just_done(
    pipe: Pipeline, cli: tuple[AdminTransport, Cli]
) -> None:
    # Given an opt-out braze answered with "no such person"
    request_id = pipe.post("/v1/opt-out", {"email": EMAIL, "purposes": ["sale"]})["request_id"]
    pipe.resolve()
    work(pipe, "braze", NoSuchPerson())
    # When the operator asks for its status
    ran = cli[1]("status", request_id)
    # Then braze's line says no_record and the vendor's note, not a bare "done"
    assert ran.code == 0, ran.err
    assert "braze  done (no_record)" in ran.out
    assert "note: no such person" in ran.out


UID2_NOTE = "no UID2 for this person (UID2 operator identity/map: optout)"


@dataclass
class Uid2Unmapped(Vendor):
    """Answers as The Trade Desk's connector does for a person its UID2 operator could not map
    (opted out of UID2): no_record, the operator's status and note, The Trade Desk never
    called; `sent_to` as written since 2026-12-04, or not (an older receipt)."""

    sent_to: str | None = "uid2_operator"

    def deliver(self, jobs: list[Any]) -> list[Outcome]:
        kept = {} if self.sent_to is None else {"sent_to": self.sent_to}
        return [Outcome(j.job_id, "no_record", 200, None, ("email",), note=UID2_NOTE, **kept)
                for j in jobs]  # fmt: skip


@pytest.mark.parametrize("sent_to", ["uid2_operator", None], ids=["sent_to", "older_receipt"])
def test_status_says_a_trade_desk_no_record_went_to_the_uid2_operator_not_the_trade_desk(
    pipe: Pipeline, cli: tuple[AdminTransport, Cli], sent_to: str | None
) -> None:
    # Given an opt-out whose email the UID2 operator could not map (it answered "optout"), so
    # The Trade Desk was never called (proof34 L2: the status said `sent: email; ... HTTP 200`)
    request_id = pipe.post("/v1/opt-out", {"email": EMAIL, "purposes": ["sale"]})["request_id"]
    pipe.resolve()
    work(pipe, "tradedesk", Uid2Unmapped(sent_to=sent_to))
    (job,) = [i for i in pipe.items(f"REQ#{request_id}") if i["sk"] == "JOB#trade_desk"]
    # When the operator asks for its status
    ran = cli[1]("status", request_id)
    # Then trade_desk's line says who received what: the UID2 operator the email (hashed), The
    # Trade Desk nothing, and whose HTTP status it is
    assert ran.code == 0, ran.err
    purposes = ", ".join(job["purposes"])
    assert (
        "  sent to the UID2 operator (hashed, to map to a UID2): email; nothing sent to The "
        f"Trade Desk; purposes: {purposes}; UID2 operator HTTP 200"
    ) in ran.out
    assert "sent: email" not in ran.out and EMAIL not in ran.out
    assert cli_main.SENT_TO_UID2_OPERATOR == receipt_words.SENT_TO_UID2_OPERATOR
    assert cli_main.UID2_NO_RECORD_NOTE == receipt_words.UID2_NO_RECORD_NOTE


@pytest.mark.parametrize("sent_to", ["uid2_operator", None], ids=["sent_to", "older_receipt"])
def test_status_says_the_uid2_operator_answered_for_a_trade_desk_not_asked(
    pipe: Pipeline, cli: tuple[AdminTransport, Cli], sent_to: str | None
) -> None:
    # Given a Trade Desk no_record decided by the UID2 operator, and the same person's next
    # opt-out within the quiet period
    first = pipe.post("/v1/opt-out", {"email": EMAIL, "purposes": ["sale"]})["request_id"]
    pipe.resolve()
    work(pipe, "tradedesk", Uid2Unmapped(sent_to=sent_to))
    second = pipe.post("/v1/opt-out", {"email": EMAIL, "purposes": ["sale"]})["request_id"]
    pipe.resolve()
    # When the operator asks for the second one's status
    ran = cli[1]("status", second)
    # Then the not-asked line names the UID2 operator as the one that answered, not the vendor
    assert ran.code == 0, ran.err
    job = next(i for i in pipe.items(f"REQ#{first}") if i["sk"] == "JOB#trade_desk")
    line = (
        f"trade_desk not asked: the UID2 operator answered no UID2 for this person at "
        f"{job['completed_at']} (job {first}:trade_desk; nothing was sent to The Trade Desk)"
    )
    assert line in " ".join(ran.out.split())
    assert "the vendor answered no such person" not in ran.out


def test_status_says_which_vendor_was_not_asked_and_why(
    pipe: Pipeline, cli: tuple[AdminTransport, Cli]
) -> None:
    # Given an opt-out braze answered with "no such person", and the same person's next
    # opt-out within the quiet period
    first = pipe.post("/v1/opt-out", {"email": EMAIL, "purposes": ["sale"]})["request_id"]
    pipe.resolve()
    work(pipe, "braze", NoSuchPerson())
    second = pipe.post("/v1/opt-out", {"email": EMAIL, "purposes": ["sale"]})["request_id"]
    pipe.resolve()
    # When the operator asks for the second one's status
    ran = cli[1]("status", second)
    # Then braze's line says it was not asked, when braze answered and by which job
    assert ran.code == 0, ran.err
    job = next(i for i in pipe.items(f"REQ#{first}") if i["sk"] == "JOB#braze")
    at = job["completed_at"]  # the answer's own time (review s26 counsel F9)
    line = f"braze not asked: the vendor answered no such person at {at} (job {first}:braze)"
    assert line in " ".join(ran.out.split())  # as wrapped at the terminal's width


def test_status_prints_per_system_the_types_sent_and_refused_purposes_and_http_status(
    pipe: Pipeline, cli: tuple[AdminTransport, Cli]
) -> None:
    # Given an opt-out naming an email and a customer id, which braze took for the email and
    # refused for the customer id (review s16 drill F5: only the vendor reference printed)
    form = {"email": EMAIL, "customer_id": "CUST-55501", "purposes": ["sale"]}
    request_id = pipe.post("/v1/opt-out", form)["request_id"]
    pipe.resolve()
    work(pipe, "braze", Vendor(sent=("email",), rejected=("customer_id",)))
    (job,) = [i for i in pipe.items(f"REQ#{request_id}") if i["sk"] == "JOB#braze"]
    # When the operator asks for its status
    ran = cli[1]("status", request_id)
    # Then braze's block says what --json has: types sent and refused, purposes, HTTP status
    assert ran.code == 0, ran.err
    purposes = ", ".join(job["purposes"])
    assert f"  sent: email; refused: customer_id; purposes: {purposes}; HTTP 200" in ran.out
    # ... and that the request is complied with in part there (review s26 counsel F3)
    assert "braze  not taken: customer_id (the request is complied with in part)" in ran.out
    # ... and never an identifier's value
    assert EMAIL not in ran.out and "CUST-55501" not in ran.out


def test_status_of_a_replay_and_a_redrive_says_who_acted_and_what_it_did(
    pipe: Pipeline, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given salesforce refused an opt-out for good, a dead letter in its DLQ, and the
    # operator's replay carried out (review s16 drill F5: "deadline ... 0 of 0 done")
    pipe.post("/v1/opt-out", {"email": EMAIL, "purposes": ["sale"]})
    pipe.resolve()
    work(pipe, "salesforce", Vendor(refuse=True))
    dlq = pipe.queue_urls["salesforce"].removesuffix("-jobs") + "-dlq"
    dead = {"job_id": f"{UNKNOWN}:salesforce", "request_id": UNKNOWN, "system": "salesforce"}
    pipe.aws.sqs.send_message(QueueUrl=dlq, MessageBody=json.dumps(dead))
    run = Cli(capsys, resolving(pipe, "/replay"))
    ran = run("replay", "salesforce")
    assert ran.code == 0, ran.err
    replay_id = re.findall(r"replay requested \(([0-9a-f-]{36})\)", ran.out)[0]
    redrive_id = re.findall(r"redrive recorded as ([0-9a-f-]{36})", ran.out)[0]
    # When the operator asks for each one's status
    replay, redrive = run("status", replay_id), run("status", redrive_id)
    # Then each says who acted and what it did, with no deadline and no "0 of 0"
    by = "by arn:aws:iam::"
    assert replay.code == 0 and redrive.code == 0, replay.err + redrive.err
    assert re.search(rf"{by}\S+: salesforce, replayed 1 failed job", replay.out), replay.out
    assert f"{replay_id} " in replay.out and "replay at " in replay.out
    assert re.search(rf"{by}\S+: salesforce, moved 1 dead letter back", redrive.out), redrive.out
    for shown in (replay.out, redrive.out):
        assert "deadline" not in shown and "0 of 0" not in shown


def test_status_and_deny_lines_are_never_wrapped_mid_field_when_piped(
    pipe: Pipeline, cli: tuple[AdminTransport, Cli], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a denied request, and output at 40 columns (review s16 drill F6: the header,
    # denial and deny lines wrapped at the width, so `| grep deadline` missed them)
    monkeypatch.setenv("COLUMNS", "40")
    request_id = pipe.post("/v1/opt-out", {"email": EMAIL, "purposes": ["sale"]})["request_id"]
    reason = "one of 4,000 scripted submissions from one address"
    denied = cli[1]("deny", request_id, "--code", "suspected_fraud", "--reason", reason)
    # When the operator asks for its status
    ran = cli[1]("status", request_id)
    record = json.loads(cli[1]("status", request_id, "--json").out)
    # Then each line is whole: header, denial, and the deny command's answer
    assert denied.code == 0 and ran.code == 0, denied.err + ran.err
    lines = ran.out.splitlines()
    assert f"received {record['received_at']}, deadline {record['deadline']}" in lines[0]
    denial = record["denial"]
    assert any(line.startswith("denied ") and line.endswith(f"suspected_fraud - {reason}")
               for line in lines), ran.out  # fmt: skip
    first, *rest = denied.out.strip().splitlines()
    assert first == f"{request_id}: denied at {denial['denied_at']} (suspected_fraud)"
    # ... and the line saying the resolver had not recorded it yet (since session 36)
    assert rest == [f"the resolver had not recorded this request yet: jobs a run under way makes "
                    f"are added to its record (`optout status {request_id}`)"]  # fmt: skip


def test_deny_and_status_name_the_systems_its_jobs_are_under_way_to(
    pipe: Pipeline, cli: tuple[AdminTransport, Cli]
) -> None:
    # Given an opt-out resolved, its jobs sent and not answered yet
    request_id = pipe.post("/v1/opt-out", {"email": EMAIL, "purposes": ["sale"]})["request_id"]
    pipe.resolve()
    # When the operator denies it, then asks for its status
    reason = "one of 4,000 scripted submissions from one address"
    denied = cli[1]("deny", request_id, "--reason", reason)
    ran = cli[1]("status", request_id)
    record = json.loads(cli[1]("status", request_id, "--json").out)
    # Then both say which systems may still act on it (a denial stops no job already made)
    systems = record["denial"]["systems_under_way"]
    assert denied.code == 0 and ran.code == 0 and systems, denied.err + ran.err
    assert denied.out.strip().splitlines()[1:] == [
        "jobs already under way (they may reach the vendor): " + ", ".join(systems)
    ]
    assert ("jobs already under way when denied (they may reach the vendor): "
            + ", ".join(systems)) in ran.out.splitlines()  # fmt: skip


def covered_by_a_replayed_job(pipe: Pipeline, run: "Cli") -> tuple[str, str]:
    """A's braze job failed once and was replayed to done; B, later, is proven by it."""
    first = pipe.post("/v1/opt-out", {"email": EMAIL, "purposes": ["sale"]})["request_id"]
    pipe.resolve()
    work(pipe, "braze", Vendor(refuse=True))
    assert run("replay", "braze", "--no-wait").code == 0
    pipe.resolve()
    work(pipe, "braze", Vendor())
    second = pipe.post("/v1/opt-out", {"email": EMAIL, "purposes": ["sale"]})["request_id"]
    pipe.resolve()
    return first, second


def test_the_admin_detail_shows_a_covering_jobs_failures_and_replays(
    pipe: Pipeline, cli: tuple[AdminTransport, Cli]
) -> None:
    # Given B proven on braze by A's job, which failed and was replayed
    first, second = covered_by_a_replayed_job(pipe, cli[1])
    # When the operator reads B's record
    record = json.loads(cli[1]("status", second, "--json").out)
    # Then braze's covering job carries its history, as the exports give it
    (braze,) = [s for s in record["systems"] if s["system"] == "braze"]
    (covering,) = braze["satisfied_by"]
    assert (braze["proof"], covering["request_id"], covering["status"]) == (
        "earlier", first, "done",
    )  # fmt: skip
    assert covering["replays"] == 1 and covering["replayed_at"] is not None
    assert [f["receipt"]["http_status"] for f in covering["failures"]] == [400]


def test_status_shows_that_a_covering_job_failed_and_was_replayed(
    pipe: Pipeline, cli: tuple[AdminTransport, Cli]
) -> None:
    # Given B proven on braze by A's job, which failed and was replayed
    _, second = covered_by_a_replayed_job(pipe, cli[1])
    # When the operator asks for B's status
    ran = cli[1]("status", second)
    # Then braze's line says the covering job failed once and was replayed once
    assert ran.code == 0, ran.err
    assert "failed 1x; replayed 1x" in ran.out


class KeyRevoked(Vendor):
    """Refuses every job with a 401 (`auth`: the connector re-read the secret once, as a
    real one does, and was refused again)."""

    def deliver(self, jobs: list[Any]) -> list[Outcome]:
        error = DeliveryError("braze users/export/ids: HTTP 401", retryable=False,
                              http_status=401, auth=True)  # fmt: skip
        return [Outcome(j.job_id, None, http_status=401, error=error) for j in jobs]


def test_status_names_a_failures_reason_class(
    pipe: Pipeline, cli: tuple[AdminTransport, Cli]
) -> None:
    # Given braze refusing our key (a credential changed), the opt-out's job failed at it
    request_id = pipe.post("/v1/opt-out", {"email": EMAIL, "purposes": ["sale"]})["request_id"]
    pipe.resolve()
    work(pipe, "braze", KeyRevoked())
    # When the operator asks for its status
    ran = cli[1]("status", request_id)
    # Then the receipt line names the reason class the worker's log had (review s30 operator
    # F4: only in a log OperatorRole cannot read)
    assert ran.code == 0, ran.err
    assert "receipt: braze users/export/ids: HTTP 401 (reason: credentials_rejected)" in ran.out
    # ... and once replayed and delivered, a done receipt names none
    assert cli[1]("replay", "braze", "--no-wait").code == 0
    pipe.resolve()
    work(pipe, "braze", Vendor())
    assert "reason:" not in cli[1]("status", request_id).out


def test_status_counts_the_failure_a_job_is_in(
    pipe: Pipeline, cli: tuple[AdminTransport, Cli]
) -> None:
    run = cli[1]

    def braze_line() -> str:
        (line,) = [x for x in run("status", request_id).out.splitlines() if x.startswith("braze")]
        return line

    # Given an opt-out braze refused for good: a first failure counts no history
    request_id = pipe.post("/v1/opt-out", {"email": EMAIL, "purposes": ["sale"]})["request_id"]
    pipe.resolve()
    work(pipe, "braze", Vendor(refuse=True))
    assert braze_line().startswith("braze  failed  ")
    # When it is replayed with braze still refusing, and fails again
    assert run("replay", "braze", "--no-wait").code == 0
    pipe.resolve()
    work(pipe, "braze", Vendor(refuse=True))
    # Then its line counts this failure too (review s30 operator F7: it read `failed 1x`)
    assert braze_line().startswith("braze  failed; failed 2x; replayed 1x")
    # ... and once replayed and delivered, the same count
    assert run("replay", "braze", "--no-wait").code == 0
    pipe.resolve()
    work(pipe, "braze", Vendor())
    assert braze_line().startswith("braze  done; failed 2x; replayed 2x")


def test_an_unknown_request_is_one_line_and_a_non_zero_exit(
    cli: tuple[AdminTransport, Cli],
) -> None:
    line = one_line_failure(cli[1]("status", UNKNOWN))
    assert "not" in line.lower() and "found" in line.lower()


def test_a_malformed_request_id_is_refused_before_any_call(
    cli: tuple[AdminTransport, Cli],
) -> None:
    transport, run = cli
    line = one_line_failure(run("deny", "not-a-uuid", "--reason", "a scripted burst"))
    assert "REQUEST_ID" in line
    assert transport.sent == []


def test_lookup_sends_the_identifier_in_the_body_never_the_url(
    pipe: Pipeline, cli: tuple[AdminTransport, Cli]
) -> None:
    # Given a person who opted out
    pipe.post("/v1/opt-out", {"email": EMAIL, "purposes": ["sale"]})
    pipe.resolve()
    transport, run = cli
    # When the operator looks the email up
    ran = run("lookup", "--email", EMAIL)
    # Then the answer shows the opt-out, and the email travelled only in the signed body
    assert ran.code == 0, ran.err
    assert json.loads(ran.out)["own_choices"]["sale"]["v"] is True
    (sent,) = transport.sent
    assert EMAIL not in str(sent.url) and EMAIL.encode() in sent.content
    assert sent.headers["authorization"].startswith("AWS4-HMAC-SHA256 ")


def test_lookup_needs_exactly_one_identifier(cli: tuple[AdminTransport, Cli]) -> None:
    line = one_line_failure(cli[1]("lookup", "--email", EMAIL, "--phone", "+14155550132"))
    assert "exactly one" in line
    assert EMAIL not in line


# -- where the stack is --------------------------------------------------------------------------


def test_an_unreachable_url_is_one_line_and_a_non_zero_exit(
    capsys: pytest.CaptureFixture[str],
) -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    line = one_line_failure(optout(capsys, None, "--base-url", url, "status", UNKNOWN))
    assert f"cannot reach {url}" in line


@pytest.fixture
def cloudformation(monkeypatch: pytest.MonkeyPatch) -> Iterator[Stubber]:
    """CloudFormation's answers, stubbed at botocore (moto's CloudFormation needs extras)."""
    client = boto3.Session(region_name="us-west-2").client("cloudformation")
    stubber = Stubber(client)
    real = boto3.Session.client

    def client_for(self: boto3.Session, name: str, **kwargs: Any) -> Any:
        return client if name == "cloudformation" else real(self, name, **kwargs)

    monkeypatch.setattr(boto3.Session, "client", client_for)
    with stubber:
        yield stubber


def test_a_stack_that_does_not_exist_is_one_line_and_a_non_zero_exit(
    cloudformation: Stubber, capsys: pytest.CaptureFixture[str]
) -> None:
    cloudformation.add_client_error("describe_stacks", "ValidationError",
                                    "Stack with id no-such-stack does not exist")  # fmt: skip
    ran = optout(capsys, None, "--stack-name", "no-such-stack", "--region", "us-west-2",
                 "status", UNKNOWN)  # fmt: skip
    assert "no stack named 'no-such-stack' in us-west-2" in one_line_failure(ran)


def test_a_describe_refused_says_to_use_a_profile_assuming_the_operator_role(
    cloudformation: Stubber, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given credentials CloudFormation refuses (a principal that may only assume the role:
    # signing as it, the admin routes would refuse it too; review s30 newcomer F1)
    cloudformation.add_client_error("describe_stacks", "AccessDenied", "not authorized")
    ran = optout(capsys, None, "--stack-name", "optout", "--region", "us-west-2",
                 "status", UNKNOWN)  # fmt: skip
    # Then the one line says what works: a profile that assumes OperatorRole, by its output
    line = one_line_failure(ran)
    assert "CloudFormation refused: AccessDenied" in line
    assert "assumes the stack's OperatorRole" in line and "role_arn" in line
    assert "OperatorRoleArn" in line


def test_no_credentials_for_a_deployed_stack_says_to_use_a_profile_assuming_the_role(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    ran = optout(capsys, None, "--stack-name", "optout", "--region", "us-west-2",
                 "status", UNKNOWN)  # fmt: skip
    line = one_line_failure(ran)
    assert "no AWS credentials found" in line
    assert "assumes the stack's OperatorRole" in line and "OperatorRoleArn" in line


def test_a_deployed_stack_is_called_at_its_iam_url_signed_with_the_callers_credentials(
    pipe: Pipeline, cloudformation: Stubber, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    # Given a deployed stack whose IAM API is at its IamApiUrl output, and a caller's keys
    url = "https://abc123.execute-api.us-west-2.amazonaws.com"
    outputs = [{"OutputKey": "IamApiUrl", "OutputValue": url}]
    stack = {"StackName": "optout", "CreationTime": datetime(2026, 11, 1, tzinfo=UTC),
             "StackStatus": "CREATE_COMPLETE", "Outputs": outputs}  # fmt: skip
    cloudformation.add_response("describe_stacks", {"Stacks": [stack]}, {"StackName": "optout"})
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIACALLEREXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "caller-secret")
    transport = AdminTransport(pipe.admin)
    # When the operator runs a command against it
    ran = optout(capsys, transport, "--stack-name", "optout", "--region", "us-west-2",
                 "holds", "list")  # fmt: skip
    # Then the call went to that URL, SigV4-signed for execute-api in the stack's region
    assert ran.code == 0, ran.err
    (sent,) = transport.sent
    assert str(sent.url).startswith(url + "/v1/admin/holds")
    authorization = sent.headers["authorization"]
    assert authorization.startswith("AWS4-HMAC-SHA256 Credential=AKIACALLEREXAMPLE/")
    assert "/us-west-2/execute-api/aws4_request" in authorization


def test_no_target_is_one_line_and_a_non_zero_exit(capsys: pytest.CaptureFixture[str]) -> None:
    line = one_line_failure(optout(capsys, None, "status", UNKNOWN))
    assert "--base-url" in line and "--stack-name" in line


def test_a_usage_error_is_one_line_and_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    ran = optout(capsys, None, "--base-url", LOCAL_URL, "report", "--year", "1999")
    assert "--year" in one_line_failure(ran)
    assert ran.code == 2


# -- deny ---------------------------------------------------------------------------------------


def test_deny_sets_denied_with_the_reason_and_status_shows_it(
    pipe: Pipeline, cli: tuple[AdminTransport, Cli]
) -> None:
    request_id = pipe.post("/v1/opt-out", {"email": EMAIL, "purposes": ["sale"]})["request_id"]
    run = cli[1]
    denied = run("deny", request_id, "--code", "suspected_fraud",
                 "--reason", "one of 4,000 scripted submissions from one address")  # fmt: skip
    assert denied.code == 0, denied.err
    shown = json.loads(run("status", request_id, "--json").out)
    assert shown["status"] == "denied"
    assert shown["denial"]["reason_code"] == "suspected_fraud"


def test_retire_settles_a_failed_system_and_status_shows_who_when_and_why(
    pipe: Pipeline, cli: tuple[AdminTransport, Cli], monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:  # fmt: skip
    # Given an opt-out whose braze job failed for good, every other system done
    request_id = pipe.post("/v1/opt-out", {"email": EMAIL, "purposes": ["sale"]})["request_id"]
    pipe.resolve()
    for queue_key, vendor in pipe_vendors().items():
        work(pipe, queue_key, vendor)
    run = cli[1]
    assert json.loads(run("status", request_id, "--json").out)["status"] == "failed"
    # A retire while braze is still configured is refused in one line, nothing written
    refused = one_line_failure(run("retire", "braze", "--reason", "Braze contract ended"))
    assert refused.startswith("optout: conflict: the system is still configured")
    assert pipe.items(keys.RETIRED_PK) == []
    # When braze is removed from the config (deployed) and the operator retires it
    redeploy(pipe, monkeypatch, without(tmp_path, "braze"))
    retired = run("retire", "braze", "--reason", "Braze contract ended; removed from the config")
    # Then it says when; the request reads completed and its status prints braze retired with
    # the reason
    assert retired.code == 0, retired.err
    assert "braze: retired at " in retired.out
    assert json.loads(run("status", request_id, "--json").out)["status"] == "completed"
    shown = run("status", request_id).out
    assert "braze  retired (failed)" in shown
    assert "Braze contract ended; removed from the config" in shown
    # ... a second retire says the first stands
    again = run("retire", "braze", "--reason", "Braze retired again to be sure of it")
    assert again.code == 0, again.err
    assert "braze: already retired at " in again.out and "retired again as" in again.out
    # ... and the status prints it after the first (review s24 diff C C1)
    shown = run("status", request_id).out
    assert "Braze contract ended; removed from the config" in shown
    assert "retired again " in shown and "Braze retired again to be sure of it" in shown
    # ... and an unknown name fails in one line
    failure = one_line_failure(run("retire", "nosuch", "--reason", "no such system at all"))
    assert failure.startswith("optout: not_found: no system with this name")
    # ... and a replay of braze names it as retired, not as unknown (review s16 drill F9)
    replayed = one_line_failure(run("replay", "braze"))
    assert f"braze was retired at {retired_at(pipe, 'braze')}" in replayed


def pipe_vendors() -> dict[str, Vendor]:
    """Every queue's stand-in vendor: braze refuses for good, the others confirm."""
    keys_ = ("webhook", "segment", "salesforce", "googleads", "meta", "tradedesk")
    return {"braze": Vendor(refuse=True)} | {k: Vendor() for k in keys_}


# -- holds --------------------------------------------------------------------------------------


def held_at_a_cap_of_two(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> Pipeline:
    """An email's cluster at a cap of 2, and a second device's link held for an operator."""
    pipe = build_pipeline(aws, monkeypatch, MAX_CLUSTER_SIZE="2")
    pipe.post("/v1/opt-out", {"email": EMAIL})
    for device in ("dev-cli-hold-one-aaaaaa", "dev-cli-hold-two-bbbbbb"):
        link = {"a": {"type": "device_id", "value": device},
                "b": {"type": "email", "value": EMAIL}}  # fmt: skip
        pipe.post("/v1/identity-links", {"links": [link]}, iam=True)
    pipe.resolve()
    return pipe


def test_holds_list_prints_each_hold_id_whole_for_release_or_reject(
    aws: Aws, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a link held at a cluster cap of 2
    with guarded():
        pipe = held_at_a_cap_of_two(aws, monkeypatch)
        run = Cli(capsys, AdminTransport(pipe.admin))
        # When the operator lists the holds on an 80-column terminal
        listed = run("holds", "list")
        assert listed.code == 0, listed.err
        # Then the hold id is printed whole, and releasing it with that id works
        hold_id = re.search(r"[0-9a-f-]{36}\.[0-9]{3}", listed.out)
        assert hold_id is not None, listed.out
        assert run("holds", "release", hold_id.group(0)).code == 0
        assert "at cap 2" in listed.out


def test_holds_list_names_a_second_account_on_one_browser(
    aws: Aws, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a browser logged in to one account, then a second account's login there (held)
    with guarded():
        pipe = build_pipeline(aws, monkeypatch)
        device = "dev-cli-shared-cccccccc"
        for email in (EMAIL, "other.account@example.com"):
            token = token_for(email=email, device_id=device)
            pipe.post("/v1/consent", {"device_id": device, "identity_token": token})
            pipe.resolve()
        run = Cli(capsys, AdminTransport(pipe.admin))
        # When the operator lists the holds, Then it says why this one is held, not a cap
        listed = run("holds", "list")
        assert listed.code == 0, listed.err
        assert "a second account on one browser" in listed.out and "at cap" not in listed.out
        # When the operator rejects it (a stranger), Then the CLI names the event that
        # withdraws the account's carry, and its status reads what it did once resolved
        (hold,) = [i for i in pipe.items("HOLD") if i.get("kind") == "hold"]  # no count
        ran = run("holds", "reject", keys.hold_id(hold["sk"]))
        assert ran.code == 0, ran.err
        found = re.search(r"rejected by request ([0-9a-f-]{36})", ran.out)
        assert found is not None, ran.out
        pipe.resolve()
        status = run("status", found.group(1))
        assert status.code == 0, status.err
        assert "its carry withdrawn" in status.out, status.out


# -- export -------------------------------------------------------------------------------------


def exported_requests(path: Path) -> list[str]:
    records = [json.loads(line) for line in path.read_text().splitlines()]
    return [r["request_id"] for r in records if r["record"] == "request"]


def test_an_identity_export_says_up_to_when_its_requests_are_listed(
    pipe: Pipeline, cli: tuple[AdminTransport, Cli], tmp_path: Path
) -> None:
    # Given an opt-out the deadline watch has enrolled, then a later one it has not yet seen
    first = pipe.post("/v1/opt-out", {"email": EMAIL, "purposes": ["sale"]})
    pipe.resolve()
    Watch(Table(pipe.aws.dynamodb, pipe.aws.table_name),
          WatchSettings(lag_seconds=0, backfill_days=1)).run()  # fmt: skip
    second = pipe.post("/v1/opt-out", {"email": EMAIL, "purposes": ["sale"]})
    pipe.resolve()
    # When the operator exports the email's records
    out = tmp_path / "person.jsonl"
    ran = cli[1]("export", "--email", EMAIL, "-o", str(out))
    # Then the file lists both, and stderr says from when a request may still be missing
    assert ran.code == 0, ran.err
    assert exported_requests(out) == [first["request_id"], second["request_id"]]
    through = re.search(r"requests received after (\S+) may not be listed yet", ran.err)
    assert through is not None, ran.err
    # one line, whatever the terminal's width (review s16 drill F6: `grep` finds it whole)
    (gap,) = [line for line in ran.err.splitlines() if "may not be listed yet" in line]
    assert gap.endswith("export again once it is that old")
    assert ran.err.startswith("requests received after")  # no empty line first (no bar piped)
    # (the watch's cursor, past the first and not the second, less LATE_INDEX_MARGIN)
    cursor = datetime.fromisoformat(through.group(1)) + LATE_INDEX_MARGIN
    assert first["received_at"] <= iso(cursor) < second["received_at"]


def verified(cli: "Cli", path: Path) -> str:
    """`optout verify-export`'s one line, its exit 0 or 1 asserted; never a record's content."""
    ran = cli("verify-export", str(path))
    line = ran.out.strip() if ran.code == 0 else one_line_failure(ran)
    assert ran.code in (0, 1) and "\n" not in line
    assert EMAIL not in line and "cli-person" not in line and "completed" not in line
    return line


def test_a_jsonl_export_ends_with_a_seal_that_verify_export_checks_and_the_log_holds(
    pipe: Pipeline, cli: tuple[AdminTransport, Cli], tmp_path: Path
) -> None:
    # Given two opt-outs of the email, resolved (review s26 counsel F1)
    for purposes in (["sale"], ["share"]):
        pipe.post("/v1/opt-out", {"email": EMAIL, "purposes": purposes})
    pipe.resolve()
    today = datetime.now(UTC).date().isoformat()
    # When the operator exports the day, with the admin function's log captured
    out = tmp_path / "day.jsonl"
    with logged_lines() as logged:
        ran = cli[1]("export", "--from", today, "--to", today, "-o", str(out))
    assert ran.code == 0, ran.err
    # Then the last line is the seal: what was asked, when, how many of each kind, both digests
    lines = out.read_bytes().splitlines(keepends=True)
    records = [json.loads(line) for line in lines[:-1]]
    seal = json.loads(lines[-1])
    kinds = Counter(r["record"] for r in records)
    assert seal["record"] == "export_seal" and kinds["request"] == 2
    assert (seal["export"], seal["records"], seal["by_record"]) == (
        {"from": today, "to": today},
        len(records),
        dict(kinds),
    )
    assert seal["exported_at"][:10] == today and seal["version"].startswith("optout-bridge ")
    assert seal["sha256"] == hashlib.sha256(b"".join(lines[:-1])).hexdigest()
    assert f"sha256 {seal['sha256']}" in ran.out and seal["record"] not in kinds
    # and the admin function logged the same digest for the account's own record
    (logged_seal,) = [line for line in logged if line["message"] == "export sealed"]
    assert (logged_seal["records_sha256"], logged_seal["records"]) == (
        seal["records_sha256"],
        seal["records"],
    )
    assert logged_seal["export"] == {"from": today, "to": today}
    # And verify-export says ok, with the count and the digests
    assert verified(cli[1], out) == (f"ok: {len(records)} records, sha256 {seal['sha256']}, "
                                     f"records_sha256 {seal['records_sha256']}")  # fmt: skip
    # When the file is altered: a request turned completed, a line removed, two swapped,
    # cut short, its seal dropped, a line after its seal, or a seal recomputed but for the
    # chain (the server's log keeps the true one)
    request_line = next(n for n, r in enumerate(records) if r["record"] == "request")
    turned = dict(records[request_line], status="completed", late=True)
    edited = (json.dumps(turned, sort_keys=True) + "\n").encode()
    altered = {
        "edited": [*lines[:request_line], edited, *lines[request_line + 1 :]],
        "removed": lines[:request_line] + lines[request_line + 1 :],
        "swapped": [lines[1], lines[0], *lines[2:]],
        "cut": lines[:-2],
        "unsealed": lines[:-1],
        "appended": [*lines, lines[0]],
        "seal twice": [*lines[:-1], lines[-1], lines[-1]],
    }
    # Then each fails, naming what does not match, never a record's content
    failures = {name: verified(cli[1], write(tmp_path / f"{n}.jsonl", body))
                for n, (name, body) in enumerate(altered.items())}  # fmt: skip
    assert all(not line.startswith("ok") for line in failures.values()), failures
    assert "1 request records where the seal says 2" in failures["removed"]
    assert "sha256" in failures["edited"] and "records' chain" in failures["swapped"]
    for name in ("cut", "unsealed", "appended"):
        assert "no seal as its last line" in failures[name]
    assert "seal before the last line" in failures["seal twice"]
    forged = dict(seal, sha256=hashlib.sha256(b"".join(altered["edited"][:-1])).hexdigest())
    resealed = [*altered["edited"][:-1], (json.dumps(forged) + "\n").encode()]
    assert "records' chain" in verified(cli[1], write(tmp_path / "resealed.jsonl", resealed))


def write(path: Path, lines: list[bytes]) -> Path:
    path.write_bytes(b"".join(lines))
    return path


def test_an_identity_export_before_the_watch_ever_ran_says_requests_may_be_missing(
    pipe: Pipeline, cli: tuple[AdminTransport, Cli], tmp_path: Path
) -> None:
    pipe.post("/v1/opt-out", {"email": EMAIL, "purposes": ["sale"]})
    pipe.resolve()
    ran = cli[1]("export", "--email", EMAIL, "-o", str(tmp_path / "person.jsonl"))
    assert ran.code == 0, ran.err
    assert "has not enrolled any request yet" in ran.err


def test_a_csv_export_has_a_late_column_for_requests(
    pipe: Pipeline, cli: tuple[AdminTransport, Cli], tmp_path: Path
) -> None:
    # Given an opt-out received today (its deadline is weeks away)
    made = pipe.post("/v1/opt-out", {"email": EMAIL, "purposes": ["sale"]})["request_id"]
    pipe.resolve()
    today = datetime.now(UTC).date().isoformat()
    # When the operator exports today as CSV
    out = tmp_path / "today.csv"
    ran = cli[1]("export", "--from", today, "--to", today, "--format", "csv", "-o", str(out))
    # Then the request's row says it is not late in a column of its own; other rows leave it
    # empty, and `late` is not repeated in the detail
    assert ran.code == 0, ran.err
    rows = list(csv.DictReader(out.read_text().splitlines()))
    (request,) = [r for r in rows if r["record"] == "request"]
    assert (request["request_id"], request["late"]) == (made, "false")
    assert "late" not in json.loads(request["detail"])
    assert {r["late"] for r in rows if r["record"] != "request"} == {""}
    # And its seal is the file beside it (every row stays a record), which verify-export
    # checks against the file (review s26 counsel F1)
    seal = json.loads((tmp_path / "today.csv.seal.json").read_text())
    assert (seal["format"], seal["records"]) == ("csv", len(rows))
    assert seal["sha256"] == hashlib.sha256(out.read_bytes()).hexdigest()
    assert verified(cli[1], out).startswith(f"ok: {len(rows)} records, sha256 {seal['sha256']}")
    # and fails once a row says otherwise, or without the seal
    out.write_bytes(out.read_bytes().replace(b",false,", b",true,"))
    assert "does not match its seal" in verified(cli[1], out)
    (tmp_path / "today.csv.seal.json").unlink()
    assert "no seal (today.csv.seal.json is missing)" in verified(cli[1], out)


def test_an_export_file_is_readable_by_its_owner_only(
    pipe: Pipeline, cli: tuple[AdminTransport, Cli], tmp_path: Path
) -> None:
    # Given an opt-out, a umask that lets others read new files, and an old export readable
    # by all at the path (review s18 S7: the file, the person's email and history, was 0644)
    pipe.post("/v1/opt-out", {"email": EMAIL, "purposes": ["sale"]})
    pipe.resolve()
    out = tmp_path / "person.jsonl"
    out.write_text("an older export\n")
    out.chmod(0o644)
    old_umask = os.umask(0o022)
    try:
        # When the operator exports the email's records over it
        ran = cli[1]("export", "--email", EMAIL, "-o", str(out))
    finally:
        os.umask(old_umask)
    # Then the new file replaced it, and only its owner may read or write it
    assert ran.code == 0, ran.err
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert EMAIL in out.read_text()


def test_a_failed_export_leaves_no_file_behind(
    pipe: Pipeline, cli: tuple[AdminTransport, Cli], tmp_path: Path
) -> None:
    # Given an identifier the stack has no record of
    out = tmp_path / "nobody.jsonl"
    # When the operator exports it
    line = one_line_failure(cli[1]("export", "--email", "nobody@example.com", "-o", str(out)))
    # Then the command fails in one line and writes no file that could pass for an export
    assert "nobody" not in line
    assert list(tmp_path.iterdir()) == []


# -- report -------------------------------------------------------------------------------------


def test_report_prints_the_years_figures_from_the_metrics_route(
    pipe: Pipeline, cli: tuple[AdminTransport, Cli]
) -> None:
    # Given an opt-out the deadline watch has folded into its year
    pipe.post("/v1/opt-out", {"email": EMAIL, "purposes": ["sale"]})
    table = Table(pipe.aws.dynamodb, pipe.aws.table_name)
    later = datetime.now(UTC) + timedelta(minutes=5)
    Watch(table, WatchSettings(backfill_days=2), clock=lambda: later).run()
    year = str(later.year)
    # When the operator asks for the year's report as Markdown and as CSV
    markdown = cli[1]("report", "--year", year, "--format", "md")
    table_csv = cli[1]("report", "--year", year, "--format", "csv")
    # Then both count the one request received, still open
    assert markdown.code == 0, markdown.err
    assert "| Received | 1 | 0 | 1 | 0 | 0 |" in markdown.out
    assert "| Still open | 1 |" in markdown.out
    rows = list(csv.DictReader(table_csv.out.splitlines()))
    received = {r["section"]: r["value"] for r in rows
                if (r["measure"], r["source_or_system"]) == ("received", "all")}  # fmt: skip
    # (a sale-only opt-out: none on the rows of requests to limit, review s13 law 2)
    assert received == {"requests": "1", "limit_requests": "0"}
    assert "## Requests to limit the use of sensitive personal information" in markdown.out


def test_the_report_shows_californias_sale_and_sharing_opt_outs_apart_from_all_requests(
    pipe: Pipeline, cli: tuple[AdminTransport, Cli], tmp_path: Path
) -> None:
    # Given a Colorado opt-out of profiling only and a California opt-out of sale, folded
    # (review s13 law 4: the report counted both as CCPA requests to opt out of sale/sharing)
    pipe.post("/v1/opt-out", {"email": "prof1@example.com", "purposes": ["profiling"],
                              "jurisdiction": "US-CO"})  # fmt: skip
    pipe.post("/v1/opt-out", {"email": EMAIL, "purposes": ["sale"], "jurisdiction": "US-CA"})
    later = datetime.now(UTC) + timedelta(minutes=5)
    Watch(Table(pipe.aws.dynamodb, pipe.aws.table_name), WatchSettings(backfill_days=2),
          clock=lambda: later).run()  # fmt: skip
    year = str(later.year)
    # When the operator asks for the year's report in each format
    markdown = cli[1]("report", "--year", year, "--format", "md")
    table_csv = cli[1]("report", "--year", year, "--format", "csv")
    assert markdown.code == 0, markdown.err
    # Then California's figure counts the one sale opt-out, under a heading that says so, and
    # the table of all requests says it counts all individuals and purposes: both
    california = _section(markdown.out, "## California consumers' requests to opt out of sale")
    assert "CCPA §7102(a)(1)(D)" in california
    assert "| Received | 1 |" in california
    everyone = _section(markdown.out, "## All opt-out requests: all individuals, every "
                        "jurisdiction, every opt-out purpose")  # fmt: skip
    assert "| Received | 2 | 0 | 2 | 0 | 0 |" in everyone
    assert "| Another jurisdiction, opt-out of targeted ads or profiling only | 1 |" in markdown.out
    assert "Partial split" not in markdown.out
    rows = list(csv.DictReader(table_csv.out.splitlines()))
    received = {(r["section"], r["source_or_system"]): r["value"] for r in rows
                if r["measure"] == "received"}  # fmt: skip
    assert received[("california_sale_share", "california")] == "1"
    assert received[("requests", "all")] == "2"
    assert received[("by_group", "other/ads_profiling_only")] == "1"
    # And the html report carries the same two headings
    page = tmp_path / "report.html"
    ran = cli[1]("report", "--year", year, "--format", "html", "-o", str(page))
    assert ran.code == 0, ran.err
    html = page.read_text()
    assert "<h2>California consumers&#x27; requests to opt out of sale or sharing</h2>" in html
    assert "<h2>All opt-out requests: all individuals, every jurisdiction" in html
    # And, every request having a jurisdiction, no word of unknown ones
    assert "no known jurisdiction" not in markdown.out + html


def test_the_report_warns_that_requests_of_unknown_jurisdiction_are_not_californias(
    pipe: Pipeline, cli: tuple[AdminTransport, Cli], tmp_path: Path
) -> None:
    # Given two webform opt-outs with no jurisdiction (none sent, no edge to geolocate them)
    # and one from California (review s14 counsel 4: the California figure read 1 with no
    # word of the others)
    pipe.post("/v1/opt-out", {"email": "nj1@example.com", "purposes": ["sale"]})
    pipe.post("/v1/opt-out", {"email": "nj2@example.com", "purposes": ["share"]})
    pipe.post("/v1/opt-out", {"email": EMAIL, "purposes": ["sale"], "jurisdiction": "US-CA"})
    later = datetime.now(UTC) + timedelta(minutes=5)
    Watch(Table(pipe.aws.dynamodb, pipe.aws.table_name), WatchSettings(backfill_days=2),
          clock=lambda: later).run()  # fmt: skip
    year = str(later.year)
    # When the operator asks for the year's report in each format
    markdown = cli[1]("report", "--year", year, "--format", "md")
    table_csv = cli[1]("report", "--year", year, "--format", "csv")
    page = tmp_path / "report.html"
    html_run = cli[1]("report", "--year", year, "--format", "html", "-o", str(page))
    assert (markdown.code, table_csv.code, html_run.code) == (0, 0, 0), markdown.err
    # Then each says, before California's figure, how many are of unknown jurisdiction, that
    # California's figure leaves them out, and how to get one
    warning = (f"2 opt-out requests and 0 requests to limit received in {year} have no known"
               " jurisdiction")  # fmt: skip
    head = markdown.out.split("## California consumers'")[0]
    assert warning in head and "EnableEdge=true" in head
    assert warning in page.read_text().split("<h2>California consumers")[0]
    rows = list(csv.DictReader(table_csv.out.splitlines()))
    unknown = {r["measure"]: r["value"] for r in rows if r["section"] == "unknown_jurisdiction"}
    assert (unknown["requests"], unknown["limit_requests"]) == ("2", "0")
    assert unknown["warning"].startswith(warning)


def test_the_report_lists_the_overdue_request_ids_in_every_format(
    pipe: Pipeline, cli: tuple[AdminTransport, Cli], tmp_path: Path
) -> None:
    # Given two opt-outs still open past their deadline, as the deadline watch found them
    # (review s16 drill F1: the report printed counts; the ids were in the watch's log only)
    ids = sorted(pipe.post("/v1/opt-out", {"email": f"late{n}@example.com"})["request_id"]
                 for n in range(2))  # fmt: skip
    table = Table(pipe.aws.dynamodb, pipe.aws.table_name)
    soon, late = (datetime.now(UTC) + timedelta(minutes=5)), datetime.now(UTC) + timedelta(40)
    Watch(table, WatchSettings(backfill_days=2), clock=lambda: soon).run()
    Watch(table, WatchSettings(backfill_days=2), clock=lambda: late).run()
    year = str(soon.year)
    # When the operator reads the year's report in each format
    markdown = cli[1]("report", "--year", year, "--format", "md")
    table_csv = cli[1]("report", "--year", year, "--format", "csv")
    page = tmp_path / "report.html"
    assert cli[1]("report", "--year", year, "--format", "html", "-o", str(page)).code == 0
    # Then each lists the overdue requests' ids, whole, under the overdue note
    assert markdown.code == 0, markdown.err
    note = markdown.out.split("Deadline watch (")[1]
    assert "Overdue requests, received in any year (every one, by request id)" in note
    assert all(f"\n- {request_id}\n" in note for request_id in ids), note
    rows = list(csv.DictReader(table_csv.out.splitlines()))
    watch = {(r["measure"], r["value"]) for r in rows if r["section"] == "watch"}
    assert {("overdue", "2"), ("overdue_in_year", "2")} <= watch
    assert sorted(v for m, v in watch if m == "overdue_request") == ids
    html = page.read_text(encoding="utf-8")
    assert all(f"<li><code>{request_id}</code></li>" in html for request_id in ids)


def test_the_report_names_the_systems_added_without_a_backfill_in_every_format(
    pipe: Pipeline, cli: tuple[AdminTransport, Cli], tmp_path: Path
) -> None:
    # Given a watch that ran before meta existed, then after it was added, no backfill since
    # (review s18 operator M3: nothing noticed a forgotten backfill)
    table = Table(pipe.aws.dynamodb, pipe.aws.table_name)
    now = datetime.now(UTC)
    # (a first run's backfill of 1 day, not the default 31: 16 queries a day, and no requests)
    settings = WatchSettings(backfill_days=1)
    Watch(table, settings, clock=lambda: now, systems=["braze"]).run()
    later = now + timedelta(minutes=5)
    Watch(table, settings, clock=lambda: later, systems=["braze", "meta"]).run()
    year = str(later.year)
    # When the operator reads the year's report in each format
    markdown = cli[1]("report", "--year", year, "--format", "md")
    table_csv = cli[1]("report", "--year", year, "--format", "csv")
    page = tmp_path / "report.html"
    assert cli[1]("report", "--year", year, "--format", "html", "-o", str(page)).code == 0
    # Then each names meta, and what to run
    assert markdown.code == 0, markdown.err
    assert "Systems added without a backfill: meta." in markdown.out
    assert "`optout backfill SYSTEM`" in markdown.out
    rows = list(csv.DictReader(table_csv.out.splitlines()))
    named = [(r["source_or_system"], r["value"]) for r in rows
             if (r["section"], r["measure"]) == ("watch", "not_backfilled")]  # fmt: skip
    assert named == [("meta", "1")]
    assert "Systems added without a backfill: meta." in page.read_text(encoding="utf-8")


def _section(markdown: str, heading: str) -> str:
    """The Markdown from `heading` to the next heading."""
    return markdown.split(heading)[1].split("\n## ", maxsplit=1)[0]


def test_the_reports_system_figures_say_they_count_requests_after_replays(
    pipe: Pipeline, cli: tuple[AdminTransport, Cli]
) -> None:
    # Given an opt-out whose braze job failed, then was replayed to done, folded into its year
    request_id = pipe.post("/v1/opt-out", {"email": EMAIL, "purposes": ["sale"]})["request_id"]
    pipe.resolve()
    work(pipe, "braze", Vendor(refuse=True))
    assert cli[1]("replay", "braze", "--no-wait").code == 0
    pipe.resolve()
    work(pipe, "braze", Vendor())
    assert [i["status"] for i in pipe.items(f"REQ#{request_id}") if i["sk"] == "JOB#braze"] == [
        "done"
    ]
    later = datetime.now(UTC) + timedelta(minutes=5)
    Watch(Table(pipe.aws.dynamodb, pipe.aws.table_name), WatchSettings(backfill_days=2),
          clock=lambda: later).run()  # fmt: skip
    # When the operator reads the year's report
    ran = cli[1]("report", "--year", str(later.year), "--format", "md")
    # Then braze reads done, and the table says what that counts: requests as they stand now,
    # not a vendor's record of never failing
    assert ran.code == 0, ran.err
    assert "## Systems (requests per system, as they stand, after replays)" in ran.out
    assert "| braze | 1 | 0 | 0 | 0 | 100.0% | 0 |" in ran.out
    assert "| success |" not in ran.out


# -- replay --------------------------------------------------------------------------------------


def test_replay_moves_failed_jobs_and_dead_letters_back_and_they_complete(
    pipe: Pipeline, cli: tuple[AdminTransport, Cli]
) -> None:
    # Given salesforce refused an opt-out for good, and a dead letter sits in its DLQ
    request_id = pipe.post("/v1/opt-out", {"email": EMAIL, "purposes": ["sale"]})["request_id"]
    pipe.resolve()
    work(pipe, "salesforce", Vendor(refuse=True))
    (failed,) = [i for i in pipe.items(f"REQ#{request_id}") if i["sk"] == "JOB#salesforce"]
    assert failed["status"] == "failed"
    dlq = pipe.queue_urls["salesforce"].removesuffix("-jobs") + "-dlq"
    dead = {"job_id": failed["job_id"], "request_id": request_id, "system": "salesforce"}
    pipe.aws.sqs.send_message(QueueUrl=dlq, MessageBody=json.dumps(dead))
    # When the operator replays salesforce (the resolver carries the replay out)
    ran = cli[1]("replay", "salesforce", "--no-wait")
    assert ran.code == 0, ran.err
    assert "1 dead-letter message back" in ran.out
    # ... says a moved letter may list a failure after this replay read the list (s17 R1)
    assert "run `optout replay salesforce` again in a few minutes" in ran.out
    # ... and it names the event recording who moved them
    (redrive,) = [i for i in pipe.items("REQ#") if i.get("event_type") == "redrive"]
    assert f"redrive recorded as {redrive['request_id']}" in ran.out
    pipe.resolve()
    # Then the work is back on salesforce's queue, and this time it completes
    working = Vendor()
    work(pipe, "salesforce", working)
    assert emails_sent(working) == [EMAIL]
    (job,) = [i for i in pipe.items(f"REQ#{request_id}") if i["sk"] == "JOB#salesforce"]
    assert (job["status"], job["replays"]) == ("done", 1)
    assert (
        pipe.aws.sqs.get_queue_attributes(
            QueueUrl=dlq, AttributeNames=["ApproximateNumberOfMessages"]
        )["Attributes"]["ApproximateNumberOfMessages"]
        == "0"
    )


def test_replay_says_dead_letters_remain_and_exits_non_zero_when_the_redrive_left_some(
    pipe: Pipeline, cli: tuple[AdminTransport, Cli]
) -> None:
    # Given a dead letter the redrive cannot receive now (in flight: a failed send returns it
    # to the DLQ only after its visibility timeout)
    dlq = pipe.queue_urls["salesforce"].removesuffix("-jobs") + "-dlq"
    dead = {"job_id": f"{UNKNOWN}:salesforce", "request_id": UNKNOWN, "system": "salesforce"}
    pipe.aws.sqs.send_message(QueueUrl=dlq, MessageBody=json.dumps(dead))
    pipe.aws.sqs.receive_message(QueueUrl=dlq, VisibilityTimeout=600)
    # When the operator replays salesforce
    ran = cli[1]("replay", "salesforce", "--no-wait")
    # Then the replay is still requested, the CLI says a letter remains, and it exits non-zero
    assert "replay requested" in ran.out
    assert "1 dead-letter message is still in salesforce's DLQ" in ran.out
    assert ran.code == 1


def test_a_replay_that_left_a_job_failed_still_gives_the_dead_letter_hint_then_exits_1(
    pipe: Pipeline, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a failed salesforce job and a dead letter in its DLQ
    request_id = pipe.post("/v1/opt-out", {"email": EMAIL, "purposes": ["sale"]})["request_id"]
    pipe.resolve()
    work(pipe, "salesforce", Vendor(refuse=True))
    dlq = pipe.queue_urls["salesforce"].removesuffix("-jobs") + "-dlq"
    dead = {"job_id": f"{request_id}:salesforce", "request_id": request_id, "system": "salesforce"}
    pipe.aws.sqs.send_message(QueueUrl=dlq, MessageBody=json.dumps(dead))

    def carried_out(request: httpx.Request) -> None:
        # the resolver carries the replay out and, as when the job failed again after the
        # listing it read, leaves one job failed (counted `not_replayed`)
        if request.url.path.endswith("/replay"):
            pipe.resolve()
            (replay,) = [i for i in pipe.items("REQ#") if i.get("event_type") == "replay"]
            pipe.aws.dynamodb.update_item(
                TableName=pipe.aws.table_name,
                Key={"pk": {"S": f"REQ#{replay['request_id']}"}, "sk": {"S": "RESOLUTION"}},
                UpdateExpression="SET not_replayed = :one",
                ExpressionAttributeValues={":one": {"N": "1"}},
            )

    # When the operator replays salesforce and waits for it
    ran = Cli(capsys, AdminTransport(pipe.admin, after=carried_out))("replay", "salesforce")
    # Then the CLI says what was left, still gives the moved letters' hint (review s22 diff
    # C6: it exited before it, in the very case the hint is for), and exits 1
    assert "1 failed job could not be re-sent" in ran.out
    assert "dead-letter message moved back may list failed jobs" in ran.out
    assert ran.code == 1


def test_a_replay_whose_jobs_fail_again_does_not_read_as_delivered(
    pipe: Pipeline, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given salesforce refused an opt-out for good, and still refuses it
    request_id = pipe.post("/v1/opt-out", {"email": EMAIL, "purposes": ["sale"]})["request_id"]
    pipe.resolve()
    work(pipe, "salesforce", Vendor(refuse=True))

    def carried_out(request: httpx.Request) -> None:  # the resolver and worker, as on AWS
        if request.url.path.endswith("/replay"):
            pipe.resolve()
            work(pipe, "salesforce", Vendor(refuse=True))

    # When the operator replays salesforce and waits for the replay
    run = Cli(capsys, AdminTransport(pipe.admin, after=carried_out))
    ran = run("replay", "salesforce")
    # Then the job did fail again, and the CLI says it was re-sent, not delivered, and how to
    # check, never that the replay succeeded
    (job,) = [i for i in pipe.items(f"REQ#{request_id}") if i["sk"] == "JOB#salesforce"]
    assert (job["status"], job["replays"]) == ("failed", 1)
    assert ran.code == 0, ran.err
    assert "1 failed job re-sent to salesforce: sent, not yet delivered" in ran.out
    assert "`optout replay salesforce` again" in ran.out


def resolving(pipe: Pipeline, route: str) -> AdminTransport:
    """The admin transport, the resolver run after each call to `route` (".../replay" or
    ".../backfill") until the stream is empty: each follow-up event too."""

    def resolve_all(request: httpx.Request) -> None:
        if request.url.path.endswith(route):
            while batch := pipe.event_records():
                pipe.resolve(batch)

    return AdminTransport(pipe.admin, after=resolve_all)


def delivered_to_meta(pipe: Pipeline, people: int = 1) -> None:
    """`people` opt-outs (backfill0@example.com, ...), their meta jobs delivered and every
    other queue drained."""
    for n in range(people):
        pipe.post("/v1/opt-out", {"email": f"backfill{n}@example.com"})
    pipe.resolve()
    work(pipe, "meta", Vendor())
    pipe.drain_all()


def test_a_replay_carried_on_in_follow_ups_reports_the_jobs_of_the_whole_chain(
    pipe: Pipeline, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given three opt-outs salesforce refused for good, and a replay bound of two per event
    for n in range(3):
        pipe.post("/v1/opt-out", {"email": f"chain{n}@example.com", "purposes": ["sale"]})
    pipe.resolve()
    work(pipe, "salesforce", Vendor(refuse=True))
    monkeypatch.setattr(resolver_service, "MAX_REPLAY_JOBS", 2)
    # When the operator replays salesforce and waits for it
    ran = Cli(capsys, resolving(pipe, "/replay"))("replay", "salesforce")
    # Then the CLI counts the jobs its follow-up re-sent too
    assert ran.code == 0, ran.err
    assert "3 failed jobs re-sent to salesforce" in ran.out
    assert len(pipe.drain("salesforce")) == 3


def test_backfill_resend_follows_its_chain_and_prints_what_it_sent(
    pipe: Pipeline, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given two people delivered to meta, and a backfill bound of one identity per event
    delivered_to_meta(pipe, people=2)
    monkeypatch.setattr(resolver_service, "BACKFILL_IDENTITIES", 1)
    # When meta's destination changed and the operator backfills it with --resend
    transport = resolving(pipe, "/backfill")
    ran = Cli(capsys, transport)("backfill", "meta", "--resend")
    # Then the route was asked to resend, the CLI counts the whole chain, and both are queued
    assert ran.code == 0, ran.err
    assert transport.sent[0].url.params["resend"] == "true"
    assert "2 opted out, 2 identities in 2 jobs for meta" in ran.out
    assert "backfill of meta done" in ran.out
    assert len(pipe.drain("meta")) == 2


def test_a_backfill_that_never_ran_within_the_wait_says_so_and_exits_non_zero(
    pipe: Pipeline, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a backfill whose event the resolver never carries out (review s14 operator 6:
    # the CLI said "the backfill goes on" and exited 0)
    monkeypatch.setattr(cli_main, "REPLAY_WAIT_SECONDS", 0.0)
    ran = Cli(capsys, AdminTransport(pipe.admin))("backfill", "meta")
    # Then it says the backfill has not run, how to check, and exits non-zero
    assert ran.code == 1
    assert "has not run yet" in ran.err and "goes on" not in ran.out + ran.err
    assert "optout status" in ran.err


def test_a_backfill_that_made_no_job_does_not_say_its_jobs_are_sent(
    pipe: Pipeline, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a person whose meta job is delivered (a plain backfill owes them nothing)
    delivered_to_meta(pipe)
    ran = Cli(capsys, resolving(pipe, "/backfill"))("backfill", "meta")
    # Then it says no job was needed (review s14 operator 10: "its jobs are sent" for 0 jobs)
    assert ran.code == 0, ran.err
    assert "0 identities in 0 jobs for meta" in ran.out
    assert "no job needed" in ran.out and "sent" not in ran.out.split("done:")[1]


def test_status_of_a_backfill_lists_its_jobs_and_a_job_request_id_opens(
    pipe: Pipeline, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a --resend backfill of meta that sent one person's job (review s14 operator 1:
    # `optout status` read "0 of 0" and refused the job's `<id>~<hex>`)
    delivered_to_meta(pipe)
    cli = Cli(capsys, resolving(pipe, "/backfill"))
    ran = cli("backfill", "meta", "--resend")
    assert ran.code == 0, ran.err
    backfill_id = re.findall(r"backfill requested \(([0-9a-f-]{36})\)", ran.out)[0]
    # When the operator asks for the backfill's status
    shown = cli("status", backfill_id)
    # Then it is processing, 0 of 1 done, and names its job, pending
    assert shown.code == 0, shown.err
    assert "processing" in shown.out and "0 of 1 done" in shown.out
    (job_id,) = re.findall(rf"job ({backfill_id}~[0-9a-f]{{12}}:meta)", shown.out)
    # ... and the job id (or its request id) opens, naming the backfill that made it
    for asked in (job_id, job_id.split(":")[0]):
        opened = cli("status", asked)
        assert opened.code == 0, opened.err
        assert f"jobs made by {backfill_id}" in opened.out and "pending" in opened.out
    # ... and once meta is retired (its item as the retire route writes it), before it
    # answered, the backfill is completed, its job retired (no longer owed) with who and why
    retirement = {"pk": {"S": keys.RETIRED_PK}, "sk": {"S": "meta"}, "system": {"S": "meta"},
                  "retired_at": {"S": iso(datetime.now(UTC))}, "retired_by": {"S": "op"},
                  "reason": {"S": "contract ended"}}  # fmt: skip
    pipe.aws.dynamodb.put_item(TableName=pipe.aws.table_name, Item=retirement)
    shown = cli("status", backfill_id)
    assert shown.code == 0, shown.err
    assert f"{backfill_id} completed" in shown.out
    assert "0 of 0 done, 0 failed, 1 retired" in shown.out
    assert "retired (pending)" in shown.out and "by op: contract ended" in shown.out


def test_a_second_resend_while_the_first_is_open_warns_naming_it_and_the_report_counts_both(
    pipe: Pipeline, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # Given a person delivered to meta, and a --resend backfill of meta whose job meta has
    # not answered yet
    delivered_to_meta(pipe)
    cli = Cli(capsys, resolving(pipe, "/backfill"))
    first = cli("backfill", "meta", "--resend")
    assert first.code == 0, first.err
    assert "warning" not in first.err
    first_id = re.findall(r"backfill requested \(([0-9a-f-]{36})\)", first.out)[0]
    # When the operator runs it again (review s14 operator 6: nothing said)
    again = cli("backfill", "meta", "--resend")
    # Then it still runs, and warns twice naming the earlier backfill: open when it started,
    # and the person it sent again while in flight for it
    assert again.code == 0, again.err
    opened = "an earlier backfill of meta is still open (steps not run, or jobs not answered yet)"
    assert f"{opened}: {first_id}" in again.err
    in_flight = "1 identities were in flight for an earlier backfill of meta whose job has no"
    assert f"{in_flight} answer yet ({first_id}): sent again" in again.err
    assert "1 identities in 1 jobs for meta" in again.out
    # ... and the year's report has a line for meta's backfills, apart from the §7102 figures
    year = str(datetime.now(UTC).year)
    markdown = cli("report", "--year", year, "--format", "md")
    assert markdown.code == 0, markdown.err
    assert "## Backfills (operator actions, not requests)" in markdown.out
    assert "| meta | 2 | 2 | 0 | 2 | 1 | 0 | 0 | 2 | 0 |" in markdown.out
    assert "in none of the §7102 figures above" in markdown.out
    rows = list(csv.DictReader(cli("report", "--year", year, "--format", "csv").out.splitlines()))
    found = {r["measure"]: r["value"] for r in rows
             if (r["section"], r["source_or_system"]) == ("backfills", "meta")}  # fmt: skip
    assert (found["backfills"], found["in_flight_earlier"], found["jobs_open"]) == ("2", "1", "2")
    page = tmp_path / "report.html"
    assert cli("report", "--year", year, "--format", "html", "-o", str(page)).code == 0
    text = page.read_text(encoding="utf-8")
    assert "<h2>Backfills (operator actions, not requests)</h2>" in text
    assert "<tr><td>meta</td><td>2</td><td>2</td><td>0</td><td>2</td><td>1</td>" in text


def test_the_top_level_help_lists_backfill_and_retire(
    cli: tuple[AdminTransport, Cli],
) -> None:
    ran = cli[1]("--help")
    assert "backfills" in ran.out and "retiring a system" in ran.out
    assert "A backfill's status lists its jobs" in " ".join(ran.out.replace("│", "").split())


def test_the_help_joins_each_commands_wrapped_description_and_deny_names_every_code(
    cli: tuple[AdminTransport, Cli],
) -> None:
    # A docstring is wrapped at 96 columns: its own line breaks split the command list's
    # descriptions mid-sentence ("... A backfill's status" | "lists its jobs"; ops35)
    listed = cli[1]("--help").out
    assert any("A backfill's status lists its jobs" in line for line in listed.splitlines())
    # deny also denies a request to limit, with four codes (ops35: the help named fraud only)
    text = " ".join(cli[1]("deny", "--help").out.replace("│", "").split())
    assert "§7027(f)" in text and "not a consumer" in text and "outside the jurisdiction" in text


def test_the_help_says_holds_are_also_a_second_account_on_one_browser(
    cli: tuple[AdminTransport, Cli],
) -> None:
    # Since session 30 a hold is also a second account's login on a browser (review s30
    # newcomer F8: the help still said "at the cluster cap" only)
    for argv in (("--help",), ("holds", "--help")):
        ran = cli[1](*argv)
        text = " ".join(ran.out.replace("│", "").split())
        assert "held at the cluster cap or as a second account on one browser" in text, argv


def test_backfill_of_an_unknown_system_is_one_line_and_a_non_zero_exit(
    cli: tuple[AdminTransport, Cli],
) -> None:
    assert "no system with this name" in one_line_failure(cli[1]("backfill", "nosuch"))


def test_holds_release_prints_the_release_request_to_follow(
    aws: Aws, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a link held at a cluster cap of 2
    with guarded():
        pipe = held_at_a_cap_of_two(aws, monkeypatch)
        run = Cli(capsys, AdminTransport(pipe.admin))
        (hold,) = [i for i in pipe.items("HOLD") if i.get("kind") == "hold"]  # no count
        hold_id = keys.hold_id(hold["sk"])
        # When the operator releases it
        ran = run("holds", "release", hold_id)
        # Then the CLI prints the release's request id, and the list shows who decided, when
        assert ran.code == 0, ran.err
        found = re.search(r"releasing by request ([0-9a-f-]{36})", ran.out)
        assert found is not None, ran.out
        listed = run("holds", "list").out
        assert f"release request {found.group(1)}" in listed
        assert re.search(r"decided \S+ by arn:aws:iam::", listed), listed
        assert "releasing" in listed


def test_replay_of_an_unknown_system_is_one_line_and_a_non_zero_exit(
    cli: tuple[AdminTransport, Cli],
) -> None:
    assert "no system with this name" in one_line_failure(cli[1]("replay", "nosuch"))


def test_replay_of_a_mistyped_system_names_the_close_one(cli: tuple[AdminTransport, Cli]) -> None:
    # review s16 drill F9: `optout replay braz` said "no system with this name", no hint
    failure = one_line_failure(cli[1]("replay", "braz"))
    assert "no system with this name; did you mean braze?" in failure
    assert cli[0].sent[-1].url.path.endswith("/braz/redrive")  # refused by the first route


def retired_at(pipe: Pipeline, system: str) -> str:
    (retirement,) = [i for i in pipe.items(keys.RETIRED_PK) if i["sk"] == system]
    return str(retirement["retired_at"])


# -- import ---------------------------------------------------------------------------------------

HEADER = ["external_id", "received_at", "email", "phone", "source", "jurisdiction"]
BAD = {  # every 100th row is bad, in one of these ways: (column, value, field reported)
    0: ("email", "not-an-email-{n}", "email"),
    1: ("received_at", "yesterday-{n}", "received_at"),
    2: ("source", "carrier-pigeon-{n}", "source"),
    3: ("phone", "555-{n}-x", "phone"),
}
SUMMARY = re.compile(r"stored (\d+), skipped (\d+) duplicates, rejected (\d+) rows")


class Killed(BaseException):
    """The process dying: nothing in the CLI catches it (as nothing runs after SIGKILL)."""


class MemoryDynamoDB:
    """BatchGetItem and BatchWriteItem (puts) over a dict, with DynamoDB's limits, counting
    every write of every key. A 5,000-row import is 10,000 writes: a minute in moto."""

    def __init__(self) -> None:
        self.items: dict[tuple[str, str], dict[str, Any]] = {}
        self.writes: Counter[tuple[str, str]] = Counter()

    def batch_get_item(self, RequestItems: dict[str, Any]) -> dict[str, Any]:
        ((name, wanted),) = RequestItems.items()
        keys = [(k["pk"]["S"], k["sk"]["S"]) for k in wanted["Keys"]]
        assert len(keys) <= 100 and len(set(keys)) == len(keys), "DynamoDB refuses this"
        found = [self.items[k] for k in keys if k in self.items]
        return {"Responses": {name: found}, "UnprocessedKeys": {}}

    def batch_write_item(self, RequestItems: dict[str, Any]) -> dict[str, Any]:
        ((_, puts),) = RequestItems.items()
        keys = [(r["PutRequest"]["Item"]["pk"]["S"], r["PutRequest"]["Item"]["sk"]["S"])
                for r in puts]  # fmt: skip
        assert len(keys) <= 25 and len(set(keys)) == len(keys), "DynamoDB refuses this"
        for key, put in zip(keys, puts, strict=True):
            self.items[key] = put["PutRequest"]["Item"]
            self.writes[key] += 1
        return {"UnprocessedItems": {}}

    def query(self, KeyConditionExpression: str, ExpressionAttributeValues: dict[str, Any],
              **_: Any) -> dict[str, Any]:  # fmt: skip
        """One partition (`pk = :pk`, as store.query.partition asks): a resumed import's
        status read of the last request it listed."""
        assert KeyConditionExpression == "pk = :pk", KeyConditionExpression
        pk = ExpressionAttributeValues[":pk"]["S"]
        return {"Items": [item for (p, _), item in sorted(self.items.items()) if p == pk]}


def write_history(path: Path, rows: int) -> dict[int, tuple[str, str]]:
    """`rows` opt-outs from 2026; 1% bad. Returns {line: (field, value)} of the bad rows."""
    bad: dict[int, tuple[str, str]] = {}
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        for n in range(rows):
            row = {"external_id": f"legacy-{n}",
                   "received_at": f"2026-{n % 10 + 1:02d}-{n % 28 + 1:02d}T10:00:00Z",
                   "email": f"person-{n}@example.com", "phone": "",
                   "source": ("webform", "agent")[n % 2], "jurisdiction": "US-CA"}  # fmt: skip
            if n % 100 == 42:
                column, value, field = BAD[(n // 100) % len(BAD)]
                row[column] = value.format(n=n)
                bad[n + 2] = (field, row[column])  # line numbers count the header
            writer.writerow([row[c] for c in HEADER])
    return bad


def import_killed_halfway(
    pipe: Pipeline, capsys: pytest.CaptureFixture[str], source: Path, rows: int
) -> tuple[Ran, dict[int, tuple[str, str]]]:
    """Import `rows` rows; the first run dies after the API stored its middle batch but before
    the CLI noted it; the second run is the operator running the same command again."""
    bad = write_history(source, rows)
    calls = 0

    def die_halfway(_: httpx.Request) -> None:
        nonlocal calls
        calls += 1
        if calls == rows // 100 // 2:
            raise Killed

    with pytest.raises(Killed):
        optout(capsys, AdminTransport(pipe.admin, after=die_halfway), "--base-url", LOCAL_URL,
               "import", str(source))  # fmt: skip
    again = optout(capsys, AdminTransport(pipe.admin), "--base-url", LOCAL_URL, "import",
                   str(source))  # fmt: skip
    return again, bad


def assert_reported_without_values(ran: Ran, source: Path, bad: dict[int, Any]) -> None:
    rejected = source.with_name(source.name + ".rejected.csv")
    with rejected.open() as handle:
        rows = list(csv.DictReader(handle))
    reported = {int(r["line"]): r for r in rows}
    assert len(rows) == len(reported)  # each bad row once, even the batch sent twice
    assert {line: r["field"] for line, r in reported.items()} == {
        line: field for line, (field, _) in bad.items()
    }
    assert all(r["reason"] for r in reported.values())
    shown = ran.out + ran.err + rejected.read_text()
    assert not any(value in shown for _, value in bad.values())


def test_a_5000_row_import_killed_halfway_stores_every_good_row_once_and_reports_the_bad(
    pipe: Pipeline, capsys: pytest.CaptureFixture[str], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    # Given the admin function's table in memory (the import route's calls, counted)
    memory = MemoryDynamoDB()
    monkeypatch.setattr(Table, "connect", classmethod(lambda cls, name: cls(memory, name)))
    # 5,000 rows (50,000 until session 25; the same code runs per row and per batch): 52
    # batches (100 rows or 15,000 bytes each), the kill after the 25th, each of the four kinds
    # of bad row 12 times or more. A timing of 50,000 rows is in docs/operations.md.
    rows = 5_000
    # When 5,000 opt-outs (1% bad) are imported, killed halfway, and imported again
    source = tmp_path / "history.csv"
    ran, bad = import_killed_halfway(pipe, capsys, source, rows)
    # Then it resumed, and every good row's event was written exactly once
    assert ran.code == 0, ran.err
    assert "resumed after line" in ran.out
    events = [k for k in memory.items if k[1] == "EVENT"]
    assert len(events) == rows - len(bad)
    assert {memory.writes[k] for k in events} == {1}
    # ... the batch the first run never noted was sent again, and skipped as duplicates
    found = SUMMARY.search(ran.out)
    assert found, ran.out
    stored, duplicates, rejected = (int(g) for g in found.groups())
    assert (duplicates > 0, stored + duplicates, rejected) == (True, rows - len(bad), len(bad))
    # ... and every bad row is reported by line and field, with no value in sight
    assert_reported_without_values(ran, source, bad)


def test_an_import_killed_halfway_stores_no_duplicates_in_the_table(
    pipe: Pipeline, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # The same, smaller, on the (moto) table the other routes read
    source = tmp_path / "history.csv"
    ran, bad = import_killed_halfway(pipe, capsys, source, 500)
    assert ran.code == 0, ran.err
    external = imported_ids(pipe)
    assert len(external) == len(set(external)) == 500 - len(bad)
    assert_reported_without_values(ran, source, bad)
    # ... and the request ids file names each good row once, by line and external_id, with
    # its stored request's id, over both runs (review s16 drill F10: no ids were printed)
    listed = source.with_name(source.name + ".request-ids.csv")
    assert f"request id of each row (line, external_id, request_id): {listed}" in ran.out
    with listed.open() as handle:
        rows = list(csv.DictReader(handle))
    assert [int(r["line"]) for r in rows] == sorted(set(range(2, 502)) - set(bad))
    assert {r["external_id"]: r["request_id"] for r in rows} == imported_requests(pipe)
    assert "@" not in listed.read_text()


def test_status_opens_an_imported_row_by_the_request_id_its_import_listed(
    pipe: Pipeline, cli: tuple[AdminTransport, Cli], tmp_path: Path
) -> None:
    # Given one row imported from another tool
    source = tmp_path / "old.csv"
    source.write_text("external_id,received_at,email\nold-1,2026-03-02T10:00:00Z,"
                      f"{EMAIL}\n")  # fmt: skip
    assert cli[1]("import", str(source)).code == 0
    # When the operator reads its request id from the file beside the CSV
    with source.with_name("old.csv.request-ids.csv").open() as handle:
        ((line, external_id, request_id),) = [tuple(r.values()) for r in csv.DictReader(handle)]
    # Then it is the row's (line 2, old-1), and `optout status` opens it
    assert (line, external_id) == ("2", "old-1")
    ran = cli[1]("status", request_id)
    assert ran.code == 0 and f"{request_id} " in ran.out, ran.err


def test_an_import_resumed_against_another_stack_is_refused_and_restart_sends_it_there(
    pipe: Pipeline, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # Given a file imported into one stack (a rehearsal on the local stack, say)
    source = tmp_path / "history.csv"
    write_history(source, 3)
    first = optout(capsys, AdminTransport(pipe.admin), "--base-url", LOCAL_URL, "import",
                   str(source))  # fmt: skip
    assert first.code == 0, first.err
    # When the same command runs against another stack (review s18 newcomer F1: it said
    # "resumed after line 4 ... stored 3", exit 0, and sent nothing there)
    other_url = "http://127.0.0.1:3001"
    other = AdminTransport(pipe.admin)
    line = one_line_failure(optout(capsys, other, "--base-url", other_url, "import", str(source)))
    # Then it is refused in one line naming the state file, both targets and --restart,
    # before any call
    state = source.with_name("history.csv.import-state.json")
    assert f"{state} was written by an import into {LOCAL_URL}, not {other_url}" in line
    assert "--restart" in line
    assert other.sent == []
    # ... and --restart sends every row there (this test's one table already holds them)
    again = optout(capsys, other, "--base-url", other_url, "import", "--restart", str(source))
    assert again.code == 0, again.err
    assert "resumed after" not in again.out
    found = SUMMARY.search(again.out)
    assert found and found.groups() == ("0", "3", "0"), again.out
    assert [r.url.path for r in other.sent] == ["/v1/admin/imports"]


def test_an_import_resumed_on_a_stack_that_lost_its_rows_is_refused_naming_restart(
    pipe: Pipeline, cli: tuple[AdminTransport, Cli], tmp_path: Path
) -> None:
    # Given a file imported into the local stack
    source = tmp_path / "history.csv"
    write_history(source, 3)
    transport, run = cli
    assert run("import", str(source)).code == 0
    listed = source.with_name("history.csv.request-ids.csv").read_text().splitlines()
    last_id = listed[-1].split(",")[2]
    # When the stack loses its data (a restarted local stack keeps none) and the same
    # command runs again at the same URL
    lose_every_item(pipe)
    sent_before = len(transport.sent)
    line = one_line_failure(run("import", str(source)))
    # Then one status read of the last listed request finds nothing, and the run is refused
    # rather than reporting rows the stack no longer holds as stored
    assert [r.url.path for r in transport.sent[sent_before:]] == [f"/v1/admin/requests/{last_id}"]
    assert f"{LOCAL_URL} holds no request {last_id} (line 4 of history.csv" in line
    assert "--restart" in line
    # ... and --restart stores the rows again, and status opens them
    again = run("import", "--restart", str(source))
    found = SUMMARY.search(again.out)
    assert found and found.groups() == ("3", "0", "0"), again.out
    assert run("status", last_id).code == 0


def test_an_import_resumed_on_the_same_live_stack_reads_one_status_and_goes_on(
    cli: tuple[AdminTransport, Cli], tmp_path: Path
) -> None:
    # Given a file imported whole
    source = tmp_path / "history.csv"
    write_history(source, 3)
    transport, run = cli
    assert run("import", str(source)).code == 0
    # When the same command runs again on the same stack
    sent_before = len(transport.sent)
    ran = run("import", str(source))
    # Then it resumes after the last line, having read one status, and sends no rows
    assert ran.code == 0, ran.err
    assert "resumed after line 4" in ran.out
    assert [r.method for r in transport.sent[sent_before:]] == ["GET"]


def lose_every_item(pipe: Pipeline) -> None:
    """The table emptied, as a restarted local stack's is."""
    for item in pipe.aws.items():
        key = {"pk": {"S": item["pk"]}, "sk": {"S": item["sk"]}}
        pipe.aws.dynamodb.delete_item(TableName=pipe.aws.table_name, Key=key)


def imported_requests(pipe: Pipeline) -> dict[str, str]:
    """{external_id: request_id} of the imported events, read as imported_ids reads them."""
    table = dynamodb_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].get_table(pipe.aws.table_name)
    events = [i.to_json()["Attributes"] for i in table.all_items()
              if i.range_key is not None and i.range_key.value == "EVENT"]  # fmt: skip
    return {e["evidence"]["M"]["imported"]["M"]["external_id"]["S"]: e["request_id"]["S"]
            for e in events}  # fmt: skip


def imported_ids(pipe: Pipeline) -> list[str]:
    """The imported events' external ids, read from moto's memory (a Scan through moto's
    serialiser costs seconds per thousand items)."""
    table = dynamodb_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].get_table(pipe.aws.table_name)
    events = [i.to_json()["Attributes"] for i in table.all_items()
              if i.range_key is not None and i.range_key.value == "EVENT"]  # fmt: skip
    return [e["evidence"]["M"]["imported"]["M"]["external_id"]["S"] for e in events]


def test_a_csv_with_an_unknown_column_is_one_line_and_a_non_zero_exit(
    cli: tuple[AdminTransport, Cli], tmp_path: Path
) -> None:
    source = tmp_path / "other-tool.csv"
    source.write_text("id,mail,date\n1,a@example.com,2026-01-01\n")
    transport, run = cli
    line = one_line_failure(run("import", str(source)))
    assert "column 1 is not a column name" in line
    assert transport.sent == []


def test_a_csv_without_its_header_line_is_refused_without_echoing_its_first_row(
    cli: tuple[AdminTransport, Cli], tmp_path: Path
) -> None:
    # Given a CSV exported without its header line: its first line is a person's data
    source = tmp_path / "noheader.csv"
    source.write_text("jane.noheader@example.com,2026-03-02T10:00:00Z,x1\n")
    # When it is imported
    transport, run = cli
    line = one_line_failure(run("import", str(source)))
    # Then the column is named by position, the email nowhere, and nothing is sent
    assert "column 1" in line and "header line missing" in line
    assert "jane.noheader" not in line
    assert transport.sent == []


def test_a_csv_with_a_repeated_column_is_refused_before_any_call(
    cli: tuple[AdminTransport, Cli], tmp_path: Path
) -> None:
    # Given a CSV naming email twice (a reader would keep only the second address)
    source = tmp_path / "dupcol.csv"
    source.write_text(
        "external_id,received_at,email,email\n"
        "d1,2026-03-02T10:00:00Z,op.d1a@example.com,op.d1b@example.com\n"
    )
    # When it is imported
    transport, run = cli
    line = one_line_failure(run("import", str(source)))
    # Then it is refused whole, naming the column and its positions, never a value
    assert "'email' appears twice (columns 3 and 4)" in line
    assert "op.d1" not in line
    assert transport.sent == []


def test_a_missing_csv_is_one_line_and_a_non_zero_exit(
    cli: tuple[AdminTransport, Cli], tmp_path: Path
) -> None:
    line = one_line_failure(cli[1]("import", str(tmp_path / "nowhere.csv")))
    assert "no such file" in line


class Interrupted(httpx.BaseTransport):
    """An operator pressing Ctrl-C while the CLI waits on the API."""

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        raise KeyboardInterrupt


def test_an_interrupted_command_exits_130_with_one_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    request_id = "6f1d0c2b-3a4e-4f5a-8b9c-0d1e2f3a4b5c"
    ran = optout(capsys, Interrupted(), "--base-url", LOCAL_URL, "status", request_id)
    assert ran.code == 130
    assert "interrupted" in one_line_failure(ran)


# -- text a stranger typed, as the terminal shows it (review s36 terminal) -----------------------


def test_status_shows_an_agents_line_feed_and_c1_controls_as_escapes_not_as_a_line_of_its_own(
    pipe: Pipeline, cli: tuple[AdminTransport, Cli]
) -> None:
    # Given an opt-out whose agent's name holds a line feed that makes a line reading as the
    # CLI's, and whose agent id holds a C1 CSI (U+009B: "clear the screen" on some terminals)
    # and a CR: the capture route took them before session 36 (it refuses them since), so a
    # request kept from then holds them
    agent = {"name": "Acme\nfiled by agent: Trusted Agents Inc", "agent_id": "A-1\x9b2J\rX"}
    filed = {"name": "Acme", "agent_id": "A-1"}
    request_id = pipe.post("/v1/opt-out", {"email": EMAIL, "agent": filed})["request_id"]
    (item,) = [i for i in pipe.items("REQ#") if i["evidence"].get("agent") == filed]
    pipe.aws.dynamodb.update_item(
        TableName=pipe.aws.table_name,
        Key={"pk": {"S": item["pk"]}, "sk": {"S": item["sk"]}},
        UpdateExpression="SET evidence.#agent = :agent",
        ExpressionAttributeNames={"#agent": "agent"},
        ExpressionAttributeValues={":agent": {"M": {k: {"S": v} for k, v in agent.items()}}},
    )
    # When the operator asks for its status
    ran = cli[1]("status", request_id)
    # Then one line names the agent, with those characters as their escapes
    assert ran.code == 0, ran.err
    lines = [x for x in ran.out.splitlines() if "filed by agent" in x]
    assert lines == ["filed by agent: Acme\\nfiled by agent: Trusted Agents Inc (A-1\\x9b2J\\rX)"]
    assert "\x9b" not in ran.out and "\r" not in ran.out
    # And the record keeps the text as received (the evidence), printed as JSON escapes only
    ran = cli[1]("status", request_id, "--json")
    assert ran.code == 0, ran.err
    assert "\x9b" not in ran.out and "\\u009b" in ran.out
    shown_agent = json.loads(ran.out)["event"]["evidence"]["agent"]
    assert shown_agent == {"name": agent["name"], "agent_id": agent["agent_id"]}


def test_a_csv_export_starts_no_cell_with_a_formula_a_stranger_typed(
    pipe: Pipeline, cli: tuple[AdminTransport, Cli], tmp_path: Path
) -> None:
    # Given opt-outs whose evidence texts (taken at capture: no control characters in them)
    # start as a spreadsheet formula would
    for text in ['=HYPERLINK("http://x.example","y")', "+1+1", "-1+1", "@SUM(A1)"]:
        body = {"email": EMAIL, "agent": {"name": text, "agent_id": text}, "policy_version": text}
        pipe.post("/v1/opt-out", body)
    today = datetime.now(UTC).date().isoformat()
    # When the operator exports the day as CSV, which counsel opens in a spreadsheet
    out = tmp_path / "today.csv"
    ran = cli[1]("export", "--from", today, "--to", today, "--format", "csv", "-o", str(out))
    assert ran.code == 0, ran.err
    # Then those texts are inside the `detail` JSON (its cell starts with "{"), kept as
    # received, and no cell starts with = + - @, a tab or a CR (review s36 terminal)
    rows = list(csv.reader(out.read_text().splitlines()))
    cells = [cell for row in rows for cell in row]
    assert not [cell for cell in cells if cell.startswith(("=", "+", "-", "@", "\t", "\r"))]
    names = {json.loads(r[-1])["evidence"]["agent"]["name"] for r in rows[1:] if r[0] == "request"}
    # (an @ is redacted in an agent's name: an email typed where a name goes)
    assert names == {'=HYPERLINK("http://x.example","y")', "+1+1", "-1+1", "(redacted)"}
