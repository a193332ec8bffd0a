"""A choice the API has not acknowledged is kept, said to be unsaved, sent again and never
allowed to expire into "not opted out"; choices reach the API one at a time, in order.

The consent API is FakeConsentApi (Playwright routing) told to fail, hold or refuse POSTs the
way a throttled, failing or slow API would (503, an expired identity token, a POST in flight).
"""

import datetime
import json

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from .conftest import (
    SALE_SHARE,
    BrowserFactory,
    FakeConsentApi,
    ad_tag_ran,
    decode_gpp,
    gpp_ping,
    partner_pixel_ran,
    serve_logged_in_page,
    serve_page,
    wait_until_ready,
)

pytestmark = pytest.mark.browser

ALL_OUT = dict.fromkeys(SALE_SHARE, True)
TOKEN = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJjdXN0LTQyIiwiZXhwIjoxfQ.c2lnbmF0dXJl"  # expired


def _open(context: BrowserContext, url: str) -> Page:
    page = context.new_page()
    page.goto(url)
    wait_until_ready(page)
    return page


def _status(page: Page):  # type: ignore[no-untyped-def]
    return page.locator("#optout-bridge [data-optout-status]")


def _opt_out_of_all(page: Page) -> None:
    """Clicks "Opt out of all" and waits until its POST has been answered (or failed)."""
    with page.expect_request_finished(lambda r: '"sale":true' in (r.post_data or "")):
        page.locator("#optout-bridge").get_by_role("button", name="Opt out of all").click()


def _cookie(context: BrowserContext, name: str) -> str | None:
    return next((c["value"] for c in context.cookies() if c["name"] == name), None)


def test_an_opt_out_the_api_did_not_take_is_shown_unsaved_and_sent_again_with_its_key(
    new_context: BrowserFactory, static_site: str
) -> None:
    # Given a first visit while the API answers every POST 503
    context = new_context()
    api = FakeConsentApi(post_status=503)
    api.install(context)
    page = _open(context, f"{static_site}/index.html")

    # When the visitor opts out of all
    _opt_out_of_all(page)

    # Then the page applies it but says it is not saved yet
    expect(_status(page)).to_have_text("Not saved yet, retrying")
    assert page.evaluate("() => window.optoutBridge.state().optOut.sale") is True

    # When the API recovers and the visitor opens the next page
    api.post_status = None
    page.reload()
    wait_until_ready(page)

    # Then the same choice is sent again with the same Idempotency-Key, and only then is it done
    expect(_status(page)).to_have_text("Opted out")
    assert api.posts[-1]["opt_out"] == ALL_OUT
    assert len({key for key, _ in api.received}) == 1
    assert len(api.received) >= 2


def test_an_unsaved_opt_out_never_expires_into_allowed(
    new_context: BrowserFactory, static_site: str
) -> None:
    # Given a visitor who opted out of all while the API refused every POST with 503
    context = new_context()
    now = datetime.datetime.now(datetime.UTC)
    context.clock.install(time=now)
    api = FakeConsentApi(post_status=503)
    api.install(context)
    page = context.new_page()
    page.goto(f"{static_site}/index.html")
    page.evaluate("() => window.optoutBridge.ready")  # (wait_for_function needs real timers)
    _opt_out_of_all(page)

    # When an hour has passed and the API (which never got the choice) says "not opted out"
    context.clock.set_system_time(now + datetime.timedelta(hours=1))
    page.reload()
    page.evaluate("() => window.optoutBridge.ready")

    # Then no gated tag runs, every signal still says opted out, and the page says unsaved
    assert not ad_tag_ran(page)
    assert not partner_pixel_ran(page)
    usnat = decode_gpp(gpp_ping(page)["gppString"])["usnat"]
    assert (usnat["SaleOptOut"], usnat["SharingOptOut"], usnat["TargetedAdvertisingOptOut"]) == (
        1,
        1,
        1,
    )
    assert _cookie(context, "usprivacy") == "1YYN"
    expect(_status(page)).to_contain_text("Not saved yet")


