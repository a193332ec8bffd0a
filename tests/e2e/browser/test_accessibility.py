"""Accessibility checked, not claimed: axe-core (npm, web/tests) runs in Chromium over the
banner in each of its views and over the webform, and must find no violation at all.

axe-core is served from web/tests/node_modules on the site's own origin, so the pages' Content
Security Policy (script-src 'self') lets it load; it reads the banner's open shadow root.
"""

from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from .conftest import (
    PURPOSES,
    SALE_SHARE,
    BrowserFactory,
    FakeConsentApi,
    screenshot,
    serve_npm,
    serve_page,
    wait_until_ready,
)

pytestmark = pytest.mark.browser


def axe_violations(page: Page, site: str) -> list[dict[str, Any]]:
    page.add_script_tag(url=f"{site}/__npm/axe-core/axe.min.js")
    found: list[dict[str, Any]] = page.evaluate(
        """async () => (await axe.run(document)).violations.map((v) => ({
            id: v.id, impact: v.impact, help: v.help,
            nodes: v.nodes.map((n) => n.target.join(" ") + ": " + n.failureSummary) }))"""
    )
    return found


def _closed(page: Page) -> None:
    expect(page.locator("#optout-bridge [data-optout-status]")).to_have_text("Opted out")


def _open(page: Page) -> None:
    expect(page.get_by_role("region", name="Privacy choices")).to_be_visible()


def _choices_panel(page: Page) -> None:
    page.locator("#optout-bridge").get_by_role("button", name="Your Privacy Choices").click()
    expect(page.get_by_role("dialog", name="Your Privacy Choices")).to_be_visible()


VIEWS: list[tuple[str, dict[str, bool], Callable[[Page], None]]] = [
    ("closed", dict.fromkeys(SALE_SHARE, True), _closed),  # the persistent button and status
    ("open", {}, _open),  # the first-visit banner
    ("choices_panel", {"limit_sensitive": True}, _choices_panel),
]


@pytest.mark.parametrize(("view", "opt_out", "show"), VIEWS, ids=[v[0] for v in VIEWS])
def test_the_banner_has_no_accessibility_violation(
    new_context: BrowserFactory,
    static_site: str,
    view: str,
    opt_out: dict[str, bool],
    show: Callable[[Page], None],
) -> None:
    # Given the shop with the banner in this view
    context = new_context()
    FakeConsentApi(opt_out=opt_out).install(context)
    serve_npm(context, static_site)
    page = context.new_page()
    page.goto(f"{static_site}/index.html")
    wait_until_ready(page)
    show(page)
    screenshot(page, f"banner-{view}")  # docs/images/ are copies of these

    # When axe-core checks the page, Then it finds nothing
    assert axe_violations(page, static_site) == [], view


def test_the_webform_has_no_accessibility_violation_with_or_without_errors(
    new_context: BrowserFactory, static_site: str
) -> None:
    # Given the webform
    context = new_context()
    FakeConsentApi().install(context)
    serve_npm(context, static_site)
    page = context.new_page()
    page.goto(f"{static_site}/privacy.html")
    wait_until_ready(page)

    # Then axe-core finds nothing on the form as it loads
    screenshot(page, "webform")
    assert axe_violations(page, static_site) == []

    # ... nor once it shows its errors
    page.get_by_role("button", name="Submit opt-out request").click()
    expect(page.get_by_role("alert")).to_be_visible()
    assert axe_violations(page, static_site) == []


# -- the keyboard (review browser36: re-probed after the panel changed) ---------------------

# The focused element, through the banner's shadow root: where it is, its accessible role and
# name as the test reads them, and its outline (the visible focus).
FOCUSED = """() => {
  let el = document.activeElement;
  const inBanner = el?.id === "optout-bridge";
  while (el?.shadowRoot?.activeElement) el = el.shadowRoot.activeElement;
  const style = getComputedStyle(el);
  return {inBanner, tag: el.tagName, name: el.name || (el.textContent || "").trim(),
          outline: style.outlineStyle !== "none" && parseFloat(style.outlineWidth) >= 2};
}"""


def _focused(page: Page) -> dict[str, Any]:
    focused: dict[str, Any] = page.evaluate(FOCUSED)
    return focused


