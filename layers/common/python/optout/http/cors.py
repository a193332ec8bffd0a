"""The public API's CORS rules, once: as the headers of an answer, and as Powertools'
CORSConfig for the Event Handler.

The capture function answers its two hot routes without importing the Event Handler
(docs/decisions.md, "The hot routes without the Event Handler"), so the headers CORSConfig
would add are built here too: the same rule (only an allowed Origin gets them) and the same
names and values, Powertools' always-allowed request headers included
(tests/unit/test_cors.py checks both against CORSConfig).
"""

from collections.abc import Mapping
from typing import TYPE_CHECKING, NamedTuple
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from aws_lambda_powertools.event_handler import CORSConfig

# What CORSConfig always allows besides the headers it is given.
POWERTOOLS_ALLOWED_HEADERS = (
    "Authorization", "Content-Type", "X-Amz-Date", "X-Api-Key", "X-Amz-Security-Token",
)  # fmt: skip


class Cors(NamedTuple):  # not a dataclass: cheaper to define at a cold start
    origins: tuple[str, ...]  # the first is CORSConfig's allow_origin
    allow_headers: tuple[str, ...]
    max_age: int

    @classmethod
    def from_env(
        cls, env: Mapping[str, str], allow_headers: tuple[str, ...], max_age: int
    ) -> "Cors":
        listed = [o.strip() for o in env.get("ALLOWED_ORIGINS", "").split(",") if o.strip()]
        return cls(tuple(listed) or ("https://example.invalid",), allow_headers, max_age)

    def headers(self, origin: str | None) -> dict[str, str]:
        """The CORS headers of an answer to a request from `origin`: none for an origin not
        allowed; with "*" allowed, any origin is answered "*" (as CORSConfig does)."""
        if origin and origin in self.origins:
            allowed_origin = origin
        elif origin and "*" in self.origins:
            allowed_origin = "*"
        else:
            return {}
        allowed = sorted(set(POWERTOOLS_ALLOWED_HEADERS + self.allow_headers))
        return {
            "Access-Control-Allow-Origin": allowed_origin,
            "Access-Control-Allow-Headers": ",".join(allowed),
            "Access-Control-Max-Age": str(self.max_age),
        }

    def trusts(self, origin: str | None, *own: str | None) -> bool:
        """Whether a request came from a page of one of our own sites: its Origin is listed
        exactly, or is one of `own` (origins we serve pages from that need no CORS: the
        privacy page's, the API's own). A "*" entry trusts no one here (it widens CORS, never
        the cookie link)."""
        if not origin or origin == "*":
            return False
        return origin in self.origins or origin in own

    def powertools(self) -> "CORSConfig":
        from aws_lambda_powertools.event_handler import CORSConfig  # noqa: PLC0415

        return CORSConfig(
            allow_origin=self.origins[0],
            extra_origins=list(self.origins[1:]),
            allow_headers=list(self.allow_headers),
            allow_credentials=False,
            max_age=self.max_age,
        )


DEFAULT_PORTS = {"https": 443, "http": 80}


def origin_of(url: str) -> str | None:
    """A URL's origin as a browser serialises it in `Origin` (scheme://host[:port], lower
    case, no default port), or None for a URL without one (empty, relative, not http(s))."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:  # a port out of range or not a number
        return None
    scheme, host = parts.scheme.lower(), parts.hostname
    if scheme not in DEFAULT_PORTS or not host:
        return None
    if ":" in host:  # IPv6
        host = f"[{host}]"
    return f"{scheme}://{host}" + ("" if port in (None, DEFAULT_PORTS[scheme]) else f":{port}")
