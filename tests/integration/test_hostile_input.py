"""Hostile input on every public and operator route, signed and unsigned, at the handlers.

Each answer is a 4xx in the error envelope naming a field, holds none of what was sent,
writes nothing and raises nothing (a raised exception is a Lambda error: the errors alarm's
threshold is 0, so a stranger must not be able to page the operator). One shared table for
the module: no refused request may write to it.
"""

import base64
import json
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any
from urllib.parse import quote

import pytest

from optout.http import raw_body
from tests.conftest import Aws, module_account
from tests.support.http_events import http_event, json_body
from tests.support.lambdas import invoke, load_function

DEVICE = "3f1c2a9e-8b7d-4c1e-9f00-1a2b3c4d5e6f"
REQUEST_ID = "6b1f0c3e-2d4a-4b5c-9e8f-7a6b5c4d3e2f"
HOLD_ID = f"{REQUEST_ID}.000"
CANARY = "hostile-canary-7731@example.com"  # must never come back in an answer
JSON_CT = {"content-type": "application/json"}
FORM_CT = {"content-type": "application/x-www-form-urlencoded"}
LIMIT = 16 * 1024

# (function, method, path, path parameters, signed): every route of both functions.
CAPTURE_POSTS = [
    ("capture_api", "POST", "/v1/consent", {}),
    ("capture_api", "POST", "/v1/opt-out", {}),
]
ADMIN_POSTS = [
    ("admin_api", "POST", "/v1/identity-links", {}),
    ("admin_api", "POST", "/v1/admin/lookup", {}),
    ("admin_api", "POST", f"/v1/admin/holds/{HOLD_ID}/release", {"hold_id": HOLD_ID}),
    ("admin_api", "POST", f"/v1/admin/holds/{HOLD_ID}/reject", {"hold_id": HOLD_ID}),
    ("admin_api", "POST", "/v1/admin/systems/salesforce/replay", {"system": "salesforce"}),
]
POST_ROUTES = CAPTURE_POSTS + ADMIN_POSTS


class NotBase64(str):
    """A body API Gateway would never send: flagged base64 but not base64."""


def _nested(depth: int) -> str:
    return '{"a":' * depth + "1" + "}" * depth


