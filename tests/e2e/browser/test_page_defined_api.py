"""A page script that defines `window.optoutBridge` before the banner loads (a site's own
config object or queue, or a script that wants the banner off) switched the banner off: its
"loaded twice" guard read any object of that name as an earlier copy of itself, and returned
before `__gpp`, `__uspapi`, Consent Mode defaults, tag gating or the GPC post. Gated tags
stayed inert (fail-closed by accident), but vendors asking `__gpp`/`__uspapi` got no answer,
GPC was never posted nor the opt-out link shown.

The banner now marks its own copy with a symbol of the global registry: a page's object of
that name is replaced by the banner's API (or, when read-only, left and said once in the
console), and everything else runs. A second copy of the banner itself still does nothing.
"""

from pathlib import Path

import pytest
from playwright.sync_api import ConsoleMessage, Request, expect

from .conftest import BrowserFactory, FakeConsentApi, serve_page, usp_data, wait_until_ready

pytestmark = pytest.mark.browser

PAGE = (
    '<!doctype html><html lang="en"><head><title>shop</title>'
    '<script src="/dist/banner.min.js"></script>COPY'
    '<script type="text/plain" data-purpose="targeted_advertising">'
    "window.__tagRan = true;</script></head>"
    "<body><main><h1>Shop</h1></main></body></html>"
)
CASES = {
    # a site's own config object or command queue under the banner's name
    "object": "window.optoutBridge = {api: 'https://privacy.example.com'};",
    "queue": "window.optoutBridge = [];",
    # a page's stub copying the documented methods to queue calls until the banner loads
    # (review37 R2: its `remember` read as an earlier release, and the banner stepped aside)
    "stub": "window.optoutBridge = {q: [], ready: {then() {}}, remember(c) { this.q.push(c); },"
    " choose(c) { this.q.push(c); }, open() {}, identify() {}, reset() {}};",
    # ... made read-only (the banner cannot replace it: said once, everything else runs)
    "read-only": "Object.defineProperty(window, 'optoutBridge', {value: {}, writable: false});",
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_page_defined_optout_bridge_does_not_switch_the_banner_off(
    new_context: BrowserFactory, static_site: str, case: str
) -> None:
    # Given a GPC browser on a page whose own script defined window.optoutBridge first
    context = new_context(gpc=True)
    api = FakeConsentApi()
    api.install(context)
    context.add_init_script(CASES[case])
    serve_page(context, f"{static_site}/shop.html", PAGE.replace("COPY", ""))
    page = context.new_page()
    warnings: list[str] = []

    def said(message: ConsoleMessage) -> None:
        if message.type == "warning":
            warnings.append(message.text)

    page.on("console", said)

    # When the banner loads
    page.goto(f"{static_site}/shop.html")

    # Then __gpp and __uspapi answer (fail-closed before the state is known, opted out after)
    assert page.evaluate("() => typeof window.__gpp") == "function", case
    assert usp_data(page)["uspString"] == "1YYN"
    default = page.evaluate(
        "() => [...(window.dataLayer || [])].map((c) => Array.from(c))"
        ".find((c) => c[0] === 'consent' && c[1] === 'default')"
    )
    assert default is not None and default[2]["ad_storage"] == "denied", case
    # ... the GPC opt-out is posted and honoured, the gated ad tag held, the opt-out link shown
    banner = page.locator("#optout-bridge")
    expect(banner.get_by_text("Opt-Out Request Honored")).to_be_visible()
    assert [p.get("gpc") for p in api.posts] == [True], case
    assert page.evaluate("() => window.__tagRan") is None
    ping = page.evaluate("() => new Promise((done) => window.__gpp('ping', done))")
    assert ping["signalStatus"] == "ready" and ping["parsedSections"]["usnat"][0]["SaleOptOut"] == 1
    # ... and the page's API is the banner's, unless the page made the name read-only
    if case == "read-only":
        assert page.evaluate("() => JSON.stringify(window.optoutBridge)") == "{}"
        assert [w for w in warnings if "read-only" in w] == [
            "optout-bridge: optoutBridge is read-only"
        ]
    else:
        wait_until_ready(page)
        assert page.evaluate("() => window.optoutBridge.state().gpc") is True


def test_a_page_defined_optout_bridge_lets_an_allowed_tag_run(
    new_context: BrowserFactory, static_site: str
) -> None:
    # Given a browser without GPC, not opted out, on a page that defined window.optoutBridge
    context = new_context()
    FakeConsentApi().install(context)
    context.add_init_script(CASES["object"])
    serve_page(context, f"{static_site}/shop.html", PAGE.replace("COPY", ""))
    page = context.new_page()

    # When the banner loads, Then the state is read and the allowed tag runs
    page.goto(f"{static_site}/shop.html")
    page.wait_for_function("() => window.__tagRan === true")
    expect(page.get_by_role("region", name="Privacy choices")).to_be_visible()


def test_the_banner_loaded_twice_runs_once(new_context: BrowserFactory, static_site: str) -> None:
    # Given a page that embeds the banner twice (its template and a tag manager)
    context = new_context(gpc=True)
    api = FakeConsentApi()
    api.install(context)
    twice = PAGE.replace("COPY", '<script src="/dist/banner.min.js"></script>')
    serve_page(context, f"{static_site}/shop.html", twice)
    page = context.new_page()

    # When it loads
    page.goto(f"{static_site}/shop.html")
    wait_until_ready(page)

    # Then one copy owns the page: one state read, one GPC post, one banner on the page
    expect(page.locator("#optout-bridge").get_by_text("Opt-Out Request Honored")).to_be_visible()
    assert len(api.posts) == 1
    assert page.locator("#optout-bridge").count() == 1
    assert page.evaluate("() => window.frames.length") == 2  # one pair of locator frames

    # ... and the next page of the session posts GPC no more (honoured once per session)
    page.reload()
    wait_until_ready(page)
    expect(page.locator("#optout-bridge").get_by_text("Opt-Out Request Honored")).to_be_visible()
    assert len(api.posts) == 1


# -- an earlier release of the banner on the same page (browser37) ---------------------------

# The shipped banner as it was built from web/banner.js at b6e0e490 (the last release before the
# symbol mark): its "loaded twice" guard is `if (window.optoutBridge) return`, and it marks
# nothing else. A site mid-upgrade can serve it beside this one: its template and a tag manager.
EARLIER = Path(__file__).parent / "earlier" / "banner-b6e0e490.min.js"
TWO_RELEASES = (
    '<!doctype html><html lang="en"><head><title>shop</title>FIRSTSECOND'
    '<script type="text/plain" data-purpose="targeted_advertising">'
    "window.__tagRan = true;</script></head>"
    "<body><main><h1>Shop</h1></main></body></html>"
)
THIS = '<script src="/dist/banner.min.js"></script>'
OLD = '<script src="/earlier/banner.min.js"></script>'


@pytest.mark.parametrize("order", ["earlier first", "this first"])
def test_an_earlier_release_and_this_one_on_one_page_act_once(
    new_context: BrowserFactory, static_site: str, order: str
) -> None:
    # Given a GPC browser on a page that embeds an earlier release of the banner and this one
    context = new_context(gpc=True)
    api = FakeConsentApi()
    api.install(context)
    context.route(
        f"{static_site}/earlier/banner.min.js",
        lambda route: route.fulfill(
            status=200, content_type="text/javascript", body=EARLIER.read_bytes()
        ),
    )
    first, second = (OLD, THIS) if order == "earlier first" else (THIS, OLD)
    html = TWO_RELEASES.replace("FIRST", first).replace("SECOND", second)
    serve_page(context, f"{static_site}/shop.html", html)
    page = context.new_page()
    reads: list[str] = []
    warnings: list[str] = []

    def read(request: Request) -> None:
        if request.method == "GET" and "/v1/consent/" in request.url:
            reads.append(request.url)

    def said(message: ConsoleMessage) -> None:
        if message.type == "warning":
            warnings.append(message.text)

    page.on("request", read)
    page.on("console", said)

    # When the page loads
    page.goto(f"{static_site}/shop.html")
    wait_until_ready(page)

    # Then the copy that ran first owns the page: one state read, one GPC post, one banner,
    # one pair of locator frames; the other did nothing (its __gpp and API are not defined)
    banner = page.locator("#optout-bridge")
    expect(banner.get_by_text("Opt-Out Request Honored")).to_be_visible()
    assert len(api.posts) == 1 and len(reads) == 1, (api.posts, reads)
    assert banner.count() == 1
    assert page.evaluate("() => window.frames.length") == 2
    marked = page.evaluate("() => Boolean(window[Symbol.for('optout-bridge')])")
    assert marked is (order == "this first")
    assert page.evaluate("() => window.__tagRan") is None
    # ... and a site that left the earlier release first is told why its update does nothing
    if order == "earlier first":
        assert warnings == ["optout-bridge: an earlier copy runs this page"]
    else:
        assert warnings == []
