"""The mixed request stream: banner opt-outs, GPC, webform opt-outs and identity links.

A fixed population of people (each with an email, a customer id, sometimes a phone, and one
to three browsers) sends requests drawn with a seeded RNG, so a run is repeatable and the
identity clusters grow the way they do in production: a device first, then a link to its
email when the person logs in, then a webform opt-out that reaches everything linked.
"""

import json
import random
from copy import deepcopy
from dataclasses import dataclass
from typing import Any

from bench.environment import ROOT
from local.environment import LOCAL_IAM_CALLER

# The stated mix (also the mix the cost model prices).
MIX: dict[str, float] = {"banner": 0.50, "gpc": 0.15, "webform": 0.20, "link": 0.15}
IAM_AUTHORIZER = {
    "iam": {"accessKey": "AKIAEXAMPLE", "accountId": "123456789012", "callerId": "AIDAEXAMPLE",
            "principalOrgId": None, "userArn": LOCAL_IAM_CALLER,
            "userId": "AIDAEXAMPLE", "cognitoIdentity": None}
}  # fmt: skip


@dataclass(frozen=True)
class Person:
    email: str
    customer_id: str
    phone: str | None
    devices: tuple[str, ...]


@dataclass(frozen=True)
class Request:
    kind: str  # a key of MIX
    path: str
    body: dict[str, Any]
    headers: dict[str, str]
    iam: bool = False


def people(count: int, rng: random.Random) -> list[Person]:
    found: list[Person] = []
    for n in range(count):
        devices = tuple(f"{rng.getrandbits(128):032x}" for _ in range(rng.choice((1, 1, 2, 3))))
        # 650-253-xxxx parses as a valid US number (phonenumbers rejects most 555 numbers).
        phone = f"+1650253{n % 10_000:04d}" if rng.random() < 0.3 else None
        found.append(Person(f"person{n}@example.com", f"cust-{n:06d}", phone, devices))
    return found


def requests(count: int, seed: int = 7, population: int | None = None) -> list[Request]:
    """`count` requests in the MIX proportions over count/4 people (clusters grow to ~6)."""
    rng = random.Random(seed)
    crowd = people(population or max(4, count // 4), rng)
    kinds = list(MIX)
    weights = [MIX[k] for k in kinds]
    return [_request(rng.choices(kinds, weights)[0], rng.choice(crowd), rng) for _ in range(count)]


def _request(kind: str, person: Person, rng: random.Random) -> Request:
    device = rng.choice(person.devices)
    if kind in ("banner", "gpc"):
        body: dict[str, Any] = {
            "device_id": device,
            "opt_out": {"sale": True, "share": True, "targeted_advertising": True},
            "page_url": "https://shop.example.com/products/42",
        }
        if rng.random() < 0.1:  # a logged-in page tells the banner who this is
            body["identity"] = {"email": person.email}
        headers = {"sec-gpc": "1"} if kind == "gpc" else {}
        return Request(kind, "/v1/consent", body, headers)
    if kind == "webform":
        body = {"email": person.email, "jurisdiction": "US-CA"}
        if person.phone and rng.random() < 0.5:
            body["phone"] = person.phone
        if rng.random() < 0.3:
            body["customer_id"] = person.customer_id
        return Request(kind, "/v1/opt-out", body, {})
    other = rng.choice(
        [
            {"type": "email", "value": person.email},
            {"type": "customer_id", "value": person.customer_id},
        ]
    )
    body = {"links": [{"a": {"type": "device_id", "value": device}, "b": other}]}
    return Request(kind, "/v1/identity-links", body, {}, iam=True)


_TEMPLATE: dict[str, Any] = json.loads(
    (ROOT / "events" / "consent_banner_opt_out.json").read_text(encoding="utf-8")
)


def http_event(request: Request) -> dict[str, Any]:
    """The API Gateway HTTP API (payload 2.0) event for a request, as API Gateway sends it."""
    event = deepcopy(_TEMPLATE)
    event["routeKey"] = event["requestContext"]["routeKey"] = f"POST {request.path}"
    event["rawPath"] = event["requestContext"]["http"]["path"] = request.path
    event["headers"].update(request.headers)
    event["body"] = json.dumps(request.body)
    event["headers"]["content-length"] = str(len(event["body"]))
    if request.iam:
        event["requestContext"]["authorizer"] = deepcopy(IAM_AUTHORIZER)
    else:
        event["requestContext"].pop("authorizer", None)
    return event
