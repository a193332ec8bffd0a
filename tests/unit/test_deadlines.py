"""Response deadlines by jurisdiction (optout.deadlines). Expected dates counted by hand."""

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from optout.deadlines import (
    BUSINESS_DAY_RULES,
    CALENDAR_DAY_RULES,
    RULES_FROM_YEAR,
    STANDARD_OFFSET_HOURS,
    _days_off_from_package,
    add_business_days,
    california_days_off,
    deadline_at,
    deadline_for,
    received_on,
    strictest_deadline_at,
)


def test_california_counts_15_business_days_skipping_weekends() -> None:
    # Given a request on Sunday 29 Nov 2026 (no holidays in the next three weeks)
    # Then: Mon 30 Nov is day 1 ... Fri 18 Dec is day 15.
    assert deadline_for(date(2026, 11, 29), "US-CA") == date(2026, 12, 18)


def test_california_skips_thanksgiving_but_counts_the_day_after() -> None:
    # Given Wednesday 25 Nov 2026: Thu 26 (Thanksgiving) is off; Fri 27 (a California state
    # holiday only, not federal) counts, conservatively: Fri 27 is day 1, Nov 30-Dec 4 (2-6),
    # Dec 7-11 (7-11), Dec 14-17 (12-15).
    assert deadline_for(date(2026, 11, 25), "US-CA") == date(2026, 12, 17)


def test_california_skips_christmas_and_new_year() -> None:
    # Given Friday 11 Dec 2026: Dec 14-18 (1-5), 21-24 (6-9), Fri 25 is Christmas,
    # 28-31 (10-13), Fri 1 Jan is New Year's Day, Mon 4 Jan (14), Tue 5 Jan 2027 (15).
    assert deadline_for(date(2026, 12, 11), "US-CA") == date(2027, 1, 5)


def test_california_counts_fridays_observed_for_saturday_holidays() -> None:
    # Given Monday 13 Dec 2027: Dec 14-17 (1-4), 20-23 (5-8), Fri 24 (Christmas observed,
    # federal practice) counts (9), 27-30 (10-13), Fri 31 (New Year 2028 observed) counts (14),
    # Mon 3 Jan 2028 is day 15.
    assert deadline_for(date(2027, 12, 13), "US-CA") == date(2028, 1, 3)


def test_california_skips_a_monday_observed_for_a_sunday_holiday() -> None:
    # Given Thursday 17 Jun 2027: Fri 18 (Juneteenth observed for Saturday) counts (1),
    # Jun 21-25 (2-6), Jun 28-Jul 2 (7-11), Mon 5 Jul (Independence Day, a Sunday, observed
    # Monday by both) is off, Jul 6-9 (12-15).
    assert deadline_for(date(2027, 6, 17), "US-CA") == date(2027, 7, 9)


def test_california_skips_presidents_day_and_counts_cesar_chavez_day() -> None:
    # Given Friday 13 Feb 2026: Mon 16 is Presidents' Day (off). Feb 17-20 (1-4), 23-27 (5-9),
    # Mar 2-6 (10-14), Mon 9 Mar is day 15.
    assert deadline_for(date(2026, 2, 13), "US-CA") == date(2026, 3, 9)
    # Given Friday 27 Mar 2026: Tue 31 Mar (Cesar Chavez Day, California only) counts:
    # Mar 30-Apr 3 (1-5), Apr 6-10 (6-10), Apr 13-17 (11-15).
    assert deadline_for(date(2026, 3, 27), "US-CA") == date(2026, 4, 17)


def test_california_counts_juneteenth_as_state_offices_stay_open() -> None:
    # Given Monday 1 Jun 2026: Jun 2-5 (1-4), 8-12 (5-9), 15-19 (10-14; Fri 19, Juneteenth,
    # counts: California's state offices are open, review s16 claims F3), Mon 22 is day 15.
    assert deadline_for(date(2026, 6, 1), "US-CA") == date(2026, 6, 22)
    # Sun 19 Jun 2022, observed federally on Mon 20: that Monday counts too.
    assert date(2022, 6, 20) not in california_days_off(2022)


