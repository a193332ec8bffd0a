"""Every API Gateway v2 sample in events/ through the handler template.yaml routes it to
(capture or admin), against moto."""

import copy
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from local.aws_resources import TEMPLATE, create_table
from local.cfn_yaml import load_template
from local.template_config import function_code, http_routes
from optout.evidence import sanitise_user_agent
from optout.identifiers import lookup_key, normalise
from optout.settings import LOCAL_HASH_KEY
from optout.store.codec import deserialize
from tests.conftest import TEST_ENV, Aws
from tests.support.lambdas import EVENTS, invoke, load_event, load_function

SECRET = LOCAL_HASH_KEY.encode()


def _http_samples() -> list[str]:
    names = []
    for path in sorted(EVENTS.glob("*.json")):
        loaded = json.loads(path.read_text())
        if isinstance(loaded, dict) and loaded.get("version") == "2.0" and "routeKey" in loaded:
            names.append(path.name)
    return names


HTTP_SAMPLES = _http_samples()


@cache
def _template() -> dict[str, Any]:
    """template.yaml, parsed once for the module's samples (half a second a parse)."""
    return load_template(TEMPLATE)


def _function_for(route_key: str) -> str:
    """functions/<name> of the function template.yaml routes this route key to."""
    template = _template()
    (logical_id,) = [r.function for r in http_routes(template) if r.route_key == route_key]
    return function_code(template, logical_id)[0].removeprefix("functions/")


def _request_body(sample: dict[str, Any]) -> dict[str, Any]:
    body = sample.get("body")
    if not body or sample.get("isBase64Encoded"):
        return {}
    parsed: dict[str, Any] = json.loads(body)
    return parsed


@dataclass(frozen=True)
class Run:
    """One sample sent through a fresh handler against a fresh moto table."""

    event: dict[str, Any]
    answer: dict[str, Any]
    dynamodb_calls: list[str]  # operation names, in order, made while handling it
    items: list[dict[str, Any]]  # the whole table afterwards


def _send(sample: str) -> Run:
    calls: list[str] = []
    with mock_aws():  # starting the mock resets boto3's default session: take it afterwards
        dynamodb = boto3.client("dynamodb", region_name="us-east-1")
        assert boto3.DEFAULT_SESSION is not None
        hooks = boto3.DEFAULT_SESSION.events  # the handler's client is created from it
        create_table(dynamodb, TEST_ENV["TABLE_NAME"])
        event = load_event(sample)
        hooks.register("before-call.dynamodb", lambda event_name, **_: calls.append(
            event_name.split(".")[-1]), unique_id="count-dynamodb-calls")  # fmt: skip
        try:
            function = load_function(_function_for(event["routeKey"]))
            answer = invoke(function, copy.deepcopy(event))
        finally:
            hooks.unregister("before-call.dynamodb", unique_id="count-dynamodb-calls")
        pages = dynamodb.get_paginator("scan").paginate(TableName=TEST_ENV["TABLE_NAME"])
        items = [deserialize(raw) for page in pages for raw in page["Items"]]
    return Run(event, answer, calls, items)


@pytest.fixture(scope="module")
def runs() -> Iterator[dict[str, Run]]:
    """Every sample, each sent once (shared by the tests below: they only read the results)."""
    with pytest.MonkeyPatch.context() as env:
        for key, value in TEST_ENV.items():
            env.setenv(key, value)
        env.delenv("HASH_KEY_SECRET_NAME", raising=False)
        env.delenv("STORE_IP_ADDRESS", raising=False)
        yield {sample: _send(sample) for sample in HTTP_SAMPLES}


def test_the_samples_cover_every_public_route() -> None:
    routes = {load_event(name)["routeKey"] for name in HTTP_SAMPLES}
    assert routes >= {
        "POST /v1/consent",
        "GET /v1/consent/{device_id}",
        "POST /v1/opt-out",
        "GET /v1/requests/{request_id}",
        "POST /v1/identity-links",
        "GET /v1/openapi.json",
        "GET /v1/admin/requests/{request_id}",
        "POST /v1/admin/lookup",
    }
    assert any(load_event(n)["headers"].get("sec-gpc") == "1" for n in HTTP_SAMPLES)


@pytest.mark.parametrize("sample", HTTP_SAMPLES)
def test_every_sample_gets_an_answer_that_is_not_a_server_error(
    runs: dict[str, Run], sample: str
) -> None:
    assert 200 <= runs[sample].answer["statusCode"] < 500


