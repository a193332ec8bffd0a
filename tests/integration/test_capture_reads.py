"""Read routes: a device's effective state, a request's status, the OpenAPI document."""

import json
from types import ModuleType
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.event_handler.openapi.models import OpenAPI
from pydantic import BaseModel

from local.cfn_yaml import load_template
from optout.api_models import ConsentOut, ConsentStateOut, OptOutOut, RequestStatusOut
from optout.http.openapi import server_url
from optout.identifiers import Identifier, lookup_key
from optout.settings import LOCAL_HASH_KEY
from optout.store.codec import serialize
from tests.conftest import Aws
from tests.support.http_events import http_event, json_body
from tests.support.lambdas import ROOT, invoke, load_event, load_function

DEVICE = "3f1c2a9e-8b7d-4c1e-9f00-1a2b3c4d5e6f"
UNKNOWN_REQUEST = "6b1f0c3e-2d4a-4b5c-9e8f-7a6b5c4d3e2f"


@pytest.fixture
def capture(aws: Aws, dynamodb_calls: list[str]) -> ModuleType:
    return load_function("capture_api")


def _get_consent(device_id: str = DEVICE) -> dict[str, Any]:
    return http_event("GET", f"/v1/consent/{device_id}", path_parameters={"device_id": device_id})


def _put_state(aws: Aws, device_id: str, state: dict[str, Any]) -> None:
    key = lookup_key(LOCAL_HASH_KEY.encode(), Identifier("device_id", device_id))
    item = {"pk": f"ID#device_id#{key}", "sk": "STATE", **state}
    aws.dynamodb.put_item(TableName=aws.table_name, Item=serialize(item))


# -- GET /v1/consent/{device_id} ---------------------------------------------------------


def test_a_device_without_state_is_not_opted_out_in_one_read(
    aws: Aws, capture: ModuleType, dynamodb_calls: list[str]
) -> None:
    answer = invoke(capture, load_event("consent_get.json"))
    assert answer["statusCode"] == 200
    assert json_body(answer) == {
        "device_id": DEVICE,
        "opt_out": {"sale": False, "share": False, "targeted_advertising": False,
                    "profiling": False, "limit_sensitive": False},
        "gpc_honored": False,
        "updated_at": None,
        "gpc_signal": False,
    }  # fmt: skip
    assert dynamodb_calls == ["GetItem"]


def test_a_device_answers_its_state_item_in_one_read(
    aws: Aws, capture: ModuleType, dynamodb_calls: list[str]
) -> None:
    # Given the resolver's STATE item for the device (with PII elsewhere in the item)
    state = {
        "opt_out": {"sale": True, "targeted_advertising": True},
        "gpc": True,
        "updated_at": "2026-11-29T03:12:00.000Z",
        "delivered": {"crm": ["sale"]},
        "value": "jane@example.com",
    }
    _put_state(aws, DEVICE, state)
    # When the banner asks for it
    answer = invoke(capture, _get_consent())
    # Then it gets the effective state, every purpose present, no PII, from one GetItem
    assert json_body(answer) == {
        "device_id": DEVICE,
        "opt_out": {"sale": True, "share": False, "targeted_advertising": True,
                    "profiling": False, "limit_sensitive": False},
        "gpc_honored": True,
        "updated_at": "2026-11-29T03:12:00.000Z",
        "gpc_signal": False,
    }  # fmt: skip
    assert "jane" not in answer["body"]
    assert dynamodb_calls == ["GetItem"]


def test_a_read_carrying_gpc_records_nothing_and_answers_the_stored_state(
    aws: Aws, capture: ModuleType, dynamodb_calls: list[str]
) -> None:
    # GPC is recorded by the POSTs; a GET answering "honored" would claim an opt-out that no
    # backend system was told of (README, "GET /v1/consent/{device_id}"; review s17 U1)
    event = _get_consent()
    event["headers"]["sec-gpc"] = "1"
    answer = invoke(capture, event)
    assert answer["statusCode"] == 200
    body = json_body(answer)
    assert body["gpc_honored"] is False
    assert body["opt_out"]["sale"] is False
    assert dynamodb_calls == ["GetItem"]
    # ... but says the read carried the signal (not stored), so a browser that sends the
    # header without navigator.globalPrivacyControl is honoured by the banner (review s26 F1)
    assert body["gpc_signal"] is True
    assert answer["headers"]["Vary"] == "Sec-GPC"
    for value in ("0", "", "1, 0", "1,"):
        event["headers"]["sec-gpc"] = value
        assert json_body(invoke(capture, event))["gpc_signal"] is False, value
    # Sec-GPC: 1 twice (a proxy repeating it; joined by commas) is the signal (review s29 N1)
    event["headers"]["sec-gpc"] = "1, 1"
    assert json_body(invoke(capture, event))["gpc_signal"] is True
    del event["headers"]["sec-gpc"]
    assert json_body(invoke(capture, event))["gpc_signal"] is False


