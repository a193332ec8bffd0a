"""The HTTP front on 127.0.0.1: the capture API, the sandboxes, the local routes and the site.

Routing, in order: the template's HttpApi routes (each to the real handler of the function the
template names for it, as API Gateway payload 2.0 events), then for any other path under
/v1/ the template's `$default` route (as API Gateway sends it every request no route
matches), `/_sandbox/...`, `/_local/requests[/ids]`, `/_local/queues`, `/_local/systems`,
then the static site.
CORS comes from the template's CorsConfiguration, as API Gateway applies it: preflights on
API paths are answered here (before the $default route: API Gateway answers them itself),
and every API answer gets the API's CORS headers in place of the function's.
Bodies are framed by local/request_body.py (Content-Length or chunked, within the functions'
limit); a body or request it refuses, and http.server's own refusals, answer in the error
envelope (docs/local-stack.md, "Hostile HTTP at the front").
"""

import logging
import sys
import threading
import time
from collections.abc import Callable, Mapping
from email import errors as email_errors
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol
from urllib.parse import urlsplit

from local import apigw, crash_report, demo_login, request_body
from local.http_types import Incoming, Outgoing, error_answer
from local.queues_view import PATH as QUEUES_PATH
from local.queues_view import QueuesView
from local.requests_view import IDS_PATH as REQUEST_IDS_PATH
from local.requests_view import PATH as REQUESTS_PATH
from local.requests_view import RequestsView
from local.sandbox_routes import PREFIX as SANDBOX_PREFIX
from local.sandbox_routes import SandboxRoutes
from local.static_site import StaticSite
from local.template_config import Cors, Route
from optout.settings import Settings

log = logging.getLogger("local.http")

Invoke = Callable[[dict[str, Any]], Any]
SYSTEMS_PATH = "/_local/systems"


class LocalRoute(Protocol):
    def serve(self, request: Incoming) -> Outgoing: ...


API_PREFIX = "/v1/"
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "date", "server"}
MAX_BODY_BYTES = Settings.max_body_bytes  # the functions' limit (16 KiB unless set otherwise)
# After a refusal, what the client still sends is read and dropped, up to API Gateway's 10 MB
# payload limit, while it keeps coming (at most a second apart, ten seconds in all).
DISCARD_MAX_BYTES = 10 * 1024 * 1024
DISCARD_SECONDS = 10.0
DISCARD_IDLE_SECONDS = 1.0
# http.server's refusals, in our words (its own quote the request).
PROTOCOL_REFUSALS = {
    400: ("bad_request", "the request is not valid HTTP/1.1"),
    414: ("uri_too_long", "the request line is over 64 KiB"),
    431: ("headers_too_large", "a header line is over 64 KiB, or there are over 100 headers"),
    501: ("not_implemented", "this method is not supported"),
    505: ("http_version_not_supported", "send HTTP/1.1"),
}


# The names this machine's own clients reach the stack by (with its port). A browser sends the
# name in its address bar: a page whose name an attacker rebound to 127.0.0.1 ("DNS
# rebinding") sends its own, and is refused before any route reads its request (review s32
# contract F1). Not [::1]: FrontServer listens on 127.0.0.1 only (review s32 edge E6).
LOOPBACK_NAMES = ("127.0.0.1", "localhost")
MISDIRECTED = (
    421,
    "misdirected_request",
    "the local stack answers only http://127.0.0.1 or localhost on its own port",
)
# On every refusal the front writes itself, as on the API's own answers.
REFUSAL_HEADERS = [("X-Content-Type-Options", "nosniff"), ("Cache-Control", "no-store")]
# A header line that is not `name: value` (RFC 9112 5.1: no whitespace before the colon; 5.2:
# no obs-fold; RFC 9110 5.5: no CR, LF or NUL in a value). http.server's parser stops at such a
# line and drops it and every header after it, Content-Length and Transfer-Encoding included:
# the body was then read as the next request on the connection (review s35 outside F1).
MALFORMED_HEADERS = (
    400,
    "bad_request",
    "a header line is not `name: value`: whitespace before the colon, no colon or no name, a "
    "folded (continued) line, or a CR, LF or NUL in a value",
)
HEADER_DEFECTS = (
    email_errors.MissingHeaderBodySeparatorDefect,  # a line with no colon, or space before it
    email_errors.FirstHeaderLineIsContinuationDefect,
    email_errors.InvalidHeaderDefect,  # no name before the colon
    email_errors.MisplacedEnvelopeHeaderDefect,  # a `From ` line after the first
)


