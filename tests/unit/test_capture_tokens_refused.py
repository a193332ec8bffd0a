"""Capture's token refusals that come before anything is stored, without AWS: a service built
without a verifier (the admin function's) refuses any token rather than ignore it, and a token
bound to one device verifies for no other (tests/integration/test_capture_tokens.py drives the
same through the capture function)."""

from datetime import UTC, datetime
from typing import Any

import pytest

from optout.capture import CaptureService
from optout.evidence import RequestContext
from optout.identity_token import InvalidToken, TokenKeys, TokenVerifier, device_sha256
from optout.settings import Settings
from tests.support.tokens import token_for

KEY = "k" * 40
DEVICE = "dev-token-aaaaaaaaaaaa"
OPT_OUT = {"email": None, "phone": None, "customer_id": None, "device_id": None,
           "jurisdiction": None, "purposes": None, "agent": None, "page_url": None,
           "policy_version": None}  # fmt: skip
CONSENT = {"device_id": DEVICE, "opt_out": {"sale": True}, "gpc": False, "identity": None,
           "confirm_opt_in": False, "jurisdiction": None, "page_url": None,
           "policy_version": None}  # fmt: skip


class NoTable:
    """A refusal must come before the one write: any use of the table fails the test."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"the table was used ({name}) for a refused token")


def service(tokens: TokenVerifier | None) -> CaptureService:
    return CaptureService(NoTable(), Settings(table_name="t"), b"h" * 32, tokens)  # type: ignore[arg-type]


def ctx() -> RequestContext:
    """Now, at the test: a token is minted now too (one made at import could be "ahead")."""
    return RequestContext(received_at=datetime.now(UTC), gpc_header=False)


def verifier() -> TokenVerifier:
    return TokenVerifier(TokenKeys("k1", {"k1": KEY.encode()}), "optout-bridge", 600)


@pytest.mark.parametrize("route", ["consent", "opt_out"])
def test_a_service_without_a_verifier_refuses_a_token_rather_than_ignore_it(route: str) -> None:
    token = token_for(email="a@example.com", kid="k1", key=KEY)
    capture = service(None)
    with pytest.raises(InvalidToken, match="not accepted on this route") as refused:
        if route == "consent":
            capture.record_consent(CONSENT | {"identity_token": token}, ctx())
        else:
            capture.record_opt_out(
                OPT_OUT | {"email": "a@example.com", "identity_token": token}, ctx()
            )
    assert refused.value.field == "identity_token"


@pytest.mark.parametrize("claim", ["device_sha256", "device_id"])  # the hash; older minters'
@pytest.mark.parametrize("route", ["consent", "opt_out"])
def test_a_token_bound_to_one_device_is_refused_for_another(route: str, claim: str) -> None:
    bound: dict[str, Any] = {claim: device_sha256(DEVICE) if claim == "device_sha256" else DEVICE}
    token = token_for(email="a@example.com", kid="k1", key=KEY, **bound)
    other = "dev-other-bbbbbbbbbbbb"
    capture = service(verifier())
    with pytest.raises(InvalidToken, match=r"^identity_token was issued for another device$"):
        if route == "consent":
            capture.record_consent(CONSENT | {"device_id": other, "identity_token": token}, ctx())
        else:
            body = OPT_OUT | {"email": "a@example.com", "device_id": other, "identity_token": token}
            capture.record_opt_out(body, ctx())
