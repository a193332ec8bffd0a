"""What is recorded about how a request arrived (CCPA §7101 record-keeping), minus PII.

Text the caller chose (the page's path, the policy version, an agent's name and id, the user
agent) is kept only where it holds no email address or phone number by the rule the operator's
reasons meet (optout/identifier_text.py): a page path keeps its segments but those, a user
agent only its `product/version` tokens, and the policy version equal to the deployed
PolicyVersion setting is kept as it is (the operator's value). A customer id has no shape to
recognise: the request's own identifier values (capture passes them as `named`) are redacted
where one appears as a word; another's customer id put in a page path, a policy version or an
agent's name is kept (docs/operations.md says so).
"""

import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import SplitResult, urlsplit, urlunsplit

from optout.identifier_text import (
    holds_email,
    holds_grouped_number,
    holds_identifier,
    holds_number,
    names_any,
)

MAX_USER_AGENT = 512
REDACTED = "(redacted)"
_MAX_PORT = 65535
_IPV4 = re.compile(r"\d{1,3}(?:\.\d{1,3}){3}")  # kept as it is, like a bracketed IPv6 literal
AGENT_KEYS = ("name", "agent_id")
# An import's `jurisdiction_from`: the row named it, or it had none and took the import's
# default (California's deadline, counted `unknown` in the §7102 groups; review s31 counsel F6)
IMPORTED, IMPORT_DEFAULT = "import", "import_default"
# RFC 9110 `product = token ["/" product-version]`, with the version: what names the software.
# Comments (parenthesised) are free text, where a tool puts a contact address; they go.
_PRODUCT = re.compile(r"[A-Za-z][A-Za-z0-9!#$%&'*+^_`|~.-]{0,63}/[A-Za-z0-9][A-Za-z0-9._+-]{0,63}")


@dataclass(frozen=True)
class RequestContext:
    """Transport facts the API layer extracts from the HTTP request."""

    received_at: datetime
    gpc_header: bool
    user_agent: str | None = None
    edge_jurisdiction: str | None = None
    source_ip: str | None = None
    idempotency_key: str | None = None


def split_url(url: str) -> SplitResult | None:
    """urlsplit's parts, or None for a URL it refuses with ValueError: an unclosed "[", a
    bracketed host that is no IP address, a netloc NFKC breaks and, on Lambda's current 3.13
    (CVE-2025-0938's fix, not in the tests' 3.11.7), brackets in a host name ("https://a.[::1]/")."""
    try:
        return urlsplit(url)
    except ValueError:
        return None


def sanitise_page_url(url: str | None, named: Collection[str] = ()) -> str | None:
    """Scheme, host and path only: query strings and fragments often carry emails or tokens.
    None for a URL urlsplit refuses: a stranger's "https://[::1/" raised out of the handler.
    `named`: the request's own identifier values, redacted as words wherever they appear."""
    if not url:
        return None
    parts = split_url(url)
    if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    host = _authority(parts.netloc.rpartition("@")[2], named)  # user:password@: a token
    if not host:
        return None
    # A path segment holding an email or a phone (/users/jane@example.com/, /sms/+1415…/), or
    # the request's own customer id (/account/CUST-88231/)
    judge = _judge(holds_identifier, named)
    path = "/".join(REDACTED if judge(s) else s for s in parts.path.split("/"))
    return urlunsplit((parts.scheme, host, path, "", ""))


def _authority(hostport: str, named: Collection[str] = ()) -> str:
    """The host as typed (it is whatever the caller sent), but `(redacted)` whole when it holds
    an email (`jane%40example.com.shop.example`: where the address ends is anyone's guess) and
    each dot-separated label holding a phone (`14155550132.sms.example`) as `(redacted)`, and
    whole when a phone is written across its labels (`415.555.0132.sms.example`); an IP
    literal kept as it is; the port only if it is one (digits, at most 65535: too short to
    hold a phone; `:4155550132` goes)."""
    host, colon, port = hostport.rpartition(":")
    if not colon or "]" in port:  # no port (`[::1]` alone ends in "]", not a port)
        host, port = hostport, ""
    if port and not (port.isascii() and port.isdigit() and int(port) <= _MAX_PORT):
        port = ""
    if host.startswith("[") and host.endswith("]"):  # an IP literal (urlsplit checked it)
        pass
    elif holds_email(host):
        host = REDACTED
    else:
        judge = _judge(holds_number, named)
        host = ".".join(REDACTED if judge(s) else s for s in host.split("."))
        if holds_grouped_number(host) and not _IPV4.fullmatch(host):
            host = REDACTED  # a phone written across labels (415.555.0132.sms.example)
    return f"{host}:{port}" if port else host


