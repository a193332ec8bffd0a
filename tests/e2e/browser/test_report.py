"""`optout report --format html` opens in Chromium as one self-contained file, and its three
charts are drawn: one bar per figure, sized by it. A screenshot for the README is kept in
artifacts/browser (docs/images/report.png is a copy).

The figures are the metrics route's (`optout.ops.metrics.figures`) over a year of ledgers made
from 1,200 synthetic requests; tests/integration/test_compliance_metrics.py checks those
figures against the stored records, and tests/integration/test_cli.py the route behind them.
"""

import random
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page

from optout.ops.contribution import SOURCES, Contribution, Outcome
from optout.ops.metrics import figures
from tests.e2e.browser.conftest import screenshot
from tests.support.cli import LOCAL_URL, optout

OUTCOMES: tuple[Outcome, ...] = ("complied_whole",) * 14 + (
    "complied_part", "failed", "denied", "open",
)  # fmt: skip
SYSTEMS = ("braze", "salesforce", "segment", "google_ads", "meta")


def a_year_of_figures() -> dict[str, Any]:
    """2026's figures from 1,200 requests (a fixed random mix of sources, outcomes, systems,
    jurisdictions, purposes and response times, busier in the autumn), 9 of them overdue at
    the watch's last run."""
    pick = random.Random(2026)
    ledgers: dict[str, dict[str, Any]] = {}
    for n in range(1200):
        received = date(2026, 1, 1) + timedelta(days=int(pick.triangular(0, 332, 300)))
        outcome = pick.choice(OUTCOMES)
        hours = None if outcome == "open" else int(pick.lognormvariate(3.2, 0.8)) + 1
        state = {"failed": "failed", "open": "processing"}.get(outcome, "done")
        systems = {s: "failed" if pick.random() < 0.02 else state
                   for s in pick.sample(SYSTEMS, pick.randint(2, 5))}  # fmt: skip
        region = pick.choices(("ca", "other", "unknown"), (8, 3, 1))[0]
        found = Contribution(f"{n:08x}", received.isoformat(), "", pick.choice(SOURCES),
                             outcome, "", hours, systems, region=region,
                             sale_share=pick.random() < 0.85)  # fmt: skip
        ledger = ledgers.setdefault(found.day, {"sk": f"{found.day}#0"})
        for name, value in found.counters().items():
            ledger[name] = ledger.get(name, 0) + value
    watch = {"run_at": "2026-11-29T12:00:00Z", "overdue": 9,
             "overdue_by_system": {"salesforce": 6, "meta": 3},
             "overdue_by_year": {"2026": {"overdue": 9,
                                          "by_system": {"salesforce": 6, "meta": 3}}}}  # fmt: skip
    return figures(2026, list(ledgers.values()), watch, "2026-11-29T12:00:00Z")


@pytest.fixture
def report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> Iterator[tuple[Path, dict[str, Any]]]:
    """The html report as `optout report` writes it, and the figures it was drawn from."""
    year = a_year_of_figures()
    route = httpx.MockTransport(lambda request: httpx.Response(200, json=year))
    path = tmp_path / "report-2026.html"
    ran = optout(capsys, route, "--base-url", LOCAL_URL, "report", "--year", "2026",
                 "--format", "html", "--output", str(path))  # fmt: skip
    assert ran.code == 0, ran.err
    yield path, year


def bars(page: Page, selector: str) -> list[dict[str, Any]]:
    """Every matching bar as drawn: its box on the page, its tooltip and data attributes."""
    found: list[dict[str, Any]] = page.eval_on_selector_all(
        selector,
        """els => els.map(e => {
            const box = e.getBoundingClientRect();
            return {width: box.width, height: box.height, title: e.textContent,
                    data: Object.assign({}, e.dataset)};
        })""",
    )
    return found


def test_the_html_report_draws_its_three_charts_from_nothing_but_itself(
    browser: Browser, report: tuple[Path, dict[str, Any]]
) -> None:
    path, year = report
    context = browser.new_context(viewport={"width": 900, "height": 900})
    page = context.new_page()
    fetched: list[str] = []
    page.on("request", lambda request: fetched.append(request.url))
    # When the report is opened from disk
    page.goto(path.as_uri())
    # Then it fetched nothing but itself (no CDN, no script, no font)
    assert fetched == [path.as_uri()]
    # ... the weekly chart has one drawn bar per (week, source) with requests
    weekly = bars(page, "#chart-weekly rect.bar")
    assert len(weekly) == sum(1 for w in year["weekly"] for s in SOURCES if w[s]) > 100
    assert all(b["width"] > 0 and b["height"] > 0 for b in weekly)
    # ... sized by their counts: a bar of 4 requests is twice as tall as one of 2
    heights = {int(b["title"].split(": ")[1].split()[0]): b["height"] for b in weekly}
    assert heights[4] == pytest.approx(2 * heights[2], rel=0.02)
    # ... one bar per day bucket of the days-to-respond histogram
    days = bars(page, "#chart-days rect.bar")
    assert [int(b["data"]["days"]) for b in days] == [
        b["days"] for b in year["days_to_respond_histogram"]
    ]
    assert all(b["height"] > 0 for b in days)
    # ... and per system a success-rate bar as wide as its rate, and its overdue count
    rates = bars(page, "#chart-systems rect.rate")
    assert sorted(b["data"]["system"] for b in rates) == sorted(SYSTEMS)
    for bar in rates:
        rate = year["systems"][bar["data"]["system"]]["success_rate"]
        assert bar["width"] == pytest.approx(380 * rate, abs=1)
    overdue = {b["data"]["system"]: b["width"] for b in bars(page, "#chart-systems rect.overdue")}
    assert overdue["salesforce"] == pytest.approx(2 * overdue["meta"], rel=0.02)
    alert = page.locator(".alert").inner_text()
    assert alert.startswith("9 requests received in 2026 are past the deadline")
    screenshot(page, "report-2026")
    context.close()
