"""Tests 1-4: the consumer's journeys in headless Chromium against the local stack.

Each test is one browser story end to end: banner.js -> capture API -> stream -> resolver ->
state -> banner.js on the next load. Waits on the asynchronous pipeline are bounded polls.
"""

import json
import urllib.request
import uuid
from datetime import date
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from .conftest import (
    SALE_SHARE,
    BrowserFactory,
    ad_tag_ran,
    consent_state,
    decode_gpp,
    device_id_of,
    eventually,
    get_json,
    gpp_ping,
    partner_pixel_ran,
    screenshot,
    usp_data,
    wait_until_ready,
)

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

GPC_PURPOSES = ("sale", "share", "targeted_advertising")


def banner_status(page: Page) -> str:
    return page.locator("#optout-bridge [data-optout-status]").inner_text()


def test_gpc_browser_runs_no_gated_tag_and_is_told_its_opt_out_was_honored(
    new_context: BrowserFactory, stack_url: str
) -> None:
    # Given a browser that sends Global Privacy Control
    context = new_context(gpc=True)
    page = context.new_page()

    # When it opens the shop, without a click
    with page.expect_response(
        lambda r: r.url.endswith("/v1/consent") and r.request.method == "POST"
    ) as posted:
        page.goto(f"{stack_url}/")
    wait_until_ready(page)

    # Then the API honoured the signal, and its stored state says so once resolved
    assert posted.value.status == 202
    answer = posted.value.json()
    assert answer["gpc_honored"] is True
    assert all(answer["opt_out"][p] for p in GPC_PURPOSES)
    device_id = device_id_of(context)
    stored = eventually(
        lambda: (s := consent_state(stack_url, device_id))["gpc_honored"] and s,
        "the resolver to store the GPC opt-out",
    )
    assert all(stored["opt_out"][p] for p in GPC_PURPOSES)
    # ... no gated tag ran
    assert not ad_tag_ran(page)
    assert page.locator("[data-ad-tag]").count() == 0
    assert page.locator('script[type="text/plain"][data-purpose]').count() == 2
    # ... the banner says so
    expect(page.locator("#optout-bridge").get_by_text("Opt-Out Request Honored")).to_be_visible()
    screenshot(page, "banner-gpc-honored")
    # ... and the signals for ad tech carry the opt-out
    usnat = decode_gpp(gpp_ping(page)["gppString"])["usnat"]
    assert (usnat["SaleOptOut"], usnat["SharingOptOut"], usnat["TargetedAdvertisingOptOut"]) == (
        1,
        1,
        1,
    )
    assert usnat["Gpc"] is True
    assert usp_data(page)["uspString"] == "1YYN"


def test_opt_out_clicked_in_the_banner_keeps_the_tag_blocked_after_reload(
    new_context: BrowserFactory, stack_url: str
) -> None:
    # Given a first visit: the banner asks and the ad tag runs (opt-out regime)
    context = new_context()
    page = context.new_page()
    page.goto(f"{stack_url}/")
    wait_until_ready(page)
    banner = page.locator("#optout-bridge")
    expect(banner.get_by_role("region", name="Privacy choices")).to_be_visible()
    assert ad_tag_ran(page)
    screenshot(page, "banner-first-visit")

    # When the visitor clicks "Opt out of all"
    with page.expect_response(
        lambda r: r.url.endswith("/v1/consent") and r.request.method == "POST"
    ) as posted:
        banner.get_by_role("button", name="Opt out of all").click()
    assert posted.value.status == 202

    # Then a reload keeps the tag blocked and the banner shows the opt-out
    page.reload()
    wait_until_ready(page)
    assert not ad_tag_ran(page)
    expect(banner.locator("[data-optout-status]")).to_have_text("Opted out")
    assert usp_data(page)["uspString"] == "1YYN"
    # ... and the GPP string, decoded by IAB's library, opts out of all three, without GPC
    _assert_usnat_opted_out(page, gpc=False)

    # And the API holds it: with this browser's local memory wiped, the tag stays blocked
    device_id = device_id_of(context)
    eventually(
        lambda: all(consent_state(stack_url, device_id)["opt_out"][p] for p in SALE_SHARE),
        "the resolver to store the banner opt-out",
    )
    page.evaluate("() => localStorage.clear()")
    page.reload()
    wait_until_ready(page)
    assert not ad_tag_ran(page)
    assert banner_status(page) == "Opted out"


