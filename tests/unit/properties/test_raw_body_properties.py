"""Properties of the raw-body gate (hypothesis): whatever bytes arrive, the answer is a
checked JSON object or a 4xx refusal, never another exception; nesting is measured exactly
(brackets inside strings do not count); and an acceptable object passes through unchanged."""

import base64
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from optout.http import raw_body
from optout.http.answers import Refused
from optout.http.raw_body import MAX_DEPTH, BodyRule, _nests_deeper_than, admit

ROUTE = "POST /v1/opt-out"
RULES = {ROUTE: BodyRule(("application/json", "application/x-www-form-urlencoded"),
                         frozenset({"purposes"}))}  # fmt: skip
TRICKY_TEXT = st.text(alphabet=st.sampled_from('[]{}"\\ab\u00e9,:'), max_size=20)
SCALARS = st.none() | st.booleans() | st.integers() | TRICKY_TEXT
JSON_VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TRICKY_TEXT, inner, max_size=3),
    max_leaves=30,
)


def _depth(value: Any) -> int:
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    return 0


def _event(body: bytes, content_type: str = "application/json") -> dict[str, Any]:
    return {"routeKey": ROUTE, "requestContext": {"http": {"method": "POST"}},
            "headers": {"content-type": content_type},
            "body": base64.b64encode(body).decode(), "isBase64Encoded": True}  # fmt: skip


@given(
    body=st.binary(max_size=2048),
    content_type=st.sampled_from(["application/json", "application/x-www-form-urlencoded"]),
)
def test_any_bytes_are_admitted_as_an_object_or_refused_with_a_4xx(
    body: bytes, content_type: str
) -> None:
    try:
        admitted = admit(_event(body, content_type), RULES, max_bytes=1024)
    except Refused as refused:
        assert 400 <= refused.status < 500
        return
    assert isinstance(admitted, dict)


@given(value=JSON_VALUES, indent=st.sampled_from([None, 1]))
def test_nesting_is_measured_exactly_whatever_the_strings_hold(
    value: Any, indent: int | None
) -> None:
    text = json.dumps(value, indent=indent)
    for limit in range(5):
        assert _nests_deeper_than(text, limit) == (_depth(value) > limit)


@given(value=st.dictionaries(st.from_regex(r"[a-z_]{1,12}", fullmatch=True), JSON_VALUES,
                             max_size=5))  # fmt: skip
def test_an_acceptable_object_passes_unchanged(value: dict[str, Any]) -> None:
    text = json.dumps(value)
    try:
        admitted = admit(_event(text.encode()), RULES, max_bytes=1 << 20)
    except Refused:
        assert _depth(value) > MAX_DEPTH, "only nesting can refuse these objects"
        return
    assert admitted == value


# Characters the text check refuses somewhere (controls, DEL, C1, a bidi override, a lone
# surrogate), what it lets through, and what JSON escapes: written raw or escaped.
CHECKED_TEXT = st.text(
    alphabet=st.sampled_from(["a", " ", "\t", "\n", "\x00", "\x1f", "\x7f", "\x85", "\u202e",
                              "\u200d", "\ud800", "\\", '"', "/", "\u00e9"]),
    max_size=8,
)  # fmt: skip
SHOWN = BodyRule(("application/json",), shown_text=frozenset({("page_url",)}))


def _gate(text: str) -> Any:
    try:
        return admit(_event(text.encode("utf-8", "surrogatepass")), {ROUTE: SHOWN}, 1 << 20)
    except Refused as refused:
        return (refused.status, refused.code, refused.message, refused.field)


@given(
    fields=st.dictionaries(st.sampled_from(["page_url", "email", "x"]) | CHECKED_TEXT,
                           CHECKED_TEXT | st.lists(CHECKED_TEXT, max_size=2), max_size=3),
    ascii_only=st.booleans(),
)  # fmt: skip
def test_the_plain_json_shortcut_answers_as_the_text_check(
    fields: dict[str, Any], ascii_only: bool
) -> None:
    # Given a JSON body whose strings hold anything, escaped (ensure_ascii) or raw
    text = json.dumps(fields, ensure_ascii=ascii_only)
    # When the gate reads it with the shortcut and without it / Then the same answer
    answered = _gate(text)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(raw_body, "_plain_json", lambda _text: False)
        assert _gate(text) == answered


def test_a_plain_ascii_body_is_not_walked_again(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a banner's body: printable ASCII and no escape, so no string can hold a control
    body = json.dumps(
        {"device_id": "3f1c2a9e-8b7d-4c1e-9f00-1a2b3c4d5e6f", "opt_out": {"sale": True},
         "page_url": "https://shop.example.com/p"}
    )  # fmt: skip
    walked: list[Any] = []
    check = raw_body._check_text

    def counted(*args: Any) -> None:
        walked.append(args)
        check(*args)

    monkeypatch.setattr(raw_body, "_check_text", counted)
    # When the gate admits it / Then no string of it was searched again
    assert admit(_event(body.encode()), {ROUTE: SHOWN}, 1 << 20) == json.loads(body)
    assert walked == []
