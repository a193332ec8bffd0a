"""Banner and webform behaviour that needs no pipeline: the page is served from web/ on
loopback and the API is answered in the browser (FakeConsentApi, Playwright routing)."""

import json
import re
import time

import pytest
from playwright.sync_api import Dialog, Page, Route, expect

from .conftest import (
    SALE_SHARE,
    BrowserFactory,
    FakeConsentApi,
    ad_tag_ran,
    consent_posted,
    partner_pixel_ran,
    wait_until_ready,
)

pytestmark = pytest.mark.browser

SALE = "Opt out: Sale of my personal information"
LIMIT = "Limit the use of my sensitive personal information"
LABEL_PURPOSE = {SALE: "sale", LIMIT: "limit_sensitive"}


def test_gated_tags_stay_off_when_the_effective_state_is_unknown(
    new_context: BrowserFactory, static_site: str
) -> None:
    # Given the consent API cannot answer
    context = new_context()
    FakeConsentApi(unavailable=True).install(context)
    page = context.new_page()

    # When the shop loads
    page.goto(f"{static_site}/index.html")

    # Then banner.js gives up on the state, runs no gated tag, but still offers the choices
    choices = page.locator("#optout-bridge").get_by_role("button", name="Your Privacy Choices")
    expect(choices).to_be_visible()
    assert page.evaluate("() => window.optoutBridge.state().known") is False
    assert not ad_tag_ran(page)
    assert not partner_pixel_ran(page)


def test_per_purpose_choice_blocks_only_that_purpose(
    new_context: BrowserFactory, static_site: str
) -> None:
    # Given a first visit with every purpose allowed
    context = new_context()
    api = FakeConsentApi()
    api.install(context)
    page = context.new_page()
    page.goto(f"{static_site}/index.html")
    wait_until_ready(page)
    banner = page.locator("#optout-bridge")

    # When the visitor opens the choices, ticks only targeted advertising, using the keyboard
    banner.get_by_role("button", name="Choose").click()
    expect(banner.get_by_role("dialog", name="Your Privacy Choices")).to_be_visible()
    expect(banner.get_by_role("button", name="Opt out of all")).to_be_visible()
    box = banner.get_by_label("Opt out: Targeted advertising")
    box.focus()
    page.keyboard.press("Space")
    with consent_posted(page):
        banner.get_by_role("button", name="Save choices").click()

    # Then only that purpose is posted as opted out, and the next load runs the sale/share
    # pixel but not the targeted ad
    page.wait_for_function("() => window.optoutBridge.state().optOut.targeted_advertising")
    assert api.posts[-1]["opt_out"] == {
        "sale": False,
        "share": False,
        "targeted_advertising": True,
        "profiling": False,
        "limit_sensitive": False,
    }
    page.reload()
    wait_until_ready(page)
    assert not ad_tag_ran(page)
    assert partner_pixel_ran(page)
    expect(banner.locator("[data-optout-status]")).to_have_text("Opted out of targeted ads")


def test_webform_ties_error_text_to_the_fields_and_moves_focus(
    new_context: BrowserFactory, static_site: str
) -> None:
    # Given the webform
    page = new_context().new_page()
    page.goto(f"{static_site}/privacy.html")
    email = page.get_by_label("Email address")

    # When it is submitted empty from the keyboard
    email.focus()
    page.keyboard.press("Enter")

    # Then the error is announced, tied to the field by aria-describedby, and focus is there
    message = "Enter an email address, a phone number or a customer number."
    expect(page.get_by_role("alert")).to_contain_text(message)
    expect(email).to_have_attribute("aria-invalid", "true")
    expect(email).to_be_focused()
    described_by = email.get_attribute("aria-describedby") or ""
    assert "email-error" in described_by.split()
    expect(page.locator("#email-error")).to_have_text(message)