def malformed_header_lines(headers: Message) -> bool:
    """Whether http.server's parse of the header block hid a line it could not read: a line
    with no colon, whitespace before it or no name, a first line that continues nothing, a
    `From ` line it took for a mailbox's envelope, or a value holding CR, LF or NUL (an obs-fold
    line is joined onto the one before with its CRLF). Only these defects of the header
    parse: a multipart or message/* Content-Type adds defects of its own about the (absent)
    body, and such a request is capture's to refuse (415), not a malformed one."""
    payload = headers.get_payload()  # what the parse left after the headers (a last `From `)
    if headers.get_unixfrom() is not None or (isinstance(payload, str) and payload):
        return True
    if any(isinstance(defect, HEADER_DEFECTS) for defect in headers.defects):
        return True
    return any(any(c in str(value) for c in "\r\n\0") for value in headers.values())


def host_allowed(hosts: list[str], target: str, bound: str, port: int) -> bool:
    """Whether a request names the stack: exactly one Host header, a loopback name (or the
    bound host) with the stack's port (bare on port 80), and an absolute-form target naming
    the same. No Host at all passes (HTTP/1.0 tools; every browser sends one)."""
    names = {name.lower() for name in (*LOOPBACK_NAMES, bound)}
    allowed = {f"{name}:{port}" for name in names} | (names if port == 80 else set())
    if len(hosts) > 1 or any(host.strip().lower() not in allowed for host in hosts):
        return False
    if target.startswith("/") or "://" not in target:  # origin-form ("//x" included)
        return True
    return urlsplit(target).netloc.lower() in allowed


class Front:
    def __init__(
        self,
        routes: list[Route],
        functions: Mapping[str, Invoke],  # logical id in template.yaml -> its handler
        sandboxes: SandboxRoutes,
        requests: RequestsView | None,
        site: StaticSite,
        cors: Cors | None,  # the template's CorsConfiguration
        queues: QueuesView | None = None,
        systems: LocalRoute | None = None,  # /_local/systems: redeploy a systems file
    ) -> None:
        missing = {r.function for r in routes} - set(functions)
        if missing:
            raise ValueError(f"no local function for {sorted(missing)}")
        self._routes = routes
        self._default = next((r for r in routes if r.is_default), None)
        self._functions = dict(functions)
        self._sandboxes = sandboxes
        self._requests = requests
        self._site = site
        self._cors = cors
        self._queues = queues
        self._systems = systems

    def dispatch(self, request: Incoming) -> Outgoing:
        answer = self._route(request)
        if self.route_key(request.method, request.path) is None:
            return local_headers(answer)
        if self._is_preflight(request):
            return answer
        return self.with_cors(request, answer)

    def with_cors(self, request: Incoming, answer: Outgoing) -> Outgoing:
        """An API answer as API Gateway sends it with a CorsConfiguration: the function's
        Access-Control-* headers dropped ("API Gateway ignores CORS headers returned from your
        backend integration"), the API's own added for an allowed Origin, and `Vary: Origin`
        as on the preflight (the answer differs by Origin)."""
        if self._cors is None:
            return answer
        headers = [(k, v) for k, v in answer.headers if not _is_cors_or_vary(k)]
        sent = ",".join(value for name, value in answer.headers if name.lower() == "vary")
        varies = [token.strip() for token in sent.split(",") if token.strip()]
        if "origin" not in {v.lower() for v in varies}:
            varies.append("Origin")
        headers.append(("Vary", ", ".join(varies)))
        allowed = self._cors.allowed_origin(request.header("origin"))
        if allowed is not None:
            headers.append(("Access-Control-Allow-Origin", allowed))
            if self._cors.expose_headers:
                expose = ",".join(self._cors.expose_headers)
                headers.append(("Access-Control-Expose-Headers", expose))
            if self._cors.allow_credentials:
                headers.append(("Access-Control-Allow-Credentials", "true"))
        return Outgoing(answer.status, headers, answer.body)

    def _route(self, request: Incoming) -> Outgoing:
        path = request.path
        for route in self._routes:
            params = route.match(request.method, path)
            if params is not None:
                return self._invoke(request, route, params)
        if path.startswith(API_PREFIX):
            if self._is_preflight(request):
                return self._preflight(request)
            if self._default is not None:
                return self._invoke(request, self._default, {})
            # API Gateway's own answer for a path with no route (and no $default route).
            return Outgoing(404, [("Content-Type", "application/json")], b'{"message":"Not Found"}')
        if path.startswith(SANDBOX_PREFIX):
            return self._sandboxes.serve(request)
        if path == demo_login.PATH:  # the demo shop's login backend (identity tokens)
            return demo_login.serve(request)
        if path in (REQUESTS_PATH, REQUEST_IDS_PATH) and request.method == "GET" and self._requests:
            return self._requests.serve(request)
        if path.startswith(QUEUES_PATH) and self._queues:
            return self._queues.serve(request)
        if path == SYSTEMS_PATH and self._systems:
            return self._systems.serve(request)
        if request.method in ("GET", "HEAD"):
            return self._site.serve(path, head=request.method == "HEAD")
        return error_answer(405, "method_not_allowed", "only GET serves the demo site")

    def route_key(self, method: str, path: str) -> str | None:
        """The API route key a request matched (`GET /v1/consent/{device_id}`), `$default` or
        `(no route)` for another API path; None outside the API."""
        for route in self._routes:
            if route.match(method, path) is not None:
                return route.route_key
        if path.startswith(API_PREFIX):
            return f"{method} (no route)" if self._default is None else "$default"
        return None

    def _invoke(self, request: Incoming, route: Route, params: dict[str, str]) -> Outgoing:
        event = apigw.to_event(request, route, params)
        try:
            result = self._functions[route.function](event)
        except Exception as error:  # noqa: BLE001 - API Gateway turns a crash into a 500
            crash_report.report(log, f"{route.function} on {route.route_key}", error)
            return Outgoing(
                500,
                [("Content-Type", "application/json")],
                b'{"message":"Internal Server Error"}',
            )
        return apigw.from_result(result)

    def _is_preflight(self, request: Incoming) -> bool:
        """An OPTIONS no route takes, on an API with a CorsConfiguration: API Gateway answers
        it itself, before the $default route."""
        return (
            self._cors is not None
            and request.method == "OPTIONS"
            and request.path.startswith(API_PREFIX)
            and not any(r.match(request.method, request.path) is not None for r in self._routes)
        )

    def _preflight(self, request: Incoming) -> Outgoing:
        assert self._cors is not None  # _is_preflight
        headers = [("Vary", "Origin")]
        allowed = self._cors.allowed_origin(request.header("origin"))
        if allowed is not None:
            headers += [
                ("Access-Control-Allow-Origin", allowed),
                ("Access-Control-Allow-Methods", ",".join(self._cors.allow_methods)),
                ("Access-Control-Allow-Headers", ",".join(self._cors.allow_headers)),
            ]
            if self._cors.max_age is not None:
                headers.append(("Access-Control-Max-Age", str(self._cors.max_age)))
            if self._cors.allow_credentials:
                headers.append(("Access-Control-Allow-Credentials", "true"))
        return Outgoing(204, headers)


