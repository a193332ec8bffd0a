"""The resolver end to end over moto: capture handler -> table stream -> resolver handler."""

import json
import re
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from local.moto_guard import guarded
from optout.identifiers import lookup_key, normalise
from optout.observability import DROPPED_KEYS
from optout.settings import LOCAL_HASH_KEY
from optout.store import keys
from tests.conftest import Aws
from tests.integration.test_admin import hold_action
from tests.integration.test_resolver_delivery import SYSTEMS, Vendor, work
from tests.support.lambdas import load_event
from tests.support.log_lines import logged_lines
from tests.support.pipeline import Pipeline, build_pipeline
from tests.support.tokens import token_for

DEVICE_A = "dev-aaaaaaaaaaaaaaaa"
DEVICE_B = "dev-bbbbbbbbbbbbbbbb"
EMAIL = "Jane.Doe@Example.com"
EMAIL_SYSTEMS = {"webhook", "braze", "salesforce", "google_ads", "meta", "trade_desk"}
DEVICE_SYSTEMS = {"webhook"}  # the default config's systems that accept device_id
QUEUE_KEYS = sorted({s.queue_key for s in SYSTEMS.systems})
SECRET = LOCAL_HASH_KEY.encode()  # the tests' hash key (local mode)


@pytest.fixture
def pipe(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> Iterator[Pipeline]:
    yield build_pipeline(aws, monkeypatch)


def jobs_of(pipe: Pipeline, request_id: str) -> dict[str, dict[str, Any]]:
    return {i["system"]: i for i in pipe.items(f"REQ#{request_id}") if i["sk"].startswith("JOB#")}


def identifier_types(job: dict[str, Any]) -> set[str]:
    return {i["type"] for i in job["identifiers"]}


def test_anonymous_banner_opt_out_reaches_only_device_systems_then_email_systems_on_link(
    pipe: Pipeline,
) -> None:
    # Given an anonymous banner opt-out
    banner = pipe.post(
        "/v1/consent", {"device_id": DEVICE_A, "opt_out": {"sale": True, "share": True}}
    )
    # When the resolver sees it
    assert pipe.resolve() == {"batchItemFailures": []}
    # Then only the systems that accept device IDs get a job, for the device
    jobs = jobs_of(pipe, banner["request_id"])
    assert set(jobs) == DEVICE_SYSTEMS
    assert all(identifier_types(j) == {"device_id"} for j in jobs.values())
    assert {k for k, v in pipe.drain_all().items() if v} == DEVICE_SYSTEMS

    # When the device is later linked to an email by the backend
    link = pipe.post(
        "/v1/identity-links",
        {"links": [{"a": {"type": "device_id", "value": DEVICE_A},
                    "b": {"type": "email", "value": EMAIL}}]},
        iam=True,
    )  # fmt: skip
    pipe.resolve()
    # Then every system that serves sale/share and takes emails gets a job for the email only
    linked_jobs = jobs_of(pipe, link["request_id"])
    assert set(linked_jobs) == EMAIL_SYSTEMS
    assert all(identifier_types(j) == {"email"} for j in linked_jobs.values())
    assert linked_jobs["salesforce"]["identifiers"][0]["value"] == "jane.doe@example.com"
    assert linked_jobs["meta"]["purposes"] == ["share"]  # meta serves share/ads, not sale
    # And the device stays opted out
    state = pipe.get(f"/v1/consent/{DEVICE_A}", device_id=DEVICE_A)
    assert state["opt_out"] == {"sale": True, "share": True, "targeted_advertising": False,
                                "profiling": False, "limit_sensitive": False}  # fmt: skip


def test_webform_opt_out_reaches_a_device_linked_later_at_login(pipe: Pipeline) -> None:
    # Given a webform opt-out by email only
    pipe.post("/v1/opt-out", {"email": EMAIL})
    pipe.resolve()
    assert pipe.get(f"/v1/consent/{DEVICE_B}", device_id=DEVICE_B)["opt_out"]["sale"] is False
    # When a login on a new browser links its device to that email with the site's token
    token = token_for(email=EMAIL, device_id=DEVICE_B)
    pipe.post("/v1/consent", {"device_id": DEVICE_B, "identity_token": token})
    pipe.resolve()
    # Then the device answers opted out of everything the webform covered (by default the
    # sale/share purposes, not the separate right to limit sensitive data)
    state = pipe.get(f"/v1/consent/{DEVICE_B}", device_id=DEVICE_B)
    assert state["opt_out"] == {
        **dict.fromkeys(("sale", "share", "targeted_advertising", "profiling"), True),
        "limit_sensitive": False,
    }
    assert state["gpc_honored"] is False
    assert state["updated_at"]


def test_gpc_on_a_device_linked_to_an_email_gives_jobs_for_the_email_systems(
    pipe: Pipeline,
) -> None:
    # Given a device already linked to an email at login, nobody opted out yet
    pipe.post(
        "/v1/consent",
        {"device_id": DEVICE_A, "identity_token": token_for(email=EMAIL, device_id=DEVICE_A)},
    )
    pipe.resolve()
    assert pipe.items("REQ#") and not any(i["sk"].startswith("JOB#") for i in pipe.items())
    # When that browser sends a request with Global Privacy Control on
    gpc = pipe.post("/v1/consent", {"device_id": DEVICE_A}, headers={"sec-gpc": "1"})
    pipe.resolve()
    # Then the email systems get jobs that include the email (and the device systems, the device)
    jobs = jobs_of(pipe, gpc["request_id"])
    assert set(jobs) == EMAIL_SYSTEMS | DEVICE_SYSTEMS
    assert all("email" in identifier_types(jobs[name]) for name in EMAIL_SYSTEMS)
    assert "segment" not in jobs  # Segment matches userId only; a device id is not one
    assert jobs["webhook"]["purposes"] == ["sale", "share", "targeted_advertising"]
    state = pipe.get(f"/v1/consent/{DEVICE_A}", device_id=DEVICE_A)
    assert state["gpc_honored"] is True and state["opt_out"]["targeted_advertising"] is True


def test_a_batch_delivered_twice_makes_no_duplicate_job_or_vendor_call(pipe: Pipeline) -> None:
    # Given a batch of two opt-outs, resolved, and every system's worker done with its jobs
    pipe.post("/v1/opt-out", {"email": EMAIL})
    pipe.post("/v1/consent", {"device_id": DEVICE_A, "opt_out": {"sale": True}})
    batch = pipe.event_records()
    assert len(batch) == 2
    assert pipe.resolve(batch) == {"batchItemFailures": []}
    job_ids = sorted(i["job_id"] for i in pipe.items() if i["sk"].startswith("JOB#"))
    assert len(job_ids) == len(EMAIL_SYSTEMS) + len(DEVICE_SYSTEMS)
    vendor = Vendor()
    first = [m for key in QUEUE_KEYS for m in work(pipe, key, vendor)]
    assert sorted(m["job_id"] for m in first) == job_ids
    calls = len(vendor.received)
    # When the same batch is delivered again (the stream is at least once)
    assert pipe.resolve(batch) == {"batchItemFailures": []}
    # Then no job is made twice; each of the batch's own jobs is sent again at most once (the
    # resolver cannot know that the first send went through), and no vendor is called again
    assert sorted(i["job_id"] for i in pipe.items() if i["sk"].startswith("JOB#")) == job_ids
    again = [m for key in QUEUE_KEYS for m in work(pipe, key, vendor)]
    assert sorted(m["job_id"] for m in again) == job_ids
    assert len(vendor.received) == calls


def test_a_poisoned_record_fails_alone_in_the_partial_batch_response(pipe: Pipeline) -> None:
    # Given a batch whose middle record is corrupt
    pipe.post("/v1/consent", {"device_id": DEVICE_A, "opt_out": {"sale": True}})
    pipe.post("/v1/consent", {"device_id": "dev-poisonpoisonpoison", "opt_out": {"sale": True}})
    pipe.post("/v1/opt-out", {"email": EMAIL})
    batch = pipe.event_records()
    del batch[1]["dynamodb"]["NewImage"]["request_id"]
    # When the resolver processes it
    answer = pipe.resolve(batch)
    # Then only that record is reported, and the others did their work
    poisoned = batch[1]["dynamodb"]["SequenceNumber"]
    assert answer == {"batchItemFailures": [{"itemIdentifier": poisoned}]}
    assert pipe.get(f"/v1/consent/{DEVICE_A}", device_id=DEVICE_A)["opt_out"]["sale"] is True
    assert len([i for i in pipe.items() if i["sk"] == "RESOLUTION"]) == 2


def test_a_failed_record_is_logged_and_counted_though_the_invocation_succeeds(
    pipe: Pipeline, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a batch of two good records around a poisoned one (no request id)
    pipe.post("/v1/consent", {"device_id": DEVICE_A, "opt_out": {"sale": True}})
    pipe.post("/v1/consent", {"device_id": "dev-poisonpoisonpoison", "opt_out": {"sale": True}})
    pipe.post("/v1/opt-out", {"email": EMAIL})
    batch = pipe.event_records()
    del batch[1]["dynamodb"]["NewImage"]["request_id"]
    caplog.clear()
    capsys.readouterr()
    # When the resolver processes it: it returns (no function error: Lambda's Errors stays 0)
    answer = pipe.resolve(batch)
    poisoned = batch[1]["dynamodb"]["SequenceNumber"]
    assert answer == {"batchItemFailures": [{"itemIdentifier": poisoned}]}
    # Then one ERROR line names the failed record (where, what class), and never a value
    (failed,) = [r for r in caplog.records if r.getMessage() == "event failed"]
    assert failed.levelname == "ERROR"
    assert failed.sequence_number == poisoned
    assert failed.event_type == batch[1]["dynamodb"]["NewImage"]["event_type"]["S"]
    assert failed.request_id is None  # the poisoned record has none
    assert failed.error == "KeyError"
    assert re.fullmatch(r"optout/[\w/]+\.py:\d+", failed.error_at), failed.error_at
    logged = json.dumps([vars(r) for r in caplog.records], default=str).lower()
    assert "dev-poison" not in logged and "jane" not in logged
    # And `EventsFailed` (its alarm's metric) counts it, beside the two that resolved
    out = capsys.readouterr().out.replace(" ", "")
    assert '"EventsFailed":[1.0]' in out
    assert '"EventsResolved":[1.0,1.0]' in out


def test_the_capture_and_resolver_lines_follow_the_request_without_constant_keys(
    pipe: Pipeline,
) -> None:
    # When a banner opt-out is captured and resolved
    with logged_lines() as lines:
        banner = pipe.post("/v1/consent", {"device_id": DEVICE_A, "opt_out": {"sale": True}})
        pipe.resolve()
    # Then its request id is on both functions' lines, API Gateway's only on capture's
    lines = [line for line in lines if line["message"] in ("captured", "resolved")]
    captured, resolved = sorted(lines, key=lambda line: str(line["message"]))
    assert captured["request_id"] == resolved["request_id"] == banner["request_id"]
    assert "correlation_id" in captured and "correlation_id" not in resolved
    # And no line repeats what the log group and Lambda's own records say (observability.py)
    assert all("cold_start" in line for line in lines)
    assert not any({*DROPPED_KEYS, "location"} & set(line) for line in lines)


@pytest.mark.usefixtures("expressions_parsed_once")  # 600 UpdateItems: moto's parsing
def test_linking_three_hundred_devices_to_one_email_stops_at_the_cluster_cap(
    aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    pipe = build_pipeline(aws, monkeypatch, MAX_CLUSTER_SIZE="50")
    # Given one email, and a backend that links 300 devices to it (three calls of the route's
    # 100; 1,000 in ten calls until session 25: the cap is crossed the same way, 251 held)
    for call in range(3):
        links = [
            {"a": {"type": "email", "value": EMAIL},
             "b": {"type": "device_id", "value": f"dev-{call:03d}-{n:03d}-shared-pc"}}
            for n in range(100)
        ]  # fmt: skip
        pipe.post("/v1/identity-links", {"links": links}, iam=True)
    # When the resolver processes them (moto's Query reads the whole table unless scoped)
    with guarded():
        assert pipe.resolve() == {"batchItemFailures": []}
    # Then the cluster stops at the cap and every other link is held for review (read by
    # partition: three Scans of the 3,000 items through moto took over half the test)
    email = pipe.partition(keys.identity_pk("email", lookup_key(SECRET, normalise("email", EMAIL))))
    assert [i["sk"] for i in email if i["sk"] == "NODE"] == ["NODE"]
    email_links = [i for i in email if i["sk"].startswith("LINK#")]
    holds = [i for i in pipe.partition(keys.HOLD_PK) if i["kind"] == "hold"]
    assert len(email_links) == 49  # 49 devices + the email = 50
    assert len(holds) == 300 - 49
    assert all(h["cap"] == 50 and "@" not in str(h) for h in holds)


def test_a_rejected_hold_stays_rejected_when_its_link_event_is_processed_again(
    aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a cap of 2, two devices linked to one email in one stream batch (the second link
    # is held), and an operator who rejected that hold
    pipe = build_pipeline(aws, monkeypatch, MAX_CLUSTER_SIZE="2")
    pipe.post("/v1/opt-out", {"email": EMAIL})
    for device in (DEVICE_A, DEVICE_B):
        link = {"a": {"type": "device_id", "value": device}, "b": {"type": "email", "value": EMAIL}}
        pipe.post("/v1/identity-links", {"links": [link]}, iam=True)
    records = pipe.event_records()
    assert pipe.resolve(records) == {"batchItemFailures": []}
    (hold,) = holds_of(pipe)
    assert hold_action(pipe, keys.hold_id(hold["sk"]), "reject")["statusCode"] == 200
    (rejected,) = holds_of(pipe)
    # When the same stream records are resolved again (a batch retried after its flush failed)
    assert pipe.resolve(records) == {"batchItemFailures": []}
    # Then the hold keeps the operator's decision
    (after,) = holds_of(pipe)
    assert (after["status"], after["decided_at"]) == ("rejected", rejected["decided_at"])


@pytest.mark.parametrize("last", [True, False], ids=["opt-out-last", "opt-in-last"])
def test_two_choices_of_one_device_in_one_stream_batch_leave_the_last_choice(
    pipe: Pipeline, last: bool
) -> None:
    def choose(sale: bool) -> None:  # a confirmed opt-in is what lifts an opt-out
        pipe.post("/v1/consent", {"device_id": DEVICE_A, "opt_out": {"sale": sale},
                                  "confirm_opt_in": True})  # fmt: skip

    # Given a device whose stored state already says `last` (each choice its own batch)
    for sale in (True, False)[: 1 if last else 2]:
        choose(sale)
        pipe.resolve()
    # When it chooses the opposite, then `last` again, and both land in one stream batch
    choose(not last)
    choose(last)
    batch = pipe.event_records()
    assert len(batch) == 2 and pipe.resolve(batch) == {"batchItemFailures": []}
    # Then its state is the last choice, not the one pending from earlier in the batch
    assert pipe.get(f"/v1/consent/{DEVICE_A}", device_id=DEVICE_A)["opt_out"]["sale"] is last


def holds_of(pipe: Pipeline) -> list[dict[str, Any]]:
    return [i for i in pipe.items("HOLD") if i["kind"] == "hold"]


@pytest.fixture
def send_batches() -> Iterator[list[int]]:
    """Sizes of the SendMessageBatch calls made by clients created during the test."""
    sizes: list[int] = []
    event = "provide-client-params.sqs.SendMessageBatch"

    def hook(params: dict[str, Any], **_: Any) -> None:
        sizes.append(len(params["Entries"]))

    session = boto3._get_default_session()
    session.events.register(event, hook)
    yield sizes
    session.events.unregister(event, hook)


def test_a_stream_batch_shares_send_calls_and_later_events_see_earlier_ones(
    pipe: Pipeline, send_batches: list[int]
) -> None:
    calls = send_batches
    # Given twelve webform opt-outs, then a login linking a device to the first email,
    # all in one stream batch
    for n in range(12):
        pipe.post("/v1/opt-out", {"email": f"person{n}@example.com"})
    login = token_for(email="person0@example.com", device_id=DEVICE_B)
    pipe.post("/v1/consent", {"device_id": DEVICE_B, "identity_token": login})
    # When the resolver processes the batch
    assert pipe.resolve() == {"batchItemFailures": []}
    # Then each queue got its jobs ten per call, never one call per event: twelve email jobs
    # per email system, plus the device's job for the system that takes device IDs (webhook)
    email_only = EMAIL_SYSTEMS - DEVICE_SYSTEMS
    assert sorted(calls) == sorted([10, 2] * len(email_only) + [10, 3])
    # And the login made jobs only for the device: the email's jobs were already queued
    login_jobs = [
        j for j in pipe.items("REQ#") if j["sk"].startswith("JOB#") and
        any(i["type"] == "device_id" for i in j["identifiers"])
    ]  # fmt: skip
    assert {frozenset(identifier_types(j)) for j in login_jobs} == {frozenset({"device_id"})}
    assert pipe.get(f"/v1/consent/{DEVICE_B}", device_id=DEVICE_B)["opt_out"]["sale"] is True


def test_the_stream_sample_event_resolves_into_jobs(pipe: Pipeline) -> None:
    # Given the canonical stream batch in events/ (a webform opt-out by email and device)
    batch = load_event("stream_event_inserted.json")
    request_id = batch["Records"][0]["dynamodb"]["NewImage"]["request_id"]["S"]
    # When the resolver handler receives it
    assert pipe.resolve(batch["Records"]) == {"batchItemFailures": []}
    # Then every system gets a job, and the device reads as opted out
    assert set(jobs_of(pipe, request_id)) == EMAIL_SYSTEMS | DEVICE_SYSTEMS
    device = "3f1c2a9e-8b7d-4c1e-9f00-1a2b3c4d5e6f"
    opt_out = pipe.get(f"/v1/consent/{device}", device_id=device)["opt_out"]
    assert all(opt_out[p] for p in ("sale", "share", "targeted_advertising", "profiling"))
