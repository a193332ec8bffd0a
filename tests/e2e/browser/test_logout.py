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
from playwright.sync_api import BrowserContext, Page, Route, expect

from .conftest import GPC_PURPOSES, PURPOSES, SALE_SHARE, SHIPPED, BrowserFactory, FakeConsentApi

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
    # (once, or again with its key: a back-off retry accepted while the page navigated away)
    limits = [sent for sent in api.posts if sent["opt_out"].get("limit_sensitive")]
    assert limits
    assert {sent["device_id"] for sent in limits} == {account}
    # ... as one entry: every post of it (the failed ones too) carries one Idempotency-Key
    assert len({key for key, sent in api.received if sent["opt_out"].get("limit_sensitive")}) == 1
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


# -- review s31 banner R1-R5: the pipeline's device binding, per device ---------------------

TAG = (
    '<script type="text/plain" data-purpose="targeted_advertising">window.__tagRan = true;</script>'
)


class _Pipeline:
    """The consent API as the pipeline answers it, per device: a token `tok.<account>.<device>`
    is bound to its device (capture refuses it for another, 422 with field identity_token, as
    capture.py's device binding does) and links that device to the account; GET answers the
    device's own opt-outs, and once linked its account's (made elsewhere, and every linked
    device's). `hold`: GETs wait in `held` until the test answers them (`answer`). A post
    repeating an accepted one's Idempotency-Key and body for the same device is answered as the
    first and recorded in `replays`, not `posts`, as the API does (a page resends one whose
    answer a navigation cut off); with another body it is refused 409. The API scopes a key to
    the device (README, "Idempotency"): for another device it is another request."""

    def __init__(self, context: BrowserContext, accounts: dict[str, set[str]]) -> None:
        self.accounts = accounts
        self.links: dict[str, str] = {}  # device -> account
        self.own: dict[str, set[str]] = {}  # device -> its own opt-outs
        self.posts: list[tuple[int, dict[str, Any]]] = []  # (status, body) in arrival order
        self.post_status: int | None = None  # a bare error page, as a CDN's in an outage
        self.failing_reads: set[str] = set()  # devices whose GET answers 503
        self.hold = False
        self.held: list[Route] = []
        self.pages: dict[str, str] = {}  # path -> the page's token
        # (Idempotency-Key, device) -> (body, answer)
        self.accepted: dict[tuple[str, str], tuple[str, str]] = {}
        self.replays: list[dict[str, Any]] = []  # bodies answered as an accepted post
        context.route(f"{SHOP}/**", self._site)
        context.route("**/v1/consent/*", self._get)
        context.route("**/v1/consent", self._post)

    def _site(self, route: Route) -> None:
        url = route.request.url
        if url.endswith("/dist/banner.min.js"):
            route.fulfill(status=200, content_type="text/javascript", body=SHIPPED.read_bytes())
            return
        token = self.pages.get("/" + url.split("/", 3)[3], "")
        tag = f' data-identity-token="{token}"' if token else ""
        html = (
            '<!doctype html><html lang="en"><head><title>Shop</title>'
            f'<script src="/dist/banner.min.js"{tag}></script>{TAG}</head>'
            "<body><main><h1>Shop</h1></main></body></html>"
        )
        route.fulfill(status=200, content_type="text/html", body=html)

    def state_of(self, device: str) -> set[str]:
        out = set(self.own.get(device, ()))
        account = self.links.get(device)
        if account:
            out |= self.accounts.get(account, set())
            for other, linked_to in self.links.items():
                if linked_to == account:
                    out |= self.own.get(other, set())
        return out

    def _get(self, route: Route) -> None:
        if self.hold:
            self.held.append(route)
        else:
            self.answer(route)

    def answer(self, route: Route) -> None:
        device = route.request.url.rsplit("/", 1)[1]
        if device in self.failing_reads:
            route.fulfill(status=503, content_type="application/json", body='{"message":"x"}')
            return
        out = self.state_of(device)
        body = {
            "device_id": device,
            "opt_out": {p: p in out for p in PURPOSES},
            "gpc_honored": False,
            # a new time with each accepted post: the resolver's work moves it
            "updated_at": f"2026-11-29T10:{len(self.posts):02d}:00Z"
            if out or device in self.links
            else None,
            "gpc_signal": False,
        }
        route.fulfill(status=200, content_type="application/json", body=json.dumps(body))

    def read_of(self, page: Page, device: str) -> Route:
        """The held GET of `device` (waits for it: route handlers run while Playwright waits)."""
        for _ in range(500):
            for route in self.held:
                if route.request.url.endswith(device):
                    self.held.remove(route)
                    return route
            page.wait_for_timeout(20)
        raise AssertionError(f"no read of {device}")

    def _post(self, route: Route) -> None:
        key = route.request.headers.get("idempotency-key", "")
        sent = json.loads(route.request.post_data or "{}")
        if (key, sent.get("device_id")) in self.accepted:
            first, answered = self.accepted[key, sent.get("device_id")]
            if first == route.request.post_data:
                self.replays.append(sent)
                route.fulfill(status=202, content_type="application/json", body=answered)
                return
            self.posts.append((409, sent))
            body = json.dumps({"error": {"code": "conflict", "message": "another body"}})
            route.fulfill(status=409, content_type="application/json", body=body)
            return
        if self.post_status is not None:
            self.posts.append((self.post_status, sent))
            route.fulfill(status=self.post_status, content_type="text/html", body="<h1>No</h1>")
            return
        device = sent["device_id"]
        if "identity_token" in sent:
            _, account, bound = sent["identity_token"].split(".")
            if bound != device:
                self.posts.append((422, sent))
                error = {"code": "invalid_token", "message": "issued for another device"}
                body = json.dumps({"error": {**error, "field": "identity_token"}})
                route.fulfill(status=422, content_type="application/json", body=body)
                return
            self.links[device] = account
        self.posts.append((202, sent))
        chosen = {p for p, out in sent["opt_out"].items() if out}
        self.own.setdefault(device, set()).update(chosen)
        answer = {
            "request_id": uuid.uuid4().hex,
            "device_id": device,
            "opt_out": dict.fromkeys(chosen, True),
            "gpc_honored": False,
        }
        if key:
            self.accepted[key, device] = (route.request.post_data or "", json.dumps(answer))
        route.fulfill(status=202, content_type="application/json", body=json.dumps(answer))

    def sent(self, device: str) -> list[tuple[int, bool, dict[str, bool]]]:
        """(status, carried a token, opt_out) of every post for `device`."""
        return [
            (status, "identity_token" in body, body["opt_out"])
            for status, body in self.posts
            if body["device_id"] == device
        ]