def local_headers(answer: Outgoing) -> Outgoing:
    """A local-only answer (the site, /_sandbox, /_local, `OPTIONS *`) with the headers the
    API's own answers carry: `nosniff` on every one, `no-store` on a refusal that set no
    caching of its own, and a 405's `Allow` (RFC 9110 15.5.6: GET and HEAD, all the site
    serves). Before, a sandbox's vendor-shaped 404, the site's 404 and `OPTIONS *`'s 405 had
    neither (review s35 outside, open 3)."""
    names = {name.lower() for name, _ in answer.headers}
    added = [(k, v) for k, v in REFUSAL_HEADERS if k.lower() not in names]
    if answer.status < 400 or "cache-control" in names:
        added = [(k, v) for k, v in added if k.lower() != "cache-control"]
    if answer.status == 405 and "allow" not in names:
        added.append(("Allow", "GET, HEAD"))
    return Outgoing(answer.status, [*answer.headers, *added], answer.body) if added else answer


def _is_cors_or_vary(name: str) -> bool:
    lowered = name.lower()
    return lowered.startswith("access-control-") or lowered == "vary"


class _Handler(BaseHTTPRequestHandler):
    server: "FrontServer"
    protocol_version = "HTTP/1.1"

    def _serve(self) -> None:
        if not self._names_the_stack():
            self._refuse(error_answer(*MISDIRECTED))
            return
        max_bytes = self.server.max_body_bytes
        try:
            framed = request_body.framing(self.headers, max_bytes)
            body = request_body.read(self.rfile, framed, max_bytes)
        except request_body.Refusal as refusal:
            self._refuse(refusal.answer)
            return
        incoming = self._incoming(body)
        try:
            answer = self.server.front.dispatch(incoming)
        except Exception as error:  # noqa: BLE001 - one bad request must not stop the server
            crash_report.report(log, f"{self.command} {incoming.path.split('?', 1)[0]}", error)
            answer = error_answer(500, "internal", "the local stack failed on this request")
        self._send(answer)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_HEAD = _serve

    def parse_request(self) -> bool:
        # With `Expect: 100-continue`, handle_expect_100 (called by the parse) refused it first
        if not super().parse_request():
            return False
        if malformed_header_lines(self.headers):
            self._refuse(error_answer(*MALFORMED_HEADERS))
            return False
        return True

    def handle_expect_100(self) -> bool:
        # A body the front would refuse is refused before the client sends it.
        if malformed_header_lines(self.headers):
            self._refuse(error_answer(*MALFORMED_HEADERS))
            return False
        if not self._names_the_stack():
            self._refuse(error_answer(*MISDIRECTED))
            return False
        try:
            request_body.framing(self.headers, self.server.max_body_bytes)
        except request_body.Refusal as refusal:
            self._refuse(refusal.answer)
            return False
        return super().handle_expect_100()

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """http.server's own refusals (a request line or header over its limits, a request
        that is not HTTP, an unknown method) in the envelope, not its HTML page. Its message
        quotes the raw request (it can hold anything), so the words are ours."""
        self.log_error("code %d", code)
        if self.request_version == "HTTP/0.9":  # not parsed yet: answer with a status line
            self.request_version = "HTTP/1.0"
        error_code, words = PROTOCOL_REFUSALS.get(code, PROTOCOL_REFUSALS[400])
        self._answer_and_close(error_answer(code, error_code, words))

    def _names_the_stack(self) -> bool:
        bound, port = self.server.server_address[:2]
        return host_allowed(self.headers.get_all("Host") or [], self.path, str(bound), int(port))

    def _incoming(self, body: bytes) -> Incoming:
        return Incoming(
            method=self.command,
            target=self.path,
            headers=list(self.headers.items()),
            body=body,
            client_ip=self.client_address[0],
        )

    def _refuse(self, answer: Outgoing) -> None:
        """A request refused before any function saw it (its body, or its Host), with the
        API's CORS headers on an API path, as every answer there: an allowed page can read
        why (a rebound page's Origin is its own name, never an allowed one)."""
        incoming = self._incoming(b"")
        if self.server.front.route_key(self.command, incoming.path) is not None:
            answer = self.server.front.with_cors(incoming, answer)
        self._answer_and_close(answer)

    def _answer_and_close(self, answer: Outgoing) -> None:
        """Answer, then close once what the client still sends is read (bounded): closing
        with unread bytes resets the connection, and the client could lose the answer."""
        self.close_connection = True
        answer = Outgoing(answer.status, [*answer.headers, *REFUSAL_HEADERS], answer.body)
        self._send(answer, close=True)
        self.wfile.flush()
        self._discard_rest()

    def _discard_rest(self) -> None:
        self.connection.settimeout(DISCARD_IDLE_SECONDS)
        deadline = time.monotonic() + DISCARD_SECONDS
        left = DISCARD_MAX_BYTES
        try:
            while left > 0 and time.monotonic() < deadline:
                dropped = self.rfile.read1(min(left, 65536))
                if not dropped:
                    return
                left -= len(dropped)
        except OSError:  # the client stopped sending (idle), or reset: either way, done
            return

    def _send(self, answer: Outgoing, close: bool = False) -> None:
        self.send_response(answer.status)
        for name, value in answer.headers:
            if name.lower() not in HOP_BY_HOP:
                self.send_header(name, value)
        declared = next((v for k, v in answer.headers if k.lower() == "content-length"), None)
        head_length = declared if self.command == "HEAD" else None  # HEAD: the GET's length
        self.send_header("Content-Length", head_length or str(len(answer.body)))
        if close:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(answer.body)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s", format % args)

    def log_error(self, format: str, *args: Any) -> None:
        # http.server's own refusals quote the raw request line, which can be a body
        log.debug("malformed HTTP request refused (%s)", args[0] if args else "-")

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        # What API Gateway's access log writes: the route key, never the path a caller typed
        # (a device id, or whatever someone put there); a site path only when it was served.
        # The path as routed (an absolute-form target's, without scheme and host: review s32
        # contract F2); unset when the request line was refused.
        path = Incoming(self.command, self.path).path if getattr(self, "path", "") else ""
        if not path:
            log.info("(malformed request) -> %s", code)
            return
        if path.startswith(("/_sandbox/", "/_local/")):
            return
        status = int(code) if str(code).isdigit() else 0
        shown = self.server.front.route_key(self.command, path)
        if shown is None:
            shown = f"{self.command} {path if status < 400 else '(path not shown)'}"
        log.info("%s -> %s", shown, code)


class FrontServer(ThreadingHTTPServer):
    daemon_threads = True  # a hung client must not keep the stack alive at shutdown
    allow_reuse_address = True
    # socketserver's default backlog of 5 resets connections when dozens of clients connect
    # at once (the load test's 50); API Gateway takes them all.
    request_queue_size = 128

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that gave up waiting (a timed-out probe, a vendor call's timeout) has
        # closed its socket: nothing to report.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)

    def __init__(self, port: int, front: Front, max_body_bytes: int = MAX_BODY_BYTES) -> None:
        self.front = front
        self.max_body_bytes = max_body_bytes
        super().__init__(("127.0.0.1", port), _Handler)

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self.serve_forever, name="http-front", daemon=True)
        thread.start()
        return thread