def test_an_expired_identity_token_does_not_cost_the_device_its_opt_out(
    new_context: BrowserFactory, static_site: str
) -> None:
    # Given a logged-in page whose identity token has expired (the API answers 422 invalid_token)
    context = new_context()
    api = FakeConsentApi(expired_tokens=True)
    api.install(context)
    account = serve_logged_in_page(context, static_site, TOKEN)
    page = _open(context, account)

    # When the visitor opts out of all
    _opt_out_of_all(page)

    # Then the same choice is posted again without the token and recorded for the device
    expect(_status(page)).to_have_text("Opted out")
    assert api.posts[-1]["opt_out"] == ALL_OUT
    assert "identity_token" not in api.posts[-1]


def test_a_refused_token_on_load_does_not_cost_the_loads_gpc_signal(
    new_context: BrowserFactory, static_site: str
) -> None:
    # Given a GPC browser on a logged-in page whose token the API refuses (expired, or used)
    context = new_context(gpc=True)
    api = FakeConsentApi(expired_tokens=True)
    api.install(context)
    account = serve_logged_in_page(context, static_site, TOKEN)

    # When the page loads
    _open(context, account)

    # Then the load's post is sent again without the token (the API recorded only that one),
    # and the GPC signal is recorded with it
    assert [("identity_token" in p, p.get("gpc")) for p in api.posts] == [(False, True)]
    assert len(api.received) == 2


def test_a_choice_sent_while_the_loads_post_used_the_token_is_sent_again_without_it(
    new_context: BrowserFactory, static_site: str
) -> None:
    # Given a logged-in page whose load post (carrying the one-use token) is still in flight
    context = new_context()
    api = FakeConsentApi(hold_posts=True, single_use_tokens=True)
    api.install(context)
    page = context.new_page()
    page.goto(serve_logged_in_page(context, static_site, TOKEN))
    _held(page, api, 1)

    # When the visitor opts out meanwhile (the choice goes with the token too), and the API
    # takes the load's post first
    page.evaluate("(c) => { window.optoutBridge.choose(c); }", ALL_OUT)
    _held(page, api, 2)
    api.hold_posts = False
    load, choice = api.held
    api.answer(load)
    with page.expect_request_finished(lambda r: r.url.endswith("/v1/consent")):
        api.answer(choice)  # refused: the token was used

    # Then the choice is sent again without the token and recorded
    expect(_status(page)).to_have_text("Opted out")
    assert api.posts[-1]["opt_out"] == ALL_OUT
    assert "identity_token" not in api.posts[-1]


def _sale_opt_out_in_flight(
    new_context: BrowserFactory, site: str
) -> tuple[BrowserContext, FakeConsentApi, Page]:
    """A page whose opt-out of sale the fake API holds, unanswered."""
    context = new_context()
    api = FakeConsentApi(hold_posts=True)
    api.install(context)
    page = _open(context, f"{site}/index.html")
    with page.expect_request(lambda r: r.url.endswith("/v1/consent") and r.method == "POST"):
        page.evaluate("() => { window.optoutBridge.choose({sale: true}); }")
    _held(page, api, 1)
    return context, api, page


def _held(page: Page, api: FakeConsentApi, count: int) -> None:
    """Waits for `count` POSTs held (the route handler runs as Playwright dispatches it)."""
    for _ in range(100):
        if len(api.held) >= count:
            return
        page.wait_for_timeout(50)
    raise AssertionError(f"{len(api.held)} POSTs held, expected {count}")


