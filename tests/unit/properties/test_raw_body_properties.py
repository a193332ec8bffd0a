"""Properties of the raw-body gate (hypothesis): whatever bytes arrive, the answer is a
checked JSON object or a 4xx refusal, never another exception; nesting is measured exactly
(brackets inside strings do not count); and an acceptable object passes through unchanged."""

import base64
import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

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