def test_california_counts_columbus_day_a_federal_only_holiday() -> None:
    # Given Friday 9 Oct 2026: Mon 12 Oct (Columbus Day) counts: Oct 12-16 (1-5),
    # 19-23 (6-10), 26-30 (11-15).
    assert deadline_for(date(2026, 10, 9), "US-CA") == date(2026, 10, 30)


def test_the_days_off_of_2026_are_the_documented_list() -> None:
    assert sorted(california_days_off(2026)) == [
        date(2026, 1, 1), date(2026, 1, 19), date(2026, 2, 16), date(2026, 5, 25),
        date(2026, 9, 7), date(2026, 11, 11), date(2026, 11, 26), date(2026, 12, 25),
    ]  # fmt: skip


def test_a_business_day_count_starts_the_day_after_receipt() -> None:
    assert add_business_days(date(2026, 12, 1), 1) == date(2026, 12, 2)
    assert add_business_days(date(2026, 12, 4), 1) == date(2026, 12, 7)  # Fri -> Mon


FORTY_FIVE_DAY_STATES = [
    "US-VA", "US-CO", "US-CT", "US-UT", "US-TX", "US-OR", "US-MT", "US-DE", "US-NH", "US-NJ",
    "US-NE", "US-TN", "US-MN", "US-MD", "US-IN", "US-KY", "US-RI",
]  # fmt: skip


@pytest.mark.parametrize("state", FORTY_FIVE_DAY_STATES)
def test_45_day_states_count_calendar_days(state: str) -> None:
    # 29 Nov 2026 + 45 days: 1 more in Nov, 31 in Dec (32), 13 in Jan -> 13 Jan 2027.
    assert deadline_for(date(2026, 11, 29), state) == date(2027, 1, 13)


@pytest.mark.parametrize("state", FORTY_FIVE_DAY_STATES)
def test_45_day_deadline_may_fall_on_a_holiday_or_a_weekend(state: str) -> None:
    # 10 Nov 2026 + 45 days = Fri 25 Dec 2026 (Christmas); 5 Dec + 45 = Mon 19 Jan 2027
    # (Martin Luther King Jr. Day): calendar days are never moved.
    assert deadline_for(date(2026, 11, 10), state) == date(2026, 12, 25)
    assert deadline_for(date(2026, 12, 5), state) == date(2027, 1, 19)


def test_every_state_in_the_table_is_tested() -> None:
    assert set(CALENDAR_DAY_RULES) == {*FORTY_FIVE_DAY_STATES, "US-IA"}
    assert set(BUSINESS_DAY_RULES) == {"US-CA"}


def test_iowa_gets_90_calendar_days() -> None:
    # 29 Nov 2026 + 90: Nov 30 (1), Dec (32), Jan (63), Feb 27 (90).
    assert deadline_for(date(2026, 11, 29), "US-IA") == date(2027, 2, 27)


@pytest.mark.parametrize("jurisdiction", [None, "US", "GB", "US-ZZ"])
def test_unknown_jurisdiction_gets_the_california_rule(jurisdiction: str | None) -> None:
    assert deadline_for(date(2026, 11, 25), jurisdiction) == date(2026, 12, 17)


def test_california_counts_susan_b_anthony_day_as_a_business_day() -> None:
    # Given a request on Monday 2028-02-07. Tuesday 15 Feb is Susan B. Anthony Day, which is
    # commemorative only; Presidents' Day (Mon 21) is a day off.
    received = date(2028, 2, 7)
    # Then: Tue 8 is day 1 ... Fri 11 is 4, Tue 15 is 6, Fri 18 is 9, Tue 22 is 10 ...
    # Tue 29 is day 15 (it would be Wed 1 March if the 15th were skipped)
    assert deadline_for(received, "US-CA") == date(2028, 2, 29)


@pytest.mark.parametrize("year", range(RULES_FROM_YEAR, 2101))
def test_the_rules_give_the_days_off_the_holidays_package_gives(year: int) -> None:
    # The package (the reference, imported only for earlier years on the hot path) and the
    # rules agree on every day off, observed Mondays included, year by year.
    assert california_days_off(year) == _days_off_from_package(year)


