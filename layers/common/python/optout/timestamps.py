"""One timestamp format for every stored time, so they sort and compare as strings."""

from datetime import UTC, datetime


def iso(moment: datetime) -> str:
    """UTC ISO-8601 with milliseconds and Z, e.g. 2026-11-29T03:20:00.123Z. `moment` must be
    timezone-aware (a naive one could be any zone's clock: refused); it is converted to UTC,
    so 23:30-08:00 is stored as 07:30Z the next day, not as 23:30Z."""
    utc = _utc(moment)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def utc_date(moment: datetime) -> str:
    """The UTC date of an aware `moment` (yyyy-mm-dd): the day shard a stored time is under."""
    return _utc(moment).date().isoformat()


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("a stored time must be timezone-aware")
    return moment.astimezone(UTC)
