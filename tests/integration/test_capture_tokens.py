"""Identity tokens at the door: a valid one makes identifiers verified; every bad one is a
422 naming `identity_token`, and nothing is stored."""

import base64
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from types import ModuleType
from typing import Any

import boto3
import pytest

from optout.identity_token import device_sha256
from optout.token_keys import MissingTokenKey
from tests.conftest import Aws
from tests.support.http_events import http_event, json_body
from tests.support.lambdas import invoke, load_function
from tests.support.tokens import token_for

DEVICE = "dev-token-aaaaaaaaaaaa"
EMAIL = "token.holder@example.com"


@pytest.fixture
def capture(aws: Aws) -> Iterator[ModuleType]:
    yield load_function("capture_api")


def consent(capture: ModuleType, token: str, device: str = DEVICE) -> dict[str, Any]:
    body = {"device_id": device, "opt_out": {"sale": True}, "identity_token": token}
    answer: dict[str, Any] = invoke(capture, http_event("POST", "/v1/consent", body))
    return answer


def unsigned(header: dict[str, Any], claims: dict[str, Any]) -> str:
    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part(header)}.{part(claims)}."


@pytest.mark.parametrize(
    "bound",
    [{"device_sha256": device_sha256(DEVICE)}, {"device_id": DEVICE},  # the hash; in clear
     {"device_sha256": device_sha256(DEVICE), "device_id": DEVICE}],  # both, agreeing
)  # fmt: skip
def test_a_valid_token_makes_its_identifiers_verified_and_links_them_to_the_device(
    aws: Aws, capture: ModuleType, bound: dict[str, Any]
) -> None:
    answer = consent(capture, token_for(email=EMAIL.upper(), **bound))
    assert answer["statusCode"] == 202, answer["body"]
    (event,) = aws.items()
    roles = [(i["type"], i["role"]) for i in event["identifiers"]]
    assert roles == [("device_id", "device"), ("email", "verified")]
    (link,) = event["links"]
    assert (link["a"]["value"], link["b"]["value"]) == (DEVICE, EMAIL)
    assert event["evidence"]["identity_token"]["kid"] == "local-dev"
    assert "identity_token" not in json.dumps(event["evidence"]["identity_token"]["types"])


