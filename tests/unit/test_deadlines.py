"""Response deadlines by jurisdiction (optout.deadlines). Expected dates counted by hand."""

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from optout.deadlines import (
    BUSINESS_DAY_RULES,
    CALENDAR_DAY_RULES,
    LATEST_OFFSET_HOURS,
    LAW_IN_FORCE,
    RULES_FROM_YEAR,
    STANDARD_OFFSET_HOURS,
    STATE_NAMES,
    STATE_OPT_OUTS,
    _days_off_from_package,
    add_business_days,
    answered_late,
    california_days_off,
    deadline_at,
    deadline_for,
    end_of,
    latest_date,
    received_on,
    strictest_deadline,
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
    assert set(CALENDAR_DAY_RULES) == {
        *FORTY_FIVE_DAY_STATES, *FUTURE_45_DAY_STATES, "US-FL", "US-IA"
    }  # fmt: skip
    assert set(BUSINESS_DAY_RULES) == {"US-CA"}


def test_every_state_law_but_californias_has_a_date_in_force_and_its_opt_outs() -> None:
    assert set(LAW_IN_FORCE) == set(STATE_NAMES) - {"US-CA"}
    assert set(STATE_OPT_OUTS) == set(STATE_NAMES) - {"US-CA"}
    # review s19 law L2: Iowa grants the sale opt-out only; Utah and Alabama no profiling one
    assert STATE_OPT_OUTS["US-IA"] == {"sale"}
    assert STATE_OPT_OUTS["US-UT"] == STATE_OPT_OUTS["US-AL"] == {"sale", "targeted_advertising"}
    assert set(CALENDAR_DAY_RULES) <= set(STATE_NAMES)


# review s19 law L1: laws enacted in 2026, listed before they take force (OK SB 546, AL HB 351)
FUTURE_45_DAY_STATES = {"US-OK": date(2027, 1, 1), "US-AL": date(2027, 5, 1)}


@pytest.mark.parametrize(("state", "in_force"), FUTURE_45_DAY_STATES.items())
def test_a_state_rule_applies_from_its_law_s_date_in_force(state: str, in_force: date) -> None:
    # Given a request received (in the state's date) the day before its law takes force: it
    # is counted as from a state without a law, California's 15 business days
    day_before = in_force - timedelta(days=1)
    assert deadline_for(day_before, state) == deadline_for(day_before, "US-ZZ")
    assert deadline_for(day_before, state) < day_before + timedelta(days=45)
    # Then from its first day, its own 45 calendar days
    assert deadline_for(in_force, state) == in_force + timedelta(days=45)


def test_oklahoma_s_first_day_is_read_in_oklahoma_s_date() -> None:
    # 2027-01-01 03:00 UTC is still 31 December in Oklahoma (UTC-6): California's count
    new_year_utc = datetime(2027, 1, 1, 3, 0, tzinfo=UTC)
    assert deadline_at(new_year_utc, "US-OK") == date(2027, 1, 25)  # 1 and 18 Jan off
    assert deadline_at(new_year_utc + timedelta(hours=3), "US-OK") == date(2027, 2, 15)


def test_florida_gets_45_calendar_days_from_its_law_s_date() -> None:
    # Fla. Stat. §501.701 et seq., in force 2024-07-01 (review s19 law L4)
    assert STATE_NAMES["US-FL"] == "Florida"
    assert deadline_for(date(2026, 11, 29), "US-FL") == date(2027, 1, 13)
    assert deadline_for(date(2024, 6, 30), "US-FL") == deadline_for(date(2024, 6, 30), "US-CA")


@pytest.mark.parametrize("state", ["US-LA", "US-VT"])
def test_louisiana_and_vermont_are_named_but_keep_the_california_count(state: str) -> None:
    # No source checked gives their response period (review s19 law L1): named, no rule
    assert state in STATE_NAMES and state not in CALENDAR_DAY_RULES
    for received in (date(2026, 12, 1), date(2028, 6, 1)):
        assert deadline_for(received, state) == deadline_for(received, "US-CA")


def test_a_state_rule_is_not_applied_before_its_law_even_for_an_older_import() -> None:
    # Indiana's law took force on 2026-01-01: a request of 2025-12-31 had no 45 days there
    assert deadline_for(date(2025, 12, 31), "US-IN") == deadline_for(date(2025, 12, 31), "US-CA")
    assert deadline_for(date(2026, 1, 1), "US-IN") == date(2026, 2, 15)


def test_a_geolocated_oklahoma_request_is_counted_as_california_s_before_and_after() -> None:
    for moment in (datetime(2026, 12, 31, 18, tzinfo=UTC), datetime(2027, 1, 4, 18, tzinfo=UTC)):
        assert strictest_deadline(moment, "US-OK") == (deadline_at(moment, "US-CA"), "US-CA")


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

# Every IANA zone in use in each state, DC and inhabited territory (for another
# jurisdiction: every US zone of the states).
CENTRAL_EASTERN = ["America/Chicago", "America/New_York"]
STATE_ZONES = {
    "US-CA": ["America/Los_Angeles"], "US-WA": ["America/Los_Angeles"],
    "US-OR": ["America/Los_Angeles", "America/Boise"],
    "US-ID": ["America/Los_Angeles", "America/Boise"],
    "US-NV": ["America/Los_Angeles", "America/Denver"],  # West Wendover: Mountain, no zone
    "US-AK": ["America/Adak", "America/Anchorage",
    "America/Juneau", "America/Sitka", "America/Yakutat", "America/Nome", "America/Metlakatla"],
    "US-HI": ["Pacific/Honolulu"], "US-AS": ["Pacific/Pago_Pago"],
    "US-GU": ["Pacific/Guam"], "US-MP": ["Pacific/Saipan"],
    "US-PR": ["America/Puerto_Rico"], "US-VI": ["America/St_Thomas"],
    "US-CO": ["America/Denver"], "US-UT": ["America/Denver"], "US-MT": ["America/Denver"],
    "US-NM": ["America/Denver"], "US-WY": ["America/Denver"],
    "US-AZ": ["America/Phoenix", "America/Denver"],  # the Navajo Nation keeps summer time
    "US-TX": ["America/Chicago", "America/Denver"], "US-NE": ["America/Chicago", "America/Denver"],
    "US-KS": ["America/Chicago", "America/Denver"],
    "US-ND": ["America/Chicago", "America/Denver", "America/North_Dakota/Center",
              "America/North_Dakota/New_Salem", "America/North_Dakota/Beulah"],
    "US-SD": ["America/Chicago", "America/Denver"],
    "US-IA": ["America/Chicago"], "US-MN": ["America/Chicago"], "US-AL": ["America/Chicago"],
    "US-AR": ["America/Chicago"], "US-IL": ["America/Chicago"], "US-LA": ["America/Chicago"],
    "US-MS": ["America/Chicago"], "US-MO": ["America/Chicago"], "US-OK": ["America/Chicago"],
    "US-WI": ["America/Chicago"],
    "US-TN": CENTRAL_EASTERN, "US-FL": CENTRAL_EASTERN,
    "US-MI": ["America/Detroit", "America/Menominee"],
    "US-IN": ["America/Indiana/Indianapolis", "America/Chicago", "America/Indiana/Knox",
              "America/Indiana/Tell_City", "America/Indiana/Vincennes"],
    "US-KY": ["America/Kentucky/Louisville", "America/Chicago", "America/Kentucky/Monticello"],
    **{code: ["America/New_York"] for code in (
        "US-VA", "US-CT", "US-DE", "US-NH", "US-NJ", "US-MD", "US-RI", "US-DC", "US-GA",
        "US-ME", "US-MA", "US-NY", "US-NC", "US-OH", "US-PA", "US-SC", "US-VT", "US-WV")},
    "FR": ["Pacific/Honolulu", "America/Adak", "America/Anchorage", "America/Los_Angeles",
           "America/Denver", "America/Phoenix", "America/Chicago", "America/New_York",
           "America/Puerto_Rico"],
}  # fmt: skip
# The hours of a year, winter and summer time alike, each at :59 and :00.
YEAR_OF_HOURS = [
    datetime(2026, 1, 1, tzinfo=UTC) + timedelta(hours=hour, minutes=minute)
    for hour in range(365 * 24)
    for minute in (0, 59)
]


def test_every_jurisdiction_with_a_rule_has_both_offsets() -> None:
    assert set(BUSINESS_DAY_RULES) | set(CALENDAR_DAY_RULES) <= set(STANDARD_OFFSET_HOURS)
    assert set(STATE_ZONES) - {"FR"} == set(STANDARD_OFFSET_HOURS) == set(LATEST_OFFSET_HOURS)
    assert len(STANDARD_OFFSET_HOURS) == 50 + 1 + 5  # the states, DC, five territories


@pytest.mark.parametrize("jurisdiction", sorted(STATE_ZONES))
def test_the_day_received_is_never_later_than_the_local_date_anywhere_in_the_state(
    jurisdiction: str,
) -> None:
    # Given every hour of a year, winter and summer time alike (the zones built once: nine
    # round-robin through ZoneInfo's 8-entry cache would reread every file each hour)
    zones = [ZoneInfo(zone) for zone in STATE_ZONES[jurisdiction]]
    for moment in YEAR_OF_HOURS:
        # When the day it was received is read for the jurisdiction
        day = received_on(moment, jurisdiction)
        # Then no local reading in the state is earlier
        local = [moment.astimezone(zone).date() for zone in zones]
        assert day <= min(local), (jurisdiction, moment)
        # and it is the local date in the state's westernmost zone in winter (not Hawaii's
        # for every state not listed, review s18 time T2)
        if moment.month == 1:
            assert day == min(local), (jurisdiction, moment)


@pytest.mark.parametrize("jurisdiction", sorted(STATE_ZONES))
def test_the_day_lateness_is_judged_on_is_never_earlier_than_the_local_date_anywhere(
    jurisdiction: str,
) -> None:
    zones = [ZoneInfo(zone) for zone in STATE_ZONES[jurisdiction]]
    for moment in YEAR_OF_HOURS:
        day = latest_date(moment, jurisdiction)
        local = [moment.astimezone(zone).date() for zone in zones]
        # Then it is the latest local date in the state, summer and winter (an unknown
        # jurisdiction: never earlier than any)
        if jurisdiction == "FR":
            assert day >= max(local), (jurisdiction, moment)
        else:
            assert day == max(local), (jurisdiction, moment)
        if moment.hour == 12 and moment.minute == 0:  # once a day: its last instant there
            last = end_of(day, jurisdiction)
            assert latest_date(last, jurisdiction) == day
            assert latest_date(last + timedelta(milliseconds=1), jurisdiction) > day


@pytest.mark.parametrize(
    ("jurisdiction", "zone", "answered"),
    [
        ("US-CA", "America/Los_Angeles", datetime(2026, 6, 23, 0, 40)),
        ("US-TX", "America/Chicago", datetime(2026, 6, 23, 1, 40)),
        ("US-IN", "America/Indiana/Indianapolis", datetime(2026, 6, 23, 1, 40)),
        ("US-NY", "America/New_York", datetime(2026, 6, 23, 5, 50)),
        ("US-NY", "America/New_York", datetime(2026, 6, 23, 0, 10)),
        ("US-ZZ", "America/New_York", datetime(2026, 6, 23, 0, 10)),
        (None, "America/Los_Angeles", datetime(2026, 6, 23, 0, 40)),
    ],
)
def test_an_answer_after_local_midnight_following_the_deadline_is_late(
    jurisdiction: str | None, zone: str, answered: datetime
) -> None:
    # Given a deadline of 22 June and an answer made on 23 June, local time (review s18 T1:
    # read at the state's standard time, these were all on 22 June, and on time)
    stamp = answered.replace(tzinfo=ZoneInfo(zone)).astimezone(UTC).isoformat()
    assert answered_late(stamp, date(2026, 6, 22), jurisdiction)
    # and an answer at 23:59 local on the deadline day is on time
    on_time = answered.replace(hour=23, minute=59, day=22, tzinfo=ZoneInfo(zone))
    assert not answered_late(on_time.astimezone(UTC).isoformat(), date(2026, 6, 22), jurisdiction)


def test_a_new_york_request_at_new_year_is_in_the_new_year() -> None:
    # 04:30 EST on 1 January 2027: read at Hawaii's time it was 31 December (review s18 T2)
    moment = datetime(2027, 1, 1, 4, 30, tzinfo=ZoneInfo("America/New_York"))
    assert received_on(moment, "US-NY") == date(2027, 1, 1)
    assert received_on(moment, "US-ZZ") == date(2026, 12, 31)  # unknown: still Hawaii's
    illinois = datetime(2027, 1, 1, 1, 30, tzinfo=ZoneInfo("America/Chicago"))
    assert received_on(illinois, "US-IL") == date(2027, 1, 1)


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
