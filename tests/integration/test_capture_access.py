"""Who may call what: IAM on /v1/identity-links (admin function), CORS for the browser origins."""

from types import ModuleType
from typing import Any

import pytest

from tests.conftest import Aws
from tests.support.http_events import http_event, json_body
from tests.support.lambdas import invoke, load_event, load_function

ALLOWED = "https://shop.example.com"  # tests/conftest.py: ALLOWED_ORIGINS
LINK = {"links": [{"a": {"type": "device_id", "value": "3f1c2a9e-8b7d-4c1e-9f00-1a2b3c4d5e6f"},
                   "b": {"type": "customer_id", "value": "cust-1234"}}]}  # fmt: skip


@pytest.fixture
def capture(aws: Aws) -> ModuleType:
    return load_function("capture_api")


@pytest.fixture
def admin(aws: Aws) -> ModuleType:
    return load_function("admin_api")


def test_identity_links_without_iam_authorisation_are_forbidden(
    aws: Aws, admin: ModuleType
) -> None:
    answer = invoke(admin, http_event("POST", "/v1/identity-links", LINK, iam=False))
    assert answer["statusCode"] == 403
    assert json_body(answer)["error"]["code"] == "forbidden"
    assert aws.items() == []


def test_identity_links_with_iam_authorisation_are_accepted(aws: Aws, admin: ModuleType) -> None:
    answer = invoke(admin, http_event("POST", "/v1/identity-links", LINK, iam=True))
    assert answer["statusCode"] == 202
    assert json_body(answer)["links_accepted"] == 1
    (item,) = aws.items()
    assert (item["event_type"], item["source"]) == ("links", "backend")


def test_a_link_of_an_identifier_to_itself_is_not_counted(aws: Aws, admin: ModuleType) -> None:
    same = {"type": "email", "value": "Jane@Example.com"}
    body = {"links": [{"a": same, "b": {"type": "email", "value": " jane@example.com"}}]}
    answer = invoke(admin, http_event("POST", "/v1/identity-links", body, iam=True))
    assert json_body(answer)["links_accepted"] == 0


def test_a_link_given_twice_in_one_call_is_accepted_and_stored_once(
    aws: Aws, admin: ModuleType
) -> None:
    # Given one link three times: as sent, written otherwise, and the other way round
    a, b = LINK["links"][0]["a"], LINK["links"][0]["b"]
    again = {"type": "customer_id", "value": " cust-1234 "}
    body = {"links": [{"a": a, "b": b}, {"a": a, "b": again}, {"a": b, "b": a}]}
    answer = invoke(admin, http_event("POST", "/v1/identity-links", body, iam=True))
    # Then it is one link accepted, and the event carries it once (review s35 outside L1)
    assert answer["statusCode"] == 202
    assert json_body(answer)["links_accepted"] == 1
    (item,) = aws.items()
    assert len(item["links"]) == 1


# -- CORS -----------------------------------------------------------------------------------


def _from(origin: str | None, event: dict[str, Any]) -> dict[str, Any]:
    event["headers"].pop("origin", None)
    if origin is not None:
        event["headers"]["origin"] = origin
    return event


@pytest.mark.parametrize("sample", ["consent_banner_opt_out.json", "consent_get.json"])
def test_an_allowed_origin_gets_access_control_allow_origin(
    aws: Aws, capture: ModuleType, sample: str
) -> None:
    answer = invoke(capture, _from(ALLOWED, load_event(sample)))
    assert answer["headers"]["Access-Control-Allow-Origin"] == ALLOWED


@pytest.mark.parametrize("sample", ["consent_banner_opt_out.json", "consent_get.json"])
def test_another_origin_gets_no_cors_headers(aws: Aws, capture: ModuleType, sample: str) -> None:
    answer = invoke(capture, _from("https://evil.example.net", load_event(sample)))
    assert not any(h.lower().startswith("access-control-") for h in answer["headers"])


def test_a_second_configured_origin_is_allowed_too(
    aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ALLOWED_ORIGINS", f"{ALLOWED}, https://privacy.example.com")
    capture = load_function("capture_api")
    answer = invoke(capture, _from("https://privacy.example.com", load_event("consent_get.json")))
    assert answer["headers"]["Access-Control-Allow-Origin"] == "https://privacy.example.com"


def test_error_answers_carry_cors_for_an_allowed_origin(aws: Aws, capture: ModuleType) -> None:
    event = http_event("POST", "/v1/consent", raw_body="x" * 20_000,
                       headers={"origin": ALLOWED})  # fmt: skip
    answer = invoke(capture, event)
    assert answer["statusCode"] == 413
    assert answer["headers"]["Access-Control-Allow-Origin"] == ALLOWED


@pytest.mark.parametrize(
    "event",
    [
        load_event("consent_banner_opt_out.json"),
        load_event("consent_get.json"),
        http_event("POST", "/v1/consent", raw_body="{", headers={"origin": ALLOWED}),
        http_event("POST", "/v1/consent", raw_body="x" * 20_000, headers={"origin": ALLOWED}),
    ],
    ids=["accepted", "read", "bad-json", "too-large"],
)
def test_credentials_are_never_allowed(
    aws: Aws, capture: ModuleType, event: dict[str, Any]
) -> None:
    answer = invoke(capture, event)
    assert "Access-Control-Allow-Credentials" not in answer["headers"]
    assert "Access-Control-Allow-Credentials" not in (answer.get("multiValueHeaders") or {})
