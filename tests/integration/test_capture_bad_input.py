"""Bad input: a 4xx with a JSON error naming the field, never a 5xx, never a write, no echo."""

import gzip
import json
import zlib
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest

from tests.conftest import Aws, module_account
from tests.support.http_events import http_event, json_body
from tests.support.lambdas import invoke, load_event, load_function

DEVICE = "3f1c2a9e-8b7d-4c1e-9f00-1a2b3c4d5e6f"


@pytest.fixture(scope="module")
def aws() -> Iterator[Aws]:
    """One table for the module: no refused request may write to it, so they can share it."""
    with module_account() as account:
        yield account


@pytest.fixture(scope="module")
def capture(aws: Aws) -> ModuleType:
    return load_function("capture_api")


def _refused(aws: Aws, capture: ModuleType, event: dict[str, Any], status: int) -> dict[str, Any]:
    """Send `event` and check what every refusal shares; returns the error object."""
    before = aws.items()
    answer = invoke(capture, event)
    assert answer["statusCode"] == status
    assert answer["headers"]["Content-Type"] == "application/json"
    body = json_body(answer)
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "field"}
    assert body["error"]["field"], "the error names the field"
    assert aws.items() == before, "a refused request writes nothing"
    error: dict[str, Any] = body["error"]
    return error


def _post(path: str, body: Any, **headers: str) -> dict[str, Any]:
    return http_event("POST", path, body, headers=headers)


def test_unknown_purpose(aws: Aws, capture: ModuleType) -> None:
    event = _post("/v1/consent", {"device_id": DEVICE, "opt_out": {"sell_my_soul": True}})
    error = _refused(aws, capture, event, 422)
    assert error["field"].split(".")[0] == "opt_out"
    assert "sell_my_soul" not in error["message"] and "sell_my_soul" not in error["field"]


def test_unknown_purpose_in_the_webform_list(aws: Aws, capture: ModuleType) -> None:
    event = _post("/v1/opt-out", {"email": "a@example.com", "purposes": ["sale", "spamming"]})
    error = _refused(aws, capture, event, 422)
    assert error["field"] == "purposes[1]"
    assert "spamming" not in error["message"]


def test_no_identifier_at_all(aws: Aws, capture: ModuleType) -> None:
    error = _refused(aws, capture, _post("/v1/opt-out", {"purposes": ["sale"]}), 422)
    assert error["field"] in {"email", "phone", "customer_id", "device_id"}
    assert "identifier" in error["message"]


@pytest.mark.parametrize("email", ["jane.doe@", "jane.doe@example", "jane doe@example.com"])
def test_malformed_email(aws: Aws, capture: ModuleType, email: str) -> None:
    error = _refused(aws, capture, _post("/v1/opt-out", {"email": email}), 422)
    assert error["field"] == "email"
    assert email not in error["message"]


def test_malformed_email_in_the_banner_identity(aws: Aws, capture: ModuleType) -> None:
    body = {"device_id": DEVICE, "identity": {"email": "jane.doe@@example.com"}}
    error = _refused(aws, capture, _post("/v1/consent", body), 422)
    assert error["field"] == "identity.email"
    assert "jane.doe" not in error["message"]


@pytest.mark.parametrize("phone", ["12345", "+1 000 000 0000", "call me maybe"])
def test_malformed_phone(aws: Aws, capture: ModuleType, phone: str) -> None:
    error = _refused(aws, capture, _post("/v1/opt-out", {"phone": phone}), 422)
    assert error["field"] == "phone"
    assert phone not in error["message"]


@pytest.mark.parametrize("device_id", ["too-short", "a" * 65, "has spaces in the id!"])
def test_malformed_device_id_in_the_body(aws: Aws, capture: ModuleType, device_id: str) -> None:
    error = _refused(aws, capture, _post("/v1/consent", {"device_id": device_id}), 422)
    assert error["field"] == "device_id"
    assert device_id not in error["message"]