def test_webform_shows_the_api_error_on_the_field_it_names(
    new_context: BrowserFactory, static_site: str
) -> None:
    # Given an API that refuses the phone number
    context = new_context()

    def refuse(route: Route) -> None:
        error = {
            "error": {"code": "invalid_field", "message": "not a phone number", "field": "phone"}
        }
        route.fulfill(status=422, content_type="application/json", body=json.dumps(error))

    context.route("**/v1/opt-out", refuse)
    page = context.new_page()
    page.goto(f"{static_site}/privacy.html")

    # When the visitor submits a phone number the API cannot use
    page.get_by_label("Phone number").fill("+1 000 000 0000")
    page.get_by_role("button", name="Submit opt-out request").click()

    # Then the API's message sits under the phone field
    expect(page.locator("#phone-error")).to_have_text("not a phone number")
    expect(page.get_by_label("Phone number")).to_have_attribute("aria-invalid", "true")


def test_webform_shows_a_server_message_as_text_never_as_markup(
    new_context: BrowserFactory, static_site: str
) -> None:
    # Given an API (or anything between) answering an error message that holds markup
    context = new_context()
    message = '<img src="x" onerror="window.__injected = true">not a phone number'

    def refuse(route: Route) -> None:
        error = {"error": {"code": "invalid_field", "message": message, "field": "phone"}}
        route.fulfill(status=422, content_type="application/json", body=json.dumps(error))

    context.route("**/v1/opt-out", refuse)
    page = context.new_page()
    page.goto(f"{static_site}/privacy.html")

    # When the visitor submits
    page.get_by_label("Phone number").fill("+1 415 555 0132")
    page.get_by_role("button", name="Submit opt-out request").click()

    # Then the message is shown, as the text it is, and nothing it holds ran
    expect(page.locator("#phone-error")).to_have_text(message)
    expect(page.get_by_role("alert").get_by_role("link")).to_have_text(message)
    assert page.locator("#form-errors img").count() == 0
    assert page.evaluate("() => window.__injected") is None


def test_webform_limit_choice_is_unticked_by_default_and_sent_when_ticked(
    new_context: BrowserFactory, static_site: str
) -> None:
    # Given the webform, whose sale/share purposes are ticked and the limit is not
    context = new_context()
    FakeConsentApi().install(context)
    sent: list[dict[str, object]] = []

    def accept(route: Route) -> None:
        sent.append(json.loads(route.request.post_data or "{}"))
        answer = {"request_id": "6b1f0c3e-2d4a-4b5c-9e8f-7a6b5c4d3e2f", "status": "received",
                  "received_at": "2026-11-29T03:20:00.123Z", "deadline": "2026-12-18"}  # fmt: skip
        route.fulfill(status=202, content_type="application/json", body=json.dumps(answer))

    context.route("**/v1/opt-out", accept)
    page = context.new_page()
    page.goto(f"{static_site}/privacy.html")
    wait_until_ready(page)
    limit = page.get_by_role("group", name="Limit the use of my sensitive personal information")
    expect(limit.get_by_role("checkbox")).not_to_be_checked()

    # When the visitor gives an email, ticks the limit too and submits
    page.get_by_label("Email address").fill("jane@example.com")
    limit.get_by_role("checkbox").check()
    page.get_by_role("button", name="Submit opt-out and limit request").click()

    # Then the request lists the limit beside the four, and this browser applies it at once
    expect(page.locator("#result")).to_be_visible()
    assert sent[0]["purposes"] == [*SALE_SHARE, "limit_sensitive"]
    assert page.evaluate("() => window.optoutBridge.state().optOut.limit_sensitive") is True


