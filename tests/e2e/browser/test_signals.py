"""__gpp and __uspapi beyond the per-command conformance: the string IAB's decoder reads for
the demo shop's default configuration, the hand-over from an IAB stub, frames, and the usnat
configuration (defaults, and refusal of impossible statements).

These need no pipeline: pages come from web/ on loopback and the consent API is answered in
the browser by FakeConsentApi with the effective state under test.
"""

import json
from typing import Any

import pytest
from playwright.sync_api import BrowserContext, Frame, Page, Route, expect

from .conftest import (
    SALE_SHARE,
    BrowserFactory,
    FakeConsentApi,
    add_ad_frame,
    consent_posted,
    decode_gpp,
    gpp_call,
    gpp_ping,
    serve_page,
    usp_data,
    wait_until_ready,
)

pytestmark = pytest.mark.browser

ALL_OUT = dict.fromkeys(SALE_SHARE, True)

# A stub written the way the CMP API specification's example stub works: ping and
# addEventListener answered by the stub (listeners kept in __gpp.events with ids from 1),
# hasSection/getSection/getField answered null, every other command queued in __gpp.queue,
# a postMessage handler in __gpp_msghandler and a __gppLocator frame.
SPEC_STUB = """
window.__seen = [];
window.__gpp = function (command, callback, parameter) {
  const gpp = window.__gpp;
  gpp.queue = gpp.queue || [];
  gpp.events = gpp.events || [];
  if (command === "ping") return callback({ gppVersion: "1.1", cmpStatus: "stub" }, true);
  if (command === "addEventListener") {
    gpp.lastId = (gpp.lastId || 0) + 1;
    gpp.events.push({ id: gpp.lastId, callback, parameter });
    return callback({ eventName: "listenerRegistered", listenerId: gpp.lastId, data: true,
                      pingData: { cmpStatus: "stub" } }, true);
  }
  if (["hasSection", "getSection", "getField"].includes(command)) return callback(null, false);
  gpp.queue.push([command, callback, parameter]);
};
window.__gpp_msghandler = (event) => {
  const call = event.data && event.data.__gppCall;
  if (call) window.__gpp(call.command, (returnValue, success) => event.source.postMessage(
    { __gppReturn: { returnValue, success, callId: call.callId } }, "*"), call.parameter);
};
window.addEventListener("message", window.__gpp_msghandler);
document.addEventListener("DOMContentLoaded", () => {
  if (window.frames["__gppLocator"]) return; // as the spec's stub checks
  const frame = document.createElement("iframe");
  frame.name = "__gppLocator";
  frame.style.display = "none";
  document.body.appendChild(frame);
});
window.__gpp("addEventListener", (event) =>
  window.__seen.push([event.eventName, event.listenerId, event.data, event.pingData.cmpStatus]));
window.__gpp("getTCData", (data, success) => window.__seen.push(["getTCData", data, success]));
"""

# An older style of stub that queues every call, addEventListener included.
QUEUE_ALL_STUB = """
window.__seen = [];
window.__gpp = function () { window.__gpp.queue.push(arguments); };
window.__gpp.queue = [];
window.__gpp("addEventListener", (event) =>
  window.__seen.push([event.eventName, event.listenerId, event.data, event.pingData.signalStatus]));
"""


def _section(page: Page) -> list[dict[str, Any]]:
    data, success = gpp_call(page, "getSection", "usnat")
    assert success is True
    section: list[dict[str, Any]] = data
    return section


