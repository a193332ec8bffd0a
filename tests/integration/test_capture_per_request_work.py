"""What a warm capture request does beyond its one write (docs/performance.md, part G): an
accepted hot request is answered without writing its checked body back into the event (only
the Event Handler parses it there), and leaves no reference cycle for the garbage collector
(a collection in the middle of a request is what its slowest answers wait on)."""

import gc
import json
from types import ModuleType
from typing import Any

import pytest

from tests.conftest import Aws
from tests.support.http_events import http_event
from tests.support.lambdas import invoke, load_function

DEVICE = "3f1c2a9e-8b7d-4c1e-9f00-1a2b3c4d5e6f"
BANNER = {"device_id": DEVICE, "opt_out": {"sale": True}, "page_url": "https://shop.example.com/x"}
WEBFORM = {"email": "jane.doe@example.com", "jurisdiction": "US-CA"}


@pytest.fixture
def capture(aws: Aws) -> ModuleType:
    return load_function("capture_api")


def _compact(path: str, body: dict[str, Any], **headers: str) -> dict[str, Any]:
    return http_event(
        "POST", path, raw_body=json.dumps(body, separators=(",", ":")), headers=headers
    )


@pytest.mark.parametrize(("path", "body"), [("/v1/consent", BANNER), ("/v1/opt-out", WEBFORM)])
def test_an_accepted_hot_request_leaves_its_body_as_sent(
    aws: Aws, capture: ModuleType, path: str, body: dict[str, Any]
) -> None:
    event = _compact(path, body)
    sent = event["body"]
    assert invoke(capture, event)["statusCode"] == 202
    assert event["body"] == sent
    assert len(aws.items()) == 1


def test_a_body_left_to_the_model_still_reaches_it_as_checked_json(
    aws: Aws, capture: ModuleType
) -> None:
    # A value the hot check leaves to the model (a "true" string): the Event Handler parses
    # the body the gate checked, written back as JSON, and its model refuses it in its words
    event = _compact("/v1/consent", {"device_id": DEVICE, "opt_out": {"sale": "true"}})
    answer = invoke(capture, event)
    assert answer["statusCode"] == 422
    assert json.loads(event["body"]) == {"device_id": DEVICE, "opt_out": {"sale": "true"}}
    assert capture.resolver.cache_info().currsize == 1
    assert aws.items() == []


@pytest.mark.parametrize(
    ("path", "body", "headers"),
    [
        ("/v1/consent", BANNER, {}),
        ("/v1/consent", BANNER, {"sec-gpc": "1"}),
        ("/v1/opt-out", WEBFORM, {"origin": "https://shop.example.com"}),
    ],
)
def test_a_warm_request_leaves_no_cyclic_garbage(
    aws: Aws,
    capture: ModuleType,
    monkeypatch: pytest.MonkeyPatch,
    path: str,
    body: dict[str, Any],
    headers: dict[str, str],
) -> None:
    # Given a warm container (its first request built what is built once)
    assert invoke(capture, _compact(path, body, **headers))["statusCode"] == 202
    # ... whose write is answered at once (moto's own request objects are not the handler's)
    client = capture.services().capture._table.client
    monkeypatch.setattr(client, "put_item", lambda **_: {})
    event = _compact(path, body, **headers)
    # When it answers another request
    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        answer = invoke(capture, event)
        gc.collect()
        left = [type(found).__name__ for found in gc.garbage]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()
    # Then nothing it made is left for the collector
    assert answer["statusCode"] == 202
    assert left == []
