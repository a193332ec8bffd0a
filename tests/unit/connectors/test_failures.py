"""Every connector classifies the vendor's failure answers the same way: 429 and 5xx and
timeouts are retried (429 with its Retry-After), other 4xx and bad credentials are final."""

import pytest

from tests.unit.connectors.conftest import (
    EMAIL_NORMALISED,
    PHONE,
    VENDORS,
    make_connector,
    make_job,
    secret_for,
)

JOB = make_job(
    ("email", EMAIL_NORMALISED), ("phone", PHONE), ("customer_id", "cust-42"),
    ("device_id", "dev_0123456789abcdef"),
)  # fmt: skip


@pytest.mark.parametrize("vendor", VENDORS)
def test_ok_answer_is_a_done_receipt(server, vendor):
    (outcome,) = make_connector(server, vendor).deliver([JOB])

    assert outcome.status == "done"
    assert 200 <= outcome.http_status < 300
    assert outcome.identifier_types_sent


@pytest.mark.parametrize("vendor", VENDORS)
def test_429_is_retried_after_the_vendors_retry_after(server, vendor):
    server.sandboxes[vendor].set_faults(1.0, 429)

    (outcome,) = make_connector(server, vendor).deliver([JOB])

    assert outcome.status is None
    assert outcome.error.retryable
    assert outcome.error.http_status == 429
    assert outcome.error.retry_after == 2.0


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
def test_rejected_credentials_are_final(server, vendor):
    wrong = {key: "wrong-" + str(value) for key, value in secret_for(vendor).items()}

    (outcome,) = make_connector(server, vendor, secret=wrong).deliver([JOB])

    assert not outcome.error.retryable
    # OAuth token endpoints answer 400 invalid_client/invalid_grant; the others 401.
    expected = 400 if vendor in ("salesforce", "google_ads") else 401
    assert outcome.error.http_status == expected
    assert "wrong-" not in outcome.error.reason


def test_a_job_without_an_identifier_the_system_accepts_is_no_record(server):
    connector = make_connector(server, "meta")

    (outcome,) = connector.deliver([make_job(("customer_id", "cust-42"))])

    assert outcome.status == "no_record"
    assert server.sandboxes["meta"].recorded() == []