def test_webform_opt_out_in_browser_a_reaches_browser_b_once_it_logs_in(
    new_context: BrowserFactory, stack_url: str
) -> None:
    email = f"shopper-{uuid.uuid4().hex[:10]}@demo.example.com"

    # Given browser A submits the webform with an email
    browser_a = new_context().new_page()
    browser_a.goto(f"{stack_url}/privacy.html")
    browser_a.get_by_label("Email address").fill(email)
    browser_a.get_by_role("button", name="Submit opt-out request").click()
    result = browser_a.locator("#result")
    expect(result).to_be_visible()
    request_id = result.locator("[data-request-id]").inner_text()
    status_link = result.get_by_role("link", name="Check the status of your request")
    assert status_link.get_attribute("href") == f"/v1/requests/{request_id}"
    assert get_json(f"{stack_url}/v1/requests/{request_id}")["request_id"] == request_id
    screenshot(browser_a, "webform-received")

    # ... and browser B, a stranger to the graph so far, sees ads
    context_b = new_context()
    browser_b = context_b.new_page()
    browser_b.goto(f"{stack_url}/")
    wait_until_ready(browser_b)
    assert ad_tag_ran(browser_b)

    # When browser B logs in with the same email (identity link device <-> email)
    browser_b.get_by_label("Email").fill(email)
    browser_b.get_by_role("button", name="Log in").click()
    expect(browser_b.locator("#login-status")).to_have_text(f"Signed in as {email}")
    device_b = device_id_of(context_b)
    eventually(
        lambda: consent_state(stack_url, device_b)["opt_out"]["targeted_advertising"],
        "the resolver to carry the webform opt-out to browser B's device",
    )

    # Then on its next page load browser B's gated tag does not run and its banner shows it
    browser_b.reload()
    wait_until_ready(browser_b)
    assert not ad_tag_ran(browser_b)
    assert browser_b.locator("[data-ad-tag]").count() == 0
    expect(browser_b.locator("#optout-bridge [data-optout-status]")).to_have_text("Opted out")
    assert usp_data(browser_b)["uspString"] == "1YYN"
    _assert_usnat_opted_out(browser_b, gpc=False)
    # ... and the ad platforms on its page are told: Google's consent update is denied
    updates = browser_b.evaluate(
        "() => dataLayer.map((c) => Array.from(c)).filter((c) => c[0] === 'consent')"
    )
    assert updates[-1][2]["ad_user_data"] == "denied"


def _assert_usnat_opted_out(page: Page, *, gpc: bool) -> None:
    """The page's GPP string, decoded by IAB's library: usnat only, the three opt-outs made
    (1: opted out; 2 would be "did not opt out"), their notices given, and GPC as given."""
    decoded = decode_gpp(gpp_ping(page)["gppString"])
    assert decoded["sectionIds"] == [7]
    usnat = decoded["usnat"]
    for name in ("Sale", "Sharing", "TargetedAdvertising"):
        assert (usnat[f"{name}OptOut"], usnat[f"{name}OptOutNotice"]) == (1, 1), name
    assert usnat["Gpc"] is gpc


def _post_json(url: str, body: dict[str, object]) -> dict[str, Any]:
    if not url.startswith("http://127.0.0.1:"):
        raise ValueError(f"loopback only: {url}")
    sent = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(sent, timeout=5) as answer:
        answered: dict[str, Any] = json.load(answer)
    return answered


# Records, from before any page script runs, every value written to the usprivacy cookie,
# whether the first-visit banner (its "Allow" button) was ever on screen, and every Google
# consent command (dataLayer is kept as banner.js pushed it).
WATCH_SIGNALS = """
  const cookie = Object.getOwnPropertyDescriptor(Document.prototype, "cookie");
  window.__usp = [];
  Object.defineProperty(document, "cookie", {
    get: () => cookie.get.call(document),
    set: (value) => {
      if (value.startsWith("usprivacy=")) window.__usp.push(value.split(";")[0]);
      cookie.set.call(document, value);
    },
  });
  window.__askShown = false;
  setInterval(() => {
    const root = document.getElementById("optout-bridge")?.shadowRoot;
    if (root && root.querySelector('[data-act="none"]')) window.__askShown = true;
  }, 10);
"""


