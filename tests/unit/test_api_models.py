"""The public contract's input models (optout.api_models)."""

from datetime import date
from typing import Any

import pytest
from pydantic import ValidationError

from optout.api_models import (
    ConsentIn,
    ErrorOut,
    ExportRangeIn,
    IdentityIn,
    IdentityLinksIn,
    ImportIn,
    OptOutIn,
    RequestStatusOut,
)

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


# Well-formed codes naming no real place (review s35 outside, open 1): user-assigned (ZZ, XX,
# XK), reserved by ISO (EU, UK, AC), no US state (US-ZZ, US-XX, US-123), uninhabited (US-UM).
@pytest.mark.parametrize(
    "jurisdiction",
    ["ZZ", "XX", "XK", "EU", "UK-ENG", "AC", "US-ZZ", "US-XX", "US-123", "US-UM", "ZZ-CA"],
)
def test_jurisdiction_refuses_a_code_of_the_right_shape_naming_no_real_place(
    jurisdiction: str,
) -> None:
    for model, body in ((OptOutIn, {"email": "a@example.com"}), (ConsentIn, {"device_id": DEVICE})):
        with pytest.raises(ValidationError) as refused:
            model.model_validate({**body, "jurisdiction": jurisdiction})
        assert _error_locs(refused.value) == [("jurisdiction",)]
        assert refused.value.errors()[0]["type"] == "string_pattern_mismatch"


@pytest.mark.parametrize("jurisdiction", ["US-DC", "US-PR", "US-GU", "DE", "GB", "CA-QC", "JP"])
def test_jurisdiction_accepts_dc_territories_countries_and_their_subdivisions(
    jurisdiction: str,
) -> None:
    assert ConsentIn(device_id=DEVICE, jurisdiction=jurisdiction).jurisdiction == jurisdiction


def test_jurisdiction_uk_is_kept_as_gb() -> None:
    # ISO's code reserved for the United Kingdom: taken as its code, GB (refusing it lost whole
    # opt-outs)
    assert ConsentIn(device_id=DEVICE, jurisdiction="UK").jurisdiction == "GB"
    assert OptOutIn(email="a@example.com", jurisdiction="UK").jurisdiction == "GB"


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


# -- hostile input the mutation run (s20 MUT-D) found untested --------------------------------


@pytest.mark.parametrize(
    "day", ["2026-12-01T00:00:00", "2026-12-01T00:00:00Z", "2026-12-01\n", "20261201", "2026-1-01"]
)
def test_an_export_range_takes_a_day_as_yyyy_mm_dd_and_nothing_more(day: str) -> None:
    # a datetime would be read as its day, silently (and a local day is not the UTC one)
    for side in ("from", "to"):
        body = {"from": "2026-12-01", "to": "2026-12-02"} | {side: day}
        with pytest.raises(ValidationError) as refused:
            ExportRangeIn.model_validate(body)
        (error,) = refused.value.errors()
        assert (error["loc"], error["msg"]) == ((side,), "a day as YYYY-MM-DD")
    taken = ExportRangeIn.model_validate({"from": "2026-12-01", "to": "2026-12-02"})
    assert (taken.from_, taken.to) == (date(2026, 12, 1), date(2026, 12, 2))


def test_an_export_range_refuses_unknown_fields_and_long_cursors() -> None:
    body = {"from": "2026-12-01", "to": "2026-12-02"}
    for hostile in ({"extra": 1}, {"cursor": "c" * 2049}):
        with pytest.raises(ValidationError):
            ExportRangeIn.model_validate(body | hostile)
    assert ExportRangeIn.model_validate(body | {"cursor": "c" * 2048}).cursor == "c" * 2048


def test_an_import_row_value_is_capped_at_2048_characters_like_every_input_string() -> None:
    # the rows' values have no cap of their own: the models' str_max_length is theirs
    assert ImportIn.model_validate({"rows": [{"email": "e" * 2048}]}).rows[0]["email"]
    with pytest.raises(ValidationError) as refused:
        ImportIn.model_validate({"rows": [{"email": "e" * 2049}]})
    assert refused.value.errors()[0]["type"] == "string_too_long"


def test_a_request_status_names_a_denial_only_when_there_is_one() -> None:
    base = {"request_id": "r", "status": "received", "received_at": "2026-12-01T00:00:00.000Z",
            "deadline": "2026-12-18", "systems_total": 0, "systems_done": 0,
            "systems_failed": 0}  # fmt: skip
    assert "denied_at" not in RequestStatusOut(**base).model_dump()
    assert "denial_reason" not in RequestStatusOut(**base).model_dump()
    denied = RequestStatusOut(**base | {"status": "denied", "denied_at": "2026-12-02T00:00:00Z",
                                        "denial_reason": "other"})  # fmt: skip
    assert denied.model_dump()["denial_reason"] == "other"
    # the calendar is kept beside the answer, never in it
    page = denied.with_calendar("US-CA", True)
    assert page.page_calendar() == {"deadline_jurisdiction": "US-CA", "jurisdiction_stated": True}
    assert "deadline_jurisdiction" not in page.model_dump()


@pytest.mark.parametrize(("model", "field"), [(OptOutIn, "email"), (IdentityIn, "phone")])
def test_the_openapi_document_says_a_blank_optional_identifier_is_absent(
    model: Any, field: str
) -> None:
    any_of = model.model_json_schema()["properties"][field]["anyOf"]
    assert any_of[-2:] == [
        {"type": "string", "maxLength": 0, "description": "the same as absent"},
        {"type": "null"},
    ]
    assert model.model_validate({field: ""}).model_dump()[field] is None
