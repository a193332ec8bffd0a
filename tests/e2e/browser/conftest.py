"""Fixtures for the browser suite: Debian's headless Chromium driven by Playwright.

Never downloads a browser: Playwright launches /usr/bin/chromium (`make e2e-deps`). Pages are
served either by the local stack (`local_stack`) or, for the tests that need no pipeline, by a
loopback server over the same `local.static_site.StaticSite` (so the same security headers)
with the consent API answered by `FakeConsentApi`. Pages load the shipped, minified banner
(web/dist, `make banner`). npm packages the tests need in the page (IAB's reference CMP API,
axe-core) are served from web/tests/node_modules on the same origin, under /__npm/.
"""

import functools
import http.server
import json
import os
import shutil
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import (
    Browser,
    BrowserContext,
    Frame,
    Page,
    Playwright,
    Route,
    sync_playwright,
)

from local.static_site import StaticSite

ROOT = Path(__file__).resolve().parents[3]
WEB = ROOT / "web"
ARTIFACTS = ROOT / "artifacts" / "browser"
CHROMIUM = Path("/usr/bin/chromium")
DECODER = WEB / "tests" / "decode-gpp.mjs"
NODE_MODULES = WEB / "tests" / "node_modules"
SHIPPED = WEB / "dist" / "banner.min.js"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# Chromium has no GPC setting: the header goes on every request and the property is defined
# before any page script runs (as a GPC-enabled browser or extension does).
GPC_INIT_SCRIPT = (
    "Object.defineProperty(Navigator.prototype, 'globalPrivacyControl',"
    " {get: () => true, configurable: true});"
)
SALE_SHARE = ("sale", "share", "targeted_advertising", "profiling")
PURPOSES = (*SALE_SHARE, "limit_sensitive")
GPC_PURPOSES = ("sale", "share", "targeted_advertising")


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail("Debian's chromium is missing: run `make e2e-deps` (not `playwright install`)")
    chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
    yield chromium
    chromium.close()


BrowserFactory = Callable[..., BrowserContext]


@pytest.fixture
def new_context(browser: Browser) -> Iterator[BrowserFactory]:
    """Fresh, isolated browser profiles (cookies, storage); closed after the test."""
    opened: list[BrowserContext] = []

    def make(
        *,
        gpc: bool = False,
        javascript: bool = True,
        bypass_csp: bool = False,
        gpc_header_only: bool = False,
    ) -> BrowserContext:
        """`gpc_header_only`: `Sec-GPC: 1` on every request, no navigator property (a privacy
        proxy, an enterprise gateway or a header-only extension)."""
        context = browser.new_context(
            bypass_csp=bypass_csp,
            java_script_enabled=javascript,
            extra_http_headers={"Sec-GPC": "1"} if gpc or gpc_header_only else {},
            viewport={"width": 1100, "height": 760},
        )
        context.set_default_timeout(10_000)
        if gpc:
            context.add_init_script(GPC_INIT_SCRIPT)
        opened.append(context)
        return context

    yield make
    for context in opened:
        context.close()


# -- a loopback static server for web/ (no pipeline needed) --------------------------------


