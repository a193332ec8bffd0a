"""What a cold container imports: each function's app, loaded in a fresh interpreter with its
per-container services built (and, for capture, its first banner opt-out handled, the one
PutItem answered by botocore's Stubber), must not have pulled in what it does not use. Cold
start is mostly imports (docs/performance.md); these guard the ones that were removed. Module
names only: nothing here is timed."""

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bench import first_batch
from tests.conftest import TEST_ENV
from tests.support.http_events import http_event

ROOT = Path(__file__).resolve().parents[2]
LOAD = """
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("app", {path!r})
app = importlib.util.module_from_spec(spec); sys.modules["app"] = app
spec.loader.exec_module(app)
app.{init}()
"""
FIRST_CONSENT = """
from botocore.stub import Stubber
stub = Stubber(app.services().capture._table.client)
stub.add_response("put_item", {{}})
stub.activate()
class Context:
    function_name, memory_limit_in_mb, aws_request_id = "capture", 512, "cold-imports"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:capture"
answer = app.handler(json.loads({event!r}), Context())
assert answer["statusCode"] == 202, answer
"""
INIT = {"capture_api": "services", "admin_api": "services", "resolver": "resolver",
        "worker": "services"}  # fmt: skip
NEVER_ANYWHERE = ("aws_xray_sdk",)  # tracing is Lambda's own (docs/decisions.md)


def _modules_after(
    function: str, then: str = "", before: str = "", env_extra: dict[str, str] | None = None
) -> set[str]:
    code = before + LOAD.format(
        path=str(ROOT / "functions" / function / "app.py"), init=INIT[function]
    )
    code += then + "\nsys.stderr.write('MODULES ' + json.dumps(sorted(sys.modules)))\n"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "POWERTOOLS_"))}
    env.update(TEST_ENV)
    env.update(
        PYTHONPATH=str(ROOT / "layers" / "common" / "python"),
        SYSTEMS_CONFIG=str(ROOT / "local" / "systems.json"),
        LOCAL_SECRETS_FILE=str(ROOT / "local" / "secrets.json"),
        LOCAL_STACK_URL="http://127.0.0.1:9",
        QUEUE_URL_TEMPLATE="https://sqs.us-east-1.amazonaws.com/123456789012/x-{queue_key}-jobs",
    )
    env.update(env_extra or {})
    answer = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True,
        check=False, timeout=120,
    )  # fmt: skip
    assert answer.returncode == 0, answer.stderr[-3000:]
    listed = answer.stderr.rsplit("MODULES ", 1)[1]
    return set(json.loads(listed))


def _loaded(modules: set[str], package: str) -> list[str]:
    return sorted(m for m in modules if m == package or m.startswith(package + "."))


@pytest.fixture(scope="module")
def capture_after_first_consent() -> set[str]:
    body = {"device_id": "cold-imports-device-01", "opt_out": {"sale": True, "share": True}}
    event = http_event("POST", "/v1/consent", body)
    return _modules_after("capture_api", FIRST_CONSENT.format(event=json.dumps(event)))


@pytest.mark.parametrize("function", sorted(INIT))
def test_no_function_imports_the_x_ray_sdk(function: str) -> None:
    modules = _modules_after(function)
    for package in NEVER_ANYWHERE:
        assert not _loaded(modules, package), function


def test_the_capture_path_never_imports_the_operator_side(
    capture_after_first_consent: set[str],
) -> None:
    # The admin function's services and the connectors are not the public path's business.
    for package in ("optout.admin", "optout.review", "optout.access", "optout.connectors"):
        assert not _loaded(capture_after_first_consent, package), package


def test_a_banner_opt_out_imports_no_phone_metadata_and_no_holiday_registry(
    capture_after_first_consent: set[str],
) -> None:
    # phonenumbers: only a request with a phone number needs it. holidays: the deadline of a
    # request received now comes from optout.deadlines' own rules (checked against the package).
    assert not _loaded(capture_after_first_consent, "phonenumbers")
    assert not _loaded(capture_after_first_consent, "holidays")


