"""The banner fails safe when an answer is not the API's, a post fails on a page that will not
be reloaded, or the browser blocks storage or cookies (review s18, F1-F5 and F7); the load
post's retries keep its key, count the resend without a refused token, and `ready` does not
wait for them (review s18 diff A5, A6).

The consent API is FakeConsentApi (Playwright routing); a route added after it answers the way
something that is not the API would (a CDN's HTML 200, a stub's JSON), then falls back to it.
"""

import datetime
import itertools
import json
import time
from collections.abc import Callable, Sized

import pytest
from playwright.sync_api import BrowserContext, Page, Route, expect

from .conftest import (
    SALE_SHARE,
    BrowserFactory,
    FakeConsentApi,
    ad_tag_ran,
    decode_gpp,
    gpp_call,
    gpp_ping,
    partner_pixel_ran,
    serve_logged_in_page,
    usp_data,
    wait_until_ready,
)

pytestmark = pytest.mark.browser

ALL_OUT = dict.fromkeys(SALE_SHARE, True)
# 200 answers from something that is not the API
NOT_THE_API = {
    "html": ("text/html", "<!doctype html><h1>Welcome</h1>"),
    "json without the answer's fields": ("application/json", '{"ok": true}'),
    "json with opt_out not an object": (
        "application/json",
        '{"request_id": "r", "device_id": "d", "opt_out": [], "gpc_honored": false}',
    ),
}
# GET answers 200 JSON that is not a consent state
NOT_A_STATE = {
    "no opt_out": {"device_id": "x"},
    "empty opt_out": {"device_id": "x", "opt_out": {}, "updated_at": None},
    "opt_out of strings": {"device_id": "x", "opt_out": dict.fromkeys(SALE_SHARE, "false")},
}
STORED_OPT_OUT = (  # this browser opted out of all a day ago (the API acknowledged it)
    "localStorage.setItem('optout_local', JSON.stringify({choices: {sale: true, share: true,"
    " targeted_advertising: true, profiling: true}, at: Date.now() - 864e5}));"
    "localStorage.setItem('optout_decided', '1');"
)


def _status(page: Page):  # type: ignore[no-untyped-def]
    return page.locator("#optout-bridge [data-optout-status]")


def _expect_honoured(page: Page) -> None:
    """The GPC signal's post was honoured: the button's status, then the open panel, say so
    (an open panel is not redrawn under the person's hands: it is opened after)."""
    expect(_status(page)).to_have_text("Opt-Out Request Honored")
    banner = page.locator("#optout-bridge")
    banner.get_by_role("button", name="Your Privacy Choices").click()
    expect(banner.locator("[data-optout-gpc]")).to_have_text("Opt-Out Request Honored")


def _posts(context: BrowserContext, answer: Callable[[Route, int], bool]) -> list[float]:
    """Routes POST /v1/consent through `answer(route, n)` (True: answered; False: the fake
    API answers); returns the arrival times of every POST."""
    times: list[float] = []

    def handle(route: Route) -> None:
        if route.request.method != "POST":
            route.fallback()
            return
        times.append(time.monotonic())
        if not answer(route, len(times)):
            route.fallback()

    context.route("**/v1/consent", handle)
    return times


def _until(page: Page, posts: Sized, count: int) -> None:
    """Waits until `count` POSTs arrived (route handlers run while Playwright waits; a loaded
    machine sends retries late, and sooner than the test looks: no fixed window)."""
    for _ in range(600):
        if len(posts) >= count:
            return
        page.wait_for_timeout(50)
    raise AssertionError(f"{len(posts)} POSTs arrived, expected {count}")


def _arrived(page: Page, posts: Sized, count: int) -> None:
    """`_until`, then 2 s, past a retry's Retry-After (1 s), for a further one to show."""
    _until(page, posts, count)
    page.wait_for_timeout(2_000)


def _get_answers(context: BrowserContext, body: dict[str, object]) -> None:
    def handle(route: Route) -> None:
        route.fulfill(status=200, content_type="application/json", body=json.dumps(body))

    context.route("**/v1/consent/*", handle)


