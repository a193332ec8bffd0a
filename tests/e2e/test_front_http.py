"""The HTTP front's framing, protocol refusals and CORS, over raw sockets to the local stack.

What urllib cannot send: a Content-Length that is not a number or overstates the body, a
declared length far past the limit with no body behind it, a chunked body, a request line or
a header over http.server's 64 KiB. Each is answered in the error envelope (never a closed
connection or an HTML page), and nothing is stored (`/_local/requests/ids` is unchanged).
CORS answers are API Gateway's from template.yaml's CorsConfiguration, not the function's.
"""

import gzip
import json
import socket
import time
import uuid
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.e2e.conftest import Stack

pytestmark = pytest.mark.e2e

Reply = tuple[int, dict[str, str], bytes]
LIMIT = 16 * 1024


def _head(stack: Stack, method: str, target: str, *headers: tuple[str, str]) -> bytes:
    host = urlsplit(stack.url).netloc
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host}"]
    lines += [f"{name}: {value}" for name, value in headers]
    return ("\r\n".join([*lines, "Connection: close", "", ""])).encode()


def _exchange(stack: Stack, sent: bytes, half_close: bool = False, timeout: float = 10) -> Reply:
    """Send raw bytes, read the answer until the server closes (every answer here closes)."""
    url = urlsplit(stack.url)
    with socket.create_connection((url.hostname, url.port), timeout=timeout) as conn:
        conn.sendall(sent)
        if half_close:
            conn.shutdown(socket.SHUT_WR)
        reply = b""
        while chunk := conn.recv(65536):
            reply += chunk
    assert reply, "the connection closed with no answer"
    head, _, body = reply.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(status_line.split()[1]), headers, body


def _refused(reply: Reply, status: int, field: str | None = None) -> dict[str, Any]:
    code, headers, body = reply
    assert code == status, reply
    assert headers["content-type"] == "application/json"
    error: dict[str, Any] = json.loads(body)["error"]
    assert set(error) == {"code", "message", "field"}
    if field is not None:
        assert error["field"] == field
    return error


def _stored(stack: Stack) -> int:
    status, ids = stack.json("GET", "/_local/requests/ids")
    assert status == 200
    count: int = ids["count"]
    return count


def _opt_out_body() -> bytes:
    return json.dumps({"customer_id": f"frame-{uuid.uuid4().hex[:12]}"}).encode()


JSON_TYPE = ("Content-Type", "application/json")


@pytest.mark.parametrize("length", ["abc", "-1", "5, 5", "0x10", ""])
def test_a_content_length_that_is_not_a_whole_number_is_a_400(
    local_stack: Stack, length: str
) -> None:
    before = _stored(local_stack)
    body = _opt_out_body()
    head = _head(local_stack, "POST", "/v1/opt-out", JSON_TYPE, ("Content-Length", length))
    _refused(_exchange(local_stack, head + body), 400, "Content-Length")
    assert _stored(local_stack) == before


def test_two_content_lengths_that_differ_are_a_400(local_stack: Stack) -> None:
    before = _stored(local_stack)
    body = _opt_out_body()
    lengths = [("Content-Length", str(len(body))), ("Content-Length", str(len(body) + 1))]
    head = _head(local_stack, "POST", "/v1/opt-out", JSON_TYPE, *lengths)
    _refused(_exchange(local_stack, head + body), 400, "Content-Length")
    assert _stored(local_stack) == before


@pytest.mark.parametrize("expect", [False, True], ids=["plain", "expect-100-continue"])
def test_a_declared_length_over_the_limit_is_413_before_any_body_is_sent(
    local_stack: Stack, expect: bool
) -> None:
    # Given a request declaring a gigabyte, and no body behind it (the client waits)
    headers = [JSON_TYPE, ("Content-Length", str(1 << 30))]
    if expect:
        headers.append(("Expect", "100-continue"))
    started = time.monotonic()
    reply = _exchange(local_stack, _head(local_stack, "POST", "/v1/opt-out", *headers))
    # Then the front answers 413 at once, in the functions' words, without waiting for it
    assert _refused(reply, 413, "body")["code"] == "too_large"
    assert time.monotonic() - started < 5


