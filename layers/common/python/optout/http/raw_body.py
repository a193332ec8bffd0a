"""The raw-body gate: every check a stranger's bytes meet before anything parses them.

Runs on the API Gateway event before the Powertools resolver, so a hostile body is answered
with a 4xx here and never reaches `json.loads`' or pydantic's recursion, the form decoder's
replacement characters or the validation middleware's list unwrapping (Powertools hands a
one-item JSON array to an object model as its item). A body that passes is written back into
the event as plain JSON text, so what the resolver parses is exactly what was checked.
"""

import base64
import binascii
import json
import re
from collections.abc import Mapping
from typing import Any, NamedTuple, NoReturn
from urllib.parse import parse_qsl, unquote_to_bytes

from optout.http.answers import NO_ROUTE, Refused, field_name, field_path
from optout.plain_text import DuplicateKey, unique_keys

JSON = "application/json"
FORM = "application/x-www-form-urlencoded"
# Our deepest body (identity links) nests 4 levels; 8 leaves room and is far below where
# json.loads or pydantic recurse into trouble.
MAX_DEPTH = 8
DEFAULT_ROUTE = "$default"
BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Charsets whose bytes read the same as UTF-8 (none named: UTF-8, as RFC 8259 has it)
UTF8_NAMES = frozenset({None, "utf-8", "utf8", "us-ascii"})
# JSON text may escape any code point; none of these has a place in an opt-out, and NUL and
# unpaired surrogates break storage and hashing further on.
_FORBIDDEN_TEXT = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")
# In a text an operator reads (BodyRule.shown_text), the controls any string may hold are
# refused too: a line feed, carriage return or tab (a line of its own that reads as the CLI's,
# a line overwritten), the C1 controls (U+0080-U+009F; U+009B is a terminal's CSI) and
# Unicode's line and paragraph separators (U+2028, U+2029: a line break to an editor, a log
# viewer or a JSON-in-HTML page, where the CLI showed them escaped).
_SHOWN_CONTROL = re.compile(r"[\t\n\r\x80-\x9f\u2028\u2029]")
_STRUCTURE = re.compile(r'["\\\[\]{}]')


class BodyRule(NamedTuple):  # not a dataclass: cheaper to define at a cold start
    """A route that takes a body: the media types it accepts, for forms which fields may
    repeat (they become lists), and the free texts an operator reads (evidence shown by
    `optout status` and the exports), as paths: there a bidirectional control (Unicode's
    Bidi_Control, such as U+202E) is refused too, as it could make the text read otherwise
    on a terminal or in a spreadsheet (review s29 stranger N2), and so are a line feed, a
    carriage return, a tab and the C1 controls (review s36 terminal); other invisible
    characters (zero-width ones, ZWNJ in Persian, ZWJ in emoji) are text (review s29 diff D6)."""

    media_types: tuple[str, ...] = (JSON,)
    list_fields: frozenset[str] = frozenset()
    shown_text: frozenset[tuple[str, ...]] = frozenset()


def admit(
    event: dict[str, Any], rules: Mapping[str, BodyRule], max_bytes: int
) -> dict[str, Any] | None:
    """The body of a route that takes one, as a checked JSON object (a form's fields for a
    form post), or None for a route without one. Raises Refused with the answer to give:
    404 for API Gateway's $default route (no route matched).

    `rules` is keyed by API Gateway's route key ("POST /v1/consent"): stage-independent.
    """
    route_key = str(event.get("routeKey", ""))
    if route_key == DEFAULT_ROUTE:
        # API Gateway matched no route. Answered here, not by the resolver: its own matching
        # (a trailing slash, say) could take the request to a route whose body was not checked.
        raise NO_ROUTE
    method = str((event.get("requestContext") or {}).get("http", {}).get("method", "")).upper()
    if method not in BODY_METHODS:
        return None  # a GET's body is ignored, as every route here ignores it
    raw = _raw_bytes(event)
    if len(raw) > max_bytes:
        raise Refused(413, "too_large", f"the body exceeds {max_bytes} bytes")
    if raw and content_codings(event):
        # Compressed (or said to be). What an HTTP API does with such a body is not documented
        # (only REST APIs decompress): it may arrive as the coded bytes, or decoded with the
        # header kept. Either way these are not the bytes the header describes, so refuse
        # rather than read them as plain text (review s32 contract; docs/local-stack.md).
        raise Refused(
            415,
            "unsupported_media_type",
            "send the body uncompressed, without Content-Encoding",
            "Content-Encoding",
            # RFC 9110 15.5.16: a 415 for a content coding names the codings accepted
            extra_headers={"Accept-Encoding": "identity"},
        )
    rule = rules.get(route_key)
    if rule is None:
        if raw.strip():
            raise Refused(422, "invalid_field", "this route takes no body: send none")
        return None
    sent = media_type(event)
    if sent not in rule.media_types:
        raise Refused(415, "unsupported_media_type", f"send {' or '.join(rule.media_types)}")
    declared = charset(event)
    if declared not in UTF8_NAMES and not reads_as_utf8(raw, sent == FORM, declared or ""):
        # Bodies are read as UTF-8 only: text another charset would read otherwise is a media
        # type we do not take, not malformed text (review s27 stranger L5: was 400
        # malformed_json). Plain ASCII an ASCII-based charset reads alike is accepted: JSON
        # has no charset parameter (RFC 8259 §11), and older clients label ASCII form posts
        # ISO-8859-1 (review s28 L1: all 202 before that change).
        raise Refused(415, "unsupported_media_type", "send the body as UTF-8 (charset=utf-8)")
    if sent == FORM:
        return form_fields(raw, rule.list_fields, rule.shown_text)
    return json_object(raw, rule.shown_text)