def _on(page: Page) -> set[str]:
    state = page.evaluate("() => window.optoutBridge.state().optOut")
    return {p for p, out in state.items() if out}


def _tag_ran(page: Page) -> bool:
    return bool(page.evaluate("() => window.__tagRan === true"))


def _browser(new_context: BrowserFactory) -> tuple[BrowserContext, str]:
    context = new_context()
    device = uuid.uuid4().hex
    context.add_cookies([{"name": HOST, "value": device, "url": SHOP, "secure": True}])
    return context, device


def test_an_opt_out_made_before_the_login_linked_the_browser_stays_with_it_after_logout(
    new_context: BrowserFactory,
) -> None:
    # Given a first login on this browser whose link never landed (every post fails), and an
    # opt-out of sale, sharing and targeted ads made on its page
    context, device = _browser(new_context)
    api = _Pipeline(context, {"A": set()})
    api.post_status = 503
    api.pages["/account"] = f"tok.A.{device}"
    page = context.new_page()
    page.goto(f"{SHOP}/account")
    page.wait_for_function("() => window.optoutBridge")
    page.evaluate("() => window.optoutBridge.ready")
    page.evaluate(
        "() => optoutBridge.choose({sale: true, share: true, targeted_advertising: true})"
    )
    page.wait_for_function("() => JSON.parse(localStorage.optout_outbox)[0]?.s === 1")

    # When the shop logs out (reset) and the API answers again
    page.evaluate("() => window.optoutBridge.reset()")
    new = page.evaluate("() => window.optoutBridge.state().deviceId")
    api.post_status = None
    page.goto(f"{SHOP}/")
    _ready(page)
    page.wait_for_function("() => JSON.parse(localStorage.optout_outbox).length === 0")
    page.reload()
    _ready(page)

    # Then the opt-out was not lost (review s31 R1: it went to the old device, which nothing
    # links, and the new one applied none): it is the browser's, sent for its new device, and
    # applies there; nothing more is sent for the old device, whose token is gone
    assert api.state_of(new) >= set(GPC_PURPOSES)
    assert _on(page) == set(GPC_PURPOSES)
    assert not _tag_ran(page)
    assert [sent for sent in api.sent(device) if sent[0] != 503] == []
    assert not any(token for _, token, _ in api.sent(new))