@pytest.mark.parametrize("sample", HTTP_SAMPLES)
def test_every_accepted_post_stores_one_event_with_one_dynamodb_call(
    runs: dict[str, Run], sample: str
) -> None:
    run = runs[sample]
    # Then an accepted POST wrote exactly one EVENT item in exactly one call; anything else none
    if run.event["requestContext"]["http"]["method"] == "POST" and run.answer["statusCode"] == 202:
        assert run.dynamodb_calls == ["PutItem"]
        assert [(i["sk"], i["kind"]) for i in run.items] == [("EVENT", "event")]
    else:
        assert run.items == []
        assert len(run.dynamodb_calls) <= 1 and "PutItem" not in run.dynamodb_calls


@pytest.mark.parametrize("sample", HTTP_SAMPLES)
def test_stored_events_record_the_documented_evidence(runs: dict[str, Run], sample: str) -> None:
    run = runs[sample]
    headers = run.event["headers"]
    body = _request_body(run.event)
    edge = f"{headers['cloudfront-viewer-country']}-{headers['cloudfront-viewer-country-region']}"

    for item in run.items:
        evidence = item["evidence"]
        assert evidence["jurisdiction"] == body.get("jurisdiction", edge)
        assert evidence["user_agent"] == sanitise_user_agent(headers["user-agent"])
        assert evidence["policy_version"] == body.get("policy_version", "unversioned")
        assert "ip_address" not in evidence
        if body.get("page_url"):
            assert evidence["page_url"] == body["page_url"].split("?")[0].split("#")[0]
        else:
            assert "page_url" not in evidence
        assert item["received_at"].endswith("Z")
        assert date.fromisoformat(item["deadline"]) > date.fromisoformat(item["received_at"][:10])
        assert item["pk"] == f"REQ#{item['request_id']}"


@pytest.mark.parametrize("sample", HTTP_SAMPLES)
def test_no_identifier_value_appears_in_any_key(runs: dict[str, Run], sample: str) -> None:
    items = runs[sample].items
    values = [
        ident["value"]
        for item in items
        for ident in item.get("identifiers", [])
        + [side for link in item.get("links", []) for side in (link["a"], link["b"])]
    ]
    for item in items:
        for value in values:
            assert value not in item["pk"] and value not in item["sk"]
        for ident in item.get("identifiers", []):
            assert ident["key"] == lookup_key(SECRET, normalise(ident["type"], ident["value"]))


# -- what each known sample stores ---------------------------------------------------------


def _accepted(runs: dict[str, Run], sample: str) -> tuple[dict[str, Any], dict[str, Any]]:
    run = runs[sample]
    assert run.answer["statusCode"] == 202
    (item,) = run.items
    return item, run.answer


def _identifiers(item: dict[str, Any]) -> list[tuple[str, str]]:
    return [(i["type"], i["value"]) for i in item["identifiers"]]


def test_banner_opt_out_sample(runs: dict[str, Run]) -> None:
    item, answer = _accepted(runs, "consent_banner_opt_out.json")
    assert json.loads(answer["body"]) == {
        "request_id": item["request_id"],
        "device_id": "3f1c2a9e-8b7d-4c1e-9f00-1a2b3c4d5e6f",
        "opt_out": {"sale": True, "share": True, "targeted_advertising": True},
        "gpc_honored": False,
    }
    assert (item["event_type"], item["source"], item["gpc"]) == ("consent", "banner", False)
    assert item["opt_out"] == {"sale": True, "share": True, "targeted_advertising": True}
    assert _identifiers(item) == [("device_id", "3f1c2a9e-8b7d-4c1e-9f00-1a2b3c4d5e6f")]
    assert item["evidence"]["page_url"] == "https://shop.example.com/products/42"
    assert item["evidence"]["policy_version"] == "2026-01-01"


def test_banner_with_identity_sample_normalises_and_asserts_the_identifiers(
    runs: dict[str, Run],
) -> None:
    item, _ = _accepted(runs, "consent_banner_with_identity.json")
    assert item["source"] == "banner"
    assert item["opt_out"] == {"targeted_advertising": False}
    device = ("device_id", "b7e0d8f2-5c4a-4e1b-a0c9-7f6e5d4c3b2a")
    assert _identifiers(item) == [
        device,
        ("email", "jane.doe@example.com"),
        ("customer_id", "cust-1234"),
    ]
    # No identity token: the identifiers are asserted by the device, never linked to it
    assert item["links"] == []
    assert [i["role"] for i in item["identifiers"]] == ["device", "asserted", "asserted"]
    edges = [((e["from"]["type"], e["from"]["value"]), e["to"]["type"]) for e in item["asserts"]]
    assert edges == [(device, "email"), (device, "customer_id")]


def test_gpc_sample_opts_out_whatever_the_body_says(runs: dict[str, Run]) -> None:
    item, answer = _accepted(runs, "consent_gpc.json")
    assert json.loads(answer["body"])["gpc_honored"] is True
    assert (item["source"], item["gpc"]) == ("gpc", True)
    assert item["opt_out"] == {"sale": True, "share": True, "targeted_advertising": True}