def test_a_body_shorter_than_its_content_length_is_a_400_and_not_stored(
    local_stack: Stack,
) -> None:
    # Given a whole, valid opt-out body, declared 10 bytes longer, then a half-close
    before = _stored(local_stack)
    body = _opt_out_body()
    overstated = ("Content-Length", str(len(body) + 10))
    head = _head(local_stack, "POST", "/v1/opt-out", JSON_TYPE, overstated)
    reply = _exchange(local_stack, head + body, half_close=True)
    # Then it is refused and nothing was stored
    _refused(reply, 400, "Content-Length")
    assert _stored(local_stack) == before


def _chunked(body: bytes, size: int) -> bytes:
    chunks = [body[i : i + size] for i in range(0, len(body), size)]
    return b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks) + b"0\r\n\r\n"


def test_a_chunked_body_is_decoded_and_taken(local_stack: Stack) -> None:
    before = _stored(local_stack)
    head = _head(local_stack, "POST", "/v1/opt-out", JSON_TYPE, ("Transfer-Encoding", "chunked"))
    code, _, payload = _exchange(local_stack, head + _chunked(_opt_out_body(), 7))
    assert code == 202, payload
    assert _stored(local_stack) == before + 1


@pytest.mark.parametrize(
    ("chunks", "status", "field"),
    [(b"zz\r\n{}\r\n0\r\n\r\n", 400, "body"), (b"5\r\n{}\r\n0\r\n\r\n", 400, "body"),
     (b"2\r\n{}0\r\n\r\n", 400, "body"), (b"2\r\n{}\r\n", 400, "body"),
     (_chunked(b" " * (LIMIT + 1), 1024), 413, "body")],
    ids=["not hex", "shorter than its size", "no CRLF after data", "no last chunk",
         "over the limit"],
)  # fmt: skip
def test_a_malformed_or_oversized_chunked_body_is_refused_and_not_stored(
    local_stack: Stack, chunks: bytes, status: int, field: str
) -> None:
    before = _stored(local_stack)
    head = _head(local_stack, "POST", "/v1/opt-out", JSON_TYPE, ("Transfer-Encoding", "chunked"))
    _refused(_exchange(local_stack, head + chunks, half_close=True), status, field)
    assert _stored(local_stack) == before


def test_chunked_with_a_content_length_is_a_400(local_stack: Stack) -> None:
    # The request-smuggling shape (RFC 9112 6.3): two framings that may disagree
    before = _stored(local_stack)
    body = _chunked(_opt_out_body(), 7)
    framings = [("Transfer-Encoding", "chunked"), ("Content-Length", str(len(body)))]
    head = _head(local_stack, "POST", "/v1/opt-out", JSON_TYPE, *framings)
    _refused(_exchange(local_stack, head + body), 400, "Transfer-Encoding")
    assert _stored(local_stack) == before


def test_a_request_line_over_64_kib_is_a_414_in_the_envelope(local_stack: Stack) -> None:
    target = "/v1/requests/" + "a" * 70_000
    reply = _exchange(local_stack, _head(local_stack, "GET", target))
    assert _refused(reply, 414, None)["code"] == "uri_too_long"
    # And the front still serves the next request
    assert local_stack.request("GET", "/v1/openapi.json")[0] == 200


def test_a_header_over_64_kib_is_a_431_in_the_envelope_not_html(local_stack: Stack) -> None:
    head = _head(local_stack, "GET", "/v1/openapi.json", ("X-Big", "b" * 70_000))
    assert _refused(_exchange(local_stack, head), 431)["code"] == "headers_too_large"


def test_a_request_that_is_not_http_gets_no_html_and_no_echo(local_stack: Stack) -> None:
    reply = _exchange(local_stack, b"GET /v1/x jane@example.com HTTP/9\r\n\r\n")
    error = _refused(reply, 400)
    assert b"jane" not in reply[2] and error["code"] == "bad_request"


