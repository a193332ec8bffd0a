"""Front routing with a fake capture handler and fake sandbox: no AWS, no sockets."""

import http.client
import io
import json
from pathlib import Path
from typing import Any

import pytest

from local.front import Cors, Front, host_allowed, malformed_header_lines
from local.http_types import Incoming
from local.sandbox.faults import FaultPlan
from local.sandbox_routes import SandboxRoutes
from local.static_site import StaticSite
from local.template_config import Route, _path_regex


class FakeSandbox:
    def __init__(self) -> None:
        self.faults: tuple[float, Any] | None = None
        self.requests: list[Any] = []

    def handle(self, request: Any) -> Any:
        self.requests.append(request)
        return type("R", (), {"status": 200, "headers": {"x-vendor": "1"}, "body": b"ok"})()

    def recorded(self) -> list[dict[str, Any]]:
        return [{"method": r["method"], "path": r["path"]} for r in self.requests]

    def set_faults(self, rate: float, status: Any) -> None:
        self.faults = (rate, status)

    def set_fault_spec(self, spec: dict[str, Any]) -> dict[str, Any]:
        plan = FaultPlan.parse(spec)
        self.faults = (plan.rate, plan.statuses[0])
        return plan.as_dict()


def front(tmp_path: Path, sandbox: FakeSandbox, seen: list[dict[str, Any]], *extra: Route) -> Front:
    (tmp_path / "index.html").write_text("<h1>shop</h1>")
    (tmp_path / ".well-known").mkdir()
    (tmp_path / ".well-known" / "gpc.json").write_text('{"gpc": true}')
    routes = [
        _route("GET", "/v1/requests/{request_id}", "Capture"),
        _route("POST", "/v1/admin/lookup", "Admin", iam=True),
        *extra,
    ]

    def function(name: str) -> Any:
        def invoke(event: dict[str, Any]) -> dict[str, Any]:
            seen.append({**event, "function": name})
            return {"statusCode": 200, "headers": {"Content-Type": "application/json"},
                    "body": "{}"}  # fmt: skip

        return invoke

    sandboxes = SandboxRoutes({"braze": sandbox}, lambda **kw: kw)
    functions = {"Capture": function("Capture"), "Admin": function("Admin")}
    return Front(
        routes, functions, sandboxes, None, StaticSite(tmp_path), Cors(("http://127.0.0.1:1",))
    )


def _route(method: str, path: str, function: str, iam: bool = False) -> Route:
    return Route(method, path, iam, _path_regex(path), function)


def test_api_routes_reach_the_capture_handler_and_unknown_api_paths_are_404(tmp_path: Path) -> None:
    seen: list[dict[str, Any]] = []
    subject = front(tmp_path, FakeSandbox(), seen)
    assert subject.dispatch(Incoming("GET", "/v1/requests/abc")).status == 200
    assert seen[0]["pathParameters"] == {"request_id": "abc"}
    assert subject.dispatch(Incoming("GET", "/v1/nothing")).status == 404


def test_each_route_reaches_the_function_the_template_names_for_it(tmp_path: Path) -> None:
    # Given a public route on one function and an IAM route on another
    seen: list[dict[str, Any]] = []
    subject = front(tmp_path, FakeSandbox(), seen)
    # When both are called
    subject.dispatch(Incoming("GET", "/v1/requests/abc"))
    subject.dispatch(Incoming("POST", "/v1/admin/lookup", [("Content-Type", "application/json")],
                              b"{}"))  # fmt: skip
    # Then each went to its own function
    assert [event["function"] for event in seen] == ["Capture", "Admin"]


def test_a_route_naming_a_function_the_stack_did_not_load_is_refused_at_start(
    tmp_path: Path,
) -> None:
    routes = [_route("GET", "/v1/x", "Missing")]
    sandboxes = SandboxRoutes({}, lambda **kw: kw)
    with pytest.raises(ValueError, match="Missing"):
        Front(routes, {}, sandboxes, None, StaticSite(tmp_path), Cors(()))


