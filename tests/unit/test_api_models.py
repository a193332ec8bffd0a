"""The public contract's input models (optout.api_models)."""

from typing import Any

import pytest
from pydantic import ValidationError

from optout.api_models import ConsentIn, ErrorOut, IdentityLinksIn, OptOutIn

DEVICE = "3f1c2a9e-8b7d-4c1e-9f00-1a2b3c4d5e6f"


def _error_locs(error: ValidationError) -> list[tuple[Any, ...]]:
    return [tuple(e["loc"]) for e in error.errors()]


def test_consent_accepts_every_known_purpose() -> None:
    choices = {"sale": True, "share": False, "targeted_advertising": True, "profiling": False}
    assert ConsentIn(device_id=DEVICE, opt_out=choices).opt_out == choices


def test_consent_refuses_an_unknown_purpose() -> None:
    with pytest.raises(ValidationError) as refused:
        ConsentIn.model_validate({"device_id": DEVICE, "opt_out": {"selling_stuff": True}})
    assert refused.value.errors()[0]["loc"][0] == "opt_out"


def test_opt_out_refuses_an_unknown_purpose() -> None:
    with pytest.raises(ValidationError) as refused:
        OptOutIn.model_validate({"email": "a@example.com", "purposes": ["sale", "marketing"]})
    assert _error_locs(refused.value) == [("purposes", 1)]


@pytest.mark.parametrize("purposes", [[], ["sale"] * 6])
def test_opt_out_purposes_list_must_hold_one_to_five_entries(purposes: list[str]) -> None:
    with pytest.raises(ValidationError):
        OptOutIn.model_validate({"email": "a@example.com", "purposes": purposes})


def test_opt_out_accepts_limit_sensitive_as_a_purpose() -> None:
    body = OptOutIn.model_validate({"email": "a@example.com", "purposes": ["limit_sensitive"]})
    assert body.purposes == ["limit_sensitive"]


@pytest.mark.parametrize(
    ("model", "body"),
    [
        (ConsentIn, {"device_id": DEVICE, "admin": True}),
        (ConsentIn, {"device_id": DEVICE, "identity": {"email": "a@example.com", "ssn": "x"}}),
        (OptOutIn, {"email": "a@example.com", "name": "Jane"}),
        (OptOutIn, {"email": "a@example.com", "agent": {"name": "CR", "token": "t"}}),
        (IdentityLinksIn, {"links": [], "extra": 1}),
    ],
)
def test_extra_fields_are_refused(model: Any, body: dict[str, Any]) -> None:
    with pytest.raises(ValidationError) as refused:
        model.model_validate(body)
    assert "extra_forbidden" in {e["type"] for e in refused.value.errors()}


@pytest.mark.parametrize("device_id", ["short", "a" * 65, "has spaces in it!!", DEVICE + "?"])
def test_consent_device_id_must_match_the_strict_pattern(device_id: str) -> None:
    with pytest.raises(ValidationError) as refused:
        ConsentIn.model_validate({"device_id": device_id})
    assert _error_locs(refused.value) == [("device_id",)]


@pytest.mark.parametrize("jurisdiction", ["US-CA", "US", "GB", "FR-75C"])
def test_jurisdiction_accepts_iso_3166_codes(jurisdiction: str) -> None:
    assert OptOutIn(email="a@example.com", jurisdiction=jurisdiction).jurisdiction == jurisdiction


@pytest.mark.parametrize("jurisdiction", ["us-ca", "USA", "US-", "US-CALI", "California"])
def test_jurisdiction_refuses_anything_else(jurisdiction: str) -> None:
    with pytest.raises(ValidationError):
        OptOutIn.model_validate({"email": "a@example.com", "jurisdiction": jurisdiction})


def test_consent_without_device_id_is_refused() -> None:
    with pytest.raises(ValidationError) as refused:
        ConsentIn.model_validate({"opt_out": {"sale": True}})
    assert _error_locs(refused.value) == [("device_id",)]


def test_identity_link_refuses_an_unknown_identifier_type() -> None:
    link = {"a": {"type": "device_id", "value": DEVICE}, "b": {"type": "ssn", "value": "1"}}
    with pytest.raises(ValidationError) as refused:
        IdentityLinksIn.model_validate({"links": [link]})
    assert _error_locs(refused.value) == [("links", 0, "b", "type")]


def test_identity_links_must_not_be_empty() -> None:
    with pytest.raises(ValidationError):
        IdentityLinksIn.model_validate({"links": []})


def test_strings_over_2048_characters_are_refused() -> None:
    with pytest.raises(ValidationError):
        ConsentIn.model_validate({"device_id": DEVICE, "page_url": "https://x/" + "a" * 2048})


def test_error_body_has_code_message_and_field() -> None:
    body = ErrorOut.model_validate({"error": {"code": "c", "message": "m", "field": "email"}})
    assert body.model_dump() == {"error": {"code": "c", "message": "m", "field": "email"}}


@pytest.mark.parametrize("name", ["", "   ", "\u00a0 \u3000"])
def test_an_agent_name_of_only_whitespace_is_refused_like_an_empty_one(name: str) -> None:
    with pytest.raises(ValidationError) as refused:
        OptOutIn.model_validate({"email": "a@example.com", "agent": {"name": name}})
    assert _error_locs(refused.value) == [("agent", "name")]


def test_an_agents_name_and_id_are_kept_without_the_whitespace_around_them() -> None:
    body = OptOutIn.model_validate(
        {"email": "a@example.com", "agent": {"name": " Acme Agents ", "agent_id": " A-1 "}}
    )
    assert body.model_dump(mode="json")["agent"] == {"name": "Acme Agents", "agent_id": "A-1"}
