"""The hot routes' body checks (optout/http/hot_bodies.py) against the models they stand in
for: what a check accepts, the model accepts and dumps to the same value; what the model
refuses, the check never accepts (it leaves it to the model, whose refusal is the answer).
For bodies in JSON's own types the two agree both ways, limit by limit, read from the
models' JSON schema so that a changed limit fails here. Generated bodies:
tests/unit/properties/test_hot_body_properties.py."""

from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from optout.api_models import ConsentIn, OptOutIn
from optout.http import hot_bodies

DEVICE = "3f1c2a9e-8b7d-4c1e-9f00-1a2b3c4d5e6f"
HUGE = "a" * 1_000_000
CHECKS = {"consent": (ConsentIn, hot_bodies.consent), "opt-out": (OptOutIn, hot_bodies.opt_out)}


def model_dump(model: type[BaseModel], body: dict[str, Any]) -> dict[str, Any] | None:
    try:
        return model.model_validate(body).model_dump(mode="json")
    except ValidationError:
        return None


ACCEPTED: list[tuple[str, dict[str, Any]]] = [
    ("consent", {"device_id": DEVICE}),
    ("consent", {"device_id": DEVICE, "opt_out": {"sale": True, "share": False}}),
    ("consent", {"device_id": DEVICE, "gpc": True, "opt_out": {}}),
    ("consent", {"device_id": "a" * 16, "gpc": None, "identity": None, "jurisdiction": "US"}),
    ("consent", {"device_id": "A_-9" * 16, "jurisdiction": "US-CA", "page_url": "https://x/é",
                 "policy_version": "2026-01", "confirm_opt_in": False, "identity_token": "t"}),
    ("consent", {"device_id": DEVICE, "identity": {"email": "Jane@Example.com"}}),
    ("consent", {"device_id": DEVICE, "identity": {"phone": "+14155550123", "customer_id": "c"}}),
    ("consent", {"device_id": DEVICE, "identity": {}}),
    ("consent", {"opt_out": {"limit_sensitive": True, "profiling": True}, "device_id": DEVICE}),
    ("opt-out", {"email": "jane.doe@example.com"}),
    ("opt-out", {"email": "jane.doe@example.com", "jurisdiction": "US-CA"}),
    ("opt-out", {"customer_id": "cust-1", "purposes": ["sale", "limit_sensitive"],
                 "agent": {"name": "A"}}),
    ("opt-out", {"phone": "+14155550123", "agent": {"name": "A", "agent_id": None}}),
    ("opt-out", {"device_id": DEVICE, "purposes": ["sale", "sale"], "page_url": ""}),
    ("opt-out", {}),  # no identifier: the domain's refusal, not the model's
    ("opt-out", {"email": "a@b.c", "phone": "", "customer_id": "", "device_id": ""}),  # absent
    ("consent", {"device_id": DEVICE, "identity": {"email": "", "phone": "+14155550123"}}),
    ("consent", {"device_id": DEVICE, "identity_token": ""}),  # an unfilled input: absent
    ("opt-out", {"email": "a@b.c", "identity_token": ""}),
]  # fmt: skip


@pytest.mark.parametrize(("route", "body"), ACCEPTED)
def test_a_plain_body_is_accepted_as_the_model_dumps_it(route: str, body: dict[str, Any]) -> None:
    model, check = CHECKS[route]
    expected = model_dump(model, body)
    assert expected is not None
    checked = check(dict(body))
    assert checked == expected
    assert list(checked) == list(expected)  # the same order: the stored payload is a dump


