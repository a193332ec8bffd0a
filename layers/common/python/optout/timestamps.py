"""One timestamp format for every stored time, so they sort and compare as strings."""

from datetime import datetime


def iso(moment: datetime) -> str:
    """UTC ISO-8601 with milliseconds and Z, e.g. 2026-11-29T03:20:00.123Z."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
