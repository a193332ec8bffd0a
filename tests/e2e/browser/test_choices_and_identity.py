"""The "limit the use of my sensitive personal information" choice (CCPA §7027), and what the
banner sends for a logged-in page: the signed identity token, once, never stored.

The identity token and `confirm_opt_in` are fields the identity work adds to the API; these
tests assert what banner.js sends (FakeConsentApi records the request bodies), not what the
API does with them.
"""

import pytest
from playwright.sync_api import BrowserContext, Dialog, Page, expect

from .conftest import (
    SALE_SHARE,
    BrowserFactory,
    FakeConsentApi,
    consent_posted,
    decode_gpp,
    gpp_ping,
    serve_logged_in_page,
    wait_until_ready,
)

pytestmark = pytest.mark.browser

LIMIT_LABEL = "Limit the use of my sensitive personal information"
# A JWT-shaped token as a login backend would render it (the banner never looks inside).
TOKEN = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJjdXN0LTQyIiwiZXhwIjo0MTAyNDQ0ODAwfQ.c2lnbmF0dXJl"


def _shop(new_context: BrowserFactory, site: str, api: FakeConsentApi, gpc: bool = False) -> Page:
    context = new_context(gpc=gpc)
    api.install(context)
    page = context.new_page()
    page.goto(f"{site}/index.html")
    wait_until_ready(page)
    return page


def test_limiting_sensitive_data_is_its_own_choice_and_reaches_the_api(
    new_context: BrowserFactory, static_site: str
) -> None:
    # Given a visitor with nothing opted out
    api = FakeConsentApi()
    page = _shop(new_context, static_site, api)
    banner = page.locator("#optout-bridge")

    # When they open the choices and tick only the limit, then save
    banner.get_by_role("button", name="Choose").click()
    group = banner.get_by_role("group", name="Sensitive personal information")
    group.get_by_label(LIMIT_LABEL).check()
    with consent_posted(page):
        banner.get_by_role("button", name="Save choices").click()

    # Then the API is told about the limit and nothing else changes
    page.wait_for_function("() => window.optoutBridge.state().optOut.limit_sensitive")
    assert api.posts[-1]["opt_out"] == {**dict.fromkeys(SALE_SHARE, False), "limit_sensitive": True}
    expect(banner.locator("[data-optout-status]")).to_have_text("Sensitive data use limited")
    # ... ad tech still reads "did not opt out" of sale and sharing
    usnat = decode_gpp(gpp_ping(page)["gppString"])["usnat"]
    assert (usnat["SaleOptOut"], usnat["SharingOptOut"]) == (2, 2)


def test_opt_out_of_all_is_the_do_not_sell_or_share_choice_not_the_limit(
    new_context: BrowserFactory, static_site: str
) -> None:
    # Given a first visit
    api = FakeConsentApi()
    page = _shop(new_context, static_site, api)

    # When the visitor clicks "Opt out of all"
    with consent_posted(page):
        page.locator("#optout-bridge").get_by_role("button", name="Opt out of all").click()

    # Then the four sale/share purposes are posted, the limit is left as it was
    page.wait_for_function("() => window.optoutBridge.state().optOut.sale")
    assert api.posts[-1]["opt_out"] == dict.fromkeys(SALE_SHARE, True)


def test_gpc_locks_sale_and_sharing_but_leaves_the_limit_to_the_person(
    new_context: BrowserFactory, static_site: str
) -> None:
    # Given a browser sending Global Privacy Control
    api = FakeConsentApi()
    page = _shop(new_context, static_site, api, gpc=True)
    banner = page.locator("#optout-bridge")

    # When the visitor opens the choices
    banner.get_by_role("button", name="Your Privacy Choices").click()

    # Then the GPC purposes are ticked and locked, the limit is free and not ticked
    sale = banner.get_by_label("Opt out: Sale of my personal information")
    expect(sale).to_be_checked()
    expect(sale).to_be_disabled()
    limit = banner.get_by_label(LIMIT_LABEL)
    expect(limit).not_to_be_checked()
    expect(limit).to_be_enabled()
    assert page.evaluate("() => window.optoutBridge.state().optOut.limit_sensitive") is False