def test_per_person_answers_are_never_cached(aws: Aws, capture: ModuleType) -> None:
    # A device's state and a request's status must not be kept by a browser or a proxy
    assert invoke(capture, _get_consent())["headers"]["Cache-Control"] == "no-store"
    unknown = "00000000-0000-4000-8000-000000000000"
    missing = http_event("GET", f"/v1/requests/{unknown}", path_parameters={"request_id": unknown})
    assert invoke(capture, missing)["headers"]["Cache-Control"] == "no-store"


def test_the_state_of_another_device_is_not_answered(aws: Aws, capture: ModuleType) -> None:
    _put_state(aws, "another-device-0123456789", {"opt_out": {"sale": True}, "gpc": True})
    assert json_body(invoke(capture, _get_consent()))["opt_out"]["sale"] is False


# -- GET /v1/requests/{request_id} -------------------------------------------------------


def test_a_captured_request_is_received(aws: Aws, capture: ModuleType) -> None:
    # Given a captured webform opt-out
    accepted = json_body(invoke(capture, load_event("opt_out_webform_json.json")))
    rid = accepted["request_id"]
    # When its status is asked for
    answer = invoke(
        capture, http_event("GET", f"/v1/requests/{rid}", path_parameters={"request_id": rid})
    )
    # Then it is received, with the capture's time and deadline, no systems yet, and neither
    # answer names the calendar the deadline was counted in (review s18 diff C3: the public
    # contract is as before; a geolocated one would name where the person is)
    assert "deadline_jurisdiction" not in accepted
    assert answer["statusCode"] == 200
    assert json_body(answer) == {
        "request_id": rid,
        "status": "received",
        "received_at": accepted["received_at"],
        "deadline": accepted["deadline"],
        "completed_at": None,
        "systems_total": 0,
        "systems_done": 0,
        "systems_failed": 0,
    }


def test_a_status_is_read_strongly_consistent_so_a_check_right_after_its_202_finds_it(
    aws: Aws,
) -> None:
    # Given every DynamoDB read the capture function makes, watched from a fresh container
    reads: list[tuple[str, Any]] = []
    assert boto3.DEFAULT_SESSION is not None
    events = boto3.DEFAULT_SESSION.events

    def note(params: dict[str, Any], model: Any, **_: Any) -> None:
        if model.name in ("Query", "BatchGetItem"):
            tables = params.get("RequestItems", {}).values()
            reads.append(
                (
                    model.name,
                    params.get("ConsistentRead", [t.get("ConsistentRead") for t in tables]),
                )
            )

    events.register("before-parameter-build.dynamodb", note, unique_id="consistent-status")
    try:
        capture = load_function("capture_api")
        rid = json_body(invoke(capture, load_event("opt_out_webform_json.json")))["request_id"]
        # When the consumer asks for its status at once
        answer = invoke(
            capture, http_event("GET", f"/v1/requests/{rid}", path_parameters={"request_id": rid})
        )
    finally:
        events.unregister("before-parameter-build.dynamodb", unique_id="consistent-status")
    # Then the request's partition was read strongly consistent (DynamoDB's default read may
    # not yet see the write its 202 acknowledged; moto always does, so the flag is the test)
    assert answer["statusCode"] == 200
    assert reads == [("Query", True)]


def test_an_unknown_request_is_404(aws: Aws, capture: ModuleType) -> None:
    answer = invoke(capture, load_event("request_status_get.json"))
    assert answer["statusCode"] == 404
    assert json_body(answer) == {
        "error": {
            "code": "not_found",
            "message": "no request with this request_id",
            "field": "request_id",
        }
    }


@pytest.mark.parametrize("accept", ["application/json", "text/html", "*/*"])
@pytest.mark.parametrize("known", [True, False])
def test_a_status_answer_varies_with_accept_page_json_or_refusal(
    aws: Aws, capture: ModuleType, accept: str, known: bool
) -> None:
    # Given a request that exists (200) or not (404), read as JSON or as a page
    request_id = UNKNOWN_REQUEST
    if known:
        created = invoke(capture, http_event("POST", "/v1/opt-out", {"email": "v@example.org"}))
        request_id = json_body(created)["request_id"]
    event = http_event(
        "GET", f"/v1/requests/{request_id}", path_parameters={"request_id": request_id},
        headers={"accept": accept, "origin": "https://shop.example.com"},
    )  # fmt: skip
    # When it is read
    answer = invoke(capture, event)
    # Then a cache is told the answer depends on Accept (one URL, two kinds of answer)
    assert answer["statusCode"] == (200 if known else 404)
    assert answer["headers"]["Vary"] == "Accept"


