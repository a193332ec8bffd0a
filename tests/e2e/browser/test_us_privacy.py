"""`__uspapi` as an ad-tech integrator calls it (review s31 browser F1-F5): it answers at once
(the USP API spec: "immediately and without any asynchronous logic"; Prebid's USP module gives
up after 50 ms), fail closed before the state is known; a caller's callback that throws costs
the banner nothing, nor does an IAB stub's queued call whose callback throws; the string says
"1---" where no US privacy section applies and takes its notice character from `data-usnat`.

No pipeline: pages come from web/ on loopback, the consent API is FakeConsentApi, and a route
added after it holds the state read until the test lets it through (`route.fallback()`), so
"before the state is known" is a moment the test chooses, not a race.
"""

import json
from typing import Any

import pytest
from playwright.sync_api import BrowserContext, Page, Route, expect

from .conftest import (
    SALE_SHARE,
    BrowserFactory,
    FakeConsentApi,
    decode_gpp,
    gpp_ping,
    serve_page,
    usp_data,
    wait_until_ready,
)

pytestmark = pytest.mark.browser

ALL_OUT = dict.fromkeys(SALE_SHARE, True)

# A vendor's code right after the banner, as Prebid's USP module asks: `ask(when)` records what
# the callback received before __uspapi returned (null: no answer yet).
ASK = """<script>
window.__answers = {};
window.ask = (when) => {
  let got = null;
  window.__uspapi("getUSPData", 1, (data, ok) => { got = [data && data.uspString, ok]; });
  window.__answers[when] = got;
};
ask("head");
</script>"""


def _page(attributes: str = "", head: str = ASK) -> str:
    return (
        '<!doctype html><html lang="en"><head><title>shop</title>'
        f'<script src="/dist/banner.min.js" {attributes}></script>{head}'
        '<script type="text/plain" data-purpose="targeted_advertising">'
        "window.__tagRan = true;</script></head>"
        "<body><main><h1>Shop</h1></main></body></html>"
    )


def _hold_reads(context: BrowserContext) -> list[Route]:
    """GET /v1/consent/{id} waits here until the test calls fallback() (FakeConsentApi answers)."""
    held: list[Route] = []
    # added after FakeConsentApi's route: Playwright tries it first
    context.route("**/v1/consent/*", lambda route: held.append(route))
    return held


def _release(page: Page, held: list[Route]) -> None:
    for _ in range(500):  # route handlers run while Playwright waits
        if held:
            break
        page.wait_for_timeout(20)
    assert held, "the banner never read the state"
    for route in held:
        route.fallback()


def _open(
    new_context: BrowserFactory,
    static_site: str,
    api: FakeConsentApi,
    *,
    gpc: bool = False,
    attributes: str = "",
    head: str = ASK,
    hold: bool = True,
) -> tuple[BrowserContext, Page, list[Route]]:
    context = new_context(gpc=gpc)
    api.install(context)
    held = _hold_reads(context) if hold else []
    serve_page(context, f"{static_site}/shop.html", _page(attributes, head))
    page = context.new_page()
    page.goto(f"{static_site}/shop.html")
    return context, page, held


@pytest.mark.parametrize(
    ("case", "api", "gpc", "before", "after"),
    [
        # GPC: known at once from navigator.globalPrivacyControl
        ("gpc", FakeConsentApi(), True, "1YYN", "1YYN"),
        # opted out through the webform: only the API knows, so fail closed until it says
        ("opted out elsewhere", FakeConsentApi(opt_out=ALL_OUT), False, "1YYN", "1YYN"),
        # a first visit: fail closed until the state says "not opted out"
        ("first visit", FakeConsentApi(), False, "1YYN", "1YNN"),
        # the API down: the fail-closed answer stays, at once, for the whole page
        ("api down", FakeConsentApi(opt_out=ALL_OUT, unavailable=True), False, "1YYN", "1YYN"),
    ],
    ids=["gpc", "opted-out-elsewhere", "first-visit", "api-down"],
)
def test_uspapi_answers_at_once_and_never_says_not_opted_out_before_the_state_is_known(
    new_context: BrowserFactory,
    static_site: str,
    case: str,
    api: FakeConsentApi,
    gpc: bool,
    before: str,
    after: str,
) -> None:
    # Given a vendor that asks __uspapi right after the banner, while the state read is held
    _, page, held = _open(new_context, static_site, api, gpc=gpc)

    # Then its callback was called before __uspapi returned, with the fail-closed string
    # (review s31 F1: it was held until the state arrived, and never called with the API down)
    assert page.evaluate("() => window.__answers.head") == [before, True], case
    assert page.evaluate("() => window.optoutBridge.state().uspString") == before

    # When the state read is answered (or fails)
    _release(page, held)
    page.evaluate("() => window.optoutBridge.ready")

    # Then __uspapi answers the state, still at once
    page.evaluate("() => window.ask('after')")
    assert page.evaluate("() => window.__answers.after") == [after, True], case
    assert page.evaluate("() => window.optoutBridge.state().known") is (case != "api down")


