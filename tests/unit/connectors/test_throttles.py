"""Vendors that throttle with something other than `429 + Retry-After` (checked 2026-12-01,
docs/vendors.md): Salesforce's 403 REQUEST_LIMIT_EXCEEDED, Meta's 400 rate-limit codes and
Braze's X-RateLimit-* headers are retried (the job stays `pending`), with the wait each vendor
gives; every other refusal of theirs stays final."""

import json
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

import pytest

from local.sandbox.wire import SandboxResponse
from optout.connectors.errors import DeliveryError
from optout.connectors.http import HttpClient, HttpResponse, asked_wait
from optout.connectors.meta import AccountCheck, regain_access_seconds
from optout.connectors.salesforce import DAILY_LIMIT_WAIT_SECONDS, limit_error
from tests.unit.connectors.conftest import EMAIL_NORMALISED, calls, make_connector, make_job

JOB = make_job(("email", EMAIL_NORMALISED), ("phone", "+14155550123"),
               ("customer_id", "cust-42"))  # fmt: skip
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
SF_LIMIT = [{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}]


def throttle_second_call(server: Any, vendor: str, retry_after: int | None) -> None:
    """The vendor's throttle answer on its second call: Salesforce's first is its OAuth token
    (not an API call, no API limit), so the lookup meets the limit."""
    spec = {"rate": 0.5, "status": 429, "retry_after": retry_after}
    server.sandboxes[vendor].set_fault_spec(spec)


# -- Salesforce ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("retry_after", "wait"),
    [(3600, DAILY_LIMIT_WAIT_SECONDS),  # daily allocation spent: an hour
     (2, None)],  # concurrent requests limit (calls left today): the queue's back-off
)  # fmt: skip
def test_salesforce_over_its_api_limit_is_retried_not_failed(server, retry_after, wait):
    # Given an org answering 403 REQUEST_LIMIT_EXCEEDED to the lookup
    throttle_second_call(server, "salesforce", retry_after)
    # When a job is delivered
    (outcome,) = make_connector(server, "salesforce").deliver([JOB])
    # Then it is retried (pending, not failed), after an hour when the day's calls are spent
    assert [c["status"] for c in server.sandboxes["salesforce"].recorded()] == [200, 403]
    assert outcome.status is None
    assert outcome.error.retryable
    assert (outcome.error.http_status, outcome.error.retry_after) == (403, wait)
    assert "REQUEST_LIMIT_EXCEEDED" in outcome.error.reason


def test_salesforce_s_other_403s_stay_final(server):
    server.sandboxes["salesforce"].set_faults(0.5, 403)  # the lookup refused, no limit code

    (outcome,) = make_connector(server, "salesforce").deliver([JOB])

    assert outcome.status is None
    assert not outcome.error.retryable
    assert outcome.error.http_status == 403


@pytest.mark.parametrize(
    ("status", "body", "limit_info", "wait"),
    [(403, SF_LIMIT, "", DAILY_LIMIT_WAIT_SECONDS),  # no usage header: assume the day's limit
     (403, SF_LIMIT, "api-usage=15000/15000", DAILY_LIMIT_WAIT_SECONDS),
     (403, SF_LIMIT, "api-usage=120/15000", None),
     (403, [{"message": "no", "errorCode": "INSUFFICIENT_ACCESS_OR_READONLY"}], "", "final"),
     (403, {"errorCode": "REQUEST_LIMIT_EXCEEDED"}, "", "final"),  # not Salesforce's list
     (400, SF_LIMIT, "", "final")],
)  # fmt: skip
def test_salesforce_limit_error_reads_the_code_and_the_usage(status, body, limit_info, wait):
    headers = {"sforce-limit-info": limit_info} if limit_info else {}
    error = limit_error(
        "salesforce lookup", HttpResponse(status, headers, json.dumps(body).encode())
    )
    if wait == "final":
        assert error is None
    else:
        assert error is not None and error.retryable
        assert error.retry_after == wait


# -- Meta --------------------------------------------------------------------------------


@pytest.mark.parametrize(("retry_after", "wait"), [(2, None), (600, 600.0)])
def test_meta_s_ad_account_throttle_is_retried_after_the_time_meta_gives(server, retry_after, wait):
    # Given Meta answering 400 code 80004 ("too many calls to this ad-account"), with
    # X-Business-Use-Case-Usage giving the whole minutes to wait (0 under a minute)
    server.sandboxes["meta"].set_fault_spec({"rate": 1, "status": 429, "retry_after": retry_after})
    # When a job is delivered
    (outcome,) = make_connector(server, "meta").deliver([JOB])
    # Then it is retried, after Meta's estimate when it gives one
    assert outcome.status is None
    assert outcome.error.retryable
    assert (outcome.error.http_status, outcome.error.retry_after) == (400, wait)
    assert "code 80004" in outcome.error.reason


