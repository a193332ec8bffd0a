"""template.yaml: lints clean, translates offline with aws-sam-translator, least privilege.

Assertions iterate over every function and role, so resources other engineers add are held
to the same rules; CaptureFunction and the table get specific checks.
"""

import json
from typing import Any

import pytest

from optout.systems import load_systems
from tests.support import sam

SYSTEMS_JSON = sam.ROOT / "layers" / "common" / "config" / "systems.json"
AWS_MANAGED_SERVICE_ROLES = {
    "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
    "arn:aws:iam::aws:policy/AWSXrayWriteOnlyAccess",
    "arn:aws:iam::aws:policy/service-role/AWSLambdaDynamoDBExecutionRole",
    "arn:aws:iam::aws:policy/service-role/AWSLambdaSQSQueueExecutionRole",
}


@pytest.fixture(scope="module")
def translated() -> dict[str, Any]:
    with pytest.MonkeyPatch.context() as env:
        env.setenv("AWS_DEFAULT_REGION", "us-east-1")
        return sam.translate()


def _of_type(template: dict[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    resources = template["Resources"].items()
    return {name: r for name, r in resources if r["Type"] == resource_type}


def _table_ids(template: dict[str, Any]) -> set[str]:
    return set(_of_type(template, "AWS::DynamoDB::Table"))


def _statements(role: dict[str, Any]) -> list[dict[str, Any]]:
    policies = role["Properties"].get("Policies", [])
    return [s for p in policies for s in p["PolicyDocument"]["Statement"]]


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


# -- lint and translation -------------------------------------------------------------------


def test_template_yaml_passes_cfn_lint() -> None:
    findings = sam.cfn_lint(sam.TEMPLATE.read_text(encoding="utf-8"))
    assert [str(f) for f in findings] == []


def test_translated_template_passes_cfn_lint(translated: dict[str, Any]) -> None:
    findings = sam.cfn_lint(translated)
    # After expansion the Systems parameter is used only by the (expanded) Fn::ForEach.
    unexpected = [
        f for f in findings if (f.rule.id, f.path) != ("W2001", ["Parameters", "Systems"])
    ]
    assert [str(f) for f in unexpected] == []


def test_translation_leaves_no_serverless_resources(translated: dict[str, Any]) -> None:
    kinds = {r["Type"] for r in translated["Resources"].values()}
    assert not {k for k in kinds if k.startswith("AWS::Serverless::")}
    assert "Transform" not in translated


def test_fn_for_each_expands_one_queue_dlq_and_alarm_per_system(
    translated: dict[str, Any],
) -> None:
    systems = sam.load()["Parameters"]["Systems"]["Default"].split(",")
    queues = _of_type(translated, "AWS::SQS::Queue")
    for system in systems:
        redrive = queues[f"{system}JobsQueue"]["Properties"]["RedrivePolicy"]
        assert redrive["deadLetterTargetArn"] == {"Fn::GetAtt": [f"{system}DeadLetterQueue", "Arn"]}
        assert f"{system}DeadLetterAlarm" in translated["Resources"]


# -- functions ------------------------------------------------------------------------------


def test_every_function_runs_arm64_with_tracing_and_json_logs(translated: dict[str, Any]) -> None:
    functions = _of_type(translated, "AWS::Lambda::Function")
    assert "CaptureFunction" in functions
    for name, function in functions.items():
        props = function["Properties"]
        assert props["Architectures"] == ["arm64"], name
        assert props["TracingConfig"] == {"Mode": "Active"}, name
        assert props["LoggingConfig"]["LogFormat"] == "JSON", name
        assert props["Runtime"].startswith("python3."), name
        assert props["Environment"]["Variables"]["TABLE_NAME"] == {"Ref": "OptOutTable"}, name


def test_capture_function_serves_every_public_route(translated: dict[str, Any]) -> None:
    events = sam.load()["Resources"]["CaptureFunction"]["Properties"]["Events"].values()
    routes = {(e["Properties"]["Method"], e["Properties"]["Path"]) for e in events}
    assert routes == {
        ("POST", "/v1/consent"),
        ("GET", "/v1/consent/{device_id}"),
        ("POST", "/v1/opt-out"),
        ("GET", "/v1/requests/{request_id}"),
        ("POST", "/v1/identity-links"),
        ("GET", "/v1/openapi.json"),
        ("GET", "/v1/admin/requests/{request_id}"),
        ("POST", "/v1/admin/lookup"),
        ("GET", "/v1/admin/holds"),
        ("POST", "/v1/admin/holds/{hold_id}/release"),
        ("POST", "/v1/admin/holds/{hold_id}/reject"),
        ("POST", "/v1/admin/systems/{system}/replay"),
    }
    assert "HttpApi" in _of_type(translated, "AWS::ApiGatewayV2::Api")


def test_only_backend_and_operator_routes_need_iam_auth() -> None:
    events = sam.load()["Resources"]["CaptureFunction"]["Properties"]["Events"]
    authed = {name for name, e in events.items() if e["Properties"].get("Auth")}
    assert authed == {"PostIdentityLinks", "GetRequestDetail", "PostLookup", "GetHolds",
                      "PostHoldRelease", "PostHoldReject", "PostReplay"}  # fmt: skip
    for name in authed:
        assert events[name]["Properties"]["Auth"] == {"Authorizer": "AWS_IAM"}
        assert events[name]["Properties"]["Path"].startswith(("/v1/identity-links", "/v1/admin/"))


def test_cors_allows_no_credentials() -> None:
    cors = sam.load()["Resources"]["HttpApi"]["Properties"]["CorsConfiguration"]
    assert cors["AllowCredentials"] is False
    assert cors["AllowOrigins"] == {"Ref": "AllowedOrigins"}


# -- least privilege ------------------------------------------------------------------------


def test_no_role_allows_wildcard_actions(translated: dict[str, Any]) -> None:
    for name, role in _of_type(translated, "AWS::IAM::Role").items():
        for statement in _statements(role):
            for action in _as_list(statement["Action"]):
                assert action != "*" and not action.endswith(":*"), (name, action)


def test_dynamodb_permissions_are_scoped_to_the_table(translated: dict[str, Any]) -> None:
    tables = _table_ids(translated)
    for name, role in _of_type(translated, "AWS::IAM::Role").items():
        for statement in _statements(role):
            if not any(str(a).startswith("dynamodb:") for a in _as_list(statement["Action"])):
                continue
            for resource in _as_list(statement["Resource"]):
                text = json.dumps(resource)
                assert resource != "*" and any(t in text for t in tables), (name, resource)


def test_roles_attach_only_aws_lambda_service_policies(translated: dict[str, Any]) -> None:
    for name, role in _of_type(translated, "AWS::IAM::Role").items():
        attached = set(role["Properties"].get("ManagedPolicyArns", []))
        assert attached <= AWS_MANAGED_SERVICE_ROLES, (name, attached)


def test_every_function_has_its_own_role(translated: dict[str, Any]) -> None:
    functions = _of_type(translated, "AWS::Lambda::Function").values()
    roles = [json.dumps(f["Properties"]["Role"]) for f in functions]
    assert len(roles) == len(set(roles))


def test_capture_function_may_only_put_get_and_query_the_table(
    translated: dict[str, Any],
) -> None:
    role = translated["Resources"]["CaptureFunctionRole"]
    dynamodb = [
        a for s in _statements(role) for a in _as_list(s["Action"]) if a.startswith("dynamodb:")
    ]
    assert sorted(dynamodb) == ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query"]


# -- the table ------------------------------------------------------------------------------


def test_table_has_new_image_stream_pitr_kms_and_ttl(translated: dict[str, Any]) -> None:
    props = translated["Resources"]["OptOutTable"]["Properties"]
    assert props["StreamSpecification"] == {"StreamViewType": "NEW_IMAGE"}
    assert props["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    assert props["SSESpecification"]["SSEEnabled"] is True
    assert props["SSESpecification"]["SSEType"] == "KMS"
    assert props["SSESpecification"]["KMSMasterKeyId"] == {"Ref": "DataKey"}
    assert props["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}


def test_table_keys_are_string_pk_and_sk(translated: dict[str, Any]) -> None:
    props = translated["Resources"]["OptOutTable"]["Properties"]
    assert props["KeySchema"] == [
        {"AttributeName": "pk", "KeyType": "HASH"},
        {"AttributeName": "sk", "KeyType": "RANGE"},
    ]
    types = {a["AttributeName"]: a["AttributeType"] for a in props["AttributeDefinitions"]}
    assert types["pk"] == types["sk"] == "S"


# -- systems ---------------------------------------------------------------------------------


def test_systems_parameter_default_lists_the_queue_key_of_every_system() -> None:
    default = sam.load()["Parameters"]["Systems"]["Default"].split(",")
    queue_keys = [system.queue_key for system in load_systems(SYSTEMS_JSON).systems]
    assert sorted(default) == sorted(queue_keys)
    assert len(default) == len(set(default))