@pytest.mark.parametrize("kind", NOT_THE_API)
def test_a_choice_answered_200_by_something_else_is_kept_unsaved_and_sent_again(
    new_context: BrowserFactory, static_site: str, kind: str
) -> None:
    # Given a first visit where POSTs are answered 200 by something that is not the API
    context = new_context()
    api = FakeConsentApi()
    api.install(context)
    content_type, body = NOT_THE_API[kind]
    broken = [True]

    def not_the_api(route: Route, _: int) -> bool:
        if broken[0]:
            route.fulfill(status=200, content_type=content_type, body=body)
        return broken[0]

    _posts(context, not_the_api)
    page = context.new_page()
    page.goto(f"{static_site}/index.html")
    wait_until_ready(page)

    # When the visitor opts out of all
    with page.expect_request_finished(lambda r: '"sale":true' in (r.post_data or "")):
        page.locator("#optout-bridge").get_by_role("button", name="Opt out of all").click()

    # Then the choice is not counted as saved: it stays in the outbox and the page says so
    expect(_status(page)).to_have_text("Not saved yet, retrying")
    outbox = page.evaluate("() => JSON.parse(localStorage.getItem('optout_outbox'))")
    assert [entry["o"] for entry in outbox] == [ALL_OUT]
    assert api.posts == []

    # When the API answers again and the visitor opens the next page
    broken[0] = False
    page.reload()
    wait_until_ready(page)

    # Then the same choice reaches the API and only then reads "Opted out"
    expect(_status(page)).to_have_text("Opted out")
    assert api.posts[-1]["opt_out"] == ALL_OUT
    assert page.evaluate("() => localStorage.getItem('optout_outbox')") == "[]"


@pytest.mark.parametrize("kind", NOT_A_STATE)
@pytest.mark.parametrize("visitor", ["stored opt-out", "webform-linked"])
def test_a_200_that_is_not_a_consent_state_is_a_failed_read(
    new_context: BrowserFactory, static_site: str, kind: str, visitor: str
) -> None:
    # Given a visitor opted out (in this browser, or through the webform: then only the API
    # knows) and a GET answered 200 with JSON that is not the API's consent state
    context = new_context()
    if visitor == "stored opt-out":
        context.add_init_script(STORED_OPT_OUT)
    FakeConsentApi(opt_out=ALL_OUT).install(context)
    _get_answers(context, NOT_A_STATE[kind])

    # When a page loads
    page = context.new_page()
    page.goto(f"{static_site}/index.html")
    page.evaluate("() => window.optoutBridge.ready")

    # Then the state is unknown (fail closed): no gated tag, no "Allow", Google stays denied
    assert page.evaluate("() => window.optoutBridge.state().known") is False
    assert not ad_tag_ran(page)
    assert not partner_pixel_ran(page)
    expect(page.locator("#optout-bridge").get_by_role("button", name="Allow")).to_have_count(0)
    consent = page.evaluate(
        "() => (window.dataLayer || []).filter((c) => c[0] === 'consent').map((c) => c[1])"
    )
    assert consent == ["default"]
    if visitor == "stored opt-out":  # and the stored opt-out is neither lifted nor deleted
        assert page.evaluate("() => window.optoutBridge.state().optOut.sale") is True
        stored = page.evaluate("() => JSON.parse(localStorage.getItem('optout_local'))")
        assert stored["choices"] == ALL_OUT


FAILURES: dict[str, Callable[[Route], None]] = {
    "503 Retry-After 1": lambda route: route.fulfill(
        status=503,
        headers={"Retry-After": "1"},
        content_type="application/json",
        body='{"error": {"code": "unavailable", "message": "not recorded", "field": null}}',
    ),
    "500": lambda route: route.fulfill(status=500, body="oops"),
    "429": lambda route: route.fulfill(status=429, headers={"Retry-After": "1"}, body="slow"),
    "network error": lambda route: route.abort("connectionreset"),
    "html 200": lambda route: route.fulfill(status=200, content_type="text/html", body="<p>"),
}