def test_after_a_logout_with_an_unsent_choice_the_next_login_links_its_own_device(
    new_context: BrowserFactory,
) -> None:
    # Given account A linked on this browser, its choice to limit sensitive data not sent (the
    # network is down), and a logout
    context, device = _browser(new_context)
    api = _Pipeline(context, {"A": set(), "B": set(GPC_PURPOSES)})
    api.pages["/account"] = f"tok.A.{device}"
    page = context.new_page()
    page.goto(f"{SHOP}/account")
    _ready(page)
    assert api.links == {device: "A"}
    api.post_status = 503
    page.evaluate("() => window.optoutBridge.choose({limit_sensitive: true})")
    page.wait_for_function("() => JSON.parse(localStorage.optout_outbox)[0]?.s === 1")
    page.evaluate("() => window.optoutBridge.reset()")
    new = page.evaluate("() => window.optoutBridge.state().deviceId")
    api.post_status = None
    api.posts.clear()

    # When B, opted out elsewhere of sale, sharing and targeted ads, logs in next, and the
    # page's state read answers after A's choice was sent (same-origin APIs need no preflight)
    api.pages["/account"] = f"tok.B.{new}"
    api.hold = True
    page.goto(f"{SHOP}/account")
    for _ in range(500):
        if api.sent(device):
            break
        page.wait_for_timeout(20)
    # the read is taken while reads are still held: it may reach the route after the post
    first_read = api.read_of(page, new)
    api.hold = False
    api.answer(first_read)
    _ready(page)

    # Then A's choice went to A's device without B's token, which linked B's own device (it
    # went out on A's post, was refused as issued for another device and dropped, leaving the
    # page neither linked nor fail-closed: review s31 R2)
    assert api.sent(device) == [(202, False, {"limit_sensitive": True})]
    assert api.links == {device: "A", new: "B"}
    assert (202, True, {}) in api.sent(new)
    # ... and the page applies B's opt-outs: no gated tag, US Privacy opted out
    assert _on(page) == set(GPC_PURPOSES)
    assert not _tag_ran(page)
    assert page.evaluate("() => window.optoutBridge.state().uspString") == "1YYN"


def test_a_logout_keeps_the_opt_outs_the_browser_made_before_the_login(
    new_context: BrowserFactory,
) -> None:
    # Given a person who opts out of all in the banner on their own browser, then logs in to
    # an account that limited its sensitive data elsewhere
    context, device = _browser(new_context)
    api = _Pipeline(context, {"A": {"limit_sensitive"}})
    page = context.new_page()
    page.goto(f"{SHOP}/")
    page.locator("#optout-bridge").get_by_role("button", name="Opt out of all").click()
    page.wait_for_function("() => JSON.parse(localStorage.optout_outbox).length === 0")
    api.pages["/account"] = f"tok.A.{device}"
    page.goto(f"{SHOP}/account")
    _ready(page)
    assert api.links == {device: "A"}
    assert _on(page) == set(PURPOSES)

    # When they log out (reset) and open the next page
    page.evaluate("() => window.optoutBridge.reset()")
    new = page.evaluate("() => window.optoutBridge.state().deviceId")
    del api.pages["/account"]
    page.goto(f"{SHOP}/")
    _ready(page)
    page.wait_for_function("() => JSON.parse(localStorage.optout_outbox).length === 0")

    # Then the browser's own opt-outs go on with its new device (a logout ended them: the next
    # page ran the gated tag and said 1YNN, review s31 R3), sent for it without a token; the
    # account's limit made elsewhere stays the account's
    assert _on(page) == set(SALE_SHARE)
    assert api.state_of(new) == set(SALE_SHARE)
    assert not _tag_ran(page)
    assert page.evaluate("() => window.optoutBridge.state().uspString") == "1YYN"
    assert api.links == {device: "A"}
    expect(page.locator("#optout-bridge").get_by_text("Opted out")).to_be_visible()