@pytest.mark.parametrize(
    ("case", "opt_out", "gpc", "expected"),
    [
        ("opted_out", ALL_OUT, False, (1, 1, 1, False)),
        ("not_opted_out", {}, False, (2, 2, 2, False)),
        ("gpc", {}, True, (1, 1, 1, True)),
    ],
)
def test_the_shops_gpp_string_decodes_with_iabs_library_to_the_applied_state(
    new_context: BrowserFactory,
    static_site: str,
    case: str,
    opt_out: dict[str, bool],
    gpc: bool,
    expected: tuple[int, int, int, bool],
) -> None:
    # Given the demo shop (default configuration) in a browser whose effective state is opt_out
    context = new_context(gpc=gpc)
    FakeConsentApi(opt_out=opt_out).install(context)
    page = context.new_page()

    # When the banner knows the state
    page.goto(f"{static_site}/index.html")
    wait_until_ready(page)
    ping = gpp_ping(page)

    # Then IAB's decoder reads the applied opt-outs, and the string is exactly its encoding
    assert (ping["gppVersion"], ping["signalStatus"], ping["sectionList"]) == ("1.1", "ready", [7])
    decoded = decode_gpp(ping["gppString"])
    usnat = decoded["usnat"]
    fields = ("SaleOptOut", "SharingOptOut", "TargetedAdvertisingOptOut", "Gpc")
    assert tuple(usnat[f] for f in fields) == expected, case
    assert decoded["canonical"] == ping["gppString"]
    # ... with the defaults: notices given (the banner gives them, the limit choice included),
    # every sensitive category "no consent", not an MSPA covered transaction
    assert [usnat[f"{n}Notice"] for n in ("SaleOptOut", "SensitiveDataLimitUse")] == [1, 1]
    assert usnat["SensitiveDataProcessing"] == [1] * 16
    assert (usnat["MspaCoveredTransaction"], usnat["MspaServiceProviderMode"]) == (2, 0)
    # ... and getSection answers sub-sections: the core segment, then GPC
    core, gpc_subsection = _section(page)
    assert core["SaleOptOut"] == expected[0]
    assert gpc_subsection == {"SubsectionType": 1, "Gpc": gpc}
    assert ping["parsedSections"]["usnat"] == [core, gpc_subsection]

    # And the legacy US Privacy string and cookie agree
    usp = usp_data(page)
    assert usp == {"version": 1, "uspString": "1YYN" if expected[0] == 1 else "1YNN", "ok": True}
    cookies = {c["name"]: c["value"] for c in context.cookies()}
    assert cookies["usprivacy"] == usp["uspString"]


def test_an_iab_stubs_listeners_and_queue_are_taken_over(
    new_context: BrowserFactory, static_site: str
) -> None:
    # Given a page whose IAB stub registered a listener (id 1) and queued a call
    context = new_context()
    FakeConsentApi().install(context)
    context.add_init_script(SPEC_STUB)
    page = context.new_page()

    # When banner.js loads and learns the state
    page.goto(f"{static_site}/index.html")
    wait_until_ready(page)

    # Then the stub's listener keeps its id and hears the CMP load, then the state get ready
    seen = page.evaluate("() => window.__seen")
    assert seen[0] == ["listenerRegistered", 1, True, "stub"]
    assert ["cmpStatus", 1, "loaded", "loaded"] in seen
    assert ["signalStatus", 1, "ready", "loaded"] in seen
    assert seen.index(["cmpStatus", 1, "loaded", "loaded"]) < seen.index(
        ["signalStatus", 1, "ready", "loaded"]
    )
    # ... the queued call was answered, in order, by the CMP (an unknown command: null)
    assert ["getTCData", None, False] in seen
    # ... and there is one locator frame, the stub's
    assert page.locator('iframe[name="__gppLocator"]').count() == 1


def test_a_stub_listener_without_a_callback_breaks_no_later_listener(
    new_context: BrowserFactory, static_site: str
) -> None:
    # Given a page whose IAB stub kept a listener with no callback (a script called
    # addEventListener on the stub without one: the stub stores it, then throws calling it)
    context = new_context()
    FakeConsentApi().install(context)
    context.add_init_script(SPEC_STUB + "try { window.__gpp('addEventListener'); } catch (e) {}")
    page = context.new_page()
    page.goto(f"{static_site}/index.html")
    wait_until_ready(page)

    # When a vendor registers after the banner took over, and the person opts out of sale
    after = page.evaluate(
        """() => {
          window.__events = [];
          let threw = null;
          try {
            window.__gpp('addEventListener', (e) => window.__events.push(e.eventName));
            window.optoutBridge.choose({ sale: true });
          } catch (e) { threw = String(e); }
          return { threw, events: window.__events };
        }"""
    )

    # Then the registration worked and the vendor hears the change (the stub's callback-less
    # entry, taken over as a listener, made every later addEventListener throw: review s29 M3)
    assert after["threw"] is None
    assert after["events"][0] == "listenerRegistered"
    assert "sectionChange" in after["events"]


