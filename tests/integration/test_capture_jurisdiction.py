"""The deadline of a request whose jurisdiction was only geolocated (review s13 law 3): the
request's location is not the consumer's residence, so it is never later than California's."""

from datetime import UTC, datetime
from types import ModuleType

import pytest

from optout.deadlines import deadline_at
from tests.conftest import Aws
from tests.support.http_events import http_event, json_body
from tests.support.lambdas import invoke, load_function

IOWA = {"cloudfront-viewer-country": "US", "cloudfront-viewer-country-region": "IA"}


@pytest.fixture
def capture(aws: Aws) -> ModuleType:
    return load_function("capture_api")


def _received(answer: dict[str, str]) -> datetime:
    return datetime.fromisoformat(answer["received_at"].replace("Z", "+00:00")).astimezone(UTC)


def test_a_request_located_in_iowa_gets_californias_deadline_and_keeps_iowa_as_evidence(
    aws: Aws, capture: ModuleType
) -> None:
    # Given a webform request from an Iowa address that names no jurisdiction
    answer = json_body(invoke(capture, http_event(
        "POST", "/v1/opt-out", {"email": "traveller@example.com"}, headers=IOWA)))  # fmt: skip
    received = _received(answer)
    # Then its deadline is California's 15 business days, not Iowa's 90 calendar days
    assert answer["deadline"] == deadline_at(received, "US-CA").isoformat()
    assert answer["deadline"] < deadline_at(received, "US-IA").isoformat()
    (item,) = aws.items()
    assert item["deadline"] == answer["deadline"]
    # And the evidence keeps the located state, marked as located
    assert item["evidence"]["jurisdiction"] == "US-IA"
    assert item["evidence"]["jurisdiction_from"] == "geolocation"


def test_a_jurisdiction_the_caller_states_keeps_its_own_rule(aws: Aws, capture: ModuleType) -> None:
    body = {"email": "resident@example.com", "jurisdiction": "US-IA"}
    answer = json_body(invoke(capture, http_event("POST", "/v1/opt-out", body, headers=IOWA)))
    assert answer["deadline"] == deadline_at(_received(answer), "US-IA").isoformat()
    (item,) = aws.items()
    assert (item["evidence"]["jurisdiction"], item["evidence"]["jurisdiction_from"]) == (
        "US-IA", "request")  # fmt: skip


# A code of the right shape naming no real place (review s35 outside, open 1): refused in the
# envelope, naming the field and never the value, and nothing stored; before, `ZZ` or `US-ZZ`
# was taken with California's count and counted in the §7102 groups as a place of its own.
@pytest.mark.parametrize("code", ["ZZ", "EU", "US-ZZ", "US-UM"])
@pytest.mark.parametrize("form", [False, True])
def test_a_jurisdiction_naming_no_real_place_is_refused_and_nothing_is_stored(
    aws: Aws, capture: ModuleType, code: str, form: bool
) -> None:
    if form:
        headers = {"content-type": "application/x-www-form-urlencoded"}
        body = f"email=stranger%40example.com&jurisdiction={code}"
        answer = invoke(capture, http_event("POST", "/v1/opt-out", headers=headers, raw_body=body))
    else:
        body_json = {"email": "stranger@example.com", "jurisdiction": code}
        answer = invoke(capture, http_event("POST", "/v1/opt-out", body_json))
    assert answer["statusCode"] == 422
    error = json_body(answer)["error"]
    assert (error["code"], error["field"]) == ("invalid_field", "jurisdiction")
    assert code not in error["message"]
    assert "real place" in error["message"]
    assert aws.items() == []


@pytest.mark.parametrize("code", ["ZZ", "US-ZZ"])
def test_the_banners_route_refuses_a_jurisdiction_naming_no_real_place(
    aws: Aws, capture: ModuleType, code: str
) -> None:
    body = {"device_id": "3f1c2a9e-8b7d-4c1e-9f00-1a2b3c4d5e6f", "opt_out": {"sale": True},
            "jurisdiction": code}  # fmt: skip
    answer = invoke(capture, http_event("POST", "/v1/consent", body))
    assert answer["statusCode"] == 422
    assert json_body(answer)["error"]["field"] == "jurisdiction"
    assert aws.items() == []


@pytest.mark.parametrize(
    "located", [("ZZ", "CA"), ("US", "ZZ"), ("EU", "BE"), ("US", "UM")], ids="-".join
)
def test_a_viewer_location_naming_no_real_place_is_not_taken(
    aws: Aws, capture: ModuleType, located: tuple[str, str]
) -> None:
    # CloudFront's headers, which anyone can send when the edge is off
    country, region = located
    headers = {"cloudfront-viewer-country": country, "cloudfront-viewer-country-region": region}
    answer = invoke(capture, http_event(
        "POST", "/v1/opt-out", {"email": "far@example.com"}, headers=headers))  # fmt: skip
    assert answer["statusCode"] == 202
    (item,) = aws.items()
    assert item["evidence"].get("jurisdiction") is None
    assert item["evidence"].get("jurisdiction_from") is None


def test_a_stated_country_or_territory_is_taken(aws: Aws, capture: ModuleType) -> None:
    for n, code in enumerate(("US-PR", "DE", "CA-QC")):
        body = {"email": f"resident{n}@example.com", "jurisdiction": code}
        assert invoke(capture, http_event("POST", "/v1/opt-out", body))["statusCode"] == 202
    stated = sorted(item["evidence"]["jurisdiction"] for item in aws.items())
    assert stated == ["CA-QC", "DE", "US-PR"]


# `UK` is ISO's code reserved for the United Kingdom (`GB`): refusing it lost whole opt-outs
@pytest.mark.parametrize("form", [False, True])
def test_uk_is_taken_and_kept_as_gb(aws: Aws, capture: ModuleType, form: bool) -> None:
    if form:
        headers = {"content-type": "application/x-www-form-urlencoded"}
        body = "email=visitor%40example.com&jurisdiction=UK"
        answer = invoke(capture, http_event("POST", "/v1/opt-out", headers=headers, raw_body=body))
    else:
        body_json = {"email": "visitor@example.com", "jurisdiction": "UK"}
        answer = invoke(capture, http_event("POST", "/v1/opt-out", body_json))
    assert answer["statusCode"] == 202
    (item,) = aws.items()
    assert (item["evidence"]["jurisdiction"], item["evidence"]["jurisdiction_from"]) == (
        "GB", "request")  # fmt: skip


def test_the_banners_route_keeps_uk_as_gb(aws: Aws, capture: ModuleType) -> None:
    body = {"device_id": "3f1c2a9e-8b7d-4c1e-9f00-1a2b3c4d5e6f", "opt_out": {"sale": True},
            "jurisdiction": "UK"}  # fmt: skip
    answer = invoke(capture, http_event("POST", "/v1/consent", body))
    assert answer["statusCode"] == 202
    (item,) = aws.items()
    assert item["evidence"]["jurisdiction"] == "GB"