@pytest.mark.parametrize("failure", FAILURES)
def test_the_gpc_post_is_sent_again_with_its_key_on_the_same_page_after_a_failure(
    new_context: BrowserFactory, static_site: str, failure: str
) -> None:
    # Given a GPC browser whose first post fails
    context = new_context(gpc=True)
    FakeConsentApi().install(context)
    keys: list[str | None] = []
    retries: list[Route] = []

    def first_fails(route: Route, n: int) -> bool:
        keys.append(route.request.headers.get("idempotency-key"))
        if n == 1:
            FAILURES[failure](route)
        elif n == 2:  # the retry (1 s after Retry-After: 1, else 2 s): held until looked at
            retries.append(route)
        return n <= 2

    posts = _posts(context, first_fails)

    # When a page loads and stays open
    page = context.new_page()
    page.goto(f"{static_site}/index.html")
    wait_until_ready(page)
    # (ready does not wait for the retry's answer)
    assert page.evaluate("() => window.optoutBridge.state().gpcHonored") is False
    _until(page, posts, 2)
    retries.pop().fallback()

    # Then the signal is posted again on this page, with the first try's Idempotency-Key (that
    # try may have landed: the API answers the retry as the same request), and honoured there
    _expect_honoured(page)
    assert len(posts) == 2
    assert keys[0] and keys[1] == keys[0]  # review s18 A5: each try took a new key


def test_a_failing_gpc_post_is_sent_three_times_a_page_at_most(
    new_context: BrowserFactory, static_site: str
) -> None:
    # Given a GPC browser and an API answering every post 503 with Retry-After: 1
    context = new_context(gpc=True)
    FakeConsentApi().install(context)

    def always_503(route: Route, _: int) -> bool:
        FAILURES["503 Retry-After 1"](route)
        return True

    posts = _posts(context, always_503)

    # When a page loads and stays open well past the retries
    page = context.new_page()
    page.goto(f"{static_site}/index.html")
    wait_until_ready(page)
    _arrived(page, posts, 3)  # on a loaded machine each retry arrives later (no fixed window)

    # Then the signal was posted three times, Retry-After apart, and is still not honoured
    assert len(posts) == 3
    assert all(b - a >= 0.9 for a, b in itertools.pairwise(posts))
    page.locator("#optout-bridge").get_by_role("button", name="Your Privacy Choices").click()
    expect(page.locator("#optout-bridge [data-optout-gpc]")).to_have_text(
        "Global Privacy Control detected, not yet processed"
    )


TOKEN_REFUSED = json.dumps(
    {"error": {"code": "invalid_token", "message": "expired", "field": "identity_token"}}
)


def _logged_in_gpc_page(
    new_context: BrowserFactory,
    site: str,
    answer: Callable[[Route, int], bool],
    paused: bool = False,
) -> tuple[Page, list[tuple[str | None, dict[str, object]]]]:
    """A GPC browser's first logged-in page (its token and GPC go in the load post), POSTs
    routed through `answer`; returns the page and every POST's (Idempotency-Key, body).
    `paused`: the page's clock is stopped (`_pause`)."""
    context = new_context(gpc=True)
    if paused:
        _pause(context)
    FakeConsentApi(links_to=dict.fromkeys(SALE_SHARE, True)).install(context)
    sent: list[tuple[str | None, dict[str, object]]] = []

    def record(route: Route, n: int) -> bool:
        body = json.loads(route.request.post_data or "{}")
        sent.append((route.request.headers.get("idempotency-key"), body))
        return answer(route, n)

    _posts(context, record)
    account = serve_logged_in_page(context, site, "header.payload.signature")
    page = context.new_page()
    page.goto(account)
    return page, sent


def _pause(context: BrowserContext) -> None:
    """Stops the pages' clock (Playwright's clock API): no timer fires, a back-off's retry too,
    until the test moves it (`page.clock.resume()`)."""
    context.clock.install()
    context.clock.pause_at(datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=1))


def _refuse_token(route: Route) -> None:
    route.fulfill(status=422, content_type="application/json", body=TOKEN_REFUSED)


def test_the_resend_without_a_refused_token_takes_a_new_key_its_retries_keep_theirs(
    new_context: BrowserFactory, static_site: str
) -> None:
    # Given a logged-in GPC page whose load post fails (503), then has its token refused
    def fail_then_refuse(route: Route, n: int) -> bool:
        if n == 1:
            FAILURES["503 Retry-After 1"](route)
        elif n == 2:
            _refuse_token(route)
        return n <= 2

    # When the page loads
    page, sent = _logged_in_gpc_page(new_context, static_site, fail_then_refuse)

    # Then the retry kept the first try's key; the signal went again without the token under
    # a new key (a new body: the same key would be a 409) and was honoured
    _expect_honoured(page)
    (first, with_token), (retry, again), (resend, without) = sent
    assert first and retry == first and resend and resend != first
    assert with_token == again and with_token["identity_token"]
    assert "identity_token" not in without and without["gpc"] is True