def test_the_keyboard_walks_the_banner_and_escape_closes_the_panel_unchanged(
    new_context: BrowserFactory, static_site: str
) -> None:
    # Given a first visit to the shop, the first-visit banner shown
    context = new_context()
    api = FakeConsentApi()
    api.install(context)
    page = context.new_page()
    page.goto(f"{static_site}/index.html")
    wait_until_ready(page)
    banner = page.locator("#optout-bridge")
    expect(page.get_by_role("region", name="Privacy choices")).to_be_visible()

    # When Tab walks the page, Then it reaches the banner's three buttons in order, each with
    # a visible focus
    walked = []
    for _ in range(12):
        page.keyboard.press("Tab")
        focused = _focused(page)
        if focused["inBanner"]:
            assert focused["outline"], focused
            walked.append(focused["name"])
    assert walked == ["Opt out of all", "Allow", "Choose"]

    # When Enter on "Choose" opens the panel, Then the focus is in it, and Tab walks every
    # control of it in order, each with a visible focus and its name
    banner.get_by_role("button", name="Choose").focus()
    page.keyboard.press("Enter")
    expect(page.get_by_role("dialog", name="Your Privacy Choices")).to_be_visible()
    walked = [_focused(page)["name"]]
    for _ in range(8):
        page.keyboard.press("Tab")
        focused = _focused(page)
        assert focused["inBanner"] and focused["outline"], focused
        walked.append(focused["name"])
    assert walked == [
        *PURPOSES,
        "Opt out of all",
        "Save choices",
        "Close",
        "Opt out by email, phone or customer ID",
    ]
    for purpose, label in [
        ("sale", "Opt out: Sale of my personal information"),
        ("limit_sensitive", "Limit the use of my sensitive personal information"),
    ]:
        expect(banner.get_by_role("checkbox", name=label)).to_have_attribute("name", purpose)

    # When a box is ticked with Space and Escape pressed
    banner.get_by_role("checkbox", name="Opt out: Sale of my personal information").focus()
    page.keyboard.press("Space")
    page.keyboard.press("Escape")

    # Then the panel closes, nothing was posted nor applied, and the focus is back on what
    # opened the panel
    expect(page.get_by_role("dialog")).to_have_count(0)
    expect(page.get_by_role("region", name="Privacy choices")).to_be_visible()
    assert api.received == []
    opted_out = page.evaluate("() => optoutBridge.state().optOut")
    assert not any(opted_out.values())
    assert _focused(page) == {"inBanner": True, "tag": "BUTTON", "name": "Choose", "outline": True}


def test_a_keyboard_opt_out_keeps_the_focus_and_the_live_status_when_the_api_answers(
    new_context: BrowserFactory, static_site: str
) -> None:
    # Given a first visit, the person in the panel with the keyboard, the API slow to answer
    context = new_context()
    api = FakeConsentApi(hold_posts=True)
    api.install(context)
    page = context.new_page()
    page.goto(f"{static_site}/index.html")
    wait_until_ready(page)
    banner = page.locator("#optout-bridge")
    banner.get_by_role("button", name="Choose").focus()
    page.keyboard.press("Enter")

    # When they press "Opt out of all"
    banner.get_by_role("button", name="Opt out of all").focus()
    with page.expect_request(lambda r: r.url.endswith("/v1/consent") and r.method == "POST"):
        page.keyboard.press("Enter")

    # Then the focus is on the button that opens the panel again, its status "Saving…"
    status = banner.get_by_role("status")
    expect(status).to_have_text("Saving…")
    assert _focused(page)["name"] == "Your Privacy Choices"
    status.evaluate("(element) => { element.dataset.seen = 'saving'; }")

    # When the API acknowledges the choice
    with page.expect_request_finished(lambda r: r.url.endswith("/v1/consent")):
        api.answer(api.held.pop())

    # Then the same status element says so (a live region replaced is not announced), and the
    # focus stayed on the button (it was dropped on the page's body)
    expect(status).to_have_text("Opted out")
    assert status.evaluate("(element) => element.dataset.seen") == "saving"
    assert _focused(page)["name"] == "Your Privacy Choices"


def test_another_tabs_choice_never_takes_the_focus_from_a_field_on_the_page(
    new_context: BrowserFactory, static_site: str
) -> None:
    # Given two tabs of the shop on a first visit, the person typing in the first one's login
    context = new_context()
    FakeConsentApi().install(context)
    first, second = context.new_page(), context.new_page()
    for page in (first, second):
        page.goto(f"{static_site}/index.html")
        wait_until_ready(page)
    first.bring_to_front()
    email = first.get_by_label("Email")
    email.focus()
    first.keyboard.type("walker")

    # When the other tab opts out (the first tab's banner turns into the button)
    second.locator("#optout-bridge").get_by_role("button", name="Opt out of all").click()
    expect(first.locator("#optout-bridge").get_by_role("status")).to_have_text("Opted out")

    # Then the field kept the focus: typing goes on into it
    first.keyboard.type("@demo.example.com")
    expect(email).to_have_value("walker@demo.example.com")
    assert _focused(first)["inBanner"] is False


# -- the panel keeps Tab inside; it gives the focus back to the page's own link (browser37) --

# A page with its own "Your Privacy Choices" link in its footer, which opens the banner's panel
# (docs/browser.md, JavaScript API: optoutBridge.open()).
LINKED_PAGE = (
    '<!doctype html><html lang="en"><head><title>Shop</title>'
    '<script src="/dist/banner.min.js" data-webform="/privacy.html"></script></head>'
    '<body><main><h1>Shop</h1><a href="/cart">Cart</a></main><footer>'
    '<a href="/privacy.html" id="choices">Privacy choices</a></footer><script>'
    'document.getElementById("choices").addEventListener("click", (event) => {'
    " event.preventDefault(); optoutBridge.open(); });</script></body></html>"
)
PANEL_CONTROLS = [
    *PURPOSES,
    "Opt out of all",
    "Save choices",
    "Close",
    "Opt out by email, phone or customer ID",
]


