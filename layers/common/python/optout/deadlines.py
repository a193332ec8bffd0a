"""Response deadlines for an opt-out request, by jurisdiction.

California: as soon as feasible and within 15 business days (11 CCR §7026(f)), counted on
weekdays that are not US federal or California state holidays. The other state laws give
45 calendar days (Iowa 90). An unknown jurisdiction gets the strictest rule (California's).
"""

from datetime import date, timedelta
from functools import cache
from typing import Final

import holidays

BUSINESS_DAY_RULES: Final[dict[str, int]] = {"US-CA": 15}
CALENDAR_DAY_RULES: Final[dict[str, int]] = {
    "US-CO": 45, "US-CT": 45, "US-TX": 45, "US-MT": 45, "US-NH": 45, "US-OR": 45,
    "US-DE": 45, "US-NJ": 45, "US-MD": 45, "US-VA": 45, "US-UT": 45, "US-IA": 90,
}  # fmt: skip
DEFAULT_JURISDICTION: Final = "US-CA"


# Commemorative in California law (Gov. Code §6700 lists it without closing state offices).
NOT_DAYS_OFF: Final = frozenset({"Susan B. Anthony Day"})


@cache
def _california_days_off(year: int) -> frozenset[date]:
    calendar = holidays.country_holidays("US", subdiv="CA", years=[year])
    return frozenset(
        day for day, names in calendar.items() if set(names.split("; ")) - NOT_DAYS_OFF
    )


def add_business_days(start: date, days: int) -> date:
    current = start
    remaining = days
    while remaining > 0:
        current += timedelta(days=1)
        if current.weekday() < 5 and current not in _california_days_off(current.year):
            remaining -= 1
    return current


def deadline_for(received: date, jurisdiction: str | None) -> date:
    code = jurisdiction or DEFAULT_JURISDICTION
    if code in CALENDAR_DAY_RULES:
        return received + timedelta(days=CALENDAR_DAY_RULES[code])
    return add_business_days(received, BUSINESS_DAY_RULES.get(code, 15))