def test_a_resend_without_the_token_counts_against_the_three_posts_a_page(
    new_context: BrowserFactory, static_site: str
) -> None:
    # Given a logged-in GPC page whose load post fails twice (503), then has its token refused
    def fail_fail_refuse(route: Route, n: int) -> bool:
        if n < 3:
            FAILURES["503 Retry-After 1"](route)
        elif n == 3:
            _refuse_token(route)
        return n <= 3

    # When the page loads and stays open past the retries
    page, sent = _logged_in_gpc_page(new_context, static_site, fail_fail_refuse)
    page.evaluate("() => window.optoutBridge.ready")
    _arrived(page, sent, 3)

    # Then 3 posts went, all with one key; none a 4th without the token (review s18 A5)
    assert len(sent) == 3
    assert len({key for key, _ in sent}) == 1


@pytest.mark.parametrize("logged_in", [False, True], ids=["gpc page", "first link"])
def test_ready_settles_at_the_load_posts_first_failure_and_its_retries_go_on(
    new_context: BrowserFactory, static_site: str, logged_in: bool
) -> None:
    # Given a GPC page whose load post fails once with Retry-After: 3, its clock stopped (the
    # retry cannot be sent until the test resumes it), and the retry held until looked at
    retries: list[Route] = []

    def first_fails(route: Route, n: int) -> bool:
        if n == 1:
            route.fulfill(status=503, headers={"Retry-After": "3"}, body="busy")
        elif n == 2:
            retries.append(route)
        return n <= 2

    posts: Sized
    if logged_in:  # a new browser's first logged-in page: the person opted out elsewhere
        page, posts = _logged_in_gpc_page(new_context, static_site, first_fails, paused=True)
    else:
        context = new_context(gpc=True)
        _pause(context)
        FakeConsentApi().install(context)
        posts = _posts(context, first_fails)
        page = context.new_page()
        page.goto(f"{static_site}/index.html")

    # When `ready` settles, Then it did not wait for the retry to be sent, nor its answer
    # (review s18 A6; no timer could fire): the state is known (the GPC page) or fail-closed
    # (the link is unknown)
    page.wait_for_function(
        "() => window.optoutBridge && (window.optoutBridge.ready.then(() => (window.__ready = 1)),"
        " window.__ready)"
    )
    assert len(posts) == 1
    assert page.evaluate("() => window.optoutBridge.state().known") is not logged_in

    # And the retry goes on once time moves: the signal is honoured, and the link's state applied
    page.clock.resume()
    _until(page, posts, 2)
    retries.pop().fallback()
    _expect_honoured(page)
    page.wait_for_function("() => window.optoutBridge.state().known")
    assert len(posts) == 2
    if logged_in:
        assert page.evaluate("() => window.optoutBridge.state().optOut.sale") is True


BLOCKED_STORAGE = (
    "for (const name of ['localStorage', 'sessionStorage'])"
    " Object.defineProperty(window, name, {get() {"
    " throw new DOMException('blocked', 'SecurityError'); }});"
)


