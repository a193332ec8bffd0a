"""Pages for people: the status link answers a readable page to a browser, every HTML answer
is hardened (CSP, nosniff, never framed), and a client cannot ask for pages with a header."""

import base64
import hashlib
import json
import re
from types import ModuleType
from typing import Any
from urllib.parse import urlencode

import pytest

from tests.conftest import Aws
from tests.support.http_events import http_event, json_body
from tests.support.lambdas import invoke, load_event, load_function

BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
UNKNOWN = "6b1f0c3e-2d4a-4b5c-9e8f-7a6b5c4d3e2f"


@pytest.fixture
def capture(aws: Aws) -> ModuleType:
    return load_function("capture_api")


def _captured_request(capture: ModuleType) -> str:
    answer = invoke(capture, load_event("opt_out_webform_json.json"))
    request_id: str = json_body(answer)["request_id"]
    return request_id


def _status(capture: ModuleType, request_id: str, accept: str | None) -> dict[str, Any]:
    event = http_event(
        "GET", f"/v1/requests/{request_id}", path_parameters={"request_id": request_id},
        headers={"accept": accept} if accept is not None else {},
    )  # fmt: skip
    answer: dict[str, Any] = invoke(capture, event)
    return answer


def assert_hardened_page(answer: dict[str, Any]) -> None:
    headers = answer["headers"]
    assert headers["Content-Type"].startswith("text/html")
    csp = headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp
    assert "frame-ancestors 'none'" in csp
    assert "script-src" not in csp  # default-src 'none': no script at all
    assert headers["X-Content-Type-Options"] == "nosniff"
    # ... and the page's own stylesheet is the one the policy allows, so it still renders
    style = re.search(r"<style>(.*?)</style>", answer["body"], re.S)
    assert style is not None
    digest = base64.b64encode(hashlib.sha256(style.group(1).encode()).digest()).decode()
    assert f"style-src 'sha256-{digest}'" in csp


def test_a_browser_opening_the_status_link_gets_a_readable_page(
    aws: Aws, capture: ModuleType
) -> None:
    # Given a captured opt-out
    request_id = _captured_request(capture)
    # When a browser opens its status link
    answer = _status(capture, request_id, BROWSER_ACCEPT)
    # Then it reads a hardened page saying, in words, where the request is
    assert answer["statusCode"] == 200
    assert_hardened_page(answer)
    page = answer["body"]
    assert "<h1>Your request</h1>" in page
    assert request_id in page
    assert "Received: we have your request" in page
    assert "<dt>Systems</dt><dd>none yet</dd>" in page
    # the deadline names the calendar it counts in (none stated or located: California's)
    assert re.search(r"<dt>To be completed by</dt><dd>[0-9-]{10} \(California time\)</dd>", page)
    assert "<html lang=en>" in page
    with pytest.raises(json.JSONDecodeError):
        json.loads(page)


@pytest.mark.parametrize(
    "accept", [None, "*/*", "application/json", "application/json, text/html;q=0.5"]
)
def test_scripts_and_agents_still_get_json_from_the_status_route(
    aws: Aws, capture: ModuleType, accept: str | None
) -> None:
    request_id = _captured_request(capture)
    answer = _status(capture, request_id, accept)
    assert answer["headers"]["Content-Type"] == "application/json"
    assert json_body(answer)["request_id"] == request_id
    assert answer["headers"]["X-Content-Type-Options"] == "nosniff"


def test_a_browser_opening_an_unknown_status_link_gets_a_404_page(
    aws: Aws, capture: ModuleType
) -> None:
    answer = _status(capture, UNKNOWN, BROWSER_ACCEPT)
    assert answer["statusCode"] == 404
    assert_hardened_page(answer)
    assert "no request with this request_id" in answer["body"]


def test_the_no_javascript_confirmation_and_error_pages_are_hardened(
    aws: Aws, capture: ModuleType
) -> None:
    # Given a browser's plain form posts, one good and one with no identifier
    def form(fields: list[tuple[str, str]]) -> dict[str, Any]:
        return http_event(
            "POST", "/v1/opt-out", raw_body=urlencode(fields),
            headers={"content-type": "application/x-www-form-urlencoded",
                     "accept": BROWSER_ACCEPT},
        )  # fmt: skip

    confirmation = invoke(capture, form([("email", "pat@example.org")]))
    refusal = invoke(capture, form([("email", "")]))
    # Then both answers are hardened pages
    assert (confirmation["statusCode"], refusal["statusCode"]) == (202, 422)
    assert_hardened_page(confirmation)
    assert_hardened_page(refusal)


@pytest.mark.parametrize(("gpc", "honoured"), [("1", True), (None, False)])
def test_the_confirmation_page_says_when_the_gpc_signal_was_honoured(
    aws: Aws, capture: ModuleType, gpc: str | None, honoured: bool
) -> None:
    # Given a browser's plain form post, with or without its Global Privacy Control signal
    headers = {"content-type": "application/x-www-form-urlencoded", "accept": BROWSER_ACCEPT}
    event = http_event(
        "POST", "/v1/opt-out", raw_body=urlencode([("email", "pat@example.org")]),
        headers=headers | ({"sec-gpc": gpc} if gpc else {}),
    )  # fmt: skip
    # When it is answered with the confirmation page
    answer = invoke(capture, event)
    assert answer["statusCode"] == 202
    # Then the page says the signal was honoured exactly when it was
    assert ("Opt-Out Request Honored" in answer["body"]) is honoured
    assert ("Global Privacy Control" in answer["body"]) is honoured


@pytest.mark.parametrize(
    ("body", "status"),
    [({"email": "pat@example.org"}, 202), ({"email": "not-an-email"}, 422)],
)
def test_a_client_set_submitted_as_header_does_not_turn_json_into_pages(
    aws: Aws, capture: ModuleType, body: dict[str, str], status: int
) -> None:
    # Given a JSON post carrying the header the handler once trusted
    event = http_event(
        "POST", "/v1/opt-out", body,
        headers={"x-optout-submitted-as": "form", "accept": BROWSER_ACCEPT},
    )  # fmt: skip
    # When it is handled
    answer = invoke(capture, event)
    # Then it is answered as JSON: only the form encoding itself makes a page
    assert answer["statusCode"] == status
    assert answer["headers"]["Content-Type"] == "application/json"
    json_body(answer)


def test_a_page_answer_does_not_leak_into_the_next_invocation(
    aws: Aws, capture: ModuleType
) -> None:
    # Given a warm container that just answered a browser's form post with a page
    form = http_event(
        "POST", "/v1/opt-out", raw_body=urlencode([("email", "")]),
        headers={"content-type": "application/x-www-form-urlencoded", "accept": "text/html"},
    )  # fmt: skip
    assert invoke(capture, form)["headers"]["Content-Type"].startswith("text/html")
    # When a script then sends a bad JSON body
    answer = invoke(capture, http_event("POST", "/v1/opt-out", {"email": "x"}))
    # Then the script gets JSON
    assert answer["headers"]["Content-Type"] == "application/json"


@pytest.mark.parametrize(
    ("accept", "html"),
    [
        (BROWSER_ACCEPT, True),
        ("text/html", True),
        ("*/*", False),
        ("", False),
        ("application/json", False),
        ("text/html;q=0.5, application/json", False),
        ("text/html;q=0", False),
        ("application/*;q=0.2, text/html", True),
        ("text/html;q=bogus, */*", False),
    ],
)
def test_accept_negotiation_prefers_json_unless_html_is_named_and_preferred(
    aws: Aws, capture: ModuleType, accept: str, html: bool
) -> None:
    assert capture.accepts_html(accept) is html