def test_un_limiting_takes_a_second_confirming_step(
    new_context: BrowserFactory, static_site: str
) -> None:
    # Given a visitor whose use of sensitive data is limited
    api = FakeConsentApi(opt_out={"limit_sensitive": True})
    page = _shop(new_context, static_site, api)
    banner = page.locator("#optout-bridge")
    banner.get_by_role("button", name="Your Privacy Choices").click()
    banner.get_by_label(LIMIT_LABEL).uncheck()

    # When they save and confirm the question that follows
    questions: list[str] = []

    def answer(dialog: Dialog) -> None:
        questions.append(dialog.message)
        dialog.accept()

    page.once("dialog", answer)
    with consent_posted(page):
        banner.get_by_role("button", name="Save choices").click()

    # Then they were asked about the use of sensitive data, and the API is told they confirmed
    assert "use of sensitive data" in questions[0]
    assert api.posts[-1]["opt_out"]["limit_sensitive"] is False
    assert api.posts[-1]["confirm_opt_in"] is True
    # ... and the limit stays until the API's state has the opt-in (review s26 F3)
    status = banner.locator("[data-optout-status]")
    expect(status).to_have_text("Sensitive data use limited · Opt-in saved, not applied yet")
    assert page.evaluate("() => window.optoutBridge.state().optOut.limit_sensitive") is True

    # When the resolver has recorded it (a device not linked to anyone else), the next page
    # applies it
    api.opt_out = {}
    page.reload()
    wait_until_ready(page)
    assert page.evaluate("() => window.optoutBridge.state().optOut.limit_sensitive") is False
    expect(status).to_have_text("")


def _storage_and_cookies(context: BrowserContext, page: Page) -> str:
    stored = page.evaluate(
        "() => JSON.stringify([{...localStorage}, {...sessionStorage}, document.cookie])"
    )
    return stored + str(context.cookies())


def test_a_logged_in_pages_token_is_sent_with_its_posts_and_never_stored(
    new_context: BrowserFactory, static_site: str
) -> None:
    # Given a page whose login backend rendered the signed identity token on the script tag
    context = new_context()
    # (the API links the browser; the person has no opt-out yet)
    api = FakeConsentApi(links_to={})
    api.install(context)
    account = serve_logged_in_page(context, static_site, TOKEN)
    page = context.new_page()

    # When the page loads and the visitor then opts out (in the panel: a logged-in page
    # whose state the link touched shows no first-visit banner)
    page.goto(account)
    wait_until_ready(page)
    banner = page.locator("#optout-bridge")
    banner.get_by_role("button", name="Your Privacy Choices").click()
    with consent_posted(page):
        banner.get_by_role("button", name="Opt out of all").click()

    # Then the token went with the load's post, as identity_token, and not with the choice:
    # a token makes one request (the API refuses a second use), and the link is made
    assert [post.get("identity_token") for post in api.posts] == [TOKEN, None]
    assert "identity" not in api.posts[0]
    # ... and it is nowhere the browser keeps things, nor left in the page's markup
    assert TOKEN not in _storage_and_cookies(context, page)
    assert TOKEN not in page.content()


def test_identify_with_a_token_is_verified_and_with_an_email_is_asserted(
    new_context: BrowserFactory, static_site: str
) -> None:
    # Given the shop, logged out
    context = new_context()
    api = FakeConsentApi()
    api.install(context)
    page = context.new_page()
    page.goto(f"{static_site}/index.html")
    wait_until_ready(page)

    # When the site's login code calls identify with a token, then (older code) with an email
    page.evaluate("(token) => window.optoutBridge.identify(token)", TOKEN)
    page.evaluate("() => window.optoutBridge.identify({ email: 'jane@example.com' })")

    # Then the first post carries the token, the second the asserted email (and not the token:
    # it made its one request)
    token_post, email_post = api.posts[-2:]
    assert token_post["identity_token"] == TOKEN
    assert "identity" not in token_post
    assert email_post["identity"] == {"email": "jane@example.com"}
    assert "identity_token" not in email_post
    assert TOKEN not in _storage_and_cookies(context, page)


def test_a_plain_opt_out_does_not_claim_a_confirmed_opt_in(
    new_context: BrowserFactory, static_site: str
) -> None:
    api = FakeConsentApi()
    page = _shop(new_context, static_site, api)
    with consent_posted(page):
        page.locator("#optout-bridge").get_by_role("button", name="Opt out of all").click()
    assert "confirm_opt_in" not in api.posts[-1]


