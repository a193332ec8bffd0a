"""banner.js's __gpp against IAB's own implementation of the CMP API (@iabgpp/cmpapi).

For each state (first visit, opted out, GPC on, sensitive data limited, opting back in), in
Chromium: the banner runs on one page; on another page of the same origin IAB's `CmpApi` is
given the same consent (the usnat fields this test derives from the state, independently of
banner.js) and driven through the same status changes. Every generic command (ping,
addEventListener and the events a listener receives, removeEventListener, hasSection,
getSection, getField) must answer the same, and the GPP string must decode, with IAB's
decoder, to the same fields.

One documented difference: the CMP API specification ("getSection"; PingReturn
"parsedSections") says a section is an *array of sub-section objects*; @iabgpp/cmpapi 3.2.0
still answers one flat object (IABTechLab/iabgpp-es issue #48, open). banner.js follows the
specification; `as_subsections` turns the reference's flat answer into the specification's
shape (core fields, then the GPC sub-section {SubsectionType, Gpc}) before comparing.
"""

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from .conftest import (
    GPC_PURPOSES,
    SALE_SHARE,
    BrowserFactory,
    FakeConsentApi,
    consent_posted,
    decode_gpp,
    serve_npm,
    serve_page,
    wait_until_ready,
)

pytestmark = pytest.mark.browser

# The business's own usnat statements for this page: it processes three sensitive categories
# with the person's consent, and is an MSPA covered transaction in opt-out option mode.
SENSITIVE = [2, 2, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0]
USNAT_CONFIG = {
    "SensitiveDataProcessing": SENSITIVE,
    "MspaCoveredTransaction": 1,
    "MspaOptOutOptionMode": 1,
    "MspaServiceProviderMode": 2,
}
BANNER_PAGE = f"""<!doctype html><html lang="en"><head><title>GPP conformance</title>
<script src="/dist/banner.min.js" data-usnat='{json.dumps(USNAT_CONFIG)}'></script>
</head><body><main><h1>Conformance</h1></main></body></html>"""
REFERENCE_PAGE = """<!doctype html><html lang="en"><head><title>IAB reference CMP API</title>
<script type="module">
import { CmpApi } from "/__npm/@iabgpp/cmpapi/lib/mjs/index.js";
window.CmpApi = CmpApi;
</script></head><body><main><h1>Reference</h1></main></body></html>"""

# Runs in either page: every generic command, with good and bad parameters.
COLLECT_ANSWERS = """(fieldNames) => {
  const call = (command, parameter) => {
    let out = null;
    window.__gpp(command, (data, success) => { out = out || [data, success]; }, parameter);
    return out;
  };
  const answers = { ping: call("ping") };
  for (const name of ["usnat", "usca", "tcfeuv2", ""]) {
    answers[`hasSection ${name}`] = call("hasSection", name);
    answers[`getSection ${name}`] = call("getSection", name);
  }
  for (const name of fieldNames) answers[`getField ${name}`] = call("getField", name);
  answers.addEventListener = call("addEventListener");
  const id = answers.addEventListener[0].listenerId;
  answers["removeEventListener unknown"] = call("removeEventListener", 4242);
  answers.removeEventListener = call("removeEventListener", id);
  answers["removeEventListener again"] = call("removeEventListener", id);
  answers["unknown command"] = call("getTCData");
  return JSON.parse(JSON.stringify(answers));
}"""
# Registers a listener that records every event it receives (the first is its registration).
RECORD_EVENTS = """() => {
  window.__events = [];
  const record = (event) => window.__events.push(JSON.parse(JSON.stringify(event)));
  window.__gpp("addEventListener", record);
}"""
# Sets the reference up as a loaded CMP with the given usnat fields, then runs status steps.
REFERENCE_SETUP = """([fields, display]) => {
  const api = new window.CmpApi(1, 1); // cmpId 1: a CMP that is not registered (spec)
  window.api = api;
  api.setSupportedAPIs(["7:usnat"]);
  api.setApplicableSections([7]);
  for (const [name, value] of Object.entries(fields)) api.setFieldValue("usnat", name, value);
  api.setCmpStatus("loaded");
  api.setCmpDisplayStatus(display);
  api.setSignalStatus("ready");
}"""
REFERENCE_STEPS = """(steps) => {
  for (const [step, value] of steps) {
    if (step === "signal") window.api.setSignalStatus(value);
    else if (step === "display") window.api.setCmpDisplayStatus(value);
    else if (step === "sectionChange") window.api.fireSectionChange(value);
    else for (const [name, v] of Object.entries(value)) window.api.setFieldValue("usnat", name, v);
  }
}"""
BAD_FIELDS = [
    "usnat.Nope", "usca.SaleOptOut", "usnat", "usnat.SaleOptOut.Extra", "usnat.toString", "",
]  # fmt: skip


