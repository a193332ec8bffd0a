"""HTTP request <-> API Gateway HTTP API payload 2.0, as the capture handler receives it."""

import base64
import json

from local.apigw import from_result, iam_authorizer, to_event
from local.http_types import Incoming
from local.template_config import Route, _path_regex


def route(method: str, path: str, iam: bool = False) -> Route:
    return Route(method, path, iam, _path_regex(path), "CaptureFunction")


def test_event_carries_route_path_query_headers_cookies_and_context() -> None:
    request = Incoming(
        "GET",
        "/v1/requests/abc?x=1&x=2&y=",
        [("Accept", "application/json"), ("X-Multi", "a"), ("X-Multi", "b"),
         ("Cookie", "optout_device_id=d1; other=2")],
        client_ip="127.0.0.1",
    )  # fmt: skip
    event = to_event(request, route("GET", "/v1/requests/{request_id}"), {"request_id": "abc"})
    assert event["version"] == "2.0"
    assert event["routeKey"] == "GET /v1/requests/{request_id}"
    assert event["rawPath"] == "/v1/requests/abc"
    assert event["rawQueryString"] == "x=1&x=2&y="
    assert event["queryStringParameters"] == {"x": "1,2", "y": ""}
    assert event["headers"]["x-multi"] == "a,b"
    assert "cookie" not in event["headers"]
    assert event["cookies"] == ["optout_device_id=d1", "other=2"]
    assert event["pathParameters"] == {"request_id": "abc"}
    http = event["requestContext"]["http"]
    assert (http["method"], http["path"], http["sourceIp"]) == (
        "GET",
        "/v1/requests/abc",
        "127.0.0.1",
    )
    assert event["requestContext"]["stage"] == "$default"
    assert "body" not in event


def test_cookies_are_trimmed_of_sp_and_htab_only() -> None:
    # As RFC 6265 §5.2 reads them: a Unicode space (Latin-1's NBSP, NEL on this front) before
    # a name is part of the name, never dropped into the __Host- one (review s29 stranger S1)
    cookie = "\ta=1 ;\u00a0__Host-optout_device_id=x; \u0085optout_device_id=y;;"
    request = Incoming("GET", "/v1/x", [("Cookie", cookie)], client_ip="127.0.0.1")
    event = to_event(request, route("GET", "/v1/x"), {})
    kept = ["a=1", "\u00a0__Host-optout_device_id=x", "\u0085optout_device_id=y"]
    assert event["cookies"] == kept


def test_text_bodies_pass_as_text_and_binary_as_base64() -> None:
    text = Incoming("POST", "/v1/consent", [("Content-Type", "application/json")], b'{"a":1}')
    event = to_event(text, route("POST", "/v1/consent"), {})
    assert (event["body"], event["isBase64Encoded"]) == ('{"a":1}', False)
    binary = Incoming("POST", "/v1/consent", [("Content-Type", "image/png")], b"\x89PNG")
    event = to_event(binary, route("POST", "/v1/consent"), {})
    assert event["isBase64Encoded"] and base64.b64decode(event["body"]) == b"\x89PNG"


def test_iam_block_only_with_a_sigv4_header_on_an_iam_route() -> None:
    signed = [
        (
            "Authorization",
            "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/execute-api/aws4_request, "
            "SignedHeaders=host, Signature=x",
        )
    ]
    links = route("POST", "/v1/identity-links", iam=True)
    event = to_event(Incoming("POST", "/v1/identity-links", signed), links, {})
    assert event["requestContext"]["authorizer"]["iam"]["accessKey"] == "test"
    unsigned = to_event(Incoming("POST", "/v1/identity-links", []), links, {})
    assert "authorizer" not in unsigned["requestContext"]
    public = to_event(Incoming("POST", "/v1/consent", signed), route("POST", "/v1/consent"), {})
    assert "authorizer" not in public["requestContext"]
    assert iam_authorizer("Bearer x") is None


def test_result_maps_status_headers_cookies_and_base64_body() -> None:
    answer = from_result(
        {
            "statusCode": 202,
            "headers": {"Content-Type": "application/json"},
            "multiValueHeaders": {"X-A": ["1", "2"]},
            "cookies": ["a=1; Path=/"],
            "body": base64.b64encode(b"\x00\x01").decode(),
            "isBase64Encoded": True,
        }
    )
    assert answer.status == 202
    assert ("X-A", "1") in answer.headers and ("X-A", "2") in answer.headers
    assert ("Set-Cookie", "a=1; Path=/") in answer.headers
    assert answer.body == b"\x00\x01"


def test_a_bare_return_value_is_a_200_json_body() -> None:
    answer = from_result({"hello": "world"})
    assert answer.status == 200 and json.loads(answer.body) == {"hello": "world"}