def test_the_capture_function_reads_no_secret_client_when_none_is_configured(
    capture_after_first_consent: set[str],
) -> None:
    # Powertools Parameters (and its Secrets Manager client) load only when a secret is named.
    assert not _loaded(capture_after_first_consent, "aws_lambda_powertools.utilities.parameters")


def test_loading_the_capture_function_builds_no_admin_model() -> None:
    # The API models' schemas are built on first use (pydantic's defer_build): a process that
    # serves the public routes never builds the operator routes' models.
    _modules_after("capture_api", ADMIN_MODELS_UNBUILT)


ADMIN_MODELS_UNBUILT = """
from optout import api_models
for model in (api_models.HoldOut, api_models.AdminLookupIn, api_models.IdentityLinksIn):
    assert not model.__pydantic_complete__, f"{model.__name__} was built"
"""


def test_a_worker_imports_no_vendor_module_before_its_first_job() -> None:
    modules = _modules_after("worker")
    vendors = ("braze", "google_ads", "meta", "salesforce", "segment", "trade_desk", "webhook")
    assert not [v for v in vendors if f"optout.connectors.{v}" in modules]


def test_the_capture_path_never_imports_boto3(capture_after_first_consent: set[str]) -> None:
    # Its one client is botocore's (optout.aws): boto3's session layer and s3transfer are
    # imports a cold start paid for nothing.
    assert not _loaded(capture_after_first_consent, "boto3")
    assert not _loaded(capture_after_first_consent, "s3transfer")


def test_the_resolver_never_imports_boto3() -> None:
    assert not _loaded(_modules_after("resolver"), "boto3")


def test_an_accepted_banner_opt_out_never_imports_the_event_handler(
    capture_after_first_consent: set[str],
) -> None:
    # The hot routes answer an accepted body themselves: Powertools' Event Handler (every
    # resolver, asyncio for AppSync's), its OpenAPI machinery and the event data classes are
    # imported by the first request that needs them (another route, a refusal, the document).
    for package in (
        "aws_lambda_powertools.event_handler",
        "aws_lambda_powertools.utilities.data_classes",
        "asyncio",
        "optout.http.openapi",
        "optout.queries",
    ):
        assert not _loaded(capture_after_first_consent, package), package


def test_an_accepted_banner_opt_out_never_imports_pydantic(
    capture_after_first_consent: set[str],
) -> None:
    # Its body is checked by optout/http/hot_bodies.py and its settings are a dataclass:
    # pydantic (a third of this cold start) is imported by the Event Handler's first request.
    for package in ("pydantic", "pydantic_core", "optout.api_models"):
        assert not _loaded(capture_after_first_consent, package), package


# Production: the keys come from Secrets Manager (answered here by botocore's Stubber).
SECRETS_STUBBED = """
import json
from botocore.stub import Stubber
from optout import secrets
stub = Stubber(secrets._client())
stub.add_response("get_secret_value", {"SecretString": "h" * 64}, {"SecretId": "hash"})
token = json.dumps({"kid": "k1", "key": "t" * 64})
stub.add_response("get_secret_value", {"SecretString": token}, {"SecretId": "token"})
stub.activate()
"""
PRODUCTION_SECRETS = {"HASH_KEY_SECRET_NAME": "hash", "IDENTITY_TOKEN_SECRET_NAME": "token",
                      "OPTOUT_LOCAL_MODE": "false"}  # fmt: skip


def test_capture_reads_its_keys_without_parameters_or_boto3() -> None:
    # Powertools Parameters imports boto3 and every provider it offers: a production capture
    # container read its two keys through it at every cold start.
    modules = _modules_after("capture_api", before=SECRETS_STUBBED, env_extra=PRODUCTION_SECRETS)
    assert "optout.secrets" in modules
    assert not _loaded(modules, "aws_lambda_powertools.utilities.parameters")
    assert not _loaded(modules, "boto3")