# What a stranger sends as a body: (name, raw body, headers). Each must be refused.
HOSTILE_BODIES: list[tuple[str, str | bytes, dict[str, str]]] = [
    ("json array", json.dumps([{"email": CANARY}]), JSON_CT),
    ("json string", json.dumps(CANARY), JSON_CT),
    ("json number", "42", JSON_CT),
    ("json null", "null", JSON_CT),
    ("nested past the limit", _nested(9), JSON_CT),
    ("nested to the size limit", "[" * (LIMIT // 2) + "]" * (LIMIT // 2), JSON_CT),
    ("invalid utf-8, base64", b'{"email": "\xff\xfe' + CANARY.encode() + b'"}', JSON_CT),
    ("invalid base64", NotBase64("!!!" + CANARY), JSON_CT),
    ("over the size limit", json.dumps({"email": CANARY, "pad": "x" * LIMIT}), JSON_CT),
    ("duplicate keys", f'{{"email": "{CANARY}", "email": "{CANARY}"}}', JSON_CT),
    ("NUL escaped", json.dumps({"email": CANARY + "\0"}), JSON_CT),
    ("NUL raw", '{"email": "' + CANARY + '"}\0', JSON_CT),
    ("NaN", '{"email": NaN}', JSON_CT),
    ("an integer of 5000 digits", '{"email": ' + "9" * 5000 + "}", JSON_CT),
    ("unpaired surrogate", '{"email": "\\ud800' + CANARY + '"}', JSON_CT),
    ("text/plain", json.dumps({"email": CANARY}), {"content-type": "text/plain"}),
    ("no content type", json.dumps({"email": CANARY}), {}),
    ("multipart", f"--x\r\n{CANARY}\r\n--x--", {"content-type": "multipart/form-data; boundary=x"}),
    ("form with a repeated field", f"email={CANARY}&email=b%40example.com", FORM_CT),
    (
        "10,000 identifiers",
        json.dumps(
            {
                "links": [
                    {
                        "a": {"type": "email", "value": CANARY},
                        "b": {"type": "device_id", "value": DEVICE},
                    }
                ]
                * 10_000
            }
        ),
        JSON_CT,
    ),
]


# One worker runs the whole module, in file order: its last test reads what the others stored
# in the module's table (under `--dist loadgroup` the tests would otherwise be split).
pytestmark = pytest.mark.xdist_group("hostile-input")


@pytest.fixture(scope="module")
def aws() -> Iterator[Aws]:
    with module_account() as account:
        yield account


@pytest.fixture(scope="module")
def functions(aws: Aws) -> dict[str, ModuleType]:
    return {name: load_function(name) for name in ("capture_api", "admin_api")}


Send = Callable[[str, dict[str, Any]], dict[str, Any]]


@pytest.fixture
def refused(aws: Aws, functions: dict[str, ModuleType]) -> Send:
    """send(function, event) -> the error object, after checking what every refusal shares."""

    def send(function: str, event: dict[str, Any]) -> dict[str, Any]:
        before = aws.items()
        answer = invoke(functions[function], event)  # a raise here is a Lambda error
        assert 400 <= answer["statusCode"] < 500, answer
        assert answer["headers"]["Content-Type"] == "application/json"
        body = json_body(answer)
        assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "field"}
        assert body["error"]["message"], "the error says what is expected"
        assert CANARY not in answer["body"] and "hostile-canary" not in answer["body"]
        assert "pattern" not in body["error"]["message"], "no regular expression quoted"
        assert aws.items() == before, "a refused request writes nothing"
        error: dict[str, Any] = {**body["error"], "status": answer["statusCode"]}
        return error

    return send


def _event(
    method: str,
    path: str,
    params: dict[str, str],
    raw: str | bytes | None = None,
    headers: dict[str, str] | None = None,
    signed: bool = True,
) -> dict[str, Any]:
    event = http_event(method, path, path_parameters=params or None, raw_body=raw, iam=signed)
    event["headers"] = dict(headers or {})
    if isinstance(raw, NotBase64):
        event["isBase64Encoded"] = True
    return event


# -- bodies ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("function", "method", "path", "params"), POST_ROUTES)
@pytest.mark.parametrize(
    ("name", "raw", "headers"), HOSTILE_BODIES, ids=[b[0] for b in HOSTILE_BODIES]
)
def test_every_hostile_body_on_every_post_route_is_a_clean_4xx(
    refused: Send,
    function: str,
    method: str,
    path: str,
    params: dict[str, str],
    name: str,
    raw: str | bytes,
    headers: dict[str, str],
) -> None:
    error = refused(function, _event(method, path, params, raw, headers))
    assert error["field"], "the error names the field"


@pytest.mark.parametrize(("function", "method", "path", "params"), ADMIN_POSTS)
@pytest.mark.parametrize(
    ("name", "raw", "headers"), HOSTILE_BODIES, ids=[b[0] for b in HOSTILE_BODIES]
)
def test_an_unsigned_caller_is_refused_before_any_hostile_body_is_read(
    refused: Send,
    function: str,
    method: str,
    path: str,
    params: dict[str, str],
    name: str,
    raw: str | bytes,
    headers: dict[str, str],
) -> None:
    error = refused(function, _event(method, path, params, raw, headers, signed=False))
    assert (error["status"], error["code"]) == (403, "forbidden")


@pytest.mark.parametrize(("function", "method", "path", "params"), CAPTURE_POSTS + ADMIN_POSTS[:2])
@pytest.mark.parametrize("raw", ["[]", '"text"', "42", "null", "true"])
def test_a_body_that_is_not_a_json_object_is_refused_never_unwrapped(
    refused: Send, function: str, method: str, path: str, params: dict[str, str], raw: str
) -> None:
    # Powertools hands a one-item array to an object model as its item: refused before that
    error = refused(function, _event(method, path, params, raw, JSON_CT))
    assert (error["status"], error["code"], error["field"]) == (422, "invalid_field", "body")
    assert "JSON object" in error["message"]


def test_a_one_item_array_of_a_valid_opt_out_is_refused(refused: Send) -> None:
    raw = json.dumps([{"email": "jane@example.com"}])
    error = refused("capture_api", _event("POST", "/v1/opt-out", {}, raw, JSON_CT))
    assert error["status"] == 422


def test_nesting_is_refused_before_json_loads_runs(
    refused: Send, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a JSON parser that records what it is given
    parsed: list[str] = []
    real = json.loads
    monkeypatch.setattr(raw_body.json, "loads", lambda s, **kw: parsed.append(s) or real(s, **kw))
    # When the deepest body that fits the size limit is sent
    raw = "[" * (LIMIT // 2) + "]" * (LIMIT // 2)
    error = refused("capture_api", _event("POST", "/v1/opt-out", {}, raw, JSON_CT))
    # Then it is refused as too deep, and nothing parsed it
    assert (error["status"], error["code"]) == (400, "malformed_json")
    assert "deeper than 8" in error["message"]
    assert raw not in parsed


def test_brackets_inside_strings_do_not_count_as_nesting(
    aws: Aws, functions: dict[str, ModuleType]
) -> None:
    body = {"email": "jane@example.com", "agent": {"name": '[[[[[[[[[[{{{{{{{{{{\\"[['}}
    answer = invoke(
        functions["capture_api"], _event("POST", "/v1/opt-out", {}, json.dumps(body), JSON_CT)
    )
    assert answer["statusCode"] == 202


def test_a_duplicate_key_is_refused_and_named(refused: Send) -> None:
    raw = '{"email": "jane@example.com", "email": "other@example.com"}'
    error = refused("capture_api", _event("POST", "/v1/opt-out", {}, raw, JSON_CT))
    assert (error["status"], error["code"], error["field"]) == (400, "malformed_json", "email")


def test_a_duplicate_key_nested_in_an_identity_link_is_refused(refused: Send) -> None:
    raw = ('{"links": [{"a": {"type": "email", "type": "phone", "value": "x"},'
           ' "b": {"type": "device_id", "value": "' + DEVICE + '"}}]}')  # fmt: skip
    error = refused("admin_api", _event("POST", "/v1/identity-links", {}, raw, JSON_CT))
    assert error["code"] == "malformed_json"


@pytest.mark.parametrize("raw", [b'{"email": "\xc3\x28@example.com"}', b"\xff\xfe{}"])
def test_invalid_utf8_in_a_base64_body_is_a_400(refused: Send, raw: bytes) -> None:
    error = refused("capture_api", _event("POST", "/v1/opt-out", {}, raw, JSON_CT))
    assert (error["status"], error["code"]) == (400, "malformed_json")
    assert "UTF-8" in error["message"]


@pytest.mark.parametrize("raw", ["email=%FF%FE", b"email=\xff\xfe"])
def test_invalid_utf8_in_a_form_is_a_400(refused: Send, raw: str | bytes) -> None:
    # percent-encoded or raw bytes: either way the form's own error code
    error = refused("capture_api", _event("POST", "/v1/opt-out", {}, raw, FORM_CT))
    assert (error["status"], error["code"]) == (400, "malformed_form")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"customer_id": "cust\u0000001"}, "customer_id"),
        ({"email": "jane@example.com", "agent": {"name": "Agent\u0000"}}, "agent.name"),
        ({"email": "jane@example.com", "page_url": "https://x/\u0001"}, "page_url"),
        ({"email": "jane@example.com", "purposes": ["sale", "share\u0000"]}, "purposes[1]"),
    ],
)
def test_nul_and_control_characters_are_refused_naming_the_field(
    refused: Send, body: dict[str, Any], field: str
) -> None:
    error = refused("capture_api", _event("POST", "/v1/opt-out", {}, json.dumps(body), JSON_CT))
    assert (error["status"], error["field"]) == (422, field)
    assert "control characters" in error["message"]


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/v1/opt-out", {"agent": {"name": "Acme\nfiled by agent: Trusted"}}, "agent.name"),
        ("/v1/opt-out", {"agent": {"name": "Acme", "agent_id": "A-1\rA-2"}}, "agent.agent_id"),
        ("/v1/opt-out", {"agent": {"name": "Acme\tAgents"}}, "agent.name"),
        ("/v1/opt-out", {"agent": {"name": "Acme \u009b2J"}}, "agent.name"),
        ("/v1/opt-out", {"policy_version": "v1\u0085v2"}, "policy_version"),
        ("/v1/opt-out", {"page_url": "https://shop.example.com/\u009b31m"}, "page_url"),
        ("/v1/consent", {"device_id": DEVICE, "policy_version": "v1\n=1+1"}, "policy_version"),
        ("/v1/opt-out", {"agent": {"name": "Acme\u2028filed by agent: X"}}, "agent.name"),
        ("/v1/opt-out", {"page_url": "https://shop.example.com/\u2029a"}, "page_url"),
    ],
)
def test_line_breaks_tabs_and_c1_controls_in_text_an_operator_reads_are_refused(
    refused: Send, path: str, body: dict[str, Any], field: str
) -> None:
    # A line feed in an agent's name printed a line of its own reading as the CLI's in
    # `optout status` ("filed by agent: ..."), a CR overwrote one, and a C1 CSI (U+009B)
    # reached the terminal: all were kept (review s36 terminal). Such text is refused as the
    # other control characters are (docs/reliability.md), naming the field, nothing stored
    body = {"email": CANARY, **body} if path == "/v1/opt-out" else body
    error = refused("capture_api", _event("POST", path, {}, json.dumps(body), JSON_CT))
    assert (error["status"], error["code"], error["field"]) == (422, "invalid_field", field)
    assert error["message"] == f"{field} must not contain NUL or other control characters"


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/v1/opt-out", {"agent": {"name": "Acme \u202eAgents"}}, "agent.name"),
        ("/v1/opt-out", {"agent": {"name": "Acme", "agent_id": "A\u202d1"}}, "agent.agent_id"),
        ("/v1/opt-out", {"policy_version": "2026\u2066-01-01"}, "policy_version"),
        ("/v1/opt-out", {"page_url": "https://shop.example.com/\u2067privacy"}, "page_url"),
        ("/v1/opt-out", {"agent": {"name": "Acme \u061cAgents"}}, "agent.name"),
        ("/v1/consent", {"device_id": DEVICE, "policy_version": "v\u200e1"}, "policy_version"),
    ],
)
def test_format_characters_in_text_an_operator_reads_are_refused(
    refused: Send, path: str, body: dict[str, Any], field: str
) -> None:
    # Kept as evidence and shown by `optout status` and the exports: a bidi override there
    # could make an agent's name read otherwise on a terminal or in a CSV (review s29 N2)
    body = {"email": CANARY, **body} if path == "/v1/opt-out" else body
    error = refused("capture_api", _event("POST", path, {}, json.dumps(body), JSON_CT))
    assert (error["status"], error["code"], error["field"]) == (422, "invalid_field", field)
    assert error["message"] == (
        f"{field} must not contain bidirectional control characters (such as U+202E)"
    )