def test_a_stub_that_queued_everything_gets_its_listener_registered_on_load(
    new_context: BrowserFactory, static_site: str
) -> None:
    # Given a stub that queued addEventListener itself
    context = new_context()
    FakeConsentApi().install(context)
    context.add_init_script(QUEUE_ALL_STUB)
    page = context.new_page()

    # When the state becomes known and the visitor opts out in the banner (once it is shown:
    # the state may be known before the page has mounted the banner, whose display event
    # then follows "ready"; that order is the page's, not the change's)
    page.goto(f"{static_site}/index.html")
    wait_until_ready(page)
    button = page.get_by_role("button", name="Opt out of all")
    button.wait_for()
    before = page.evaluate("() => window.__seen.length")
    button.click()
    page.wait_for_function("() => window.optoutBridge.state().uspString === '1YYN'")

    # Then the listener was registered (not ready yet), heard "ready", and the change came in
    # the spec's order: "not ready" first, the layer hidden, sectionChange, "ready" last
    names = [(name, data) for name, _, data, _ in page.evaluate("() => window.__seen")]
    first = page.evaluate("() => window.__seen[0]")
    assert first == ["listenerRegistered", 1000, True, "not ready"]
    assert ("signalStatus", "ready") in names[:before]
    assert names[before:] == [
        ("signalStatus", "not ready"),
        ("cmpDisplayStatus", "hidden"),
        ("sectionChange", "usnat"),
        ("signalStatus", "ready"),
    ]
    assert decode_gpp(gpp_ping(page)["gppString"])["usnat"]["SaleOptOut"] == 1


def test_a_frame_gets_one_answer_in_the_shape_it_asked_in(
    new_context: BrowserFactory, static_site: str
) -> None:
    # Given a page with an IAB stub (whose own postMessage handler is still registered)
    context = new_context()
    FakeConsentApi().install(context)
    context.add_init_script(SPEC_STUB)
    page = context.new_page()
    page.goto(f"{static_site}/index.html")
    wait_until_ready(page)

    # When an ad frame calls __gpp through postMessage, once as a string and once as an object
    ad_frame = add_ad_frame(page)
    replies = ad_frame.evaluate(
        """() => new Promise((resolve) => {
          const got = [];
          window.addEventListener("message", (event) => {
            got.push(event.data);
            const data = typeof event.data === "string" ? JSON.parse(event.data) : event.data;
            if (data.__gppReturn.callId === "second") resolve(got);
          });
          const call = (callId) => ({ __gppCall: { command: "ping", callId, version: "1.1" } });
          window.parent.postMessage(JSON.stringify(call("first")), "*");
          window.parent.postMessage(call("second"), "*");
        })"""
    )

    # Then each call is answered once (the stub's handler was removed), a string with a string
    assert len(replies) == 2
    first = json.loads(replies[0])
    assert first["__gppReturn"]["callId"] == "first"
    assert first["__gppReturn"]["returnValue"]["cmpStatus"] == "loaded"
    assert replies[1]["__gppReturn"]["callId"] == "second"

    # When the page registers a listener, and the frame asks to remove it, then registers its
    # own and removes that
    page_listener = page.evaluate(
        "() => { let id; window.__gpp('addEventListener', (e) => { id = id || e.listenerId; });"
        " return id; }"
    )
    removals = ad_frame.evaluate(
        """(pageListener) => new Promise((resolve) => {
          const got = {};
          const call = (command, callId, parameter) =>
            window.parent.postMessage({ __gppCall: { command, callId, parameter } }, "*");
          window.addEventListener("message", ({ data }) => {
            const answer = data.__gppReturn;
            if (!answer) return;
            if (answer.callId === "add") {
              if (answer.returnValue.eventName === "listenerRegistered")
                call("removeEventListener", "own", answer.returnValue.listenerId);
              return;
            }
            got[answer.callId] = answer.returnValue.data;
            if (answer.callId === "own") resolve(got);
          });
          call("removeEventListener", "theirs", pageListener);
          call("addEventListener", "add");
        })""",
        page_listener,
    )
    # Then a frame removes only its own listener (review s26 F4): the page's is still there
    assert removals == {"theirs": False, "own": True}
    assert gpp_call(page, "removeEventListener", page_listener)[0]["data"] is True


