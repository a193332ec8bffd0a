"""Response deadlines by jurisdiction (optout.deadlines). Expected dates counted by hand."""

from datetime import date

import pytest

from optout.deadlines import add_business_days, deadline_for


def test_california_counts_15_business_days_skipping_weekends() -> None:
    # Given a request on Sunday 29 Nov 2026 (no holidays in the next three weeks)
    # Then: Mon 30 Nov is day 1 ... Fri 18 Dec is day 15.
    assert deadline_for(date(2026, 11, 29), "US-CA") == date(2026, 12, 18)


def test_california_skips_thanksgiving_and_the_day_after() -> None:
    # Given Wednesday 25 Nov 2026: Thu 26 (Thanksgiving) and Fri 27 (Day after, a California
    # state holiday) do not count, nor the weekend. Mon 30 Nov is day 1 -> Fri 18 Dec is day 15.
    # (Without the holidays it would be Wed 16 Dec.)
    assert deadline_for(date(2026, 11, 25), "US-CA") == date(2026, 12, 18)


def test_california_skips_christmas_and_new_year() -> None:
    # Given Friday 11 Dec 2026: Dec 14-18 (1-5), 21-24 (6-9), Fri 25 is Christmas,
    # 28-31 (10-13), Fri 1 Jan is New Year's Day, Mon 4 Jan (14), Tue 5 Jan 2027 (15).
    assert deadline_for(date(2026, 12, 11), "US-CA") == date(2027, 1, 5)


def test_california_skips_observed_holidays_across_the_year_end() -> None:
    # Given Monday 13 Dec 2027: Dec 14-17 (1-4), 20-23 (5-8), Fri 24 is Christmas observed,
    # 27-30 (9-12), Fri 31 is New Year's Day 2028 observed, Jan 3-5 2028 (13-15).
    assert deadline_for(date(2027, 12, 13), "US-CA") == date(2028, 1, 5)


def test_california_skips_juneteenth_observed_and_independence_day_observed() -> None:
    # Given Thursday 17 Jun 2027: Fri 18 Jun is Juneteenth observed; Jun 21-25 (1-5),
    # Jun 28-Jul 2 (6-10), Mon 5 Jul is Independence Day observed, Jul 6-9 (11-14), Mon 12 (15).
    assert deadline_for(date(2027, 6, 17), "US-CA") == date(2027, 7, 12)


def test_a_business_day_count_starts_the_day_after_receipt() -> None:
    assert add_business_days(date(2026, 12, 1), 1) == date(2026, 12, 2)
    assert add_business_days(date(2026, 12, 4), 1) == date(2026, 12, 7)  # Fri -> Mon


@pytest.mark.parametrize(
    "state", ["US-CO", "US-CT", "US-TX", "US-MT", "US-NH", "US-OR", "US-DE", "US-NJ", "US-VA"]
)
def test_45_day_states_count_calendar_days(state: str) -> None:
    # 29 Nov 2026 + 45 days: 1 more in Nov, 31 in Dec (32), 13 in Jan -> 13 Jan 2027.
    assert deadline_for(date(2026, 11, 29), state) == date(2027, 1, 13)


def test_45_day_deadline_may_fall_on_a_holiday() -> None:
    # 10 Nov 2026 + 45 days = 25 Dec 2026: calendar days are not moved.
    assert deadline_for(date(2026, 11, 10), "US-CO") == date(2026, 12, 25)


def test_iowa_gets_90_calendar_days() -> None:
    # 29 Nov 2026 + 90: Nov 30 (1), Dec (32), Jan (63), Feb 27 (90).
    assert deadline_for(date(2026, 11, 29), "US-IA") == date(2027, 2, 27)


@pytest.mark.parametrize("jurisdiction", [None, "US", "GB", "US-ZZ"])
def test_unknown_jurisdiction_gets_the_california_rule(jurisdiction: str | None) -> None:
    assert deadline_for(date(2026, 11, 25), jurisdiction) == date(2026, 12, 18)


def test_california_counts_susan_b_anthony_day_as_a_business_day() -> None:
    # Given a request on Monday 2028-02-07. Tuesday 15 Feb is Susan B. Anthony Day, which is
    # commemorative only; Presidents' Day (Mon 21) is a day off.
    received = date(2028, 2, 7)
    # Then: Tue 8 is day 1 ... Fri 11 is 4, Tue 15 is 6, Fri 18 is 9, Tue 22 is 10 ...
    # Tue 29 is day 15 (it would be Wed 1 March if the 15th were skipped)
    assert deadline_for(received, "US-CA") == date(2028, 2, 29)