@pytest.mark.parametrize(
    "name",
    [
        "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645 Agents",  # Persian: ZWNJ in its spelling
        "Family \U0001f468\u200d\U0001f469\u200d\U0001f467 Agents",  # an emoji ZWJ sequence
        "Privacy\u00adAgents",  # a soft hyphen
    ],
)
def test_format_characters_that_are_not_bidi_controls_are_accepted_in_an_agents_name(
    functions: dict[str, ModuleType], name: str
) -> None:
    # Only the bidirectional controls make a shown text read otherwise; refusing every format
    # character refused ordinary Persian names and emoji (review s29 diff D6)
    body = {"email": "persian-agent@example.com", "agent": {"name": name}}
    event = _event("POST", "/v1/opt-out", {}, json.dumps(body), JSON_CT)
    assert invoke(functions["capture_api"], event)["statusCode"] == 202


@pytest.mark.parametrize("text", ["v1\r\nv2", "v1\tv2", "v1\u009b2J"])
def test_a_line_break_tab_or_c1_control_in_a_form_posts_policy_version_is_refused(
    refused: Send, text: str
) -> None:
    # the no-JavaScript form sends its hidden fields url-encoded: read as the JSON body is
    raw = f"email={quote(CANARY)}&policy_version={quote(text)}"
    error = refused("capture_api", _event("POST", "/v1/opt-out", {}, raw, FORM_CT))
    assert (error["status"], error["field"]) == (422, "policy_version")


