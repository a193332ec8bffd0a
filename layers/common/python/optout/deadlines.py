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
which a business must announce: the deadline here never assumes an extension. A state's rule
applies from its law's date in force (`LAW_IN_FORCE`), to the day the request was received
there; before it, and for an unknown jurisdiction, the strictest rule (California's).
docs/deadlines.md lists the sources.

A jurisdiction is where the request came from, not where the consumer lives: the CCPA protects
a California resident who is travelling or behind a VPN. So a state only geolocated (CloudFront's
viewer region, not given by the caller) gets the earlier of its own deadline and California's
(`strictest_deadline_at`); only a jurisdiction the caller states gets its own rule alone.

The count starts on the day the request was received there, not in UTC: an evening request
in California is already the next day in UTC, and counting from that date would give one day
more. The date is read at the state's westernmost standard-time offset, fixed (summer time is
an hour east of it), so it is never later than the local date anywhere in the state, all year,
and needs no time zone database. Whether an answer came late is judged the other way, on the
latest local date in the state (its easternmost summer time, `latest_date`): the deadline
errs early and lateness errs late, so neither reading gives the business a day.
"""

import calendar
from datetime import UTC, date, datetime, time, timedelta
from functools import cache, lru_cache
from typing import Final

from optout.purposes import Purpose

BUSINESS_DAY_RULES: Final[dict[str, int]] = {"US-CA": 15}  # 11 CCR §7026(f)
# Each: the act and when it took force (`LAW_IN_FORCE`); 45 days unless noted.
# docs/deadlines.md has the sources checked (and which were), with the date.
CALENDAR_DAY_RULES: Final[dict[str, int]] = {
    "US-VA": 45,  # Consumer Data Protection Act, Va. Code §59.1-577
    "US-CO": 45,  # Colorado Privacy Act, C.R.S. §6-1-1306
    "US-CT": 45,  # Data Privacy Act, Conn. Gen. Stat. §42-518
    "US-UT": 45,  # Consumer Privacy Act, Utah Code ch. 13-61
    "US-IA": 90,  # Consumer Data Protection Act, Iowa Code ch. 715D: 90 days
    "US-TX": 45,  # Data Privacy and Security Act, Tex. Bus. & Com. Code §541.052
    "US-OR": 45,  # Consumer Privacy Act, ORS 646A.570 et seq.
    "US-MT": 45,  # Consumer Data Privacy Act, MCA 30-14-2801 et seq.
    "US-DE": 45,  # Personal Data Privacy Act, 6 Del. C. ch. 12D
    "US-NH": 45,  # RSA ch. 507-H
    "US-NJ": 45,  # Data Privacy Act, N.J. Stat. §56:8-166.7(a)
    "US-NE": 45,  # Data Privacy Act, LB 1074
    "US-TN": 45,  # Information Protection Act, Tenn. Code §47-18-3304(b)(1)
    "US-MN": 45,  # Consumer Data Privacy Act, Minn. Stat. ch. 325M
    "US-MD": 45,  # Online Data Privacy Act, Md. Com. Law §14-4701 et seq.
    "US-IN": 45,  # Consumer Data Protection Act, Ind. Code art. 24-15
    "US-KY": 45,  # Consumer Data Protection Act, KRS 367.3611 et seq.
    "US-RI": 45,  # Data Transparency and Privacy Protection Act, R.I. ch. 6-48.1
    "US-OK": 45,  # SB 546, 75A O.S. §§300-315
    "US-AL": 45,  # Personal Data Protection Act, HB 351
    # Digital Bill of Rights, Fla. Stat. §501.701 et seq.: only controllers of over $1 bn
    # global revenue that meet one of three criteria (docs/deadlines.md)
    "US-FL": 45,
}
# The opt-outs each state's law grants, of the purposes a consumer can choose: the webhook
# notice names a state's law only for these (review s19 law L2). California's rights are the
# CCPA's, which the notice cites by rule. The limit of sensitive personal information is the
# CCPA's alone; its "sharing" the notice reads as targeted advertising (connectors/webhook.py,
# STATE_TERMS). Checked
# 2026-12-01 (docs/deadlines.md): Iowa grants only the sale opt-out (Iowa Code §715D.3(1)),
# Utah and Alabama targeted advertising and sale, not profiling (Utah Code §13-61-201); FL,
# OK, LA and VT the three. The other states were not checked: they keep the three the notice
# named before (all three).
SALE: Final[frozenset[Purpose]] = frozenset({"sale"})
SALE_ADS: Final[frozenset[Purpose]] = frozenset({"sale", "targeted_advertising"})
SALE_ADS_PROFILING: Final[frozenset[Purpose]] = frozenset(
    {"sale", "targeted_advertising", "profiling"}
)
STATE_OPT_OUTS: Final[dict[str, frozenset[Purpose]]] = {
    "US-IA": SALE, "US-UT": SALE_ADS, "US-AL": SALE_ADS,
    **{code: SALE_ADS_PROFILING for code in (
        "US-FL", "US-OK", "US-LA", "US-VT",  # checked
        "US-VA", "US-CO", "US-CT", "US-TX", "US-OR", "US-MT", "US-DE", "US-NH", "US-NJ",
        "US-NE", "US-TN", "US-MN", "US-MD", "US-IN", "US-KY", "US-RI",  # not checked: as before
    )},
}  # fmt: skip
# When each state's law took or takes force (docs/deadlines.md). Its rule and its name apply
# only to a request received, in the state's date, on or after that day: before it the state
# is one without a law of its own (California's count). A law can so be listed before its day.
# California's has no date: its 15 business days held before any request this product holds.
LAW_IN_FORCE: Final[dict[str, date]] = {
    "US-VA": date(2023, 1, 1), "US-CO": date(2023, 7, 1), "US-CT": date(2023, 7, 1),
    "US-UT": date(2023, 12, 31), "US-TX": date(2024, 7, 1), "US-OR": date(2024, 7, 1),
    "US-MT": date(2024, 10, 1), "US-IA": date(2025, 1, 1), "US-DE": date(2025, 1, 1),
    "US-NH": date(2025, 1, 1), "US-NE": date(2025, 1, 1), "US-NJ": date(2025, 1, 15),
    "US-TN": date(2025, 7, 1), "US-MN": date(2025, 7, 31), "US-MD": date(2025, 10, 1),
    "US-IN": date(2026, 1, 1), "US-KY": date(2026, 1, 1), "US-RI": date(2026, 1, 1),
    "US-OK": date(2027, 1, 1), "US-LA": date(2027, 1, 1), "US-AL": date(2027, 5, 1),
    "US-VT": date(2028, 1, 1), "US-FL": date(2024, 7, 1),
}  # fmt: skip
DEFAULT_JURISDICTION: Final = "US-CA"
# Hours from UTC of each state's westernmost standard time (tests/unit/test_deadlines.py
# checks every hour of a year against each of the state's IANA zones): the day a request was
# received, from which its deadline counts and under which the §7102 figures count it. Every
# state, DC and the inhabited territories, not only those with a rule: a New York request
# made at 04:30 EST on 1 January is in the new year's figures.
STANDARD_OFFSET_HOURS: Final[dict[str, int]] = {
    "US-AS": -11,
    "US-AK": -10, "US-HI": -10,  # AK: the Aleutians
    "US-CA": -8, "US-OR": -8, "US-WA": -8, "US-NV": -8, "US-ID": -8,  # ID: the north
    "US-CO": -7, "US-UT": -7, "US-MT": -7, "US-AZ": -7, "US-NM": -7, "US-WY": -7,
    "US-TX": -7, "US-NE": -7, "US-KS": -7, "US-ND": -7, "US-SD": -7,  # TX: El Paso; the west
    "US-IA": -6, "US-MN": -6, "US-TN": -6, "US-IN": -6, "US-KY": -6,  # TN, IN, KY: the west
    "US-AL": -6, "US-AR": -6, "US-IL": -6, "US-LA": -6, "US-MS": -6, "US-MO": -6, "US-OK": -6,
    "US-WI": -6, "US-FL": -6, "US-MI": -6,  # FL: the panhandle; MI: four western counties
    "US-VA": -5, "US-CT": -5, "US-DE": -5, "US-NH": -5, "US-NJ": -5, "US-MD": -5, "US-RI": -5,
    "US-DC": -5, "US-GA": -5, "US-ME": -5, "US-MA": -5, "US-NY": -5, "US-NC": -5, "US-OH": -5,
    "US-PA": -5, "US-SC": -5, "US-VT": -5, "US-WV": -5,
    "US-PR": -4, "US-VI": -4,
    "US-GU": 10, "US-MP": 10,
}  # fmt: skip
# Every code above by its full name: the webform pages name a stated jurisdiction's time
# ("New York time", never "US-NY time"). A place, not a law: STATE_NAMES lists the states
# with a law of their own (review s19 law L3).
PLACE_NAMES: Final[dict[str, str]] = {
    "US-AL": "Alabama", "US-AK": "Alaska", "US-AZ": "Arizona", "US-AR": "Arkansas",
    "US-CA": "California", "US-CO": "Colorado", "US-CT": "Connecticut", "US-DE": "Delaware",
    "US-FL": "Florida", "US-GA": "Georgia", "US-HI": "Hawaii", "US-ID": "Idaho",
    "US-IL": "Illinois", "US-IN": "Indiana", "US-IA": "Iowa", "US-KS": "Kansas",
    "US-KY": "Kentucky", "US-LA": "Louisiana", "US-ME": "Maine", "US-MD": "Maryland",
    "US-MA": "Massachusetts", "US-MI": "Michigan", "US-MN": "Minnesota", "US-MS": "Mississippi",
    "US-MO": "Missouri", "US-MT": "Montana", "US-NE": "Nebraska", "US-NV": "Nevada",
    "US-NH": "New Hampshire", "US-NJ": "New Jersey", "US-NM": "New Mexico", "US-NY": "New York",
    "US-NC": "North Carolina", "US-ND": "North Dakota", "US-OH": "Ohio", "US-OK": "Oklahoma",
    "US-OR": "Oregon", "US-PA": "Pennsylvania", "US-RI": "Rhode Island",
    "US-SC": "South Carolina", "US-SD": "South Dakota", "US-TN": "Tennessee", "US-TX": "Texas",
    "US-UT": "Utah", "US-VT": "Vermont", "US-VA": "Virginia", "US-WA": "Washington",
    "US-WV": "West Virginia", "US-WI": "Wisconsin", "US-WY": "Wyoming",
    "US-DC": "District of Columbia", "US-AS": "American Samoa", "US-GU": "Guam",
    "US-MP": "Northern Mariana Islands", "US-PR": "Puerto Rico",
    "US-VI": "U.S. Virgin Islands",
}  # fmt: skip
# The states with a comprehensive privacy law of their own (California and every state with a
# date in force), by name: the webhook notice names another state's law ("Texas consumer
# privacy law", once in force). Not a list of places: the pages' zone names are PLACE_NAMES,
# above. Louisiana (SB 386, Act 502) and Vermont
# (S.71, Act 145) have no rule above: no source checked gives their response period, so a
# request from them keeps California's count, as from a state without a law.
STATE_NAMES: Final[dict[str, str]] = {
    code: PLACE_NAMES[code] for code in (DEFAULT_JURISDICTION, *LAW_IN_FORCE)
}
# Hours from UTC of each state's easternmost summer time (standard time where none is kept):
# the latest local date in the state, at which an answer or "today" is judged late. Read at
# the standard offset above, an answer made after midnight following the deadline's day
# (00:40 PDT, 01:40 CDT) would still be on that day. In winter an hour less (`latest_date`
# applies the US summer-time rule), so 23:30 PST on the deadline day stays on time.
LATEST_OFFSET_HOURS: Final[dict[str, int]] = {
    "US-AS": -11, "US-HI": -10,
    "US-AK": -8, "US-CA": -7, "US-WA": -7,
    "US-OR": -6, "US-NV": -6, "US-ID": -6, "US-CO": -6, "US-UT": -6, "US-MT": -6,  # OR, ID:
    "US-AZ": -6, "US-NM": -6, "US-WY": -6,  # Mountain in the east; NV: West Wendover; AZ: Navajo
    "US-TX": -5, "US-NE": -5, "US-KS": -5, "US-ND": -5, "US-SD": -5, "US-IA": -5, "US-MN": -5,
    "US-AL": -5, "US-AR": -5, "US-IL": -5, "US-LA": -5, "US-MS": -5, "US-MO": -5, "US-OK": -5,
    "US-WI": -5,
    "US-TN": -4, "US-IN": -4, "US-KY": -4, "US-FL": -4, "US-MI": -4,  # the east
    "US-VA": -4, "US-CT": -4, "US-DE": -4, "US-NH": -4, "US-NJ": -4, "US-MD": -4, "US-RI": -4,
    "US-DC": -4, "US-GA": -4, "US-ME": -4, "US-MA": -4, "US-NY": -4, "US-NC": -4, "US-OH": -4,
    "US-PA": -4, "US-SC": -4, "US-VT": -4, "US-WV": -4,
    "US-PR": -4, "US-VI": -4,
    "US-GU": 10, "US-MP": 10,
}  # fmt: skip
# Another jurisdiction takes California's rule, its day read at the westernmost time of the
# states (Hawaii and the Aleutians): never later than the date anywhere in them; and judged
# late at the easternmost (Eastern summer time, Puerto Rico): never earlier.
WESTERNMOST_US_HOURS: Final = -10
EASTERNMOST_US_HOURS: Final = -4
# Where the easternmost zone keeps no summer time (nor, for another jurisdiction, the fixed -4
# covers Eastern summer time and Puerto Rico's all year).
NO_SUMMER_TIME: Final = frozenset({"US-HI", "US-AS", "US-GU", "US-MP", "US-PR", "US-VI"})
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


def latest_date(moment: datetime, jurisdiction: str | None) -> date:
    """The date `moment` (timezone-aware) falls on in the jurisdiction's easternmost zone: the
    latest local date in it, the day lateness is judged on (the deadline's day, counted from
    `received_on`, errs early; this one is exact, never earlier than any local date)."""
    utc = moment.astimezone(UTC)
    return (utc + timedelta(hours=_latest_offset(utc, jurisdiction))).date()


def end_of(day: date, jurisdiction: str | None) -> datetime:
    """The last millisecond (UTC) that is still `day` everywhere in the jurisdiction
    (`latest_date` reads it as `day`)."""
    next_day = day + timedelta(days=1)
    midnight = datetime(next_day.year, next_day.month, next_day.day, tzinfo=UTC)
    summer = _summer_offset(jurisdiction)
    for hours in (summer, summer - 1):  # its easternmost zone's midnight, summer or winter
        start = midnight - timedelta(hours=hours)
        if _latest_offset(start, jurisdiction) == hours:
            break
    return start - timedelta(milliseconds=1)


def _summer_offset(jurisdiction: str | None) -> int:
    return LATEST_OFFSET_HOURS.get(jurisdiction or DEFAULT_JURISDICTION, EASTERNMOST_US_HOURS)


def _latest_offset(utc: datetime, jurisdiction: str | None) -> int:
    """The offset of the jurisdiction's easternmost zone at `utc`."""
    code = jurisdiction or DEFAULT_JURISDICTION
    summer = _summer_offset(code)
    if code not in LATEST_OFFSET_HOURS or code in NO_SUMMER_TIME:
        return summer
    return summer if _us_summer_time(utc, summer - 1) else summer - 1


