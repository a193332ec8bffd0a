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
    SALE_SHARE,
    BrowserFactory,
    FakeConsentApi,
    screenshot,
    serve_npm,
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