def test_a_logout_before_an_earlier_banners_id_was_read_leaves_it_to_be_read(
    new_context: BrowserFactory,
) -> None:
    # Given an earlier banner's id in the plain cookie, opted out of sale and sharing, whose
    # read fails for now (the migration waits), and a login that linked the device
    context, device = _browser(new_context)
    earlier = uuid.uuid4().hex
    context.add_cookies([{"name": PLAIN, "value": earlier, "url": SHOP, "secure": True}])
    api = _Pipeline(context, {"A": set()})
    api.own[earlier] = {"sale", "share"}
    api.failing_reads.add(earlier)
    api.pages["/account"] = f"tok.A.{device}"
    page = context.new_page()
    page.goto(f"{SHOP}/account")
    page.wait_for_function("() => window.optoutBridge")
    page.evaluate("() => window.optoutBridge.ready")
    assert api.links == {device: "A"}

    # When the shop logs out (reset), and the earlier id answers from the next page on
    page.evaluate("() => window.optoutBridge.reset()")
    new = page.evaluate("() => window.optoutBridge.state().deviceId")

    # Then the plain cookie still names the earlier id (it named the new device, and its
    # opt-outs reached no one: review s31 R4) ...
    assert _cookies(context, PLAIN) == [earlier]
    del api.pages["/account"]
    api.failing_reads.clear()
    page.goto(f"{SHOP}/")
    _ready(page)
    page.wait_for_function("() => JSON.parse(localStorage.optout_outbox).length === 0")

    # ... and its opt-outs are carried to the new device, which applies them; the plain
    # cookie then names the new device
    assert api.state_of(new) == {"sale", "share"}
    assert _on(page) == {"sale", "share"}
    assert _cookies(context, PLAIN) == [new]


def test_a_reset_before_the_pages_first_read_answered_ignores_that_read(
    new_context: BrowserFactory,
) -> None:
    # Given the account's device, opted out of everything, on a page whose state read has not
    # answered yet
    context, device = _browser(new_context)
    api = _Pipeline(context, {"A": set(PURPOSES)})
    api.links[device] = "A"
    api.hold = True
    page = context.new_page()
    page.goto(f"{SHOP}/")
    old_read = api.read_of(page, device)

    # When the page calls reset() at once, and the new device's read answers before the old
    page.evaluate("() => { window.__reset = window.optoutBridge.reset(); }")
    new = page.evaluate("() => window.optoutBridge.state().deviceId")
    new_read = api.read_of(page, new)  # taken while held: the route may see it only now
    api.hold = False
    api.answer(new_read)
    page.evaluate("() => window.__reset")
    api.answer(old_read)
    page.evaluate("() => window.optoutBridge.ready")  # the first read's answer was handled

    # Then the page shows the new device's state, not the account's under the new id
    # (review s31 R5)
    state = page.evaluate("() => window.optoutBridge.state()")
    assert state["deviceId"] == new
    assert state["updatedAt"] is None
    assert _on(page) == set()


# -- review s31 reset2 S1-S5: a logout never gives the next user the account's opt-outs -------
# In each, account A limited its sensitive data elsewhere and the browser made no opt-out
# before the login: any limit_sensitive the next user gets is the account's.


def _linked(new_context: BrowserFactory) -> tuple[BrowserContext, _Pipeline, str]:
    """A browser whose device is linked to A (a logged-in page's token landed)."""
    context, device = _browser(new_context)
    api = _Pipeline(context, {"A": {LIMIT}})
    api.pages["/account"] = f"tok.A.{device}"
    page = context.new_page()
    page.goto(f"{SHOP}/account")
    _ready(page)
    assert api.links == {device: "A"}
    assert _stored(page, "optout_own") == []
    page.close()
    del api.pages["/account"]
    return context, api, device


