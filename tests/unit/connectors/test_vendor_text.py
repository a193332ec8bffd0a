"""Vendor text a receipt keeps (references, notes, errors) carries no identifier value and has
a bound (review s12-pii 1, 2, 4): a receiver or vendor that echoes what it was sent, or answers
with any text at all, puts neither the person's values nor 400 KB on the job item."""

import json
import string
from collections.abc import Callable
from typing import Any

import pytest

from local.sandbox.server import SandboxServer
from local.sandbox.wire import SandboxRequest, SandboxResponse, json_response
from optout.connectors.base import (
    DROPPED_REFERENCE,
    REASON_CODE_MAX,
    Submitted,
    reason_code,
    reference,
)
from optout.connectors.errors import REASON_MAX, DeliveryError
from optout.connectors.google_ads import _verdict
from optout.connectors.salesforce import Person
from optout.identifiers import Identifier
from tests.unit.connectors.conftest import make_connector, make_job

EMAIL = "zqecho1@example.com"
PHONE = "+12025550149"
CUSTOMER = "zqcust-4411"
DEVICE = "123e4567-e89b-12d3-a456-426614174000"
VALUES = (EMAIL, PHONE, "12025550149", CUSTOMER)
IDENTIFIERS = (Identifier("email", EMAIL), Identifier("phone", PHONE),
               Identifier("customer_id", CUSTOMER), Identifier("device_id", DEVICE))  # fmt: skip


def answering(server: SandboxServer, vendor: str, answer: Callable[[SandboxRequest], Any]) -> None:
    """The vendor's sandbox answers `answer(request)` (a SandboxResponse as is, else as JSON)."""

    def handle(request: SandboxRequest) -> SandboxResponse:
        given = answer(request)
        return given if isinstance(given, SandboxResponse) else json_response(200, given)

    server.sandboxes[vendor].vendor.handle = handle  # type: ignore[method-assign]


def rewriting(server: SandboxServer, vendor: str, change: Callable[[Any], Any]) -> None:
    """The vendor's sandbox answers as usual, with its JSON body passed through `change`."""
    original = server.sandboxes[vendor].vendor.handle

    def handle(request: SandboxRequest) -> SandboxResponse:
        answer = original(request)
        return json_response(answer.status, change(json.loads(answer.body)), answer.headers)

    server.sandboxes[vendor].vendor.handle = handle  # type: ignore[method-assign]


def no_values(text: object) -> bool:
    lowered = repr(text).lower()
    return not any(v.lower() in lowered for v in VALUES)


def echo_job() -> Any:
    return make_job(("email", EMAIL), ("phone", PHONE), ("customer_id", CUSTOMER),
                    system="webhook")  # fmt: skip


# -- 1. references ------------------------------------------------------------------------


def test_webhook_reference_echoing_the_identifiers_is_dropped_with_a_note(server):
    # Given a receiver (unhashed) that echoes what it got, as the review's echo receiver did
    def echo(request: SandboxRequest) -> Any:
        values = [i["value"] for i in json.loads(request.body)["identifiers"]]
        return {"reference": "applied for " + ",".join(values)}

    answering(server, "webhook", echo)

    (outcome,) = make_connector(server, "webhook", hashing="none").deliver([echo_job()])

    # Then the opt-out is done, and the receipt keeps no reference (the old one kept the text)
    assert (outcome.status, outcome.vendor_ref) == ("done", None)
    assert outcome.note == DROPPED_REFERENCE == "reference not kept: not a reference"
    assert no_values(outcome)


@pytest.mark.parametrize(
    "header",
    [f"rx-{CUSTOMER}", f"RX-{CUSTOMER.upper()}", "12025550149", "ref-12025550149"],
)
def test_webhook_x_request_id_holding_an_identifier_is_dropped(server, header):
    answering(server, "webhook", lambda _: json_response(200, {}, {"X-Request-Id": header}))

    (outcome,) = make_connector(server, "webhook", hashing="none").deliver([echo_job()])

    assert (outcome.status, outcome.vendor_ref, outcome.note) == ("done", None, DROPPED_REFERENCE)


def test_webhook_reference_holding_the_sha256_it_was_sent_is_dropped(server):
    def echo(request: SandboxRequest) -> Any:
        return {"reference": "h-" + json.loads(request.body)["identifiers"][0]["value"][:64]}

    answering(server, "webhook", echo)

    (outcome,) = make_connector(server, "webhook").deliver([echo_job()])

    assert (outcome.vendor_ref, outcome.note) == (None, DROPPED_REFERENCE)


def test_webhook_no_record_answer_with_an_echoed_reference_keeps_both_notes(server):
    answering(server, "webhook", lambda _: {"result": "no_record", "reference": f"x {EMAIL}"})

    (outcome,) = make_connector(server, "webhook", hashing="none").deliver([echo_job()])

    assert (outcome.status, outcome.vendor_ref) == ("no_record", None)
    assert outcome.note == f"no such person (receiver); {DROPPED_REFERENCE}"