def test_opting_back_in_takes_a_second_confirming_step(
    new_context: BrowserFactory, static_site: str
) -> None:
    # Given a browser opted out of sale
    context = new_context()
    api = FakeConsentApi(opt_out={"sale": True})
    api.install(context)
    page = context.new_page()
    page.goto(f"{static_site}/index.html")
    wait_until_ready(page)
    banner = page.locator("#optout-bridge")
    banner.get_by_role("button", name="Your Privacy Choices").click()
    banner.get_by_label("Opt out: Sale of my personal information").uncheck()

    # When the visitor saves but declines the confirmation
    page.once("dialog", lambda dialog: dialog.dismiss())
    banner.get_by_role("button", name="Save choices").click()

    # Then nothing is recorded and sale stays opted out
    assert api.posts == []
    assert page.evaluate("() => window.optoutBridge.state().optOut.sale") is True

    # When they save again and confirm
    page.once("dialog", lambda dialog: dialog.accept())
    with consent_posted(page):
        banner.get_by_role("button", name="Save choices").click()

    # Then the opt-in is recorded, and the API is told it was confirmed
    assert api.posts[-1]["opt_out"]["sale"] is False
    assert api.posts[-1]["confirm_opt_in"] is True
    # ... but it waits for the API's state: never less opted out than the state (review s26
    # F3), the person told so; the sale/share pixel stays off
    status = banner.locator("[data-optout-status]")
    expect(status).to_have_text("Opted out of sale · Opt-in saved, not applied yet")
    assert page.evaluate("() => window.optoutBridge.state().optOut.sale") is True
    assert not partner_pixel_ran(page)

    # When the state still says opted out a minute later, and past the 10 minutes the banner
    # keeps an acknowledged choice (a verified, linked person's opt-out holds it: sticky)
    for minutes in (2, 11):
        _acknowledged_ago(page, minutes * 60_000)
        page.reload()
        wait_until_ready(page)
        # Then nothing sells or shares, and the person is told why their opt-in did not apply
        expect(status).to_have_text(
            "Opted out of sale · Opt-in not applied: a linked account opted out"
        )
        assert page.evaluate("() => window.optoutBridge.state().optOut.sale") is True
        assert not partner_pixel_ran(page)

    # When the state has the opt-in (an unlinked device's: the resolver ran), the next page
    # applies it and says nothing more
    api.opt_out = {}
    page.reload()
    wait_until_ready(page)
    expect(status).to_have_text("")
    assert page.evaluate("() => window.optoutBridge.state().optOut.sale") is False
    assert partner_pixel_ran(page)
    assert page.evaluate("() => localStorage.getItem('optout_local')") is None


def test_an_acknowledged_opt_in_the_state_lacks_shows_unticked_and_is_not_reversed(
    new_context: BrowserFactory, static_site: str
) -> None:
    # Given a visitor who opted out of sale in the panel, and the API's state has it
    context = new_context()
    api = FakeConsentApi()
    api.install(context)
    page = context.new_page()
    page.goto(f"{static_site}/index.html")
    wait_until_ready(page)
    banner = page.locator("#optout-bridge")
    banner.get_by_role("button", name="Choose").click()
    banner.get_by_label("Opt out: Sale of my personal information").check()
    with consent_posted(page):
        banner.get_by_role("button", name="Save choices").click()
    api.opt_out = {"sale": True}
    page.reload()
    wait_until_ready(page)

    # When they opt back in (confirmed, acknowledged) while the state still says opted out
    # (the state read not refreshed yet, or a linked email's opt-out holding it)
    banner.get_by_role("button", name="Your Privacy Choices").click()
    banner.get_by_label("Opt out: Sale of my personal information").uncheck()
    page.once("dialog", lambda dialog: dialog.accept())
    with consent_posted(page):
        banner.get_by_role("button", name="Save choices").click()
    status = banner.locator("[data-optout-status]")
    expect(status).to_have_text("Opted out of sale · Opt-in saved, not applied yet")

    # Then the panel, reopened, shows their choice: sale not ticked, with the note
    banner.get_by_role("button", name="Your Privacy Choices").click()
    sale = banner.get_by_label("Opt out: Sale of my personal information")
    expect(sale).not_to_be_checked()
    expect(banner.get_by_role("dialog")).to_contain_text("Opt-in saved, not applied yet")
    # ... while the page still enforces the state's opt-out (fail closed)
    assert page.evaluate("() => window.optoutBridge.state().optOut.sale") is True
    assert not partner_pixel_ran(page)

    # When they change another purpose and save (no opt-in: no confirmation is asked; a
    # dialog would be dismissed and nothing posted)
    banner.get_by_label("Opt out: Profiling").check()
    with consent_posted(page):
        banner.get_by_role("button", name="Save choices").click()

    # Then the post opts out of profiling and does not opt out of sale again (review s27 R1)
    assert api.posts[-1]["opt_out"]["profiling"] is True
    assert api.posts[-1]["opt_out"].get("sale") is not True
    assert "confirm_opt_in" not in api.posts[-1]
    # ... an unconfirmed post carries every box (the API leaves its `false`s out)
    assert api.posts[-1]["opt_out"] == {
        **dict.fromkeys(SALE_SHARE, False),
        "profiling": True,
        "limit_sensitive": False,
    }
    # ... and on a page read two minutes later (the state still opted out: a linked account's
    # opt-out holds it) the panel still shows the opt-in, with that reason
    _acknowledged_ago(page, 120_000)
    page.reload()
    wait_until_ready(page)
    banner.get_by_role("button", name="Your Privacy Choices").click()
    expect(sale).not_to_be_checked()
    expect(banner.get_by_role("dialog")).to_contain_text(
        "Opt-in not applied: a linked account opted out"
    )
    expect(banner.get_by_label("Opt out: Profiling")).to_be_checked()
    assert page.evaluate("() => window.optoutBridge.state().optOut.sale") is True