def test_malformed_device_id_in_the_path(aws: Aws, capture: ModuleType) -> None:
    device_id = "bad!device"
    event = http_event("GET", f"/v1/consent/{device_id}", path_parameters={"device_id": device_id})
    error = _refused(aws, capture, event, 422)
    assert error["field"] == "device_id"
    assert device_id not in error["message"]


def test_malformed_device_id_in_an_identity_link(aws: Aws) -> None:
    link = {"a": {"type": "device_id", "value": DEVICE + "\n"},
            "b": {"type": "email", "value": "jane@example.com"}}  # fmt: skip
    event = http_event("POST", "/v1/identity-links", {"links": [link]}, iam=True)
    error = _refused(aws, load_function("admin_api"), event, 422)
    assert error["field"] == "links[0].a.value"


@pytest.mark.parametrize("national", ["131 2345 6789", "(415) 555-0142"])
def test_national_phone_number_in_an_identity_link(aws: Aws, national: str) -> None:
    # Given a backend link naming a phone without its country code (a Chinese mobile that is
    # also a valid Chicago number, or a US one): a verified link joins both clusters both
    # ways, and the call states no country, so reading it as a US number could join a stranger
    link = {"a": {"type": "email", "value": "jane@example.com"},
            "b": {"type": "phone", "value": national}}  # fmt: skip
    event = http_event("POST", "/v1/identity-links", {"links": [link]}, iam=True)
    # Then it is refused, naming where the number sits and not echoing it
    error = _refused(aws, load_function("admin_api"), event, 422)
    assert error["field"] == "links[0].b.value"
    assert "E.164" in error["message"] and "2345" not in error["message"]


def test_a_refused_second_end_of_a_link_of_one_type_is_named_b(aws: Aws) -> None:
    # Given a link of two emails whose second one is malformed
    link = {"a": {"type": "email", "value": "jane@example.com"},
            "b": {"type": "email", "value": "jane@@example.com"}}  # fmt: skip
    event = http_event("POST", "/v1/identity-links", {"links": [link]}, iam=True)
    # Then the refusal names the second end, not the first (before: told apart by type)
    error = _refused(aws, load_function("admin_api"), event, 422)
    assert error["field"] == "links[0].b.value"


@pytest.mark.parametrize("stage", ["$default", "prod"])
def test_body_over_16_kib(aws: Aws, capture: ModuleType, stage: str) -> None:
    padding = "x" * (16 * 1024)
    event = _post("/v1/consent", {"device_id": DEVICE, "page_url": f"https://x/{padding}"})
    if stage != "$default":
        event["rawPath"] = f"/{stage}{event['rawPath']}"
        event["requestContext"]["stage"] = stage
    error = _refused(aws, capture, event, 413)
    assert error["code"] == "too_large"
    assert padding not in error["message"]


@pytest.mark.parametrize("content_type", ["text/plain", "application/xml", "multipart/form-data"])
def test_wrong_content_type(aws: Aws, capture: ModuleType, content_type: str) -> None:
    event = _post("/v1/consent", {"device_id": DEVICE}, **{"content-type": content_type})
    error = _refused(aws, capture, event, 415)
    assert error["code"] == "unsupported_media_type"


@pytest.mark.parametrize(
    ("route", "content_type", "raw"),
    [
        ("/v1/consent", "application/json; charset=latin-1",
         f'{{"device_id":"{DEVICE}","opt_out":{{"sale":true}},"x":"\xe9"}}'),
        ("/v1/opt-out", "application/json; charset=ISO-8859-1", '{"email":"caf\xe9@example.com"}'),
        # ASCII bytes, but UTF-16 is not ASCII-based: it reads them as other text
        ("/v1/opt-out", 'application/json; charset="utf-16"', '{"email":"pat@example.com"}'),
        # An ASCII form whose %E9 the declared charset decodes (é in windows-1252)
        ("/v1/opt-out", "application/x-www-form-urlencoded; charset=windows-1252",
         "email=caf%E9%40example.com"),
    ],
)  # fmt: skip
def test_a_charset_other_than_utf8_is_an_unsupported_media_type(
    aws: Aws, capture: ModuleType, route: str, content_type: str, raw: str
) -> None:
    headers = {"content-type": content_type, "accept": "application/json"}
    event = http_event("POST", route, raw_body=raw.encode("latin-1"), headers=headers)
    error = _refused(aws, capture, event, 415)
    assert error["code"] == "unsupported_media_type"
    assert "UTF-8" in error["message"]