def test_a_second_choice_waits_for_the_first_and_reaches_the_api_last(
    new_context: BrowserFactory, static_site: str
) -> None:
    # Given a visitor whose first choice (allow) is still in flight
    context = new_context()
    api = FakeConsentApi(hold_posts=True)
    api.install(context)
    page = _open(context, f"{static_site}/index.html")
    banner = page.locator("#optout-bridge")
    with page.expect_request(lambda r: r.url.endswith("/v1/consent") and r.method == "POST"):
        banner.get_by_role("button", name="Allow").click()

    # When they change their mind and opt out of all before the first has been answered
    page.evaluate("() => window.optoutBridge.open()")
    banner.get_by_role("button", name="Opt out of all").click()
    page.wait_for_timeout(300)  # give an eager banner the chance to send the second at once
    sent_while_held = len(api.received)
    api.hold_posts = False
    with page.expect_request_finished(lambda r: r.url.endswith("/v1/consent")):
        api.answer(api.held.pop())

    # Then the second was sent only after the first was answered: it arrives, and is applied, last
    expect(_status(page)).to_have_text("Opted out")
    assert sent_while_held == 1
    assert [body["opt_out"] for _, body in api.received] == [
        dict.fromkeys(SALE_SHARE, False),
        ALL_OUT,
    ]


def test_an_unconfirmed_allow_merged_into_a_queued_opt_out_lifts_none_of_it(
    new_context: BrowserFactory, static_site: str
) -> None:
    # Given a first choice still in flight, and an opt-out of all queued behind it
    _, api, page = _sale_opt_out_in_flight(new_context, static_site)
    page.evaluate("(c) => { window.optoutBridge.choose(c); }", ALL_OUT)

    # When an unconfirmed "allow" comes before the queued one is sent (a stale tab's
    # first-visit banner does this)
    page.evaluate("(c) => { window.optoutBridge.choose(c); }", dict.fromkeys(SALE_SHARE, False))

    # Then the queued opt-out keeps every purpose, as the API would read that "allow"
    api.hold_posts = False
    with page.expect_request_finished(lambda r: r.url.endswith("/v1/consent")):
        api.answer(api.held.pop())
    expect(_status(page)).to_have_text("Opted out")
    assert [body["opt_out"] for _, body in api.received][-1] == ALL_OUT


def test_a_late_answer_to_an_entry_another_tab_completed_keeps_a_newer_refusal(
    new_context: BrowserFactory, static_site: str
) -> None:
    # Given a tab whose opt-out of sale is in flight, slowly
    context, api, slow = _sale_opt_out_in_flight(new_context, static_site)
    late = api.held.pop()
    # and a second tab that sends the same entry (its key) and gets it acknowledged, then
    # has a newer opt-out refused by the API for good
    api.hold_posts = False
    page = _open(context, f"{static_site}/index.html")
    expect(_status(page)).to_have_text("Opted out of sale")
    api.post_status, api.post_refused = 422, True
    page.evaluate("(c) => { window.optoutBridge.choose(c); }", ALL_OUT)
    expect(_status(page)).to_have_text("Your choice could not be saved")

    # When the first tab's slow answer finally arrives
    api.post_status, api.post_refused = None, False
    with slow.expect_request_finished(lambda r: r.url.endswith("/v1/consent")):
        api.answer(late)
    slow.wait_for_timeout(300)

    # Then the refusal stands in the shared local copy and on a new page
    fresh = _open(context, f"{static_site}/index.html")
    expect(_status(fresh)).to_have_text("Your choice could not be saved")
    assert fresh.evaluate("() => JSON.parse(localStorage.getItem('optout_local')).r") is True


def test_a_tab_opened_before_the_first_choice_stops_showing_the_first_visit_banner(
    new_context: BrowserFactory, static_site: str
) -> None:
    # Given a tab showing the first-visit banner
    context = new_context()
    api = FakeConsentApi()
    api.install(context)
    stale = _open(context, f"{static_site}/index.html")
    expect(stale.locator("#optout-bridge").get_by_role("button", name="Allow")).to_be_visible()

    # When the visitor opts out of all in another tab
    page = _open(context, f"{static_site}/index.html")
    _opt_out_of_all(page)
    expect(_status(page)).to_have_text("Opted out")

    # Then the first tab shows the choices button, not an "Allow" that would answer again
    expect(stale.locator("#optout-bridge").get_by_role("button", name="Allow")).to_have_count(0)
    assert stale.evaluate("() => window.optoutBridge.state().optOut.sale") is True