def test_a_format_character_in_a_form_posts_page_url_is_refused(refused: Send) -> None:
    page = quote("https://shop.example.com/\u202e")
    raw = f"email={quote(CANARY)}&page_url={page}"
    error = refused("capture_api", _event("POST", "/v1/opt-out", {}, raw, FORM_CT))
    assert (error["status"], error["field"]) == (422, "page_url")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ('{"email": "\\ud800' + CANARY + '"}', "email"),
        ('{"email": "' + CANARY + '", "agent": {"name": "\\udfffA"}}', "agent.name"),
    ],
)
def test_an_unpaired_surrogate_is_refused_in_words_that_say_so(
    refused: Send, body: str, field: str
) -> None:
    # Was "must not contain NUL or other control characters" (review s29 stranger N3); the
    # address is never repeated back (the fixture checks the canary)
    error = refused("capture_api", _event("POST", "/v1/opt-out", {}, body, JSON_CT))
    assert (error["status"], error["field"]) == (422, field)
    assert error["message"] == (
        f"{field} must not contain unpaired surrogates (a \\ud800-\\udfff escape alone)"
    )


def test_a_nul_in_an_identity_link_value_is_refused_naming_the_field(refused: Send) -> None:
    body = {"links": [{"a": {"type": "customer_id", "value": "c\u00001"},
                       "b": {"type": "device_id", "value": DEVICE}}]}  # fmt: skip
    error = refused(
        "admin_api", _event("POST", "/v1/identity-links", {}, json.dumps(body), JSON_CT)
    )
    assert error["field"] == "links[0].a.value"


@pytest.mark.parametrize("path", ["/v1/admin/lookup", "/v1/admin/exports/identity"])
@pytest.mark.parametrize(
    ("id_type", "value"),
    [
        ("email", "hostile-canary-7731@"),
        ("phone", "hostile-canary-7731"),
        ("device_id", "hostile"),
        ("customer_id", "hostile canary"),
    ],
)
def test_a_malformed_identifier_to_look_up_is_refused_naming_the_body_field(
    refused: Send, path: str, id_type: str, value: str
) -> None:
    # Found by schemathesis (review s19 ST): the refusal named the type ("email"), which is
    # no field of these bodies; README "Errors": `field` is a path into the body.
    body = {"type": id_type, "value": value}
    error = refused("admin_api", _event("POST", path, {}, json.dumps(body), JSON_CT))
    assert (error["status"], error["code"], error["field"]) == (422, "invalid_field", "value")


def test_a_form_repeating_a_single_field_is_refused_naming_it(refused: Send) -> None:
    raw = "email=jane%40example.com&email=other%40example.com"
    error = refused("capture_api", _event("POST", "/v1/opt-out", {}, raw, FORM_CT))
    assert (error["status"], error["field"]) == (422, "email")


def test_a_form_may_repeat_purposes(aws: Aws, functions: dict[str, ModuleType]) -> None:
    raw = "email=jane%40example.com&purposes=sale&purposes=share"
    answer = invoke(functions["capture_api"], _event("POST", "/v1/opt-out", {}, raw, FORM_CT))
    assert answer["statusCode"] == 202