def test_form_encoding_is_refused_where_only_json_is_accepted(
    aws: Aws, capture: ModuleType
) -> None:
    event = http_event("POST", "/v1/consent", raw_body=f"device_id={DEVICE}",
                       headers={"content-type": "application/x-www-form-urlencoded"})  # fmt: skip
    _refused(aws, capture, event, 415)


@pytest.mark.parametrize(
    "raw",
    ['{"email":"newcomer@example.com"}', ' [{"email":"a@b.co"}]', '{"email":"x=y@b.co"}',
     '\ufeff{"email":"bom@example.com"}',  # saved with a byte order mark (review s20 diff D4)
     "%7B%22email%22%3A%22encoded%40example.com%22%7D"],  # curl --data-urlencode (D4)
)  # fmt: skip
def test_json_posted_as_a_form_is_told_to_send_json(
    aws: Aws, capture: ModuleType, raw: str
) -> None:
    # Given JSON sent without its Content-Type (curl -d without -H sends it as a form)
    event = http_event("POST", "/v1/opt-out", raw_body=raw,
                       headers={"content-type": "application/x-www-form-urlencoded"})  # fmt: skip
    # Then it is told to send JSON (was: 422 "at least one identifier is required", field
    # email: the caller had sent one; review s20 outside O3), and the body is not echoed
    error = _refused(aws, capture, event, 415)
    assert error["code"] == "unsupported_media_type"
    assert "Content-Type: application/json" in error["message"]
    assert "example" not in error["message"] and "a@b" not in error["message"]


@pytest.mark.parametrize("raw", ['{"device_id": ', "{'device_id': 'x'}", "not json at all"])
def test_malformed_json(aws: Aws, capture: ModuleType, raw: str) -> None:
    error = _refused(aws, capture, http_event("POST", "/v1/consent", raw_body=raw), 400)
    assert error["code"] == "malformed_json"
    assert error["field"] == "body"
    assert raw not in error["message"]


@pytest.mark.parametrize("raw", ["[]", '"a string"', "42", ""])
def test_a_body_that_is_not_a_json_object(aws: Aws, capture: ModuleType, raw: str) -> None:
    error = _refused(aws, capture, http_event("POST", "/v1/opt-out", raw_body=raw), 422)
    assert error["field"] == "body"


def test_unknown_request_id(aws: Aws, capture: ModuleType) -> None:
    error = _refused(aws, capture, load_event("request_status_get.json"), 404)
    assert (error["code"], error["field"]) == ("not_found", "request_id")


def test_malformed_request_id(aws: Aws, capture: ModuleType) -> None:
    rid = "not-a-uuid"
    event = http_event("GET", f"/v1/requests/{rid}", path_parameters={"request_id": rid})
    error = _refused(aws, capture, event, 422)
    assert error["field"] == "request_id"


def test_idempotency_key_too_long(aws: Aws, capture: ModuleType) -> None:
    key = "k" * 256
    event = _post("/v1/opt-out", {"email": "a@example.com"}, **{"idempotency-key": key})
    error = _refused(aws, capture, event, 422)
    assert error["field"] == "Idempotency-Key"
    assert key not in error["message"]