def test_an_unconfirmed_opt_in_saved_when_the_state_was_unreadable_lifts_nothing(
    new_context: BrowserFactory, static_site: str
) -> None:
    # Given a visitor opted out of everything whose state cannot be read on this page
    context = new_context()
    api = FakeConsentApi(opt_out=dict(ALL_OUT), unavailable=True)
    api.install(context)
    page = context.new_page()
    page.goto(f"{static_site}/index.html")
    page.evaluate("() => window.optoutBridge.ready")

    # When they save the panel as it shows (every box unticked: nothing confirmed)
    banner = page.locator("#optout-bridge")
    banner.get_by_role("button", name="Your Privacy Choices").click()
    expect(banner.get_by_role("dialog")).to_contain_text("We could not load your saved choices")
    with page.expect_request_finished(lambda r: r.url.endswith("/v1/consent")):
        banner.get_by_role("button", name="Save choices").click()

    # Then on the next page, with the state readable again, the API's opt-out holds
    api.unavailable = False
    page.reload()
    wait_until_ready(page)
    assert page.evaluate("() => window.optoutBridge.state().optOut") == {
        **ALL_OUT,
        "limit_sensitive": False,
    }
    assert not ad_tag_ran(page)
    assert not partner_pixel_ran(page)


def test_the_usprivacy_cookie_keeps_its_opted_out_value_while_the_state_cannot_be_read(
    new_context: BrowserFactory, static_site: str
) -> None:
    # Given a browser whose usprivacy cookie says opted out (1YYN) from an earlier page
    context = new_context()
    context.add_cookies([{"name": "usprivacy", "value": "1YYN", "url": static_site}])
    api = FakeConsentApi(unavailable=True)
    api.install(context)

    # When a page loads and the consent state cannot be read
    page = context.new_page()
    page.goto(f"{static_site}/index.html")
    page.evaluate("() => window.optoutBridge.ready")

    # Then the cookie was never turned into "not opted out"
    assert _cookie(context, "usprivacy") == "1YYN"


def test_a_very_long_page_path_is_cut_to_what_the_api_accepts(
    new_context: BrowserFactory, static_site: str
) -> None:
    # Given a single-page app whose path is longer than the API's 2048-character page_url
    context = new_context()
    api = FakeConsentApi()
    api.install(context)
    url = f"{static_site}/app/{'a' * 2100}"
    serve_page(
        context,
        url,
        '<!doctype html><html lang="en"><head><title>App</title>'
        '<script src="/dist/banner.min.js"></script></head><body><main>App</main></body></html>',
    )
    page = _open(context, url)

    # When the visitor opts out of all
    _opt_out_of_all(page)

    # Then page_url is the page's address cut to 2048 characters
    assert api.posts[-1]["page_url"] == url[:2048]


def test_an_email_in_the_page_path_is_never_kept_or_sent(
    new_context: BrowserFactory, static_site: str
) -> None:
    # Given an account page whose path holds the visitor's email, and an API that is down
    context = new_context()
    api = FakeConsentApi(post_status=503)
    api.install(context)
    url = f"{static_site}/account/jane.doe@example.com/orders"
    serve_page(
        context,
        url,
        '<!doctype html><html lang="en"><head><title>Orders</title>'
        '<script src="/dist/banner.min.js"></script></head><body><main>Orders</main></body></html>',
    )
    page = _open(context, url)

    # When the visitor opts out of all (the choice waits in the outbox)
    _opt_out_of_all(page)
    expect(_status(page)).to_have_text("Not saved yet, retrying")

    # Then neither the outbox nor the POST holds the email: its path segment is redacted
    stored = page.evaluate("() => localStorage.getItem('optout_outbox')")
    assert "example.com/orders" not in stored and "jane.doe" not in stored
    assert api.received[-1][1]["page_url"] == f"{static_site}/account/(redacted)/orders"


