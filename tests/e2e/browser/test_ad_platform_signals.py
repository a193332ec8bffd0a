"""What the ad platforms already on the page are told: Google Consent Mode v2 (through the
data layer, before any Google tag runs) and Meta Limited Data Use (before the pixel
initialises). Stub tags stand in for Google's gtag.js and Meta's fbevents.js: they record
what they find when they load and every call after, and nothing leaves loopback.
"""

from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import Page, Route

from .conftest import SALE_SHARE, BrowserFactory, FakeConsentApi, serve_page, wait_until_ready

pytestmark = pytest.mark.browser

# The site's own tags, as Google and Meta ask sites to paste them (their libraries swapped for
# the stubs below): banner.js first, then the gtag snippet, then Meta's base code, which
# defines a queueing fbq, loads its library asynchronously and queues init and PageView.
PAGE = """<!doctype html><html lang="en"><head><title>Signals</title>
<script src="/dist/banner.min.js"></script>
<script>
  window.dataLayer = window.dataLayer || [];
  function gtag() { dataLayer.push(arguments); }
  gtag("js", new Date());
  gtag("config", "AW-000000000");
</script>
<script async src="/stub/gtag.js"></script>
<script>
  (function (w, d, src) {
    if (w.fbq) return;
    var n = (w.fbq = function () {
      n.callMethod ? n.callMethod.apply(n, arguments) : n.queue.push(arguments);
    });
    if (!w._fbq) w._fbq = n;
    n.push = n; n.loaded = true; n.version = "2.0"; n.queue = [];
    var t = d.createElement("script"); t.async = true; t.src = src;
    var s = d.getElementsByTagName("script")[0]; s.parentNode.insertBefore(t, s);
  })(window, document, "/stub/fbevents.js");
  fbq("init", "000000000000000");
  fbq("track", "PageView");
</script>
</head><body><main><h1>Shop</h1></main></body></html>"""

# Stands in for gtag.js: the data layer as it found it, then every later command.
GTAG_STUB = """
const copy = (command) => JSON.parse(JSON.stringify(Array.from(command)));
window.__google = { found: Array.from(dataLayer, copy), later: [] };
const push = dataLayer.push.bind(dataLayer);
dataLayer.push = (...commands) => {
  for (const c of commands) __google.later.push(copy(c));
  return push(...commands);
};
"""
# Stands in for fbevents.js: runs the base code's queue in order, then every later call.
FBEVENTS_STUB = """
window.__meta = Array.from(fbq.queue, (call) => Array.from(call));
fbq.queue = [];
fbq.callMethod = (...call) => __meta.push(call);
"""


def _script(body: str) -> Callable[[Route], None]:
    return lambda route: route.fulfill(content_type="text/javascript", body=body)


def _load(
    new_context: BrowserFactory, site: str, opt_out: dict[str, bool], gpc: bool = False
) -> Page:
    context = new_context(gpc=gpc)
    FakeConsentApi(opt_out=opt_out).install(context)
    serve_page(context, f"{site}/signals.html", PAGE)
    for name, body in (("gtag.js", GTAG_STUB), ("fbevents.js", FBEVENTS_STUB)):
        context.route(f"{site}/stub/{name}", _script(body))
    page = context.new_page()
    page.goto(f"{site}/signals.html")
    wait_until_ready(page)
    page.wait_for_function("() => window.__google && window.__meta")
    return page


def _google(page: Page) -> list[list[Any]]:
    found: dict[str, list[list[Any]]] = page.evaluate("() => window.__google")
    return found["found"] + found["later"]


def _consent(commands: list[list[Any]]) -> list[list[Any]]:
    rdp = ["set", "restricted_data_processing"]
    return [c for c in commands if c[0] == "consent" or c[:2] == rdp]


def _meta(page: Page) -> list[list[Any]]:
    calls: list[list[Any]] = page.evaluate("() => window.__meta")
    return calls


DENIED = dict.fromkeys(("ad_storage", "ad_user_data", "ad_personalization"), "denied")
GRANTED = dict.fromkeys(("ad_storage", "ad_user_data", "ad_personalization"), "granted")
LDU = ["dataProcessingOptions", ["LDU"], 0, 0]