def test_opted_out_elsewhere_first_logged_in_page_of_a_new_browser_runs_nothing_gated(
    new_context: BrowserFactory, stack_url: str
) -> None:
    # Given a person who opted out by the webform (or on another browser: the same state)
    email = f"newphone-{uuid.uuid4().hex[:10]}@demo.example.com"
    _post_json(f"{stack_url}/v1/opt-out", {"email": email})
    # ... and a new browser, a stranger to the graph, whose login backend rendered a token
    # for that person on the first page it opens (the logged-in page has two gated tags)
    context = new_context()
    context.add_init_script(WATCH_SIGNALS)
    device = uuid.uuid4().hex
    context.add_cookies([{"name": "optout_device_id", "value": device, "url": stack_url}])
    login = _post_json(f"{stack_url}/_local/demo/login", {"email": email, "device_id": device})
    html = (
        '<!doctype html><html lang="en"><head><title>Your account</title>'
        '<script src="/dist/banner.min.js" data-identity-token="'
        f'{login["identity_token"]}"></script></head><body><main><h1>Your account</h1>'
        '<div id="ad-slot"></div>'
        '<script type="text/plain" data-purpose="targeted_advertising"'
        ' src="/demo-tags/targeted-ad.js"></script>'
        '<script type="text/plain" data-purpose="sale share"'
        ' src="/demo-tags/partner-pixel.js"></script></main></body></html>'
    )
    context.route(
        f"{stack_url}/account.html",
        lambda route: route.fulfill(status=200, content_type="text/html", body=html),
    )

    # When it opens that page and banner.js has linked the browser and read the state again
    page = context.new_page()
    page.goto(f"{stack_url}/account.html")
    page.evaluate("() => window.optoutBridge.ready")

    # Then the page applies the person's opt-out: known, and opted out of all four
    state = page.evaluate("() => window.optoutBridge.state()")
    assert state["known"] is True
    assert all(state["optOut"][p] for p in SALE_SHARE)
    expect(page.locator("#optout-bridge [data-optout-status]")).to_have_text("Opted out")
    # ... no gated tag ran, at any moment
    assert not ad_tag_ran(page)
    assert not partner_pixel_ran(page)
    assert page.locator('script[type="text/plain"][data-purpose]').count() == 2
    # ... Google was never granted ad storage or ad user data
    commands = page.evaluate(
        "() => dataLayer.map((c) => Array.from(c)).filter((c) => c[0] === 'consent')"
    )
    assert commands
    assert all(c[2]["ad_storage"] == c[2]["ad_user_data"] == "denied" for c in commands)
    # ... the US Privacy cookie never said "not opted out", and __uspapi says opted out
    usp_writes = page.evaluate("() => window.__usp")
    assert "usprivacy=1YNN" not in usp_writes
    assert usp_data(page)["uspString"] == "1YYN"
    # ... and the person was never asked to opt back in (no first-visit banner, no Allow)
    assert page.evaluate("() => window.__askShown") is False


def test_webform_works_without_javascript(new_context: BrowserFactory, stack_url: str) -> None:
    # Given a browser with JavaScript off that carries a device cookie from an earlier visit
    context = new_context(javascript=False)
    device_id = f"nojs{uuid.uuid4().hex}"
    host = stack_url.removeprefix("http://")
    context.add_cookies([{"name": "optout_device_id", "value": device_id, "url": stack_url}])
    page = context.new_page()

    # When it fills the plain form and submits it
    page.goto(f"{stack_url}/privacy.html")
    page.get_by_label("Email address").fill(f"nojs-{uuid.uuid4().hex[:8]}@example.com")
    # ("Opt out of all" needs the script to tick the boxes: without it, it is not shown)
    expect(page.locator("#optout-all")).to_be_hidden()
    page.get_by_label("Profiling", exact=True).uncheck()
    screenshot(page, "webform-no-javascript")
    page.get_by_role("button", name="Submit request").click()  # neutral without the script

    # Then the API answers with a confirmation page: request id, deadline and a status link
    page.wait_for_url(f"**{host}/v1/opt-out")
    expect(page.get_by_role("heading", name="We received your opt-out request")).to_be_visible()
    request_id = page.locator("strong").first.inner_text()
    # ... and the link opens a page a person can read, not JSON
    with page.expect_response(f"**/v1/requests/{request_id}") as status_answer:
        page.get_by_role("link", name="Check the status of your request").click()
    expect(page.get_by_role("heading", name="Your request")).to_be_visible()
    expect(page.locator("dl")).to_contain_text(request_id)
    headers = status_answer.value.headers
    assert headers["content-type"].startswith("text/html")
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    screenshot(page, "status-page")
    # ... and the browser was linked through its cookie: its device is opted out
    state = eventually(
        lambda: (s := consent_state(stack_url, device_id))["opt_out"]["sale"] and s,
        "the no-JS opt-out to reach the cookie's device",
    )
    assert state["opt_out"]["profiling"] is False


