"""The HTTP front on 127.0.0.1: the capture API, the sandboxes, the local routes and the site.

Routing, in order: the template's HttpApi routes (each to the real handler of the function the
template names for it, as API Gateway payload 2.0 events), then for any other path under
/v1/ the template's `$default` route (as API Gateway sends it every request no route
matches), `/_sandbox/...`, `/_local/requests[/ids]`, `/_local/queues`, `/_local/systems`,
then the static site.
CORS preflights on API paths are answered here, as API Gateway does from CorsConfiguration
(before the $default route: API Gateway answers them itself).
"""

import logging
import sys
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol

from local import apigw, crash_report, demo_login
from local.http_types import Incoming, Outgoing, error_answer
from local.queues_view import PATH as QUEUES_PATH
from local.queues_view import QueuesView
from local.requests_view import IDS_PATH as REQUEST_IDS_PATH
from local.requests_view import PATH as REQUESTS_PATH
from local.requests_view import RequestsView
from local.sandbox_routes import PREFIX as SANDBOX_PREFIX
from local.sandbox_routes import SandboxRoutes
from local.static_site import StaticSite
from local.template_config import Route

log = logging.getLogger("local.http")

Invoke = Callable[[dict[str, Any]], Any]
SYSTEMS_PATH = "/_local/systems"


class LocalRoute(Protocol):
    def serve(self, request: Incoming) -> Outgoing: ...


API_PREFIX = "/v1/"
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "date", "server"}


@dataclass(frozen=True)
class Cors:
    allow_origins: tuple[str, ...]
    allow_methods: str = "GET,POST,OPTIONS"
    allow_headers: str = "content-type,idempotency-key"
    max_age: int = 600


class Front:
    def __init__(
        self,
        routes: list[Route],
        functions: Mapping[str, Invoke],  # logical id in template.yaml -> its handler
        sandboxes: SandboxRoutes,
        requests: RequestsView | None,
        site: StaticSite,
        cors: Cors,
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
        path = request.path
        for route in self._routes:
            params = route.match(request.method, path)
            if params is not None:
                return self._invoke(request, route, params)
        if path.startswith(API_PREFIX):
            if request.method == "OPTIONS":
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

    def _preflight(self, request: Incoming) -> Outgoing:
        origin = request.header("origin")
        headers = [("Vary", "Origin")]
        if origin and ("*" in self._cors.allow_origins or origin in self._cors.allow_origins):
            headers += [
                ("Access-Control-Allow-Origin", origin),
                ("Access-Control-Allow-Methods", self._cors.allow_methods),
                ("Access-Control-Allow-Headers", self._cors.allow_headers),
                ("Access-Control-Max-Age", str(self._cors.max_age)),
            ]
        return Outgoing(204, headers)


class _Handler(BaseHTTPRequestHandler):
    server: "FrontServer"
    protocol_version = "HTTP/1.1"

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        incoming = Incoming(
            method=self.command,
            target=self.path,
            headers=list(self.headers.items()),
            body=body,
            client_ip=self.client_address[0],
        )
        try:
            answer = self.server.front.dispatch(incoming)
        except Exception as error:  # noqa: BLE001 - one bad request must not stop the server
            crash_report.report(log, f"{self.command} {incoming.path.split('?', 1)[0]}", error)
            answer = error_answer(500, "internal", "the local stack failed on this request")
        self.send_response(answer.status)
        for name, value in answer.headers:
            if name.lower() not in HOP_BY_HOP:
                self.send_header(name, value)
        declared = next((v for k, v in answer.headers if k.lower() == "content-length"), None)
        head_length = declared if self.command == "HEAD" else None  # HEAD: the GET's length
        self.send_header("Content-Length", head_length or str(len(answer.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(answer.body)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_HEAD = _serve

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s", format % args)

    def log_error(self, format: str, *args: Any) -> None:
        # http.server's own refusals quote the raw request line, which can be a body
        log.debug("malformed HTTP request refused (%s)", args[0] if args else "-")

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        # What API Gateway's access log writes: the route key, never the path a caller typed
        # (a device id, or whatever someone put there); a site path only when it was served.
        path = self.path.split("?", 1)[0]
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

    def __init__(self, port: int, front: Front) -> None:
        self.front = front
        super().__init__(("127.0.0.1", port), _Handler)

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self.serve_forever, name="http-front", daemon=True)
        thread.start()
        return thread
