"""schemathesis against the OpenAPI documents the local stack serves: every route, IAM included.

The public document (`/v1/openapi.json`) and the IAM one (`/v1/admin/openapi.json`, itself
behind IAM) are fetched from a running stack and every operation in them is called with
generated requests, valid and invalid, with a fixed seed and a fixed example budget. Each
answer must be no 5xx and conform to the document: a documented status, content type and
schema (every refusal is the `ErrorOut` envelope). IAM routes are signed as the local stack
accepts (any SigV4 Authorization header is the local principal).

A stack of its own with one system (the webhook sandbox): the accepted opt-outs flow through
without slowing the shared stack's tests.
"""

from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.e2e.conftest import Stack, start
from tests.e2e.test_local_stack import SIGV4
from tests.support.systems_subset import systems_subset

pytestmark = pytest.mark.e2e

EXAMPLES_PER_ROUTE = 20
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
]
SETTINGS = settings(
    max_examples=EXAMPLES_PER_ROUTE,
    derandomize=True,  # a fixed seed: the same requests every run
    database=None,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
TIMEOUT = 30  # seconds per request: generous, for a busy 2-core machine
# Methods a route does not document are sent too, but only those API Gateway passes on to
# the $default route (TRACE or QUERY never reach a function).
CONFIG = SchemathesisConfig.from_dict(
    {"phases": {"coverage": {"unexpected-methods": ["get", "put", "post", "delete", "patch"]}}}
)
ANSWERED: Counter[str] = Counter()  # status classes of the answers, for the printed figures


@pytest.fixture(scope="module")
def schema_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    path = systems_subset(tmp_path_factory.mktemp("schemathesis"), "webhook")
    stack = start(path, path.parent)
    yield stack
    stack.stop()
    print(
        f"\nschemathesis: {ANSWERED.total()} calls, "
        f"by status class {dict(sorted(ANSWERED.items()))}"
    )


@pytest.fixture(scope="module")
def public_api(schema_stack: Stack) -> Any:
    schema = schemathesis.openapi.from_url(
        f"{schema_stack.url}/v1/openapi.json", config=CONFIG, timeout=TIMEOUT
    )
    schema.config.base_url = schema_stack.url
    return schema


@pytest.fixture(scope="module")
def iam_api(schema_stack: Stack) -> Any:
    url = f"{schema_stack.url}/v1/admin/openapi.json"
    schema = schemathesis.openapi.from_url(url, config=CONFIG, headers=SIGV4, timeout=TIMEOUT)
    schema.config.base_url = schema_stack.url
    return schema


public = schemathesis.pytest.from_fixture("public_api")
iam = schemathesis.pytest.from_fixture("iam_api")


@public.parametrize()
@SETTINGS
def test_every_public_route_answers_within_its_document(case: Any) -> None:
    answer = case.call_and_validate(checks=CHECKS, timeout=TIMEOUT)
    ANSWERED[f"{answer.status_code // 100}xx"] += 1


@iam.parametrize()
@SETTINGS
def test_every_iam_route_answers_within_its_document_when_signed(case: Any) -> None:
    answer = case.call_and_validate(headers=SIGV4, checks=CHECKS, timeout=TIMEOUT)
    ANSWERED[f"{answer.status_code // 100}xx"] += 1