def test_tab_and_shift_tab_stay_inside_the_open_panel(
    new_context: BrowserFactory, static_site: str
) -> None:
    # Given the choices panel opened with the keyboard from the button (a person opted out)
    context = new_context()
    FakeConsentApi(opt_out=dict.fromkeys(SALE_SHARE, True)).install(context)
    page = context.new_page()
    page.goto(f"{static_site}/index.html")
    wait_until_ready(page)
    page.locator("#optout-bridge").get_by_role("button", name="Your Privacy Choices").focus()
    page.keyboard.press("Enter")
    expect(page.get_by_role("dialog", name="Your Privacy Choices")).to_be_visible()
    assert _focused(page)["name"] == PANEL_CONTROLS[0]

    # When Tab goes past the last control, Then it comes back to the first (WAI-ARIA APG dialog)
    walked = []
    for _ in range(len(PANEL_CONTROLS)):
        page.keyboard.press("Tab")
        focused = _focused(page)
        assert focused["inBanner"] and focused["outline"], focused
        walked.append(focused["name"])
    assert walked == [*PANEL_CONTROLS[1:], PANEL_CONTROLS[0]]

    # When Shift+Tab goes before the first, Then it lands on the last
    page.keyboard.press("Shift+Tab")
    assert _focused(page)["name"] == PANEL_CONTROLS[-1]
    page.keyboard.press("Shift+Tab")
    assert _focused(page)["name"] == PANEL_CONTROLS[-2]

    # ... and Escape still closes it, the focus back on the button
    page.keyboard.press("Escape")
    expect(page.get_by_role("dialog")).to_have_count(0)
    assert _focused(page)["name"] == "Your Privacy Choices"


def test_tab_wraps_inside_the_panel_of_a_gpc_browser(
    new_context: BrowserFactory, static_site: str
) -> None:
    # Given a GPC browser (sale, share and targeted advertising ticked and locked)
    context = new_context(gpc=True)
    FakeConsentApi().install(context)
    page = context.new_page()
    page.goto(f"{static_site}/index.html")
    wait_until_ready(page)
    banner = page.locator("#optout-bridge")
    expect(banner.get_by_text("Opt-Out Request Honored")).to_be_visible()
    banner.get_by_role("button", name="Your Privacy Choices").focus()
    page.keyboard.press("Enter")

    # Then the focus starts on the first box not locked, Shift+Tab from there goes to the last
    # control, and Tab from the last back to it
    assert _focused(page)["name"] == "profiling"
    page.keyboard.press("Shift+Tab")
    assert _focused(page)["name"] == PANEL_CONTROLS[-1]
    page.keyboard.press("Tab")
    assert _focused(page) == {
        "inBanner": True,
        "tag": "INPUT",
        "name": "profiling",
        "outline": True,
    }


@pytest.mark.parametrize("leave", ["Escape", "Close", "Opt out of all"])
def test_the_panel_opened_by_the_pages_own_link_gives_the_focus_back_to_it(
    new_context: BrowserFactory, static_site: str, leave: str
) -> None:
    # Given a page whose own footer link opens the banner's panel, reached with the keyboard
    context = new_context()
    FakeConsentApi(opt_out=dict.fromkeys(SALE_SHARE, True)).install(context)
    serve_page(context, f"{static_site}/shop.html", LINKED_PAGE)
    page = context.new_page()
    page.goto(f"{static_site}/shop.html")
    wait_until_ready(page)
    page.locator("#choices").focus()

    # When Enter opens the panel, Then the focus is in it
    page.keyboard.press("Enter")
    expect(page.get_by_role("dialog", name="Your Privacy Choices")).to_be_visible()
    assert _focused(page)["inBanner"] is True

    # When the person leaves it (Escape, "Close", or a choice that closes it)
    if leave == "Escape":
        page.keyboard.press("Escape")
    else:
        page.locator("#optout-bridge").get_by_role("button", name=leave).focus()
        page.keyboard.press("Enter")

    # Then the focus is back on the page's link, not on the banner's own button
    expect(page.get_by_role("dialog")).to_have_count(0)
    assert page.evaluate("() => document.activeElement.id") == "choices"

    # ... and the banner's own button, used next, still gets the focus back itself
    page.locator("#optout-bridge").get_by_role("button", name="Your Privacy Choices").focus()
    page.keyboard.press("Enter")
    page.keyboard.press("Escape")
    assert _focused(page) == {
        "inBanner": True,
        "tag": "BUTTON",
        "name": "Your Privacy Choices",
        "outline": True,
    }
