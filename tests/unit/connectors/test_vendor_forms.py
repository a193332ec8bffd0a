"""Identifiers with no vendor form (review s21 ident V1, V2). `+tag@gmail.com` is a valid
address of ours, but Google's and UID2's gmail rule leaves it no local part, and both vendors'
own code refuses it (google-ads-datamanager-util's Formatter, uid2-client's
normalize_email_string); a valid E.164 number of under 10 digits has no UID2 (the operator's
isPhoneNumberNormalized). Before, their hashes were sent (`@gmail.com`: one value for every
such address) and the receipt said "done" for a removal that named nobody."""

import hashlib

import pytest

from local.sandbox.server import SandboxServer
from optout.connectors import hashing
from optout.delivery.receipts import receipt_of
from optout.status import vendor_answered
from tests.unit.connectors.conftest import PHONE, calls, make_connector, make_job

NO_LOCAL_PART = "+news@gmail.com"
EMPTY = hashlib.sha256(b"@gmail.com")


@pytest.mark.parametrize("email", [NO_LOCAL_PART, "+a.b@googlemail.com"])
def test_google_has_no_form_for_a_gmail_address_that_is_only_a_tag(email: str) -> None:
    assert not hashing.google_matchable(email)
    assert hashing.google_matchable("j+news@gmail.com")
    assert hashing.google_matchable("+news@example.com")  # no gmail rule: kept whole


def test_uid2_has_no_form_for_a_gmail_address_that_is_only_a_tag() -> None:
    assert not hashing.uid2_matchable(NO_LOCAL_PART)
    assert hashing.uid2_matchable("+news@googlemail.com")  # UID2's rule names gmail.com only


def test_google_sends_the_phone_but_no_hash_of_an_empty_gmail_address(server):
    job = make_job(("email", NO_LOCAL_PART), ("phone", PHONE), system="google_ads")

    (outcome,) = make_connector(server, "google_ads").deliver([job])

    (_token, remove) = calls(server, "google_ads")
    assert EMPTY.hexdigest() not in remove["body"]
    assert hashlib.sha256(PHONE.encode()).hexdigest() in remove["body"]
    # and the receipt names the email as not sent, with why (review s21 diff A3)
    assert outcome.identifier_types_sent == ("phone",)
    assert outcome.identifier_types_rejected == ("email",)
    assert outcome.note is not None and "email not sent: no Google form" in outcome.note


def test_google_job_with_only_an_empty_gmail_address_is_a_no_record_receipt(server):
    job = make_job(("email", NO_LOCAL_PART), system="google_ads")

    (outcome,) = make_connector(server, "google_ads").deliver([job])

    assert outcome.status == "no_record"
    assert calls(server, "google_ads") == []
    # Its note says why nothing was sent, not that the system takes no email (diff A2)
    assert outcome.note == "email not sent: no Google form"
    assert outcome.identifier_types_rejected == ("email",) and outcome.identifier_types_sent == ()
    # and its receipt reads as no answer from the vendor (review s26 counsel F2)
    assert not vendor_answered({"receipt": receipt_of(outcome)})


def test_trade_desk_maps_no_uid2_for_an_empty_gmail_address(server):
    job = make_job(("email", NO_LOCAL_PART), system="trade_desk")

    (outcome,) = make_connector(server, "trade_desk").deliver([job])

    assert outcome.status == "no_record"
    assert calls(server, "uid2") == [] and calls(server, "trade_desk") == []
    assert outcome.note == "email not sent: no UID2 form"
    assert outcome.identifier_types_rejected == ("email",)
    assert not vendor_answered({"receipt": receipt_of(outcome)})


FAROE = "+298211234"  # a valid Faroese mobile: 9 digits in all


def test_uid2_takes_10_to_15_digits_as_its_operator_does() -> None:
    assert not hashing.uid2_phone_matchable(FAROE)
    assert hashing.uid2_phone_matchable(PHONE)


def test_trade_desk_maps_the_email_but_no_uid2_for_a_number_of_under_10_digits(server):
    # Given a job with an email and a valid Faroese number, which the UID2 operator refuses
    job = make_job(("email", "jane@example.com"), ("phone", FAROE), system="trade_desk")

    (outcome,) = make_connector(server, "trade_desk").deliver([job])

    # Then only the email is mapped and opted out
    (mapping,) = calls(server, "uid2")
    assert outcome.status == "done" and outcome.identifier_types_sent == ("email",)
    assert len(calls(server, "trade_desk")) == 1 and mapping["path"] == "/v3/identity/map"
    # and the receipt names the phone as not sent, so it is never proof for it (diff A3)
    assert outcome.identifier_types_rejected == ("phone",)
    assert outcome.note is not None and "phone not sent: no UID2 form" in outcome.note


