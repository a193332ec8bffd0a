"""Response deadlines for an opt-out request, by jurisdiction.

California: as soon as feasible and within 15 business days (11 CCR §7026(f)). "Business day"
is not defined in the CCPA or its regulations, and which holidays a business observes varies,
so the count is the conservative one: the deadline can only come earlier, never later. A day
is off only when it is a weekday on which both federal offices (5 U.S.C. §6103) and California
state offices (Gov. Code §6700) close: New Year's Day, Martin Luther King Jr. Day, Presidents'
Day, Memorial Day, Independence Day, Labor Day, Veterans Day, Thanksgiving, Christmas, and a
Monday observed for one of them that fell on a Sunday (both observe those). Counted as
business days, because one of the two does not close or it is unsettled: the day after
Thanksgiving, Cesar Chavez Day, Lincoln's Birthday, Native American Day and Susan B. Anthony
Day (California only), Columbus Day (federal only), Juneteenth (federal; §6700 names it since
2022, but California's state offices stay open: it is not on CalHR's paid holiday schedule),
and a Friday observed for a Saturday holiday (observance differs between federal and
California practice).

The other state laws give 45 calendar days to respond (Iowa 90); each may be extended once,
which a business must announce: the deadline here never assumes an extension. An unknown
jurisdiction gets the strictest rule (California's). docs/deadlines.md lists the sources.

A jurisdiction is where the request came from, not where the consumer lives: the CCPA protects
a California resident who is travelling or behind a VPN. So a state only geolocated (CloudFront's
viewer region, not given by the caller) gets the earlier of its own deadline and California's
(`strictest_deadline_at`); only a jurisdiction the caller states gets its own rule alone.

The count starts on the day the request was received there, not in UTC: an evening request
in California is already the next day in UTC, and counting from that date would give one day
more. The date is read at the state's westernmost standard-time offset, fixed (summer time is
an hour east of it), so it is never later than the local date anywhere in the state, all year,
and needs no time zone database.
"""

import calendar
from datetime import UTC, date, datetime, timedelta
from functools import cache, lru_cache
from typing import Final

BUSINESS_DAY_RULES: Final[dict[str, int]] = {"US-CA": 15}  # 11 CCR §7026(f)
# Each: the act and when it took force; 45 days unless noted. docs/deadlines.md has the
# sources checked (and which were), with the date.
CALENDAR_DAY_RULES: Final[dict[str, int]] = {
    "US-VA": 45,  # Consumer Data Protection Act, Va. Code §59.1-577 (2023-01-01)
    "US-CO": 45,  # Colorado Privacy Act, C.R.S. §6-1-1306 (2023-07-01)
    "US-CT": 45,  # Data Privacy Act, Conn. Gen. Stat. §42-518 (2023-07-01)
    "US-UT": 45,  # Consumer Privacy Act, Utah Code ch. 13-61 (2023-12-31)
    "US-IA": 90,  # Consumer Data Protection Act, Iowa Code ch. 715D (2025-01-01): 90 days
    "US-TX": 45,  # Data Privacy and Security Act, Tex. Bus. & Com. Code §541.052 (2024-07-01)
    "US-OR": 45,  # Consumer Privacy Act, ORS 646A.570 et seq. (2024-07-01)
    "US-MT": 45,  # Consumer Data Privacy Act, MCA 30-14-2801 et seq. (2024-10-01)
    "US-DE": 45,  # Personal Data Privacy Act, 6 Del. C. ch. 12D (2025-01-01)
    "US-NH": 45,  # RSA ch. 507-H (2025-01-01)
    "US-NJ": 45,  # Data Privacy Act, N.J. Stat. §56:8-166.7(a) (2025-01-15)
    "US-NE": 45,  # Data Privacy Act, LB 1074 (2025-01-01)
    "US-TN": 45,  # Information Protection Act, Tenn. Code §47-18-3304(b)(1) (2025-07-01)
    "US-MN": 45,  # Consumer Data Privacy Act, Minn. Stat. ch. 325M (2025-07-31)
    "US-MD": 45,  # Online Data Privacy Act, Md. Com. Law §14-4701 et seq. (2025-10-01)
    "US-IN": 45,  # Consumer Data Protection Act, Ind. Code art. 24-15 (2026-01-01)
    "US-KY": 45,  # Consumer Data Protection Act, KRS 367.3611 et seq. (2026-01-01)
    "US-RI": 45,  # Data Transparency and Privacy Protection Act, R.I. ch. 6-48.1 (2026-01-01)
}
DEFAULT_JURISDICTION: Final = "US-CA"
# Hours from UTC of each state's westernmost standard time (tests/unit/test_deadlines.py
# checks every hour of a year against each of the state's IANA zones).
STANDARD_OFFSET_HOURS: Final[dict[str, int]] = {
    "US-CA": -8, "US-OR": -8,
    "US-CO": -7, "US-UT": -7, "US-TX": -7, "US-MT": -7, "US-NE": -7,  # TX: El Paso; NE: west
    "US-IA": -6, "US-MN": -6, "US-TN": -6, "US-IN": -6, "US-KY": -6,  # TN, IN, KY: the west
    "US-VA": -5, "US-CT": -5, "US-DE": -5, "US-NH": -5, "US-NJ": -5, "US-MD": -5, "US-RI": -5,
}  # fmt: skip
# Another jurisdiction takes California's rule, read at the westernmost US standard time
# (Hawaii and the Aleutians): never later than the date anywhere in the country.
WESTERNMOST_US_HOURS: Final = -10
OBSERVED: Final = "(observed)"
JUNETEENTH: Final = "Juneteenth"  # the `holidays` package's name for it (and its observed day)