def _acknowledged_ago(page: Page, ms: int) -> None:
    """As if the choices kept here were acknowledged `ms` ago (their opt-in's time too). It
    first waits until the outbox is empty: the banner stores an acknowledgement's time in
    the task that handles the answer, which can run after the test saw the response (a late
    one overwrote the time set here, under load in CI)."""
    page.wait_for_function(
        "() => !JSON.parse(localStorage.getItem('optout_outbox') || '[]').length"
    )
    page.evaluate(
        "(ms) => { const local = JSON.parse(localStorage.getItem('optout_local'));"
        " local.at = Date.now() - ms; if ('i' in local) local.i = local.at;"
        " localStorage.setItem('optout_local', JSON.stringify(local)); }",
        ms,
    )


def _held_opt_in_of_sale(page: Page, api: FakeConsentApi, extra: tuple[str, ...] = ()) -> None:
    """The shop opted out of sale (and `extra`) in the panel, the state has it, then opted back
    in to sale (confirmed, acknowledged) while the state still says opted out: held."""
    wait_until_ready(page)
    banner = page.locator("#optout-bridge")
    banner.get_by_role("button", name="Choose").click()
    for label in (SALE, *extra):
        banner.get_by_label(label).check()
    with consent_posted(page):
        banner.get_by_role("button", name="Save choices").click()
    api.opt_out = {"sale": True, **{LABEL_PURPOSE[label]: True for label in extra}}
    page.reload()
    wait_until_ready(page)
    banner.get_by_role("button", name="Your Privacy Choices").click()
    banner.get_by_label(SALE).uncheck()
    page.once("dialog", lambda dialog: dialog.accept())
    with consent_posted(page):
        banner.get_by_role("button", name="Save choices").click()
    assert api.posts[-1]["opt_out"]["sale"] is False
    assert api.posts[-1]["confirm_opt_in"] is True


def test_a_confirmed_save_of_another_purpose_leaves_a_held_opt_in_out_of_its_post(
    new_context: BrowserFactory, static_site: str
) -> None:
    # Given a visitor opted out of sale and limited sensitive data, who opted back in to sale
    # (held: the state still says opted out, e.g. the no-JS webform on this browser opted this
    # device out of sale again since, or a linked account's opt-out holds it)
    context = new_context()
    api = FakeConsentApi()
    api.install(context)
    page = context.new_page()
    page.goto(f"{static_site}/index.html")
    _held_opt_in_of_sale(page, api, extra=(LIMIT,))
    page.reload()
    wait_until_ready(page)

    # When they reopen the panel (sale unticked, held) and lift only the limit, confirmed
    banner = page.locator("#optout-bridge")
    banner.get_by_role("button", name="Your Privacy Choices").click()
    expect(banner.get_by_label(SALE)).not_to_be_checked()
    banner.get_by_label(LIMIT).uncheck()
    asked: list[str] = []

    def confirm(dialog: Dialog) -> None:
        asked.append(dialog.message)
        dialog.accept()

    page.once("dialog", confirm)
    with consent_posted(page):
        banner.get_by_role("button", name="Save choices").click()

    # Then the question named only the sensitive data, and the confirmed post carries only
    # that opt-in: no confirmed `false` for sale, which would lift a newer opt-out of sale
    # without asking (review s28 F1: every unticked box was posted `false` with it)
    assert len(asked) == 1 and "use of sensitive data" in asked[0] and "sale" not in asked[0]
    sent = api.posts[-1]
    assert sent["confirm_opt_in"] is True
    assert sent["opt_out"] == {"limit_sensitive": False}, json.dumps(sent)
    # ... and the sale opt-in is still held (shown unticked, enforced as opted out)
    assert page.evaluate("() => window.optoutBridge.state().optOut.sale") is True
    banner.get_by_role("button", name="Your Privacy Choices").click()
    expect(banner.get_by_label(SALE)).not_to_be_checked()


