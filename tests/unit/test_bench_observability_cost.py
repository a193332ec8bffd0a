"""The cost model's observability lines: CloudWatch Logs ingestion from what the handlers
wrote (counted by the bench's stdout sink), Lambda's system records and the API access log
line, X-Ray traces under the default sampling rule, and the edge's per-request charges."""

import json
from typing import Any

import pytest

from bench import cost
from bench.environment import LogSink


def test_the_sink_counts_each_line_once_under_the_function_that_wrote_it() -> None:
    # Given the bench's sink, and output written the ways Logger and print() write it
    sink = LogSink()
    with sink.labelled("capture"):
        sink.write('{"level":"INFO","message":"captured"}\n')  # Logger: line and newline at once
        sink.write('{"_aws":{}}')  # print(): the text ...
        sink.write("\n")  # ... then its newline
    with sink.labelled("resolver"):
        sink.write("a\nbé\n")  # two lines in one write; é is two bytes in UTF-8
    sink.write("outside any handler\n")
    # Then each function has its lines as log events and their bytes without the newline
    found = sink.snapshot()
    assert found["capture"] == (2, len('{"level":"INFO","message":"captured"}') + 11)
    assert found["resolver"] == (2, 1 + 3)
    assert found["outside"] == (1, 19)


def _calls(log_bytes: dict[str, float] | None, worker_invocations: float = 0.2) -> dict[str, Any]:
    """One opt-out's calls-stage figures: no AWS calls, one job, seven worker functions."""
    workers = {f"system{n}": {"jobs": 1, "vendor_calls_per_job": 0.0, "operations": {}}
               for n in range(7)}  # fmt: skip
    return {
        "accepted": 1,
        "mix": {"banner": 1},
        "stages": {},
        "resolver": {"operations": {}, "events": 1, "send_message_batch_calls": 0},
        "workers": workers,
        "per_opt_out": {"dynamodb_calls": 0.0, "sqs_requests_functions": 0.0, "wru": 0.0,
                        "rru": 0.0, "jobs": 1.0, "worker_invocations": worker_invocations,
                        "resolver_ms_per_event_moto": 0.0, "worker_ms_per_job_moto": 0.0},
        "logs": None if log_bytes is None else {
            "per_opt_out": {stage: {"events": 1.0, "bytes": b} for stage, b in log_bytes.items()}
        },
    }  # fmt: skip


def test_the_logs_the_handlers_wrote_are_priced_with_lambdas_records_and_the_access_line() -> None:
    # Given 1,000 bytes written by capture, 500 by the resolver, 2,000 by the workers
    written = {"capture": 1000.0, "resolver": 500.0, "workers": 2000.0}
    model = cost.model(_calls(written), None, None)
    # Then each stage ingests its own bytes plus Lambda's system records per invocation, and
    # capture also API Gateway's access log line
    invocations = {"capture": 1.0, "resolver": 1 / 100, "workers": 0.2}
    expected = {
        stage: written[stage] + invocations[stage] * cost.platform_bytes() for stage in invocations
    }
    expected["capture"] += cost.access_log_bytes()
    logged = model["observability"]["log_bytes_per_opt_out"]
    for stage, size in expected.items():
        assert logged[stage] == pytest.approx(size, abs=0.1)
    # And the dollars are those bytes at the ingestion price
    price = cost.load_prices()["prices"]["cloudwatch_logs_ingestion_per_gb"]["usd"]
    assert model["dollars_per_million_opt_outs"]["cloudwatch_logs"] == pytest.approx(
        sum(expected.values()) / 1e9 * price * 1e6, abs=0.01
    )
    assert model["observability"]["logs_measured"] is True


def test_unmeasured_logs_are_said_and_only_the_modelled_lines_are_priced() -> None:
    # Given a calls stage that could not count the handlers' output
    model = cost.model(_calls(None), None, None)
    # Then the model says so, and prices Lambda's records and the access line alone
    assert model["observability"]["logs_measured"] is False
    assert model["observability"]["log_bytes_per_opt_out"]["capture"] == pytest.approx(
        cost.platform_bytes() + cost.access_log_bytes(), abs=0.1
    )