def _us_summer_time(utc: datetime, standard_hours: int) -> bool:
    """US summer time (15 U.S.C. §260a, since 2007) in a zone of `standard_hours`: from
    02:00 standard time on March's second Sunday to 02:00 summer time on November's first."""
    local_standard = utc + timedelta(hours=standard_hours)
    starts, ends = _summer_time_bounds(local_standard.year)
    return starts <= local_standard < ends


@cache
def _summer_time_bounds(year: int) -> tuple[datetime, datetime]:
    """When US summer time starts and ends in `year`, in a zone's standard time (as UTC)."""
    starts = datetime.combine(_nth_weekday(year, 3, calendar.SUNDAY, 2), time(2), UTC)
    ends = datetime.combine(_nth_weekday(year, 11, calendar.SUNDAY, 1), time(1), UTC)
    return starts, ends


def answered_late(answered_at: str, deadline: date, jurisdiction: str | None) -> bool:
    """An answer given at `answered_at` (ISO 8601 with an offset) came after the deadline's
    day somewhere in the jurisdiction (`latest_date`): an answer at 17:00 PST on the deadline
    day is the next day in UTC, and on time; one at 00:40 PDT the day after is late."""
    return latest_date(datetime.fromisoformat(answered_at), jurisdiction) > deadline