# From this year on the days off are the rules below (tests/unit/test_deadlines.py compares them
# with the `holidays` package year by year to 2100); earlier years ask the package itself.
# Why not always the package: its US calendar imports its whole registry of countries (about
# 280 modules), a cold container's first request paid ~150 ms for it (docs/performance.md).
RULES_FROM_YEAR: Final = 2022


@cache
def california_days_off(year: int) -> frozenset[date]:
    """Weekdays both federal and California state offices close (see the module docstring)."""
    if year < RULES_FROM_YEAR:
        return _days_off_from_package(year)
    off: set[date] = set()
    for day in _shared_holidays(year):
        if day.weekday() == 6:  # a Sunday holiday: both close the Monday after
            off.add(day + timedelta(days=1))
        elif day.weekday() < 5:  # a Saturday one: the Friday before is federal practice only
            off.add(day)
    return frozenset(off)


def _shared_holidays(year: int) -> list[date]:
    """The holidays both calendars name, on their dates (before any observed day)."""
    return [
        date(year, 1, 1),  # New Year's Day
        _nth_weekday(year, 1, calendar.MONDAY, 3),  # Martin Luther King Jr. Day
        _nth_weekday(year, 2, calendar.MONDAY, 3),  # Presidents' Day / Washington's Birthday
        _nth_weekday(year, 5, calendar.MONDAY, -1),  # Memorial Day
        date(year, 7, 4),  # Independence Day
        _nth_weekday(year, 9, calendar.MONDAY, 1),  # Labor Day
        date(year, 11, 11),  # Veterans Day
        _nth_weekday(year, 11, calendar.THURSDAY, 4),  # Thanksgiving
        date(year, 12, 25),  # Christmas Day
    ]


def _nth_weekday(year: int, month: int, weekday: int, n: int) -> date:
    """The n-th `weekday` of the month (n = -1: the last)."""
    days = [d for d in calendar.Calendar().itermonthdates(year, month) if d.month == month]
    matching = [d for d in days if d.weekday() == weekday]
    return matching[n - 1] if n > 0 else matching[n]


def _days_off_from_package(year: int) -> frozenset[date]:
    import holidays  # noqa: PLC0415 - past years only (see RULES_FROM_YEAR)

    federal = holidays.country_holidays("US", years=[year])
    state = holidays.country_holidays("US", subdiv="CA", years=[year])
    off: set[date] = set()
    for day in set(federal) & set(state):  # the names differ (Washington's Birthday…)
        if day.weekday() >= 5:
            continue
        # Juneteenth: in both calendars, but California's state offices stay open (module doc)
        if all(JUNETEENTH in name for name in federal.get_list(day)):
            continue
        # A Saturday holiday observed on Friday is federal practice only: count the Friday.
        if day.weekday() == 4 and all(OBSERVED in name for name in federal.get_list(day)):
            continue
        off.add(day)
    return frozenset(off)


@lru_cache(maxsize=64)  # every request of a day asks the same: a walk of ~3 weeks each
def add_business_days(start: date, days: int) -> date:
    current = start
    remaining = days
    while remaining > 0:
        current += timedelta(days=1)
        if current.weekday() < 5 and current not in california_days_off(current.year):
            remaining -= 1
    return current


def received_on(moment: datetime, jurisdiction: str | None) -> date:
    """The date `moment` (timezone-aware) falls on in the jurisdiction, never later than any
    local reading of it there."""
    hours = STANDARD_OFFSET_HOURS.get(jurisdiction or DEFAULT_JURISDICTION, WESTERNMOST_US_HOURS)
    return (moment.astimezone(UTC) + timedelta(hours=hours)).date()


def answered_late(answered_at: str, deadline: date, jurisdiction: str | None) -> bool:
    """An answer given at `answered_at` (ISO 8601 with an offset) came after the deadline's
    day, read in the jurisdiction's days as the deadline was counted (`received_on`): an
    answer at 17:00 PST on the deadline day is the next day in UTC, and on time."""
    return received_on(datetime.fromisoformat(answered_at), jurisdiction) > deadline


def start_of(day: date, jurisdiction: str | None) -> datetime:
    """The first instant `received_on` reads as `day` in the jurisdiction (UTC)."""
    hours = STANDARD_OFFSET_HOURS.get(jurisdiction or DEFAULT_JURISDICTION, WESTERNMOST_US_HOURS)
    return datetime(day.year, day.month, day.day, tzinfo=UTC) - timedelta(hours=hours)


def deadline_at(moment: datetime, jurisdiction: str | None) -> date:
    """The deadline of a request received at `moment` (timezone-aware)."""
    return deadline_for(received_on(moment, jurisdiction), jurisdiction)


def strictest_deadline_at(moment: datetime, geolocated: str | None) -> date:
    """The deadline of a request whose jurisdiction was only geolocated: the earlier of the
    located state's and California's (the consumer may be a Californian elsewhere)."""
    return min(deadline_at(moment, geolocated), deadline_at(moment, DEFAULT_JURISDICTION))


def counted_in(moment: datetime, geolocated: str | None) -> str:
    """The calendar a geolocated request's deadline (`strictest_deadline_at`) was counted in:
    California's when its deadline is the earlier (or the same: its day ends later), else the
    located state's. An answer's date is read there, as the deadline's day was."""
    california = deadline_at(moment, DEFAULT_JURISDICTION)
    return (
        DEFAULT_JURISDICTION if california <= deadline_at(moment, geolocated) else str(geolocated)
    )


def deadline_for(received: date, jurisdiction: str | None) -> date:
    code = jurisdiction or DEFAULT_JURISDICTION
    if code in CALENDAR_DAY_RULES:
        return received + timedelta(days=CALENDAR_DAY_RULES[code])
    return add_business_days(received, BUSINESS_DAY_RULES.get(code, 15))
