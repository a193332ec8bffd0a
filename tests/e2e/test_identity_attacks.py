"""Issue 10's three attacks, tried as a stranger would, with plain HTTP against the local
stack; and the identity-token path the demo shop's login uses (`/_local/demo/login`)."""

import base64
import json
import uuid
from typing import Any
from urllib.parse import urlencode

import pytest

from tests.e2e.conftest import Stack
from tests.support.tokens import token_for

pytestmark = pytest.mark.e2e

SIGV4 = {
    "authorization": "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/execute-api/"
    "aws4_request, SignedHeaders=host;x-amz-date, Signature=00"
}
ALL = ("sale", "share", "targeted_advertising", "profiling")  # a webform's default purposes
NOTHING = dict.fromkeys((*ALL, "limit_sensitive"), False)
OPTED_OUT = {**NOTHING, **dict.fromkeys(ALL, True)}


def resolved(stack: Stack, request_id: str) -> bool:
    _, body = stack.json("GET", f"/v1/requests/{request_id}")
    return body["status"] != "received"


def post(stack: Stack, path: str, body: dict[str, Any], timeout: float = 45.0) -> str:
    status, answer = stack.json("POST", path, body)
    assert status == 202, answer
    request_id: str = answer["request_id"]
    stack.wait_for(lambda: resolved(stack, request_id), timeout=timeout)
    return request_id


def state(stack: Stack, device: str) -> dict[str, Any]:
    status, body = stack.json("GET", f"/v1/consent/{device}")
    assert status == 200
    return dict(body)


def login(stack: Stack, email: str, device: str, timeout: float = 45.0) -> str:
    status, answer = stack.json("POST", "/_local/demo/login", {"email": email, "device_id": device})
    assert status == 200, answer
    token: str = answer["identity_token"]
    body = {"device_id": device, "identity_token": token}
    return post(stack, "/v1/consent", body, timeout)


def opted_out_victim(stack: Stack) -> tuple[str, str]:
    """A victim who logged in on their browser and opted out through the webform."""
    email, device = f"victim-{uuid.uuid4().hex[:10]}@demo.example.com", uuid.uuid4().hex
    login(stack, email, device)
    post(stack, "/v1/opt-out", {"email": email})
    stack.wait_for(lambda: state(stack, device)["opt_out"] == OPTED_OUT)
    return email, device


def test_a_stranger_naming_the_victims_email_learns_nothing(local_stack: Stack) -> None:
    email, _ = opted_out_victim(local_stack)
    stranger = uuid.uuid4().hex
    post(local_stack, "/v1/consent", {"device_id": stranger, "identity": {"email": email}})
    assert state(local_stack, stranger) == {"device_id": stranger,
                                            "opt_out": NOTHING,
                                            "gpc_honored": False, "updated_at": None,
                                            "gpc_signal": False}  # fmt: skip


def test_a_stranger_cannot_undo_the_victims_opt_out(local_stack: Stack) -> None:
    email, device = opted_out_victim(local_stack)
    stranger = uuid.uuid4().hex
    allow_all = {"device_id": stranger, "identity": {"email": email},
                 "opt_out": dict.fromkeys(ALL, False), "confirm_opt_in": True}  # fmt: skip
    post(local_stack, "/v1/consent", allow_all)
    # An old banner's unconfirmed "allow all" on the victim's own browser lifts nothing either
    post(local_stack, "/v1/consent", {"device_id": device, "opt_out": dict.fromkeys(ALL, False)})
    assert state(local_stack, device)["opt_out"] == OPTED_OUT


def test_asserted_junk_never_gets_the_victims_real_login_held(local_stack: Stack) -> None:
    # Given more junk browsers than the cluster cap (50) naming the victim's email
    email = f"victim-{uuid.uuid4().hex[:10]}@demo.example.com"
    post(local_stack, "/v1/opt-out", {"email": email})
    for _ in range(55):
        status, _ = local_stack.json(
            "POST", "/v1/consent", {"device_id": uuid.uuid4().hex, "identity": {"email": email}}
        )
        assert status == 202
    # When the victim logs in on their real browser (behind 55 events in the stream: moto's
    # Query reads the whole table, so the local resolver is slow here; AWS's is not)
    device = uuid.uuid4().hex
    request_id = login(local_stack, email, device, timeout=240)
    # Then that link is not held, and the browser carries the victim's opt-out
    status, holds = local_stack.json("GET", "/v1/admin/holds", headers=SIGV4)
    assert status == 200
    assert all(h["request_id"] != request_id for h in holds["holds"])
    local_stack.wait_for(lambda: state(local_stack, device)["opt_out"] == OPTED_OUT)


