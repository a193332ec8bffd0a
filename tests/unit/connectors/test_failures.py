"""Every connector classifies the vendor's failure answers the same way: a throttle, 5xx and
timeouts are retried (a throttle after the wait the vendor gives), other 4xx and bad
credentials are final (after one re-read of the credentials), and an accepted call is a
receipt only when final. Each sandbox throttles in its vendor's shape (test_throttles.py)."""

from typing import Any

import pytest

from optout.time_budget import TimeBudget
from tests.unit.connectors.conftest import (
    EMAIL_NORMALISED,
    PHONE,
    VENDORS,
    calls,
    make_connector,
    make_job,
    secret_for,
)

JOB = make_job(
    ("email", EMAIL_NORMALISED), ("phone", PHONE), ("customer_id", "cust-42"),
    ("device_id", "dev_0123456789abcdef"),
)  # fmt: skip


# Google works asynchronously: an accepted removal is "submitted", not yet a receipt.
ACCEPTED = {"google_ads": "submitted"}


@pytest.mark.parametrize("vendor", VENDORS)
def test_ok_answer_is_a_done_receipt_unless_the_vendor_works_asynchronously(server, vendor):
    (outcome,) = make_connector(server, vendor).deliver([JOB])

    assert outcome.status == ACCEPTED.get(vendor, "done")
    assert 200 <= outcome.http_status < 300
    assert outcome.identifier_types_sent


# The sandbox's throttle (retry_after 2 s) as each vendor answers it: Meta's HTTP 400 code
# 80004 gives its wait in whole minutes (0 here: the queue's back-off); Braze's 429 gives it in
# X-RateLimit-Retry-After; Salesforce's first call, its OAuth token, is not under the API limit
# and answers 429 with Retry-After (its 403 on API calls: test_throttles.py).
THROTTLED = {"meta": (400, None)}


@pytest.mark.parametrize("vendor", VENDORS)
def test_a_throttle_is_retried_after_the_vendors_wait(server, vendor):
    server.sandboxes[vendor].set_faults(1.0, 429)

    (outcome,) = make_connector(server, vendor).deliver([JOB])

    assert outcome.status is None
    assert outcome.error.retryable
    assert (outcome.error.http_status, outcome.error.retry_after) == THROTTLED.get(
        vendor, (429, 2.0)
    )


@pytest.mark.parametrize("vendor", VENDORS)
def test_500_is_retried_with_backoff(server, vendor):
    server.sandboxes[vendor].set_faults(1.0, 500)

    (outcome,) = make_connector(server, vendor).deliver([JOB])

    assert outcome.error.retryable
    assert outcome.error.http_status == 500
    assert outcome.error.retry_after is None


@pytest.mark.parametrize("vendor", VENDORS)
def test_timeout_is_retried(server, vendor):
    server.sandboxes[vendor].set_faults(1.0, "timeout")

    (outcome,) = make_connector(server, vendor).deliver([JOB])

    assert outcome.error.retryable
    assert outcome.error.http_status is None
    assert "timed out" in outcome.error.reason


@pytest.mark.parametrize("vendor", VENDORS)
def test_400_is_final(server, vendor):
    server.sandboxes[vendor].set_faults(1.0, 400)

    (outcome,) = make_connector(server, vendor).deliver([JOB])

    assert not outcome.error.retryable
    assert outcome.error.http_status == 400


@pytest.mark.parametrize("vendor", VENDORS)
def test_a_failed_send_claims_no_identifier_type_as_sent(server, vendor):
    # Given a vendor that refuses every call (a first call refused stops the rest)
    server.sandboxes[vendor].set_faults(1.0, 400)
    # When a job with every identifier type fails
    (outcome,) = make_connector(server, vendor).deliver([JOB])
    # Then its receipt names the types it tried, and none as sent
    assert outcome.identifier_types_sent == ()
    assert outcome.identifier_types_attempted


def wrong(vendor: str) -> dict[str, Any]:
    secret = {key: "wrong-" + str(value) for key, value in secret_for(vendor).items()}
    if vendor == "trade_desk":  # still base64, so the refusal is the operator's
        secret["uid2_secret_key"] = secret_for(vendor)["uid2_secret_key"]
    return secret


# Segment's Tracking API (consent mode) answers 200 to any write key, as the sandbox does: only
# its Public API (regulation mode) refuses a credential, so that is the mode tested for it.
REFUSING = {"segment": {"mode": "regulation"}}
REFUSING_ACCEPTED = {"google_ads": "submitted", "segment": "submitted"}


class Rotating:
    """A credentials reader whose cached copy is stale until it is asked to refresh."""

    def __init__(self, stale: dict[str, Any], fresh: dict[str, Any]) -> None:
        self.stale, self.fresh, self.refreshed = stale, fresh, 0

    def __call__(self, refresh: bool = False) -> dict[str, Any]:
        if refresh:
            self.refreshed += 1
            self.stale = self.fresh
        return dict(self.stale)