def test_google_tags_find_denied_defaults_before_their_own_commands(
    new_context: BrowserFactory, static_site: str
) -> None:
    # Given any visitor, When the page's Google tag loads
    page = _load(new_context, static_site, {})

    # Then the first thing in the data layer is the consent default, denied until the state is
    # known, with a wait for the update; restricted data processing is on until then too
    first, second = page.evaluate("() => window.__google.found.slice(0, 2)")
    assert first == ["consent", "default", {**DENIED, "analytics_storage": "denied",
                                            "wait_for_update": 500}]  # fmt: skip
    assert second == ["set", "restricted_data_processing", True]
    assert [c[0] for c in page.evaluate("() => window.__google.found")].index("js") > 1


@pytest.mark.parametrize(
    ("case", "opt_out", "gpc", "ads"),
    [
        ("not_opted_out", {}, False, GRANTED),
        ("limit_only", {"limit_sensitive": True}, False, GRANTED),  # not an ads purpose
        ("opted_out_on_another_browser", dict.fromkeys(SALE_SHARE, True), False, DENIED),
        ("share_only", {"share": True}, False, DENIED),
        ("gpc", {}, True, DENIED),
    ],
)
def test_the_consent_update_follows_the_effective_state(
    new_context: BrowserFactory,
    static_site: str,
    case: str,
    opt_out: dict[str, bool],
    gpc: bool,
    ads: dict[str, str],
) -> None:
    # Given a visitor whose effective state (the API's, after identity resolution) is opt_out
    page = _load(new_context, static_site, opt_out, gpc)

    # When the banner has read it, Then the last consent update says so
    commands = _consent(_google(page))
    updates = [c for c in commands if c[:2] == ["consent", "update"]]
    assert updates[-1] == ["consent", "update", {**ads, "analytics_storage": "granted"}], case
    restricted = [c[2] for c in commands if c[0] == "set"]
    assert restricted[-1] is (ads is DENIED)


def test_meta_limited_data_use_is_set_before_the_pixel_initialises_when_opted_out(
    new_context: BrowserFactory, static_site: str
) -> None:
    # Given a visitor opted out (on another browser, say), When the pixel's library runs
    page = _load(new_context, static_site, dict.fromkeys(SALE_SHARE, True))

    # Then Limited Data Use was the first thing it processed: before init and PageView
    calls = _meta(page)
    assert calls[0] == LDU
    assert [c[0] for c in calls[1:3]] == ["init", "track"]
    assert ["dataProcessingOptions", []] not in calls


def test_meta_limited_data_use_is_lifted_once_the_state_says_not_opted_out(
    new_context: BrowserFactory, static_site: str
) -> None:
    # Given a visitor not opted out: the pixel initialised before the state was known
    page = _load(new_context, static_site, {})
    page.wait_for_function(
        "() => window.__meta.some((c) => c[0] === 'dataProcessingOptions' && c[1].length === 0)"
    )

    # Then it started limited (fail closed), and was told to stop limiting after the state
    calls = _meta(page)
    assert calls[0] == LDU
    lifted = calls.index(["dataProcessingOptions", []])
    assert lifted > calls.index(next(c for c in calls if c[0] == "init"))


def test_an_opt_out_clicked_on_the_page_reaches_both_platforms_at_once(
    new_context: BrowserFactory, static_site: str
) -> None:
    # Given a first visit with ads allowed
    page = _load(new_context, static_site, {})
    page.wait_for_function("() => window.__meta.length >= 4")

    # When the visitor opts out of all in the banner
    page.locator("#optout-bridge").get_by_role("button", name="Opt out of all").click()
    page.wait_for_function("() => window.optoutBridge.state().optOut.sale")

    # Then Google gets a denied update and restricted data processing, Meta gets LDU
    commands = _consent(_google(page))
    assert commands[-2:] == [
        ["consent", "update", {**DENIED, "analytics_storage": "granted"}],
        ["set", "restricted_data_processing", True],
    ]
    assert _meta(page)[-1] == LDU