def test_the_site_serves_index_and_gpc_json_and_refuses_escapes(tmp_path: Path) -> None:
    subject = front(tmp_path, FakeSandbox(), [])
    index = subject.dispatch(Incoming("GET", "/"))
    assert index.status == 200 and ("Content-Type", "text/html; charset=utf-8") in index.headers
    gpc = subject.dispatch(Incoming("GET", "/.well-known/gpc.json"))
    assert ("Content-Type", "application/json") in gpc.headers
    assert subject.dispatch(Incoming("GET", "/../etc/passwd")).status == 404


def test_sandbox_calls_control_routes_and_fault_validation(tmp_path: Path) -> None:
    sandbox = FakeSandbox()
    subject = front(tmp_path, sandbox, [])
    call = subject.dispatch(
        Incoming("POST", "/_sandbox/braze/users/track?x=1", [("X-Key", "v")], b"{}")
    )
    assert (call.status, call.body) == (200, b"ok")
    assert sandbox.requests[0]["path"] == "/users/track?x=1"
    assert sandbox.requests[0]["headers"] == {"x-key": "v"}
    listed = subject.dispatch(Incoming("GET", "/_sandbox/braze/requests"))
    assert json.loads(listed.body) == [{"method": "POST", "path": "/users/track?x=1"}]
    ok = subject.dispatch(
        Incoming("POST", "/_sandbox/braze/faults", [], b'{"rate": 0.5, "status": 503}')
    )
    assert ok.status == 200 and sandbox.faults == (0.5, 503)
    bad = subject.dispatch(Incoming("POST", "/_sandbox/braze/faults", [], b'{"rate": "x"}'))
    assert bad.status == 422
    assert subject.dispatch(Incoming("GET", "/_sandbox/nope/requests")).status == 404


def test_the_sandboxs_own_routes_take_a_query_string_as_api_routes_do(tmp_path: Path) -> None:
    # review s35 outside, open 3: `/requests?x=1` went to the vendor, whose 404 is its own shape
    sandbox = FakeSandbox()
    subject = front(tmp_path, sandbox, [])
    listed = subject.dispatch(Incoming("GET", "/_sandbox/braze/requests?x=1"))
    assert listed.status == 200 and json.loads(listed.body) == []
    body = b'{"rate": 0.5, "status": 503}'
    planned = subject.dispatch(Incoming("POST", "/_sandbox/braze/faults?x=1", [], body))
    assert planned.status == 200 and sandbox.faults == (0.5, 503)
    assert sandbox.requests == []  # neither handed to the vendor's sandbox


def _header(answer: Any, name: str) -> list[str]:
    return [v for k, v in answer.headers if k.lower() == name.lower()]


@pytest.mark.parametrize(
    ("method", "target", "status"),
    [("OPTIONS", "*", 405), ("POST", "/index.html", 405), ("GET", "/nothing-here", 404),
     ("GET", "/_sandbox/nope/requests", 404), ("HEAD", "/nothing-here", 404)],
)  # fmt: skip
def test_every_local_refusal_says_nosniff_and_no_store(
    tmp_path: Path, method: str, target: str, status: int
) -> None:
    # review s35 outside, open 3: the site's and the sandboxes' refusals and `OPTIONS *`'s 405
    # had neither header, which every API answer carries
    answer = front(tmp_path, FakeSandbox(), []).dispatch(Incoming(method, target))
    assert answer.status == status
    assert _header(answer, "X-Content-Type-Options") == ["nosniff"]
    assert _header(answer, "Cache-Control") == ["no-store"]
    if status == 405:
        assert _header(answer, "Allow") == ["GET, HEAD"]  # RFC 9110 15.5.6


def test_local_answers_that_succeed_keep_their_own_caching(tmp_path: Path) -> None:
    subject = front(tmp_path, FakeSandbox(), [])
    page = subject.dispatch(Incoming("GET", "/"))
    assert _header(page, "Cache-Control") == ["no-cache"]
    assert _header(page, "X-Content-Type-Options") == ["nosniff"]
    listed = subject.dispatch(Incoming("GET", "/_sandbox/braze/requests"))
    assert _header(listed, "X-Content-Type-Options") == ["nosniff"]
    assert _header(listed, "Cache-Control") == []


