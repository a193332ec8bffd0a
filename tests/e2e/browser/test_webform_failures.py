"""The webform (with JavaScript) when the API throttles, fails or never answers: the person is
told what happened above the form, never that a field is wrong, and can try again."""

import json
from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import BrowserContext, Page, Route, expect

from .conftest import BrowserFactory

pytestmark = pytest.mark.browser

ACCEPTED = {"request_id": "6b1f0c3e-2d4a-4b5c-9e8f-7a6b5c4d3e2f", "status": "received",
            "received_at": "2026-11-29T03:20:00.123Z", "deadline": "2026-12-18"}  # fmt: skip
THROTTLED = '{"message":"Too Many Requests"}'  # API Gateway's own 429 body


def _submit(context: BrowserContext, site: str) -> Page:
    page = context.new_page()
    page.goto(f"{site}/privacy.html")
    page.get_by_label("Email").fill("jane@example.com")
    page.get_by_role("button", name="Submit opt-out request").click()
    return page


def _answer(status: int, body: str) -> Callable[[Route], None]:
    return lambda route: route.fulfill(status=status, content_type="application/json", body=body)


@pytest.mark.parametrize(
    "status, body",
    [
        (429, THROTTLED),
        (
            404,
            json.dumps(
                {
                    "error": {
                        "code": "not_found",
                        "message": "No such request.",
                        "field": "request_id",
                    }
                }
            ),
        ),
    ],
)
def test_check_now_says_what_happened_when_the_status_read_is_refused(
    new_context: BrowserFactory, static_site: str, status: int, body: str
) -> None:
    # Given an accepted webform request
    context = new_context()
    context.route("**/v1/opt-out", _answer(202, json.dumps(ACCEPTED)))
    page = _submit(context, static_site)
    expect(page.locator("[data-request-id]")).to_have_text(ACCEPTED["request_id"])

    # When "Check now" is refused (throttled, or not found)
    context.route("**/v1/requests/*", _answer(status, body))
    page.get_by_role("button", name="Check now").click()

    # Then the page says so instead of "Status: undefined"
    text = page.locator("[data-status-text]")
    expect(text).not_to_be_empty()
    assert "undefined" not in text.inner_text()
    expected = "No such request." if status == 404 else "The status is not available right now."
    expect(text).to_have_text(expected)


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ({"status": "processing", "systems_total": 6, "systems_done": 0, "systems_failed": 0},
         "Status: processing (6 systems to confirm)."),
        ({"status": "completed", "systems_total": 6, "systems_done": 6, "systems_failed": 0},
         "Status: completed (6 of 6 systems done)."),
        # denied with jobs in flight: the public 0 is no count (review s22 proof P4), read as
        # processing does (the total may hold systems it never asked: review s22 diff B5); and
        # the reason, in the page's words (B6)
        ({"status": "denied", "systems_total": 6, "systems_done": 0, "systems_failed": 0,
          "denial_reason": "suspected_fraud"},
         "Status: denied (6 systems to confirm). "
         "Reason: we believe in good faith that the request is fraudulent."),
        # a denial's failed systems are "not done", as the page says (B6)
        ({"status": "denied", "systems_total": 6, "systems_done": 2, "systems_failed": 4,
          "denial_reason": "not_a_consumer"},
         "Status: denied (2 of 6 systems done, 4 not done). "
         "Reason: the request was not made by or for a consumer."),
        ({"status": "denied", "systems_total": 6, "systems_done": 0, "systems_failed": 6,
          "denial_reason": "other"},
         "Status: denied (0 of 6 systems done, 6 not done). Reason: another reason."),
        ({"status": "failed", "systems_total": 6, "systems_done": 5, "systems_failed": 1},
         "Status: failed (5 of 6 systems done, 1 failed)."),
        ({"status": "received", "systems_total": 0, "systems_done": 0, "systems_failed": 0},
         "Status: received."),
    ],
)  # fmt: skip
def test_check_now_shows_no_progress_while_processing(
    new_context: BrowserFactory, static_site: str, answer: dict[str, Any], expected: str
) -> None:
    # Given an accepted webform request
    context = new_context()
    context.route("**/v1/opt-out", _answer(202, json.dumps(ACCEPTED)))
    page = _submit(context, static_site)
    expect(page.locator("[data-request-id]")).to_have_text(ACCEPTED["request_id"])
    # When "Check now" reads its status
    status = {"request_id": ACCEPTED["request_id"], "received_at": "2026-12-01T10:00:00.000Z",
              "deadline": "2026-12-22", "completed_at": None} | answer  # fmt: skip
    context.route("**/v1/requests/*", _answer(200, json.dumps(status)))
    page.get_by_role("button", name="Check now").click()
    # Then a processing request reads the systems to confirm, not "0 of 6 done" (the public
    # answer counts no progress, review s20 diff C1); an ended one its counts
    expect(page.locator("[data-status-text]")).to_have_text(expected)


LIMIT_BUTTON = "Submit request to limit use of sensitive information"