def test_ten_thousand_identifiers_are_refused_by_size(refused: Send) -> None:
    links = [{"a": {"type": "email", "value": f"p{i}@example.com"},
              "b": {"type": "device_id", "value": DEVICE}} for i in range(10_000)]  # fmt: skip
    event = _event("POST", "/v1/identity-links", {}, json.dumps({"links": links}), JSON_CT)
    assert refused("admin_api", event)["status"] == 413


def test_more_links_than_allowed_within_the_size_limit_are_refused_by_count(refused: Send) -> None:
    links = [{"a": {"type": "customer_id", "value": f"c{i}"},
              "b": {"type": "customer_id", "value": f"d{i}"}} for i in range(101)]  # fmt: skip
    event = _event("POST", "/v1/identity-links", {}, json.dumps({"links": links}), JSON_CT)
    error = refused("admin_api", event)
    assert (error["status"], error["field"]) == (422, "links")
    assert error["message"] == "links must have at most 100 items"


def test_a_body_on_a_route_that_takes_none_is_refused(refused: Send) -> None:
    event = _event("POST", f"/v1/admin/holds/{HOLD_ID}/release", {"hold_id": HOLD_ID},
                   json.dumps({"value": CANARY}), JSON_CT)  # fmt: skip
    error = refused("admin_api", event)
    assert (error["status"], error["field"]) == (422, "body")


def test_an_unknown_key_that_is_not_a_field_name_is_never_repeated_back(refused: Send) -> None:
    raw = json.dumps({"email": "jane@example.com", CANARY: True})
    error = refused("capture_api", _event("POST", "/v1/opt-out", {}, raw, JSON_CT))
    assert (error["status"], error["field"]) == (422, "body")
    assert "unknown field" in error["message"]


# Review s17 PII H2: a customer id or device id sent as a key was repeated back whole (in the
# message and `field`), because it looked like a field name.
CUSTOMER_KEY = "CUST-CANARY-77"
ID_KEYS = [CUSTOMER_KEY, "cus_NffrFeUfNV2Hib", "dev-canary-abe2020f2b19", "custcanary77"]


@pytest.mark.parametrize("key", ID_KEYS)
@pytest.mark.parametrize(
    ("function", "path", "body"),
    [
        ("capture_api", "/v1/opt-out", lambda k: {k: "x", "email": "jane@example.com"}),
        ("capture_api", "/v1/consent", lambda k: {"device_id": DEVICE, "identity": {k: "x"}}),
        ("capture_api", "/v1/opt-out",
         lambda k: {"email": "jane@example.com", "agent": {"name": "Acme", k: 1}}),
        ("admin_api", "/v1/admin/lookup", lambda k: {"type": "email", "value": "x", k: 1}),
    ],
    ids=["top level", "identity", "agent", "operator route"],
)  # fmt: skip
def test_an_unknown_key_shaped_like_a_name_is_not_repeated_back(
    refused: Send, key: str, function: str, path: str, body: Callable[[str], Any]
) -> None:
    error = refused(function, _event("POST", path, {}, json.dumps(body(key)), JSON_CT))
    assert error["status"] == 422 and "unknown field" in error["message"]
    assert key.lower() not in json.dumps(error).lower()


@pytest.mark.parametrize(
    ("raw", "field"),
    [(json.dumps({CUSTOMER_KEY: 1}).replace("}", f', "{CUSTOMER_KEY}": 2}}'), "body"),
     ('{"email": "jane@example.com", "email": "j@example.com"}', "email")],
    ids=["not ours", "ours"],
)  # fmt: skip
def test_a_duplicate_key_is_named_only_if_it_is_one_of_ours(
    refused: Send, raw: str, field: str
) -> None:
    error = refused("capture_api", _event("POST", "/v1/opt-out", {}, raw, JSON_CT))
    assert (error["code"], error["field"]) == ("malformed_json", field)
    assert CUSTOMER_KEY not in json.dumps(error)


def test_a_repeated_form_field_that_is_not_ours_is_not_named(refused: Send) -> None:
    raw = f"{CUSTOMER_KEY}=1&{CUSTOMER_KEY}=2&email=jane%40example.com"
    error = refused("capture_api", _event("POST", "/v1/opt-out", {}, raw, FORM_CT))
    assert (error["status"], error["field"]) == (422, "body")
    assert CUSTOMER_KEY not in json.dumps(error)


def test_the_html_error_page_does_not_repeat_an_unknown_key(
    functions: dict[str, ModuleType],
) -> None:
    headers = {**FORM_CT, "accept": "text/html"}
    raw = f"{CUSTOMER_KEY}=1&email=jane%40example.com"
    answer = invoke(functions["capture_api"], _event("POST", "/v1/opt-out", {}, raw, headers))
    assert answer["statusCode"] == 422
    assert "unknown field" in answer["body"] and CUSTOMER_KEY not in answer["body"]