HOSTILE: list[tuple[str, dict[str, Any]]] = [
    ("consent", {}),
    ("consent", {"device_id": 1234567890123456789}),
    ("consent", {"device_id": "short"}),
    ("consent", {"device_id": DEVICE + "\n"}),
    ("consent", {"device_id": "١٢٣٤٥٦٧٨٩٠١٢٣٤٥٦"}),  # Arabic-Indic digits are not 0-9
    ("consent", {"device_id": "a" * 65}),
    ("consent", {"device_id": HUGE}),
    ("consent", {"device_id": DEVICE, "extra": 1}),
    ("consent", {"device_id": DEVICE, "Device_id": DEVICE}),
    ("consent", {"device_id": DEVICE, "__proto__": {}}),
    ("consent", {"device_id": DEVICE, "opt_out": []}),
    ("consent", {"device_id": DEVICE, "opt_out": None}),
    ("consent", {"device_id": DEVICE, "opt_out": {"sale": 1}}),
    ("consent", {"device_id": DEVICE, "opt_out": {"sale": "true"}}),
    ("consent", {"device_id": DEVICE, "opt_out": {"selling": True}}),
    ("consent", {"device_id": DEVICE, "opt_out": {"sale": {"x": [1, {"y": None}]}}}),
    ("consent", {"device_id": DEVICE, "gpc": "true"}),
    ("consent", {"device_id": DEVICE, "gpc": 1}),
    ("consent", {"device_id": DEVICE, "gpc": 1.0}),
    ("consent", {"device_id": DEVICE, "confirm_opt_in": "yes"}),
    ("consent", {"device_id": DEVICE, "jurisdiction": "us-ca"}),
    ("consent", {"device_id": DEVICE, "jurisdiction": "US-CA\n"}),
    ("consent", {"device_id": DEVICE, "jurisdiction": "US-CAXX"}),
    ("consent", {"device_id": DEVICE, "identity": "jane@example.com"}),
    ("consent", {"device_id": DEVICE, "identity": []}),
    ("consent", {"device_id": DEVICE, "identity": {"email": 5}}),
    ("consent", {"device_id": DEVICE, "identity": {"email": "a"}}),
    ("consent", {"device_id": DEVICE, "identity": {"email": "a@b.c", "name": "Jane"}}),
    ("consent", {"device_id": DEVICE, "identity": {"email": HUGE}}),
    ("consent", {"device_id": DEVICE, "identity_token": "t" * 2049}),
    ("consent", {"device_id": DEVICE, "page_url": "u" * 2049}),
    ("consent", {"device_id": DEVICE, "page_url": "\ud800"}),  # a lone surrogate
    ("consent", {"device_id": DEVICE, "page_url": ["https://x"]}),
    ("consent", {"device_id": DEVICE, "policy_version": "v" * 65}),
    ("consent", {"device_id": DEVICE, "policy_version": 2}),
    ("opt-out", {"email": 5}),
    ("opt-out", {"email": "ab"}),
    ("opt-out", {"email": "a" * 255}),
    ("opt-out", {"email": ["jane@example.com"]}),
    ("opt-out", {"email": {"$ne": None}}),
    ("opt-out", {"phone": 14155550123}),
    ("opt-out", {"phone": "1" * 33}),
    ("opt-out", {"customer_id": "c" * 129}),
    ("opt-out", {"customer_id": 7}),
    ("opt-out", {"email": "a@b.c", "purposes": "sale"}),
    ("opt-out", {"email": "a@b.c", "purposes": []}),
    ("opt-out", {"email": "a@b.c", "purposes": ["sale"] * 6}),
    ("opt-out", {"email": "a@b.c", "purposes": [["sale"]]}),
    ("opt-out", {"email": "a@b.c", "purposes": ["marketing"]}),
    ("opt-out", {"email": "a@b.c", "purposes": [None]}),
    ("opt-out", {"email": "a@b.c", "agent": {}}),
    ("opt-out", {"email": "a@b.c", "agent": {"name": ""}}),
    ("opt-out", {"email": "a@b.c", "agent": {"name": "   "}}),  # the model strips, then refuses
    ("opt-out", {"email": "a@b.c", "agent": {"name": " A"}}),  # the model strips it: its dump
    ("opt-out", {"email": "a@b.c", "agent": {"name": "A", "agent_id": "x\u3000"}}),
    ("opt-out", {"email": "a@b.c", "agent": {"name": "A", "extra": 1}}),
    ("opt-out", {"email": "a@b.c", "agent": "A"}),
    ("opt-out", {"email": "a@b.c", "agent": {"name": "n" * 201}}),
    ("opt-out", {"email": "a@b.c", "device_id": "short"}),
    ("opt-out", {"email": "a@b.c", "identity": {"email": "a@b.c"}}),  # consent's field
    ("opt-out", {"email": "a@b.c", "gpc": True}),
]  # fmt: skip


@pytest.mark.parametrize(("route", "body"), HOSTILE)
def test_a_hostile_body_is_left_to_the_model(route: str, body: dict[str, Any]) -> None:
    # Refused by the model, or (a "true" for true, a 1) accepted by it only through coercion:
    # either way the check does not accept it, and the Event Handler's model answers.
    _model, check = CHECKS[route]
    assert check(dict(body)) is None


def _strings(schema: dict[str, Any], defs: dict[str, Any], prefix: tuple[str, ...] = ()) -> list[
    tuple[tuple[str, ...], dict[str, Any]]
]:  # fmt: skip
    """(path, string schema) of every string field, nested models' included."""
    found = []
    for name, field in schema["properties"].items():
        for option in field.get("anyOf", [field]):
            if "$ref" in option:
                nested = defs[option["$ref"].rsplit("/", 1)[1]]
                found += _strings(nested, defs, (*prefix, name))
            elif option.get("type") == "string":
                found.append(((*prefix, name), option))
    return found


def _limits() -> list[tuple[str, tuple[str, ...], int, str]]:
    cases = []
    for route, (model, _check) in CHECKS.items():
        schema = model.model_json_schema()
        for path, option in _strings(schema, schema.get("$defs", {})):
            low, high = option.get("minLength", 0), option.get("maxLength", 2048)
            filler = "a"
            if "pattern" in option:  # the only patterned strings here: device_id, jurisdiction
                filler = "a" if path[-1] == "device_id" else "A"
            for length in sorted({0, 1, 2, low - 1, low, low + 1, high - 1, high, high + 1, 2049}):
                if length >= 0:
                    cases.append((route, path, length, filler))
    return cases


def _body(route: str, path: tuple[str, ...], value: str) -> dict[str, Any]:
    body: dict[str, Any] = {"device_id": DEVICE} if route == "consent" else {}
    if path[0] == "agent":
        body["agent"] = {"name": "A"}
    target = body
    for part in path[:-1]:
        target = target.setdefault(part, {})
    target[path[-1]] = value
    return body


@pytest.mark.parametrize(("route", "path", "length", "filler"), _limits())
def test_every_string_limit_of_the_models_is_the_checks_limit(
    route: str, path: tuple[str, ...], length: int, filler: str
) -> None:
    # Given a string of each length around every limit the model's schema states
    model, check = CHECKS[route]
    body = _body(route, path, filler * length)
    # Then the check accepts it exactly when the model does, as the same dump
    assert check(body) == model_dump(model, body)


def test_the_checks_know_every_field_of_the_models() -> None:
    # A field added to a model is unknown to the check: its bodies would all go to the
    # Event Handler (correct, but the hot route's gain lost). Keep the two in step.
    for model, spec in ((ConsentIn, hot_bodies.CONSENT), (OptOutIn, hot_bodies.OPT_OUT)):
        names, ordered = spec
        assert [name for name, _, _ in ordered] == list(model.model_fields)
        assert names == set(model.model_fields)