@pytest.mark.parametrize("ref", ["wh_1", DEVICE, "rx:2026-11-30.0001", "9778993"])
def test_webhook_reference_shaped_references_are_kept(server, ref):
    answering(server, "webhook", lambda _: json_response(200, {}, {"X-Request-Id": ref}))
    job = make_job(("email", "other@example.com"), system="webhook")

    (outcome,) = make_connector(server, "webhook").deliver([job])

    assert (outcome.status, outcome.vendor_ref, outcome.note) == ("done", ref, None)


def test_webhook_reference_of_420_000_characters_is_not_kept(server):
    # Given the review's receiver answering a reference far beyond a job item's 400 KB
    answering(server, "webhook", lambda _: {"reference": "r" * 420_000})

    (outcome,) = make_connector(server, "webhook").deliver([echo_job()])

    assert (outcome.status, outcome.vendor_ref, outcome.note) == ("done", None, DROPPED_REFERENCE)


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("wh_1", True),
        ("reg_1", True),
        (DEVICE, True),  # a request id is often a UUID: only the job's own device id is not
        (9778993, True),  # Meta's numeric session id
        (1234567890123456789, True),  # a 64-bit one: longer than any phone
        ("0015g00000N9AbCAAV", True),  # a Salesforce record id
        ("r" * 128, True),
        ("r" * 129, False),
        ("", False),
        (None, False),
        (True, False),
        (f"applied for {EMAIL}", False),  # space and @: not the charset
        (CUSTOMER, False),
        (CUSTOMER.upper(), False),
        (f"x-{CUSTOMER}-y", False),
        (DEVICE.upper(), False),  # the job's device id, any case
        ("12025550149", False),  # the phone's digits
        ("2025550149", False),  # phone-shaped: 10 digits
        ("202-555-0149.1", False),
        ("a,b", False),  # the separator of a job's references
    ],
)
def test_reference_keeps_only_reference_shaped_strings_without_the_jobs_values(given, kept):
    identifiers = IDENTIFIERS if given not in (DEVICE,) else IDENTIFIERS[:3]
    assert (reference(given, identifiers) is not None) is kept


def test_reference_finds_a_short_identifier_only_whole():
    # A customer id of three characters inside an unrelated id is chance, not an echo
    short = (Identifier("customer_id", "c42"),)
    assert reference("req-c4217", short) == "req-c4217"
    assert reference("C42", short) is None


def test_reference_finds_an_identifier_of_the_minimum_echo_length_inside_it():
    # Four characters is long enough to be looked for inside a reference (base._ECHO_MIN)
    four = (Identifier("customer_id", "c421"),)
    assert reference("req-C4217", four) is None
    assert reference("req-c4217", (Identifier("customer_id", "c42"),)) == "req-c4217"


def test_reference_drops_a_15_digit_number_as_phone_shaped_and_keeps_a_16_digit_one():
    # E.164 allows 15 digits: a longer run is a generated id (Meta's session ids run to 16+)
    assert reference("442071838750123") is None
    assert reference("4420718387501234") == "4420718387501234"
    assert reference("44 2071 838750123".replace(" ", "-")) is None


def test_reference_looks_for_the_bare_digits_of_a_phone_only():
    # A phone comes back as its digits ("12025550149"); the digits of a customer id or an
    # email are no value of the person's: a reference holding them is kept
    others = (Identifier("customer_id", "zqcust-4411"), Identifier("email", "jo2025@example.com"))
    assert reference("rx-4411-2025", others) == "rx-4411-2025"
    assert reference("rx-4411-2025", (Identifier("phone", "+14411202551"),)) == "rx-4411-2025"
    assert reference("rx-14411202551", (Identifier("phone", "+14411202551"),)) is None


def test_reference_may_use_every_character_of_its_charset():
    # The charset bounds what a reference may hold, not how much of it a reference may use
    every = string.ascii_letters + string.digits + "._:-"
    assert reference(every, IDENTIFIERS) == every


def test_segment_regulate_id_echoing_the_subject_is_not_used_as_a_reference(server):
    # Given a Segment answer whose regulateId is the subject id it was sent
    answering(server, "segment", lambda _: {"data": {"regulateId": CUSTOMER}})
    job = make_job(("customer_id", CUSTOMER), system="segment")

    (outcome,) = make_connector(server, "segment", options={"mode": "regulation"}).deliver([job])

    # Then it is an answer without a usable regulateId: retried, nothing kept
    assert (outcome.status, outcome.vendor_ref) == (None, None)
    assert outcome.error.reason == "segment regulation: answer without regulateId"
    assert outcome.error.retryable is True