def expected_usnat(opt_out: dict[str, bool], gpc: bool) -> dict[str, Any]:
    """The usnat fields a consent state means for this page's configuration, by the MSPA US
    National section: notices given (1), each opt-out 1 (opted out) or 2 (did not), a limit
    turns every processed sensitive category into 1 (no consent), GPC in its sub-section."""

    def choice(purpose: str) -> int:
        return 1 if opt_out.get(purpose) or (gpc and purpose in GPC_PURPOSES) else 2

    limited = bool(opt_out.get("limit_sensitive"))
    return {
        "Version": 2,
        "SharingNotice": 1,
        "SaleOptOutNotice": 1,
        "SharingOptOutNotice": 1,
        "TargetedAdvertisingOptOutNotice": 1,
        "SensitiveDataProcessingOptOutNotice": 1,
        "SensitiveDataLimitUseNotice": 1,
        "SaleOptOut": choice("sale"),
        "SharingOptOut": choice("share"),
        "TargetedAdvertisingOptOut": choice("targeted_advertising"),
        "SensitiveDataProcessing": [1 if value and limited else value for value in SENSITIVE],
        "KnownChildSensitiveDataConsents": [0, 0, 0],
        "PersonalDataConsents": 0,
        "MspaCoveredTransaction": 1,
        "MspaOptOutOptionMode": 1,
        "MspaServiceProviderMode": 2,
        "GpcSegmentIncluded": True,
        "Gpc": gpc,
    }


def as_subsections(flat: dict[str, Any]) -> list[dict[str, Any]]:
    """The reference's flat usnat object in the specification's shape (see module docstring)."""
    core = {k: v for k, v in flat.items() if k not in ("GpcSegmentType", "Gpc")}
    return [core, {"SubsectionType": flat["GpcSegmentType"], "Gpc": flat["Gpc"]}]


def to_spec_shape(value: Any) -> Any:
    if isinstance(value, list):
        return [to_spec_shape(v) for v in value]
    if not isinstance(value, dict):
        return value
    out = {k: to_spec_shape(v) for k, v in value.items()}
    if isinstance(out.get("parsedSections"), dict):
        out["parsedSections"] = {n: as_subsections(s) for n, s in out["parsedSections"].items()}
    return out


ALL_SALE_SHARE_OUT = dict.fromkeys(SALE_SHARE, True)


@dataclass
class Case:
    """A state and the status changes a listener then sees (CMP API spec, event examples)."""

    name: str
    server: dict[str, bool]  # the effective state GET /v1/consent answers
    gpc: bool
    display: str  # cmpDisplayStatus once the state is shown
    act: Callable[[Page], None]  # what the visitor does while the listener records
    steps: list[tuple[str, Any]]  # the same changes, told to the reference
    after: dict[str, bool] = field(default_factory=dict)  # the state after `act`


def _open_and_close(page: Page, opener: str) -> None:
    banner = page.locator("#optout-bridge")
    banner.get_by_role("button", name=opener).click()
    banner.get_by_role("button", name="Close").click()


def _opt_back_in(page: Page) -> None:
    banner = page.locator("#optout-bridge")
    banner.get_by_role("button", name="Your Privacy Choices").click()
    for purpose in ("Sale of my", "Sharing for", "Targeted", "Profiling"):
        banner.get_by_label(f"Opt out: {purpose}", exact=False).uncheck()
    page.once("dialog", lambda dialog: dialog.accept())
    with consent_posted(page):
        banner.get_by_role("button", name="Save choices").click()
    # An opt-in applies once the API's state has it (the next state read), not at the click
    # nor at the POST's answer (review s26 F3): the page stays as opted out as the state.
    status = banner.locator("[data-optout-status]")
    expect(status).to_contain_text("Opt-in saved, not applied yet")
    assert page.evaluate("() => window.optoutBridge.state().optOut.sale") is True