def test_api_answers_carry_the_apis_cors_headers_not_the_functions(local_stack: Stack) -> None:
    # Given a call from the site's own origin (allowed) and one from another origin
    origin = local_stack.url
    body = {"customer_id": f"cors-{uuid.uuid4().hex[:12]}"}
    status, headers, _ = local_stack.request("POST", "/v1/opt-out", body, {"Origin": origin})
    _, evil, _ = local_stack.request("POST", "/v1/opt-out", body, {"Origin": "https://evil.test"})
    # Then the allowed one gets the CorsConfiguration's answer headers and nothing else of CORS
    assert status == 202
    cors = {k.lower(): v for k, v in headers.items() if k.lower().startswith("access-control-")}
    assert cors == {"access-control-allow-origin": origin,
                    "access-control-expose-headers": "retry-after"}  # fmt: skip
    assert {k.lower(): v for k, v in headers.items()}["vary"] == "Origin"
    # And the other none (the function's own CORS headers never pass)
    assert not any(k.lower().startswith("access-control-") for k in evil)


def test_a_refusal_by_the_front_carries_the_cors_headers_too(local_stack: Stack) -> None:
    sent = [("Origin", local_stack.url), ("Content-Length", str(1 << 30))]
    head = _head(local_stack, "POST", "/v1/opt-out", JSON_TYPE, *sent)
    reply = _exchange(local_stack, head)
    _refused(reply, 413)
    assert reply[1]["access-control-allow-origin"] == local_stack.url
    assert reply[1]["vary"] == "Origin"


@pytest.mark.parametrize(
    "path",
    ["/v1/consent/3f1c2a9e-8b7d-4c1e-9f00-1a2b3c4d5e6f",
     "/v1/requests/6b1f0c3e-2d4a-4b5c-9e8f-7a6b5c4d3e2f", "/v1/openapi.json"],
)  # fmt: skip
def test_head_on_a_get_route_is_the_default_routes_404_as_in_api_gateway(
    local_stack: Stack, path: str
) -> None:
    # An HTTP API's `GET /path` route key matches GET only; HEAD goes to `$default` (the
    # capture function's 404 envelope), as here (review s27 stranger L3: pinned, not changed)
    status, headers, body = _exchange(local_stack, _head(local_stack, "HEAD", path))
    assert status == 404
    assert headers["content-type"] == "application/json"
    assert body == b""  # a HEAD answer's headers only


# -- Host: only this machine's names for the stack (review s32 contract F1) ----------------

SIGV4 = ("Authorization", "AWS4-HMAC-SHA256 Credential=x/20261203/us-east-1/execute-api/"
         "aws4_request, SignedHeaders=host, Signature=00")  # fmt: skip
REBOUND = "rebind.attacker.example"


def _head_for(host: str | None, method: str, target: str, *headers: tuple[str, str]) -> bytes:
    lines = [f"{method} {target} HTTP/1.1", *([f"Host: {host}"] if host is not None else [])]
    lines += [f"{name}: {value}" for name, value in headers]
    return ("\r\n".join([*lines, "Connection: close", "", ""])).encode()


def _misdirected(reply: Reply) -> None:
    error = _refused(reply, 421)
    assert error["code"] == "misdirected_request"
    # It names only what the front listens on: 127.0.0.1 (review s32 edge E6)
    assert "[::1]" not in error["message"] and "127.0.0.1" in error["message"]
    assert reply[1]["x-content-type-options"] == "nosniff"
    assert reply[1]["cache-control"] == "no-store"
    assert REBOUND.encode() not in reply[2]