def test_the_locator_frame_is_there_as_soon_as_the_body_is(
    new_context: BrowserFactory, static_site: str
) -> None:
    # Given a page with the banner in <head>, then a body whose parsing a slow script holds
    context = new_context()
    FakeConsentApi().install(context)
    html = (
        '<!doctype html><html lang="en"><head><title>early</title>'
        '<script src="/dist/banner.min.js"></script></head><body><main><h1>Shop</h1></main>'
        '<script src="/slow.js"></script><p>after</p></body></html>'
    )
    serve_page(context, f"{static_site}/early.html", html)
    held: list[Route] = []
    context.route(f"{static_site}/slow.js", lambda route: held.append(route))
    page = context.new_page()

    # When the document is still loading (the slow script not answered)
    page.goto(f"{static_site}/early.html", wait_until="commit")

    # Then the locator frames are already there for frames that look once (review s26 F6; the
    # CMP API specification's stub adds them as soon as document.body exists)
    page.wait_for_function(
        "() => document.readyState === 'loading' && !!window.frames.__gppLocator"
        " && !!window.frames.__uspapiLocator",
        polling=50,
        timeout=5_000,
    )
    assert held, "the slow script was requested"
    held[0].fulfill(status=200, content_type="text/javascript", body="window.__slow = 1;")
    wait_until_ready(page)
    assert page.locator('iframe[name="__gppLocator"]').count() == 1


def _configured(
    new_context: BrowserFactory, static_site: str, attributes: str
) -> tuple[Page, list[str]]:
    context = new_context()
    FakeConsentApi(opt_out={"sale": True}).install(context)
    html = (
        '<!doctype html><html lang="en"><head><title>configured</title>'
        f'<script src="/dist/banner.min.js" {attributes}></script></head>'
        "<body><main><h1>Shop</h1></main></body></html>"
    )
    serve_page(context, f"{static_site}/configured.html", html)
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: m.type == "error" and errors.append(m.text))
    page.goto(f"{static_site}/configured.html")
    wait_until_ready(page)
    return page, errors


@pytest.mark.parametrize(
    ("usnat", "named"),
    [
        ({"MspaCoveredTransaction": 1}, "MspaCoveredTransaction"),  # a covered transaction, no mode
        ({"MspaOptOutOptionMode": 1}, "MspaCoveredTransaction"),  # a mode, not covered
        ({"MspaCoveredTransaction": 1, "MspaOptOutOptionMode": 1, "MspaServiceProviderMode": 1},
         "MspaCoveredTransaction"),  # both modes at once
        ({"SensitiveDataLimitUseNotice": 0}, "SensitiveDataLimitUseNotice"),  # yet a limit choice
        ({"SaleOptOut": 2}, "SaleOptOut"),  # the person's choice is not configuration
        ({"SensitiveDataProcessing": [0, 1]}, "SensitiveDataProcessing"),  # 2 of 16 entries
        ({"SharingNotice": 3}, "SharingNotice"),
        ({"Colour": 1}, "Colour"),
    ],
)  # fmt: skip
def test_an_impossible_usnat_configuration_is_refused_and_gpp_reports_an_error(
    new_context: BrowserFactory, static_site: str, usnat: dict[str, Any], named: str
) -> None:
    # Given a page that configures a statement the usnat section cannot make
    attributes = f"data-usnat='{json.dumps(usnat)}'"

    # When banner.js loads
    page, errors = _configured(new_context, static_site, attributes)

    # Then it says which field, makes no GPP string at all, and answers nothing but ping
    assert any(named in e for e in errors), errors
    ping = gpp_ping(page)
    assert (ping["cmpStatus"], ping["gppString"], ping["sectionList"]) == ("error", "", [])
    assert gpp_call(page, "getSection", "usnat") == [None, False]
    assert gpp_call(page, "getField", "usnat.SaleOptOut") == [None, False]
    # ... while the person's choices still work: the state applies and the button is there
    assert page.evaluate("() => window.optoutBridge.state().optOut.sale") is True
    expect(
        page.locator("#optout-bridge").get_by_role("button", name="Your Privacy Choices")
    ).to_be_visible()


def test_a_site_without_sensitive_data_can_say_so_when_it_offers_no_limit_choice(
    new_context: BrowserFactory, static_site: str
) -> None:
    # Given a site that offers only the sale/share choices and states no sensitive data use
    usnat = {
        "SensitiveDataLimitUseNotice": 0,
        "SensitiveDataProcessingOptOutNotice": 0,
        "SensitiveDataProcessing": [0] * 16,
    }
    attributes = (
        f"data-usnat='{json.dumps(usnat)}' "
        'data-purposes="sale,share,targeted_advertising,profiling" data-cmp-id="300" '
        'data-gpp-applicable="-1"'
    )

    # When banner.js loads
    page, errors = _configured(new_context, static_site, attributes)

    # Then the statements are made as configured, with its CMP id and no applicable section
    assert errors == []
    core, _ = _section(page)
    assert (core["SensitiveDataLimitUseNotice"], core["SensitiveDataProcessing"]) == (0, [0] * 16)
    ping = gpp_ping(page)
    assert (ping["cmpId"], ping["applicableSections"]) == (300, [-1])
    # ... and the panel has no limit choice
    banner = page.locator("#optout-bridge")
    banner.get_by_role("button", name="Your Privacy Choices").click()
    expect(banner.get_by_label("Opt out: Profiling")).to_be_visible()
    assert banner.get_by_label("Limit the use of my sensitive personal information").count() == 0


