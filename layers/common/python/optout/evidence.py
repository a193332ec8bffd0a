"""What is recorded about how a request arrived (CCPA §7101 record-keeping), minus PII."""

import unicodedata
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import unquote, urlsplit, urlunsplit

MAX_USER_AGENT = 512
REDACTED = "(redacted)"
AGENT_KEYS = ("name", "agent_id")


@dataclass(frozen=True)
class RequestContext:
    """Transport facts the API layer extracts from the HTTP request."""

    received_at: datetime
    gpc_header: bool
    user_agent: str | None = None
    edge_jurisdiction: str | None = None
    source_ip: str | None = None
    idempotency_key: str | None = None


def sanitise_page_url(url: str | None) -> str | None:
    """Scheme, host and path only: query strings and fragments often carry emails or tokens."""
    if not url:
        return None
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    host = parts.netloc.rpartition("@")[2]  # user:password@ can carry an email or a token
    # A path segment holding an @ is an email as often as not (/users/jane@example.com/…)
    path = "/".join(REDACTED if _has_at(s) else s for s in parts.path.split("/"))
    return urlunsplit((parts.scheme, host, path, "", ""))


def sanitise_policy_version(text: str) -> str:
    """Text the caller chose: kept as evidence, unless it holds an @ (an email, most likely)."""
    return REDACTED if _has_at(text) else text


def sanitise_agent(agent: dict[str, str | None] | None) -> dict[str, str] | None:
    """An authorised agent's name and id (CCPA §7026: counsel may ask that agent for the
    consumer's signed permission). They name the agent, not the consumer; an @ is redacted
    all the same (an email typed where a name goes). Evidence only: never logged."""
    if not agent:
        return None
    return {k: sanitise_policy_version(v) for k, v in agent.items() if k in AGENT_KEYS and v}


def _has_at(text: str) -> bool:
    """An @ however it is written: percent-encoded, or a compatibility form (the fullwidth one)."""
    return "@" in unicodedata.normalize("NFKC", unquote(text))


def evidence(
    ctx: RequestContext,
    *,
    jurisdiction: str | None,
    page_url: str | None,
    policy_version: str,
    store_ip: bool,
) -> dict[str, str | None]:
    located = None if jurisdiction else ctx.edge_jurisdiction
    return {
        "jurisdiction": jurisdiction or located,
        # Where the jurisdiction came from: the caller stated it ("request"), or CloudFront
        # located the request ("geolocation": the deadline is then at least California's).
        "jurisdiction_from": "request" if jurisdiction else ("geolocation" if located else None),
        "user_agent": (ctx.user_agent or "")[:MAX_USER_AGENT] or None,
        "page_url": sanitise_page_url(page_url),
        "policy_version": sanitise_policy_version(policy_version),
        "ip_address": ctx.source_ip if store_ip else None,
    }