def test_the_submit_button_names_what_the_ticked_boxes_ask(
    new_context: BrowserFactory, static_site: str
) -> None:
    # Given the webform as it opens: the four opt-outs ticked, the limit not
    page = new_context().new_page()
    page.goto(f"{static_site}/privacy.html")
    button = page.locator("#optout-form button[type=submit]")
    expect(button).to_have_text("Submit opt-out request")
    # When the limit is ticked too, then the opt-outs unticked, then the limit unticked
    page.locator("input[value=limit_sensitive]").check()
    expect(button).to_have_text("Submit opt-out and limit request")
    page.locator("#optout-all").uncheck()  # unticks the four opt-outs
    # Then a request only to limit is not called an opt-out (CCPA §7027)
    expect(button).to_have_text(LIMIT_BUTTON)
    page.locator("input[value=limit_sensitive]").uncheck()
    expect(button).to_have_text("Submit request")
    page.get_by_label("Profiling", exact=True).check()
    expect(button).to_have_text("Submit opt-out request")
    # ... and without JavaScript, which cannot follow the boxes, the button is neutral
    plain = new_context(javascript=False).new_page()
    plain.goto(f"{static_site}/privacy.html")
    expect(plain.locator("#optout-form button[type=submit]")).to_have_text("Submit request")


def test_the_confirmation_heading_names_what_was_asked(
    new_context: BrowserFactory, static_site: str
) -> None:
    # review s22 proof R4: a request only to limit the use of sensitive data (§7027) is no
    # opt-out; the confirmation said "We received your opt-out request" to it
    context = new_context()
    context.route("**/v1/opt-out", _answer(202, json.dumps(ACCEPTED)))
    page = context.new_page()
    page.goto(f"{static_site}/privacy.html")
    page.get_by_label("Email").fill("jane@example.com")
    page.locator("#optout-all").uncheck()  # unticks the four opt-outs
    page.locator("input[value=limit_sensitive]").check()
    page.get_by_role("button", name=LIMIT_BUTTON).click()
    expect(page.locator("#result-title")).to_have_text(
        "We received your request to limit the use of your sensitive personal information"
    )
    # ... and with an opt-out ticked as well, it is an opt-out request
    page = _submit(context, static_site)
    expect(page.locator("#result-title")).to_have_text("We received your opt-out request")


def test_a_limit_only_request_with_gpc_honored_says_it_is_also_an_opt_out(
    new_context: BrowserFactory, static_site: str
) -> None:
    # Given a browser whose request carried Sec-GPC: 1 (the answer says gpc_honored)
    context = new_context()
    context.route("**/v1/opt-out", _answer(202, json.dumps(ACCEPTED | {"gpc_honored": True})))
    # When it sends a request only to limit the use of sensitive data
    page = context.new_page()
    page.goto(f"{static_site}/privacy.html")
    page.get_by_label("Email").fill("jane@example.com")
    page.locator("#optout-all").uncheck()
    page.locator("input[value=limit_sensitive]").check()
    page.get_by_role("button", name=LIMIT_BUTTON).click()
    # Then the result says it is also an opt-out, as the no-JavaScript page does: the
    # limit-only heading hid it (review s22 diff B4)
    expect(page.locator("#result-title")).to_have_text(
        "We received your request to limit the use of your sensitive personal information"
    )
    expect(page.locator("[data-gpc-honored]")).to_be_visible()
    expect(page.locator("#result")).to_contain_text("Opt-Out Request Honored")
    # ... and without the signal it says nothing of it
    page = _submit(new_context_routed(new_context), static_site)
    expect(page.locator("#result-title")).to_have_text("We received your opt-out request")
    expect(page.locator("[data-gpc-honored]")).to_be_hidden()


def new_context_routed(new_context: BrowserFactory) -> BrowserContext:
    context = new_context()
    context.route("**/v1/opt-out", _answer(202, json.dumps(ACCEPTED)))
    return context


def test_a_throttled_submission_is_a_form_error_not_an_email_error(
    new_context: BrowserFactory, static_site: str
) -> None:
    # Given an API that throttles the webform
    context = new_context()
    context.route("**/v1/opt-out", _answer(429, THROTTLED))

    # When the visitor submits a valid email
    page = _submit(context, static_site)

    # Then the form says the request was not recorded, and the email is not marked wrong
    expect(page.get_by_role("alert")).to_contain_text("We could not record your request right now")
    expect(page.locator("#email-error")).to_be_empty()
    expect(page.get_by_label("Email")).not_to_have_attribute("aria-invalid", "true")


def test_a_submission_the_server_never_answers_gives_up_and_can_be_sent_again(
    new_context: BrowserFactory, static_site: str
) -> None:
    # Given an API that never answers the webform's POST
    context = new_context()
    context.clock.install()
    held: list[Route] = []
    context.route("**/v1/opt-out", lambda route: held.append(route))
    page = _submit(context, static_site)
    button = page.get_by_role("button", name="Submit opt-out request")
    expect(button).to_be_disabled()

    # When 21 seconds pass
    page.clock.run_for(21_000)

    # Then the form says the server did not answer, and the button works again
    expect(page.get_by_role("alert")).to_contain_text("did not answer in time")
    expect(button).to_be_enabled()