@pytest.mark.parametrize(
    ("spec", "field"),
    [({"rate": "x"}, "rate"), ({"rate": 2}, "rate"), ({"status": 200}, "status"),
     ({"statuses": [503, 200]}, "statuses"), ({"statuses": []}, "statuses"),
     ({"statuses": 503}, "statuses"), ({"status": 503, "statuses": [503]}, "statuses"),
     ({"retry_after": -1}, "retry_after"), ({"retry_after": 1.5}, "retry_after"),
     ({"hold_seconds": 0}, "hold_seconds"), ({"seed": "s"}, "seed"),
     ({"applied": 1}, "applied"), ({"rat": 0.5}, None)],
)  # fmt: skip
def test_a_refused_fault_plan_names_its_field_in_the_envelope(
    tmp_path: Path, spec: dict[str, Any], field: str | None
) -> None:
    # As the API's refusals do (review s32 contract F7: the message named it, `field` was null)
    subject = front(tmp_path, FakeSandbox(), [])
    body = json.dumps(spec).encode()
    answer = subject.dispatch(Incoming("POST", "/_sandbox/braze/faults", [], body))
    assert answer.status == 422
    error = json.loads(answer.body)["error"]
    assert error["field"] == field
    if field is not None:
        assert error["message"].startswith(field) or field in error["message"]


def test_preflight_on_api_paths_answers_for_allowed_origins(tmp_path: Path) -> None:
    subject = front(tmp_path, FakeSandbox(), [])
    answer = subject.dispatch(
        Incoming("OPTIONS", "/v1/consent", [("Origin", "http://127.0.0.1:1")])
    )
    assert answer.status == 204
    assert ("Access-Control-Allow-Origin", "http://127.0.0.1:1") in answer.headers


def test_an_unmatched_api_path_goes_to_the_default_route_as_api_gateway_sends_it(
    tmp_path: Path,
) -> None:
    # Given a template with a $default route on the capture function
    seen: list[dict[str, Any]] = []
    subject = front(tmp_path, FakeSandbox(), seen, _route("ANY", "$default", "Capture"))
    # When an API path no route matches is called, with any method
    subject.dispatch(Incoming("DELETE", "/v1/nothing/here?x=1"))
    # Then the $default route's function gets it, with API Gateway's route key
    assert seen[-1]["function"] == "Capture"
    assert seen[-1]["routeKey"] == "$default"
    assert seen[-1]["rawPath"] == "/v1/nothing/here"
    assert "pathParameters" not in seen[-1]
    # And a preflight and the site are still answered by the front itself
    assert subject.dispatch(Incoming("OPTIONS", "/v1/nothing")).status == 204
    assert subject.dispatch(Incoming("GET", "/")).status == 200
    assert len(seen) == 1


@pytest.mark.parametrize(
    "target", ["//v1/requests/abc", "/v1//requests/abc", "/v1/requests//abc", "///v1/requests/abc"]
)
def test_a_run_of_slashes_is_one_as_an_http_api_routes_it(tmp_path: Path, target: str) -> None:
    # Given the front, and a path with an empty segment (users see an HTTP API merge the
    # slashes: docs/local-stack.md, "Empty path segments")
    seen: list[dict[str, Any]] = []
    subject = front(tmp_path, FakeSandbox(), seen)
    # When it is called
    answer = subject.dispatch(Incoming("GET", target + "?x=1"))
    # Then the route takes it, and the function sees the path with single slashes
    assert answer.status == 200
    assert seen[-1]["routeKey"] == "GET /v1/requests/{request_id}"
    assert seen[-1]["rawPath"] == "/v1/requests/abc"
    assert seen[-1]["rawQueryString"] == "x=1"
    assert seen[-1]["pathParameters"] == {"request_id": "abc"}


def test_an_api_request_is_named_by_its_route_key_never_its_path(tmp_path: Path) -> None:
    # Given the front with a request-status route
    routes = front(tmp_path, FakeSandbox(), [])
    # Then an access line can name a matched route, and nothing a caller typed in a path
    path = "/v1/requests/jane@example.com"
    assert routes.route_key("GET", path) == "GET /v1/requests/{request_id}"
    assert routes.route_key("GET", "/v1/consent/jane@example.com") == "GET (no route)"
    assert routes.route_key("GET", "/jane@example.com") is None  # the site: shown only if served