class _SiteHandler(http.server.BaseHTTPRequestHandler):
    """Answers GET/HEAD from web/ exactly as the local stack does (headers included)."""

    def __init__(self, *args: Any, site: StaticSite, **kwargs: Any) -> None:
        self.site = site
        super().__init__(*args, **kwargs)

    def do_GET(self) -> None:
        self._answer(head=False)

    def do_HEAD(self) -> None:
        self._answer(head=True)

    def _answer(self, head: bool) -> None:
        out = self.site.serve(urlsplit(self.path).path, head=head)
        self.send_response(out.status)
        for name, value in out.headers:
            self.send_header(name, value)
        if not head:
            self.send_header("Content-Length", str(len(out.body)))
        self.end_headers()
        self.wfile.write(out.body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _SiteServer(http.server.ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        """A page the browser left mid-answer (a test moving on) closes the socket: not an
        error of the site's. Anything else is still printed."""
        if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            super().handle_error(request, client_address)


@pytest.fixture(scope="session")
def static_site() -> Iterator[str]:
    if not SHIPPED.is_file():
        pytest.fail("web/dist/banner.min.js is missing: run `make banner`")
    handler = functools.partial(_SiteHandler, site=StaticSite(WEB))
    server = _SiteServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@dataclass
class FakeConsentApi:
    """Answers banner.js's two consent routes inside the browser (Playwright routing).

    `opt_out` is the effective state GET returns (as if the resolver had already run); posts
    are recorded and answered the way the capture API answers them.
    """

    opt_out: dict[str, bool] = field(default_factory=dict)
    gpc_honored: bool = False
    unavailable: bool = False  # GET answers 503, as an API in trouble would
    updated_at: str | None = None  # GET's updated_at (default: a past time when opted out)
    posts: list[dict[str, Any]] = field(default_factory=list)
    # POSTs (with their Idempotency-Key) in arrival order, whatever the answer was
    received: list[tuple[str | None, dict[str, Any]]] = field(default_factory=list)
    post_status: int | None = None  # POST answers this status until reset (0: network error)
    # with post_status, the answer is the API's own refusal ({"error": ...}), not a bare page
    # (a firewall's, CDN's or proxy's 4xx)
    post_refused: bool = False
    expired_tokens: bool = False  # a POST carrying identity_token answers 422 invalid_token
    # each identity_token is taken once; another POST with it answers 422 invalid_token
    single_use_tokens: bool = False
    used_tokens: set[str] = field(default_factory=set)
    hold_posts: bool = False  # POSTs wait in `held` until the test answers them
    # As the resolver would: once a POST with an identity_token was accepted, GET answers
    # this state with a new updated_at (None: a link changes nothing GET answers)
    links_to: dict[str, bool] | None = None
    held: list[Route] = field(default_factory=list)

    def install(self, context: BrowserContext) -> None:
        context.route("**/v1/consent/*", self._get)
        context.route("**/v1/consent", self._post)

    def _get(self, route: Route) -> None:
        if self.unavailable:
            route.fulfill(status=503, content_type="application/json", body='{"message":"down"}')
            return
        device_id = route.request.url.rsplit("/", 1)[1]
        body = {
            "device_id": device_id,
            "opt_out": {p: self.opt_out.get(p, False) for p in PURPOSES},
            "gpc_honored": self.gpc_honored,
            "updated_at": self.updated_at
            or ("2025-11-29T10:00:00Z" if any(self.opt_out.values()) else None),
            "gpc_signal": route.request.headers.get("sec-gpc") == "1",  # this read carried it
        }
        route.fulfill(status=200, content_type="application/json", body=json.dumps(body))

    def _post(self, route: Route) -> None:
        sent = json.loads(route.request.post_data or "{}")
        self.received.append((route.request.headers.get("idempotency-key"), sent))
        if self.hold_posts:
            self.held.append(route)
            return
        self.answer(route)

    def answer(self, route: Route) -> None:
        """Answers a POST as the capture API would (or as configured to fail)."""
        sent = json.loads(route.request.post_data or "{}")
        if self.post_status == 0:
            route.abort("connectionreset")
            return
        if self.post_status is not None and self.post_refused:
            error = {"code": "invalid", "message": "refused", "field": "page_url"}
            refusal = json.dumps({"error": error})
            route.fulfill(status=self.post_status, content_type="application/json", body=refusal)
            return
        if self.post_status is not None:
            route.fulfill(status=self.post_status, content_type="text/html", body="<h1>No</h1>")
            return
        used = sent.get("identity_token") in self.used_tokens
        if "identity_token" in sent and (self.expired_tokens or used):
            error = {"code": "invalid_token", "message": "expired", "field": "identity_token"}
            route.fulfill(
                status=422, content_type="application/json", body=json.dumps({"error": error})
            )
            return
        if self.single_use_tokens and "identity_token" in sent:
            self.used_tokens.add(sent["identity_token"])
        if self.links_to is not None and "identity_token" in sent:
            self.opt_out = dict(self.links_to)
            self.updated_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        self.posts.append(sent)
        gpc = route.request.headers.get("sec-gpc") == "1" or sent.get("gpc") is True
        # The answer says what the request records: an unconfirmed opt-in is left out.
        confirmed = sent.get("confirm_opt_in") is True
        choices = {p: v for p, v in sent.get("opt_out", {}).items() if v or confirmed}
        if gpc:
            choices.update(dict.fromkeys(GPC_PURPOSES, True))
        body = {
            "request_id": str(uuid.uuid4()),
            "device_id": sent["device_id"],
            "opt_out": choices,
            "gpc_honored": gpc,
        }
        route.fulfill(status=202, content_type="application/json", body=json.dumps(body))


def serve_npm(context: BrowserContext, site: str) -> None:
    """Serves web/tests/node_modules at {site}/__npm/ (same origin: the pages' CSP allows it)."""

    def answer(route: Route) -> None:
        relative = urlsplit(route.request.url).path.removeprefix("/__npm/")
        target = (NODE_MODULES / relative).resolve()
        if NODE_MODULES.resolve() not in target.parents or not target.is_file():
            route.fulfill(status=404, body="not found")
            return
        route.fulfill(status=200, content_type="text/javascript", body=target.read_bytes())

    context.route(f"{site}/__npm/**", answer)


def serve_page(context: BrowserContext, url: str, html: str) -> None:
    """A page the test writes itself, at `url` on the static site's origin (no CSP)."""
    context.route(url, lambda route: route.fulfill(status=200, content_type="text/html", body=html))


def serve_logged_in_page(context: BrowserContext, site: str, token: str) -> str:
    """An account page whose login backend rendered `token` on the banner's tag; its URL."""
    html = (
        '<!doctype html><html lang="en"><head><title>Your account</title>'
        f'<script src="/dist/banner.min.js" data-identity-token="{token}"></script></head>'
        "<body><main><h1>Your account</h1></main></body></html>"
    )
    serve_page(context, f"{site}/account.html", html)
    return f"{site}/account.html"


# -- helpers ------------------------------------------------------------------------------


def decode_gpp(gpp_string: str) -> dict[str, Any]:
    """Decodes with IAB's reference library (@iabgpp/cmpapi) through web/tests/decode-gpp.mjs."""
    node = shutil.which("node")
    if node is None or not (WEB / "tests" / "node_modules" / "@iabgpp").is_dir():
        pytest.fail("node or @iabgpp/cmpapi missing: run `make e2e-deps`")
    done = subprocess.run(
        [node, str(DECODER), gpp_string], capture_output=True, text=True, check=False, timeout=30
    )
    assert done.returncode == 0, f"IAB decoder refused {gpp_string!r}: {done.stderr}"
    decoded: dict[str, Any] = json.loads(done.stdout)
    return decoded


@contextmanager
def consent_posted(page: Page) -> Iterator[None]:
    """Waits, after the block, until banner.js's POST /v1/consent has been answered (so the
    fake API has recorded it: the post goes out after the page already applied the choice)."""
    with page.expect_response(
        lambda r: r.url.endswith("/v1/consent") and r.request.method == "POST"
    ):
        yield


def gpp_call(page: Page, command: str, parameter: Any = None) -> list[Any]:
    """[data, success] as __gpp's callback receives them (it answers synchronously)."""
    answer: list[Any] = page.evaluate(
        "([command, parameter]) => { let out = null;"
        " window.__gpp(command, (data, success) => { out = out || [data, success]; }, parameter);"
        " return JSON.parse(JSON.stringify(out)); }",
        [command, parameter],
    )
    return answer


def gpp_ping(page: Page) -> dict[str, Any]:
    ping: dict[str, Any] = page.evaluate(
        "() => new Promise((resolve) => window.__gpp('ping', (data) => resolve(data)))"
    )
    return ping


def usp_data(page: Page) -> dict[str, Any]:
    data: dict[str, Any] = page.evaluate(
        "() => new Promise((resolve) =>"
        " window.__uspapi('getUSPData', 1, (data, ok) => resolve({...data, ok})))"
    )
    return data


def add_ad_frame(page: Page, name: str = "ad") -> Frame:
    """A same-origin child frame (named "ad"), loaded: a stand-in for an ad tag's frame."""
    page.evaluate(
        """(name) => new Promise((resolve) => {
          const frame = document.createElement("iframe");
          Object.assign(frame, { name, srcdoc: "ad" });
          frame.onload = resolve;
          document.body.append(frame);
        })""",
        name,
    )
    frame = page.frame(name=name)
    assert frame is not None
    return frame


def wait_until_ready(page: Page) -> None:
    """banner.js has read the effective state (or given up): optoutBridge.ready settled."""
    page.wait_for_function("() => window.optoutBridge && window.optoutBridge.state().known")
    page.evaluate("() => window.optoutBridge.ready")


def screenshot(page: Page, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


# -- the local stack (tests 1-4 need the whole pipeline) -----------------------------------


@pytest.fixture
def stack_url(request: pytest.FixtureRequest) -> str:
    """Base URL of the local stack: the shared `local_stack` fixture (tests/e2e/conftest.py),
    or an already running `python -m local` named by OPTOUT_STACK_URL (for development)."""
    given = os.environ.get("OPTOUT_STACK_URL")
    if given:
        return given.rstrip("/")
    try:
        stack = request.getfixturevalue("local_stack")
    except pytest.FixtureLookupError:
        pytest.skip("no local_stack fixture (tests/e2e/conftest.py) and no OPTOUT_STACK_URL")
    return str(stack.url).rstrip("/")


def get_json(url: str) -> Any:
    if not url.startswith("http://127.0.0.1:"):
        raise ValueError(f"loopback only: {url}")
    with urllib.request.urlopen(url, timeout=5) as answer:
        return json.load(answer)


def eventually(check: Callable[[], Any], what: str, timeout: float = 20.0) -> Any:
    """Polls `check` until it returns something truthy; the pipeline is asynchronous."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.25)


def consent_state(stack: str, device_id: str) -> dict[str, Any]:
    state: dict[str, Any] = get_json(f"{stack}/v1/consent/{device_id}")
    return state


def device_id_of(context: BrowserContext) -> str:
    return next(c["value"] for c in context.cookies() if c["name"] == "optout_device_id")


def ad_tag_ran(page: Page) -> bool:
    """Whether banner.js activated the demo's targeted-ad tag; when it did, waits for the
    browser to fetch and run it (an activated tag with a src runs asynchronously)."""
    activated = page.locator(
        'script[data-purpose="targeted_advertising"]:not([type="text/plain"])'
    ).count()
    if activated:
        page.wait_for_function("() => window.__adTagRan === true")
    return bool(page.evaluate("() => window.__adTagRan === true"))


def partner_pixel_ran(page: Page) -> bool:
    """The same for the demo's sale/share pixel."""
    if page.locator('script[data-purpose="sale share"]:not([type="text/plain"])').count():
        page.wait_for_function("() => window.__partnerPixelRan === true")
    return bool(page.evaluate("() => window.__partnerPixelRan === true"))
