"""What the transport tells us about a request, read once from the API Gateway event."""

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from optout.errors import InvalidInput
from optout.evidence import RequestContext
from optout.jurisdictions import known

MAX_IDEMPOTENCY_KEY = 255
_JURISDICTION = re.compile(r"^[A-Z]{2}(-[A-Z0-9]{1,3})?$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def request_context(event: Mapping[str, Any]) -> RequestContext:
    """`event`: the API Gateway HTTP API (payload 2.0) event as Lambda hands it over (no
    Powertools data class: the capture function's hot routes never import them)."""
    # API Gateway sends names in lower case; read them as Powertools' headers would (any case).
    headers = {str(k).lower(): v for k, v in (event.get("headers") or {}).items()}
    # Set by CloudFront (and forwarded) when the edge is on; without it anyone can send them,
    # so only a well-formed code of a real place is taken (optout/jurisdictions.py).
    country = headers.get("cloudfront-viewer-country")
    region = headers.get("cloudfront-viewer-country-region")
    edge = f"{country}-{region}" if country and region else None
    user_agent = headers.get("user-agent")
    return RequestContext(
        received_at=datetime.now(UTC),
        gpc_header=gpc_header(headers),
        # a space, not nothing: the evidence keeps the UA's product tokens, which a removed
        # CR LF would glue to the next word
        user_agent=_CONTROL.sub(" ", user_agent) if user_agent else None,
        edge_jurisdiction=edge if edge and _JURISDICTION.fullmatch(edge) and known(edge) else None,
        source_ip=event["requestContext"]["http"]["sourceIp"],
        idempotency_key=idempotency_key(headers.get("idempotency-key")),
    )


def gpc_header(headers: Mapping[str, Any]) -> bool:
    """Whether the request carried `Sec-GPC: 1` (`headers`: names in lower case). Only the
    value 1 counts, without the whitespace HTTP allows around any field value. A header line
    repeated (a proxy adding its own) arrives joined by commas: it counts when every item is
    1 (review s29 stranger N1); `1, 0` or an empty item stays unsaid, as any other value."""
    items = str(headers.get("sec-gpc") or "").split(",")
    return all(item.strip(" \t") == "1" for item in items)


def idempotency_key(raw: str | None) -> str | None:
    """1-255 printable characters: no CR, LF, NUL or other control (header injection)."""
    if raw is None:
        return None
    if not 1 <= len(raw) <= MAX_IDEMPOTENCY_KEY or not raw.isprintable():
        message = f"Idempotency-Key must be 1-{MAX_IDEMPOTENCY_KEY} printable characters"
        raise InvalidInput(message, "Idempotency-Key")
    return raw
