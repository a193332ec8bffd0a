"""A cookie read by its exact name, shared by the capture function and the local stack.

RFC 6265 §5.2 trims only SP and HTAB around a cookie's name; Python's `str.strip()` also
drops Unicode spaces (U+2000, U+00A0, U+3000, U+0085 …). A name such as
"\\u2000__Host-optout_device_id" does not start with `__Host-`, so a browser applies no prefix
rule to it and a sibling subdomain can set it (Domain=<parent>); read after `str.strip()` it
would pass for the `__Host-` cookie (review s29 stranger S1). So names are matched exactly,
and a name that equals the wanted one only once Unicode spaces are stripped counts as a
second copy: the request then reads no value, as for any cookie named twice (review s28 M1).
"""

import re
from collections.abc import Iterable

OWS = " \t"  # RFC 6265 §5.2: the only whitespace trimmed around a name or a value
# The http pages whose cookies no other site can set: no parent domain to share, and the
# network path is the machine itself (README, "The no-JavaScript webform").
_LOOPBACK_HTTP = re.compile(r"http://(?:127\.0\.0\.1|\[::1\]|localhost)(?::[0-9]{1,5})?")


def split_header(header: str) -> list[str]:
    """A Cookie header's `name=value` pairs, trimmed of SP and HTAB only (as API Gateway's
    `cookies` lists them)."""
    return [kept for part in header.split(";") if (kept := part.strip(OWS))]


def only_value(pairs: Iterable[str], name: str) -> str | None:
    """The value of the one cookie named exactly `name`; None when none is, or when more than
    one pair names it, counting a name equal to `name` only after a wider strip: which is the
    browser's own cannot be told."""
    values: list[str | None] = []
    for pair in pairs:
        key, _, value = pair.strip(OWS).partition("=")
        if key.strip() == name:  # str.strip(): the wider rule some reader could apply
            values.append(value.strip(OWS) if key.strip(OWS) == name else None)
    return values[0] if len(values) == 1 else None


def loopback_http(origin: str | None) -> bool:
    """Whether `origin` (a browser's `Origin` header) is an http page on this machine:
    `http://127.0.0.1`, `http://[::1]` or `http://localhost`, any port."""
    return bool(origin) and _LOOPBACK_HTTP.fullmatch(str(origin)) is not None