def test_identity_links_sample_stores_keyed_links(runs: dict[str, Run]) -> None:
    item, answer = _accepted(runs, "identity_links.json")
    assert json.loads(answer["body"]) == {"request_id": item["request_id"], "links_accepted": 1}
    assert (item["event_type"], item["source"], item["identifiers"]) == ("links", "backend", [])
    (link,) = item["links"]
    assert (link["a"]["type"], link["b"]["type"]) == ("device_id", "email")
    assert link["b"]["key"] == lookup_key(SECRET, normalise("email", "jane.doe@example.com"))


def test_agent_sample_is_sourced_to_the_agent_with_a_45_day_deadline(
    runs: dict[str, Run],
) -> None:
    item, answer = _accepted(runs, "opt_out_agent.json")
    assert item["source"] == "agent"
    # Who filed it is evidence (counsel may ask that agent for the consumer's permission)
    assert item["evidence"]["agent"] == {
        "name": "Consumer Reports Permission Slip",
        "agent_id": "cr-permission-slip",
    }
    assert item["evidence"]["jurisdiction"] == "US-CO"
    # 45 days from the day it was received in Colorado (UTC-7 in winter, -6 in summer)
    received = datetime.fromisoformat(item["received_at"].replace("Z", "+00:00"))
    colorado = (received - timedelta(hours=7)).date()
    assert item["deadline"] == (colorado + timedelta(days=45)).isoformat()
    assert json.loads(answer["body"]) == {
        "request_id": item["request_id"],
        "status": "received",
        "received_at": item["received_at"],
        "deadline": item["deadline"],
        "gpc_honored": False,
    }
    # the calendar is kept in the stored answer only (review s18 diff C3)
    assert item["response"]["deadline_jurisdiction"] == "US-CO"


def test_webform_json_sample_opts_out_of_every_purpose(runs: dict[str, Run]) -> None:
    item, _ = _accepted(runs, "opt_out_webform_json.json")
    assert (item["event_type"], item["source"]) == ("opt_out", "webform")
    assert item["opt_out"] == dict.fromkeys(
        ["sale", "share", "targeted_advertising", "profiling"], True
    )
    assert _identifiers(item) == [("email", "jane.doe@example.com"), ("phone", "+14155550132")]


def test_webform_form_sample_answers_an_html_page(runs: dict[str, Run]) -> None:
    item, answer = _accepted(runs, "opt_out_webform_form.json")
    assert answer["headers"]["Content-Type"].startswith("text/html")
    assert item["request_id"] in answer["body"] and item["deadline"] in answer["body"]
    assert item["opt_out"] == {"sale": True, "share": True}
    assert _identifiers(item) == [
        ("device_id", "4d3c2b1a-0f9e-4d8c-b7a6-5f4e3d2c1b0a"),
        ("email", "pat@example.org"),
    ]


def test_stored_events_never_hold_the_ip_address_by_default(runs: dict[str, Run]) -> None:
    for run in runs.values():
        assert "203.0.113.10" not in json.dumps(run.items)


def test_stored_event_holds_the_ip_address_when_enabled(
    aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STORE_IP_ADDRESS", "true")
    answer = invoke(load_function("capture_api"), load_event("consent_banner_opt_out.json"))
    assert answer["statusCode"] == 202
    (item,) = aws.items()
    assert item["evidence"]["ip_address"] == "203.0.113.10"


def test_stored_event_keeps_the_deployed_policy_version_and_firefoxs_gecko_token(
    aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Review s17 L-M4: a date-stamped PolicyVersion (2026011501 reads as a phone) was stored
    # "(redacted)" on every event, and every Firefox user agent lost Gecko/20100101.
    monkeypatch.setenv("POLICY_VERSION", "2026011501")
    event = load_event("consent_gpc.json")
    event["headers"]["user-agent"] = (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:121.0) Gecko/20100101 Firefox/121.0"
    )
    answer = invoke(load_function("capture_api"), event)
    assert answer["statusCode"] == 202
    (item,) = aws.items()
    assert item["evidence"]["policy_version"] == "2026011501"
    assert item["evidence"]["user_agent"] == "Mozilla/5.0 Gecko/20100101 Firefox/121.0"


def test_sample_files_are_real_api_gateway_v2_events() -> None:
    for name in HTTP_SAMPLES:
        event = load_event(name)
        assert event["requestContext"]["routeKey"] == event["routeKey"]
        assert event["routeKey"].split(" ")[0] == event["requestContext"]["http"]["method"]
        assert Path(EVENTS / name).exists()