def test_a_forged_identity_token_is_refused_over_http(local_stack: Stack) -> None:
    forged = token_for(email="someone@example.com", key="not-the-bridge-key-at-all-0123456789")
    status, body = local_stack.json(
        "POST", "/v1/consent", {"device_id": uuid.uuid4().hex, "identity_token": forged}
    )
    assert status == 422
    assert (body["error"]["code"], body["error"]["field"]) == ("invalid_token", "identity_token")
    assert "someone" not in str(body)


def test_a_login_token_names_its_browser_by_a_hash_and_serves_that_browser_only(
    local_stack: Stack,
) -> None:
    # A copy of the token (a log line, a cached page) is readable: it must not show the device
    # id, that browser's credential (review s29 stranger S2)
    email, device = f"copy-{uuid.uuid4().hex[:10]}@demo.example.com", uuid.uuid4().hex
    status, answer = local_stack.json(
        "POST", "/_local/demo/login", {"email": email, "device_id": device}
    )
    assert status == 200, answer
    token = answer["identity_token"]
    readable = b"".join(base64.urlsafe_b64decode(p + "==") for p in token.split(".")[:2])
    assert device.encode() not in readable and b"device_sha256" in readable

    opt_out = {"opt_out": {"sale": True}, "identity_token": token}
    status, body = local_stack.json("POST", "/v1/consent", {"device_id": device[::-1], **opt_out})
    assert status == 422
    assert body["error"]["message"] == "identity_token was issued for another device"
    status, body = local_stack.json("POST", "/v1/consent", {"device_id": device, **opt_out})
    assert (status, body["device_id"]) == (202, device)


def form_post(stack: Stack, fields: list[tuple[str, str]], device: str, origin: str) -> str:
    """The no-JS webform posted by a browser that carries `device`'s cookie, from `origin`."""
    headers = {"content-type": "application/x-www-form-urlencoded", "accept": "application/json",
               "cookie": f"optout_device_id={device}", "origin": origin}  # fmt: skip
    status, _, answer = stack.request("POST", "/v1/opt-out", raw=urlencode(fields).encode(),
                                      headers=headers)  # fmt: skip
    assert status == 202, answer
    request_id: str = json.loads(answer)["request_id"]
    stack.wait_for(lambda: resolved(stack, request_id))
    return request_id


def test_a_same_site_page_cannot_link_a_visitors_browser_to_its_account(
    local_stack: Stack,
) -> None:
    # Given a victim's browser that opted out of sale and sharing on the banner
    victim = uuid.uuid4().hex
    banner = {"device_id": victim, "opt_out": {"sale": True, "share": True}}
    post(local_stack, "/v1/consent", banner)
    # ... and an attacker with a login of his own (a token that names no device)
    attacker = f"attacker-{uuid.uuid4().hex[:10]}@demo.example.com"
    status, answer = local_stack.json("POST", "/_local/demo/login", {"email": attacker})
    assert status == 200, answer
    # When a same-site page of his (user content on a subdomain) makes the victim's browser
    # post the webform with his token: SameSite=Lax sends the victim's device cookie
    fields = [("purposes", "limit_sensitive"), ("identity_token", answer["identity_token"])]
    form_post(local_stack, fields, victim, "https://ugc.shop.example")
    # ... and he then logs in on his own browser
    his_device = uuid.uuid4().hex
    login(local_stack, attacker, his_device)
    # Then his browser learns nothing of the victim's choices, nor the victim's of his
    assert state(local_stack, his_device)["opt_out"] == {**NOTHING, "limit_sensitive": True}
    assert state(local_stack, victim)["opt_out"] == {**NOTHING, "sale": True, "share": True}


def test_the_webform_posted_from_our_own_page_still_links_the_browser(local_stack: Stack) -> None:
    # Given a browser with a device cookie, on the shop's own webform (the stack serves it)
    device = uuid.uuid4().hex
    # When it posts the no-JS form without a device_id field
    email = f"own-{uuid.uuid4().hex[:10]}@demo.example.com"
    form_post(local_stack, [("email", email), ("purposes", "profiling")], device, local_stack.url)
    # Then the cookie's device carries the opt-out
    local_stack.wait_for(lambda: state(local_stack, device)["opt_out"]["profiling"])