def test_another_tabs_webform_opt_out_is_announced_as_a_section_change(
    new_context: BrowserFactory, static_site: str
) -> None:
    # Given the shop in one tab, not opted out, with a vendor's __gpp listener
    context = new_context()
    FakeConsentApi().install(context)
    answer = {"request_id": "6b1f0c3e-2d4a-4b5c-9e8f-7a6b5c4d3e2f", "status": "received",
              "received_at": "2026-12-03T03:20:00.123Z", "deadline": "2026-12-22"}  # fmt: skip
    context.route(
        "**/v1/opt-out",
        lambda route: route.fulfill(
            status=202, content_type="application/json", body=json.dumps(answer)
        ),
    )
    shop = context.new_page()
    shop.goto(f"{static_site}/index.html")
    wait_until_ready(shop)
    shop.evaluate(
        "() => { window.__events = []; window.__gpp('addEventListener', (e) =>"
        " window.__events.push([e.eventName, e.data, e.pingData.gppString])); }"
    )
    assert decode_gpp(gpp_ping(shop)["gppString"])["usnat"]["SaleOptOut"] == 2

    # When the visitor opts out through the webform in another tab
    form = context.new_page()
    form.goto(f"{static_site}/privacy.html")
    wait_until_ready(form)
    form.get_by_label("Email address").fill("jane@example.com")
    form.get_by_role("button", name="Submit opt-out request").click()
    expect(form.locator("#result")).to_be_visible()

    # Then the shop tab's listener hears sectionChange (review s27 R3: the other tab's copy was
    # read before the change's snapshot, so nothing moved), with the opted-out string
    shop.wait_for_function("() => window.__events.some((e) => e[0] === 'sectionChange')")
    events = shop.evaluate("() => window.__events")
    change = next(e for e in events if e[0] == "sectionChange")
    assert change[1] == "usnat"
    assert decode_gpp(change[2])["usnat"]["SaleOptOut"] == 1
    assert [e[:2] for e in events][-1] == ["signalStatus", "ready"]
    assert shop.evaluate("() => window.optoutBridge.state().optOut.sale") is True


def test_an_add_event_listener_without_a_callback_breaks_no_listener_and_no_signal(
    new_context: BrowserFactory, static_site: str
) -> None:
    # Given the shop, not opted out, where a script called addEventListener without a
    # callback (a mistake: the specification requires one), and a vendor then registered one
    context = new_context()
    FakeConsentApi().install(context)
    page = context.new_page()
    page.goto(f"{static_site}/index.html")
    wait_until_ready(page)
    page.evaluate(
        "() => { window.__gpp('addEventListener'); window.__events = [];"
        " window.__gpp('addEventListener', (e) => window.__events.push(e.eventName)); }"
    )

    # When the person opts out of sale (everything the page does for it is synchronous)
    after = page.evaluate(
        """() => {
          let threw = null;
          try { window.optoutBridge.choose({ sale: true }); } catch (e) { threw = String(e); }
          return { threw, events: window.__events, cookie: document.cookie };
        }"""
    )

    # Then the vendor's listener hears the change and the usprivacy cookie says opted out
    # (the callback-less listener was registered: every fire() threw at it, before the
    # cookie, the ad platforms' signals and the tags were updated)
    assert after["threw"] is None
    assert "sectionChange" in after["events"]
    assert "usprivacy=1YYN" in after["cookie"]


