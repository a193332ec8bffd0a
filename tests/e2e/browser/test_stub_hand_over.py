"""The banner survives what another script left at `window.__gpp` (review s31 banner R6): a
`__gpp` made read-only (a data property that is not writable, a getter with no setter), an IAB
stub whose `queue` or `events` is not a list, whose `events` holds a `null`, or whose
`__gpp_msghandler` is not a function. Each of them stopped the whole script at the hand-over:
no `__uspapi`, no `optoutBridge`, no Consent Mode defaults, no GPC post, no opt-out link.

The CMP API specification says `__gpp` "must always be a function", its stub keeps calls in
`__gpp.queue` (arrays of the call's arguments) and listeners in `__gpp.events`
(`{id, callback, parameter}`), and a CMP executes queued calls "in the same order in which the
function was called" (Core/CMP API Specification.md, "How does the CMP provide the API?" and
"Example stub code", InteractiveAdvertisingBureau/Global-Privacy-Platform at b27beb4, read
2026-12-04). What is not that shape is skipped; what is, is answered.
"""

import pytest
from playwright.sync_api import expect

from .conftest import BrowserFactory, FakeConsentApi, serve_page, wait_until_ready

pytestmark = pytest.mark.browser

# A spec-shaped stub's function: it queues every call (enough for these tests).
STUB = "function () { (window.__gpp.queue = window.__gpp.queue || []).push([...arguments]); }"
# A vendor that asked before the banner loaded: it records the CMP status it was answered with.
RECORD = "(data) => window.__seen.push(data.cmpStatus)"
# A listener the stub kept: it records the events it hears (the first is the CMP's load).
LISTENER = "{id: 1, callback: (e) => window.__heard.push(e.eventName)}"

CASES = {
    # another script made __gpp a read-only property: its own stub, with a vendor's call queued
    "read-only": f"""
      const stub = {STUB};
      stub.queue = [["ping", {RECORD}]];
      Object.defineProperty(window, "__gpp", {{value: stub, writable: false}});
    """,
    # ... or a getter with no setter, not configurable (a "frozen" window property)
    "getter-only": f"""
      const stub = {STUB};
      stub.queue = [["ping", {RECORD}]];
      Object.defineProperty(window, "__gpp", {{get: () => stub}});
    """,
    # ... or __uspapi, another CMP's (its answer stays the page's; frames get the banner's)
    "uspapi-read-only": """
      Object.defineProperty(window, "__uspapi", {value: function other() {}, writable: false});
    """,
    # a stub whose queue is an object, not a list of calls
    "queue-object": f"window.__gpp = {STUB}; window.__gpp.queue = {{ping: true}};",
    # ... a number
    "queue-number": f"window.__gpp = {STUB}; window.__gpp.queue = 3;",
    # ... a list holding a null and a well-formed call (the call is answered)
    "queue-null": f'window.__gpp = {STUB}; window.__gpp.queue = [null, 7, ["ping", {RECORD}]];',
    # a stub whose events is an object
    "events-object": f"window.__gpp = {STUB}; window.__gpp.events = {{1: {LISTENER}}};",
    # ... a string
    "events-string": f'window.__gpp = {STUB}; window.__gpp.events = "none";',
    # ... a list holding a null before a well-formed listener (which hears the CMP load)
    "events-null": f"window.__gpp = {STUB}; window.__gpp.events = [null, {LISTENER}];",
    # a message handler that is not a function (removeEventListener throws at it)
    "msghandler-string": f'window.__gpp = {STUB}; window.__gpp_msghandler = "handler";',
}
# Where the well-formed part of the stub must still be answered.
SEEN = {"read-only": ["loaded"], "getter-only": ["loaded"], "queue-null": ["loaded"]}
HEARD = {"events-null": ["cmpStatus"]}
READ_ONLY = {"read-only": "__gpp", "getter-only": "__gpp", "uspapi-read-only": "__uspapi"}

PAGE = (
    '<!doctype html><html lang="en"><head><title>shop</title>'
    '<script src="/dist/banner.min.js"></script>'
    '<script type="text/plain" data-purpose="targeted_advertising">'
    "window.__tagRan = true;</script></head>"
    "<body><main><h1>Shop</h1></main></body></html>"
)


@pytest.mark.parametrize("case", list(CASES))
def test_the_banner_survives_a_read_only_gpp_or_a_malformed_stub(
    new_context: BrowserFactory, static_site: str, case: str
) -> None:
    # Given a GPC browser on a page where another script left __gpp in that shape
    context = new_context(gpc=True)
    api = FakeConsentApi()
    api.install(context)
    context.add_init_script("window.__seen = []; window.__heard = [];" + CASES[case])
    serve_page(context, f"{static_site}/shop.html", PAGE)
    page = context.new_page()
    errors: list[str] = []
    warnings: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: m.type == "warning" and warnings.append(m.text))

    # When the banner loads
    page.goto(f"{static_site}/shop.html")

    # Then every API of its own is defined and nothing escaped (it stopped at the hand-over)
    defined = page.evaluate("() => [typeof window.__uspapi, typeof window.optoutBridge]")
    assert defined == ["function", "object"], case
    # ... Google's denied defaults were pushed
    default = page.evaluate(
        "() => [...(window.dataLayer || [])].map((c) => Array.from(c))"
        ".find((c) => c[0] === 'consent' && c[1] === 'default')"
    )
    assert default is not None, case
    assert default[2]["ad_storage"] == "denied"
    # ... the well-formed part of the stub was answered by the loaded CMP, the rest skipped
    assert page.evaluate("() => window.__seen") == SEEN.get(case, []), case
    assert page.evaluate("() => window.__heard.slice(0, 1)") == HEARD.get(case, []), case
    # ... the GPC opt-out is posted and honoured, the gated ad tag is held, the opt-out link shown
    wait_until_ready(page)
    assert [p.get("gpc") for p in api.posts] == [True], case
    assert page.evaluate("() => window.__tagRan") is None
    banner = page.locator("#optout-bridge")
    expect(banner.get_by_role("button", name="Your Privacy Choices")).to_be_visible()
    expect(banner.get_by_text("Opt-Out Request Honored")).to_be_visible()
    assert errors == [], case
    # ... and an API it could not install is said once in the console, naming only the API
    said = [w for w in warnings if "read-only" in w]
    name = READ_ONLY.get(case)
    assert said == ([f"optout-bridge: {name} is read-only"] if name else [])
    # ... the other script's function stays; frames get the banner's answers
    if name:
        assert page.evaluate(f"() => window.{name}.name") == ("other" if "usp" in name else "stub")
        reply = page.evaluate(FRAME_CALL.replace("NAME", name))
        assert reply["success"] is True
        assert reply["returnValue"]["uspString" if name == "__uspapi" else "cmpStatus"] in {
            "1YYN",
            "loaded",
        }


# A frame's call by postMessage (the page posts to itself: the banner answers event.source).
FRAME_CALL = """() => new Promise((done) => {
  addEventListener("message", (e) => e.data.NAMEReturn && done(e.data.NAMEReturn));
  const call = "NAME" === "__gpp" ? {command: "ping"} : {command: "getUSPData", version: 1};
  postMessage({NAMECall: {...call, callId: 1}}, "*");
})"""