def test_vary_keeps_what_it_already_names(capture: ModuleType) -> None:
    headers: dict[str, Any] = {"vary": "Origin"}
    capture.add_vary(headers, "Accept")
    assert headers == {"vary": "Origin, Accept"}
    capture.add_vary(headers, "accept")
    assert headers == {"vary": "Origin, Accept"}


def test_a_devices_state_varies_with_sec_gpc_only(aws: Aws, capture: ModuleType) -> None:
    answer = invoke(capture, _get_consent())
    assert answer["headers"]["Vary"] == "Sec-GPC"


# -- GET /v1/openapi.json ----------------------------------------------------------------


def _openapi(capture: ModuleType) -> dict[str, Any]:
    answer = invoke(capture, load_event("openapi_get.json"))
    assert answer["statusCode"] == 200
    assert answer["headers"]["Content-Type"] == "application/json"
    spec: dict[str, Any] = json.loads(answer["body"])
    return spec


def _template_routes() -> set[tuple[str, str]]:
    function = load_template(ROOT / "template.yaml")["Resources"]["CaptureFunction"]
    events = function["Properties"]["Events"].values()
    # An event with no Path is the API's $default route (unmatched requests): no operation.
    routes = [e["Properties"] for e in events if "Path" in e["Properties"]]
    return {(route["Method"].lower(), route["Path"]) for route in routes}


def test_openapi_document_is_valid_openapi_3(aws: Aws, capture: ModuleType) -> None:
    spec = _openapi(capture)
    assert spec["openapi"].startswith("3.")
    OpenAPI.model_validate(spec)  # raises on a structurally invalid document


def test_openapi_lists_every_route_the_template_serves(aws: Aws, capture: ModuleType) -> None:
    paths = _openapi(capture)["paths"]
    listed = {(method, path) for path, ops in paths.items() for method in ops}
    assert listed == _template_routes() - {("get", "/v1/openapi.json")}


def test_openapi_carries_the_pydantic_schemas(aws: Aws, capture: ModuleType) -> None:
    spec = _openapi(capture)
    schemas = spec["components"]["schemas"]
    for name in ("ConsentIn", "OptOutIn", "ConsentOut", "OptOutOut", "ConsentStateOut",
                 "RequestStatusOut"):  # fmt: skip
        assert name in schemas
    # The IAM routes are the admin function's (template.yaml): not in the public document.
    assert "IdentityLinksIn" not in schemas
    body = spec["paths"]["/v1/consent"]["post"]["requestBody"]["content"]["application/json"]
    assert body["schema"]["$ref"] == "#/components/schemas/ConsentIn"
    assert schemas["ConsentIn"]["additionalProperties"] is False
    assert set(schemas["ConsentIn"]["required"]) == {"device_id"}
    # The public status's counts leave out systems reached only through linked identifiers:
    # the contract says so, or an integrator reads "completed" as every system
    assert "linked" in schemas["RequestStatusOut"]["description"]
    token = schemas["OptOutIn"]["properties"]["identity_token"]["anyOf"]
    assert {"type": "string", "maxLength": 0, "description": "the same as absent"} in token


# Every public route's answer, and the model that describes it (DESIGN's public contract).
ANSWERS: dict[tuple[str, str], tuple[str, type[BaseModel]]] = {
    ("post", "/v1/consent"): ("202", ConsentOut),
    ("get", "/v1/consent/{device_id}"): ("200", ConsentStateOut),
    ("post", "/v1/opt-out"): ("202", OptOutOut),
    ("get", "/v1/requests/{request_id}"): ("200", RequestStatusOut),
}