def _tags_ran(page: Page) -> int:
    """How many of the shop's two gated tags banner.js activated."""
    return 2 - page.locator('script[type="text/plain"][data-purpose]').count()


def _google_ads(page: Page) -> str:
    """The last ad_storage value banner.js sent to Google."""
    consent: list[str] = page.evaluate(
        "() => dataLayer.map((c) => Array.from(c)).filter((c) => c[0] === 'consent')"
        ".map((c) => c[2].ad_storage)"
    )
    return consent[-1]


def test_identify_holds_every_signal_until_the_state_read_after_the_link_has_it(
    new_context: BrowserFactory, static_site: str
) -> None:
    # Given the shop on a new browser, logged out (nothing known: its tags ran), and a person
    # who opted out elsewhere: the link gives this browser their opt-out of all four
    api = FakeConsentApi(links_to=dict.fromkeys(SALE_SHARE, True))
    page = _shop(new_context, static_site, api)
    assert _tags_ran(page) == 2

    # When the shop's login code hands the banner that person's token (shop.js awaits it)
    page.evaluate("(token) => window.optoutBridge.identify(token)", TOKEN)

    # Then the page read the state again and applies the person's opt-out: signals included
    state = page.evaluate("() => window.optoutBridge.state()")
    assert state["known"] is True
    assert all(state["optOut"][p] for p in SALE_SHARE)
    assert state["uspString"] == "1YYN"
    assert _google_ads(page) == "denied"
    expect(page.locator("#optout-bridge [data-optout-status]")).to_have_text("Opted out")


def test_a_link_the_state_never_shows_leaves_the_page_fail_closed(
    new_context: BrowserFactory, static_site: str
) -> None:
    # Given a new browser's first logged-in page, and an API whose state does not move after
    # the link (a person with no opt-out, or a resolver running behind)
    context = new_context()
    api = FakeConsentApi()
    api.install(context)

    # When it loads and banner.js has read the state for as long as it waits (about 5 s)
    page = _account_page(context, static_site)

    # Then the page stays as with an unknown state: the token went, the state was read again,
    # no gated tag ran, Google stays denied, __gpp is not ready and no first-visit banner
    assert [p.get("identity_token") for p in api.posts] == [TOKEN]
    assert page.evaluate("() => window.optoutBridge.state().known") is False
    assert page.locator('script[type="text/plain"][data-purpose]').count() == 1
    assert _google_ads(page) == "denied"
    assert gpp_ping(page)["signalStatus"] == "not ready"
    banner = page.locator("#optout-bridge")
    expect(banner.get_by_role("button", name="Your Privacy Choices")).to_be_visible()
    expect(banner.get_by_role("button", name="Allow")).to_have_count(0)


def _account_page(context: BrowserContext, site: str) -> Page:
    """A logged-in page carrying TOKEN, with one gated targeted-advertising tag."""
    html = (
        '<!doctype html><html lang="en"><head><title>Your account</title>'
        f'<script src="/dist/banner.min.js" data-identity-token="{TOKEN}"></script></head>'
        '<body><script type="text/plain" data-purpose="targeted_advertising"'
        ' src="/demo-tags/targeted-ad.js"></script></body></html>'
    )
    context.route(
        f"{site}/account.html",
        lambda route: route.fulfill(status=200, content_type="text/html", body=html),
    )
    page = context.new_page()
    page.goto(f"{site}/account.html")
    page.evaluate("() => window.optoutBridge.ready")
    return page


