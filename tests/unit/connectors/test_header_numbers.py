"""Numbers read from headers (review s18 time T6): Retry-After, X-RateLimit-Reset and
X-OptOut-Timestamp are whole seconds in ASCII digits of bounded length. str.isdigit() took
'²' (int() then raised ValueError) and 400 digits (a float of inf, which retry_delay's ceil
could not convert), so a vendor's odd header crashed a worker batch, and the reference
receiver answered 500 where 401 was meant."""

import math
import random
from datetime import UTC, datetime

import pytest

from optout.connectors.errors import DeliveryError
from optout.connectors.http import parse_rate_limit_reset, parse_retry_after
from optout.connectors.webhook_signature import SignatureError, sign, verify
from optout.delivery.retry import retry_delay

NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)
ODD = ["²", "٣٠", "1²", "9" * 400, "9" * 5000, "-5", "+5", "1.5", " ", "12 34"]


@pytest.mark.parametrize("value", ODD, ids=lambda v: f"{v[:4]!r}x{len(v)}")
def test_a_retry_after_not_in_ascii_digits_is_not_a_wait(value: str) -> None:
    assert parse_retry_after(value, NOW) is None
    assert parse_rate_limit_reset(value, NOW) is None


def test_ascii_digits_and_http_dates_are_still_read() -> None:
    assert parse_retry_after(" 120 ", NOW) == 120.0
    assert parse_retry_after("Tue, 01 Dec 2026 12:02:00 GMT", NOW) == 120.0
    assert parse_rate_limit_reset("30", NOW) == 30.0
    assert parse_rate_limit_reset(str(int(NOW.timestamp()) + 60), NOW) == 60.0
    assert parse_rate_limit_reset(" 30 ", NOW) == 30.0


def test_a_reset_from_1_000_000_000_on_is_a_time_not_a_delta() -> None:
    # 1_000_000_000 is 2001-09-09 (long past: no wait asked, the back-off applies); one less
    # is a delta of ~31.7 years
    assert parse_rate_limit_reset("1000000000", NOW) is None
    assert parse_rate_limit_reset("999999999", NOW) == 999_999_999.0


@pytest.mark.parametrize(
    ("value", "wait"),
    [("Tue, 01 Dec 2026 11:59:00 GMT", None),  # already past: no wait asked (back-off)
     ("Tue, 01 Dec 2026 12:02:00 -0000", 120.0),  # a date without a zone is read as UTC
     ("Tue, 01 Dec 2026 13:02:00 +0100", 120.0)],  # another zone is converted
)  # fmt: skip
def test_a_retry_after_date_is_read_in_its_zone(value: str, wait: float) -> None:
    assert parse_retry_after(value, NOW) == wait


@pytest.mark.parametrize("asked", [math.inf, 1e300, math.nan])
def test_a_huge_wait_is_clamped_to_the_longest_not_an_overflow(asked: float) -> None:
    error = DeliveryError("throttled", retryable=True, retry_after=asked)
    assert retry_delay(error, 1, 5, 300, random.Random(1), longest=43_200) == 43_200


@pytest.mark.parametrize(
    "timestamp", ["²", "9" * 5000, "٣٠", "", "1.5e9"], ids=lambda v: f"{v[:4]!r}x{len(v)}"
)
def test_the_reference_receiver_refuses_an_odd_timestamp_as_a_bad_signature(
    timestamp: str,
) -> None:
    headers = {
        "x-optout-timestamp": timestamp,
        "x-optout-signature": sign("1", "s", timestamp, b"{}"),
    }
    with pytest.raises(SignatureError, match="timestamp"):
        verify(headers, b"{}", {"1": "s"}, 1.8e9)
