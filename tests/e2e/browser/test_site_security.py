"""The demo site and the API's pages as the local stack serves them: a strict Content Security
Policy that nothing on them violates (banner.js included), and the status page a person opens
from the webform is accessible."""

import json
import urllib.request
import uuid

import pytest
from playwright.sync_api import expect

from .conftest import BrowserFactory, serve_npm, wait_until_ready
from .test_accessibility import axe_violations

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

RECORD_VIOLATIONS = """
window.__violations = [];
document.addEventListener("securitypolicyviolation", (event) =>
  window.__violations.push(`${event.violatedDirective} ${event.blockedURI}`));
"""


@pytest.mark.parametrize(
    ("path", "banner"), [("/", True), ("/privacy.html", True), ("/requests.html", False)]
)
def test_the_demo_pages_run_under_their_policy_without_a_violation(
    new_context: BrowserFactory, stack_url: str, path: str, banner: bool
) -> None:
    # Given a browser recording every Content-Security-Policy violation
    context = new_context()
    context.add_init_script(RECORD_VIOLATIONS)
    page = context.new_page()
    refused: list[str] = []
    page.on("console", lambda m: "Content Security Policy" in m.text and refused.append(m.text))

    # When a demo page loads from the local stack and has done its work
    with page.expect_response(lambda r: r.url == f"{stack_url}{path}") as answer:
        page.goto(f"{stack_url}{path}")
    if banner:
        wait_until_ready(page)
    else:  # the requests page fills its table from /_local/requests
        expect(page.locator("#updated")).to_contain_text("Updated")

    # Then it was served with a policy that allows no inline script and no framing
    csp = answer.value.headers["content-security-policy"]
    assert "script-src 'self'" in csp
    assert "frame-ancestors 'none'" in csp
    # ... and nothing on it broke that policy
    assert page.evaluate("() => window.__violations") == []
    assert refused == []


def test_the_banner_is_styled_under_a_policy_without_inline_styles(
    new_context: BrowserFactory, stack_url: str
) -> None:
    # Given the shop, whose policy allows styles only from its own origin
    page = new_context().new_page()
    page.goto(f"{stack_url}/")
    wait_until_ready(page)

    # Then the banner is styled: its stylesheet is a constructed one, not an inline <style>
    button = page.locator("#optout-bridge").get_by_role("button").first
    expect(button).to_be_visible()
    assert button.evaluate("(b) => getComputedStyle(b).borderRadius") == "8px"


def test_the_status_page_a_person_opens_is_accessible(
    new_context: BrowserFactory, stack_url: str
) -> None:
    # Given an opt-out request (by device id: no email, so no job shares a vendor batch with
    # the email journeys other tests follow on the same stack)
    data = f'{{"device_id": "status-{uuid.uuid4().hex}"}}'.encode()
    sent = urllib.request.Request(
        f"{stack_url}/v1/opt-out", data=data, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(sent, timeout=5) as answer:
        request_id = json.load(answer)["request_id"]

    # When its status link is opened in a browser (one that lets the test inject axe-core:
    # the page's own policy allows no script at all)
    context = new_context(bypass_csp=True)
    serve_npm(context, stack_url)
    page = context.new_page()
    page.goto(f"{stack_url}/v1/requests/{request_id}")

    # Then it is a page, and axe-core finds no violation on it
    expect(page.get_by_role("heading", name="Your request")).to_be_visible()
    assert axe_violations(page, stack_url) == []


@pytest.mark.parametrize("javascript", [False, True])
def test_the_demo_login_never_puts_the_email_in_a_url(
    new_context: BrowserFactory, static_site: str, javascript: bool
) -> None:
    # Given the demo shop in a browser with JavaScript off (or shop.js, a module, not run yet:
    # it is deferred, so a quick submit reaches the form's own action), every request recorded
    context = new_context(javascript=javascript)
    if javascript:  # shop.js never arrives: the form submits itself, as before the module ran
        context.route("**/shop.js", lambda route: route.abort())
    urls: list[str] = []
    context.on("request", lambda request: urls.append(request.url))
    page = context.new_page()
    page.goto(f"{static_site}/")
    # When a person logs in with their email address
    page.fill("#login-email", "walker@demo.example.com")
    with page.expect_navigation():
        page.click("#login button[type=submit]")
    # Then the address is in no URL: not the page's (history, Referer to third-party tags,
    # access logs), nor any request's (a form without a method submits by GET, as a query)
    assert all("walker" not in url and "demo.example.com" not in url for url in [*urls, page.url])