def test_google_keeps_an_email_sent_beside_one_with_no_google_form_as_sent(server):
    # Given a job with an address Google has no form for and one it has (review s21 diff C1)
    job = make_job(("email", NO_LOCAL_PART), ("email", "jane@example.com"), system="google_ads")

    (outcome,) = make_connector(server, "google_ads").deliver([job])

    # Then jane's hash went, and the receipt says the email type was sent, with a note
    (_token, remove) = calls(server, "google_ads")
    assert hashlib.sha256(b"jane@example.com").hexdigest() in remove["body"]
    assert EMPTY.hexdigest() not in remove["body"]
    assert outcome.identifier_types_sent == ("email",) and outcome.identifier_types_rejected == ()
    assert (
        outcome.note is not None and "email (some values) not sent: no Google form" in outcome.note
    )


def test_a_receipt_names_by_keyed_hash_the_identity_never_sent_beside_one_sent(
    server: SandboxServer,
) -> None:
    # Given a job carrying two people's emails (a backfill step's), one Google has no form of
    job = make_job(("email", "jane@example.com"), ("email", NO_LOCAL_PART), system="google_ads")
    item = {
        "identifiers": [
            {"type": "email", "key": "k-jane", "value": "jane@example.com"},
            {"type": "email", "key": "k-news", "value": NO_LOCAL_PART},
        ]
    }
    # When Google is sent it
    (outcome,) = make_connector(server, "google_ads").deliver([job])
    receipt = receipt_of(outcome, job=item)
    # Then the email type reads sent, and the receipt names the one identity never sent, by
    # its keyed identity, never its value (review s28 P1: no proof for that person's email)
    assert outcome.unformed_at == (1,)
    assert receipt["identifier_types_sent"] == ["email"]
    assert receipt["identities_unformed"] == ["ID#email#k-news"]
    assert NO_LOCAL_PART not in str(receipt)


@pytest.mark.parametrize(
    ("vendor", "unanswered"),
    [("trade_desk", "optout@example.com"),  # the UID2 operator maps no UID2 (opted out)
     ("braze", "unknown-a@example.com")],  # Braze holds no profile of it
)  # fmt: skip
def test_a_receipt_names_the_identity_a_vendors_answer_left_unsent_beside_one_sent(
    server: SandboxServer, vendor: str, unanswered: str
) -> None:
    # Given a job carrying two people's emails, one the vendor's answer leaves unsent
    job = make_job(("email", "u1@example.com"), ("email", unanswered), system=vendor)
    item = {"identifiers": [{"type": "email", "key": "k-u1", "value": "u1@example.com"},
                            {"type": "email", "key": "k-other", "value": unanswered}]}  # fmt: skip
    # When it is delivered
    (outcome,) = make_connector(server, vendor).deliver([job])
    receipt = receipt_of(outcome, job=item)
    # Then the email reads sent, and the receipt names the identity not sent (review s28 P1),
    # apart from those never sent for lack of a form (the public page does not read it)
    assert (outcome.status, outcome.identifier_types_sent) == ("done", ("email",))
    assert (outcome.not_sent_at, outcome.unformed_at) == ((1,), ())
    assert receipt["identities_not_sent"] == ["ID#email#k-other"]
    assert "identities_unformed" not in receipt and unanswered not in str(receipt)


def test_trade_desk_keeps_a_phone_sent_beside_one_with_no_uid2_as_sent(server):
    job = make_job(("phone", FAROE), ("phone", PHONE), system="trade_desk")

    (outcome,) = make_connector(server, "trade_desk").deliver([job])

    assert outcome.status == "done" and outcome.identifier_types_sent == ("phone",)
    assert outcome.identifier_types_rejected == ()
    assert outcome.note is not None and "phone (some values) not sent: no UID2 form" in outcome.note


def test_a_receipt_tells_a_type_never_sent_for_lack_of_a_form_from_one_a_vendor_refused(server):
    # Given jobs whose email has no form the vendor can match (the text decides), and one whose
    # email the UID2 operator answers is opted out of UID2 (the vendor's data decides; the
    # sandbox operator's documented example), each beside a phone the vendor takes
    google = make_job(("email", NO_LOCAL_PART), ("phone", PHONE), system="google_ads")
    alone = make_job(("email", NO_LOCAL_PART), system="google_ads")
    faroe = make_job(("email", "jane@example.com"), ("phone", FAROE), system="trade_desk")
    opted = make_job(("email", "optout@example.com"), ("phone", PHONE), system="trade_desk")

    # When they are delivered and their receipts written
    receipts = {
        name: receipt_of(outcome)
        for name, outcome in [
            ("google", *make_connector(server, "google_ads").deliver([google])),
            ("alone", *make_connector(server, "google_ads").deliver([alone])),
            ("faroe", *make_connector(server, "trade_desk").deliver([faroe])),
            ("opted", *make_connector(server, "trade_desk").deliver([opted])),
        ]
    }

    # Then each refused type is listed, and the receipt says which were never sent for lack
    # of a form: the public page says "in part" for those only (review s27 stranger F2)
    read = {n: (r["identifier_types_rejected"], r["identifier_types_unformed"])
            for n, r in receipts.items()}  # fmt: skip
    assert read == {
        "google": (["email"], ["email"]),
        "alone": (["email"], ["email"]),
        "faroe": (["phone"], ["phone"]),
        "opted": (["email"], []),  # the operator's "opted out": the vendor's answer
    }
    assert receipts["opted"]["identifier_types_sent"] == ["phone"]