class Answering(HttpClient):
    """An HttpClient whose every call gets one fixed answer (no network)."""

    def __init__(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        super().__init__(2.0)
        self.answer = HttpResponse(status, headers or {}, json.dumps(payload).encode())

    def _once(self, *args: Any) -> HttpResponse:
        return self.answer


def meta_checked(server: Any) -> Any:
    """A Meta connector whose ad account the sandbox has already answered as usable (its
    check_account is kept an hour), so a stub's answer reaches the removals only."""
    connector = make_connector(server, "meta")
    assert connector.check_account() == AccountCheck()
    return connector


def meta_answering(server: Any, status: int, error: dict[str, Any]) -> Any:
    connector = meta_checked(server)
    connector.http = Answering(status, {"error": {"message": "m", "type": "T", **error}})
    return connector


@pytest.mark.parametrize(
    "error",
    [{"code": 80000}, {"code": 80003}, {"code": 80014}, {"code": 17}, {"code": 613},
     {"code": 2, "is_transient": True}],
)  # fmt: skip
def test_meta_s_rate_limit_codes_and_transient_errors_are_retried(server, error):
    (outcome,) = meta_answering(server, 400, error).deliver([JOB])

    assert outcome.status is None
    assert outcome.error.retryable, outcome.error.reason


def test_meta_s_application_limit_reached_341_is_retried(server):
    # 341 "Application limit reached": a throttle in Meta's own Graph SDK for PHP (5.x
    # FacebookResponseException) beside 4, 17, 32 and 613 (review s34 vendor34, 2026-12-04)
    (outcome,) = meta_answering(server, 400, {"code": 341}).deliver([JOB])

    assert outcome.status is None
    assert outcome.error.retryable, outcome.error.reason
    assert outcome.error.reason == "meta remove EMAIL_SHA256: throttled (code 341, HTTP 400)"


def meta_answering_with(server: Any, status: int, error: dict[str, Any],
                        headers: dict[str, str]) -> Any:  # fmt: skip
    connector = meta_checked(server)
    connector.http = Answering(status, {"error": {"message": "m", "type": "T", **error}}, headers)
    return connector


APP_USAGE = {"x-app-usage": '{"call_count": 100, "total_cputime": 20, "total_time": 25}'}


@pytest.mark.parametrize(
    ("status", "error", "headers"),
    [(429, {"code": 4}, {}),  # at 400 or 429 the code decides
     (403, {"code": 4}, APP_USAGE),  # elsewhere a usage header says Meta is counting calls
     (403, {"code": 17}, {"x-ad-account-usage": '{"acc_id_util_pct": 100}'}),
     (403, {"code": 4, "is_transient": True}, {})],  # or Meta calls it transient
)  # fmt: skip
def test_meta_s_rate_limit_code_is_a_throttle_at_400_or_429_or_beside_a_usage_header(
    server, status, error, headers
):
    # Meta has answered code 4 with an HTTP 403 (facebook/facebook-android-sdk issue 582)
    (outcome,) = meta_answering_with(server, status, error, headers).deliver([JOB])

    assert outcome.error.retryable, outcome.error.reason
    code = error["code"]
    assert (
        outcome.error.reason == f"meta remove EMAIL_SHA256: throttled (code {code}, HTTP {status})"
    )


def test_meta_s_code_4_at_a_403_with_no_usage_header_is_a_refusal_not_a_throttle(server):
    # A permission problem dressed as code 4 (review s34 L2): final, as a 403 was before
    (outcome,) = meta_answering(server, 403, {"code": 4}).deliver([JOB])

    assert not outcome.error.retryable
    assert outcome.error.reason == "meta remove EMAIL_SHA256: HTTP 403 (code 4)"


def test_meta_s_429_with_a_throttle_code_keeps_its_retry_after(server):
    # Reading throttle codes at a 429 must not cost it the wait it asks (review s34 L1)
    connector = meta_answering_with(server, 429, {"code": 4}, {"retry-after": "120"})

    (outcome,) = connector.deliver([JOB])

    assert outcome.error.retryable
    assert outcome.error.retry_after == 120


def test_meta_s_own_regain_estimate_wins_over_a_retry_after(server):
    usage = json.dumps({"1": [{"type": "ads_management", "estimated_time_to_regain_access": 5}]})
    connector = meta_answering_with(
        server, 429, {"code": 80004}, {"retry-after": "120", "x-business-use-case-usage": usage}
    )

    (outcome,) = connector.deliver([JOB])

    assert outcome.error.retry_after == 300


def test_meta_ad_account_read_refused_with_a_throttle_403_and_a_usage_header_is_retried(server):
    # the account check treats a throttle as "ask again later", not as an unreadable account
    connector = make_connector(server, "meta")
    connector.http = Answering(403, {"error": {"message": "m", "type": "T", "code": 17}}, APP_USAGE)

    with pytest.raises(DeliveryError) as raised:
        connector.check_account()

    assert raised.value.retryable and "throttled (code 17, HTTP 403)" in raised.value.reason


def test_meta_ad_account_read_refused_with_code_4_at_a_bare_403_is_unread_and_removals_go(server):
    # As before session 34: the read is `unread`, and the removals are sent unchecked
    connector = make_connector(server, "meta")
    connector.http = Answering(403, {"error": {"message": "m", "type": "T", "code": 4}})

    check = connector.check_account()

    assert check.unread == "meta ad account not checked: meta ad account: HTTP 403 (code 4)"


@pytest.mark.parametrize(
    "error",
    [{"code": 100}, {"code": 80015}, {"code": 79999}, {"code": "80004"}, {"code": 368},
     {"code": 100, "is_transient": False}],
)  # fmt: skip
def test_meta_s_other_400s_stay_final(server, error):
    (outcome,) = meta_answering(server, 400, error).deliver([JOB])

    assert outcome.status is None
    assert not outcome.error.retryable


def test_meta_s_refused_token_is_a_credential_failure_on_a_400_too(server):
    # Meta answers an invalid or expired token (code 190) with HTTP 400: still a credential
    # refusal (auth: the worker reloads the secret), not an ordinary final 400
    (outcome,) = meta_answering(server, 400, {"code": 190}).deliver([JOB])

    assert (outcome.error.auth, outcome.error.retryable) == (True, False)
    assert outcome.error.reason == "meta remove EMAIL_SHA256: access token refused (code 190)"


def test_meta_s_error_without_numbers_adds_none_to_the_reason(server):
    (outcome,) = meta_answering(server, 400, {}).deliver([JOB])

    assert outcome.error.reason == "meta remove EMAIL_SHA256: HTTP 400"


def test_meta_s_300_is_not_an_accepted_removal(server):
    connector = meta_checked(server)
    connector.http = Answering(300, {"session_id": 1})

    (outcome,) = connector.deliver([JOB])

    assert outcome.status is None and outcome.error.http_status == 300


def test_meta_answer_without_a_session_id_is_done_with_no_reference(server):
    # Meta counted each call's one hash as received, and named no session
    connector = meta_checked(server)
    connector.http = Answering(202, {"num_received": 1, "num_invalid_entries": 0})

    (outcome,) = connector.deliver([JOB])

    assert (outcome.status, outcome.vendor_ref, outcome.note) == ("done", None, None)
    assert outcome.http_status == 202  # the receipt keeps the status Meta answered


REGAIN = "estimated_time_to_regain_access"


@pytest.mark.parametrize(
    ("header", "wait"),
    [('{"1": [{"type": "ads_management", "estimated_time_to_regain_access": 7}]}', 420.0),
     (json.dumps({"1": [{REGAIN: 2}], "2": [{REGAIN: 1}, {REGAIN: 5}]}), 300.0),
     ('{"1": [{"estimated_time_to_regain_access": 0}]}', None),
     ('{"1": [{"estimated_time_to_regain_access": 1}]}', 60.0),  # the shortest block
     ('{"1": [{"estimated_time_to_regain_access": "7"}]}', None),
     ("not json", None), ("[]", None), (None, None)],
)  # fmt: skip
def test_meta_s_regain_access_estimate_is_minutes(header, wait):
    assert regain_access_seconds({"x-business-use-case-usage": header} if header else {}) == wait


# -- Braze, and any 429 with X-RateLimit-* -----------------------------------------------


@pytest.mark.parametrize(("retry_after", "wait"), [(2, 2.0), (None, None)])
def test_braze_s_429_is_retried_after_its_x_ratelimit_retry_after(server, retry_after, wait):
    # Given Braze answering 429 with X-RateLimit-Retry-After / -Reset, no Retry-After
    server.sandboxes["braze"].set_fault_spec({"rate": 1, "status": 429, "retry_after": retry_after})

    (outcome,) = make_connector(server, "braze").deliver([JOB])

    assert outcome.error.retryable
    assert (outcome.error.http_status, outcome.error.retry_after) == (429, wait)


EPOCH_NOW = int(NOW.timestamp())


@pytest.mark.parametrize(
    ("status", "headers", "wait"),
    [(429, {"retry-after": "5", "x-ratelimit-retry-after": "60"}, 5.0),  # Retry-After first
     (429, {"x-ratelimit-retry-after": "60", "x-ratelimit-reset": str(EPOCH_NOW + 9)}, 60.0),
     (429, {"x-ratelimit-reset": str(EPOCH_NOW + 90)}, 90.0),  # epoch seconds
     (429, {"x-ratelimit-reset": "30"}, 30.0),  # seconds from now
     (429, {"x-ratelimit-reset": str(EPOCH_NOW - 5)}, None),  # past: no wait asked (F3)
     (429, {"x-ratelimit-reset": "soon"}, None),
     (503, {"x-ratelimit-reset": str(EPOCH_NOW + 90)}, None),  # an outage, not a rate limit
     (503, {"retry-after": "7"}, 7.0)],
)  # fmt: skip
def test_the_wait_asked_reads_rate_limit_headers_only_on_a_429(status, headers, wait):
    assert asked_wait(HttpResponse(status, headers, b""), NOW) == wait


def quota(remaining: str | None, reset: str) -> dict[str, str]:
    headers = {"x-regulation-ratelimit-quota-reset": reset}
    if remaining is not None:
        headers["x-regulation-ratelimit-remaining"] = remaining
    return headers


@pytest.mark.parametrize(
    ("status", "headers", "wait"),
    [(429, quota("0", "2026-12-01T13:00:00.000Z"), 3600.0),  # Segment's example form
     (429, quota("0", "2026-12-01T12:00:30+00:00"), 30.0),
     (429, quota("0", "2026-12-01T12:00:30"), 30.0),  # no zone: UTC
     (429, quota("0", "2026-12-01T11:00:00Z"), None),  # past: no wait asked (F3)
     (429, quota("0", "2026-12-01T12:00:00Z"), None),  # not ahead: no wait asked
     (429, quota("0", "tomorrow"), None),
     (429, quota("3", "2026-12-01T13:00:00Z"), None),  # quota left: another limit's 429
     (429, quota(None, "2026-12-01T13:00:00Z"), None),
     (429, {**quota("0", "2026-12-01T13:00:00Z"), "retry-after": "5"}, 5.0),
     (503, quota("0", "2026-12-01T13:00:00Z"), None)],
)  # fmt: skip
def test_a_spent_segment_regulation_quota_is_waited_until_its_reset(status, headers, wait):
    # Segment Public API, createWorkspaceRegulation, "Rate limit headers":
    # X-Regulation-RateLimit-Remaining and -Quota-Reset, "ISO 8601 timestamp for when the
    # quota resets (e.g., 2024-12-31T23:59:59.000Z)"; the queue bounds the wait (retry_delay)
    assert asked_wait(HttpResponse(status, headers, b""), NOW) == wait


def test_segment_regulation_429_with_its_quota_spent_waits_until_the_reset(server):
    # Given Segment's /regulations answering 429 with its quota spent, resetting in 3 hours
    reset = datetime.fromtimestamp(datetime.now(UTC).timestamp() + 3 * 3600, UTC)
    headers = quota("0", reset.isoformat(timespec="milliseconds").replace("+00:00", "Z"))
    server.sandboxes["segment"].vendor.handle = lambda request: SandboxResponse(
        429, {"content-type": "application/json", **headers}, b'{"errors": []}'
    )
    connector = make_connector(server, "segment", options={"mode": "regulation"})

    (outcome,) = connector.deliver([make_job(("customer_id", "c1"), system="segment")])

    # Then the job is retried at the reset, not on the queue's back-off, with no in-call wait
    assert (outcome.error.http_status, outcome.error.retryable) == (429, True)
    assert 3 * 3600 - 60 < outcome.error.retry_after <= 3 * 3600
    assert len(calls(server, "segment")) == 1


def test_segment_regulation_429_whose_reset_is_past_gets_the_back_off_not_an_instant_retry(
    server,
):
    # Given Segment's /regulations answering 429, quota spent, with a reset time already past
    # (a stale header or another clock: review s24 diff B F3)
    headers = quota("0", "2020-01-01T00:00:00Z")
    server.sandboxes["segment"].vendor.handle = lambda request: SandboxResponse(
        429, {"content-type": "application/json", **headers}, b'{"errors": []}'
    )
    connector = make_connector(server, "segment", options={"mode": "regulation"})

    (outcome,) = connector.deliver([make_job(("customer_id", "c1"), system="segment")])

    # Then no wait was asked (0 s made every in-call and queue retry at once, ~24 calls to
    # retries_exhausted in under a minute): the queue's back-off applies
    assert (outcome.error.http_status, outcome.error.retryable) == (429, True)
    assert outcome.error.retry_after is None


@pytest.mark.parametrize(
    ("headers", "wait"),
    [({"x-ratelimit-reset": "Tue, 01 Dec 2026 12:01:00 GMT"}, 60.0),  # RFC 5322, zone GMT
     ({"x-ratelimit-reset": "Tue, 01 Dec 2026 13:00:30 +0100"}, 30.0),  # a numeric zone
     ({"x-ratelimit-reset": "Tue, 01 Dec 2026 12:00:45 -0000"}, 45.0),  # no zone: UTC
     ({"x-ratelimit-reset": "Tue, 01 Dec 2026 11:59:00 GMT"}, None),  # past: no wait asked
     ({"x-ratelimit-reset": "Tue, 01 Dec 2026 12:00:00 GMT"}, None),  # not ahead
     # both limits spent: the later reset (a retry at the window's meets the quota again)
     ({"x-ratelimit-reset": "Tue, 01 Dec 2026 12:01:00 GMT",
       **quota("0", "2026-12-01T13:00:00Z")}, 3600.0),
     ({"x-ratelimit-reset": "Tue, 01 Dec 2026 12:01:00 GMT",
       **quota("5", "2026-12-01T13:00:00Z")}, 60.0)],  # quota left: the window's
)  # fmt: skip
def test_segment_public_api_window_reset_is_an_rfc_5322_date_waited_until(headers, wait):
    # Segment Public API "Rate Limits" (https://docs.segmentapis.com/tag/Rate-Limits, read
    # 2026-12-02): X-RateLimit-Reset is "a timestamp, in RFC 5322 format" for when a new window
    # begins; read as the regulation quota's reset is (a time not ahead asks no wait)
    assert asked_wait(HttpResponse(429, headers, b""), NOW) == wait


def test_segment_regulation_429_over_the_public_api_window_waits_until_its_reset(server):
    # Given Segment's /regulations answering 429 over the general Public API window, its reset
    # an RFC 5322 date 40 minutes ahead (past the in-call wait), the regulation quota not spent
    reset = format_datetime(datetime.fromtimestamp(datetime.now(UTC).timestamp() + 2400, UTC),
                            usegmt=True)  # fmt: skip
    headers = {"x-ratelimit-reset": reset, "x-ratelimit-remaining": "0",
               **quota("12", "2026-12-31T00:00:00Z")}  # fmt: skip
    server.sandboxes["segment"].vendor.handle = lambda request: SandboxResponse(
        429, {"content-type": "application/json", **headers}, b'{"errors": []}'
    )
    connector = make_connector(server, "segment", options={"mode": "regulation"})

    (outcome,) = connector.deliver([make_job(("customer_id", "c1"), system="segment")])

    # Then the job is retried at the window's reset, not on the queue's back-off
    assert (outcome.error.http_status, outcome.error.retryable) == (429, True)
    assert 2400 - 60 < outcome.error.retry_after <= 2400
    assert len(calls(server, "segment")) == 1


# -- Meta's version upgrade notice (not a throttle, read from the same answers) -----------


def test_meta_s_version_warning_is_logged_once_a_batch_without_its_text(server, caplog):
    # Given Meta running two calls (email, phone) on a newer version than the one configured
    connector = meta_checked(server)
    notice = "The call has been auto-upgraded to v27.0 as v25.0 has been deprecated."
    connector.http = Answering(200, {"session_id": 1}, {"x-ad-api-version-warning": notice})
    # When a batch is delivered
    with caplog.at_level("WARNING", logger="optout.connectors.meta"):
        (outcome,) = connector.deliver([JOB])
    # Then it is done (Meta acted) and one warning names the configured version, not the text
    warnings = [r.getMessage() for r in caplog.records if r.name == "optout.connectors.meta"]
    assert outcome.status == "done"
    assert len(warnings) == 1
    assert "v27.0" in warnings[0] and "api_version" in warnings[0]
    assert notice not in warnings[0] and EMAIL_NORMALISED not in warnings[0]


def test_meta_without_a_version_warning_logs_nothing(server, caplog):
    connector = meta_checked(server)
    connector.http = Answering(200, {"session_id": 1})
    with caplog.at_level("WARNING", logger="optout.connectors.meta"):
        connector.deliver([JOB])
    assert not [r for r in caplog.records if r.name == "optout.connectors.meta"]
