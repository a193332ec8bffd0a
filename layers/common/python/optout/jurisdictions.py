"""Which jurisdiction codes name a real place (the API's `jurisdiction`, CloudFront's viewer
location; not an import row's, which the operator's import takes by its shape alone,
docs/deadlines.md): the country part an ISO 3166-1 alpha-2 country, and a US code a
real state, DC or inhabited territory. `ZZ`, `EU`, `UK` or `US-ZZ` matched the old shape check
and were counted as a place of their own (review s35 outside, open 1); `UK` is now kept as
`GB` (`ALIASES`), the others refused.

Countries are the regions `phonenumbers` (a layer dependency, kept current with Google's
libphonenumber) has a numbering plan for, less the three it names that are no ISO 3166-1
country: `AC` and `TA` (reserved by ISO for Ascension and Tristan da Cunha, parts of `SH`) and
`XK` (a user-assigned code). Its list leaves out the uninhabited ISO codes (`AQ`, `BV`, `GS`,
`HM`, `TF`, `UM`) and `PN`: no consumer states them. Imported on the first code outside the US
only (the hot routes' cold start stays free of it).

US codes are the places deadlines.py counts a day in (STANDARD_OFFSET_HOURS): the 50 states,
DC and the five inhabited territories. tests/unit/test_jurisdictions.py holds that list to the
`holidays` package's ISO 3166-2:US subdivisions (all of them but `UM`, uninhabited). Another
country's subdivision is taken by its shape (`FR-75C`): no installed list covers them all, and
nothing but the evidence reads one (its deadline is California's, its phones its country's).
"""

from functools import cache
from typing import Final

from optout.deadlines import STANDARD_OFFSET_HOURS

NOT_ISO_COUNTRIES: Final = frozenset({"AC", "TA", "XK"})
# `UK` is ISO 3166-1's "exceptionally reserved" code for the United Kingdom, whose code is `GB`;
# clients send it often enough that refusing it would lose whole opt-outs: taken, stored as `GB`.
ALIASES: Final = {"UK": "GB"}


def canonical(code: str) -> str | None:
    """The code a jurisdiction of the API's shape is kept as (`UK` as `GB`), or None when it
    names no real place."""
    code = ALIASES.get(code, code)
    return code if known(code) else None


def known(code: str) -> bool:
    """Whether a code of the API's shape (`CC` or `CC-SUB`, capitals) names a real place (an
    alias such as `UK` is not one: `canonical` maps it first)."""
    country, _, subdivision = code.partition("-")
    if country == "US":
        return not subdivision or code in STANDARD_OFFSET_HOURS
    return country in countries()


@cache
def countries() -> frozenset[str]:
    """ISO 3166-1 alpha-2 codes of the countries (and US) a jurisdiction may name."""
    from phonenumbers import SUPPORTED_REGIONS  # noqa: PLC0415 - a code outside the US only

    return frozenset(SUPPORTED_REGIONS) - NOT_ISO_COUNTRIES