def test_google_request_id_echoing_nothing_usable_is_not_used(server):
    rewriting(server, "google_ads",
              lambda body: {**body, "requestId": "id with spaces"} if "requestId" in body
              else body)  # fmt: skip
    job = make_job(("email", EMAIL), system="google_ads")

    (outcome,) = make_connector(server, "google_ads").deliver([job])

    assert outcome.status is None and outcome.vendor_ref is None
    assert outcome.error.reason == "google_ads remove: answer without requestId"


def test_meta_session_id_echoing_the_phone_is_dropped_with_a_note(server):
    rewriting(server, "meta", lambda body: {**body, "session_id": 12025550149})
    job = make_job(("phone", PHONE), system="meta")

    (outcome,) = make_connector(server, "meta").deliver([job])

    assert (outcome.status, outcome.vendor_ref, outcome.note) == ("done", None, DROPPED_REFERENCE)


def test_meta_session_id_is_kept_without_a_note(server):
    rewriting(server, "meta", lambda body: {**body, "session_id": 9778993})
    job = make_job(("phone", PHONE), system="meta")

    (outcome,) = make_connector(server, "meta").deliver([job])

    assert (outcome.status, outcome.vendor_ref, outcome.note) == ("done", "9778993", None)


def test_salesforce_keeps_only_reference_shaped_record_ids(server):
    # Given records Salesforce answered for the person, one of whose ids is not an id
    # (a gateway's text): the receipt is judged from them (SalesforceConnector._outcome)
    job = make_job(("email", EMAIL), system="salesforce")
    odd = f"x {EMAIL}"
    people = {EMAIL: [
        Person("Contact", "0035g00000AbCdEAAZ", EMAIL, "Doe", "0PK5g00000AbCdEAAZ",
               changed=["Individual/0PK5g00000AbCdEAAZ"], opted_out=True),
        Person("Lead", odd, EMAIL, "Doe", odd, changed=[f"Lead/{odd}", f"Individual/{odd}"],
               opted_out=True),
    ]}  # fmt: skip

    outcome = make_connector(server, "salesforce")._outcome(job, people)

    # Then only the ids are kept, and the note says a reference was dropped
    assert outcome.status == "done" and outcome.vendor_ref == "0PK5g00000AbCdEAAZ"
    assert outcome.records_changed == ("Individual/0PK5g00000AbCdEAAZ",)
    assert outcome.note == DROPPED_REFERENCE and no_values(outcome)


# -- 2. bounds ----------------------------------------------------------------------------


def test_delivery_error_reason_is_bounded():
    error = DeliveryError("x" * 420_000, retryable=False)

    assert len(error.reason) == len(str(error)) == REASON_MAX == 200
    assert error.reason.endswith("…")


# -- 4. vendor codes ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "code",
    [
        "InvalidUserId",  # TTD
        "ItemDeserializationError",
        "optout",  # UID2
        "invalid identifier",
        "1713230",  # Meta subcode
        "FAILED",  # Segment
        "PROCESSING_ERROR_REASON_DESTINATION_ACCOUNT_ENHANCED_CONVERSIONS_TERMS_NOT_SIGNED",
        "INSUFFICIENT_ACCESS_ON_CROSS_REFERENCE_ENTITY",  # Salesforce
        "UNKNOWN_ERROR",
    ],
)
def test_reason_code_passes_the_codes_vendors_document(code):
    assert reason_code(code)


@pytest.mark.parametrize(
    "text",
    [
        EMAIL,
        PHONE,
        "12025550149",
        "1 202 555 0149",
        "phone 202.555.0149",
        "+4930123456",  # + and 7+ digits
        "4111111111111111",  # 10+ digits: an account or card number
        DEVICE,
        f"device {DEVICE.upper()}",
        "x" * 97,
        "",
    ],
)
def test_reason_code_refuses_identifier_shaped_text(text):
    assert not reason_code(text)


def test_trade_desk_never_quotes_an_operators_free_text_reason(server, monkeypatch):
    # Given a UID2 operator whose unmapped reason quotes the person
    vendor = server.sandboxes["uid2"].vendor
    monkeypatch.setattr(vendor, "_map", lambda hashed: {"e": f"{EMAIL} opted out"})
    job = make_job(("email", EMAIL), system="trade_desk")

    (outcome,) = make_connector(server, "trade_desk").deliver([job])

    # Then nothing quotes it (the old note did); and since vendor35 a reason that is not one
    # of the two the operator documents is no verdict: retried, not a no_record receipt
    assert (outcome.status, outcome.error.retryable) == (None, True)
    assert EMAIL not in repr(outcome)


