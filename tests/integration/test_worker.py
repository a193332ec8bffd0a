"""The worker end to end: moto table and queues (from template.yaml), real connectors against
loopback sandboxes, real-shaped SQS events, receipts and the request's aggregate status."""

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from local.aws_resources import create_queues
from local.sandbox.base import Sandbox
from local.sandbox.server import SandboxServer
from optout.connectors.credentials import SecretSource
from optout.observability import DROPPED_KEYS
from optout.status import aggregate
from optout.store.codec import serialize
from optout.store.requests import load_request
from optout.store.table import Table
from optout.systems import CONNECTOR_ID_TYPES
from tests.support.lambdas import FakeLambdaContext, load_event, load_function
from tests.support.log_lines import logged_lines

ROOT = Path(__file__).resolve().parents[2]
SECRETS_FILE = ROOT / "local" / "secrets.json"
SYSTEMS = {"webhook": "webhook", "braze": "braze", "meta": "meta", "google_ads": "google_ads",
           "segment": "segment", "salesforce": "salesforce"}  # fmt: skip
OPTIONS: dict[str, dict[str, Any]] = {
    "meta": {"ad_account_id": "1001"},
    "google_ads": {"operating_account_id": "1234567890", "user_list_ids": ["555"]},
    "segment": {"mode": "regulation"},
}
PREFIX = "optout-test"