NOW = datetime.now(UTC)
REFUSED = {
    "forged signature": token_for(email=EMAIL, key="someone-elses-key-that-is-long-enough!!"),
    "wrong audience": token_for(email=EMAIL, audience="another-site"),
    "expired": token_for(email=EMAIL, issued=NOW - timedelta(hours=1)),
    "unknown kid": token_for(email=EMAIL, kid="k-unknown"),
    "alg none": unsigned({"alg": "none", "kid": "local-dev"}, {"email": EMAIL, "aud": "x"}),
    "alg HS512": token_for(email=EMAIL, algorithm="HS512", key="k" * 64),
    "lives too long": token_for(email=EMAIL, lifetime=timedelta(days=30)),
    "issued in the future": token_for(email=EMAIL, issued=NOW + timedelta(hours=1)),
    "binds nothing": token_for(device_id=DEVICE),
    "invalid email claim": token_for(email="not-an-email"),
    "not a jwt": "definitely.not.a-jwt",
    "replayed for another device": token_for(email=EMAIL, device_id="dev-other-bbbbbbbbbbbb"),
    "hashed for another device": token_for(
        email=EMAIL, device_sha256=device_sha256("dev-other-bbbbbbbbbbbb")
    ),
    "device claims disagree": token_for(
        email=EMAIL, device_id=DEVICE, device_sha256=device_sha256("dev-other-bbbbbbbbbbbb")
    ),
    # read with the body's jurisdiction, a national number is another country's person
    "phone without its country code": token_for(phone="(240) 312-3852"),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_a_bad_token_is_refused_naming_the_field_and_stores_nothing(
    aws: Aws, capture: ModuleType, case: str
) -> None:
    answer = consent(capture, REFUSED[case])
    assert answer["statusCode"] == 422, (case, answer["body"])
    error = json_body(answer)["error"]
    assert (error["code"], error["field"]) == ("invalid_token", "identity_token")
    assert EMAIL not in answer["body"]
    assert aws.items() == []


@pytest.mark.parametrize(
    ("lifetime", "issued_ago", "status"),
    [
        (600, 0, 202),  # the default IDENTITY_TOKEN_MAX_LIFETIME_SECONDS, exactly
        (601, 0, 422),  # a second more
        (60, 85, 202),  # expired 25 s ago: within the 30 s clock-skew leeway
        (60, 95, 422),  # expired 35 s ago: past it
    ],
)
def test_a_token_lives_at_most_its_lifetime_with_a_leeway_for_clock_skew(
    aws: Aws, capture: ModuleType, lifetime: int, issued_ago: int, status: int
) -> None:
    issued = datetime.now(UTC) - timedelta(seconds=issued_ago)
    token = token_for(email=EMAIL, device_sha256=device_sha256(DEVICE), issued=issued,
                      lifetime=timedelta(seconds=lifetime))  # fmt: skip
    assert consent(capture, token)["statusCode"] == status


def test_a_tokens_phone_binds_the_same_number_whatever_jurisdiction_the_body_names(
    aws: Aws, capture: ModuleType
) -> None:
    for jurisdiction in ("GB", "US-MD"):
        token = token_for(phone="+1 240 312 3852", device_sha256=device_sha256(DEVICE))
        body = {"device_id": DEVICE, "opt_out": {}, "identity_token": token,
                "jurisdiction": jurisdiction}  # fmt: skip
        assert invoke(capture, http_event("POST", "/v1/consent", body))["statusCode"] == 202
    phones = {i["value"] for e in aws.items() for i in e["identifiers"] if i["type"] == "phone"}
    assert phones == {"+12403123852"}


def test_the_webform_refuses_a_bad_token_too(aws: Aws, capture: ModuleType) -> None:
    body = {"email": EMAIL, "identity_token": REFUSED["forged signature"]}
    answer = invoke(capture, http_event("POST", "/v1/opt-out", body))
    assert answer["statusCode"] == 422
    assert json_body(answer)["error"]["field"] == "identity_token"
    assert aws.items() == []


def test_outside_local_mode_a_missing_token_key_stops_the_function(
    aws: Aws, capture: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a deployed function (no local mode) whose hash key is configured
    secrets = boto3.client("secretsmanager", region_name="us-east-1")
    secrets.create_secret(Name="optout-bridge/test/hash-key", SecretString="k" * 64)
    monkeypatch.setenv("HASH_KEY_SECRET_NAME", "optout-bridge/test/hash-key")
    monkeypatch.delenv("OPTOUT_LOCAL_MODE")
    # When the token key's setting is missing / Then it refuses to start
    monkeypatch.delenv("IDENTITY_TOKEN_SECRET_NAME", raising=False)
    with pytest.raises(MissingTokenKey):
        capture.Services()


def test_a_token_naming_no_device_is_refused_on_the_banner_route_and_taken_on_the_webform(
    aws: Aws, capture: ModuleType
) -> None:
    # review s30 stranger L1: posted on POST /v1/consent by whichever browser got it first, it
    # linked that browser to the person for good (the browser then read their choices)
    token = token_for(email=EMAIL)
    refused = consent(capture, token)
    assert refused["statusCode"] == 422, refused["body"]
    error = json_body(refused)["error"]
    assert (error["code"], error["field"]) == ("invalid_token", "identity_token")
    assert "names no device" in error["message"] and "device_sha256" in error["message"]
    assert aws.items() == []
    # ... while POST /v1/opt-out takes it as before (the token was not used: nothing stored)
    webform = {"email": EMAIL, "device_id": DEVICE, "identity_token": token}
    answer = invoke(capture, http_event("POST", "/v1/opt-out", webform))
    assert answer["statusCode"] == 202, answer["body"]
    (event,) = aws.items()
    assert ("email", "verified") in [(i["type"], i["role"]) for i in event["identifiers"]]


def test_a_token_makes_one_request_a_copy_with_another_body_is_refused(
    aws: Aws, capture: ModuleType
) -> None:
    # Given a logged-in page's token, used once with its choice
    token = token_for(email=EMAIL, device_id=DEVICE)
    first = consent(capture, token)
    assert first["statusCode"] == 202, first["body"]
    # When someone who saw the token (a log, a cached page) posts it with an opt-in
    replay = {"device_id": DEVICE, "opt_out": dict.fromkeys(("sale", "share"), False),
              "confirm_opt_in": True, "identity_token": token}  # fmt: skip
    refused = invoke(capture, http_event("POST", "/v1/consent", replay))
    # Then it is refused as a used token (the banner sends its choice again without it), and
    # nothing more is stored
    assert refused["statusCode"] == 422, refused["body"]
    error = json_body(refused)["error"]
    assert (error["code"], error["field"]) == ("invalid_token", "identity_token")
    assert "already used" in error["message"] and EMAIL not in refused["body"]
    assert len(aws.items()) == 1
    # ... and on the webform it verifies nothing more: the opt-out it carries is taken without
    # it (an opt-out needs no token), the email asserted, nothing linked
    webform = {"email": EMAIL, "device_id": DEVICE, "identity_token": token}
    again = invoke(capture, http_event("POST", "/v1/opt-out", webform))
    assert again["statusCode"] == 202, again["body"]
    (event,) = [e for e in aws.items() if e["event_type"] == "opt_out"]
    roles = sorted((i["type"], i["role"]) for i in event["identifiers"])
    assert roles == [("device_id", "device"), ("email", "asserted")]
    assert event["links"] == []
    assert event["evidence"]["identity_token"] == {
        "left_out": "identity_token was already used for another request"
    }


@pytest.mark.parametrize("stale", ["used", "expired"])
def test_the_webform_takes_an_opt_out_whose_token_went_stale_and_refuses_it_with_nothing_else(
    aws: Aws, capture: ModuleType, stale: str
) -> None:
    # Given a webform page whose token the page's banner already used, or that was left open
    # past the token's lifetime
    issued = NOW - timedelta(hours=1) if stale == "expired" else None
    token = token_for(email=EMAIL, device_sha256=device_sha256(DEVICE), issued=issued)
    if stale == "used":
        assert consent(capture, token)["statusCode"] == 202
    before = len(aws.items())
    # When the person submits the form with their email
    typed = {"email": EMAIL, "identity_token": token}
    answer = invoke(capture, http_event("POST", "/v1/opt-out", typed))
    # Then the opt-out is taken (without the token); the token's fault is on the evidence
    assert answer["statusCode"] == 202, answer["body"]
    assert len(aws.items()) == before + 1
    # ... while a form that names no one but through the token, or only its browser (the
    # person the token named would reach no system), is refused, and stores nothing
    for bare in ({"identity_token": token}, {"identity_token": token, "device_id": DEVICE}):
        alone = invoke(capture, http_event("POST", "/v1/opt-out", bare))
        assert alone["statusCode"] == 422, bare
        assert json_body(alone)["error"]["field"] == "identity_token"
    assert len(aws.items()) == before + 1


def test_the_same_token_and_body_again_is_the_same_request(aws: Aws, capture: ModuleType) -> None:
    # A retry after a lost answer (the same body) is answered as the first, nothing new stored
    token = token_for(email=EMAIL, device_id=DEVICE)
    first, second = consent(capture, token), consent(capture, token)
    assert (first["statusCode"], second["statusCode"]) == (202, 202)
    assert json_body(first)["request_id"] == json_body(second)["request_id"]
    assert len(aws.items()) == 1


def test_a_token_without_a_device_links_its_identifiers_to_one_another_only(
    aws: Aws, capture: ModuleType
) -> None:
    # A webform opt-out by a logged-in page with no device id: the token's first identifier
    # anchors the others (no link of an identifier to itself), and nothing is asserted
    token = token_for(email=EMAIL, phone="+1 240 312 3852")
    answer = invoke(capture, http_event("POST", "/v1/opt-out", {"identity_token": token}))
    assert answer["statusCode"] == 202, answer["body"]
    (event,) = aws.items()
    assert [(i["type"], i["role"]) for i in event["identifiers"]] == [
        ("email", "verified"), ("phone", "verified"),
    ]  # fmt: skip
    assert [(a["a"]["type"], a["b"]["type"]) for a in event["links"]] == [("email", "phone")]
    assert event["asserts"] == []


def test_a_request_without_a_token_says_nothing_of_one_in_its_evidence(
    aws: Aws, capture: ModuleType
) -> None:
    answer = invoke(capture, http_event("POST", "/v1/opt-out", {"email": EMAIL}))
    assert answer["statusCode"] == 202, answer["body"]
    (event,) = aws.items()
    assert "identity_token" not in event["evidence"]
    assert [(i["type"], i["role"]) for i in event["identifiers"]] == [("email", "asserted")]