def test_segment_status_that_is_not_a_code_is_not_quoted(server):
    connector = make_connector(server, "segment", options={"mode": "regulation"})
    (outcome,) = connector.deliver([make_job(("customer_id", CUSTOMER), system="segment")])
    rewriting(server, "segment", lambda body: {"data": {"regulation": {
        "overallStatus": f"refused for {CUSTOMER} 12025550149"}}})  # fmt: skip

    (verdict,) = connector.confirm([Submitted(outcome.job_id, outcome.vendor_ref or "")])

    assert verdict.error.reason == "segment regulation: unrecognised status"


def test_google_reasons_and_statuses_that_are_not_codes_are_not_quoted():
    answer = {"requestStatusPerDestination": [
        {"requestStatus": "FAILED", "errorInfo": {"errorCounts": [
            {"reason": f"user {EMAIL}"}, {"reason": "PROCESSING_ERROR_REASON_INVALID_KEK"}]}},
        {"requestStatus": f"FAILED for {PHONE}"},
    ]}  # fmt: skip

    assert _verdict(answer) == (
        None, "FAILED/unrecognised status (PROCESSING_ERROR_REASON_INVALID_KEK)"
    )  # fmt: skip


def test_salesforce_status_code_that_is_not_a_code_is_not_quoted(server):
    # Given Salesforce refusing the opt-out write with a "code" that quotes the person
    def change(body: Any) -> Any:
        if isinstance(body, list):  # sObject Collections answers
            return [{"success": False, "errors": [{"statusCode": f"BAD {EMAIL}"}]}
                    for _ in body]  # fmt: skip
        return body

    rewriting(server, "salesforce", change)
    job = make_job(("email", "jane@example.com"), system="salesforce")

    (outcome,) = make_connector(server, "salesforce").deliver([job])

    assert outcome.status is None
    assert "UNKNOWN_ERROR" in outcome.error.reason and EMAIL not in outcome.error.reason


# Review s17 PII L1: a vendor "code" that is the person's own customer id passed (it has no
# identifier shape) and went onto the receipt and the worker's log line.
@pytest.mark.parametrize("text", ["CUST-CANARY-77", "unknown external_id CUST-CANARY-77"])
def test_reason_code_refuses_a_code_holding_one_of_the_jobs_values(text):
    job = make_job(("customer_id", "CUST-CANARY-77"), system="webhook")
    assert reason_code(text)  # no shape to refuse it by
    assert not reason_code(text, job.identifiers)
    assert reason_code("INVALID_FIELD", job.identifiers)


def test_an_item_rejected_with_the_persons_customer_id_as_its_code_is_noted_without_it(server):
    job = make_job(("customer_id", "CUST-CANARY-77"), system="braze")
    connector = make_connector(server, "braze")
    owner = [(job.job_id, "customer_id")]

    (outcome,) = connector.item_outcomes([job], owner, {0: "CUST-CANARY-77"}, 201, "rejected")

    assert outcome.note == "customer_id rejected"
    (kept,) = connector.item_outcomes([job], owner, {0: "InvalidUserId"}, 201, "rejected")
    assert kept.note == "customer_id rejected: InvalidUserId"


def test_an_item_index_outside_the_batch_rejects_nothing(server):
    # A vendor's rejection naming an item the call did not carry is not one of the job's
    job = make_job(("customer_id", "c1"), system="braze")
    connector = make_connector(server, "braze")
    owner = [(job.job_id, "customer_id")]

    for index in (1, -1):
        (outcome,) = connector.item_outcomes([job], owner, {index: "InvalidUserId"}, 201, "x")
        assert (outcome.status, outcome.identifier_types_sent) == ("done", ("customer_id",))
        assert outcome.note is None


def test_reason_code_is_kept_up_to_its_length_limit_and_no_further():
    assert reason_code("2")  # Meta's error code 2 (service temporarily unavailable)
    assert reason_code("E" * REASON_CODE_MAX)
    assert not reason_code("E" * (REASON_CODE_MAX + 1))


def test_a_job_none_of_whose_values_was_sent_fails_as_nothing_accepted(server):
    # Given a job whose only value was dropped before the call (no item of it was sent)
    job = make_job(("customer_id", "c1"), system="braze")
    connector = make_connector(server, "braze")
    dropped = {job.job_id: {"customer_id": "no_profile"}}

    (outcome,) = connector.item_outcomes([job], [], {}, 201, "refused", dropped)

    # Then it fails as nothing accepted (the vendor refused nothing), naming the drop
    assert outcome.status is None and not outcome.error.retryable
    assert outcome.error.reason == "braze: no identifier type accepted"
    assert outcome.identifier_types_rejected == ("customer_id",)
    assert outcome.note == "customer_id not sent: no_profile"


@pytest.mark.parametrize("answer", [{}, {"requestStatusPerDestination": []}, [], None])
def test_google_status_answer_without_destinations_is_never_done(answer):
    # No destination's status to read is no verdict: ask again later, never a done receipt
    with pytest.raises(DeliveryError) as raised:
        _verdict(answer)
    assert raised.value.retryable