def test_a_box_the_panel_showed_unticked_is_not_opted_in_when_another_tab_opted_out_meanwhile(
    new_context: BrowserFactory, static_site: str
) -> None:
    # Given a visitor who limited sensitive data, with the panel open (sale unticked: not
    # opted out)
    context = new_context()
    api = FakeConsentApi()
    api.install(context)
    page = context.new_page()
    page.goto(f"{static_site}/index.html")
    wait_until_ready(page)
    banner = page.locator("#optout-bridge")
    banner.get_by_role("button", name="Choose").click()
    banner.get_by_label(LIMIT).check()
    with consent_posted(page):
        banner.get_by_role("button", name="Save choices").click()
    api.opt_out = {"limit_sensitive": True}
    page.reload()
    wait_until_ready(page)
    banner.get_by_role("button", name="Your Privacy Choices").click()
    expect(banner.get_by_label(SALE)).not_to_be_checked()

    # When another tab opts out of sale meanwhile (applied here; the open panel is not
    # redrawn under the person's hands), and the person lifts only the limit, confirmed
    other = context.new_page()
    other.goto(f"{static_site}/index.html")
    wait_until_ready(other)
    with consent_posted(other):
        other.evaluate("() => window.optoutBridge.choose({ sale: true })")
    page.wait_for_function("() => window.optoutBridge.state().optOut.sale")
    expect(banner.get_by_label(SALE)).not_to_be_checked()
    banner.get_by_label(LIMIT).uncheck()
    asked: list[str] = []

    def confirm(dialog: Dialog) -> None:
        asked.append(dialog.message)
        dialog.accept()

    page.once("dialog", confirm)
    with consent_posted(page):
        banner.get_by_role("button", name="Save choices").click()

    # Then the question names only the sensitive data, and the confirmed post lifts only the
    # limit: not the other tab's opt-out of sale, a box this panel showed unticked and the
    # person never touched (review s28 banner2 R2: the question named sale too, and the post
    # carried sale `false` with `confirm_opt_in`)
    assert len(asked) == 1 and "use of sensitive data" in asked[0] and "sale" not in asked[0]
    sent = api.posts[-1]
    assert sent["confirm_opt_in"] is True
    assert sent["opt_out"] == {"limit_sensitive": False}, json.dumps(sent)
    # ... and the other tab's opt-out of sale still applies here
    assert page.evaluate("() => window.optoutBridge.state().optOut.sale") is True


@pytest.mark.parametrize("minutes", [2, 11])
def test_a_save_of_another_purpose_keeps_the_reason_a_held_opt_in_is_not_applied(
    new_context: BrowserFactory, static_site: str, minutes: int
) -> None:
    # Given an opt-in of sale acknowledged `minutes` ago that the state still lacks (a linked
    # account's opt-out holds it), said as such
    context = new_context()
    api = FakeConsentApi()
    api.install(context)
    page = context.new_page()
    page.goto(f"{static_site}/index.html")
    _held_opt_in_of_sale(page, api)
    _acknowledged_ago(page, minutes * 60_000)
    page.reload()
    wait_until_ready(page)
    banner = page.locator("#optout-bridge")
    status = banner.locator("[data-optout-status]")
    held = "Opt-in not applied: a linked account opted out"
    expect(status).to_contain_text(held)

    # When the person opts out of profiling (nothing about sale changed), acknowledged
    banner.get_by_role("button", name="Your Privacy Choices").click()
    banner.get_by_label("Opt out: Profiling").check()
    with consent_posted(page):
        banner.get_by_role("button", name="Save choices").click()
    page.reload()
    wait_until_ready(page)

    # Then the status and the box's note still give the reason (review s28 F4: any
    # acknowledged save said "Opt-in saved, not applied yet" again for 10 minutes)
    expect(status).to_have_text(f"Opted out of sale, profiling · {held}")
    banner.get_by_role("button", name="Your Privacy Choices").click()
    expect(banner.get_by_role("dialog")).to_contain_text(held)
    assert page.evaluate("() => window.optoutBridge.state().optOut.sale") is True