# Production: a vendor's credentials come from Secrets Manager (answered by botocore's Stubber).
WORKER_READS_CREDENTIALS = """
from botocore.stub import Stubber
from optout import secrets
stub = Stubber(secrets._client())
name = "optout-bridge/systems/braze"
stub.add_response("get_secret_value", {"SecretString": '{"api_key": "k"}'}, {"SecretId": name})
stub.activate()
assert app.services().secrets.get(name) == {"api_key": "k"}
"""


def test_a_worker_reads_vendor_credentials_without_parameters_or_boto3() -> None:
    # Powertools Parameters imports boto3 and every provider it offers: about 0.8 of a bare
    # `import boto3` on every production worker's cold start, for one call and a cache.
    modules = _modules_after(
        "worker", WORKER_READS_CREDENTIALS, env_extra={"LOCAL_SECRETS_FILE": ""}
    )
    assert "optout.secrets" in modules
    assert not _loaded(modules, "aws_lambda_powertools.utilities.parameters")
    assert not _loaded(modules, "boto3")
    assert not _loaded(modules, "s3transfer")


COUNT_CLIENTS = """
from optout import aws
created = []
aws.session().register(
    "creating-client-class", lambda event_name, **_: created.append(event_name.split(".")[-1])
)
"""


def test_a_worker_creates_no_sqs_client_before_a_job_needs_one() -> None:
    # SQS is for a retry's visibility and a submitted job's status check: a container whose
    # jobs complete never pays for the client.
    _modules_after("worker", "assert created == ['dynamodb'], created\n", before=COUNT_CLIENTS)


# A normal first batch, replayed: each AWS answer the function got over moto given back by
# botocore's Stubber in the fresh interpreter (bench/first_batch.py, as the cold stage's
# first_batch_ms replays it), and for the worker its vendor call answered 200.
@pytest.fixture(scope="module")
def first_batches() -> dict[str, dict[str, Any]]:
    return first_batch.record({**TEST_ENV, **_paths()})


def _paths() -> dict[str, str]:
    return {
        "SYSTEMS_CONFIG": str(ROOT / "local" / "systems.json"),
        "LOCAL_SECRETS_FILE": str(ROOT / "local" / "secrets.json"),
        "LOCAL_STACK_URL": "http://127.0.0.1:9",
        "OPTOUT_LOCAL_MODE": "true",
    }


def _after_first_batch(function: str, recorded: dict[str, Any]) -> set[str]:
    then = first_batch.replay(function, recorded) + first_batch.HANDLE + first_batch.CHECK
    return _modules_after(function, then, env_extra=first_batch.REPLAY_ENV)


def test_the_resolver_imports_no_pydantic_nor_boto3_through_its_first_batch(
    first_batches: dict[str, dict[str, Any]],
) -> None:
    # The systems configuration is read by optout.systems' plain reader and the settings are
    # a dataclass: pydantic is imported only for a file that is not in its plain form.
    modules = _after_first_batch("resolver", first_batches["resolver"])
    assert "optout.resolver.service" in modules
    for package in ("pydantic", "pydantic_core", "optout.systems_models", "boto3"):
        assert not _loaded(modules, package), package


def test_a_worker_imports_no_pydantic_nor_boto3_at_init() -> None:
    modules = _modules_after("worker", env_extra=first_batch.REPLAY_ENV)
    for package in ("pydantic", "pydantic_core", "boto3"):
        assert not _loaded(modules, package), package


def test_a_worker_imports_no_pydantic_nor_boto3_through_its_first_batch(
    first_batches: dict[str, dict[str, Any]],
) -> None:
    # The job message, the systems configuration and the connector's options and secret are
    # read in their plain forms (pydantic only reads a form they are not sure of).
    modules = _after_first_batch("worker", first_batches["worker"])
    assert "optout.connectors.webhook" in modules
    for package in ("pydantic", "pydantic_core", "optout.systems_models", "boto3"):
        assert not _loaded(modules, package), package
    assert "optout.delivery.message_model" not in modules