@pytest.mark.parametrize("post_status", [503, 429, 0])
def test_a_first_link_whose_post_fails_leaves_the_page_fail_closed(
    new_context: BrowserFactory, static_site: str, post_status: int
) -> None:
    # Given a person who opted out elsewhere, and a new browser's first logged-in page whose
    # token post is neither accepted nor refused by the API (a throttle's 429, a 5xx, the
    # network) while the state still reads (review s16 claims2 F1: the page ran its ad tags)
    context = new_context()
    api = FakeConsentApi(links_to=dict.fromkeys(SALE_SHARE, True), post_status=post_status)
    api.install(context)
    # When it loads
    page = _account_page(context, static_site)
    # Then the person's opt-outs are unknown: nothing gated runs, Google stays denied, no
    # US Privacy "not opted out", no first-visit "Allow"
    assert page.evaluate("() => window.optoutBridge.state().known") is False
    assert page.locator('script[type="text/plain"][data-purpose]').count() == 1
    assert _google_ads(page) == "denied"
    # (the cookie says opted out at once: it had no value, and none is "not opted out")
    assert [c["value"] for c in context.cookies() if c["name"] == "usprivacy"] == ["1YYN"]
    banner = page.locator("#optout-bridge")
    expect(banner.get_by_role("button", name="Your Privacy Choices")).to_be_visible()
    expect(banner.get_by_role("button", name="Allow")).to_have_count(0)


def test_a_first_link_whose_token_the_api_refuses_applies_the_state_read(
    new_context: BrowserFactory, static_site: str
) -> None:
    # Given a new browser's first logged-in page whose token the API refuses (expired): no
    # link is made, so nothing is waited for
    context = new_context()
    api = FakeConsentApi(expired_tokens=True)
    api.install(context)
    # When it loads
    page = _account_page(context, static_site)
    # Then the state it read applies at once: this browser's own (nothing opted out)
    assert page.evaluate("() => window.optoutBridge.state().known") is True
    assert page.locator('script[type="text/plain"][data-purpose]').count() == 0


def test_the_gpc_note_says_not_yet_processed_until_the_api_confirms_it(
    new_context: BrowserFactory, static_site: str
) -> None:
    # Given a GPC browser whose signal's post the API has not answered yet
    context = new_context(gpc=True)
    api = FakeConsentApi(hold_posts=True)
    api.install(context)
    page = context.new_page()
    page.goto(f"{static_site}/index.html")
    page.wait_for_function("() => window.optoutBridge && window.optoutBridge.state().known")
    for _ in range(100):
        if api.held:
            break
        page.wait_for_timeout(50)
    banner = page.locator("#optout-bridge")

    # When the person opens the choices, Then the note says the signal is not processed yet
    banner.get_by_role("button", name="Your Privacy Choices").click()
    note = banner.locator("[data-optout-gpc]")
    expect(note).to_have_text("Global Privacy Control detected, not yet processed")

    # ... and once the API answered gpc_honored, it says the request was honoured
    banner.get_by_role("button", name="Close").click()
    with page.expect_request_finished(lambda r: r.url.endswith("/v1/consent")):
        api.answer(api.held.pop())
    expect(banner.locator("[data-optout-status]")).to_have_text("Opt-Out Request Honored")
    banner.get_by_role("button", name="Your Privacy Choices").click()
    expect(note).to_have_text("Opt-Out Request Honored")


def test_a_gpc_header_without_the_navigator_property_is_honoured(
    new_context: BrowserFactory, static_site: str
) -> None:
    # Given a browser whose requests carry Sec-GPC: 1 (a privacy proxy, a gateway, a
    # header-only extension) but with no navigator.globalPrivacyControl (review s26 F1)
    context = new_context(gpc_header_only=True)
    api = FakeConsentApi()
    api.install(context)
    page = context.new_page()

    # When the shop loads
    with consent_posted(page):
        page.goto(f"{static_site}/index.html")
    wait_until_ready(page)

    # Then the state read said so, and the banner did as with the property: the signal posted
    # once, honoured, no sale/share/targeted tag, every signal opted out, GPC in the string
    assert page.evaluate("() => navigator.globalPrivacyControl") is None
    assert [post.get("gpc") for post in api.posts] == [True]
    expect(page.locator("#optout-bridge [data-optout-status]")).to_have_text(
        "Opt-Out Request Honored"
    )
    assert page.evaluate("() => window.optoutBridge.state().gpc") is True
    assert page.locator('script[type="text/plain"][data-purpose]').count() == 2
    assert _google_ads(page) == "denied"
    usnat = decode_gpp(gpp_ping(page)["gppString"])["usnat"]
    assert (usnat["SaleOptOut"], usnat["SharingOptOut"], usnat["Gpc"]) == (1, 1, True)
    assert page.evaluate("() => window.optoutBridge.state().uspString") == "1YYN"
