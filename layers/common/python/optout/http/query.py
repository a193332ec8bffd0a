"""Query parameters a route does not take, or one it takes given twice, are refused, not
silently ignored or misread.

For the operator routes: a script's typo (`?limt=5`) would otherwise quietly get the default.
Public routes leave unknown parameters alone: a status link may come back with tracking
parameters a mail client added, and it must still open.
"""

from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl

from optout.http.answers import API_FIELDS, Refused, near_miss


def refuse_unknown(event: dict[str, Any], taken: Mapping[str, frozenset[str]]) -> None:
    """`taken`: route key -> the query parameter names it reads (a route not listed reads none)."""
    raw = str(event.get("rawQueryString") or "")
    if not raw:
        return
    allowed = taken.get(str(event.get("routeKey", "")), frozenset())
    seen: set[str] = set()
    for name, _ in parse_qsl(raw, keep_blank_values=True):
        if name not in allowed:
            raise _unknown(name, allowed)
        if name in seen:  # API Gateway joins the values with commas ("2026,2025"), which the
            # route would refuse as "not a whole number" (review s32 contract F7)
            raise Refused(
                422, "invalid_field", f"{name} is given more than once; send it once", name
            )
        seen.add(name)


def _unknown(name: str, allowed: frozenset[str]) -> Refused:
    """Named back only if it is one of our names or a typo of one this route reads (`limt`):
    a stranger's parameter name can be an identifier."""
    near = near_miss(name, allowed)
    if name not in API_FIELDS and not near:
        return Refused(
            422, "invalid_field", "this parameter is not a query parameter of this route", "query"
        )
    hint = f"; did you mean {near}?" if near else ""
    return Refused(
        422, "invalid_field", f"{name} is not a query parameter of this route{hint}", name
    )