def _next_user(context: BrowserContext, api: _Pipeline, device: str) -> Page:
    """The next user's page, once every queued choice was sent: nothing of A's is read,
    applied or sent for the browser's device."""
    page = context.new_page()
    page.goto(f"{SHOP}/")
    state = _ready(page)
    page.wait_for_function("() => JSON.parse(localStorage.optout_outbox || '[]').length === 0")
    assert state["deviceId"] != device
    assert _on(page) == set()
    assert state["uspString"] == "1YNN"
    assert not any(out.get(LIMIT) for _, _, out in api.sent(state["deviceId"]))
    assert api.state_of(state["deviceId"]) == set()
    return page


LIMIT = "limit_sensitive"


def test_logging_out_in_two_tabs_gives_the_next_user_nothing_of_the_accounts(
    new_context: BrowserFactory,
) -> None:
    # Given two tabs open on the linked device, each showing A's state
    context, api, device = _linked(new_context)
    tabs = [context.new_page() for _ in range(2)]
    for tab in tabs:
        tab.goto(f"{SHOP}/")
        _ready(tab)
        assert _on(tab) == {LIMIT}

    # When the person logs out in both (the second tab's logout after the first's)
    for tab in tabs:
        tab.evaluate("() => window.optoutBridge.reset()")

    # Then the second tab took the device the first made (its memory was the account's:
    # review s31 reset2 S1 carried A's limit to it), and the next user gets none of A's
    new = tabs[0].evaluate("() => window.optoutBridge.state().deviceId")
    assert tabs[1].evaluate("() => window.optoutBridge.state().deviceId") == new
    assert _stored(tabs[1], "optout_outbox") == []
    page = _next_user(context, api, device)
    page.evaluate("() => window.optoutBridge.open()")
    boxes = page.locator("#optout-bridge input:checked")
    expect(boxes).to_have_count(0)


def test_a_reset_called_twice_gives_the_next_user_nothing_of_the_accounts(
    new_context: BrowserFactory,
) -> None:
    # Given a page on the linked device (a double-clicked logout button)
    context, api, device = _linked(new_context)
    page = context.new_page()
    page.goto(f"{SHOP}/")
    _ready(page)

    # When it calls reset() twice at once
    page.evaluate("() => { window.optoutBridge.reset(); return window.optoutBridge.reset(); }")

    # Then the next user gets none of A's (the second reset carried A's limit: S1)
    page.close()
    _next_user(context, api, device)


def test_after_a_reset_whose_new_read_fails_the_page_fails_closed_with_the_browsers_own(
    new_context: BrowserFactory,
) -> None:
    # Given a browser that opted out of sale before A logged in, and a page of the linked
    # device in a single-page app, whose choices panel is open
    context, device = _browser(new_context)
    api = _Pipeline(context, {"A": {LIMIT}})
    page = context.new_page()
    page.goto(f"{SHOP}/")
    _ready(page)
    page.evaluate("() => window.optoutBridge.choose({sale: true})")
    page.wait_for_function("() => JSON.parse(localStorage.optout_outbox).length === 0")
    api.pages["/account"] = f"tok.A.{device}"
    page.goto(f"{SHOP}/account")
    _ready(page)
    assert _on(page) == {"sale", LIMIT}
    page.evaluate("() => window.optoutBridge.open()")

    # When the app logs out (reset) and the new device's state read fails
    new_reads_fail = lambda route: (  # noqa: E731
        route.continue_() if route.request.url.endswith(device) else route.abort()
    )
    context.route("**/v1/consent/*", new_reads_fail)
    page.evaluate("() => window.optoutBridge.reset()")

    # Then the page no longer holds A's state (it stayed known with it, review s31 reset2
    # S2): fail closed as without an answer, the browser's own opt-out applied, the panel
    # closed, and when opened it ticks only that
    state = page.evaluate("() => window.optoutBridge.state()")
    assert state["deviceId"] != device
    assert not state["known"]
    assert state["updatedAt"] is None
    assert state["uspString"] == "1YYN"
    assert _on(page) == {"sale"}
    page.evaluate("() => window.optoutBridge.open()")
    panel = page.locator("#optout-bridge")
    expect(panel.get_by_text("We could not load your saved choices")).to_be_visible()
    checked = panel.locator("input:checked")
    expect(checked).to_have_count(1)
    assert checked.get_attribute("name") == "sale"