def rewrite(event: dict[str, Any], body: dict[str, Any]) -> None:
    """Put the checked body back as JSON text: the resolver parses what was checked."""
    event["body"] = json.dumps(body, ensure_ascii=False)
    event["isBase64Encoded"] = False
    event.setdefault("headers", {})["content-type"] = JSON


def json_object(raw: bytes, shown: frozenset[tuple[str, ...]] = frozenset()) -> dict[str, Any]:
    text = _text(raw)
    if not text.strip():
        raise Refused(422, "invalid_field", "the body must be a JSON object; it is empty")
    if _nests_deeper_than(text, MAX_DEPTH):
        raise Refused(400, "malformed_json", f"the body nests deeper than {MAX_DEPTH} levels")
    try:
        value = json.loads(text, object_pairs_hook=unique_keys, parse_constant=_no_constant)
    except DuplicateKey as duplicate:
        message = "a key appears twice in one object: send each field once"
        raise Refused(400, "malformed_json", message, field_name(duplicate.key)) from None
    except (ValueError, RecursionError):  # JSONDecodeError, over-long integers
        raise Refused(400, "malformed_json", "the body is not valid JSON") from None
    if not isinstance(value, dict):
        raise Refused(422, "invalid_field", "the body must be a JSON object, not an array or value")
    if not _plain_json(text):
        _check_text(value, (), shown)
    return value


def _plain_json(text: str) -> bool:
    """Whether no key or string of this JSON text can hold a character `_check_text` refuses:
    printable ASCII only, as json.loads (strict) refuses a raw control character in a string
    and only an escape (a backslash) writes one, and DEL is the one it lets through."""
    return text.isascii() and "\\" not in text and "\x7f" not in text


def form_fields(
    raw: bytes, list_fields: frozenset[str], shown: frozenset[tuple[str, ...]] = frozenset()
) -> dict[str, Any]:
    """A form post's fields; blank ones dropped, a field repeated only if it is a list."""
    if raw.removeprefix(b"\xef\xbb\xbf").lstrip()[:1] in (b"{", b"["):  # a BOM before it too
        # JSON posted without its Content-Type (curl's -d sends a form): read as a form it was
        # one blank field or an unknown one, and the caller was told no identifier was given
        # (review s20 outside O3, diff C5). A browser's form encodes `{` and `[`, so no form
        # starts with one. Never echoed: it holds the identifiers.
        raise _json_as_form()
    try:
        pairs = parse_qsl(_text(raw, "malformed_form"), keep_blank_values=True, errors="strict")
    except UnicodeDecodeError:
        raise Refused(400, "malformed_form", "the form's fields are not UTF-8") from None
    if len(pairs) == 1 and not pairs[0][1].strip() and pairs[0][0].lstrip()[:1] in ("{", "["):
        # The same JSON percent-encoded (`curl --data-urlencode`): one field, a name, no value
        raise _json_as_form()
    fields: dict[str, Any] = {}
    for name, value in pairs:
        if not value.strip():
            continue
        if name in list_fields:
            fields.setdefault(name, []).append(value)
        elif name in fields:
            raise Refused(422, "invalid_field", SEND_ONCE, field_name(name))
        else:
            fields[name] = value
    _check_text(fields, (), shown)
    return fields


# A form field given twice (the webform's page advises otherwise than for a missing one).
SEND_ONCE = "send this field once"


# -- helpers -------------------------------------------------------------------------------


def _json_as_form() -> Refused:
    return Refused(415, "unsupported_media_type",
                   "the body is JSON: send Content-Type: application/json")  # fmt: skip