@dataclass
class Stack:
    aws: Any
    server: SandboxServer
    worker: Any
    queues: dict[str, str]
    dlqs: dict[str, str]
    secrets_file: Path

    @property
    def table(self) -> Table:
        return Table(self.aws.dynamodb, self.aws.table_name)

    def put_request(
        self, request_id: str, systems: list[str], identifiers: list[dict[str, str]]
    ) -> None:
        items = [
            {
                "pk": f"REQ#{request_id}",
                "sk": "EVENT",
                "kind": "event",
                "event_type": "opt_out",
                "source": "webform",
                "received_at": "2026-01-05T10:00:00+00:00",
                "deadline": "2026-01-26T23:59:59+00:00",
            },
            {
                "pk": f"REQ#{request_id}",
                "sk": "RESOLUTION",
                "resolved_at": "2026-01-05T10:00:01+00:00",
                "jobs_total": len(systems),
            },
        ]
        for system in systems:
            items.append(
                {
                    "pk": f"REQ#{request_id}",
                    "sk": f"JOB#{system}",
                    "kind": "job",
                    "job_id": f"{request_id}:{system}",
                    "request_id": request_id,
                    "system": system,
                    "system_type": SYSTEMS[system],
                    "purposes": ["sale", "share"],
                    "identifiers": identifiers,
                    "status": "pending",
                    "attempts": 0,
                    "created_at": "2026-01-05T10:00:01+00:00",
                    "updated_at": "2026-01-05T10:00:01+00:00",
                }
            )
        for item in items:
            self.aws.dynamodb.put_item(TableName=self.aws.table_name, Item=serialize(item))

    def send(self, system: str, request_id: str, body: dict[str, Any] | None = None) -> None:
        message = body or {
            "job_id": f"{request_id}:{system}",
            "request_id": request_id,
            "system": system,
        }
        self.aws.sqs.send_message(QueueUrl=self.queues[system], MessageBody=json.dumps(message))

    def receive(self, system: str, queue: str = "jobs") -> list[dict[str, Any]]:
        url = self.queues[system] if queue == "jobs" else self.dlqs[system]
        answer = self.aws.sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"], WaitTimeSeconds=0
        )
        return answer.get("Messages", [])

    def run(self, system: str, context: Any = None) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """Receive what the queue offers and invoke the worker with it, as Lambda's poller does
        (`context`: the Lambda context, e.g. one whose remaining time follows a test's clock)."""
        messages = self.receive(system)
        if not messages:  # Lambda's poller never invokes with an empty batch
            return {"batchItemFailures": []}, []
        arn = self.aws.sqs.get_queue_attributes(
            QueueUrl=self.queues[system], AttributeNames=["QueueArn"]
        )["Attributes"]["QueueArn"]
        template = load_event("sqs_job_message.json")["Records"][0]
        records = [
            {
                **template,
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": m["Attributes"],
                "md5OfBody": m["MD5OfBody"],
                "eventSourceARN": arn,
            }
            for m in messages
        ]
        answer = self.worker.handler({"Records": records}, context or FakeLambdaContext())
        return answer, messages

    def job(self, request_id: str, system: str) -> dict[str, Any]:
        items = {i["sk"]: i for i in load_request(self.table, request_id)}
        return items[f"JOB#{system}"]

    def status(self, request_id: str) -> str:
        result = aggregate(request_id, load_request(self.table, request_id))
        assert result is not None
        return result.status

    def delayed(self, system: str) -> int:
        attributes = self.aws.sqs.get_queue_attributes(
            QueueUrl=self.queues[system], AttributeNames=["ApproximateNumberOfMessagesDelayed"]
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessagesDelayed"])

    def checks_without_delay(self, monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
        """Status-check messages go out without their delay (stands in for time passing)."""
        sent: list[dict[str, Any]] = []
        services = self.worker.services()

        def scheduler(queue_url: str) -> Any:
            def schedule(message: Any, delay_seconds: int) -> None:
                body = message.to_json()
                sent.append({"body": json.loads(body), "delay": delay_seconds})
                self.aws.sqs.send_message(QueueUrl=queue_url, MessageBody=body)

            return schedule

        monkeypatch.setattr(services, "scheduler", scheduler)
        return sent

    def fast_forward(self, system: str, messages: list[dict[str, Any]]) -> None:
        """Make messages the worker delayed visible again now (stands in for time passing)."""
        for m in messages:
            self.aws.sqs.change_message_visibility(
                QueueUrl=self.queues[system], ReceiptHandle=m["ReceiptHandle"], VisibilityTimeout=0
            )


@pytest.fixture
def stack(aws, tmp_path, monkeypatch) -> Iterator[Stack]:
    secrets = json.loads(SECRETS_FILE.read_text())
    sandboxes = {
        name: Sandbox(
            name, vendor, secrets[f"optout-bridge/systems/{name}"], timeout_delay_seconds=3.0
        )
        for name, vendor in SYSTEMS.items()
    }
    secrets_file = tmp_path / "secrets.json"
    secrets_file.write_text(json.dumps(secrets))
    with SandboxServer(sandboxes) as server:
        config = {
            "systems": [
                {
                    "name": name,
                    "type": vendor,
                    "identifier_types": [t for t in CONNECTOR_ID_TYPES[vendor] if t != "device_id"],
                    "purposes": ["sale", "share", "targeted_advertising", "profiling"],
                    "hashing": "sha256",
                    "credentials": f"optout-bridge/systems/{name}",
                    "options": {
                        "base_url": server.base_url(name),
                        **(
                            {"token_url": server.base_url(name) + "/token"}
                            if vendor == "google_ads"
                            else {}
                        ),
                        **OPTIONS.get(vendor, {}),
                    },
                }
                for name, vendor in SYSTEMS.items()
            ]
        }
        systems_file = tmp_path / "systems.json"
        systems_file.write_text(json.dumps(config))
        env = {
            "SYSTEMS_CONFIG": str(systems_file),
            "LOCAL_SECRETS_FILE": str(secrets_file),
            "LOCAL_STACK_URL": server.url,  # OPTOUT_LOCAL_MODE (tests): loopback http is allowed
            "RETRY_BASE_SECONDS": "60",
            "RETRY_MAX_SECONDS": "120",
            "HTTP_TIMEOUT_SECONDS": "2",
            "HTTP_ATTEMPTS": "1",  # each sandbox fault reaches the queue's retry, as tests expect
            "MAX_RECEIVE_COUNT": "8",
            # Google's first status check at the general 60 s (not its own 30 minutes):
            # checks sent without delay stand in for time passing, which the clock does not
            "FIRST_CONFIRM_SCALE": "0.001",
        }
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        monkeypatch.delenv("SYSTEM_NAME", raising=False)
        queues, dlqs, _ = create_queues(aws.sqs, list(SYSTEMS), PREFIX)
        yield Stack(aws, server, load_function("worker"), queues, dlqs, secrets_file)


EMAIL = [{"type": "email", "key": "k1", "value": "jane.doe@example.com"}]
CUSTOMER = [{"type": "customer_id", "key": "k2", "value": "cust-42"}]


def failed_ids(answer: dict[str, Any]) -> set[str]:
    return {f["itemIdentifier"] for f in answer["batchItemFailures"]}


def test_mixed_batch_reports_only_the_failed_messages(stack):
    stack.put_request("r-ok", ["webhook"], EMAIL)
    stack.put_request("r-flaky", ["webhook"], EMAIL)
    stack.send("webhook", "r-ok")
    stack.send("webhook", "r-flaky")
    stack.send("webhook", "r-missing")  # a reference to a job that does not exist
    stack.server.sandboxes["webhook"].set_faults(0.5, 503)  # the second call fails

    answer, messages = stack.run("webhook")

    by_body = {json.loads(m["Body"])["request_id"]: m["MessageId"] for m in messages}
    jobs = {r: stack.job(r, "webhook") for r in ("r-ok", "r-flaky")}
    ok, flaky = sorted(jobs.values(), key=lambda j: j["status"])  # "done" < "pending"
    assert (ok["status"], flaky["status"]) == ("done", "pending")
    assert failed_ids(answer) == {by_body[flaky["request_id"]], by_body["r-missing"]}
    assert ok["receipt"] == {
        "http_status": 200,
        "vendor_ref": ok["receipt"]["vendor_ref"],
        "identifier_types_sent": ["email"],
        "completed_at": ok["completed_at"],
    }
    assert flaky["receipt"]["http_status"] == 503 and flaky["attempts"] == 1
    assert "jane" not in json.dumps(ok["receipt"]) + json.dumps(flaky["receipt"])
    assert stack.receive("webhook") == []  # the retried ones were pushed back by their backoff


def test_a_batch_logs_its_clean_attempts_on_one_line_and_a_retry_on_its_own(stack):
    # Given two webhook jobs in one batch, the second call failing (retried)
    stack.put_request("r-ok", ["webhook"], EMAIL)
    stack.put_request("r-flaky", ["webhook"], EMAIL)
    stack.send("webhook", "r-ok")
    stack.send("webhook", "r-flaky")
    stack.server.sandboxes["webhook"].set_faults(0.5, 503)

    with logged_lines() as lines:
        stack.run("webhook")

    ok, flaky = sorted((stack.job(r, "webhook") for r in ("r-ok", "r-flaky")),
                       key=lambda j: j["status"])  # fmt: skip
    # Then the done job is one id on the batch's line (its receipt has the rest) ...
    (settled,) = [line for line in lines if line["message"] == "delivery attempts"]
    assert settled["done"] == [ok["job_id"]]
    # ... and the retry keeps its own line with what an operator needs
    (retry,) = [line for line in lines if line["message"] == "delivery attempt"]
    assert {k: retry[k] for k in ("job_id", "system", "attempt", "status", "http_status")} == {
        "job_id": flaky["job_id"], "system": "webhook", "attempt": 1, "status": "pending",
        "http_status": 503,
    }  # fmt: skip
    assert retry["error"] and retry["retry_in"] > 0
    assert not any({*DROPPED_KEYS, "location"} & set(line) for line in lines)
    assert all("cold_start" in line for line in lines)


def test_jobs_arriving_together_share_vendor_calls(stack):
    for n in range(5):
        stack.put_request(f"r{n}", ["braze"], CUSTOMER)
        stack.send("braze", f"r{n}")

    answer, messages = stack.run("braze")

    assert len(messages) == 5 and answer["batchItemFailures"] == []
    # one lookup (the profiles exist) and one update-only write for all five
    assert len(stack.server.sandboxes["braze"].recorded()) == 2
    assert {stack.job(f"r{n}", "braze")["status"] for n in range(5)} == {"done"}


def test_a_redelivered_message_never_sends_again(stack):
    stack.put_request("r1", ["braze"], CUSTOMER)
    stack.send("braze", "r1")
    stack.run("braze")
    stack.send("braze", "r1")  # the same reference again (SQS at-least-once delivery)

    answer, messages = stack.run("braze")

    assert len(messages) == 1 and answer["batchItemFailures"] == []
    assert len(stack.server.sandboxes["braze"].recorded()) == 2  # the first delivery's calls
    assert stack.job("r1", "braze")["attempts"] == 1


def test_exhausted_retries_fail_the_job_and_land_in_the_dlq(stack, monkeypatch):
    stack.put_request("r1", ["webhook"], EMAIL)
    stack.send("webhook", "r1")
    stack.server.sandboxes["webhook"].set_faults(1.0, 500)
    now = [datetime.now(UTC)]  # the worker's clock: each return comes after its retry time
    monkeypatch.setattr(stack.worker.services().delivery, "clock", lambda: now[0])

    receives = 0
    while messages := stack.run("webhook")[1]:
        receives += 1
        if stack.job("r1", "webhook")["status"] == "failed":
            break
        assert stack.receive("webhook") == []  # the worker delayed it (ChangeMessageVisibility)
        stack.fast_forward("webhook", messages)
        now[0] += timedelta(seconds=121)  # the back-off (RETRY_MAX_SECONDS: 120) has passed

    job = stack.job("r1", "webhook")
    assert receives == 8
    assert stack.run("webhook")[1] == []  # SQS moved it on the next receive
    assert job["status"] == "failed" and job["attempts"] == 8
    assert job["receipt"]["error"].startswith("retries exhausted")
    assert len(stack.receive("webhook", queue="dlq")) == 1
    assert stack.status("r1") == "failed"


def test_429_delays_the_message_by_retry_after(stack, monkeypatch):
    stack.put_request("r1", ["braze"], CUSTOMER)
    stack.send("braze", "r1")
    stack.server.sandboxes["braze"].set_faults(1.0, 429)

    answer, messages = stack.run("braze")

    assert failed_ids(answer) == {messages[0]["MessageId"]}
    assert stack.job("r1", "braze")["receipt"]["http_status"] == 429
    assert stack.receive("braze") == []  # hidden for Retry-After (2 s), not the 60 s backoff


@pytest.mark.parametrize(
    ("system", "retry_after", "status", "wait"),
    [("salesforce", 3600, 403, 3600),  # REQUEST_LIMIT_EXCEEDED, the day's calls spent: an hour
     ("meta", 600, 400, 600)],  # code 80004, X-Business-Use-Case-Usage: 10 minutes
)  # fmt: skip
def test_a_vendor_throttle_answered_with_a_4xx_keeps_the_job_pending(
    stack, system, retry_after, status, wait
):
    # Given a vendor throttling the way it does: Salesforce 403, Meta 400 (its OAuth token,
    # Salesforce's first call, is not under the API limit: the lookup, the second, is refused)
    stack.put_request("r1", [system], EMAIL)
    stack.send(system, "r1")
    spec = {"rate": 0.5 if system == "salesforce" else 1, "status": 429, "retry_after": retry_after}
    stack.server.sandboxes[system].set_fault_spec(spec)
    before = datetime.now(UTC)
    # When the worker delivers the job
    answer, messages = stack.run(system)
    # Then the job is pending, not failed (and not done), the message is retried, and the job
    # is due again after the vendor's wait
    job = stack.job("r1", system)
    assert failed_ids(answer) == {messages[0]["MessageId"]}
    assert (job["status"], job["receipt"]["http_status"]) == ("pending", status)
    due = datetime.fromisoformat(job["retry_at"]) - before
    assert timedelta(seconds=wait - 5) <= due <= timedelta(seconds=wait + 60)
    assert stack.status("r1") not in ("failed", "completed")
    assert stack.receive(system) == []


def test_a_permanent_4xx_fails_the_job_without_retrying(stack):
    stack.put_request("r1", ["meta"], EMAIL)
    stack.send("meta", "r1")
    stack.server.sandboxes["meta"].set_faults(1.0, 400)

    answer, _ = stack.run("meta")

    assert answer["batchItemFailures"] == []
    assert stack.job("r1", "meta")["status"] == "failed"
    assert stack.status("r1") == "failed"


def test_request_status_moves_to_completed_when_every_system_is_done(stack):
    stack.put_request("r1", ["webhook", "braze"], EMAIL + CUSTOMER)
    stack.send("webhook", "r1")
    stack.send("braze", "r1")
    assert stack.status("r1") == "processing"

    stack.run("webhook")
    assert stack.status("r1") == "processing"
    stack.run("braze")

    assert stack.status("r1") == "completed"


def test_a_system_without_an_identifier_it_accepts_records_no_record(stack):
    stack.put_request("r1", ["meta"], CUSTOMER)
    stack.send("meta", "r1")

    stack.run("meta")

    assert stack.job("r1", "meta")["status"] == "no_record"
    assert stack.status("r1") == "completed"


def test_a_single_system_worker_rejects_another_systems_message(stack, monkeypatch):
    monkeypatch.setenv("SYSTEM_NAME", "braze")
    stack.worker = load_function("worker")
    stack.put_request("r1", ["webhook"], EMAIL)
    stack.send("braze", "r1", {"job_id": "r1:webhook", "request_id": "r1", "system": "webhook"})

    answer, messages = stack.run("braze")

    assert failed_ids(answer) == {messages[0]["MessageId"]}
    assert stack.job("r1", "webhook")["status"] == "pending"
    assert stack.server.sandboxes["webhook"].recorded() == []


# -- asynchronous vendors: submitted, confirmed later, final only when the vendor says so ----


def test_an_accepted_asynchronous_job_is_submitted_not_done(stack):
    stack.put_request("r1", ["google_ads"], EMAIL)
    stack.send("google_ads", "r1")

    answer, _ = stack.run("google_ads")

    job = stack.job("r1", "google_ads")
    assert answer["batchItemFailures"] == []
    assert job["status"] == "submitted" and "completed_at" not in job
    assert job["receipt"]["vendor_ref"]  # Google's requestId
    assert stack.status("r1") == "processing"
    assert job["identifiers"][0]["value"] == "jane.doe@example.com"  # not final yet


def test_a_submitted_job_schedules_a_delayed_status_check_on_its_own_queue(stack):
    stack.put_request("r1", ["google_ads"], EMAIL)
    stack.send("google_ads", "r1")

    stack.run("google_ads")

    assert stack.receive("google_ads") == []  # nothing visible now: the check is delayed
    assert stack.delayed("google_ads") == 1


def test_a_submitted_job_becomes_done_when_the_vendor_confirms(stack, monkeypatch):
    sent = stack.checks_without_delay(monkeypatch)
    stack.put_request("r1", ["google_ads"], EMAIL)
    stack.send("google_ads", "r1")
    stack.run("google_ads")  # submitted

    stack.run("google_ads")  # check 1: Google still PROCESSING
    still = stack.job("r1", "google_ads")["status"]
    stack.run("google_ads")  # check 2: SUCCESS

    job = stack.job("r1", "google_ads")
    assert still == "submitted"
    assert [m["body"]["confirm"] for m in sent] == [1, 2]
    assert [m["delay"] for m in sent] == [60, 120]  # growing, within SQS's 900 s
    assert job["status"] == "done" and job["completed_at"]
    assert stack.status("r1") == "completed"


def test_a_done_receipt_keeps_no_error_of_an_earlier_failed_status_check(stack, monkeypatch):
    stack.checks_without_delay(monkeypatch)
    stack.put_request("r1", ["google_ads"], EMAIL)
    stack.send("google_ads", "r1")
    stack.run("google_ads")  # submitted
    # Given a status check that failed (Google answered 503 to every try)
    stack.server.sandboxes["google_ads"].set_faults(1.0, 503)
    stack.run("google_ads")
    failed_check = stack.job("r1", "google_ads")["receipt"]["error"]
    stack.server.sandboxes["google_ads"].set_faults(0.0, 503)
    # When later checks find it done
    for _ in range(3):
        stack.run("google_ads")
    # Then its receipt has no error (it is not a failure), and keeps the check's in history
    job = stack.job("r1", "google_ads")
    assert failed_check.startswith("google_ads requestStatus")
    assert job["status"] == "done" and "error" not in job["receipt"]
    assert job["receipt"]["check_errors"] == [failed_check]


def test_a_final_job_keeps_identifier_types_and_keys_but_not_values(stack, monkeypatch):
    stack.checks_without_delay(monkeypatch)
    stack.put_request("r1", ["google_ads", "braze"], EMAIL)
    stack.send("google_ads", "r1")
    stack.send("braze", "r1")
    for _ in range(3):
        stack.run("google_ads")
    stack.run("braze")

    for system in ("google_ads", "braze"):
        job = stack.job("r1", system)
        assert job["status"] == "done"
        assert job["identifiers"] == [{"type": "email", "key": "k1"}]


def test_a_vendor_side_failure_fails_the_job_with_the_vendors_reason(stack, monkeypatch):
    stack.checks_without_delay(monkeypatch)
    stack.server.sandboxes["google_ads"].vendor.fail_next = True
    stack.put_request("r1", ["google_ads"], EMAIL)
    stack.send("google_ads", "r1")

    for _ in range(3):
        stack.run("google_ads")

    job = stack.job("r1", "google_ads")
    assert job["status"] == "failed"
    assert job["receipt"]["error"].startswith("google_ads remove: FAILED (")
    assert stack.status("r1") == "failed"


def test_a_job_the_vendor_never_confirms_fails_after_the_give_up_age(stack, monkeypatch):
    monkeypatch.setenv("CONFIRM_GIVE_UP_SECONDS", "0.001")
    stack.worker = load_function("worker")
    stack.checks_without_delay(monkeypatch)
    stack.put_request("r1", ["google_ads"], EMAIL)
    stack.send("google_ads", "r1")
    stack.run("google_ads")

    stack.run("google_ads")  # the check finds it still PROCESSING, and too old

    job = stack.job("r1", "google_ads")
    assert job["status"] == "failed"
    assert job["receipt"]["error"] == "vendor did not confirm within 1 second"
    assert stack.receive("google_ads") == []  # no further check scheduled


def test_a_segment_regulation_is_given_segments_30_days_not_the_workers_give_up_age(
    stack, monkeypatch
):
    # Given a worker that gives up on unconfirmed jobs at once, and a Segment regulation (a
    # suppression "can take up to 30 days to process", Segment documents)
    monkeypatch.setenv("CONFIRM_GIVE_UP_SECONDS", "0.001")
    stack.worker = load_function("worker")
    stack.checks_without_delay(monkeypatch)
    stack.put_request("r1", ["segment"], CUSTOMER)
    stack.send("segment", "r1")
    stack.run("segment")

    # When the status check finds the regulation still running
    stack.run("segment")

    # Then the job stays submitted with a check scheduled (the old worker failed it)
    job = stack.job("r1", "segment")
    assert job["status"] == "submitted"
    assert len(stack.receive("segment")) == 1


def test_an_older_duplicate_status_check_is_acknowledged_without_calling_the_vendor(
    stack, monkeypatch
):
    stack.checks_without_delay(monkeypatch)
    stack.put_request("r1", ["google_ads"], EMAIL)
    stack.send("google_ads", "r1")
    stack.run("google_ads")
    stack.run("google_ads")  # check 1 ran; check 2 is now the live one
    calls_before = len(stack.server.sandboxes["google_ads"].recorded())
    stack.receive("google_ads")  # take check 2 off the queue for this test
    stale = {"job_id": "r1:google_ads", "request_id": "r1", "system": "google_ads", "confirm": 1}
    stack.aws.sqs.purge_queue(QueueUrl=stack.queues["google_ads"])
    stack.send("google_ads", "r1", stale)

    answer, messages = stack.run("google_ads")

    assert len(messages) == 1 and answer["batchItemFailures"] == []
    assert len(stack.server.sandboxes["google_ads"].recorded()) == calls_before
    assert stack.job("r1", "google_ads")["status"] == "submitted"


# -- credentials and failures -----------------------------------------------------------------


def test_a_rotated_secret_is_re_read_after_a_401_and_the_job_completes(stack):
    # Given a worker that cached an old Braze key, and a rotation since (the file changed)
    secrets = json.loads(stack.secrets_file.read_text())
    good = secrets["optout-bridge/systems/braze"]["api_key"]
    secrets["optout-bridge/systems/braze"]["api_key"] = "revoked-key"
    stack.secrets_file.write_text(json.dumps(secrets))
    stack.put_request("r0", ["braze"], CUSTOMER)
    stack.send("braze", "r0")
    stack.run("braze")  # reads (and caches) the revoked key; fails 401 for good
    secrets["optout-bridge/systems/braze"]["api_key"] = good
    stack.secrets_file.write_text(json.dumps(secrets))

    # When the next job meets a 401 with the cached key
    stack.put_request("r1", ["braze"], CUSTOMER)
    stack.send("braze", "r1")
    stack.run("braze")

    # Then the worker re-read the secret once and delivered
    assert stack.job("r0", "braze")["status"] == "failed"
    # ... the first failure's receipt names its class, for `optout status` (review s30 F4)
    assert stack.job("r0", "braze")["receipt"]["reason_class"] == "credentials_rejected"
    assert stack.job("r1", "braze")["status"] == "done"


def test_a_webhook_secret_the_connector_refuses_fails_the_job_at_once_as_configuration(stack):
    # Given a webhook secret deployed before the check, too short to be safe (review s30
    # receipts W5: it was retried on every receive, 2-64 minutes, then failed as exhausted)
    secrets = json.loads(stack.secrets_file.read_text())
    secrets["optout-bridge/systems/webhook"]["signing_secret"] = "short"
    stack.secrets_file.write_text(json.dumps(secrets))
    stack.put_request("r1", ["webhook"], EMAIL)
    stack.send("webhook", "r1")

    stack.run("webhook")

    # Then nothing was sent, and the job failed on its first receive (for replay), its
    # receipt naming our configuration (the rule, never the value)
    assert stack.server.sandboxes["webhook"].recorded() == []
    job = stack.job("r1", "webhook")
    assert job["status"] == "failed"
    assert job["receipt"]["reason_class"] == "config_invalid"
    assert "shorter than 32 characters" in job["receipt"]["error"]
    assert "short" not in job["receipt"]["error"].replace("shorter", "")


def test_a_failed_job_is_logged_with_system_reason_class_and_request_id_only(stack, caplog):
    stack.put_request("r1", ["meta"], EMAIL)
    stack.send("meta", "r1")
    stack.server.sandboxes["meta"].set_faults(1.0, 400)

    stack.run("meta")

    (failure,) = [r for r in caplog.records if r.getMessage() == "job failed"]
    assert failure.levelname == "WARNING"
    fields = {k: getattr(failure, k, None) for k in ("system", "request_id", "reason_class")}
    assert fields == {"system": "meta", "request_id": "r1", "reason_class": "vendor_rejected"}
    assert "jane" not in json.dumps([vars(r) for r in caplog.records], default=str)


def test_a_secret_secrets_manager_cannot_give_retries_the_job_without_a_vendor_call(stack):
    # Given a worker reading Secrets Manager (production's source) where the secret is absent
    stack.worker.services().secrets = SecretSource()
    stack.put_request("r1", ["braze"], CUSTOMER)
    stack.send("braze", "r1")

    # When it runs
    answer, messages = stack.run("braze")

    # Then the message is retried (an operator must create the secret), no call was made and
    # the batch did not fail as a whole
    assert failed_ids(answer) == {messages[0]["MessageId"]}
    assert stack.job("r1", "braze")["status"] == "pending"
    assert stack.server.sandboxes["braze"].recorded() == []