def test_a_second_tabs_login_keeps_the_browsers_own_opt_outs_as_they_were(
    new_context: BrowserFactory,
) -> None:
    # Given two logged-out tabs; A logs in in the first (the link lands: nothing of the
    # browser's own), then opts out of sale there, logged in: the account's choice
    context, device = _browser(new_context)
    api = _Pipeline(context, {"A": set()})
    first, second = context.new_page(), context.new_page()
    for tab in (first, second):
        tab.goto(f"{SHOP}/")
        _ready(tab)
    first.evaluate(f"() => window.optoutBridge.identify('tok.A.{device}')")
    assert api.links == {device: "A"}
    assert _stored(first, "optout_own") == []
    first.evaluate("() => window.optoutBridge.choose({sale: true})")
    first.wait_for_function("() => JSON.parse(localStorage.optout_outbox).length === 0")

    # When the app tells the second tab of the login (identify there too), then logs out
    second.evaluate(f"() => window.optoutBridge.identify('tok.A.{device}')")
    assert (202, True, {}) in api.sent(device)[1:]

    # Then the browser's own opt-outs are still none (the second tab stored A's sale as the
    # browser's: review s31 reset2 S3), and the next user gets none of A's
    assert _stored(second, "optout_own") == []
    first.evaluate("() => window.optoutBridge.reset()")
    for tab in (first, second):
        tab.close()
    _next_user(context, api, device)


def test_a_logout_during_the_migration_never_leaves_the_accounts_device_to_be_read(
    new_context: BrowserFactory,
) -> None:
    # Given an earlier banner's device X in the plain cookie, linked to A by that banner; a
    # sibling's planted id whose read is refused keeps the migration from settling
    context = new_context()
    device = uuid.uuid4().hex
    planted = uuid.uuid4().hex
    context.add_cookies(
        [
            {"name": PLAIN, "value": device, "url": SHOP, "secure": True},
            {"name": PLAIN, "value": planted, "domain": ".shop.example", "path": "/"},
        ]
    )
    api = _Pipeline(context, {"A": {LIMIT}})
    api.links[device] = "A"
    api.failing_reads.add(planted)
    blank = lambda route: route.fulfill(content_type="text/html", body="<title>b</title>")  # noqa: E731
    context.route(f"{SHOP}/blank", blank)
    page = context.new_page()
    page.goto(f"{SHOP}/blank")  # no banner: the earlier banner's link is all there is
    page.evaluate(f"() => localStorage.setItem('optout_linked', JSON.stringify('{device}'))")
    page.goto(f"{SHOP}/")
    page.wait_for_function("() => window.optoutBridge")
    page.evaluate("() => window.optoutBridge.ready")
    assert page.evaluate("() => window.optoutBridge.state().deviceId") == device

    # When the site logs out (reset)
    page.evaluate("() => window.optoutBridge.reset()")

    # Then the plain cookie no longer names the account's device (it did, and the next page
    # read it as an earlier banner's id and carried A's limit: review s31 reset2 S4)
    assert device not in _cookies(context, PLAIN)
    assert planted in _cookies(context, PLAIN)
    page.close()
    api.failing_reads.clear()
    _next_user(context, api, device)


def test_a_reset_with_a_malformed_record_of_the_browsers_own_still_logs_out(
    new_context: BrowserFactory,
) -> None:
    # Given a linked device whose record of the browser's own opt-outs is not a list
    context, api, device = _linked(new_context)
    page = context.new_page()
    page.goto(f"{SHOP}/")
    _ready(page)
    page.evaluate("() => localStorage.setItem('optout_own', '{\"0\": \"sale\"}')")

    # When the site logs out (reset): it threw, leaving the browser on A's device (S5)
    page.evaluate("() => window.optoutBridge.reset()")

    # Then the browser is a new device, unlinked, and the next user gets none of A's
    assert page.evaluate("() => window.optoutBridge.state().deviceId") != device
    assert _stored(page, "optout_linked") is None
    page.close()
    _next_user(context, api, device)