def test_with_storage_blocked_an_unsaved_opt_out_survives_the_next_page(
    new_context: BrowserFactory, static_site: str
) -> None:
    # Given a browser that blocks storage (cookies work) and an API answering POSTs 503
    context = new_context()
    context.add_init_script(BLOCKED_STORAGE)
    api = FakeConsentApi(post_status=503)
    api.install(context)
    page = context.new_page()
    page.goto(f"{static_site}/index.html")
    wait_until_ready(page)

    # When the visitor opts out of all, and opens the next page while the API still fails
    with page.expect_request_finished(lambda r: '"sale":true' in (r.post_data or "")):
        page.locator("#optout-bridge").get_by_role("button", name="Opt out of all").click()
    expect(_status(page)).to_have_text("Not saved yet, retrying")
    first = {key for key, _ in api.received}
    # (the next page sends the cookie's opt-outs as a new entry, with a new key: README)
    with page.expect_request(
        lambda r: r.method == "POST" and r.headers.get("idempotency-key") not in first
    ) as resent:
        page.reload()
    page.evaluate("() => window.optoutBridge.ready")

    # Then the opt-out still applies there, unsaved, and no gated tag ran
    assert page.evaluate("() => window.optoutBridge.state().optOut") == {
        **ALL_OUT,
        "limit_sensitive": False,
    }
    assert not ad_tag_ran(page)
    assert not partner_pixel_ran(page)
    expect(_status(page)).to_have_text("Not saved yet, retrying")

    # And once the API answers, it is sent and saved
    api.post_status = None
    page.reload()
    wait_until_ready(page)
    expect(_status(page)).to_have_text("Opted out")
    assert api.posts[-1]["opt_out"] == ALL_OUT
    # (twice when the last page's back-off retry was taken while the reload cut off its answer)
    saved = len(api.posts)
    page.reload()
    wait_until_ready(page)
    assert len(api.posts) == saved  # not sent again once saved
    # ... and the saved page's posts (a retry's too) were one entry: one new Idempotency-Key
    # at most (the earlier pages' keys come late when a reload cut off their retry's answer;
    # none new if the last page's retry was acknowledged before it was left)
    before = first | {resent.value.headers.get("idempotency-key")}
    assert len({key for key, _ in api.received} - before) <= 1


def test_a_throwing_document_cookie_leaves_every_signal_defined(
    new_context: BrowserFactory, static_site: str
) -> None:
    # Given a document whose cookie throws (an opaque origin, such as a sandboxed frame)
    context = new_context()
    context.add_init_script(
        "const no = () => { throw new DOMException('cookie denied', 'SecurityError'); };"
        "Object.defineProperty(Document.prototype, 'cookie', {get: no, set: no});"
    )
    FakeConsentApi().install(context)

    # When a page loads
    page = context.new_page()
    page.goto(f"{static_site}/index.html")
    wait_until_ready(page)

    # Then __gpp, __uspapi, optoutBridge and Google's "denied" defaults exist
    assert page.evaluate(
        "() => [typeof window.__gpp, typeof window.__uspapi, typeof window.optoutBridge]"
    ) == ["function", "function", "object"]
    default = page.evaluate(
        "() => [...window.dataLayer].find((c) => c[0] === 'consent' && c[1] === 'default')[2]"
    )
    assert default["ad_storage"] == default["ad_user_data"] == "denied"


def test_the_state_says_opted_out_in_its_us_privacy_string_while_the_state_is_unknown(
    new_context: BrowserFactory, static_site: str
) -> None:
    # Given a person opted out through the webform (only the API knows) and a GET that fails
    context = new_context()
    FakeConsentApi(opt_out=ALL_OUT, unavailable=True).install(context)

    # When a page loads
    page = context.new_page()
    page.goto(f"{static_site}/index.html")
    page.evaluate("() => window.optoutBridge.ready")

    # Then state() gives the fail-closed US Privacy string, as __uspapi answers (never "1YNN")
    state = page.evaluate("() => window.optoutBridge.state()")
    assert (state["known"], state["uspString"]) == (False, "1YYN")
    assert usp_data(page) == {"version": 1, "uspString": "1YYN", "ok": True}
    # ... and __gpp, "not ready", never says "Did Not Opt Out" (2): its string, getField and
    # getSection say opted out (1), the limit on, as IAB's decoder reads them (review s26 F2)
    ping = gpp_ping(page)
    assert ping["signalStatus"] == "not ready"
    usnat = decode_gpp(ping["gppString"])["usnat"]
    opt_outs = ("SaleOptOut", "SharingOptOut", "TargetedAdvertisingOptOut")
    assert [usnat[name] for name in opt_outs] == [1, 1, 1]
    assert set(usnat["SensitiveDataProcessing"]) == {1}
    assert state["gppString"] == ping["gppString"]
    assert gpp_call(page, "getField", "usnat.SaleOptOut") == [1, True]
    assert gpp_call(page, "getSection", "usnat")[0][0]["SharingOptOut"] == 1