def test_an_unsaved_choice_is_sent_again_while_the_page_stays_open(
    new_context: BrowserFactory, static_site: str
) -> None:
    # Given a visitor whose opt-out got a 503
    context = new_context()
    api = FakeConsentApi(post_status=503)
    api.install(context)
    page = _open(context, f"{static_site}/index.html")
    _opt_out_of_all(page)
    expect(_status(page)).to_have_text("Not saved yet, retrying")

    # When the API recovers and the visitor stays on the page
    api.post_status = None

    # Then the banner sends it again by itself (back-off) and shows it done
    expect(_status(page)).to_have_text("Opted out")
    assert api.posts[-1]["opt_out"] == ALL_OUT


@pytest.mark.parametrize(
    "api_shape",
    [False, True],
    ids=["a firewall's 403 page", "the API's own 403 (the edge's origin secret rotating)"],
)
def test_a_403_is_retried_not_dropped(
    new_context: BrowserFactory, static_site: str, api_shape: bool
) -> None:
    # Given a 403 to the banner's POST: a firewall's page (a rate-based block), or the API's
    # own JSON one (with the edge on, the function answers it to a request without the
    # edge's origin secret while that secret rotates, for minutes)
    context = new_context()
    api = FakeConsentApi(post_status=403, post_refused=api_shape)
    api.install(context)
    page = _open(context, f"{static_site}/index.html")

    # When the visitor opts out of all
    _opt_out_of_all(page)

    # Then the choice is kept and said to be unsaved, not dropped as refused
    expect(_status(page)).to_have_text("Not saved yet, retrying")

    # And when the block lifts, the next page sends it again with the same key and it is saved
    api.post_status = None
    page.reload()
    wait_until_ready(page)
    expect(_status(page)).to_have_text("Opted out")
    assert api.posts[-1]["opt_out"] == ALL_OUT
    assert len({key for key, _ in api.received}) == 1


def test_a_choice_the_api_refuses_for_good_is_said_to_be_unsaved_and_not_retried(
    new_context: BrowserFactory, static_site: str
) -> None:
    # Given an API that refuses the banner's POST with its own JSON error (a 422)
    context = new_context()
    api = FakeConsentApi(post_status=422, post_refused=True)
    api.install(context)
    page = _open(context, f"{static_site}/index.html")

    # When the visitor opts out of all
    _opt_out_of_all(page)

    # Then the page says the choice could not be saved, and does not send it again
    expect(_status(page)).to_have_text("Your choice could not be saved")
    page.reload()
    wait_until_ready(page)
    assert len(api.received) == 1


def test_a_refused_opt_out_is_still_said_unsaved_and_applied_on_later_pages(
    new_context: BrowserFactory, static_site: str
) -> None:
    # Given a visitor whose opt-out the API refused with its own JSON error
    context = new_context()
    now = datetime.datetime.now(datetime.UTC)
    context.clock.install(time=now)
    api = FakeConsentApi(post_status=422, post_refused=True)
    api.install(context)
    page = context.new_page()
    page.goto(f"{static_site}/index.html")
    page.evaluate("() => window.optoutBridge.ready")  # (wait_for_function needs real timers)
    _opt_out_of_all(page)

    # When an hour has passed and the API (which never stored it) says "not opted out"
    context.clock.set_system_time(now + datetime.timedelta(hours=1))
    page.reload()
    page.evaluate("() => window.optoutBridge.ready")

    # Then the page still says the choice could not be saved, and the opt-out still applies
    expect(_status(page)).to_have_text("Your choice could not be saved")
    assert not ad_tag_ran(page)
    assert not partner_pixel_ran(page)
    assert _cookie(context, "usprivacy") == "1YYN"