def sanitise_policy_version(
    text: str, deployed: str | None = None, named: Collection[str] = ()
) -> str:
    """Text the caller chose: kept as evidence, unless it holds an email or a phone number, or
    one of the request's own identifier values (`named`) as a word. The deployed PolicyVersion
    setting (`deployed`) is the operator's own value, never a person's: it is kept whatever
    its shape (a build stamp 2026011501 reads as a phone)."""
    if text == deployed:
        return text
    return REDACTED if holds_identifier(text) or _names(text, named) else text


def sanitise_user_agent(text: str | None, named: Collection[str] = ()) -> str | None:
    """The `product/version` tokens only (`Mozilla/5.0 … Chrome/120.0.6099.109 Safari/537.36`):
    comments and loose words go, and so does a token holding an email or phone. A version's
    dot-separated parts are judged one by one: a browser's 120.0.6099.109 is not a phone, nor
    is a date-stamped build (every Firefox's Gecko/20100101); and the version whole by the
    shape of a phone written in groups (`415.555.0132`, `44.20.7946.0958`: holds_grouped_number)."""
    judge = _judge(_names_person, named)
    kept = [
        token
        for token in (text or "")[:MAX_USER_AGENT].split()
        if _PRODUCT.fullmatch(token) and not judge(token)
    ]
    return " ".join(kept) or None


def _names_person(token: str) -> bool:
    name, _, version = token.partition("/")
    return (
        holds_email(token)
        or any(holds_number(p) for p in (name, *version.split(".")))
        or holds_grouped_number(version)
    )


def sanitise_agent(
    agent: dict[str, str | None] | None, named: Collection[str] = ()
) -> dict[str, str] | None:
    """An authorised agent's name and id (CCPA §7026: counsel may ask that agent for the
    consumer's signed permission). They name the agent, not the consumer; an @ is redacted
    all the same (an email typed where a name goes). Evidence only: never logged."""
    if not agent:
        return None
    return {
        k: sanitise_policy_version(v, named=named)
        for k, v in agent.items()
        if k in AGENT_KEYS and v
    }


def _names(text: str, named: Collection[str]) -> bool:
    """Whether `text` holds one of the request's own identifier values as a word (names_any:
    four characters or more, any case): a customer id has no shape, but this one is at hand."""
    return bool(named) and names_any(text, named)


def _judge(rule: Callable[[str], bool], named: Collection[str]) -> Callable[[str], bool]:
    """`rule`, or `rule` and the request's own values (`_names`) when it named any: a banner
    call names none, and its per-segment and per-token checks stay one call each."""
    return (lambda text: rule(text) or names_any(text, named)) if named else rule


def evidence(
    ctx: RequestContext,
    *,
    jurisdiction: str | None,
    page_url: str | None,
    policy_version: str,
    store_ip: bool,
    deployed_policy_version: str | None = None,
    named: Collection[str] = (),
) -> dict[str, str | None]:
    """`named`: the identifier values the request itself named (its customer id, email,
    phone), redacted wherever one appears as a word in the texts kept."""
    located = None if jurisdiction else ctx.edge_jurisdiction
    return {
        "jurisdiction": jurisdiction or located,
        # Where the jurisdiction came from: the caller stated it ("request"), or CloudFront
        # located the request ("geolocation": the deadline is then at least California's).
        "jurisdiction_from": "request" if jurisdiction else ("geolocation" if located else None),
        "user_agent": sanitise_user_agent(ctx.user_agent, named),
        "page_url": sanitise_page_url(page_url, named),
        "policy_version": sanitise_policy_version(policy_version, deployed_policy_version, named),
        "ip_address": ctx.source_ip if store_ip else None,
    }


def jurisdiction_stated(event: Mapping[str, Any]) -> bool:
    """Whether the requester named the jurisdiction themselves (not geolocated or unknown):
    only then may a public page name its zone (review s18 diff C3)."""
    return (event.get("evidence") or {}).get("jurisdiction_from") == "request"