def test_api_answers_carry_the_apis_cors_headers_in_place_of_the_functions(
    tmp_path: Path,
) -> None:
    # Given a function that answers with its own CORS headers and a Vary
    own = [
        ("Content-Type", "application/json"),
        ("Vary", "Accept"),
        ("Access-Control-Allow-Origin", "*"),
        ("access-control-allow-headers", "Authorization"),
    ]
    subject = Front(
        [_route("GET", "/v1/x", "Capture")],
        {"Capture": lambda event: {"statusCode": 200, "headers": dict(own), "body": "{}"}},
        SandboxRoutes({}, lambda **kw: kw),
        None,
        StaticSite(tmp_path),
        Cors(("http://site",), expose_headers=("date",)),
    )  # fmt: skip
    # When an allowed origin and another one call it
    allowed = subject.dispatch(Incoming("GET", "/v1/x", [("Origin", "http://site")]))
    other = subject.dispatch(Incoming("GET", "/v1/x", [("Origin", "http://evil")]))
    # Then only the API's CORS headers are sent, and Vary names Origin too
    assert allowed.headers == [
        ("Content-Type", "application/json"), ("Vary", "Accept, Origin"),
        ("Access-Control-Allow-Origin", "http://site"), ("Access-Control-Expose-Headers", "date"),
    ]  # fmt: skip
    assert other.headers == [("Content-Type", "application/json"), ("Vary", "Accept, Origin")]
    # And the site is not the API: its answers are left alone
    assert ("Vary", "Origin") not in subject.dispatch(Incoming("GET", "/")).headers


@pytest.mark.parametrize(
    ("hosts", "target", "allowed"),
    [(["127.0.0.1:3135"], "/v1/consent/x", True),
     (["localhost:3135"], "/_local/requests", True),
     (["[::1]:3135"], "/", False),  # the front listens on IPv4 only (review s32 edge E6)
     (["LOCALHOST:3135"], "/", True),
     ([], "/", True),  # no Host: an HTTP/1.0 tool (every browser sends one)
     (["127.0.0.1:3135"], "http://127.0.0.1:3135/v1/consent/x", True),
     (["127.0.0.1:3135"], "//v1/consent/x", True),  # origin-form, though urlsplit reads a host
     (["rebind.attacker.example:3135"], "/_local/requests", False),
     (["127.0.0.1.nip.io:3135"], "/", False),
     (["localhost.:3135"], "/", False),
     (["127.0.0.1:3136"], "/", False),
     (["127.0.0.1"], "/", False),  # port 80
     ([""], "/", False),
     (["127.0.0.1:3135", "evil.example:3135"], "/", False),
     (["127.0.0.1:3135"], "http://evil.example:3135/_local/requests", False),
     (["127.0.0.1:3135"], "http://127.0.0.1:3136/", False)],
)  # fmt: skip
def test_only_this_machines_names_for_the_stack_pass(
    hosts: list[str], target: str, allowed: bool
) -> None:
    assert host_allowed(hosts, target, "127.0.0.1", 3135) is allowed


def test_on_port_80_a_bare_loopback_name_passes() -> None:
    assert host_allowed(["localhost"], "/", "127.0.0.1", 80)
    assert not host_allowed(["evil.example"], "/", "127.0.0.1", 80)


@pytest.mark.parametrize(
    ("block", "malformed"),
    [(b"X-Note : 1\r\nContent-Length: 5\r\n", True), (b"X-Note\r\n", True), (b": 1\r\n", True),
     (b"Sec-GPC:\r\n 1\r\n", True), (b"X-Note: a\rb\r\n", True), (b"X-Note: a\x00b\r\n", True),
     (b"From x\r\nContent-Length: 5\r\n", True), (b"From x\r\n", True),
     (b"X-Note: 1\r\n", False), (b"X-Note: a\tb\r\n", False), (b"From: a@b.example\r\n", False),
     (b"Content-Type: multipart/form-data; boundary=b\r\n", False),
     (b"Content-Type: multipart/form-data\r\n", False),
     (b"Content-Type: message/rfc822\r\n", False)],
)  # fmt: skip
def test_a_header_block_is_malformed_only_for_its_own_lines(block: bytes, malformed: bool) -> None:
    # The defects of http.server's header parse (review s35 outside F1), not those a multipart
    # or message/* Content-Type adds about the body
    parsed = http.client.parse_headers(io.BytesIO(b"Host: 127.0.0.1:1\r\n" + block + b"\r\n"))
    assert malformed_header_lines(parsed) is malformed