def test_unknown_fields_are_refused(aws: Aws, capture: ModuleType) -> None:
    event = _post("/v1/opt-out", {"email": "a@example.com", "ssn": "078-05-1120"})
    error = _refused(aws, capture, event, 422)
    # Neither a typo of a field nor one of ours: not named (a key can be a customer id).
    assert (error["field"], error["message"]) == (
        "body",
        "the body has an unknown field (not named here)",
    )
    assert "078-05-1120" not in json.dumps(error)


CONSENT = json.dumps({"device_id": DEVICE, "opt_out": {"sale": True}}).encode()


@pytest.mark.parametrize(
    ("coding", "raw"),
    [("gzip", gzip.compress(CONSENT)),
     ("deflate", zlib.compress(CONSENT)),
     ("br", b"\x0b\x02\x80{}\x03"),
     # A plain body under the header: it was read as plain text and stored (review s32 contract)
     ("gzip", CONSENT),
     ("identity, GZIP", CONSENT)],
    ids=["gzip", "deflate", "br", "plain-under-gzip", "gzip-after-identity"],
)  # fmt: skip
def test_a_compressed_body_is_an_unsupported_media_type_and_not_stored(
    aws: Aws, capture: ModuleType, coding: str, raw: bytes
) -> None:
    # Given a body sent with a Content-Encoding: an HTTP API may pass its coded bytes on, or
    # decoded with the header kept (docs/local-stack.md, "Compressed bodies")
    event = http_event("POST", "/v1/consent", raw_body=raw,
                       headers={"content-encoding": coding})  # fmt: skip
    # Then capture refuses it by name (never a 500, never read as plain text), storing nothing
    error = _refused(aws, capture, event, 415)
    assert error == {"code": "unsupported_media_type", "field": "Content-Encoding",
                     "message": "send the body uncompressed, without Content-Encoding"}  # fmt: skip
    # and names what it accepts (RFC 9110 15.5.16: identity alone, no coding)
    assert invoke(capture, event)["headers"]["Accept-Encoding"] == "identity"


def test_the_no_js_forms_page_for_a_compressed_body_names_the_coding_accepted(
    aws: Aws, capture: ModuleType
) -> None:
    # Given a person's plain form post (a page answers it) sent with a Content-Encoding
    form = b"email=a%40example.com"
    event = http_event("POST", "/v1/opt-out", raw_body=gzip.compress(form),
                       headers={"content-type": "application/x-www-form-urlencoded",
                                "accept": "text/html", "content-encoding": "gzip"})  # fmt: skip
    # When it is posted
    answer = invoke(capture, event)
    # Then the page is the 415, naming identity as the one coding accepted, as JSON's does
    assert (answer["statusCode"], answer["headers"]["Content-Type"][:9]) == (415, "text/html")
    assert answer["headers"]["Accept-Encoding"] == "identity"
    assert aws.items() == []


def test_the_admin_functions_415_for_a_compressed_body_names_the_coding_accepted(
    aws: Aws,
) -> None:
    # The admin function shares capture's body gate (optout/http/raw_body.py)
    lookup = b'{"type":"email","value":"a@example.com"}'
    event = http_event("POST", "/v1/admin/lookup", raw_body=gzip.compress(lookup),
                       headers={"content-encoding": "gzip"}, iam=True)  # fmt: skip
    error = _refused(aws, load_function("admin_api"), event, 415)
    assert (error["code"], error["field"]) == ("unsupported_media_type", "Content-Encoding")
    answer = invoke(load_function("admin_api"), event)
    assert answer["headers"]["Accept-Encoding"] == "identity"


# After every refusal above (pytest runs a module's tests in order); the one test below stores.
def test_the_shared_table_is_still_empty_after_every_refusal(aws: Aws) -> None:
    assert aws.items() == []


# Last in the file: it stores a consent in the module's shared table.
def test_content_encoding_identity_is_no_coding(aws: Aws, capture: ModuleType) -> None:
    event = _post("/v1/consent", {"device_id": DEVICE, "opt_out": {"sale": True}},
                  **{"content-encoding": "identity"})  # fmt: skip
    assert invoke(capture, event)["statusCode"] in (200, 202)