def test_device_cookie_is_first_party_random_lax_and_lasts_13_months(
    new_context: BrowserFactory, static_site: str
) -> None:
    # Given two fresh browsers, When each opens the shop
    cookies = []
    for _ in range(2):
        context = new_context()
        FakeConsentApi().install(context)
        context.new_page().goto(f"{static_site}/index.html")
        cookies.append(next(c for c in context.cookies() if c["name"] == "optout_device_id"))

    # Then each has its own random id in the API's format, SameSite=Lax, ~13 months long
    first, second = cookies
    assert first["value"] != second["value"]
    assert re.fullmatch(r"[A-Za-z0-9_-]{16,64}", first["value"])
    assert first["sameSite"] == "Lax"
    assert first["path"] == "/"
    assert first["secure"] is False  # served over plain http here; Secure over https
    days = (first["expires"] - time.time()) / 86_400
    assert 390 <= days <= 400


def test_webform_opt_out_of_all_ticks_every_opt_out_but_not_the_limit(
    new_context: BrowserFactory, static_site: str
) -> None:
    # Given the webform (review s13 law 8: it had only per-purpose boxes, and §7026(h) allows
    # per-purpose choices only beside a single "opt out of all")
    context = new_context()
    FakeConsentApi().install(context)
    sent: list[dict[str, object]] = []

    def accept(route: Route) -> None:
        sent.append(json.loads(route.request.post_data or "{}"))
        answer = {"request_id": "6b1f0c3e-2d4a-4b5c-9e8f-7a6b5c4d3e2f", "status": "received",
                  "received_at": "2026-11-29T03:20:00.123Z", "deadline": "2026-12-18"}  # fmt: skip
        route.fulfill(status=202, content_type="application/json", body=json.dumps(answer))

    context.route("**/v1/opt-out", accept)
    page = context.new_page()
    page.goto(f"{static_site}/privacy.html")
    wait_until_ready(page)
    group = page.get_by_role("group", name="Opt me out of")
    everything = group.get_by_role("checkbox", name="Opt out of all")
    boxes = group.locator("input[name=purposes]")
    limit = page.get_by_role("group", name="Limit the use of my sensitive personal information")
    # The single choice stands beside the four, ticked as they are
    expect(everything).to_be_visible()
    expect(everything).to_be_checked()
    assert boxes.count() == len(SALE_SHARE)

    # When the visitor unticks it, every opt-out box is unticked; the limit stays as it was
    everything.uncheck()
    for n in range(boxes.count()):
        expect(boxes.nth(n)).not_to_be_checked()
    expect(limit.get_by_role("checkbox")).not_to_be_checked()
    # One per-purpose box chosen: "all" is not ticked
    group.get_by_role("checkbox", name="Profiling", exact=True).check()
    expect(everything).not_to_be_checked()

    # When the visitor ticks "Opt out of all" and submits
    everything.check()
    for n in range(boxes.count()):
        expect(boxes.nth(n)).to_be_checked()
    expect(limit.get_by_role("checkbox")).not_to_be_checked()
    page.get_by_label("Email address").fill("jane@example.com")
    page.get_by_role("button", name="Submit opt-out request").click()

    # Then the request names the four opt-out purposes, not the limit, and no "all" field
    expect(page.locator("#result")).to_be_visible()
    assert sent[0]["purposes"] == list(SALE_SHARE)