def test_a_stale_tab_does_not_lift_an_opt_out_still_unsaved(
    new_context: BrowserFactory, static_site: str
) -> None:
    # Given a tab opened first, and a second tab whose opt-out the API keeps answering 503
    context = new_context()
    api = FakeConsentApi(post_status=503)
    api.install(context)
    stale = _open(context, f"{static_site}/index.html")
    page = _open(context, f"{static_site}/index.html")
    _opt_out_of_all(page)
    expect(_status(page)).to_have_text("Not saved yet, retrying")

    # When the first tab's panel is opened and closed, then a new page opens
    stale.evaluate("() => window.optoutBridge.open()")
    stale.locator("#optout-bridge").get_by_role("button", name="Close").click()
    fresh = _open(context, f"{static_site}/index.html")

    # Then the new page still applies the opt-out: no gated tag, every signal opted out
    assert fresh.evaluate("() => window.optoutBridge.state().optOut.sale") is True
    assert not ad_tag_ran(fresh)
    assert not partner_pixel_ran(fresh)
    usnat = decode_gpp(gpp_ping(fresh)["gppString"])["usnat"]
    assert usnat["SaleOptOut"] == 1
    expect(_status(fresh)).to_contain_text("Not saved yet")


def test_an_outbox_holding_an_opt_out_applies_it_without_the_local_copy(
    new_context: BrowserFactory, static_site: str
) -> None:
    # Given an opt-out still unsaved in the outbox whose local copy is gone
    context = new_context()
    api = FakeConsentApi(post_status=503)
    api.install(context)
    page = _open(context, f"{static_site}/index.html")
    _opt_out_of_all(page)
    page.evaluate("() => localStorage.removeItem('optout_local')")

    # When the next page opens
    page.reload()
    wait_until_ready(page)

    # Then the queued opt-out applies
    assert page.evaluate("() => window.optoutBridge.state().optOut.sale") is True
    assert not ad_tag_ran(page)


def test_a_slow_browser_clock_does_not_let_an_older_server_state_undo_an_opt_out(
    new_context: BrowserFactory, static_site: str
) -> None:
    # Given a browser whose clock is a year behind the API's, and an opt-out still in flight
    context = new_context()
    context.clock.install(time=datetime.datetime(2025, 1, 1, tzinfo=datetime.UTC))
    api = FakeConsentApi(hold_posts=True, updated_at="2025-11-29T10:00:00Z")
    api.install(context)
    page = context.new_page()
    page.goto(f"{static_site}/index.html")
    page.evaluate("() => window.optoutBridge.ready")  # (wait_for_function needs real timers)
    page.evaluate("() => window.optoutBridge.open()")
    with page.expect_request(lambda r: '"sale":true' in (r.post_data or "")):
        page.locator("#optout-bridge").get_by_role("button", name="Opt out of all").click()

    # When the next page reads a state (not opted out) stamped later than the browser's "now"
    page.reload()
    page.evaluate("() => window.optoutBridge.ready")

    # Then the opt-out still applies: no gated tag runs
    assert page.evaluate("() => window.optoutBridge.state().optOut.sale") is True
    assert not ad_tag_ran(page)
    assert not partner_pixel_ran(page)


ALL_IN = dict.fromkeys(SALE_SHARE, False)
ADS_OUT = {**dict.fromkeys(("sale", "share", "targeted_advertising"), True), "profiling": False}


def test_an_older_choice_unsaved_in_one_tab_is_not_sent_after_a_newer_one_from_another(
    new_context: BrowserFactory, static_site: str
) -> None:
    # Given a visitor opted out, who opted back in (confirmed) in tab A while A's link failed
    context = new_context()
    api = FakeConsentApi(opt_out=ALL_OUT)
    api.install(context)
    first = _open(context, f"{static_site}/index.html")
    first.route("**/v1/consent", lambda route: route.fulfill(status=503, body="down"))
    first.evaluate(f"() => window.optoutBridge.choose({json.dumps(ALL_IN)}, true)")
    expect(_status(first)).to_have_text("Not saved yet, retrying")

    # When they opt out of all in tab B, the API acknowledges it, and then A's link recovers
    second = _open(context, f"{static_site}/index.html")
    second.evaluate("() => window.optoutBridge.open()")
    _opt_out_of_all(second)
    expect(_status(second)).to_have_text("Opted out")
    first.unroute("**/v1/consent")
    first.evaluate("() => window.dispatchEvent(new Event('online'))")

    # Then tab A follows B: its older opt-in is not sent after B's opt-out
    expect(_status(first)).to_have_text("Opted out")
    assert api.posts[-1]["opt_out"] == ALL_OUT


