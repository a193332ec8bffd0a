"""Global Privacy Control: `Sec-GPC: 1` is an opt-out of sale, share and targeted advertising."""

from types import ModuleType
from typing import Any

import pytest

from tests.conftest import Aws
from tests.support.http_events import http_event, json_body
from tests.support.lambdas import invoke, load_function

DEVICE = "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"
ALL_IN = {"sale": False, "share": False, "targeted_advertising": False, "profiling": False}


@pytest.fixture
def capture(aws: Aws) -> ModuleType:
    return load_function("capture_api")


def _consent(gpc_header: str | None, body: dict[str, Any]) -> dict[str, Any]:
    headers = {"sec-gpc": gpc_header} if gpc_header is not None else {}
    return http_event("POST", "/v1/consent", {"device_id": DEVICE, **body}, headers=headers)


def test_sec_gpc_1_opts_out_of_sale_share_and_targeting_whatever_the_body_says(
    aws: Aws, capture: ModuleType
) -> None:
    # Given a banner choice that opts in to everything, sent with Sec-GPC: 1
    event = _consent("1", {"opt_out": ALL_IN, "gpc": False})
    # When it is captured
    answer = invoke(capture, event)
    # Then the answer and the stored event honour GPC; profiling keeps the body's choice,
    # which the answer leaves out (an unconfirmed `false` changes nothing)
    assert answer["statusCode"] == 202
    opted = {"sale": True, "share": True, "targeted_advertising": True, "profiling": False}
    assert json_body(answer)["gpc_honored"] is True
    assert json_body(answer)["opt_out"] == {p: v for p, v in opted.items() if v}
    (item,) = aws.items()
    assert (item["source"], item["gpc"], item["opt_out"]) == ("gpc", True, opted)


@pytest.mark.parametrize(
    "value", ["0", "true", "yes", "2", "", " 1x", "\u00a01", "1,0", "0, 1", "1,", ",1", "1;1"]
)
def test_other_sec_gpc_values_are_ignored(aws: Aws, capture: ModuleType, value: str) -> None:
    answer = invoke(capture, _consent(value, {"opt_out": {"sale": False}}))
    assert answer["statusCode"] == 202
    assert json_body(answer)["gpc_honored"] is False
    (item,) = aws.items()
    assert (item["source"], item["gpc"], item["opt_out"]) == ("banner", False, {"sale": False})


@pytest.mark.parametrize("value", ["1,1", "1, 1", " 1 ,\t1 ", "1,1,1"])
def test_sec_gpc_1_sent_twice_is_honoured(aws: Aws, capture: ModuleType, value: str) -> None:
    # Given a banner post whose Sec-GPC: 1 line a proxy repeated (the lines arrive joined by
    # commas; review s29 stranger N1: was not honoured, fail open)
    answer = invoke(capture, _consent(value, {"opt_out": {"sale": False}}))
    # Then it is the signal: every item says 1 (one 0 or empty item and it is not)
    assert answer["statusCode"] == 202
    assert json_body(answer)["gpc_honored"] is True
    (item,) = aws.items()
    assert (item["source"], item["gpc"]) == ("gpc", True)


def test_sec_gpc_1_on_the_webform_adds_the_gpc_purposes_and_records_gpc_as_source(
    aws: Aws, capture: ModuleType
) -> None:
    body = {"email": "pat@example.org", "purposes": ["profiling"]}
    event = http_event("POST", "/v1/opt-out", body, headers={"sec-gpc": "1"})
    answer = invoke(capture, event)
    assert answer["statusCode"] == 202
    (item,) = aws.items()
    assert item["source"] == "gpc" and item["gpc"] is True
    assert item["opt_out"] == dict.fromkeys(
        ["profiling", "sale", "share", "targeted_advertising"], True
    )


@pytest.mark.parametrize(("header", "honoured"), [("1", True), ("0", False), (None, False)])
def test_the_opt_out_answer_says_whether_gpc_was_honoured(
    aws: Aws, capture: ModuleType, header: str | None, honoured: bool
) -> None:
    # Given a webform opt-out, with or without Sec-GPC: 1 (the OpenAPI and DESIGN promise
    # `gpc_honored: true` for it, as POST /v1/consent answers)
    headers = {"sec-gpc": header} if header is not None else {}
    event = http_event("POST", "/v1/opt-out", {"email": "pat@example.org"}, headers=headers)
    # When it is captured
    answer = invoke(capture, event)
    # Then the answer says whether the signal was honoured, as the stored event records it
    assert answer["statusCode"] == 202
    assert json_body(answer)["gpc_honored"] is honoured
    (item,) = aws.items()
    assert item["gpc"] is honoured


def test_an_agents_request_with_sec_gpc_1_stays_sourced_to_the_agent(
    aws: Aws, capture: ModuleType
) -> None:
    # Given an authorised agent's opt-out sent through a browser that sends Sec-GPC: 1
    body = {"email": "pat@example.org", "agent": {"name": "Acme Agents", "agent_id": "A-1"}}
    answer = invoke(capture, http_event("POST", "/v1/opt-out", body, headers={"sec-gpc": "1"}))
    assert answer["statusCode"] == 202
    # Then the event keeps who filed it, and records the signal beside it
    (item,) = aws.items()
    assert (item["source"], item["gpc"]) == ("agent", True)
    assert item["evidence"]["agent"] == {"name": "Acme Agents", "agent_id": "A-1"}


def test_without_sec_gpc_the_banner_choice_is_stored_as_given(
    aws: Aws, capture: ModuleType
) -> None:
    answer = invoke(capture, _consent(None, {"opt_out": {"sale": True, "profiling": False}}))
    # (the answer says what the request changes: an unconfirmed `false` lifts nothing)
    assert json_body(answer) | {"request_id": None} == {
        "request_id": None,
        "device_id": DEVICE,
        "opt_out": {"sale": True},
        "gpc_honored": False,
    }
    (item,) = aws.items()
    assert item["source"] == "banner"


def test_a_confirmed_opt_in_is_answered_with_the_purposes_it_lifts(
    aws: Aws, capture: ModuleType
) -> None:
    body = {"opt_out": {"sale": False, "share": True}, "confirm_opt_in": True}
    answer = invoke(capture, _consent(None, body))
    assert json_body(answer)["opt_out"] == {"sale": False, "share": True}


@pytest.mark.parametrize("value", ["1 ", " 1", "\t1\t"])
def test_sec_gpc_1_with_the_whitespace_http_allows_around_a_value_is_honoured(
    aws: Aws, capture: ModuleType, value: str
) -> None:
    answer = invoke(capture, _consent(value, {"opt_out": {}}))
    assert json_body(answer)["gpc_honored"] is True


@pytest.mark.parametrize(
    "body",
    [{"opt_out": {"sale": "off"}, "confirm_opt_in": True}, {"opt_out": {"sale": 1}},
     {"opt_out": {"sale": False}, "confirm_opt_in": "on"}, {"gpc": "yes"}],
)  # fmt: skip
def test_a_choice_that_is_not_a_json_boolean_is_refused(
    aws: Aws, capture: ModuleType, body: dict[str, Any]
) -> None:
    answer = invoke(capture, _consent(None, body))
    assert answer["statusCode"] == 422
    assert aws.items() == []
