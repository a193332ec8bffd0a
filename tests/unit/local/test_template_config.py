"""What the local stack reads from template.yaml: routes, event sources, environment."""

from local.aws_resources import TEMPLATE
from local.cfn_yaml import load_template
from local.template_config import environment, http_routes, stream_source


def test_routes_come_from_the_capture_function_with_iam_where_declared() -> None:
    routes = {r.route_key: r for r in http_routes(load_template(TEMPLATE))}
    assert "POST /v1/opt-out" in routes
    assert routes["POST /v1/identity-links"].iam
    assert not routes["POST /v1/consent"].iam
    assert routes["GET /v1/requests/{request_id}"].match("GET", "/v1/requests/abc") == {
        "request_id": "abc"
    }
    assert routes["GET /v1/requests/{request_id}"].match("GET", "/v1/requests/a/b") is None


def test_resolver_stream_settings_are_the_templates() -> None:
    source = stream_source(load_template(TEMPLATE))
    assert source is not None
    assert source.report_batch_item_failures
    assert source.batch_size >= 1
    assert source.filters == [
        {"eventName": ["INSERT"], "dynamodb": {"NewImage": {"sk": {"S": ["EVENT"]}}}}
    ]
    assert source.on_failure is not None


def test_environment_resolves_parameter_defaults_and_skips_resource_refs() -> None:
    env = environment(load_template(TEMPLATE))
    assert env["POWERTOOLS_SERVICE_NAME"] == "optout-bridge"
    assert env["STORE_IP_ADDRESS"] == "false"
    assert "TABLE_NAME" not in env  # a !Ref to the table: the stack supplies its own
