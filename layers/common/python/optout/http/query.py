"""Query parameters a route does not take are refused, not silently ignored.

For the operator routes: a script's typo (`?limt=5`) would otherwise quietly get the default.
Public routes leave unknown parameters alone: a status link may come back with tracking
parameters a mail client added, and it must still open.
"""

from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl

from optout.http.answers import Refused, field_name


def refuse_unknown(event: dict[str, Any], taken: Mapping[str, frozenset[str]]) -> None:
    """`taken`: route key -> the query parameter names it reads (a route not listed reads none)."""
    raw = str(event.get("rawQueryString") or "")
    if not raw:
        return
    allowed = taken.get(str(event.get("routeKey", "")), frozenset())
    for name, _ in parse_qsl(raw, keep_blank_values=True):
        if name not in allowed:
            field = field_name(name)
            label = "this parameter" if field == "body" else name
            message = f"{label} is not a query parameter of this route"
            raise Refused(422, "invalid_field", message, "query" if field == "body" else field)