@pytest.mark.parametrize(
    ("method", "path", "headers", "body"),
    [("GET", "/_sandbox/salesforce/requests", (), b""),
     ("GET", "/_local/requests", (), b""),
     ("GET", "/requests.html", (), b""),
     ("POST", "/v1/admin/lookup", (SIGV4, JSON_TYPE), b'{"type":"email","value":"j@example.com"}'),
     ("POST", "/_local/demo/login", (JSON_TYPE,), b'{"email":"jane@demo.example.com"}')],
    ids=["sandbox", "local-requests", "site", "operator-route", "demo-login"],
)  # fmt: skip
def test_a_page_rebound_to_127_0_0_1_is_refused_with_421_on_every_route(
    local_stack: Stack, method: str, path: str, headers: tuple[tuple[str, str], ...], body: bytes
) -> None:
    # Given a web page whose name an attacker rebound to 127.0.0.1 (DNS rebinding): the
    # browser sends the page's own name as Host, with the stack's port
    port = urlsplit(local_stack.url).port
    length = ("Content-Length", str(len(body)))
    sent = _head_for(f"{REBOUND}:{port}", method, path, *headers, length) + body
    # When it asks the stack anything, Then the front refuses before any route reads it
    _misdirected(_exchange(local_stack, sent))


def test_a_rebound_opt_out_is_refused_and_not_stored(local_stack: Stack) -> None:
    before = _stored(local_stack)
    body = _opt_out_body()
    sent = [JSON_TYPE, ("Content-Length", str(len(body)))]
    port = urlsplit(local_stack.url).port
    _misdirected(_exchange(local_stack, _head_for(f"{REBOUND}:{port}", "POST", "/v1/opt-out",
                                                  *sent) + body))  # fmt: skip
    assert _stored(local_stack) == before


def test_this_machines_names_for_the_stack_are_served(local_stack: Stack) -> None:
    # 127.0.0.1 (the banner's URL) and localhost (the tests' second origin), any case
    port = urlsplit(local_stack.url).port
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"LocalHost:{port}"):
        status, _, _ = _exchange(local_stack, _head_for(host, "GET", "/v1/openapi.json"))
        assert status == 200, host
    # A request with no Host (an HTTP/1.0 tool; no browser sends one) is served as well
    assert _exchange(local_stack, _head_for(None, "GET", "/v1/openapi.json"))[0] == 200


def test_another_port_two_hosts_or_an_absolute_target_elsewhere_are_refused(
    local_stack: Stack,
) -> None:
    port = int(urlsplit(local_stack.url).port or 0)
    own = f"127.0.0.1:{port}"
    for sent in (
        _head_for(f"127.0.0.1:{port + 1}", "GET", "/_local/requests"),
        _head_for("127.0.0.1", "GET", "/_local/requests"),  # port 80
        _head_for(f"{REBOUND}.:{port}", "GET", "/_local/requests"),
        # The front listens on IPv4 only, so it does not name [::1] (review s32 edge E6)
        _head_for(f"[::1]:{port}", "GET", "/_local/requests"),
        _head_for(own, "GET", "/_local/requests", ("Host", f"{REBOUND}:{port}")),
        _head_for(own, "GET", f"http://{REBOUND}:{port}/_local/requests"),
    ):
        _misdirected(_exchange(local_stack, sent))


def test_a_rebound_request_expecting_100_continue_is_refused_before_its_body(
    local_stack: Stack,
) -> None:
    port = urlsplit(local_stack.url).port
    sent = [JSON_TYPE, ("Content-Length", "20"), ("Expect", "100-continue")]
    reply = _exchange(local_stack, _head_for(f"{REBOUND}:{port}", "POST", "/v1/opt-out", *sent))
    _misdirected(reply)  # a 421, never "100 Continue" first