@pytest.mark.parametrize(
    ("path", "body", "field", "near"),
    [
        ("/v1/opt-out", {"emial": "jane@example.com"}, "emial", "email"),
        ("/v1/consent", {"device_id": DEVICE, "identity": {"phnoe": "+14155550123"}},
         "identity.phnoe", "phone"),
        ("/v1/consent", {"device_id": DEVICE, "email": "jane@example.com"}, "email", None),
    ],
    ids=["typo", "nested typo", "a name of another route"],
)  # fmt: skip
def test_a_typo_of_a_field_is_named_with_the_field_it_misses(
    refused: Send, path: str, body: dict[str, Any], field: str, near: str | None
) -> None:
    error = refused("capture_api", _event("POST", path, {}, json.dumps(body), JSON_CT))
    assert (error["status"], error["field"]) == (422, field)
    hint = f"; did you mean {near}?" if near else ""
    assert error["message"] == f"{field} is not a field of this request{hint}"


def test_every_documented_name_may_be_repeated_back(functions: dict[str, ModuleType]) -> None:
    # answers.API_FIELDS is written out (the gate names a field without pydantic): it must
    # hold every property and parameter name the OpenAPI documents give a caller to send.
    from optout.http.answers import API_FIELDS  # noqa: PLC0415

    def names(node: Any) -> set[str]:
        if isinstance(node, dict):
            found = set(node.get("properties", {})) | {
                p["name"] for p in node.get("parameters", []) if p.get("in") != "header"
            }
            return found.union(*(names(v) for v in node.values()))
        if isinstance(node, list):
            return set().union(*(names(v) for v in node))
        return set()

    for module in functions.values():
        doc = json.loads(module._openapi_document())
        inputs = {k: v for k, v in doc["components"]["schemas"].items() if k.endswith("In")}
        sent = names(inputs) | names(doc["paths"])
        assert sent <= API_FIELDS


# -- headers ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key",
    ["a\r\nSet-Cookie: x=1", "a\nb", "a\rb", "nul\x00", "k" * 256, ""],
    ids=["crlf", "lf", "cr", "nul", "too long", "empty"],
)
@pytest.mark.parametrize(
    ("function", "path", "body"),
    [
        ("capture_api", "/v1/opt-out", {"email": "jane@example.com"}),
        ("capture_api", "/v1/consent", {"device_id": DEVICE}),
        ("admin_api", "/v1/identity-links", {"links": [
            {"a": {"type": "device_id", "value": DEVICE},
             "b": {"type": "email", "value": "jane@example.com"}}]}),
    ],
)  # fmt: skip
def test_a_malformed_idempotency_key_is_refused(
    refused: Send, function: str, path: str, body: dict[str, Any], key: str
) -> None:
    event = _event("POST", path, {}, json.dumps(body), {**JSON_CT, "idempotency-key": key})
    error = refused(function, event)
    assert (error["status"], error["field"]) == (422, "Idempotency-Key")


def test_control_characters_in_the_user_agent_are_not_stored(
    aws: Aws, functions: dict[str, ModuleType]
) -> None:
    headers = {**JSON_CT, "user-agent": "Bot/1\r\nX-Injected: 1\x00"}
    event = _event("POST", "/v1/opt-out", {}, json.dumps({"customer_id": "ua-test-1"}), headers)
    assert invoke(functions["capture_api"], event)["statusCode"] == 202
    stored = [
        i for i in aws.items() if i.get("evidence", {}).get("user_agent", "").startswith("Bot/1")
    ]
    # (the evidence keeps a user agent's product tokens only: review s17 PII M1)
    assert [i["evidence"]["user_agent"] for i in stored] == ["Bot/1"]


def test_a_forged_viewer_country_header_is_not_taken_as_the_jurisdiction(
    aws: Aws, functions: dict[str, ModuleType]
) -> None:
    headers = {**JSON_CT, "cloudfront-viewer-country": "US",
               "cloudfront-viewer-country-region": "CA<script>"}  # fmt: skip
    event = _event("POST", "/v1/opt-out", {}, json.dumps({"customer_id": "geo-test-1"}), headers)
    answer = invoke(functions["capture_api"], event)
    assert answer["statusCode"] == 202
    request_id = json_body(answer)["request_id"]
    (stored,) = [i for i in aws.items() if i.get("request_id") == request_id and "evidence" in i]
    assert stored["evidence"].get("jurisdiction") is None


# -- paths and query strings -----------------------------------------------------------------

HOSTILE_SEGMENTS = ["nul\x00", "crlf\r\nx", "%00", "../../etc", "é" * 40, "a" * 5000, CANARY]
GET_ROUTES = [
    ("capture_api", "/v1/consent/{}", "device_id", False),
    ("capture_api", "/v1/requests/{}", "request_id", False),
    ("admin_api", "/v1/admin/requests/{}", "request_id", True),
]
POST_PATH_ROUTES = [
    ("admin_api", "/v1/admin/holds/{}/release", "hold_id"),
    ("admin_api", "/v1/admin/holds/{}/reject", "hold_id"),
    ("admin_api", "/v1/admin/systems/{}/replay", "system"),
]


