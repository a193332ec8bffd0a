"""Plain request/response values passed between the HTTP server and the routes it serves."""

import json
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

_SLASHES = re.compile(r"/{2,}")


@dataclass(frozen=True)
class Incoming:
    method: str
    target: str  # path and query exactly as sent, e.g. "/v1/requests/abc?x=1"
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    client_ip: str = "127.0.0.1"

    @property
    def path(self) -> str:
        """The path as routed: a run of slashes is one, as an HTTP API reads it (an empty
        segment is dropped, `//v1/x` and `/v1//x` are `/v1/x`: docs/local-stack.md). An
        origin-form target is split here, not by urlsplit, which reads `//v1/x` as host v1."""
        target = self.target
        origin_form = target.startswith("/")
        path = target.split("?", 1)[0].split("#", 1)[0] if origin_form else urlsplit(target).path
        return _SLASHES.sub("/", path) or "/"

    @property
    def query(self) -> str:
        return urlsplit(self.target).query

    def header(self, name: str) -> str | None:
        wanted = name.lower()
        return next((v for k, v in self.headers if k.lower() == wanted), None)

    def query_params(self) -> dict[str, str]:
        return dict(parse_qsl(self.query, keep_blank_values=True))


@dataclass
class Outgoing:
    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""


def json_answer(status: int, payload: Any) -> Outgoing:
    body = json.dumps(payload, separators=(",", ":"), default=str).encode()
    return Outgoing(status, [("Content-Type", "application/json")], body)


def error_answer(status: int, code: str, message: str, field: str | None = None) -> Outgoing:
    """The capture API's error shape, so local-only routes fail the same way."""
    return json_answer(status, {"error": {"code": code, "message": message, "field": field}})
