"""Two tabs of the same site (review browser36): one tab's opt-out reaches the other tab's
page at once, through the `storage` event, not at its next page. A gated tag that already ran
there keeps running (a script cannot be unloaded): every signal and tag from then on is opted
out.
"""

import pytest
from playwright.sync_api import expect

from .conftest import (
    BrowserFactory,
    FakeConsentApi,
    ad_tag_ran,
    decode_gpp,
    gpp_ping,
    usp_data,
    wait_until_ready,
)

pytestmark = pytest.mark.browser

# A gated tag a page adds after its load (a single-page app's next view, a tag manager);
# resolves once the banner's MutationObserver had it (its callbacks run as microtasks). The
# banner activates a tag by replacing it with a script of its type (`data-type`, else
# JavaScript): the demo's CSP would block this inline one from running, so the test reads the
# type.
LATE_TAG = """() => {
  const tag = document.createElement("script");
  tag.type = "text/plain";
  tag.dataset.purpose = "targeted_advertising";
  tag.dataset.late = "";
  tag.text = "window.__lateTagRan = true;";
  document.head.append(tag);
  return new Promise((done) => setTimeout(done));
}"""


def test_an_opt_out_in_one_tab_reaches_the_other_tabs_page_at_once(
    new_context: BrowserFactory, static_site: str
) -> None:
    # Given a tab of the shop where nobody opted out: its gated ad tag ran, Google granted
    context = new_context()
    FakeConsentApi().install(context)
    first = context.new_page()
    first.goto(f"{static_site}/index.html")
    wait_until_ready(first)
    assert ad_tag_ran(first)
    first.evaluate(
        "() => { window.__heard = [];"
        " __gpp('addEventListener', (e) => __heard.push(e.eventName)); }"
    )

    # When the person opts out of all in a second tab
    second = context.new_page()
    second.goto(f"{static_site}/index.html")
    wait_until_ready(second)
    second.locator("#optout-bridge").get_by_role("button", name="Opt out of all").click()

    # Then the first tab's page applies it without a reload: its status, __gpp listeners hear
    # sectionChange, the GPP string (IAB's decoder) and __uspapi say opted out, the usprivacy
    # cookie too, and Google is told denied
    expect(first.locator("#optout-bridge").get_by_role("status")).to_have_text("Opted out")
    assert "sectionChange" in first.evaluate("() => window.__heard")
    usnat = decode_gpp(gpp_ping(first)["gppString"])["usnat"]
    assert (usnat["SaleOptOut"], usnat["SharingOptOut"], usnat["TargetedAdvertisingOptOut"]) == (
        1,
        1,
        1,
    )
    assert usp_data(first)["uspString"] == "1YYN"
    assert [c["value"] for c in context.cookies() if c["name"] == "usprivacy"] == ["1YYN"]
    updates = first.evaluate(
        "() => dataLayer.map((c) => Array.from(c)).filter((c) => c[0] === 'consent')"
    )
    assert updates[-1][2]["ad_storage"] == "denied"
    # ... and a gated tag it adds from now on stays inert
    first.evaluate(LATE_TAG)
    assert first.locator("script[data-late]").get_attribute("type") == "text/plain"
