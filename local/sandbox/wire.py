"""Wire types and helpers shared by the sandbox vendors (base.py re-exports the types)."""

import base64
import json
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

FaultStatus = int | Literal["timeout"]


@dataclass
class SandboxRequest:
    method: str
    path: str  # relative to the system base URL, with query
    headers: dict[str, str]  # lower-case names
    body: bytes


@dataclass
class SandboxResponse:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


class Vendor(Protocol):
    def handle(self, request: SandboxRequest) -> SandboxResponse: ...


def json_response(
    status: int, payload: Any, headers: dict[str, str] | None = None
) -> SandboxResponse:
    return SandboxResponse(
        status,
        {"content-type": "application/json", **(headers or {})},
        json.dumps(payload).encode(),
    )


def no_content() -> SandboxResponse:
    return SandboxResponse(204, {}, b"")


def parse_json(request: SandboxRequest) -> Any:
    """The body as JSON, or None when it is not JSON (vendors answer 400 to that)."""
    try:
        return json.loads(request.body or b"null")
    except ValueError:
        return None


def bearer(request: SandboxRequest) -> str | None:
    value = request.headers.get("authorization", "")
    return value[7:] if value.startswith("Bearer ") else None


def basic_user(request: SandboxRequest) -> str | None:
    value = request.headers.get("authorization", "")
    if not value.startswith("Basic "):
        return None
    try:
        return base64.b64decode(value[6:]).decode().split(":", 1)[0]
    except ValueError:
        return None