def _path_event(
    method: str, template: str, name: str, segment: str, signed: bool = True
) -> dict[str, Any]:
    """As API Gateway sends it: the raw path percent-encoded, the parameter decoded."""
    event = _event(method, template.format(quote(segment, safe="")), {name: segment}, signed=signed)
    event["pathParameters"] = {name: segment}
    return event


def _refused_for_the_path(error: dict[str, Any], name: str) -> None:
    # 422 naming the parameter, or 404 where the resolver's own matching finds no route
    # (a parameter holding "/" or a control character): both in the envelope.
    assert (error["status"], error["field"]) in {(422, name), (404, None)}
    if error["status"] == 422:
        assert error["message"].startswith(f"{name} must be")


@pytest.mark.parametrize("segment", HOSTILE_SEGMENTS)
@pytest.mark.parametrize(("function", "template", "name", "signed"), GET_ROUTES)
def test_a_hostile_path_parameter_is_refused_in_words(
    refused: Send, function: str, template: str, name: str, signed: bool, segment: str
) -> None:
    error = refused(function, _path_event("GET", template, name, segment, signed))
    _refused_for_the_path(error, name)


@pytest.mark.parametrize("segment", HOSTILE_SEGMENTS)
@pytest.mark.parametrize(("function", "template", "name"), POST_PATH_ROUTES)
def test_a_hostile_path_parameter_on_an_operator_action_is_refused(
    refused: Send, function: str, template: str, name: str, segment: str
) -> None:
    error = refused(function, _path_event("POST", template, name, segment))
    _refused_for_the_path(error, name)


@pytest.mark.parametrize(
    ("function", "template", "name", "segment"),
    [("capture_api", "/v1/requests/{}", "request_id", REQUEST_ID.upper()),
     ("capture_api", "/v1/consent/{}", "device_id", "short"),
     ("admin_api", "/v1/admin/systems/{}/replay", "system", "Salesforce")],
)  # fmt: skip
def test_a_malformed_path_parameter_is_explained_not_matched_against_a_pattern(
    refused: Send, function: str, template: str, name: str, segment: str
) -> None:
    method = "POST" if "replay" in template else "GET"
    error = refused(function, _path_event(method, template, name, segment))
    assert (error["status"], error["field"]) == (422, name)
    assert error["message"].startswith(f"{name} must be")


@pytest.mark.parametrize(
    "query",
    [{"limit": "abc"}, {"limit": "1,2"}, {"limit": "9" * 5000}, {"limit": "0"},
     {"limit": "501"}, {"limit": "\x00"}, {"limit": "-1"}],
)  # fmt: skip
def test_a_hostile_query_string_is_refused_in_words(refused: Send, query: dict[str, str]) -> None:
    event = _event("GET", "/v1/admin/holds", {})
    event["queryStringParameters"] = query
    event["rawQueryString"] = "&".join(f"limit={v}" for v in query["limit"].split(","))
    error = refused("admin_api", event)
    assert (error["status"], error["field"]) == (422, "limit")
    # "1,2" arrives as limit=1&limit=2: a parameter given twice is refused by name (s32 F7)
    said = "limit is given more than once" if "," in query["limit"] else "limit must be"
    assert error["message"].startswith(said)


def test_a_query_string_on_a_route_without_one_is_ignored(
    aws: Aws, functions: dict[str, ModuleType]
) -> None:
    event = _event("GET", f"/v1/consent/{DEVICE}", {"device_id": DEVICE})
    event["queryStringParameters"] = {"x": "\ufffd" * 100, "email": CANARY}
    answer = invoke(functions["capture_api"], event)
    assert answer["statusCode"] == 200 and CANARY not in answer["body"]


# -- routes ----------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD"])
@pytest.mark.parametrize(
    "path", ["/v1/nothing", "/", "/v1/consent", "/v1/admin/lookup", f"/{CANARY}"]
)
def test_an_unmatched_route_answers_404_in_the_envelope(
    refused: Send, method: str, path: str
) -> None:
    # API Gateway's $default route sends the capture function what no other route matches
    event = _event(method, path, {}, json.dumps({"email": CANARY}), JSON_CT, signed=False)
    event["routeKey"] = event["requestContext"]["routeKey"] = "$default"
    error = refused("capture_api", event)
    assert (error["status"], error["code"]) == (404, "not_found")


def test_an_unknown_iam_route_points_at_the_iam_routes_document(refused: Send) -> None:
    event = _event("GET", "/v1/admin/zzz", {})
    event["routeKey"] = event["requestContext"]["routeKey"] = "GET /v1/admin/{proxy+}"
    error = refused("admin_api", event)
    assert (error["status"], error["code"]) == (404, "not_found")
    assert "/v1/admin/openapi.json" in error["message"]