# In a frame: registers `n` __gpp listeners with the top page by postMessage (call ids
# `${tag}${i}`), keeps every answer and event they hear in window.__heard, and resolves with
# the registrations' answers [eventName, listenerId, data, success] once all are in.
REGISTER = """([n, tag]) => new Promise((resolve) => {
  window.__heard = window.__heard || [];
  const got = {};
  if (!window.__listening) {
    window.__listening = true;
    window.addEventListener("message", ({ data }) => {
      const a = data && data.__gppReturn;
      if (a) window.__heard.push([a.callId, a.returnValue && a.returnValue.eventName,
        a.returnValue && a.returnValue.listenerId]);
    });
  }
  window.addEventListener("message", ({ data }) => {
    const a = data && data.__gppReturn;
    if (!a || !String(a.callId).startsWith(tag) || a.callId in got) return;
    const v = a.returnValue;
    got[a.callId] = [v.eventName, v.listenerId, v.data, a.success];
    if (Object.keys(got).length === n) resolve(Array.from({ length: n }, (_, i) => got[tag + i]));
  });
  for (let i = 0; i < n; i++)
    window.top.postMessage({ __gppCall: { command: "addEventListener", callId: tag + i } }, "*");
})"""
# In a frame: the listener ids that heard a sectionChange (sent to this window).
HEARD_CHANGE = (
    "() => [...new Set(window.__heard.filter((h) => h[1] === 'sectionChange').map((h) => h[2]))]"
)


def _section_change(page: Page) -> None:
    """The page's state moves (an opt-out of sale): every listener hears sectionChange."""
    with consent_posted(page):
        page.evaluate("() => window.optoutBridge.choose({ sale: true })")
    page.wait_for_function("() => window.optoutBridge.state().optOut.sale")


def _heard(frame: Frame, count: int) -> list[int]:
    """The listener ids that heard the change in `frame`, once `count` have (a frame's events
    arrive in the order the page fires its listeners: oldest first)."""
    frame.wait_for_function(f"() => ({HEARD_CHANGE})().length >= {count}")
    return frame.evaluate(HEARD_CHANGE)  # type: ignore[no-any-return]


def test_a_frame_keeps_50_listeners_at_most_and_the_51st_replaces_its_oldest(
    new_context: BrowserFactory, static_site: str
) -> None:
    # Given the shop with an ad frame, and a second ad frame holding one listener
    context = new_context()
    FakeConsentApi().install(context)
    page = context.new_page()
    page.goto(f"{static_site}/index.html")
    wait_until_ready(page)
    other = add_ad_frame(page, "other")
    [theirs] = other.evaluate(REGISTER, [1, "o"])
    ad_frame = add_ad_frame(page)

    # When the ad frame registers 55 listeners by postMessage
    registered = ad_frame.evaluate(REGISTER, [55, "add"])

    # Then each is taken in the spec's shape (listenerRegistered, a new id, data true,
    # success true): none is refused (review s28 F2)
    assert all(a[0] == "listenerRegistered" and a[2:] == [True, True] for a in registered)
    ids = [a[1] for a in registered]
    assert len(set(ids)) == 55
    # ... and the frame holds 50: its 5 oldest were replaced, and a change is heard by the
    # other 50 and by the other frame's listener (the cap is per frame)
    _section_change(page)
    heard = _heard(ad_frame, 50)
    heard_other = other.evaluate(HEARD_CHANGE)
    assert sorted(heard) == sorted(ids[5:])
    assert heard_other == [theirs[1]]
    # ... and the page itself is not limited
    page_ids = page.evaluate(
        "() => Array.from({ length: 60 }, () => { let id;"
        " window.__gpp('addEventListener', (e) => { id = id ?? e.listenerId; }); return id; })"
    )
    assert all(page_ids) and len(set(page_ids)) == 60


def test_a_frame_that_shows_a_new_document_is_not_refused_for_the_old_ones_listeners(
    new_context: BrowserFactory, static_site: str
) -> None:
    # Given an ad frame whose first document registered 50 listeners by postMessage
    context = new_context()
    FakeConsentApi().install(context)
    page = context.new_page()
    page.goto(f"{static_site}/index.html")
    wait_until_ready(page)
    ad_frame = add_ad_frame(page)
    first = ad_frame.evaluate(REGISTER, [50, "r"])
    assert all(a[2] is True for a in first)

    # When the frame shows its next creative (a new document in the same frame: the old one
    # never removed its listeners, and can no longer)
    page.evaluate(
        """() => new Promise((resolve) => {
          const frame = document.querySelector("iframe[name=ad]");
          frame.onload = resolve;
          frame.srcdoc = "next creative";
        })"""
    )
    [again] = ad_frame.evaluate(REGISTER, [1, "n"])

    # Then the new document's listener is taken (review s28 F2: refused until the page
    # reloaded, the frame's window outliving its documents) and hears the next change
    assert again[0] == "listenerRegistered" and again[2:] == [True, True]
    _section_change(page)
    assert _heard(ad_frame, 1) == [again[1]]
    # ... in place of the old document's oldest listener: gone, the second one still held
    # (the same window may remove them, its ids known here)
    removed = ad_frame.evaluate(
        """(ids) => new Promise((resolve) => {
          const got = {};
          window.addEventListener("message", ({ data }) => {
            const a = data.__gppReturn;
            if (!a || !String(a.callId).startsWith("x")) return;
            got[a.callId] = a.returnValue.data;
            if (Object.keys(got).length === ids.length) resolve(ids.map((_, i) => got[`x${i}`]));
          });
          ids.forEach((parameter, i) => window.top.postMessage(
            { __gppCall: { command: "removeEventListener", callId: `x${i}`, parameter } }, "*"));
        })""",
        [first[0][1], first[1][1]],
    )
    assert removed == [False, True]