def start_of(day: date, jurisdiction: str | None) -> datetime:
    """The first instant `received_on` reads as `day` in the jurisdiction (UTC)."""
    hours = STANDARD_OFFSET_HOURS.get(jurisdiction or DEFAULT_JURISDICTION, WESTERNMOST_US_HOURS)
    return datetime(day.year, day.month, day.day, tzinfo=UTC) - timedelta(hours=hours)


def deadline_at(moment: datetime, jurisdiction: str | None) -> date:
    """The deadline of a request received at `moment` (timezone-aware)."""
    return deadline_for(received_on(moment, jurisdiction), jurisdiction)


def strictest_deadline(moment: datetime, geolocated: str | None) -> tuple[date, str]:
    """The deadline of a request whose jurisdiction was only geolocated, and the calendar it
    was counted in: the earlier of the located state's and California's (the consumer may be
    a Californian elsewhere); California's when the two are the same day (its day ends later).
    An answer's date is read in that calendar, as the deadline's day was."""
    california = deadline_at(moment, DEFAULT_JURISDICTION)
    located = deadline_at(moment, geolocated)
    if california <= located:
        return california, DEFAULT_JURISDICTION
    return located, str(geolocated)


def strictest_deadline_at(moment: datetime, geolocated: str | None) -> date:
    return strictest_deadline(moment, geolocated)[0]


def counted_in(moment: datetime, geolocated: str | None) -> str:
    return strictest_deadline(moment, geolocated)[1]


def law_in_force(jurisdiction: str | None, received: date) -> bool:
    """Whether the jurisdiction has a law of its own (STATE_NAMES) that applies to a request
    received on `received` (its date there, `received_on`)."""
    code = jurisdiction or DEFAULT_JURISDICTION
    start = LAW_IN_FORCE.get(code)
    return code in STATE_NAMES and (start is None or received >= start)


def deadline_for(received: date, jurisdiction: str | None) -> date:
    """The deadline of a request received on `received` (its date in the jurisdiction): its
    state's rule once in force, else California's count (the strictest)."""
    code = jurisdiction or DEFAULT_JURISDICTION
    if code in CALENDAR_DAY_RULES and law_in_force(code, received):
        return received + timedelta(days=CALENDAR_DAY_RULES[code])
    return add_business_days(received, BUSINESS_DAY_RULES[DEFAULT_JURISDICTION])