def test_a_login_in_a_tab_opened_before_another_tabs_logout_keeps_none_of_the_accounts(
    new_context: BrowserFactory,
) -> None:
    # Given A logged in (the device linked) and a second tab showing A's state
    context, device = _browser(new_context)
    api = _Pipeline(context, {"A": {LIMIT}, "B": set()})
    api.pages["/account"] = f"tok.A.{device}"
    first = context.new_page()
    first.goto(f"{SHOP}/account")
    _ready(first)
    second = context.new_page()
    second.goto(f"{SHOP}/")
    _ready(second)
    assert _on(second) == {LIMIT}
    del api.pages["/account"]

    # When A logs out in the first tab, and B logs in through the second (its identify)
    first.evaluate("() => window.optoutBridge.reset()")
    new = first.evaluate("() => window.optoutBridge.state().deviceId")
    second.evaluate(f"() => window.optoutBridge.identify('tok.B.{new}')")

    # Then B's login linked the new device and took none of A's as the browser's own (with
    # S3's stored-link check alone, the second tab stored A's limit from its memory), so B's
    # logout gives the next user none of A's
    assert api.links == {device: "A", new: "B"}
    assert not _stored(second, "optout_own")
    second.evaluate("() => window.optoutBridge.reset()")
    for tab in (first, second):
        tab.close()
    _next_user(context, api, new)


def test_a_login_in_a_tab_opened_before_another_tabs_logout_applies_the_new_accounts_state(
    new_context: BrowserFactory,
) -> None:
    # Given A logged in (the device linked), B opted out of sale elsewhere, and a second tab
    # showing A's state
    context, device = _browser(new_context)
    api = _Pipeline(context, {"A": {LIMIT}, "B": {"sale"}})
    api.pages["/account"] = f"tok.A.{device}"
    first = context.new_page()
    first.goto(f"{SHOP}/account")
    _ready(first)
    second = context.new_page()
    second.goto(f"{SHOP}/")
    _ready(second)
    del api.pages["/account"]

    # When A logs out in the first tab, and B logs in through the second (its identify)
    first.evaluate("() => window.optoutBridge.reset()")
    new = first.evaluate("() => window.optoutBridge.state().deviceId")
    second.evaluate(f"() => window.optoutBridge.identify('tok.B.{new}')")

    # Then the second tab linked (its memory of A's link was not the new device's) and applies
    # B's state: before, it kept `linked`, skipped the link's re-read and applied nothing
    # (review s31 last F2)
    assert api.links == {device: "A", new: "B"}
    state = second.evaluate("() => window.optoutBridge.state()")
    assert state["known"] is True
    assert _on(second) == {"sale"}
    assert state["uspString"] == "1YYN"
    assert _stored(second, "optout_linked") == new


def test_a_login_in_a_tab_opened_before_another_tabs_logout_and_login_applies_that_state(
    new_context: BrowserFactory,
) -> None:
    # Given A logged in, a second tab showing A's state, and B (who opted out of sale
    # elsewhere) logged in through the first tab after A's logout there
    context, device = _browser(new_context)
    api = _Pipeline(context, {"A": {LIMIT}, "B": {"sale"}})
    api.pages["/account"] = f"tok.A.{device}"
    first = context.new_page()
    first.goto(f"{SHOP}/account")
    _ready(first)
    second = context.new_page()
    second.goto(f"{SHOP}/")
    _ready(second)
    del api.pages["/account"]
    first.evaluate("() => window.optoutBridge.reset()")
    new = first.evaluate("() => window.optoutBridge.state().deviceId")
    first.evaluate(f"() => window.optoutBridge.identify('tok.B.{new}')")
    assert api.links == {device: "A", new: "B"}

    # When B's page in the second tab calls identify too
    second.evaluate(f"() => window.optoutBridge.identify('tok.B.{new}')")

    # Then it took the new device and read its state: B's opt-out applies, none of A's
    state = second.evaluate("() => window.optoutBridge.state()")
    assert state["deviceId"] == new
    assert state["known"] is True
    assert _on(second) == {"sale"}
