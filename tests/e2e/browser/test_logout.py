"""Logging out on a shared browser: `optoutBridge.reset()` makes it a new device.

An account that logged in on a browser (a token-bound post) links that browser's device to
itself; whoever used the browser next read the account's choices with their times, and no
logout changed it (README, "Known limits"). The site's logout now calls `reset()`: every copy
of the device id the banner keeps names a new device, nothing of the account's stays in the
browser's storage, choices not yet sent still go to the account's device, and other tabs post
for the new device. On https pages (Playwright-routed https://www.shop.example) with the
consent API answered per device id here; the pipeline's own view is in
test_opt_out_journeys.py (test_logging_out_gives_the_browser_a_new_device_...)."""

import json
import uuid
from typing import Any

import pytest
from playwright.sync_api import BrowserContext, Page, Route

from .conftest import GPC_PURPOSES, PURPOSES, SHIPPED, BrowserFactory, FakeConsentApi

pytestmark = pytest.mark.browser

SHOP = "https://www.shop.example"
PLAIN = "optout_device_id"
HOST = "__Host-optout_device_id"


def _page(token: str = "") -> str:
    tag = f' data-identity-token="{token}"' if token else ""
    return (
        '<!doctype html><html lang="en"><head><title>Shop</title>'
        f'<script src="/dist/banner.min.js"{tag}></script></head><body><main><h1>Shop</h1>'
        "</main></body></html>"
    )


def _serve(context: BrowserContext, account: str, out: tuple[str, ...]) -> FakeConsentApi:
    """The shop (its /account page carries a login's token) and the consent API: posts go to
    the fake (read back in `posts`), and GET answers `out` for the account's device only,
    once a token was posted."""
    api = FakeConsentApi()

    def site(route: Route) -> None:
        url = route.request.url
        if url.endswith("/dist/banner.min.js"):
            route.fulfill(status=200, content_type="text/javascript", body=SHIPPED.read_bytes())
        else:
            html = _page("token." + uuid.uuid4().hex) if url.endswith("/account") else _page()
            route.fulfill(status=200, content_type="text/html", body=html)

    def state(route: Route) -> None:
        device = route.request.url.rsplit("/", 1)[1]
        linked = any("identity_token" in sent for sent in api.posts)  # as the resolver would
        opted = out if device == account and linked else ()
        body = {
            "device_id": device,
            "opt_out": {p: p in opted for p in PURPOSES},
            "gpc_honored": False,
            "updated_at": "2026-11-29T10:00:00Z" if opted else None,
            "gpc_signal": False,
        }
        route.fulfill(status=200, content_type="application/json", body=json.dumps(body))

    context.route(f"{SHOP}/**", site)
    api.install(context)
    context.route("**/v1/consent/*", state)  # installed last: asked first
    return api


def _stored(page: Page, key: str) -> Any:
    return page.evaluate("(key) => JSON.parse(localStorage.getItem(key))", key)


def _cookies(context: BrowserContext, name: str) -> list[str]:
    return [c["value"] for c in context.cookies(SHOP) if c["name"] == name]


def _ready(page: Page) -> dict[str, Any]:
    page.wait_for_function("() => window.optoutBridge && window.optoutBridge.state().known")
    page.evaluate("() => window.optoutBridge.ready")
    state: dict[str, Any] = page.evaluate("() => window.optoutBridge.state()")
    return state


def test_a_reset_at_logout_makes_a_new_device_and_leaves_the_account_nothing_to_read(
    new_context: BrowserFactory,
) -> None:
    # Given a browser with GPC on which an account logged in (its token posted, the device
    # linked): the account is opted out of profiling
    context = new_context(gpc=True)
    account = uuid.uuid4().hex
    context.add_cookies([{"name": HOST, "value": account, "url": SHOP, "secure": True}])
    api = _serve(context, account, ("profiling",))
    page = context.new_page()
    page.goto(f"{SHOP}/account")
    state = _ready(page)
    assert state["deviceId"] == account
    assert state["optOut"]["profiling"]
    assert any("identity_token" in sent for sent in api.posts)
    assert _stored(page, "optout_linked") == account
    # ... another of the shop's tabs is open, the device id in its memory
    other = context.new_page()
    other.goto(f"{SHOP}/cart")
    _ready(other)
    # ... and the account's last choice, to limit its sensitive data, is not saved yet (the
    # network is down)
    api.post_status = 0
    page.evaluate("() => window.optoutBridge.choose({ limit_sensitive: true })")
    page.wait_for_function("() => JSON.parse(localStorage.optout_outbox)[0]?.s === 1")

    # When the shop's logout calls reset() (and the state read it starts fails, as when the
    # logout's navigation cancels it)
    context.route("**/v1/consent/*", refuse := lambda route: route.abort())
    page.evaluate("() => window.optoutBridge.reset()")
    context.unroute("**/v1/consent/*", refuse)

    # Then every copy of the device id the banner keeps names one new device
    new = page.evaluate("() => window.optoutBridge.state().deviceId")
    assert new != account
    assert _cookies(context, HOST) == [new]
    assert _cookies(context, PLAIN) == [new]  # the earlier banner's name, on https too
    assert _stored(page, "optout_device_id") == new
    # ... the browser keeps nothing of the account's: no link, no choices, no "decided"
    for key in ("optout_linked", "optout_local", "optout_decided"):
        assert _stored(page, key) is None, key
    # ... and the unsaved choice is left to the account's device
    assert [entry.get("d") for entry in _stored(page, "optout_outbox")] == [account]

    # When the network is back and the next user opens a page
    api.post_status = None
    api.posts.clear()
    page.goto(f"{SHOP}/")
    state = _ready(page)
    page.wait_for_function("() => JSON.parse(localStorage.optout_outbox).length === 0")

    # Then it is the new device: only its state is read, and GPC applies to it and is posted
    # for it
    assert state["deviceId"] == new
    gpc_posts = [sent for sent in api.posts if sent.get("gpc") and not sent["opt_out"]]
    assert [sent["device_id"] for sent in gpc_posts] == [new]
    # ... the account's unsaved choice went to the account's device, never to the new one
    limits = [sent for sent in api.posts if sent["opt_out"].get("limit_sensitive")]
    assert [sent["device_id"] for sent in limits] == [account]
    assert not any("identity_token" in sent for sent in api.posts)
    # ... and no answer for the account's device was kept as this browser's choices
    assert not (_stored(page, "optout_local") or {}).get("choices", {}).get("limit_sensitive")
    page.reload()
    state = _ready(page)
    assert {p for p, out in state["optOut"].items() if out} == set(GPC_PURPOSES)

    # When the tab opened before the logout records a choice
    api.posts.clear()
    other.evaluate("() => window.optoutBridge.choose({ profiling: true })")
    other.wait_for_function("() => JSON.parse(localStorage.optout_outbox).length === 0")

    # Then it is posted for the browser's new device, not the account's
    assert [sent["device_id"] for sent in api.posts] == [new]
