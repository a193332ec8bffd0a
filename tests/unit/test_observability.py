"""What every log line carries (docs/performance.md, "Log bytes per opt-out"): the keys an
operator uses, and none of the ones CloudWatch already says for the whole log group or
invocation. Each dropped key cost bytes on every line."""

from typing import Any

import pytest
from aws_lambda_powertools.logging import correlation_paths

from optout.observability import DROPPED_KEYS, log_context, logger
from tests.support.lambdas import FakeLambdaContext
from tests.support.log_lines import logged_lines

TRACE = "Root=1-674a1b2c-3d4e5f60718293a4b5c6d7e8;Parent=3f1a2b4c5d6e7f80;Sampled=1"


def http_event(request_id: str) -> dict[str, Any]:
    return {"requestContext": {"requestId": request_id}}


@log_context(correlation_paths.API_GATEWAY_HTTP)
def api_handler(event: dict[str, Any], context: Any) -> None:
    logger.info("captured", extra={"request_id": "r-1"})


@log_context()
def stream_handler(event: dict[str, Any], context: Any) -> None:
    logger.info("resolved", extra={"request_id": "r-2"})


def test_a_line_has_the_request_ids_cold_start_and_trace_and_no_constant_keys(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("_X_AMZN_TRACE_ID", TRACE)
    with logged_lines() as lines:
        api_handler(http_event("JdXhmjSUIAMEbXQ="), FakeLambdaContext())
    (line,) = lines
    assert set(line) == {
        "level", "message", "timestamp", "cold_start", "correlation_id", "xray_trace_id",
        "function_request_id", "request_id",
    }  # fmt: skip
    assert line["correlation_id"] == "JdXhmjSUIAMEbXQ="  # the access log's $context.requestId
    assert line["xray_trace_id"] == "1-674a1b2c-3d4e5f60718293a4b5c6d7e8"
    # the invocation, as a failed batch's DLQ record names it (requestContext.requestId)
    assert line["function_request_id"] == FakeLambdaContext().aws_request_id


def test_an_invocation_does_not_inherit_the_keys_another_handler_set() -> None:
    # Given an API invocation that set a correlation id (one process, as in the local stack)
    with logged_lines() as lines:
        api_handler(http_event("JdXhmjSUIAMEbXQ="), FakeLambdaContext())
        # When a stream handler logs next
        stream_handler({"Records": []}, FakeLambdaContext(function_name="resolver"))
    # Then its line carries no correlation id of the API request, nor a dropped key
    resolved = lines[-1]
    assert resolved["message"] == "resolved"
    assert "correlation_id" not in resolved
    assert not set(DROPPED_KEYS) & set(resolved)
