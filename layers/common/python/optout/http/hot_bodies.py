"""The two hot routes' bodies, checked without pydantic (docs/decisions.md, "The hot bodies
without pydantic"): importing pydantic and building a model was a third of the capture
function's cold start.

`consent(fields)` and `opt_out(fields)` return exactly what `ConsentIn` / `OptOutIn` make of
the same JSON object, dumped (`model_dump(mode="json")`: every field, in the model's order,
defaults filled in), or None. None is not a refusal: the request then goes to the Event
Handler, whose model accepts or refuses it in its own words. So these accept only a subset of
what the models accept: JSON's own types, no coercion (a "true" string or a 1 for true is the
model's to judge), and the models stay the one description of the bodies (the OpenAPI
document, every refusal). tests/unit/test_hot_bodies.py holds the two to the models, field by
field from their JSON schema and on generated hostile bodies.
"""

import re
from collections.abc import Callable
from typing import Any, Final

from optout import jurisdictions
from optout.api_formats import DEVICE_ID_PATTERN, JURISDICTION_PATTERN
from optout.plain_text import NO, pydantic_str
from optout.purposes import ALL_PURPOSES

Check = Callable[[Any], Any]  # the value as the model dumps it, or NO
REQUIRED: Final = object()
STR_MAX_LENGTH: Final = 2048  # the models' str_max_length (api_models.StrictModel)
_PURPOSES: Final = frozenset(ALL_PURPOSES)


def _text(low: int, high: int, pattern: str | None = None) -> Check:
    high = min(high, STR_MAX_LENGTH)
    matcher = re.compile(pattern).fullmatch if pattern else None

    def check(value: Any) -> Any:
        if not pydantic_str(value) or not low <= len(value) <= high:
            return NO
        if matcher is not None and matcher(value) is None:
            return NO
        return value

    return check


def _trimmed(check: Check) -> Check:
    """A text the model strips (AgentIn): one with whitespace around it is the model's to read
    (Python's strip removes every character pydantic's does, and a few more)."""
    return lambda value: NO if type(value) is str and value != value.strip() else check(value)


def _optional(check: Check) -> Check:
    return lambda value: None if value is None else check(value)


def _identifier(check: Check) -> Check:
    """An optional identifier: "" is absent, as the models read it (api_models.OptionalEmail)."""
    return lambda value: None if value is None or value == "" else check(value)


def _flag(value: Any) -> Any:
    return value if type(value) is bool else NO


def _choices(value: Any) -> Any:
    if type(value) is not dict:
        return NO
    for purpose, chosen in value.items():
        if purpose not in _PURPOSES or type(chosen) is not bool:
            return NO
    return dict(value)


def _purposes(value: Any) -> Any:
    if type(value) is not list or not 1 <= len(value) <= 5:
        return NO
    for purpose in value:
        if type(purpose) is not str or purpose not in _PURPOSES:
            return NO
    return list(value)


Field = tuple[str, Check, Any]  # (name, check, default or REQUIRED)
Spec = tuple[frozenset[str], tuple[Field, ...]]  # the names, and the fields in model order


def _spec(*fields: Field) -> Spec:
    return frozenset(name for name, _, _ in fields), fields


def _object(fields: dict[str, Any], spec: Spec) -> dict[str, Any] | None:
    names, ordered = spec
    if not names.issuperset(fields):
        return None  # extra="forbid": an unknown key is the model's to refuse
    dumped: dict[str, Any] = {}
    for name, check, default in ordered:
        if name not in fields:
            if default is REQUIRED:
                return None
            dumped[name] = default() if callable(default) else default
            continue
        value = check(fields[name])
        if value is NO:
            return None
        dumped[name] = value
    return dumped


def _model(spec: Spec) -> Check:
    def check(value: Any) -> Any:
        dumped = _object(value, spec) if type(value) is dict else None
        return NO if dumped is None else dumped

    return check


_DEVICE_ID = _text(16, 64, DEVICE_ID_PATTERN)
_SHAPED_JURISDICTION = _text(0, STR_MAX_LENGTH, JURISDICTION_PATTERN)


def _place(value: Any) -> Any:
    """A code of the right shape naming no real place (`ZZ`) is the model's to refuse; `UK`
    is kept as `GB`, as the model keeps it."""
    shaped = _SHAPED_JURISDICTION(value)
    if shaped is NO:
        return NO
    code = jurisdictions.canonical(shaped)
    return NO if code is None else code


_JURISDICTION = _optional(_place)
_TOKEN = _identifier(_text(1, 2048))  # "" is absent, as for the identifiers
_PAGE_URL = _optional(_text(0, 2048))
_POLICY_VERSION = _optional(_text(0, 64))
_EMAIL = _identifier(_text(3, 254))
_PHONE = _identifier(_text(3, 32))
_CUSTOMER_ID = _identifier(_text(1, 128))

IDENTITY: Final = _spec(
    ("email", _EMAIL, None),
    ("customer_id", _CUSTOMER_ID, None),
    ("phone", _PHONE, None),
)
AGENT: Final = _spec(
    ("name", _trimmed(_text(1, 200)), REQUIRED),
    ("agent_id", _optional(_trimmed(_text(0, 200))), None),
)
CONSENT: Final = _spec(
    ("device_id", _DEVICE_ID, REQUIRED),
    ("opt_out", _choices, dict),
    ("gpc", _optional(_flag), None),
    ("jurisdiction", _JURISDICTION, None),
    ("identity", _optional(_model(IDENTITY)), None),
    ("identity_token", _TOKEN, None),
    ("confirm_opt_in", _optional(_flag), None),
    ("page_url", _PAGE_URL, None),
    ("policy_version", _POLICY_VERSION, None),
)
OPT_OUT: Final = _spec(
    ("email", _EMAIL, None),
    ("phone", _PHONE, None),
    ("customer_id", _CUSTOMER_ID, None),
    ("device_id", _identifier(_DEVICE_ID), None),
    ("purposes", _optional(_purposes), None),
    ("jurisdiction", _JURISDICTION, None),
    ("agent", _optional(_model(AGENT)), None),
    ("identity_token", _TOKEN, None),
    ("page_url", _PAGE_URL, None),
    ("policy_version", _POLICY_VERSION, None),
)


def consent(fields: dict[str, Any]) -> dict[str, Any] | None:
    """`ConsentIn.model_validate(fields).model_dump(mode="json")`, or None: ask the model."""
    return _object(fields, CONSENT)


def opt_out(fields: dict[str, Any]) -> dict[str, Any] | None:
    """`OptOutIn.model_validate(fields).model_dump(mode="json")`, or None: ask the model."""
    return _object(fields, OPT_OUT)