def test_an_absolute_form_target_is_logged_by_its_route_key_not_its_path(
    local_stack: Stack,
) -> None:
    # Given a request whose target is absolute-form (a proxy's form), for a device's state
    device = f"absform{uuid.uuid4().hex[:16]}"
    host = urlsplit(local_stack.url).netloc
    target = f"{local_stack.url}/v1/consent/{device}?email=jane.absform@example.com"
    route_key = "GET /v1/consent/{device_id} -> 200"
    logged_before = local_stack.log_path.read_text().count(route_key)
    # When the stack answers it (its access line is written before the answer is sent)
    status, _, _ = _exchange(local_stack, _head_for(host, "GET", target))
    # Then the access line shows the route key, never the device id, which is a credential
    # (review s32 contract F2)
    assert status == 200
    log = local_stack.log_path.read_text()
    assert log.count(route_key) > logged_before  # its line (another request may add one)
    assert device not in log and "jane.absform" not in log


@pytest.mark.parametrize(
    ("sent", "status"),
    [(b"GET /v1/openapi.json HTTP/1.1\r\nX-Big: " + b"b" * 70_000 + b"\r\n\r\n", 431),
     (b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\n\r\n", 414),
     (b"BREW /v1/openapi.json HTTP/1.1\r\n\r\n", 501),
     (b"GET /v1/openapi.json HTTP/2.0\r\n\r\n", 505)],
    ids=["431", "414", "501", "505"],
)  # fmt: skip
def test_the_fronts_own_refusals_are_no_store_and_nosniff(
    local_stack: Stack, sent: bytes, status: int
) -> None:
    # As every API answer (review s32 contract F7)
    reply = _exchange(local_stack, sent)
    _refused(reply, status)
    assert reply[1]["x-content-type-options"] == "nosniff"
    assert reply[1]["cache-control"] == "no-store"


def test_a_misdirected_api_request_carries_the_cors_headers_as_the_other_refusals(
    local_stack: Stack,
) -> None:
    # Given an allowed page that reaches the stack by another name (a tunnel's), and a
    # rebound page, whose Origin is its own name
    port = urlsplit(local_stack.url).port
    allowed = _head_for(f"{REBOUND}:{port}", "GET", "/v1/requests/x", ("Origin", local_stack.url))
    rebound = ("Origin", f"http://{REBOUND}:{port}")
    # When each is refused with 421
    reply = _exchange(local_stack, allowed)
    other = _exchange(local_stack, _head_for(f"{REBOUND}:{port}", "GET", "/v1/requests/x", rebound))
    site = _exchange(local_stack, _head_for(f"{REBOUND}:{port}", "GET", "/_local/requests",
                                            ("Origin", local_stack.url)))  # fmt: skip
    # Then on an API path the allowed page can read why, as a 413 there (review s32 edge E5)
    _misdirected(reply)
    assert reply[1]["access-control-allow-origin"] == local_stack.url
    assert reply[1]["vary"] == "Origin"
    # And the rebound page cannot, and off the API no CORS headers are added, as before
    for refused in (other, site):
        _misdirected(refused)
        assert "access-control-allow-origin" not in refused[1]


@pytest.mark.parametrize("target", ["//v1/consent/{d}", "/v1//consent/{d}", "/v1/consent//{d}"])
def test_an_empty_path_segment_is_dropped_as_an_http_api_does(
    local_stack: Stack, target: str
) -> None:
    # Given a device's state asked for with a doubled slash (users see an HTTP API merge a
    # run of slashes: docs/local-stack.md, "Empty path segments")
    device = f"slash{uuid.uuid4().hex[:16]}"
    plain = _exchange(local_stack, _head(local_stack, "GET", f"/v1/consent/{device}"))
    # When asked with an empty segment
    reply = _exchange(local_stack, _head(local_stack, "GET", target.format(d=device)))
    # Then it is the same route's answer
    assert plain[0] == 200
    assert (reply[0], json.loads(reply[2])) == (200, json.loads(plain[2]))


@pytest.mark.parametrize("coding", ["gzip", "deflate", "br"])
def test_a_compressed_body_is_a_415_in_the_envelope_and_not_stored(
    local_stack: Stack, coding: str
) -> None:
    # Given an opt-out sent compressed (gzip bytes; deflate and br only named: the bytes are
    # passed on as sent, base64 when not text, as an HTTP API's payload 2.0 event carries them)
    before = _stored(local_stack)
    body = gzip.compress(_opt_out_body()) if coding == "gzip" else _opt_out_body()
    sent = [JSON_TYPE, ("Content-Encoding", coding), ("Content-Length", str(len(body)))]
    # When it is posted
    reply = _exchange(local_stack, _head(local_stack, "POST", "/v1/opt-out", *sent) + body)
    # Then capture refuses it by name, never a 500, and nothing is stored
    error = _refused(reply, 415, "Content-Encoding")
    assert error["code"] == "unsupported_media_type"
    assert _stored(local_stack) == before


def test_an_operator_route_refuses_a_compressed_body_the_same_way(local_stack: Stack) -> None:
    # The admin function shares capture's body gate (optout/http/raw_body.py)
    body = gzip.compress(b'{"type":"email","value":"j@example.com"}')
    sent = [SIGV4, JSON_TYPE, ("Content-Encoding", "gzip"), ("Content-Length", str(len(body)))]
    reply = _exchange(local_stack, _head(local_stack, "POST", "/v1/admin/lookup", *sent) + body)
    assert _refused(reply, 415, "Content-Encoding")["code"] == "unsupported_media_type"


# A header line http.server cannot read: its parser stopped there and dropped that line and
# every header after it (Content-Length too), the function got an empty body (422), and the
# body on the connection was read as the next request (501): review s35 outside F1.
MALFORMED_LINES = {
    "space before colon": b"X-Note : 1\r\n",
    "no colon": b"X-Note\r\n",
    "no name": b": 1\r\n",
    "folded line": b"Sec-GPC:\r\n 1\r\n",
    "bare CR in a value": b"X-Note: a\rb\r\n",
    "NUL in a value": b"X-Note: a\x00b\r\n",
    "mailbox From line": b"From x\r\n",
}


@pytest.mark.parametrize("line", MALFORMED_LINES.values(), ids=MALFORMED_LINES.keys())
@pytest.mark.parametrize("expect", [False, True], ids=["plain", "expect-100-continue"])
def test_a_header_line_that_is_not_name_colon_value_is_a_400_and_not_stored(
    local_stack: Stack, line: bytes, expect: bool
) -> None:
    # Given a valid opt-out whose header block has one malformed line before its framing
    before = _stored(local_stack)
    body = _opt_out_body()
    host = urlsplit(local_stack.url).netloc
    head = f"POST /v1/opt-out HTTP/1.1\r\nHost: {host}\r\n".encode() + line
    if expect:
        head += b"Expect: 100-continue\r\n"
    head += b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body)
    # When it is sent, with a second request behind it on the same connection
    follow = f"GET /v1/openapi.json HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    code, headers, answer = _exchange(local_stack, head + body + follow.encode())
    # Then the front refuses it in the envelope and closes: one answer, nothing stored, and
    # neither the body nor the request behind it is read as a request
    assert code == 400, answer
    assert headers["connection"] == "close"
    assert b"HTTP/1.1" not in answer  # no second answer on the connection
    assert json.loads(answer)["error"]["code"] == "bad_request"
    assert _stored(local_stack) == before
    # And the front still serves the next connection
    assert local_stack.request("GET", "/v1/openapi.json")[0] == 200


@pytest.mark.parametrize(
    "content_type", ["multipart/form-data; boundary=b", "multipart/form-data", "message/rfc822"]
)
def test_a_multipart_or_message_content_type_is_not_taken_for_a_malformed_header(
    local_stack: Stack, content_type: str
) -> None:
    # http.server's parser notes defects of its own for these types (no boundary, no parts):
    # they are no malformed header line, and the function refuses the type as it always did
    before = _stored(local_stack)
    body = _opt_out_body()
    head = _head(local_stack, "POST", "/v1/opt-out", ("Content-Type", content_type),
                 ("Content-Length", str(len(body))))  # fmt: skip
    error = _refused(_exchange(local_stack, head + body), 415)
    assert error["code"] == "unsupported_media_type"
    assert _stored(local_stack) == before
