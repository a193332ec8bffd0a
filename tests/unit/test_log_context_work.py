"""log_context reads the correlation id from an expression compiled once (docs/performance.md,
part G): Powertools' `correlation_id_path` parsed the path and built its JMESPath functions at
every invocation, leaving a reference cycle for the garbage collector each time. The line is
the same: the id API Gateway gave the request, or none."""

import gc
from collections.abc import Iterator
from typing import Any

import pytest
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities import jmespath_utils

from optout.observability import log_context, logger
from tests.support.lambdas import FakeLambdaContext
from tests.support.log_lines import logged_lines


@log_context(correlation_paths.API_GATEWAY_HTTP)
def api_handler(event: dict[str, Any], context: Any) -> None:
    logger.info("captured", extra={"request_id": "r-1"})


@pytest.fixture
def queries(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    seen: list[str] = []
    query = jmespath_utils.query

    def counted(data: Any, envelope: str, jmespath_options: Any = None) -> Any:
        seen.append(envelope)
        return query(data=data, envelope=envelope, jmespath_options=jmespath_options)

    monkeypatch.setattr(jmespath_utils, "query", counted)
    yield seen


def test_each_line_has_its_requests_correlation_id_without_a_query_per_call(
    queries: list[str],
) -> None:
    with logged_lines() as lines:
        for request_id in ("JdXhmjSUIAMEbXQ=", "KeYimkTVJBNFcYR="):
            api_handler({"requestContext": {"requestId": request_id}}, FakeLambdaContext())
        api_handler({"requestContext": {}}, FakeLambdaContext())
    assert [line.get("correlation_id") for line in lines] == [
        "JdXhmjSUIAMEbXQ=",
        "KeYimkTVJBNFcYR=",
        None,
    ]
    assert queries == []


def test_a_warm_invocation_leaves_no_cyclic_garbage() -> None:
    event = {"requestContext": {"requestId": "JdXhmjSUIAMEbXQ="}}
    with logged_lines():
        api_handler(event, FakeLambdaContext())  # the first: whatever is built once
        gc.collect()
        gc.disable()
        gc.set_debug(gc.DEBUG_SAVEALL)
        try:
            api_handler(event, FakeLambdaContext())
            gc.collect()
            left = list(gc.garbage)
        finally:
            gc.set_debug(0)
            gc.garbage.clear()
            gc.enable()
    assert left == []