@pytest.mark.parametrize(
    ("case", "call", "gpc"),
    [
        ("throws, gpc", "() => { throw new Error('vendor bug'); }", True),
        ("throws, first visit", "() => { throw new Error('vendor bug'); }", False),
        ("no callback, gpc", None, True),
    ],
    ids=["throws-gpc", "throws-first-visit", "no-callback-gpc"],
)
def test_a_vendors_uspapi_callback_that_throws_costs_the_banner_nothing(
    new_context: BrowserFactory, static_site: str, case: str, call: str | None, gpc: bool
) -> None:
    # Given a vendor whose __uspapi callback throws (or who gives none), asking before the
    # state is known, on every page
    callback = f", {call}" if call else ""
    head = f"<script>window.__uspapi('getUSPData', 1{callback});</script>"
    api = FakeConsentApi()
    _, page, held = _open(new_context, static_site, api, gpc=gpc, head=head)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))

    # When the state arrives
    _release(page, held)

    # Then the banner's load flow goes on: ready settles (it rejected: review s31 F2) ...
    page.evaluate("() => window.optoutBridge.ready")
    state = page.evaluate("() => window.optoutBridge.state()")
    assert state["known"] is True, case
    assert errors == []
    if gpc:
        # ... the GPC opt-out reaches the API and is honoured (it was never posted)
        assert [p.get("gpc") for p in api.posts] == [True]
        assert state["gpcHonored"] is True
    else:
        # ... the gated tag runs and Google is told the state (it stayed denied)
        page.wait_for_function("() => window.__tagRan === true")
        update = page.evaluate(
            "() => [...dataLayer].map((c) => Array.from(c))"
            ".filter((c) => c[0] === 'consent' && c[1] === 'update').pop()"
        )
        assert update[2]["ad_storage"] == "granted"


# An IAB stub that queued every call: one caller's callback throws, the next caller's records.
THROWING_QUEUE_STUB = """
window.__seen = [];
window.__gpp = function () { window.__gpp.queue.push(arguments); };
window.__gpp.queue = [];
window.__gpp("ping", () => { throw new Error("vendor bug"); });
window.__gpp("ping", (data) => window.__seen.push(data.cmpStatus));
"""


def test_a_stubs_queued_call_whose_callback_throws_costs_the_banner_nothing(
    new_context: BrowserFactory, static_site: str
) -> None:
    # Given a GPC browser on a page whose IAB stub queued a call whose callback throws
    context = new_context(gpc=True)
    api = FakeConsentApi()
    api.install(context)
    context.add_init_script(THROWING_QUEUE_STUB)
    page = context.new_page()

    # When the banner takes over from the stub
    page.goto(f"{static_site}/index.html")

    # Then every API is defined (none was: the banner stopped at the hand-over, review s31 F3)
    defined = page.evaluate("() => [typeof window.__uspapi, typeof window.optoutBridge]")
    assert defined == ["function", "object"]
    # ... Google's denied defaults were pushed
    default = page.evaluate(
        "() => [...(window.dataLayer || [])].map((c) => Array.from(c))"
        ".find((c) => c[0] === 'consent' && c[1] === 'default')"
    )
    assert default is not None
    assert default[2]["ad_storage"] == "denied"
    # ... the later queued call was answered, in order, by the loaded CMP
    assert page.evaluate("() => window.__seen") == ["loaded"]
    # ... the GPC opt-out is posted and honoured, and the page has its opt-out link
    wait_until_ready(page)
    assert [p.get("gpc") for p in api.posts] == [True]
    assert gpp_ping(page)["signalStatus"] == "ready"
    banner = page.locator("#optout-bridge")
    expect(banner.get_by_role("button", name="Your Privacy Choices")).to_be_visible()
    expect(banner.get_by_text("Opt-Out Request Honored")).to_be_visible()


# A vendor (Prebid-like) whose queued GPP call asks __uspapi from its callback.
USP_FROM_QUEUE_STUB = """
window.__seen = [];
window.__gpp = function () { window.__gpp.queue.push(arguments); };
window.__gpp.queue = [];
window.__gpp("ping", () => {
  window.__uspapi("getUSPData", 1, (data, ok) => window.__seen.push([data.uspString, ok]));
});
"""


def test_a_stubs_queued_callback_that_asks_uspapi_is_answered(
    new_context: BrowserFactory, static_site: str
) -> None:
    # Given a page whose IAB stub queued a call whose callback asks __uspapi
    context = new_context()
    api = FakeConsentApi()
    api.install(context)
    context.add_init_script(USP_FROM_QUEUE_STUB)
    page = context.new_page()

    # When the banner takes over from the stub
    page.goto(f"{static_site}/index.html")

    # Then the callback found __uspapi and got the fail-closed answer at once (it was not
    # defined yet when the queue was replayed: a TypeError, swallowed; review s31 R6)
    assert page.evaluate("() => window.__seen") == [["1YYN", True]]