# A page without the shop's CSP (which allows no frame of another site).
NEWS = (
    '<!doctype html><html lang="en"><head><title>news</title>'
    '<script src="/dist/banner.min.js"></script></head><body><main>news</main></body></html>'
)
# In a frame: a ping round trip to the page. Messages to one window arrive in the order they
# were sent, so every event the page sent this window before is in once it resolves.
SYNC = """() => new Promise((resolve) => {
  window.addEventListener("message", ({ data }) =>
    data && data.__gppReturn && data.__gppReturn.callId === "sync" && resolve());
  window.top.postMessage({ __gppCall: { command: "ping", callId: "sync" } }, "*");
})"""
# In a frame: makes a child frame named `name` and waits for it to load.
ADD_CHILD = """(name) => new Promise((resolve) => {
  const child = document.createElement("iframe");
  Object.assign(child, { name, srcdoc: "x", onload: resolve });
  document.body.append(child);
})"""


def _news_page(context: BrowserContext, page: Page, static_site: str) -> None:
    serve_page(context, f"{static_site}/news.html", NEWS)
    page.goto(f"{static_site}/news.html")
    wait_until_ready(page)


def _cross_site_ad_frame(context: BrowserContext, page: Page, static_site: str) -> Frame:
    """An ad frame of another site (localhost, the page being 127.0.0.1), loaded."""
    ad_url = static_site.replace("127.0.0.1", "localhost") + "/ad.html"
    serve_page(context, ad_url, "<!doctype html><title>ad</title><p>ad</p>")
    page.evaluate(
        """(src) => new Promise((resolve) => {
          const frame = document.createElement("iframe");
          Object.assign(frame, { name: "ad", src, onload: resolve });
          document.body.append(frame);
        })""",
        ad_url,
    )
    found = page.frame(name="ad")
    assert found is not None and found.url == ad_url
    return found


@pytest.mark.parametrize("origin", ["same", "cross"])
def test_the_frames_nested_in_one_frame_share_its_50_listeners(
    new_context: BrowserFactory, static_site: str, origin: str
) -> None:
    # Given an ad frame (of the page's origin, or another site's) that makes 4 child frames
    # (any number could be made)
    context = new_context()
    FakeConsentApi().install(context)
    page = context.new_page()
    _news_page(context, page, static_site)
    if origin == "same":
        ad_frame = add_ad_frame(page)
    else:
        ad_frame = _cross_site_ad_frame(context, page, static_site)
    for k in range(4):
        ad_frame.evaluate(ADD_CHILD, f"c{k}")
    children = [child for k in range(4) if (child := page.frame(name=f"c{k}"))]
    assert len(children) == 4

    # When each child registers 60 listeners with the top page, one child after another
    taken = [child.evaluate(REGISTER, [60, f"c{k}_"]) for k, child in enumerate(children)]

    # Then the ad frame's children hold 50 between them (review s28 F3: each child frame had
    # its own 50, so one ad could hold any number): the first child's latest 50, its own
    # oldest replaced; the other children, while those 50 are live, are refused in the
    # spec's shape (review s28 banner2 R1: they evicted the first child's listeners unheard)
    assert all(a[2] is True for a in taken[0])
    refused = ["listenerRegistered", 0, False, False]
    assert all(a == refused for answers in taken[1:] for a in answers)
    _section_change(page)
    first = _heard(children[0], 50)
    for child in children[1:]:
        child.evaluate(SYNC)
    heard = [first, *(child.evaluate(HEARD_CHANGE) for child in children[1:])]
    assert [len(h) for h in heard] == [50, 0, 0, 0]
    assert sorted(heard[0]) == sorted(a[1] for a in taken[0][10:])


