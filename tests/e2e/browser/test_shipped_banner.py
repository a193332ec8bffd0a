"""The file a site embeds, as `make banner` ships it: web/dist/banner.min.js, within its size
budget, with a Subresource Integrity hash beside it that browsers accept, embedded the way the
README says."""

import base64
import hashlib
import json
import os
import re
import shutil
import subprocess

import pytest

from .conftest import ROOT, SHIPPED, WEB, BrowserFactory, FakeConsentApi, serve_page

pytestmark = pytest.mark.browser

BUDGET = 8470  # bytes, minified and gzipped: the build's figure (scripts/build-banner.mjs)
SRI = SHIPPED.with_name("banner.min.js.sri")


def test_the_shipped_banner_fits_the_size_budget_gzipped() -> None:
    # Measured by the build script itself (node's zlib): Python's gzip makes a smaller file of
    # the same input (41 B in session 28), so it would pass a file the build refuses.
    node = shutil.which("node")
    assert node is not None, "node missing: run `make e2e-deps`"
    env = {k: v for k, v in os.environ.items() if k != "BUDGET"}
    check = [node, str(ROOT / "scripts" / "build-banner.mjs"), "--check"]
    run = subprocess.run(check, capture_output=True, text=True, env=env, timeout=60, check=False)
    measured = json.loads(run.stdout)
    assert measured["budget"] == BUDGET  # one budget: the build's
    assert measured["gzipped"] <= BUDGET and run.returncode == 0, measured
    shipped = SHIPPED.read_bytes()
    assert len(shipped) < len((WEB / "banner.js").read_bytes())  # it is the minified build


def test_the_shipped_banner_is_built_from_the_current_source() -> None:
    assert SHIPPED.stat().st_mtime >= (WEB / "banner.js").stat().st_mtime, "run `make banner`"


def test_the_integrity_file_holds_the_sha384_of_the_shipped_file() -> None:
    digest = base64.b64encode(hashlib.sha384(SHIPPED.read_bytes()).digest()).decode()
    assert SRI.read_text().strip() == f"sha384-{digest}"


@pytest.mark.parametrize(("integrity", "runs"), [("published", True), ("tampered", False)])
def test_a_browser_runs_the_banner_only_when_its_integrity_matches(
    new_context: BrowserFactory, static_site: str, integrity: str, runs: bool
) -> None:
    # Given a page embedding the shipped file with the published hash (or another one)
    published = SRI.read_text().strip()
    value = published if integrity == "published" else "sha384-" + "A" * 64
    context = new_context()
    FakeConsentApi().install(context)
    html = (
        '<!doctype html><html lang="en"><head><title>embed</title>'
        f'<script src="/dist/banner.min.js" integrity="{value}" crossorigin="anonymous">'
        "</script></head><body><main><h1>Shop</h1></main></body></html>"
    )
    serve_page(context, f"{static_site}/embed.html", html)
    page = context.new_page()

    # When it loads
    page.goto(f"{static_site}/embed.html")
    page.wait_for_load_state("load")

    # Then the browser ran it only with the matching hash
    assert page.evaluate("() => typeof window.optoutBridge === 'object'") is runs


def test_the_readme_embeds_the_minified_file_with_integrity_and_crossorigin() -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## In the browser", 1)[1].split("\n## ", 1)[0]
    tag = re.search(r"<script [^>]*banner[^>]*>", section)
    assert tag is not None
    assert "/dist/banner.min.js" in tag.group(0)
    assert 'integrity="sha384-' in tag.group(0)
    assert 'crossorigin="anonymous"' in tag.group(0)
