"""The demo site's files are served with the headers a production host should send."""

from pathlib import Path

import pytest

from local.static_site import StaticSite


@pytest.fixture
def site(tmp_path: Path) -> StaticSite:
    (tmp_path / "index.html").write_text("<h1>shop</h1>")
    (tmp_path / "dist").mkdir()
    (tmp_path / "dist" / "banner.min.js").write_text("/*! banner */")
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "package.json").write_text("{}")
    return StaticSite(tmp_path)


def test_pages_carry_a_policy_that_runs_only_same_origin_scripts_and_is_never_framed(
    site: StaticSite,
) -> None:
    answer = site.serve("/")
    headers = dict(answer.headers)
    assert answer.status == 200
    csp = [part.strip() for part in headers["Content-Security-Policy"].split(";")]
    assert "script-src 'self'" in csp
    assert "frame-ancestors 'none'" in csp
    assert "object-src 'none'" in csp
    assert not any("unsafe-inline" in part for part in csp)
    assert headers["X-Content-Type-Options"] == "nosniff"
    # ... and a site that opens one cannot read the visitor's choices through its handle
    assert headers["Cross-Origin-Opener-Policy"] == "same-origin"


def test_the_built_banner_is_served_as_javascript_and_never_sniffed(site: StaticSite) -> None:
    headers = dict(site.serve("/dist/banner.min.js").headers)
    assert headers["Content-Type"] == "text/javascript; charset=utf-8"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert "Content-Security-Policy" not in headers  # a policy governs documents, not scripts


def test_the_site_test_tooling_is_not_served(site: StaticSite) -> None:
    assert site.serve("/tests/package.json").status == 404
