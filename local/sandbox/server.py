"""A tiny loopback HTTP server for sandboxes, mounted like the local stack: /_sandbox/{system}/...

Also answers GET /_sandbox/{system}/requests and GET/POST /_sandbox/{system}/faults, the routes
the local stack offers, so tests and the stack drive sandboxes the same way.
"""

import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

from local.sandbox.base import Sandbox, SandboxRequest, SandboxResponse
from local.sandbox.wire import json_response

PREFIX = "/_sandbox/"


def route(
    sandboxes: dict[str, Sandbox], method: str, target: str, headers: dict[str, str], body: bytes
) -> SandboxResponse:
    """Dispatch one call; shared by this server and any other front (the local stack)."""
    if not target.startswith(PREFIX):
        return json_response(404, {"error": "not a sandbox path"})
    system, _, rest = target[len(PREFIX) :].partition("/")
    sandbox = sandboxes.get(system)
    if sandbox is None:
        return json_response(404, {"error": "no such sandbox system"})
    relative = "/" + rest if rest else ""
    if method == "GET" and relative == "/requests":
        return json_response(200, sandbox.recorded())
    if method == "GET" and relative == "/faults":
        return json_response(200, sandbox.faults())
    if method == "POST" and relative == "/faults":
        try:
            spec = json.loads(body or b"{}")
        except ValueError:
            return json_response(400, {"error": "the body is not JSON"})
        if not isinstance(spec, dict):
            return json_response(400, {"error": "send an object {rate, status | statuses}"})
        try:
            return json_response(200, sandbox.set_fault_spec(spec))
        except ValueError as error:
            return json_response(400, {"error": str(error)})
    return sandbox.handle(SandboxRequest(method, relative, headers, body))


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # a "timeout" fault still sleeping must not block exit

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that timed out (the point of a "timeout" fault) has closed its socket.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class SandboxServer:
    def __init__(
        self, sandboxes: dict[str, Sandbox], host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self.sandboxes = sandboxes
        handler = _handler_class(sandboxes)
        self.httpd = _Server((host, port), handler)
        # A short poll interval makes stop() quick (tests start a server per test).
        self._thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def base_url(self, system: str) -> str:
        return f"{self.url}{PREFIX}{system}"

    def start(self) -> "SandboxServer":
        self._thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self) -> "SandboxServer":
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _handler_class(sandboxes: dict[str, Sandbox]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _serve(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length) if length else b""
            headers = {k.lower(): v for k, v in self.headers.items()}
            answer = route(sandboxes, self.command, self.path, headers, body)
            self.send_response(answer.status)
            for name, value in answer.headers.items():
                self.send_header(name, value)
            self.send_header("content-length", str(len(answer.body)))
            self.end_headers()
            self.wfile.write(answer.body)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

        def log_message(self, format: str, *args: Any) -> None:
            return  # keep test output quiet; the sandbox records every call itself

    return Handler
