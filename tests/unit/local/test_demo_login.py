"""The local demo login signs in only the demo's own accounts (review s23 C1): it checks no
password, so an address a real person could hold is refused, never given a verified token."""

import base64
import json

import pytest

from local import demo_login
from local.http_types import Incoming

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
    assert email.split("@")[0] not in json.dumps(answer)  # PII never echoed
    assert "identity_token" not in answer


def _device_claim(cookie: str) -> object:
    body = json.dumps({"email": "jane@demo.example.com"}).encode()
    request = Incoming("POST", demo_login.PATH, [("Cookie", cookie)], body)
    token = json.loads(demo_login.serve(request).body)["identity_token"]
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))).get(
        "device_id"
    )


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
