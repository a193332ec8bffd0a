"""The local demo login signs in only the demo's own accounts (review s23 C1): it checks no
password, so an address a real person could hold is refused, never given a verified token."""

import base64
import json

import pytest

from local import demo_login
from local.http_types import Incoming
from optout.identity_token import device_sha256

DEVICE = "c0ffee00-1d2e-4f3a-8b4c-5d6e7f8a9b0c"


def login(email: str) -> tuple[int, dict[str, object]]:
    body = json.dumps({"email": email, "device_id": DEVICE}).encode()
    answer = demo_login.serve(Incoming("POST", demo_login.PATH, body=body))
    return answer.status, json.loads(answer.body)


@pytest.mark.parametrize(
    "email",
    ["jane@demo.example.com", " Lee@Demo.Example.COM ", "victim-1a2b@demo.example.com"],
)
def test_the_demo_accounts_the_readme_and_the_tests_use_sign_in(email: str) -> None:
    status, answer = login(email)

    assert status == 200, answer
    assert set(answer) == {"identity_token", "expires_in"}


@pytest.mark.parametrize(
    "email",
    ["victim@gmail.com", "jane@example.com", "jane@shop.demo.example.com",
     "jane@demo.example.com.evil.org", "jane@notdemo.example.com"],
)  # fmt: skip
def test_any_other_address_is_refused_in_the_envelope_without_naming_it(email: str) -> None:
    status, answer = login(email)

    assert status == 403
    error = answer["error"]
    assert isinstance(error, dict)
    assert error["code"] == "forbidden"
    assert error["field"] == "email"
    assert "demo accounts" in error["message"]
    assert email.split("@", maxsplit=1)[0] not in json.dumps(answer)  # PII never echoed
    assert "identity_token" not in answer


def _readable(token: str) -> list[dict[str, object]]:
    """All a holder of the token reads without the key: its header and its claims."""
    parts = token.split(".")[:2]
    return [json.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4))) for p in parts]


@pytest.mark.parametrize("by_cookie", [False, True])
def test_the_token_binds_the_device_by_its_hash_and_never_shows_the_id(by_cookie: bool) -> None:
    # The device id is the browser's credential: a copy of a used token (a log line, a cached
    # page, a screenshot) must not give it away (review s29 stranger S2)
    body = {"email": "jane@demo.example.com"} | ({} if by_cookie else {"device_id": DEVICE})
    headers = [("Cookie", f"optout_device_id={DEVICE}")] if by_cookie else []
    request = Incoming("POST", demo_login.PATH, headers, json.dumps(body).encode())
    header, claims = _readable(json.loads(demo_login.serve(request).body)["identity_token"])
    assert DEVICE not in json.dumps([header, claims])
    assert (claims["device_sha256"], "device_id" in claims) == (device_sha256(DEVICE), False)


def _device_claim(cookie: str) -> object:
    """The cookie value the token binds: the one its `device_sha256` claim is the hash of."""
    body = json.dumps({"email": "jane@demo.example.com"}).encode()
    request = Incoming("POST", demo_login.PATH, [("Cookie", cookie)], body)
    _, claims = _readable(json.loads(demo_login.serve(request).body)["identity_token"])
    offered = [part.strip().partition("=")[2] for part in cookie.split(";")]
    return next((v for v in offered if device_sha256(v) == claims.get("device_sha256")), None)


def test_the_token_binds_the_device_cookie_only_when_it_is_named_once() -> None:
    # The banner's cookie binds the token to that device; a second copy (a sibling subdomain's,
    # listed first: review s28 diff M1) binds none, as the banner then uses neither
    assert _device_claim(f"theme=dark; optout_device_id={DEVICE}") == DEVICE
    assert _device_claim(f"optout_device_id={'a77ac4e7' * 4}; optout_device_id={DEVICE}") is None


@pytest.mark.parametrize("space", ["\u00a0", "\u0085", "\u2000"])
def test_a_unicode_spaced_cookie_name_is_not_the_device_cookie(space: str) -> None:
    # Matched exactly (review s29 stranger S1): alone it is another cookie; beside the
    # banner's own it is a second copy, and the token binds no device
    def cookie(header: str) -> str | None:
        return demo_login._cookie(Incoming("POST", demo_login.PATH, [("Cookie", header)]))

    planted = f"{space}optout_device_id={'a77ac4e7' * 4}"
    assert cookie(planted) is None
    assert cookie(f"{planted}; optout_device_id={DEVICE}") is None
    assert cookie(f"theme=dark; optout_device_id={DEVICE}") == DEVICE