def _no_constant(_: str) -> NoReturn:
    raise ValueError("NaN and Infinity are not JSON")


def _raw_bytes(event: dict[str, Any]) -> bytes:
    raw = event.get("body") or ""
    try:
        if event.get("isBase64Encoded"):
            return base64.b64decode(raw, validate=True)
        return str(raw).encode("utf-8")
    except (binascii.Error, ValueError):  # bad base64; a str holding unpaired surrogates
        raise Refused(400, "malformed_json", "the body is not valid UTF-8 text") from None


def _text(raw: bytes, code: str = "malformed_json") -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise Refused(400, code, "the body is not valid UTF-8 text") from None


def reads_as_utf8(raw: bytes, form: bool, declared: str) -> bool:
    """Whether the body, declared in charset `declared`, reads the same as UTF-8: plain ASCII
    (for a form, its `%XX` escapes too: the charset is what decodes them) that the charset
    reads as ASCII. A charset that is not ASCII-based (UTF-16, say) reads those bytes as other
    text; a name Python does not know is taken as the label it likely is (an empty one,
    "unicode-1-1-utf-8")."""
    for text in (raw, unquote_to_bytes(raw)) if form else (raw,):
        if not text.isascii():
            return False
        try:
            if text.decode(declared) != text.decode("ascii"):
                return False
        except LookupError:  # an unknown name, or a codec that is not a text encoding
            continue
        except ValueError:  # UnicodeDecodeError: an odd length in UTF-16, say
            return False
    return True


def charset(event: dict[str, Any]) -> str | None:
    """The Content-Type's charset parameter, lower case and unquoted, or None."""
    headers = event.get("headers") or {}
    for param in str(headers.get("content-type", "")).split(";")[1:]:
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset":
            return value.strip().strip('"').lower()
    return None


def content_codings(event: dict[str, Any]) -> list[str]:
    """The Content-Encoding's codings other than `identity` (which means none), lower case."""
    headers = event.get("headers") or {}
    names = str(headers.get("content-encoding", "")).split(",")
    return [name for name in (n.strip().lower() for n in names) if name and name != "identity"]


def media_type(event: dict[str, Any]) -> str:
    """The Content-Type's media type, lower case, without parameters."""
    headers = event.get("headers") or {}
    return str(headers.get("content-type", "")).split(";")[0].strip().lower()


def _nests_deeper_than(text: str, limit: int) -> bool:
    """Bracket depth outside strings, in one pass over the structural characters only (no
    recursion, no backtracking): whatever the text, linear time."""
    if text.count("{") + text.count("[") <= limit:
        return False  # no deeper than its opening brackets, counted in strings or not
    depth = 0
    in_string = False
    skip_to = -1
    for found in _STRUCTURE.finditer(text):
        at, char = found.start(), found.group()
        if at < skip_to:
            continue
        if in_string:
            if char == "\\":
                skip_to = at + 2  # the escaped character, whatever it is
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > limit:
                return True
        elif char in "]}":
            depth -= 1
    return False


def _check_text(value: Any, path: tuple[str | int, ...], shown: frozenset[tuple[str, ...]]) -> None:
    """No NUL or other control characters, no unpaired surrogates, in any key or string; no
    line break, tab, C1 or bidirectional control in a text at a `shown` path. Depth is
    already bounded, so this recursion is too. The message names the kind of character,
    never the text (PII)."""
    if isinstance(value, str):
        found = _FORBIDDEN_TEXT.search(value)
        if path in shown and found is None:
            found = _SHOWN_CONTROL.search(value)
        if found or (path in shown and _has_bidi_control(value)):
            field = field_path(path)
            label = "the body" if field == "body" else field
            if found is None:
                rule = "must not contain bidirectional control characters (such as U+202E)"
            elif _SURROGATE.search(value):  # a JSON \ud800 escape without its pair
                rule = "must not contain unpaired surrogates (a \\ud800-\\udfff escape alone)"
            else:
                rule = "must not contain NUL or other control characters"
            raise Refused(422, "invalid_field", f"{label} {rule}", field)
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_text(key, path, frozenset())  # a bad key is reported at its parent
            _check_text(item, (*path, key), shown)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_text(item, (*path, index), shown)


# The bidirectional controls (Unicode's Bidi_Control property: ALM, LRM, RLM, the embeddings
# and overrides, the isolates): what makes a shown text read otherwise ("Trojan Source"). Other
# format characters stay allowed: ZWNJ is part of Persian spelling, ZWJ of emoji sequences.
_BIDI_CONTROLS = frozenset(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)


def _has_bidi_control(text: str) -> bool:
    return not text.isascii() and not _BIDI_CONTROLS.isdisjoint(text)