def test_a_choice_already_sent_once_is_sent_again_with_its_key_before_a_newer_one(
    new_context: BrowserFactory, static_site: str
) -> None:
    # Given a visitor opted out, whose confirmed opt-back-in failed with no answer (it may
    # still reach the API later)
    context = new_context()
    api = FakeConsentApi(opt_out=ALL_OUT, post_status=0)
    api.install(context)
    page = _open(context, f"{static_site}/index.html")
    page.evaluate(f"() => window.optoutBridge.choose({json.dumps(ALL_IN)}, true)")
    expect(_status(page)).to_have_text("Not saved yet, retrying")
    first_key, first_body = api.received[0]

    # When they change their mind (opt out of sale, sharing and targeted ads again) and the
    # API recovers
    page.evaluate(f"() => window.optoutBridge.choose({json.dumps(ADS_OUT)}, true)")
    api.post_status = None
    page.evaluate("() => window.dispatchEvent(new Event('online'))")
    # (both acknowledged; the profiling opt-in waits for the API's state, review s26 F3)
    expect(_status(page)).to_have_text("Opted out · Opt-in saved, not applied yet")

    # Then the first try is sent again unchanged, with its own key, and the newer one after it
    keys = [key for key, _ in api.received]
    assert (keys[1], api.posts[0]) == (first_key, first_body)
    assert api.posts[-1]["opt_out"] == ADS_OUT
    assert keys[-1] != first_key


def test_another_tab_that_reads_a_newer_state_does_not_lift_this_tabs_opt_out(
    new_context: BrowserFactory, static_site: str
) -> None:
    # Given a tab that read "not opted out", then opted out of all (acknowledged)
    context = new_context()
    api = FakeConsentApi()
    api.install(context)
    first = _open(context, f"{static_site}/index.html")
    _opt_out_of_all(first)
    expect(_status(first)).to_have_text("Opted out")
    first.evaluate(
        "() => { window.__heard = new Promise((resolve) => addEventListener('storage',"
        " (event) => event.key === 'marker' && resolve())); }"
    )

    # When a second tab reads the API's newer state (it has the opt-out, so that tab removes
    # the local copy), and the first tab hears of it
    api.opt_out = ALL_OUT
    second = _open(context, f"{static_site}/index.html")
    second.evaluate("() => localStorage.setItem('marker', '1')")
    first.evaluate("() => window.__heard")

    # Then the first tab, whose own read is older, still applies the opt-out
    assert first.evaluate("() => window.optoutBridge.state().optOut.sale") is True
    assert first.evaluate("() => window.optoutBridge.state().uspString") == "1YYN"


def test_an_earlier_not_opted_out_usprivacy_cookie_says_opted_out_once_the_state_cannot_be_read(
    new_context: BrowserFactory, static_site: str
) -> None:
    # Given a browser whose usprivacy cookie says "not opted out" (1YNN) from an earlier page:
    # the person may have opted out elsewhere since (review s34 L3)
    context = new_context()
    context.add_cookies([{"name": "usprivacy", "value": "1YNN", "url": static_site}])
    api = FakeConsentApi(unavailable=True)
    api.install(context)

    # When a page loads and the consent state cannot be read
    page = context.new_page()
    page.goto(f"{static_site}/index.html")
    page.evaluate("() => window.optoutBridge.ready")

    # Then the cookie says what __uspapi says: opted out (fail closed), not the earlier "N"
    usp = page.evaluate(
        "() => new Promise((r) => window.__uspapi('getUSPData', 1, (d) => r(d.uspString)))"
    )
    assert usp == "1YYN"
    assert _cookie(context, "usprivacy") == "1YYN"