@pytest.mark.parametrize("vendor", VENDORS)
def test_a_refused_credential_is_re_read_once_and_the_call_repeated(server, vendor):
    # Given a secret rotated at the vendor while our cache still holds the old one
    reader = Rotating(wrong(vendor), secret_for(vendor))

    # When the connector delivers
    connector = make_connector(server, vendor, secret=reader, options=REFUSING.get(vendor))
    (outcome,) = connector.deliver([JOB])

    # Then it re-read the secret exactly once and the delivery went through
    assert reader.refreshed == 1
    assert outcome.status == REFUSING_ACCEPTED.get(vendor, "done"), outcome.error


@pytest.mark.parametrize("vendor", VENDORS)
def test_a_job_with_no_time_left_for_its_first_call_is_not_started(server, vendor):
    connector = make_connector(server, vendor)
    with connector.http.bounded_by(TimeBudget(lambda: 0.0)):
        (outcome,) = connector.deliver([JOB])
    # Nothing reached the vendor: not an attempt, no type claimed as sent or tried
    assert outcome.not_started and outcome.status is None and outcome.error.retryable
    assert (outcome.identifier_types_sent, outcome.identifier_types_attempted) == ((), ())
    assert calls(server, vendor) == []


def test_a_job_out_of_time_after_its_lookup_went_out_is_an_attempt(server):
    # Given time for Braze's lookup call only (the update after it cannot start)
    connector = make_connector(server, "braze")
    budget = TimeBudget(lambda: 10.0 if connector.http.tries_started() == 0 else 0.0)
    with connector.http.bounded_by(budget):
        (outcome,) = connector.deliver([JOB])
    # Then the job counts as attempted (a call of it went out), to be retried
    assert not outcome.not_started and outcome.status is None and outcome.error.retryable
    assert outcome.identifier_types_attempted


def test_a_repeat_after_a_refused_credential_with_no_time_left_is_not_started(server):
    # Given a rotated secret, and time for the first try only
    reader = Rotating(wrong("webhook"), secret_for("webhook"))
    connector = make_connector(server, "webhook", secret=reader)
    budget = TimeBudget(lambda: 10.0 if connector.http.tries_started() == 0 else 0.0)
    # When the refused call is to be repeated with the fresh secret
    with connector.http.bounded_by(budget):
        (outcome,) = connector.deliver([JOB])
    # Then the repeat never went out: not an attempt, the worker tries the job again later
    assert reader.refreshed == 1
    assert outcome.not_started and outcome.error.retryable


@pytest.mark.parametrize("vendor", VENDORS)
def test_rejected_credentials_are_final(server, vendor):
    connector = make_connector(server, vendor, secret=wrong(vendor), options=REFUSING.get(vendor))
    (outcome,) = connector.deliver([JOB])

    assert not outcome.error.retryable and not outcome.not_started  # the repeat went out
    # OAuth token endpoints answer 400 invalid_client/invalid_grant; the others 401.
    expected = 400 if vendor in ("salesforce", "google_ads") else 401
    assert outcome.error.http_status == expected
    assert "wrong-" not in outcome.error.reason


def test_a_job_without_an_identifier_the_system_accepts_is_no_record(server):
    connector = make_connector(server, "meta")

    (outcome,) = connector.deliver([make_job(("customer_id", "cust-42"))])

    assert outcome.status == "no_record"
    assert server.sandboxes["meta"].recorded() == []


@pytest.mark.parametrize("vendor", VENDORS)
def test_a_job_without_any_identifier_fails_and_is_not_no_record(server, vendor):
    # Given a job whose identifier list is empty (nothing to send is not "no such person")
    connector = make_connector(server, vendor, options=REFUSING.get(vendor))

    # When the connector delivers it
    (outcome,) = connector.deliver([make_job()])

    # Then it fails for good, with no vendor call: the operator replay sends it again
    assert outcome.status is None and not outcome.error.retryable
    assert outcome.error.reason == "no identifier to send"
    assert server.sandboxes[vendor].recorded() == []


# What each sandbox's token endpoint answers a wrong secret, as its vendor does: RFC 6749's
# `error` with an `error_description` in words (Salesforce "OAuth 2.0 Authorization Errors").
TOKEN_REFUSED = {"salesforce": "salesforce token: HTTP 400 invalid_client",
                 "google_ads": "google_ads token: HTTP 400 invalid_grant"}  # fmt: skip


@pytest.mark.parametrize("vendor", sorted(TOKEN_REFUSED))
def test_a_token_endpoint_refusal_names_its_oauth_error_code_not_its_words(server, vendor):
    # Given a secret the vendor's token endpoint refuses, before and after the one re-read
    connector = make_connector(server, vendor, secret=wrong(vendor))

    (outcome,) = connector.deliver([JOB])

    # Then the reason names the OAuth `error` code (it has no `errorCode`; review s34 carried
    # low: it said "HTTP 400" only), never `error_description`, and it is final
    assert outcome.status is None
    assert (outcome.error.reason, outcome.error.retryable, outcome.error.reason_class) == (
        TOKEN_REFUSED[vendor], False, "credentials_rejected",
    )  # fmt: skip
