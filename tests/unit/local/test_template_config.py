"""What the local stack reads from template.yaml: routes, CORS, event sources, environment."""

from pathlib import Path

from local.aws_resources import TEMPLATE
from local.cfn_yaml import load_template
from local.environment import LOCAL_SERVICE_NAME, stack_environment
from local.template_config import (
    Cors,
    cors_configuration,
    environment,
    http_routes,
    queue_source,
    stream_source,
)


def test_routes_come_from_their_functions_with_iam_where_declared() -> None:
    routes = {r.route_key: r for r in http_routes(load_template(TEMPLATE))}
    assert routes["POST /v1/opt-out"].function == "CaptureFunction"
    assert routes["POST /v1/identity-links"].iam
    assert routes["POST /v1/identity-links"].function == "AdminFunction"
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
    assert env["POWERTOOLS_METRICS_NAMESPACE"] == "OptOutBridge"
    assert "POWERTOOLS_SERVICE_NAME" not in env  # the stack's name: the stack supplies its own
    assert env["STORE_IP_ADDRESS"] == "false"
    assert "TABLE_NAME" not in env  # a !Ref to the table: the stack supplies its own
    assert "SYSTEM_NAME" not in env  # one per worker: no single value for a shared process


def test_each_system_reads_its_own_worker_settings_and_an_unknown_one_the_first() -> None:
    template = load_template(TEMPLATE)
    template["Resources"]["metaWorker"]["Properties"]["Events"]["Jobs"]["Properties"][
        "BatchSize"
    ] = 3
    meta, braze, unknown = (queue_source(template, k) for k in ("meta", "braze", "newvendor"))
    assert meta is not None and braze is not None and unknown is not None
    assert (meta.function, meta.batch_size) == ("metaWorker", 3)
    assert (braze.function, braze.batch_size) == ("brazeWorker", 10)
    assert unknown.function.endswith("Worker")


def test_the_default_route_comes_from_an_http_api_event_without_path_or_method() -> None:
    routes = [r for r in http_routes(load_template(TEMPLATE)) if r.is_default]
    assert [(r.route_key, r.function, r.iam) for r in routes] == [
        ("$default", "CaptureFunction", False)
    ]
    assert routes[0].match("GET", "/v1/anything") is None  # only when nothing else matches


def test_the_local_workers_pace_at_a_systems_whole_rate_as_they_run_one_at_a_time() -> None:
    # The local stack runs one invocation per system at a time (one poller, one instance), so
    # MAX_CONCURRENCY is 1 there, whatever the template's workers say: even a value they all
    # share (which `environment` would otherwise pass on) would slow each system below its rate
    template = load_template(TEMPLATE)
    for resource in template["Resources"].values():
        variables = resource.get("Properties", {}).get("Environment", {}).get("Variables", {})
        if "SYSTEM_NAME" in variables:
            variables["MAX_CONCURRENCY"] = 5
    assert environment(template)["MAX_CONCURRENCY"] == "5"
    env = stack_environment(
        template,
        url="http://127.0.0.1:3000",
        table_name="t",
        systems_config=Path("local/systems.json"),
        queue_url_template="{queue}",
        secrets_file=Path("local/secrets.json"),
    )
    assert env["MAX_CONCURRENCY"] == "1"


def test_the_local_stack_names_its_own_service() -> None:
    # The template's service is AWS::StackName, which has no value here (review s20 diff A7):
    # without one Powertools says `service_undefined`; samconfig's name would pass for a stack
    env = stack_environment(
        load_template(TEMPLATE),
        url="http://127.0.0.1:3000",
        table_name="t",
        systems_config=Path("local/systems.json"),
        queue_url_template="{queue}",
        secrets_file=Path("local/secrets.json"),
    )
    assert env["POWERTOOLS_SERVICE_NAME"] == LOCAL_SERVICE_NAME == "optout-bridge-local"


def test_cors_is_the_http_apis_configuration_with_the_stacks_own_origins() -> None:
    # Given the template, whose AllowOrigins is the AllowedOrigins parameter
    local = ("http://127.0.0.1:3000", "http://localhost:3000")
    cors = cors_configuration(load_template(TEMPLATE), local)
    # Then the front answers CORS from the template's values, for the local origins
    assert cors == Cors(local, ("GET", "POST", "OPTIONS"), ("content-type", "idempotency-key"),
                        ("retry-after",), 600, False)  # fmt: skip
    assert cors.allowed_origin("http://localhost:3000") == "http://localhost:3000"
    assert cors.allowed_origin("https://evil.test") is None


def test_cors_written_out_or_absent() -> None:
    api = {"Type": "AWS::Serverless::HttpApi", "Properties": {}}
    assert cors_configuration({"Resources": {"Api": api}}, ("http://x",)) is None
    api["Properties"]["CorsConfiguration"] = {"AllowOrigins": ["*"], "ExposeHeaders": ["date"]}
    cors = cors_configuration({"Resources": {"Api": api}}, ("http://x",))
    assert cors == Cors(("*",), expose_headers=("date",))
    assert cors.allowed_origin("https://any.test") == "*"