def test_a_tag_naming_an_unknown_purpose_never_runs_and_a_late_tag_is_gated_too(
    new_context: BrowserFactory, static_site: str
) -> None:
    # Given a known state that opts out of targeted advertising only, and a page whose gated
    # tags name a purpose the banner does not know (a typo), none, and known ones
    context = new_context()
    FakeConsentApi(opt_out={"targeted_advertising": True}).install(context)
    gated = "".join(
        f'<script type="text/plain" data-purpose="{purposes}">window.ran.push("{name}")</script>'
        for name, purposes in [("typo", "targeted_advertisng"), ("empty", ""),
                               ("mixed", "sale typo_purpose"), ("sale", "sale")]
    )  # fmt: skip
    html = (
        '<!doctype html><html lang="en"><head><title>Tags</title>'
        '<script>window.ran = []</script><script src="/dist/banner.min.js"></script></head>'
        f"<body>{gated}</body></html>"
    )
    context.route(
        f"{static_site}/tags.html",
        lambda route: route.fulfill(status=200, content_type="text/html", body=html),
    )
    page = context.new_page()
    page.goto(f"{static_site}/tags.html")
    wait_until_ready(page)
    # Then only the tag of a known purpose not opted out ran: an unknown name fails closed
    assert page.evaluate("() => window.ran") == ["sale"]
    # When the site adds gated tags after the state is known
    page.evaluate(
        """() => ["targeted_advertising", "sale"].forEach((purpose) => {
            const tag = document.createElement("script");
            tag.type = "text/plain";
            tag.dataset.purpose = purpose;
            tag.text = `window.ran.push("late ${purpose}")`;
            document.body.append(tag);
        })"""
    )
    # Then they are gated the same way: the opted-out purpose's stays inert
    page.wait_for_function("() => window.ran.length === 2")
    assert page.evaluate("() => window.ran") == ["sale", "late sale"]
    assert (
        page.locator('script[type="text/plain"][data-purpose="targeted_advertising"]').count() == 1
    )


def test_an_inline_gated_tag_keeps_the_nonce_a_sites_csp_allows_it_by(
    new_context: BrowserFactory, static_site: str
) -> None:
    # Given a site whose CSP header allows its own scripts and inline ones carrying its nonce
    # (a header: the browser then hides every nonce attribute, which reads ""), an inline gated
    # tag with that nonce and one without
    context = new_context()
    FakeConsentApi().install(context)
    html = (
        '<!doctype html><html lang="en"><head><title>Nonce</title>'
        '<script nonce="n0nce">window.ran = []</script>'
        '<script src="/dist/banner.min.js"></script></head><body>'
        '<script type="text/plain" data-purpose="sale" nonce="n0nce">window.ran.push("nonce")'
        "</script>"
        '<script type="text/plain" data-purpose="sale">window.ran.push("none")</script>'
        "</body></html>"
    )
    headers = {"Content-Security-Policy": "script-src 'self' 'nonce-n0nce'"}
    context.route(
        f"{static_site}/nonce.html",
        lambda route: route.fulfill(
            status=200, content_type="text/html", body=html, headers=headers
        ),
    )
    page = context.new_page()
    # When the banner activates them (sale not opted out)
    page.goto(f"{static_site}/nonce.html")
    wait_until_ready(page)
    # Then the tag the site allowed ran, and the site's CSP still refuses the other one
    page.wait_for_function("() => window.ran.length > 0")
    assert page.evaluate("() => window.ran") == ["nonce"]
    # When the site adds one more with its nonce as HTML (innerHTML)
    page.evaluate(
        """() => document.body.insertAdjacentHTML("beforeend", '<div><script type="text/plain"'
            + ' data-purpose="sale" nonce="n0nce">window.ran.push("late nonce")</scr'
            + 'ipt></div>')"""
    )
    # Then it runs too
    page.wait_for_function("() => window.ran.length > 1")
    assert page.evaluate("() => window.ran") == ["nonce", "late nonce"]


