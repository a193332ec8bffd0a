"""Stored times are UTC (review s18 time T8): iso() converts an aware time and refuses a
naive one, and an event's day shard is its UTC date. iso() appended Z to the local clock's
fields, so 23:30-08:00 on 31 December was stored as 23:30Z, under 31 December's shard."""

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from optout.events import CapturedEvent
from optout.timestamps import iso

PST = timezone(timedelta(hours=-8))


def test_an_aware_time_is_stored_as_its_utc_instant() -> None:
    assert iso(datetime(2026, 12, 31, 23, 30, 0, 123456, tzinfo=PST)) == "2027-01-01T07:30:00.123Z"
    assert iso(datetime(2026, 12, 31, 23, 30, tzinfo=UTC)) == "2026-12-31T23:30:00.000Z"


def test_a_naive_time_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        iso(datetime(2026, 12, 31, 23, 30))


def test_an_events_day_shard_is_its_utc_date() -> None:
    at = datetime(2026, 12, 31, 23, 30, tzinfo=PST)
    event = CapturedEvent(
        request_id="00000000-0000-4000-8000-000000000001", event_type="consent",
        source="banner", received_at=at, deadline=date(2027, 1, 25), opt_out={"sale": True},
        gpc=False, identifiers=(), links=(), evidence={}, fingerprint="x",
    )  # fmt: skip
    item = event.to_item(1095)
    assert item["received_at"] == "2027-01-01T07:30:00.000Z"
    assert item["day_pk"].startswith("RCV#2027-01-01#"), item["day_pk"]
