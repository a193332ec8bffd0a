"""Test 5: the __gpp string banner.js encodes is decoded by IAB's reference library
(@iabgpp/cmpapi) to the state the page applies, and __uspapi agrees.

These need no pipeline: the page is served from web/ on loopback and the consent API is
answered in the browser by FakeConsentApi with the effective state under test.
"""

from typing import Any

import pytest

from .conftest import (
    BrowserFactory,
    FakeConsentApi,
    decode_gpp,
    gpp_ping,
    usp_data,
    wait_until_ready,
)

pytestmark = pytest.mark.browser

ALL_OUT = dict.fromkeys(("sale", "share", "targeted_advertising", "profiling"), True)

# An IAB-style stub, as a page would inline before the CMP loads: it queues calls, which
# banner.js must replay. Records every event so the test sees "not ready" then "ready".
STUB_RECORDING_EVENTS = """
window.__gppEvents = [];
window.__gpp = function () { window.__gpp.queue.push(arguments); };
window.__gpp.queue = [];
window.__gpp('addEventListener', function (event) {
  window.__gppEvents.push([event.eventName, event.data, event.pingData.signalStatus]);
});
"""


@pytest.mark.parametrize(
    ("case", "opt_out", "gpc", "expected"),
    [
        (
            "opted_out",
            ALL_OUT,
            False,
            {"SaleOptOut": 1, "SharingOptOut": 1, "TargetedAdvertisingOptOut": 1, "Gpc": False},
        ),
        (
            "not_opted_out",
            {},
            False,
            {"SaleOptOut": 2, "SharingOptOut": 2, "TargetedAdvertisingOptOut": 2, "Gpc": False},
        ),
        (
            "gpc",
            {},
            True,
            {"SaleOptOut": 1, "SharingOptOut": 1, "TargetedAdvertisingOptOut": 1, "Gpc": True},
        ),
    ],
)
def test_gpp_string_decodes_with_iab_reference_library_to_the_applied_state(
    new_context: BrowserFactory,
    static_site: str,
    case: str,
    opt_out: dict[str, bool],
    gpc: bool,
    expected: dict[str, Any],
) -> None:
    # Given a browser whose effective state (from the API) is `opt_out`, GPC on or off
    context = new_context(gpc=gpc)
    FakeConsentApi(opt_out=opt_out).install(context)
    page = context.new_page()

    # When the shop page has loaded and the banner knows the state
    page.goto(f"{static_site}/index.html")
    wait_until_ready(page)
    ping = gpp_ping(page)

    # Then IAB's decoder reads the same opt-outs from the GPP string
    assert ping["gppVersion"] == "1.1"
    assert ping["signalStatus"] == "ready"
    assert ping["sectionList"] == [7]
    decoded = decode_gpp(ping["gppString"])
    assert decoded["sectionIds"] == [7]
    usnat = decoded["usnat"]
    assert {name: usnat[name] for name in expected} == expected, case
    assert usnat["Version"] == 2
    assert usnat["MspaCoveredTransaction"] == 2
    # ... the string is exactly what the reference encoder makes of those fields
    assert decoded["canonical"] == ping["gppString"]
    # ... getSection answers the same fields
    section = page.evaluate(
        "() => new Promise((r) => window.__gpp('getSection', (s) => r(s), 'usnat'))"
    )
    assert {name: section[name] for name in expected} == expected

    # And the legacy US Privacy string and cookie agree
    usp = usp_data(page)
    opted_out_of_sale = expected["SaleOptOut"] == 1
    assert usp == {"version": 1, "uspString": "1YYN" if opted_out_of_sale else "1YNN", "ok": True}
    cookies = {c["name"]: c["value"] for c in context.cookies()}
    assert cookies["usprivacy"] == usp["uspString"]


def test_gpp_stub_calls_are_replayed_and_signal_goes_not_ready_then_ready(
    new_context: BrowserFactory, static_site: str
) -> None:
    # Given a page whose inline stub registered a listener before banner.js loaded
    context = new_context()
    FakeConsentApi().install(context)
    context.add_init_script(STUB_RECORDING_EVENTS)
    page = context.new_page()

    # When the state becomes known and then the visitor opts out in the banner
    page.goto(f"{static_site}/index.html")
    wait_until_ready(page)
    page.get_by_role("button", name="Opt out of all").click()
    page.wait_for_function("() => window.optoutBridge.state().uspString === '1YYN'")

    # Then the listener saw registration while not ready, then ready, then a change
    events = page.evaluate("() => window.__gppEvents")
    names = [(name, data) for name, data, _ in events]
    assert events[0] == ["listenerRegistered", True, "not ready"]
    assert ("signalStatus", "ready") in names
    last_change = len(names) - 1 - names[::-1].index(("sectionChange", "usnat"))
    assert names[last_change - 1] == ("signalStatus", "not ready")
    assert names[last_change + 1] == ("signalStatus", "ready")
    decoded = decode_gpp(gpp_ping(page)["gppString"])
    assert decoded["usnat"]["SaleOptOut"] == 1
    # ... and removeEventListener stops the events
    removed = page.evaluate(
        "() => new Promise((r) => window.__gpp('removeEventListener', (e) => r(e.data), 1))"
    )
    assert removed is True