# Opening the choices then closing them: "not ready", the layer shown, hidden, "ready".
PILL_ROUND_TRIP = [
    ("signal", "not ready"),
    ("display", "visible"),
    ("display", "hidden"),
    ("signal", "ready"),
]
CASES = [
    Case(
        "first_visit", {}, False, "visible",
        lambda page: _open_and_close(page, "Choose"),
        [("signal", "not ready"), ("signal", "ready")],  # the layer stays visible
    ),
    Case(
        "opted_out", ALL_SALE_SHARE_OUT, False, "hidden",
        lambda page: _open_and_close(page, "Your Privacy Choices"), PILL_ROUND_TRIP,
    ),
    Case(
        "gpc_on", {}, True, "hidden",
        lambda page: _open_and_close(page, "Your Privacy Choices"), PILL_ROUND_TRIP,
    ),
    Case(
        "limit_sensitive_on", {"limit_sensitive": True}, False, "hidden",
        lambda page: _open_and_close(page, "Your Privacy Choices"), PILL_ROUND_TRIP,
    ),
    Case(  # the opt-in is saved: nothing changes until the API's state has it
        "opting_back_in", ALL_SALE_SHARE_OUT, False, "hidden", _opt_back_in, PILL_ROUND_TRIP,
    ),
]  # fmt: skip


def _reference(context: BrowserContext, site: str, case: Case) -> Page:
    serve_npm(context, site)
    serve_page(context, f"{site}/reference.html", REFERENCE_PAGE)
    page = context.new_page()
    page.goto(f"{site}/reference.html")
    page.wait_for_function("() => window.CmpApi")
    page.evaluate(REFERENCE_SETUP, [expected_usnat(case.server, case.gpc), case.display])
    return page


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_every_gpp_command_answers_what_iabs_reference_answers(
    new_context: BrowserFactory, static_site: str, case: Case
) -> None:
    # Given the banner in this state, and IAB's CmpApi given the same consent
    context = new_context(gpc=case.gpc)
    api = FakeConsentApi(opt_out=case.server)
    api.install(context)
    serve_page(context, f"{static_site}/conformance.html", BANNER_PAGE)
    banner = context.new_page()
    banner.goto(f"{static_site}/conformance.html")
    wait_until_ready(banner)
    banner.wait_for_function(
        "(display) => { let d; window.__gpp('ping', (p) => (d = p)); return d.cmpDisplayStatus"
        " === display && d.signalStatus === 'ready'; }",
        arg=case.display,
    )
    reference = _reference(context, static_site, case)

    # When a listener records what the visitor then does, and the reference is told the same
    for page in (banner, reference):
        page.evaluate(RECORD_EVENTS)
    case.act(banner)
    banner.wait_for_function(
        "() => { let d; window.__gpp('ping', (p) => (d = p)); return d.signalStatus === 'ready'; }"
    )
    reference.evaluate(REFERENCE_STEPS, case.steps)

    # Then the listener received the same events with the same data, in the same order
    seen = banner.evaluate("() => window.__events")
    assert seen == to_spec_shape(reference.evaluate("() => window.__events"))
    assert seen[0]["eventName"] == "listenerRegistered"
    assert seen[-1]["eventName"] == "signalStatus"  # "ready" is the last event of a change

    # And every command answers what the reference answers
    names = reference.evaluate("() => Object.keys(window.api.getSection('usnat'))")
    fields = [f"usnat.{n}" for n in [*names, "GpcSegmentIncluded"]] + BAD_FIELDS
    ours = banner.evaluate(COLLECT_ANSWERS, fields)
    theirs = to_spec_shape(reference.evaluate(COLLECT_ANSWERS, fields))
    theirs["getSection usnat"][0] = as_subsections(theirs["getSection usnat"][0])
    assert ours.keys() == theirs.keys()
    for command in ours:
        assert ours[command] == theirs[command], command
    ping = ours["ping"][0]
    assert (ping["cmpId"], ping["applicableSections"], ping["sectionList"]) == (1, [7], [7])

    # And IAB's decoder reads the banner's string as exactly the state's fields
    expected = expected_usnat({**case.server, **case.after}, case.gpc)
    decoded = decode_gpp(ping["gppString"])
    assert decoded["canonical"] == ping["gppString"]
    assert decoded["usnat"] == {
        **{k: v for k, v in expected.items() if k != "GpcSegmentIncluded"},
        "GpcSegmentType": 1,
    }
    if case.name == "opting_back_in":  # the API is told the opt-in was confirmed (§7028)
        assert api.posts[-1]["confirm_opt_in"] is True