def test_a_year_before_the_rules_still_comes_from_the_package() -> None:
    # 2000: Columbus Day was still a California state holiday (Mon 9 Oct) and both closed.
    assert date(2000, 10, 9) in california_days_off(2000)


# -- the day a request was received, where it was received ----------------------------------

# Every IANA zone in use in each state (for another jurisdiction: every US zone west of New York's).
STATE_ZONES = {
    "US-CA": ["America/Los_Angeles"], "US-OR": ["America/Los_Angeles", "America/Boise"],
    "US-CO": ["America/Denver"], "US-UT": ["America/Denver"], "US-MT": ["America/Denver"],
    "US-TX": ["America/Chicago", "America/Denver"], "US-NE": ["America/Chicago", "America/Denver"],
    "US-IA": ["America/Chicago"], "US-MN": ["America/Chicago"],
    "US-TN": ["America/Chicago", "America/New_York"],
    "US-IN": ["America/Indiana/Indianapolis", "America/Chicago"],
    "US-KY": ["America/Kentucky/Louisville", "America/Chicago"],
    "US-VA": ["America/New_York"], "US-CT": ["America/New_York"], "US-DE": ["America/New_York"],
    "US-NH": ["America/New_York"], "US-NJ": ["America/New_York"], "US-MD": ["America/New_York"],
    "US-RI": ["America/New_York"],
    "FR": ["Pacific/Honolulu", "America/Adak", "America/Anchorage", "America/Los_Angeles",
           "America/Denver", "America/Phoenix", "America/Chicago", "America/New_York"],
}  # fmt: skip


def test_every_jurisdiction_with_a_rule_has_a_standard_offset() -> None:
    assert set(STANDARD_OFFSET_HOURS) == set(BUSINESS_DAY_RULES) | set(CALENDAR_DAY_RULES)
    assert set(STATE_ZONES) - {"FR"} == set(STANDARD_OFFSET_HOURS)


@pytest.mark.parametrize("jurisdiction", sorted(STATE_ZONES))
def test_the_day_received_is_never_later_than_the_local_date_anywhere_in_the_state(
    jurisdiction: str,
) -> None:
    # Given every hour of a year, winter and summer time alike
    start = datetime(2026, 1, 1, tzinfo=UTC)
    for hour in range(0, 365 * 24):
        moment = start + timedelta(hours=hour, minutes=59)
        # When the day it was received is read for the jurisdiction
        day = received_on(moment, jurisdiction)
        # Then no local reading in the state is earlier, and UTC's never is
        local = [moment.astimezone(ZoneInfo(zone)).date() for zone in STATE_ZONES[jurisdiction]]
        assert day <= min(local) <= moment.date(), (jurisdiction, moment)


def test_an_evening_request_in_california_counts_from_its_own_day() -> None:
    # Given an opt-out at 20:00 in California on Sunday 29 November (Monday 04:00 in UTC)
    moment = datetime(2026, 11, 30, 4, 0, tzinfo=UTC)
    # Then its 15 business days count from the 29th, as for a request made that afternoon
    assert deadline_at(moment, "US-CA") == deadline_for(date(2026, 11, 29), "US-CA")
    assert deadline_at(moment, "US-CA") < deadline_for(moment.date(), "US-CA")
    assert deadline_at(moment, None) == deadline_at(moment, "US-CA")


def test_a_geolocated_state_never_gets_a_later_deadline_than_california() -> None:
    moment = datetime(2026, 11, 30, 22, 38, tzinfo=UTC)
    assert strictest_deadline_at(moment, "US-IA") == deadline_at(moment, "US-CA")
    assert strictest_deadline_at(moment, "US-VA") == deadline_at(moment, "US-CA")
    assert strictest_deadline_at(moment, None) == deadline_at(moment, "US-CA")
    # Whatever the located state's rule, the earlier of it and California's
    for state in ("US-CO", "US-IA", "US-XX"):
        found = strictest_deadline_at(moment, state)
        assert found == min(deadline_at(moment, state), deadline_at(moment, "US-CA"))
