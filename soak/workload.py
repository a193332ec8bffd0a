"""The soak's opt-outs: every way one arrives, each with the identifiers it must reach.

Kinds, taken in turn: a webform opt-out (email, phone, customer id), a banner opt-out (device),
a banner opt-out from a logged-in page (an identity token binds email and customer id to the
device: verified), a GPC signal (device), a banner opt-out followed by the backend's verified
link of that device to an email (`POST /v1/identity-links`), and a webform opt-out from a
browser (device and asserted email and phone). Every opt-out covers sale, share and targeted
advertising, which every configured system serves, so each identifier must reach every system
that accepts its type. Identifiers are unique per opt-out and already normalised.
"""

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt

from optout.identity_token import device_sha256
from optout.settings import LOCAL_TOKEN_KEY, LOCAL_TOKEN_KID

KINDS = ("webform", "banner", "token", "gpc", "link", "mixed")
ALL_PURPOSES = {"sale": True, "share": True, "targeted_advertising": True, "profiling": True}
AREA_CODES = ("415", "212", "310", "617", "206", "312")


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)
    signed: bool = False


@dataclass
class OptOut:
    n: int
    kind: str
    identifiers: dict[str, str]  # type -> normalised value: all it must reach
    calls: list[Call]
    request_ids: list[str] = field(default_factory=list)  # one per accepted call
    refused: list[int] = field(default_factory=list)  # statuses of calls not accepted


def identity(n: int) -> dict[str, str]:
    area = AREA_CODES[(n // 10_000) % len(AREA_CODES)]
    return {
        "device_id": f"soak-device-{n:07d}-abcdef",
        "email": f"soak{n}@example.com",
        "phone": f"+1{area}555{n % 10_000:04d}",
        "customer_id": f"cust-{n:07d}",
    }


def token(claims: dict[str, str]) -> str:
    """What a site's login backend signs (the local stack's documented development key)."""
    now = datetime.now(UTC)
    body: dict[str, Any] = {
        "aud": "optout-bridge",
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(minutes=10)).timestamp()),
        **claims,
    }
    return jwt.encode(body, LOCAL_TOKEN_KEY, algorithm="HS256", headers={"kid": LOCAL_TOKEN_KID})


def opt_out(n: int, kind: str) -> OptOut:
    ids = identity(n)
    device, email, phone, customer = (
        ids["device_id"], ids["email"], ids["phone"], ids["customer_id"],
    )  # fmt: skip
    banner = Call("POST", "/v1/consent", {"device_id": device, "opt_out": ALL_PURPOSES})
    body: dict[str, Any]
    if kind == "webform":
        body = {"email": email, "phone": phone, "customer_id": customer, "jurisdiction": "US-CA"}
        return OptOut(n, kind, {"email": email, "phone": phone, "customer_id": customer},
                      [Call("POST", "/v1/opt-out", body)])  # fmt: skip
    if kind == "banner":
        return OptOut(n, kind, {"device_id": device}, [banner])
    if kind == "token":
        signed = token({"email": email, "customer_id": customer,
                        "device_sha256": device_sha256(device)})  # fmt: skip
        body = {"device_id": device, "opt_out": ALL_PURPOSES, "identity_token": signed}
        return OptOut(n, kind, {"device_id": device, "email": email, "customer_id": customer},
                      [Call("POST", "/v1/consent", body)])  # fmt: skip
    if kind == "gpc":
        body = {"device_id": device, "opt_out": {"sale": True}, "gpc": True}
        return OptOut(n, kind, {"device_id": device},
                      [Call("POST", "/v1/consent", body, {"Sec-GPC": "1"})])  # fmt: skip
    if kind == "link":
        link = {"a": {"type": "device_id", "value": device}, "b": {"type": "email", "value": email}}
        calls = [banner, Call("POST", "/v1/identity-links", {"links": [link]}, signed=True)]
        return OptOut(n, kind, {"device_id": device, "email": email}, calls)
    if kind == "mixed":
        body = {"device_id": device, "email": email, "phone": phone}
        return OptOut(n, kind, {"device_id": device, "email": email, "phone": phone},
                      [Call("POST", "/v1/opt-out", body)])  # fmt: skip
    raise ValueError(f"unknown kind {kind}")


def workload(first: int, count: int) -> list[OptOut]:
    return [opt_out(n, KINDS[n % len(KINDS)]) for n in range(first, first + count)]