# In an ad frame: `n` times, a child frame (the next creative) registers one listener with
# the top page by postMessage, and is then removed (the slot shows the next one); resolves
# with each registration's [data, success].
REFRESH = """async (n) => {
  const answers = [];
  for (let i = 0; i < n; i++) {
    const f = document.createElement("iframe");
    f.srcdoc = "creative";
    await new Promise((r) => { f.onload = r; document.body.append(f); });
    const cw = f.contentWindow;
    await new Promise((r) => {
      cw.addEventListener("message", ({ data }) => {
        const a = data && data.__gppReturn;
        if (a && a.callId === "k" + i) r(answers.push([a.returnValue.data, a.success]));
      });
      const call = { __gppCall: { command: "addEventListener", callId: "k" + i } };
      cw.Function("call", "top.postMessage(call, '*')")(call);
    });
    f.remove();
  }
  return answers;
}"""


@pytest.mark.parametrize("how", ["one_creative", "refreshing_creatives"])
def test_a_nested_frame_never_drops_the_ad_frames_own_live_listener(
    new_context: BrowserFactory, static_site: str, how: str
) -> None:
    # Given a cross-site ad frame whose own script (the ad server's, a verification
    # vendor's) registered one listener, to hear an opt-out made on this page
    context = new_context()
    FakeConsentApi().install(context)
    page = context.new_page()
    _news_page(context, page, static_site)
    slot = _cross_site_ad_frame(context, page, static_site)
    [vendor] = slot.evaluate(REGISTER, [1, "v"])
    assert vendor[2] is True

    # When frames nested in it register 50 listeners: one creative at once, or 50 creatives
    # shown one after another (each registers one and is then removed, as ad slots refresh)
    if how == "one_creative":
        slot.evaluate(ADD_CHILD, "creative")
        creative = page.frame(name="creative")
        assert creative is not None
        # (the 50th replaces the creative's own oldest: 49 of its own beside the vendor's)
        assert all(a[2:] == [True, True] for a in creative.evaluate(REGISTER, [50, "h"]))
        # ... and then another creative in the full slot registers one
        slot.evaluate(ADD_CHILD, "second")
        second = page.frame(name="second")
        assert second is not None
        late = second.evaluate(REGISTER, [1, "s"])
    else:
        # (each removed creative's listener goes when the next registers: none is refused)
        assert slot.evaluate(REFRESH, 50) == [[True, True]] * 50

    # ... and the person then opts out of sale on the page
    _section_change(page)
    slot.evaluate(SYNC)

    # Then the vendor's listener, never removed, hears the change (review s28 banner2 R1:
    # the nested frames' registrations evicted it, and it was never told)
    assert slot.evaluate(HEARD_CHANGE) == [vendor[1]]
    # ... and another creative, in a slot full of live listeners not its own, is refused in
    # the spec's shape (listenerId 0, data false, success false)
    if how == "one_creative":
        assert late == [["listenerRegistered", 0, False, False]]


def test_the_listeners_of_a_removed_frame_are_dropped_when_another_registers(
    new_context: BrowserFactory, static_site: str
) -> None:
    # Given a page that recreates its ad frame 3 times (as an ad library's refresh does),
    # each frame registering one listener; the page counts what is still sent to the removed
    # frames' windows (same-origin: it can replace their postMessage)
    context = new_context()
    FakeConsentApi().install(context)
    page = context.new_page()
    page.goto(f"{static_site}/index.html")
    wait_until_ready(page)
    page.evaluate("() => { window.__toRemoved = 0; }")
    for k in range(3):
        frame = add_ad_frame(page, f"ad{k}")
        assert frame.evaluate(REGISTER, [1, f"a{k}"])[0][2] is True
        page.evaluate(
            """(name) => {
              const frame = document.querySelector(`iframe[name=${name}]`);
              frame.contentWindow.postMessage = () => window.__toRemoved++;
              frame.remove();
            }""",
            f"ad{k}",
        )

    # When a new frame registers, and the state then moves
    live = add_ad_frame(page, "live")
    [mine] = live.evaluate(REGISTER, [1, "l"])
    _section_change(page)

    # Then the new frame's listener hears it, and nothing is sent to the removed frames'
    # windows: their listeners were dropped (review s28 banner2 R4: kept for the page's life,
    # every event walked them)
    assert _heard(live, 1) == [mine[1]]
    assert page.evaluate("() => window.__toRemoved") == 0
