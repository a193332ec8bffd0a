"""The hot routes (POST /v1/consent, POST /v1/opt-out with a JSON body) answer an accepted
request without the Event Handler: the answer must be the one the Event Handler gives, to the
byte, and what is stored the same. Each request is sent once through each path (the module's
HOT_ROUTES emptied sends every request to the Event Handler) with one Idempotency-Key, so the
second answer is the replay of the first and both must be equal."""

import json
from types import ModuleType
from typing import Any

import pytest

from optout.api_models import ConsentOut, OptOutOut
from tests.conftest import Aws
from tests.support.http_events import http_event
from tests.support.lambdas import invoke, load_function

DEVICE = "3f1c2a9e-8b7d-4c1e-9f00-1a2b3c4d5e6f"
ALLOWED = {"origin": "https://shop.example.com"}
REQUESTS: dict[str, tuple[str, dict[str, Any], dict[str, str]]] = {
    "banner": ("/v1/consent", {"device_id": DEVICE, "opt_out": {"sale": True}}, {}),
    "banner from the site's origin": (
        "/v1/consent",
        {"device_id": DEVICE, "opt_out": {"sale": True, "share": False}, "page_url": "https://shop.example.com/x?q=1"},
        ALLOWED,
    ),
    "gpc": ("/v1/consent", {"device_id": DEVICE, "gpc": True}, {"sec-gpc": "1", **ALLOWED}),
    "banner from another origin": ("/v1/consent", {"device_id": DEVICE}, {"origin": "https://evil.example"}),
    "banner with an asserted email": (
        "/v1/consent",
        {"device_id": DEVICE, "opt_out": {"sale": True}, "identity": {"email": "Jane@Example.com"}},
        {},
    ),
    "webform": ("/v1/opt-out", {"email": "jane.doe@example.com", "jurisdiction": "US-CA"}, ALLOWED),
    "agent with purposes": (
        "/v1/opt-out",
        {"customer_id": "cust-1", "purposes": ["sale", "limit_sensitive"], "agent": {"name": "A"}},
        {},
    ),
}  # fmt: skip


@pytest.fixture
def capture(aws: Aws) -> ModuleType:
    return load_function("capture_api")


def _send(capture: ModuleType, name: str, key: str) -> dict[str, Any]:
    path, body, headers = REQUESTS[name]
    answer: dict[str, Any] = invoke(
        capture, http_event("POST", path, body, headers={"idempotency-key": key, **headers})
    )
    return answer


def _through_the_event_handler(
    capture: ModuleType, monkeypatch: pytest.MonkeyPatch, name: str, key: str
) -> dict[str, Any]:
    with monkeypatch.context() as patched:
        patched.setattr(capture, "HOT_ROUTES", {})
        return _send(capture, name, key)


@pytest.mark.parametrize("name", sorted(REQUESTS))
def test_the_hot_route_answers_what_the_event_handler_answers(
    aws: Aws, capture: ModuleType, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    # Given a request the Event Handler accepted
    handled = _through_the_event_handler(capture, monkeypatch, name, f"{name}-1")
    # When the same request comes again, to the hot route
    hot = _send(capture, name, f"{name}-1")
    # Then the answers are the same, status, headers and body
    assert handled["statusCode"] == 202
    assert hot == handled
    assert len(aws.items()) == 1


@pytest.mark.parametrize("name", sorted(REQUESTS))
def test_the_event_handler_answers_what_the_hot_route_answers(
    aws: Aws, capture: ModuleType, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    hot = _send(capture, name, f"{name}-2")
    handled = _through_the_event_handler(capture, monkeypatch, name, f"{name}-2")
    assert hot["statusCode"] == 202
    assert handled == hot


def test_both_paths_store_the_same_event(
    aws: Aws, capture: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the same webform opt-out sent once through each path, with two keys
    _through_the_event_handler(capture, monkeypatch, "agent with purposes", "stored-1")
    _send(capture, "agent with purposes", "stored-2")
    # Then the two stored events differ only in what is per request
    per_request = {"pk", "request_id", "idempotency_key", "received_at", "ttl", "evidence",
                   "deadline", "gsi1pk", "gsi1sk", "body_hash", "day_pk", "expires_at",
                   "response"}  # fmt: skip
    first, second = (
        {k: v for k, v in item.items() if k not in per_request} for item in aws.items()
    )
    assert first == second
    assert len(first) > 10  # the payload, identifiers, roles, choices...


def test_a_body_the_model_refuses_is_answered_by_the_event_handler(
    aws: Aws, capture: ModuleType
) -> None:
    # The hot route validates with the same model; its refusal is the Event Handler's.
    event = http_event("POST", "/v1/consent", {"device_id": "short", "opt_out": {"sale": True}})
    answer = invoke(capture, event)
    assert answer["statusCode"] == 422
    assert capture.resolver.cache_info().currsize == 1
    assert aws.items() == []


def test_an_accepted_request_does_not_build_the_event_handler(
    aws: Aws, capture: ModuleType
) -> None:
    assert _send(capture, "banner", "lazy-1")["statusCode"] == 202
    assert capture.resolver.cache_info().currsize == 0


@pytest.mark.parametrize("name", sorted(REQUESTS))
def test_the_hot_answer_is_what_its_response_model_dumps(
    aws: Aws, capture: ModuleType, name: str
) -> None:
    # The domain writes the answer as a plain dict (no pydantic on the hot path): it must be
    # the route's response model, dumped, field for field and in its order.
    answer = _send(capture, name, f"{name}-3")
    model = ConsentOut if REQUESTS[name][0] == "/v1/consent" else OptOutOut
    sent = json.loads(answer["body"])
    dumped = model.model_validate(sent).model_dump()
    assert sent == dumped
    assert list(sent) == list(dumped)