def _component(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """The one component a JSON answer's schema refers to."""
    (ref,) = [o["$ref"] for o in schema.get("anyOf", [schema]) if "$ref" in o]
    found: dict[str, Any] = spec["components"]["schemas"][ref.rsplit("/", 1)[1]]
    return found


def test_every_public_answer_is_described_with_its_models_fields(
    aws: Aws, capture: ModuleType
) -> None:
    spec = _openapi(capture)
    operations = {(m, path): op for path, ops in spec["paths"].items() for m, op in ops.items()}
    assert set(operations) == set(ANSWERS)
    for key, (status, model) in ANSWERS.items():
        schema = operations[key]["responses"][status]["content"]["application/json"]["schema"]
        component = _component(spec, schema)
        assert set(component.get("properties", {})) == set(model.model_fields), key
        required = {n for n, f in model.model_fields.items() if f.is_required()}
        assert set(component.get("required", [])) == required, key


def test_the_status_answer_states_designs_fields_and_statuses(
    aws: Aws, capture: ModuleType
) -> None:
    spec = _openapi(capture)
    answer = spec["paths"]["/v1/requests/{request_id}"]["get"]["responses"]["200"]
    status = _component(spec, answer["content"]["application/json"]["schema"])
    assert status.get("additionalProperties") is not True
    assert set(status["required"]) == {
        "request_id",
        "status",
        "received_at",
        "deadline",
        "systems_total",
        "systems_done",
        "systems_failed",
    }
    assert set(status["properties"]) >= {"completed_at", "denied_at", "denial_reason"}
    assert status["properties"]["status"]["enum"] == [
        "received",
        "processing",
        "completed",
        "failed",
        "denied",
    ]
    assert status["properties"]["received_at"]["format"] == "date-time"
    assert status["properties"]["deadline"]["format"] == "date"


def test_the_webform_form_post_and_the_html_pages_are_documented(
    aws: Aws, capture: ModuleType
) -> None:
    spec = _openapi(capture)
    opt_out = spec["paths"]["/v1/opt-out"]["post"]
    status = spec["paths"]["/v1/requests/{request_id}"]["get"]
    # The form the webform posts, beside the JSON body
    content = opt_out["requestBody"]["content"]
    assert set(content) == {"application/json", "application/x-www-form-urlencoded"}
    # A page is text/html, never a JSON string: the JSON answer is the model alone
    page = {"schema": {"type": "string"}}
    for answer in (opt_out["responses"]["202"], status["responses"]["200"]):
        assert answer["content"]["text/html"] == page
        assert "$ref" in answer["content"]["application/json"]["schema"]
    for operation in (opt_out, status):
        assert operation["responses"]["4XX"]["content"]["text/html"] == page


def test_the_idempotency_key_and_sec_gpc_headers_are_documented(
    aws: Aws, capture: ModuleType
) -> None:
    paths = _openapi(capture)["paths"]
    for operation in (paths["/v1/consent"]["post"], paths["/v1/opt-out"]["post"]):
        headers = {p["name"]: p for p in operation["parameters"] if p["in"] == "header"}
        assert set(headers) == {"Idempotency-Key", "Sec-GPC"}
        assert headers["Idempotency-Key"]["schema"]["maxLength"] == 255
        assert not any(p["required"] for p in headers.values())


def test_the_state_read_documents_sec_gpc_and_the_gpc_fields_it_always_answers(
    aws: Aws, capture: ModuleType
) -> None:
    # Given the document, When the device state read is looked up
    spec = _openapi(capture)
    read = spec["paths"]["/v1/consent/{device_id}"]["get"]
    # Then it lists the Sec-GPC header it answers as gpc_signal (a read records nothing) ...
    (gpc,) = [p for p in read["parameters"] if p["in"] == "header"]
    assert (gpc["name"], gpc["required"]) == ("Sec-GPC", False)
    assert "gpc_signal" in gpc["description"] and "records nothing" in gpc["description"]
    # ... and both GPC fields, which every answer carries, are required and described
    state = _component(spec, read["responses"]["200"]["content"]["application/json"]["schema"])
    assert {"gpc_signal", "gpc_honored"} <= set(state["required"])
    assert all(state["properties"][f]["description"] for f in ("gpc_signal", "gpc_honored"))


def test_the_documents_server_carries_the_execute_api_stage(aws: Aws, capture: ModuleType) -> None:
    # Given the document asked for on an execute-api URL's named stage (rawPath has the stage)
    event = load_event("openapi_get.json")
    event["rawPath"] = "/prod/v1/openapi.json"
    domain = "abc123.execute-api.us-east-1.amazonaws.com"
    event["requestContext"].update(stage="prod", domainName=domain)
    # Then a client built from it calls /prod/v1/..., not the host's /v1/... (a 404 there)
    answer = invoke(capture, event)
    assert answer["statusCode"] == 200
    assert json.loads(answer["body"])["servers"] == [{"url": "/prod"}]


@pytest.mark.parametrize(
    ("stage", "domain", "server"),
    [("prod", "abc123.execute-api.us-east-1.amazonaws.com", "/prod"),
     ("prod", "api.example.com", "/"),  # a custom domain: its API mapping is at the root
     ("$default", "abc123.execute-api.us-east-1.amazonaws.com", "/"),
     (None, None, "/")],
)  # fmt: skip
def test_the_server_is_where_the_routes_are_for_that_host(
    stage: str | None, domain: str | None, server: str
) -> None:
    assert server_url({"requestContext": {"stage": stage, "domainName": domain}}) == server


def test_every_schema_reference_in_the_openapi_document_resolves(
    aws: Aws, capture: ModuleType
) -> None:
    spec = _openapi(capture)
    refs: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("$ref"), str):
                refs.append(node["$ref"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(spec)
    assert refs
    for ref in refs:
        assert ref.startswith("#/components/schemas/")
        assert ref.rsplit("/", 1)[-1] in spec["components"]["schemas"]