def test_below_one_invocation_a_second_every_invocation_is_a_trace() -> None:
    # Given one opt-out a second: capture invoked once a second, the resolver once per 100
    # seconds, each of seven workers 0.2/7 times a second
    traces = cost._traces({"capture": 1.0, "resolver": 0.01, "workers": 0.2}, 7, 1.0)
    # Then X-Ray's reservoir (one a second per function) records every invocation
    assert traces["capture"] == pytest.approx(1.0)
    assert traces["resolver"] == pytest.approx(0.01)
    assert traces["workers"] == pytest.approx(0.2)


def test_at_high_rates_the_traces_fall_towards_five_percent() -> None:
    # Given 1,000 opt-outs a second
    traces = cost._traces({"capture": 1.0, "resolver": 0.01, "workers": 0.2}, 7, 1000.0)
    # Then capture records one a second and 5 % of the other 999
    assert traces["capture"] == pytest.approx((1 + 0.05 * 999) / 1000)
    # And the resolver (10 invocations a second) one and 5 % of nine, per invocation
    assert traces["resolver"] == pytest.approx(0.01 * (1 + 0.05 * 9) / 10)


def test_the_access_log_line_is_rendered_from_template_yamls_own_format() -> None:
    # Given template.yaml's access log format (every variable it uses has a typical value),
    # a `!Sub` text since the line names its stack (review s20 diff A2: it was sized as the
    # Python text of the unresolved map, 189 B for a 170 B line)
    line = cost.access_log_line()
    # Then the line is the JSON object API Gateway writes, for the stack samconfig.toml deploys
    fields = json.loads(line)
    assert fields["service"] == cost.deployed_stack_name() == "optout-bridge"
    assert fields["routeKey"] == "POST /v1/consent"
    assert not [v for v in fields.values() if "$" in v or "{" in v]
    # And its size is that object's: compact JSON plus at most the format's line-fold spaces
    compact = len(json.dumps(fields, separators=(",", ":")).encode("utf-8"))
    assert compact <= cost.access_log_bytes() == len(line.encode("utf-8")) < compact + len(fields)


def test_the_edge_adds_a_cloudfront_and_a_waf_request_per_opt_out() -> None:
    # Given the model of one opt-out
    model = cost.model(_calls({"capture": 0.0, "resolver": 0.0, "workers": 0.0}), None, None)
    prices = cost.load_prices()["prices"]
    # Then the total with the edge adds one CloudFront HTTPS request and one WAF request
    edge = (
        prices["cloudfront_https_requests_per_million"]["usd"]
        + prices["waf_requests_per_million"]["usd"]
    )
    assert model["with_edge"]["total_dollars_per_million_opt_outs"] == pytest.approx(
        model["total_dollars_per_million_opt_outs"] + edge, abs=0.011
    )


def test_lean_observability_drops_the_traces_and_lambdas_records_and_nothing_else() -> None:
    # Given one opt-out whose handlers wrote 1,000 bytes (capture), 500 (resolver) and 2,000
    # (workers): 1 + 1/100 + 0.2 invocations
    model = cost.model(
        _calls({"capture": 1000.0, "resolver": 500.0, "workers": 2000.0}), None, None
    )
    # When the stack would run with TracingMode=PassThrough and SystemLogLevel=WARN
    lean = model["observability"]["lean_observability"]
    # Then its total is the measured one without X-Ray and without Lambda's START/REPORT
    # records' bytes (the handlers' lines and the access log line stay)
    price = cost.load_prices()["prices"]["cloudwatch_logs_ingestion_per_gb"]["usd"]
    records = (1 + 1 / 100 + 0.2) * cost.platform_bytes() / 1e9 * price * 1e6
    stages = model["by_stage"].values()
    total = sum(stage["usd_total"] for stage in stages)  # the total before its rounding
    x_ray = sum(stage["usd_per_million_opt_outs"]["xray_traces"] for stage in stages)
    assert x_ray > 0.5 and records > 0.3
    assert lean["total_dollars_per_million_opt_outs"] == pytest.approx(
        total - x_ray - records, abs=0.006
    )
    assert lean["parameters"] == {"TracingMode": "PassThrough", "SystemLogLevel": "WARN"}