@pytest.mark.parametrize("gpc", [False, True])
def test_a_visitor_no_us_privacy_section_applies_to_gets_1_dashes(
    new_context: BrowserFactory, static_site: str, gpc: bool
) -> None:
    # Given a site whose edge says no section applies to this visitor (data-gpp-applicable -1)
    api = FakeConsentApi()
    context, page, held = _open(
        new_context, static_site, api, gpc=gpc, attributes='data-gpp-applicable="-1"'
    )

    # Then __uspapi says US privacy does not apply, at once and once the state is known, as
    # GPP's ping does (it said "1YNN", "applies, not opted out": review s31 F4)
    assert page.evaluate("() => window.__answers.head") == ["1---", True]
    _release(page, held)
    wait_until_ready(page)
    assert gpp_ping(page)["applicableSections"] == [-1]
    assert usp_data(page) == {"version": 1, "uspString": "1---", "ok": True}
    # ... and so does the usprivacy cookie
    cookies = {c["name"]: c["value"] for c in context.cookies()}
    assert cookies["usprivacy"] == "1---"


@pytest.mark.parametrize(
    ("usnat", "gpc", "expected"),
    [
        # the sale opt-out notice not given (2): "N"; GPC still opts out
        ({"SaleOptOutNotice": 2, "SharingOptOutNotice": 2, "TargetedAdvertisingOptOutNotice": 2},
         True, "1NYN"),
        # the business does not sell (0, not applicable): "-"; the opt-out is still Y or N
        ({"SaleOptOutNotice": 0}, True, "1-YN"),
        ({"SaleOptOutNotice": 0}, False, "1-NN"),
        # the default: notice given
        ({}, False, "1YNN"),
    ],
    ids=["notice-not-given-gpc", "no-sale-gpc", "no-sale", "default"],
)  # fmt: skip
def test_the_us_privacy_notice_character_follows_the_usnat_sale_opt_out_notice(
    new_context: BrowserFactory,
    static_site: str,
    usnat: dict[str, Any],
    gpc: bool,
    expected: str,
) -> None:
    # Given a site that states its sale opt-out notice in data-usnat
    api = FakeConsentApi()
    attributes = f"data-usnat='{json.dumps(usnat)}'"
    context, page, _ = _open(
        new_context, static_site, api, gpc=gpc, attributes=attributes, hold=False
    )

    # When the state is known
    wait_until_ready(page)

    # Then the US Privacy string's notice agrees with the GPP string's (it was always "Y":
    # review s31 F5), in __uspapi and the cookie
    notice = decode_gpp(gpp_ping(page)["gppString"])["usnat"]["SaleOptOutNotice"]
    assert notice == usnat.get("SaleOptOutNotice", 1)
    assert usp_data(page) == {"version": 1, "uspString": expected, "ok": True}
    cookies = {c["name"]: c["value"] for c in context.cookies()}
    assert cookies["usprivacy"] == expected


@pytest.mark.parametrize("earlier", ["1---", None], ids=["out-of-scope-page-first", "first-visit"])
def test_a_page_in_scope_never_keeps_a_usprivacy_cookie_without_an_opt_out_before_the_state(
    new_context: BrowserFactory, static_site: str, earlier: str | None
) -> None:
    context = new_context()
    api = FakeConsentApi()
    api.install(context)
    if earlier:
        # Given a visitor whose edge said, on an earlier page, that no US section applies: the
        # banner wrote "1---", "does not apply", once the state was known
        serve_page(context, f"{static_site}/abroad.html", _page('data-gpp-applicable="-1"'))
        abroad = context.new_page()
        abroad.goto(f"{static_site}/abroad.html")
        wait_until_ready(abroad)
        assert _usprivacy(context) == earlier
        abroad.close()
    # When a page in scope loads (the edge now says the US applies) and its state read is
    # held, then fails (the API is down)
    api.unavailable = True
    held = _hold_reads(context)
    serve_page(context, f"{static_site}/shop.html", _page())
    page = context.new_page()
    page.goto(f"{static_site}/shop.html")

    # Then the cookie says the fail-closed string at once, as __uspapi does (review s31 R7: an
    # earlier "1---" stayed, telling vendors that read the cookie "does not apply", for a
    # person who may have opted out)
    assert page.evaluate("() => window.__answers.head") == ["1YYN", True]
    assert _usprivacy(context) == "1YYN"
    # ... and still says it once the read failed: the page stays fail-closed
    _release(page, held)
    page.evaluate("() => window.optoutBridge.ready")
    assert page.evaluate("() => window.optoutBridge.state().known") is False
    assert _usprivacy(context) == "1YYN"
    assert page.evaluate("() => window.__tagRan") is None


def _usprivacy(context: BrowserContext) -> str | None:
    return next((c["value"] for c in context.cookies() if c["name"] == "usprivacy"), None)