def test_site_declares_gpc_support_in_well_known_gpc_json(stack_url: str) -> None:
    # Given the demo site, When /.well-known/gpc.json is fetched
    with urllib.request.urlopen(f"{stack_url}/.well-known/gpc.json", timeout=5) as answer:
        content_type = answer.headers["Content-Type"]
        body = json.load(answer)

    # Then it says the site honours GPC, as JSON with a date
    assert content_type.startswith("application/json")
    assert body["gpc"] is True
    assert date.fromisoformat(body["lastUpdate"]) <= date.today()


def test_requests_page_lists_a_request_with_its_systems(
    new_context: BrowserFactory, stack_url: str
) -> None:
    # Given an opt-out request the stack received
    data = json.dumps({"email": f"list-{uuid.uuid4().hex[:8]}@example.com"}).encode()
    sent = urllib.request.Request(
        f"{stack_url}/v1/opt-out", data=data, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(sent, timeout=5) as answer:
        request_id = json.load(answer)["request_id"]

    # When the requests page is open
    page = new_context().new_page()
    page.goto(f"{stack_url}/requests.html")

    # Then its row appears, and once resolved it shows the systems (it refreshes itself)
    row = page.locator(f'tr[data-request-id="{request_id}"]')
    expect(row).to_be_visible()
    expect(row.locator(".system").first).to_be_visible(timeout=20_000)


def test_logging_out_gives_the_browser_a_new_device_and_the_account_keeps_its_choices(
    new_context: BrowserFactory, stack_url: str
) -> None:
    # Given an account that opted out of sale by the webform (elsewhere: any way is the same)
    email = f"kiosk-{uuid.uuid4().hex[:10]}@demo.example.com"
    _post_json(f"{stack_url}/v1/opt-out", {"email": email, "purposes": ["sale"]})
    # ... which logs in on a shared browser (a kiosk): the shop's login posts its token
    kiosk = new_context()
    page = kiosk.new_page()
    page.goto(f"{stack_url}/")
    wait_until_ready(page)
    page.get_by_label("Email").fill(email)
    page.get_by_role("button", name="Log in").click()
    expect(page.locator("#login-status")).to_have_text(f"Signed in as {email}")
    account_device = device_id_of(kiosk)
    eventually(
        lambda: consent_state(stack_url, account_device)["opt_out"]["sale"],
        "the login to link the kiosk's device to the account",
    )
    # ... and, logged in, limits the use of its sensitive data there
    page.evaluate("() => window.optoutBridge.choose({ limit_sensitive: true })")
    eventually(
        lambda: consent_state(stack_url, account_device)["opt_out"]["limit_sensitive"],
        "the kiosk's choice to be recorded",
    )

    # When the account logs out (the shop's button calls optoutBridge.reset())
    page.get_by_role("button", name="Log out").click()
    expect(page.locator("#login-status")).to_have_text("Signed out")
    page.evaluate("() => window.optoutBridge.ready")

    # Then the next page load, the next user's, is a new device that reads none of the
    # account's choices (nor when they were made) and was never linked to it
    page.reload()
    wait_until_ready(page)
    next_device = page.evaluate("() => window.optoutBridge.state().deviceId")
    assert next_device != account_device
    assert device_id_of(kiosk) == next_device
    assert page.evaluate("() => localStorage.getItem('optout_device_id')") == f'"{next_device}"'
    assert page.evaluate("() => localStorage.getItem('optout_linked')") is None
    state = consent_state(stack_url, next_device)
    assert not any(state["opt_out"].values())
    assert state["updated_at"] is None
    assert not any(page.evaluate("() => window.optoutBridge.state().optOut").values())
    # ... the first-visit banner asks the next user (the account's choice left no trace)
    expect(page.locator("#optout-bridge").get_by_role("button", name="Allow")).to_be_visible()

    # ... and the account keeps its opt-outs, the one made at the kiosk while logged in too:
    # its next login on another browser reads both
    phone = uuid.uuid4().hex
    login = _post_json(f"{stack_url}/_local/demo/login", {"email": email, "device_id": phone})
    _post_json(
        f"{stack_url}/v1/consent",
        {"device_id": phone, "opt_out": {}, "identity_token": login["identity_token"]},
    )
    on_phone = eventually(
        lambda: (s := consent_state(stack_url, phone)["opt_out"])["sale"] and s,
        "the account's other browser to read its opt-outs",
    )
    assert on_phone["limit_sensitive"] is True
    # ... which the kiosk's new device still does not
    assert not any(consent_state(stack_url, next_device)["opt_out"].values())
