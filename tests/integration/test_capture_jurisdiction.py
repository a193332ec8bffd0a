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
