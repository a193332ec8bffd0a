"""Which jurisdiction codes name a real place (optout.jurisdictions), held to maintained lists:
`holidays`' ISO 3166-2:US subdivisions (a layer dependency) and `pycountry`'s ISO 3166-1
countries (a test dependency: the layer does not ship it)."""

import holidays
import pycountry
import pytest

from optout import jurisdictions
from optout.deadlines import PLACE_NAMES, STANDARD_OFFSET_HOURS

ISO_COUNTRIES = frozenset(c.alpha_2 for c in pycountry.countries)
# ISO 3166-1 countries without a numbering plan in phonenumbers: uninhabited, or Pitcairn
UNINHABITED = frozenset({"AQ", "BV", "GS", "HM", "PN", "TF", "UM"})


def test_every_country_taken_is_an_iso_3166_1_country() -> None:
    assert jurisdictions.countries() <= ISO_COUNTRIES


def test_every_iso_country_but_the_uninhabited_is_taken() -> None:
    assert ISO_COUNTRIES - jurisdictions.countries() == UNINHABITED


def test_the_us_codes_taken_are_holidays_subdivisions_but_the_uninhabited_one() -> None:
    us = {f"US-{code}" for code in holidays.country_holidays("US").subdivisions}
    taken = {code for code in us if jurisdictions.known(code)}
    assert taken == us - {"US-UM"} == set(STANDARD_OFFSET_HOURS)
    # every code taken has a name for the pages' dates
    assert set(STANDARD_OFFSET_HOURS) == set(PLACE_NAMES)


@pytest.mark.parametrize("code", ["ZZ", "EU", "UK-ENG", "XK", "AC", "TA", "US-ZZ", "US-UM", "QQ-1"])
def test_codes_of_no_real_place_are_not_known(code: str) -> None:
    assert not jurisdictions.known(code)
    assert jurisdictions.canonical(code) is None


def test_uk_is_kept_as_gb_the_united_kingdoms_iso_code() -> None:
    assert "UK" not in ISO_COUNTRIES and "GB" in ISO_COUNTRIES
    assert jurisdictions.canonical("UK") == "GB"
    assert jurisdictions.canonical("GB") == "GB"
    assert jurisdictions.canonical("US-CA") == "US-CA"


@pytest.mark.parametrize("code", ["US", "US-CA", "US-VI", "DE", "FR-75C", "GB-ENG", "SH"])
def test_real_places_are_known(code: str) -> None:
    assert jurisdictions.known(code)
