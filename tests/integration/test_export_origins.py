"""An identity export explains an opt-out carried from another identity (review s31 counsel
F3): an `origin` record for each request not among the export's own whose job it lists (an
opt-out made on a device linked to the account, carried to it) or whose choice its state
reads (a banner opt-out made on a device before the login that linked it), with how it came
and what it asked, the holds it made, and never another person's identifiers."""

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import Aws
from tests.integration.test_shared_browser import (
    ANNA,
    ANNAS_LAPTOP,
    BEN,
    SHARED,
    login,
    two_accounts,
)
from tests.support.http_events import http_event, json_body
from tests.support.lambdas import invoke
from tests.support.pipeline import Pipeline, build_pipeline

DEVICE = "dev-origins-aaaaaaaaaaaa"
BOB = "bob.two@example.com"


@pytest.fixture
def pipe(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> Iterator[Pipeline]:
    yield build_pipeline(aws, monkeypatch)


def export(pipe: Pipeline, email: str) -> list[dict[str, Any]]:
    body = {"type": "email", "value": email}
    answer = invoke(pipe.admin, http_event("POST", "/v1/admin/exports/identity", body, iam=True))
    assert answer["statusCode"] == 200, answer["body"]
    records: list[dict[str, Any]] = json_body(answer)["records"]
    return records


def test_a_linked_devices_opt_out_is_explained_in_the_accounts_export(pipe: Pipeline) -> None:
    # Given Anna logged in on her laptop and, with Ben, on the family browser (his login held,
    # his carry reaching that browser's device only since review s31 stranger F1), then a
    # banner opt-out of sale on her laptop: its job carries her email, linked at her login
    two_accounts(pipe)
    login(pipe, SHARED, email=ANNA)
    login(pipe, SHARED, email=BEN)
    banner = pipe.post("/v1/consent", {"device_id": ANNAS_LAPTOP, "opt_out": {"sale": True}})
    pipe.resolve()
    # When Anna's records are exported
    records = export(pipe, ANNA)
    # Then the job of the laptop's request it lists comes with that request's origin: why, how
    # it came and what it asked, without the device's identifier; Ben's held login reaches none
    # of her jobs, so it is no origin of hers
    listed = {r["request_id"] for r in records if r["record"] == "request"}
    foreign = {r["request_id"] for r in records if r["record"] == "job"} - listed
    (origin,) = [r for r in records if r["record"] == "origin"]
    assert foreign == {origin["request_id"]} == {banner["request_id"]}
    # (its choice is the linked laptop's own too, which Anna's state reads)
    assert (origin["why"], origin["chose"]) == (["choice", "job"], ["sale"])
    assert (origin["event_type"], origin["source"]) == ("consent", "banner")
    assert origin["opt_out"] == {"sale": True} and origin["identifier_types"] == ["device_id"]
    assert origin["holds"] == []
    text = json.dumps(origin)
    assert BEN not in text and SHARED not in text and ANNAS_LAPTOP not in text


def test_a_banner_opt_out_carried_to_an_email_at_login_is_explained_in_its_export(
    pipe: Pipeline,
) -> None:
    # Given a banner opt-out on a browser, then a login there that links it to Bob's email
    choice = {"sale": True, "share": True, "targeted_advertising": True}
    banner = pipe.post("/v1/consent", {"device_id": DEVICE, "opt_out": choice})["request_id"]
    pipe.resolve()
    login(pipe, DEVICE, email=BOB)
    # When Bob's records are exported
    records = export(pipe, BOB)
    (identity,) = [r for r in records if r["record"] == "identity"]
    assert identity["own_choices"] == {} and any(identity["effective"].values())
    # Then the banner request that set the choices his state reads is named, with what it
    # asked and how it came
    (origin,) = [r for r in records if r["record"] == "origin"]
    assert (origin["request_id"], origin["why"], origin["source"]) == (banner, ["choice"], "banner")
    assert origin["chose"] == ["sale", "share", "targeted_advertising"]
    assert origin["opt_out"] == choice and origin["identifier_types"] == ["device_id"]
    assert origin["holds"] == []


def test_a_held_accounts_export_names_no_choice_of_the_shared_browsers_first_account(
    pipe: Pipeline,
) -> None:
    """Ben's login on Anna's browser is held; his carry asserts the browser, whose own choices
    are Anna's and never reach Ben's state: his export must not show her request, her opt-in
    or its time (review s31 last F1)."""
    two_accounts(pipe)
    login(pipe, SHARED, email=ANNA)
    annas = pipe.post(
        "/v1/consent", {"device_id": SHARED, "opt_out": {"profiling": True, "share": False}}
    )
    pipe.resolve()
    login(pipe, SHARED, email=BEN)
    origins = [r for r in export(pipe, BEN) if r["record"] == "origin"]
    assert not any(o["request_id"] == annas["request_id"] for o in origins)


def test_an_origin_shows_the_other_requests_opt_outs_never_its_opt_ins(pipe: Pipeline) -> None:
    """What another request opted in to never reaches this identity, so its origin record
    does not show it (review s31 last F1)."""
    two_accounts(pipe)
    pipe.post("/v1/consent", {"device_id": ANNAS_LAPTOP, "opt_out": {"sale": True, "share": False}})
    pipe.resolve()
    origins = [r for r in export(pipe, ANNA) if r["record"] == "origin"]
    assert origins
    for origin in origins:
        assert all(value is True for value in (origin.get("opt_out") or {}).values()), origin
