"""The banner's two calls to the API (`GET /v1/consent/{id}` and `POST /v1/consent`) carried the
page's full address in `Referer`: on a same-origin deployment (the browser's default policy,
strict-origin-when-cross-origin, keeps path and query for same-origin requests), or on a page
whose own policy is looser (`unsafe-url`). A page's path and query string can hold a session
token or an email; the API needs neither (a choice names its page in `page_url`, without its
query, an `@` path segment redacted). The banner now sends both calls with
`referrerPolicy: "no-referrer"`.
"""

import pytest
from playwright.sync_api import Request, expect

from .conftest import BrowserFactory, FakeConsentApi, serve_page, wait_until_ready

pytestmark = pytest.mark.browser

PAGE = (
    '<!doctype html><html lang="en"><head><title>Account</title>'
    '<meta name="referrer" content="POLICY">'
    '<script src="/dist/banner.min.js"></script></head>'
    "<body><main><h1>Account</h1></main></body></html>"
)


@pytest.mark.parametrize("policy", ["strict-origin-when-cross-origin", "unsafe-url"])
def test_the_api_calls_send_no_referer(
    new_context: BrowserFactory, static_site: str, policy: str
) -> None:
    # Given a GPC browser on a page whose address holds a session token and an email
    context = new_context(gpc=True)
    api = FakeConsentApi()
    api.install(context)
    serve_page(context, f"{static_site}/account.html*", PAGE.replace("POLICY", policy))
    page = context.new_page()
    calls: list[Request] = []

    def sent(request: Request) -> None:
        if "/v1/consent" in request.url:
            calls.append(request)

    page.on("request", sent)
    address = f"{static_site}/account.html?session=s3cr3t&email=walker%40demo.example.com"

    # When the banner reads the state, posts GPC, and the person then opts out of all
    page.goto(address)
    wait_until_ready(page)
    banner = page.locator("#optout-bridge")
    expect(banner.get_by_text("Opt-Out Request Honored")).to_be_visible()
    banner.get_by_role("button", name="Your Privacy Choices").click()
    with page.expect_response(lambda r: r.url.endswith("/v1/consent") and len(api.posts) > 1):
        banner.get_by_role("button", name="Opt out of all").click()

    # Then the state read and both posts went out without a Referer
    assert [r.method for r in calls] == ["GET", "POST", "POST"]
    assert [r.all_headers().get("referer") for r in calls] == [None, None, None]
    # ... and the page the choice was made on is still named, without its query
    assert api.posts[-1]["page_url"] == f"{static_site}/account.html"
