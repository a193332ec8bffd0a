"""Run the operator CLI in-process against the admin function, with no server.

`AdminTransport` answers the CLI's HTTP calls exactly as the local stack does: the request
becomes an API Gateway payload 2.0 event (local/apigw.py, IAM block only when SigV4-signed),
the routes come from template.yaml, and the admin function's own handler answers.
"""

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import httpx
import pytest

from local.apigw import from_result, to_event
from local.cfn_yaml import load_template
from local.http_types import Incoming
from local.template_config import http_routes
from optout_cli.main import run
from tests.support.lambdas import invoke

ROOT = Path(__file__).resolve().parents[2]
LOCAL_URL = "http://127.0.0.1:3000"  # never dialled: the transport answers
ADMIN_ROUTES = [r for r in http_routes(load_template(ROOT / "template.yaml"))
                if r.path.startswith("/v1/admin/")]  # fmt: skip


class AdminTransport(httpx.BaseTransport):
    def __init__(self, admin: ModuleType, before: Callable[[httpx.Request], None] | None = None,
                 after: Callable[[httpx.Request], None] | None = None) -> None:  # fmt: skip
        self.admin = admin
        self.before = before
        self.after = after
        self.sent: list[httpx.Request] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.sent.append(request)
        if self.before:
            self.before(request)
        for route in ADMIN_ROUTES:
            params = route.match(request.method, request.url.path)
            if params is not None:
                break
        else:
            return httpx.Response(404, json={"error": {"code": "not_found", "message": "no route"}})
        incoming = Incoming(request.method, request.url.raw_path.decode(),
                            list(request.headers.items()), request.read())  # fmt: skip
        answer = from_result(invoke(self.admin, to_event(incoming, route, params)))
        if self.after:
            self.after(request)
        return httpx.Response(answer.status, headers=answer.headers, content=answer.body)


@dataclass
class Ran:
    code: int
    out: str
    err: str


def optout(
    capsys: pytest.CaptureFixture[str], transport: httpx.BaseTransport | None, *argv: str
) -> Ran:
    """`optout ARGV...` as the console script runs it; its exit code and what it printed."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as ended:
        run(list(argv), transport=transport)
    printed = capsys.readouterr()
    code = ended.value.code
    return Ran(code if isinstance(code, int) else (0 if code is None else 1), printed.out,
               printed.err)  # fmt: skip