@pytest.mark.parametrize("raw", HOSTILE_BODIES, ids=[b[0] for b in HOSTILE_BODIES])
def test_an_unmatched_route_never_reads_a_hostile_body(
    refused: Send, raw: tuple[str, str | bytes, dict[str, str]]
) -> None:
    event = _event("POST", "/v1/nothing", {}, raw[1], raw[2], signed=False)
    event["routeKey"] = event["requestContext"]["routeKey"] = "$default"
    assert refused("capture_api", event)["status"] == 404


@pytest.mark.parametrize(
    ("method", "path", "params"),
    [("GET", f"/v1/admin/requests/{REQUEST_ID}", {"request_id": REQUEST_ID}),
     ("GET", "/v1/admin/holds", {}), ("GET", "/v1/admin/openapi.json", {})]
    + [(m, p, params) for _, m, p, params in ADMIN_POSTS],
)  # fmt: skip
def test_every_operator_route_refuses_an_unsigned_caller(
    refused: Send, method: str, path: str, params: dict[str, str]
) -> None:
    error = refused("admin_api", _event(method, path, params, signed=False))
    assert (error["status"], error["code"]) == (403, "forbidden")


@pytest.mark.parametrize("query", ["limt=5", "limit=5&extra=1", "=true", f"{CANARY}=1"])
def test_an_operator_route_refuses_a_query_parameter_it_does_not_take(
    refused: Send, query: str
) -> None:
    event = _event("GET", "/v1/admin/holds", {})
    event["rawQueryString"] = query
    event["queryStringParameters"] = dict(p.split("=", 1) for p in query.split("&"))
    error = refused("admin_api", event)
    assert (error["status"], error["code"]) == (422, "invalid_field")
    assert "not a query parameter" in error["message"]


@pytest.mark.parametrize(
    ("query", "field", "message"),
    [("limt=5", "limt", "limt is not a query parameter of this route; did you mean limit?"),
     (f"{CUSTOMER_KEY}=1", "query", "this parameter is not a query parameter of this route")],
)  # fmt: skip
def test_a_query_parameter_is_named_only_as_a_typo_of_ours(
    refused: Send, query: str, field: str, message: str
) -> None:
    event = _event("GET", "/v1/admin/holds", {})
    event["rawQueryString"] = query
    error = refused("admin_api", event)
    assert (error["field"], error["message"]) == (field, message)


@pytest.mark.parametrize(
    ("path", "query", "field"),
    [("/v1/admin/metrics", "year=2026&year=2025", "year"),
     ("/v1/admin/holds", "limit=5&limit=6", "limit")],
)  # fmt: skip
def test_a_query_parameter_given_twice_is_refused_by_name(
    refused: Send, path: str, query: str, field: str
) -> None:
    # API Gateway joins repeated values with commas ("2026,2025"): the route then said "must
    # be a whole number" of a parameter that was one each time (review s32 contract F7)
    event = _event("GET", path, {})
    event["rawQueryString"] = query
    event["queryStringParameters"] = {field: ",".join(p.split("=", 1)[1] for p in query.split("&"))}
    error = refused("admin_api", event)
    assert (error["status"], error["code"], error["field"]) == (422, "invalid_field", field)
    assert error["message"] == f"{field} is given more than once; send it once"


def test_the_gate_knows_every_documented_body_and_query_parameter(
    functions: dict[str, ModuleType],
) -> None:
    # The gate's tables (which routes take a body, which query parameters) and the OpenAPI
    # documents come from different places: a route added to one must be added to the other.
    for module in functions.values():
        doc = json.loads(module._openapi_document())
        operations = [
            (f"{method.upper()} {path}", operation)
            for path, item in doc["paths"].items()
            for method, operation in item.items()
        ]
        assert {key for key, op in operations if "requestBody" in op} == set(module.BODY_ROUTES)
        queries = {
            key: frozenset(p["name"] for p in op.get("parameters", []) if p["in"] == "query")
            for key, op in operations
        }
        if hasattr(module, "QUERY_PARAMETERS"):
            assert {k: v for k, v in queries.items() if v} == module.QUERY_PARAMETERS
        else:
            assert not any(queries.values()), "a public route with query parameters"


# Last in the file (pytest runs a module's tests in order): after every refusal above.
def test_only_the_accepted_requests_are_in_the_shared_table(aws: Aws) -> None:
    kinds = {i.get("event_type") for i in aws.items() if i["sk"] == "EVENT"}
    assert kinds == {"opt_out"}  # only the few valid opt-outs sent on purpose
    assert all(CANARY not in json.dumps(i, default=str) for i in aws.items())


def test_base64_helper_sends_bytes_as_api_gateway_does() -> None:
    event = _event("POST", "/v1/opt-out", {}, b"\xff", JSON_CT)
    assert event["isBase64Encoded"] and base64.b64decode(event["body"]) == b"\xff"