def test_a_gated_tag_a_site_adds_as_html_runs_once_when_allowed(
    new_context: BrowserFactory, static_site: str
) -> None:
    # Given a known state that opts out of targeted advertising only, and a page with one
    # gated tag (HTML inserted by innerHTML, insertAdjacentHTML or outerHTML is parsed as
    # "already started": a copy of it that keeps that flag never runs)
    context = new_context()
    FakeConsentApi(opt_out={"targeted_advertising": True}).install(context)
    html = (
        '<!doctype html><html lang="en"><head><title>Tags</title>'
        '<script>window.ran = []</script><script src="/dist/banner.min.js"></script></head>'
        '<body><script type="text/plain" data-purpose="sale">window.ran.push("parsed")</script>'
        '<div id="a"></div><div id="b"></div><div id="c"></div></body></html>'
    )
    context.route(
        f"{static_site}/html-tags.html",
        lambda route: route.fulfill(status=200, content_type="text/html", body=html),
    )
    page = context.new_page()
    page.goto(f"{static_site}/html-tags.html")
    wait_until_ready(page)
    page.wait_for_function("() => window.ran.length === 1")
    # When the site adds gated tags as HTML strings, one of them for the opted-out purpose
    page.evaluate(
        """() => {
            const tag = (purpose, name) => `<script type="text/plain" data-purpose="${purpose}">`
                + `window.ran.push("${name}")</scr` + "ipt>";
            document.getElementById("a").innerHTML =
                tag("sale", "innerHTML") + tag("targeted_advertising", "opted out");
            document.getElementById("b").insertAdjacentHTML("beforeend", tag("sale", "adjacent"));
            document.getElementById("c").outerHTML = tag("sale", "outerHTML");
        }"""
    )
    # Then each allowed one runs, once, and the opted-out one stays inert
    page.wait_for_function("() => window.ran.length === 4")
    page.evaluate("() => document.body.append(document.createElement('p'))")  # observer again
    page.wait_for_timeout(200)
    assert page.evaluate("() => window.ran") == ["parsed", "innerHTML", "adjacent", "outerHTML"]
    assert (
        page.locator('script[type="text/plain"][data-purpose="targeted_advertising"]').count() == 1
    )


REQUEST_ID = "6b1f0c3e-2d4a-4b5c-9e8f-7a6b5c4d3e2f"


@pytest.mark.parametrize("decoy", [False, True], ids=["alone", "after-an-injected-tag"])
def test_a_webform_hosted_apart_from_the_api_posts_to_its_data_api(
    new_context: BrowserFactory, static_site: str, decoy: bool
) -> None:
    # Given privacy.html on a site's own host whose privacy.js tag names the API elsewhere
    # (review s30 newcomer F2); the site's CSP would list the API in connect-src
    api = "https://api.example.test"
    context = new_context(bypass_csp=True)
    posts: list[dict[str, str]] = []

    def page_with_data_api(route: Route) -> None:
        html = (
            route.fetch()
            .text()
            .replace(
                '<script src="/privacy.js" type="module">',
                f'<script src="/privacy.js" type="module" data-api="{api}/">',
            )
        )
        assert f'data-api="{api}/"' in html
        if decoy:  # markup injected earlier in the page: a tag naming privacy.js elsewhere,
            # which never runs (review s31 stranger N1); its API must never be posted to
            html = html.replace(
                "<body>",
                '<body><script type="module" src="/decoy/privacy.js" '
                'data-api="https://elsewhere.example.test"></script>',
                1,
            )
            assert "elsewhere.example.test" in html
        route.fulfill(status=200, content_type="text/html", body=html)

    def the_api(route: Route) -> None:
        cors = {"Access-Control-Allow-Origin": static_site, "Vary": "Origin",
                "Access-Control-Allow-Headers": "content-type,idempotency-key",
                "Access-Control-Allow-Methods": "GET,POST"}  # fmt: skip
        if route.request.method == "OPTIONS":
            route.fulfill(status=204, headers=cors)
            return
        posts.append({"url": route.request.url, "origin": route.request.headers.get("origin", "")})
        accepted = {"request_id": REQUEST_ID, "status": "received", "deadline": "2026-12-18",
                    "received_at": "2026-11-29T03:20:00.123Z"}  # fmt: skip
        route.fulfill(status=202, headers=cors, content_type="application/json",
                      body=json.dumps(accepted))  # fmt: skip

    context.route("**/privacy.html", page_with_data_api)
    context.route(f"{api}/**", the_api)
    context.route("https://elsewhere.example.test/**", lambda route: posts.append(
        {"url": route.request.url, "origin": "elsewhere"}) or route.abort())  # fmt: skip
    page = context.new_page()
    page.goto(f"{static_site}/privacy.html")

    # When the visitor submits an email
    page.get_by_label("Email").fill("jane@example.com")
    page.get_by_role("button", name="Submit opt-out request").click()

    # Then the opt-out went to the API (from the site's origin), and the status link opens there
    expect(page.locator("#result-title")).to_have_text("We received your opt-out request")
    assert posts == [{"url": f"{api}/v1/opt-out", "origin": static_site}]
    link = page.locator("[data-status-link]")
    expect(link).to_have_attribute("href", f"{api}/v1/requests/{REQUEST_ID}")
