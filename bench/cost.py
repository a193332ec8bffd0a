"""Stage 6: dollars per million opt-outs = list prices (prices.json) x counted calls and
modelled durations, for the workload's stated mix (bench/workload.py MIX), by stage.

Per opt-out and per stage (capture, resolver, workers, event sources) the model lists what
AWS bills for: DynamoDB write and read request units, Lambda GB-seconds and invocations,
API Gateway requests, SQS requests, DynamoDB calls (not billed per call: they are what the
request units come from) and Streams read requests, each with its price and its dollars.

Counted quantities (calls, capacity units, jobs, invocations) come from stage 1. Durations
are modelled, not taken from moto: each function's own compute (measured in this run with
moto's time taken out, as timed call by call in bench/counting.py) plus, per AWS call, a
typical in-region round trip, plus, per vendor call, a typical vendor latency (all in
prices.json "assumptions"); vendor calls a worker made together are counted by the wait they
cost, measured as their overlap (bench/pipeline.py). Each stage is billed at its function's
memory (template.yaml; prices.json "memory_mb"): the compute, measured as it runs at
`compute_measured_at_mb`, takes longer in proportion at less memory (Lambda allots CPU in
proportion to memory), the waits do not.

What the functions' observability costs per opt-out is in the same table (added 2026-11-30;
before, the model left it out):
- CloudWatch Logs ingestion: the log lines and EMF metric blobs the handlers wrote in the calls
  stage, counted byte for byte (bench/environment.py's sink); Lambda's own two system records
  per invocation (JSON log format: platform.start and platform.report with the tracing context),
  sized from the Telemetry API schema's shapes; and capture's API access log line, rendered
  from template.yaml's own format;
- X-Ray: the traces Lambda's active tracing records under X-Ray's default sampling (the first
  invocation each second per function, then 5 %), at `steady_opt_outs_per_second`.
`observability.lean_observability` is the total a stack deployed with TracingMode=PassThrough
and SystemLogLevel=WARN would cost: no X-Ray, and the log bytes without Lambda's system records.
With the edge on (EnableEdge=true, the production recipe), each opt-out's POST is also a
CloudFront HTTPS request and a WAF-inspected request: `with_edge` gives the total with them.

The wait the vendor pace adds to each worker invocation on AWS (added 2026-12-01; before, the
model left it out): the bench runs the local rates, so the wait at the shipped rates and
MaxConcurrency is modelled from the requests per invocation (bench/pace_cost.py) and priced as
worker duration, its own line (`vendor_pace`, by system) and in the total.
"""

import json
import tomllib
from pathlib import Path
from typing import Any

from bench import pace_cost

PRICES = Path(__file__).resolve().parent / "prices.json"
TEMPLATE = Path(__file__).resolve().parent.parent / "template.yaml"
SAMCONFIG = TEMPLATE.with_name("samconfig.toml")
MILLION = 1_000_000
GB = 1_000_000_000
STAGES = ("capture", "resolver", "workers", "event_sources")
# One invocation's system records in Lambda's JSON log format, as the Telemetry API schema
# reference shapes them (https://docs.aws.amazon.com/lambda/latest/dg/telemetry-schema-reference.html,
# checked 2026-11-30), with the tracing context active tracing adds; the values are typical.
_TRACING = {
    "spanId": "3f1a2b4c5d6e7f80",
    "type": "X-Amzn-Trace-Id",
    "value": "Root=1-674a1b2c-3d4e5f60718293a4b5c6d7e8;Parent=3f1a2b4c5d6e7f80;Sampled=1",
}
_REQUEST_ID = "8f5f3f44-5c39-4d0f-9d4b-1f7f0e6f2a11"
PLATFORM_RECORDS = (
    {"time": "2026-11-30T01:02:03.456Z", "type": "platform.start",
     "record": {"requestId": _REQUEST_ID, "version": "$LATEST", "tracing": _TRACING}},
    {"time": "2026-11-30T01:02:03.471Z", "type": "platform.report",
     "record": {"requestId": _REQUEST_ID,
                "metrics": {"durationMs": 14.872, "billedDurationMs": 15, "memorySizeMB": 512,
                            "maxMemoryUsedMB": 98},
                "tracing": _TRACING, "status": "success"}},
)  # fmt: skip
# The values API Gateway puts in the access log format's variables (typical widths).
_ACCESS_LOG_VALUES = {
    "$context.requestId": "JdXhmjSUIAMEbXQ=",
    "$context.routeKey": "POST /v1/consent",
    "$context.status": "202",
    "$context.responseLatency": "23",
    "$context.requestTime": "30/Nov/2026:01:02:03 +0000",
    "$context.identity.userArn": "-",  # a public route: no signer (API Gateway logs "-")
}
XRAY_RESERVOIR_PER_SECOND = 1.0  # X-Ray's default rule: one a second per function ...
XRAY_FIXED_RATE = 0.05  # ... and 5 % of the rest


def load_prices() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(PRICES.read_text(encoding="utf-8"))
    return loaded


def model(calls: dict[str, Any], latency: dict[str, Any] | None, cold: dict[str, Any] | None,
          paces: dict[str, pace_cost.Pace] | None = None) -> dict[str, Any]:  # fmt: skip
    """`paces`: each system's pace on AWS; by default as shipped (pace_cost.shipped_paces)."""
    book = load_prices()
    p, a = {k: v["usd"] for k, v in book["prices"].items()}, book["assumptions"]
    per = calls["per_opt_out"]
    accepted = max(1, calls["accepted"])
    compute, wait = _modelled_ms(calls, latency, a)
    memory = {stage: float(a["memory_mb"].get(stage, 512)) for stage in STAGES}
    # CPU is allotted in proportion to memory (below one vCPU): the measured compute takes
    # longer at less memory and costs the same GB-s; the waits cost less (docs/performance.md).
    slower = {stage: a["compute_measured_at_mb"] / memory[stage] for stage in STAGES}
    ms = {k: compute[k] * slower[_stage_of(k)] + wait[k] for k in compute}
    init_ms = _init_ms(cold) * a["cold_start_fraction"]
    invocations = {
        "capture": 1.0,
        "resolver": 1 / a["resolver_events_per_invocation"],
        "workers": per["worker_invocations"],
        "event_sources": 0.0,
    }
    billed_ms = {
        "capture": ms["capture"],
        "resolver": ms["resolver_per_event"],
        "workers": ms["worker_per_job"] * per["jobs"],
        "event_sources": 0.0,
    }
    tallies = _stage_tallies(calls["stages"], accepted)
    paced = pace_cost.model(calls["workers"], accepted, a["vendor_call_ms"] / 1000,
                            pace_cost.shipped_paces() if paces is None else paces)  # fmt: skip
    # GB-s per second of worker duration, and USD per million opt-outs per GB-s per opt-out
    worker_gb = memory["workers"] / 1024
    usd_per_gb_s = p["lambda_arm64_gb_second"] * MILLION
    pace_gb_s = dict.fromkeys(STAGES, 0.0)
    pace_gb_s["workers"] = sum(s["seconds_per_opt_out"] for s in paced.values()) * worker_gb
    platform, access = platform_bytes(), access_log_bytes()  # template.yaml read once
    logged = _log_bytes(calls.get("logs"), invocations, platform, access)
    rate = float(a["steady_opt_outs_per_second"])
    traces = _traces(invocations, len(calls["workers"]), rate)
    stream_reads = 0.0 if a["streams_reads_free_for_lambda_trigger"] else (
        1 / a["resolver_events_per_invocation"])  # fmt: skip
    by_stage: dict[str, dict[str, Any]] = {}
    for stage in STAGES:
        tally = tallies[stage]
        quantities = {
            "wru": tally["wru"],
            "rru": tally["rru"],
            "lambda_gb_seconds": (billed_ms[stage] + init_ms * slower[stage] * invocations[stage])
            / 1000
            * memory[stage]
            / 1024,
            "vendor_pace_gb_seconds": pace_gb_s[stage],
            "lambda_requests": invocations[stage],
            "apigw_requests": 1.0 if stage == "capture" else 0.0,
            "sqs_requests": tally["sqs"],
            "dynamodb_calls": tally["dynamodb"],
            "streams_read_requests": stream_reads if stage == "event_sources" else 0.0,
            "log_gb": logged[stage] / GB,
            "xray_traces": traces[stage],
        }
        dollars = {
            "wru": quantities["wru"] * p["dynamodb_write_request_unit_per_million"],
            "rru": quantities["rru"] * p["dynamodb_read_request_unit_per_million"],
            "lambda_gb_seconds": quantities["lambda_gb_seconds"] * p["lambda_arm64_gb_second"]
            * MILLION,
            "vendor_pace_gb_seconds": quantities["vendor_pace_gb_seconds"] * usd_per_gb_s,
            "lambda_requests": quantities["lambda_requests"] * p["lambda_requests_per_million"],
            "apigw_requests": quantities["apigw_requests"]
            * p["apigw_http_api_requests_per_million"],
            "sqs_requests": quantities["sqs_requests"] * p["sqs_standard_requests_per_million"],
            "dynamodb_calls": 0.0,  # billed through the request units above
            "streams_read_requests": quantities["streams_read_requests"]
            * p["dynamodb_streams_read_request_per_million"],
            "log_gb": quantities["log_gb"] * p["cloudwatch_logs_ingestion_per_gb"] * MILLION,
            "xray_traces": quantities["xray_traces"] * p["xray_traces_recorded_per_million"],
        }  # fmt: skip
        by_stage[stage] = {
            "per_opt_out": {k: round(v, 4 if k != "log_gb" else 12) for k, v in quantities.items()},
            "usd_per_million_opt_outs": {k: round(v, 3) for k, v in dollars.items()},
            "usd_total": round(sum(dollars.values()), 3),
        }
    components = _components(by_stage)
    total = sum(components.values())
    # TracingMode=PassThrough and SystemLogLevel=WARN (template.yaml): no traces, and none of
    # Lambda's START/REPORT records; everything else as above.
    lean = total - components["x_ray"] - (
        sum(invocations.values()) * platform / GB
        * p["cloudwatch_logs_ingestion_per_gb"] * MILLION
    )  # fmt: skip
    edge = {
        "cloudfront": p["cloudfront_https_requests_per_million"],
        "waf": p["waf_requests_per_million"],
    }  # one POST per opt-out passes both
    return {
        "recorded_on": book["recorded_on"],
        "checked_on": book["checked_on"],
        "region": book["region"],
        "prices": book["prices"],
        "mix": calls["mix"],
        "modelled_ms": {k: round(v, 2) for k, v in ms.items()},
        "modelled_compute_ms": {k: round(v, 2) for k, v in compute.items()},
        "memory_mb": memory,
        "lambda_invocations_per_opt_out": round(sum(invocations.values()), 3),
        "aws_calls_per_opt_out": round(per["dynamodb_calls"] + per["sqs_requests_functions"], 2),
        "wru_per_opt_out": round(per["wru"], 3),
        "rru_per_opt_out": round(per["rru"], 3),
        "by_stage": by_stage,
        "dollars_per_million_opt_outs": {k: round(v, 2) for k, v in components.items()},
        "total_dollars_per_million_opt_outs": round(total, 2),
        "share_of_total": {k: round(v / total, 3) for k, v in components.items()},
        "observability": {
            "logs_measured": calls.get("logs") is not None,
            "log_bytes_per_opt_out": {k: round(v, 1) for k, v in logged.items()},
            "platform_bytes_per_invocation": platform,
            "access_log_bytes_per_request": access,
            "steady_opt_outs_per_second": rate,
            "xray_traces_per_opt_out": round(sum(traces.values()), 4),
            "lean_observability": {
                "parameters": {"TracingMode": "PassThrough", "SystemLogLevel": "WARN"},
                "total_dollars_per_million_opt_outs": round(lean, 2),
            },
            "x_ray_usd_per_million_at": {
                str(r): round(
                    sum(_traces(invocations, len(calls["workers"]), r).values())
                    * p["xray_traces_recorded_per_million"],
                    2,
                )
                for r in (1, 10, 100)
            },
        },
        "vendor_pace": {
            "from": "rate_limit_per_second in layers/common/config/systems.json, MaxConcurrency "
            "in template.yaml's SystemLimits",
            "seconds_per_opt_out": round(pace_gb_s["workers"] / worker_gb, 4),
            "usd_per_million_opt_outs": round(pace_gb_s["workers"] * usd_per_gb_s, 2),
            "by_system": {
                name: {
                    **found,
                    "seconds_per_opt_out": round(found["seconds_per_opt_out"], 4),
                    "usd_per_million_opt_outs": round(
                        found["seconds_per_opt_out"] * worker_gb * usd_per_gb_s, 3
                    ),
                }
                for name, found in paced.items()
            },
        },
        "with_edge": {
            "per_opt_out": {"cloudfront_https_requests": 1.0, "waf_requests": 1.0},
            "dollars_per_million_opt_outs": {k: round(v, 2) for k, v in edge.items()},
            "total_dollars_per_million_opt_outs": round(total + sum(edge.values()), 2),
        },
    }


def platform_bytes() -> int:
    """Bytes of Lambda's system records per invocation (one log event each)."""
    return sum(len(json.dumps(r, separators=(",", ":"))) for r in PLATFORM_RECORDS)


def access_log_bytes() -> int:
    """Bytes of one access log line in template.yaml's format, its variables filled in."""
    return len(access_log_line().encode("utf-8"))


def access_log_line() -> str:
    """One access log line as API Gateway writes it for the stack samconfig.toml deploys: the
    format's `!Sub` resolved first (CloudFormation, `${AWS::StackName}`), then its `$context`
    variables filled in with typical values (API Gateway)."""
    from local.cfn_yaml import loads_template  # noqa: PLC0415 - only the cost stage needs it

    template = loads_template(TEMPLATE.read_text(encoding="utf-8"))
    api = next(r for r in template["Resources"].values() if r["Type"] == "AWS::Serverless::HttpApi")
    line = _substituted(api["Properties"]["AccessLogSettings"]["Format"], deployed_stack_name())
    for variable, value in sorted(_ACCESS_LOG_VALUES.items(), key=lambda kv: -len(kv[0])):
        line = line.replace(variable, value)
    if "$context." in line:
        raise ValueError("template.yaml's access log format has a variable the model lacks")
    return line


def deployed_stack_name() -> str:
    """The stack name `make deploy` uses (samconfig.toml's default)."""
    config = tomllib.loads(SAMCONFIG.read_text(encoding="utf-8"))
    name: str = config["default"]["global"]["parameters"]["stack_name"]
    return name


def _substituted(text: str | dict[str, Any], stack_name: str) -> str:
    """The format as deployed: a plain string, or `Fn::Sub` text with the stack's name put in.
    The model knows no other `${...}`: one would be sized as its placeholder, so it is refused."""
    if isinstance(text, str):
        return text
    sub = text["Fn::Sub"]
    if not isinstance(sub, str):
        raise TypeError("template.yaml's access log format is a Fn::Sub the model cannot read")
    line = sub.replace("${AWS::StackName}", stack_name)
    if "${" in line:
        raise ValueError("template.yaml's access log format substitutes what the model lacks")
    return line


def _log_bytes(logs: dict[str, Any] | None, invocations: dict[str, float],
               platform: int, access: int) -> dict[str, float]:  # fmt: skip
    """Bytes ingested per opt-out by stage: what the handlers wrote (measured; 0 when the
    calls stage could not count it), Lambda's system records (`platform` bytes an invocation),
    capture's access log line (`access` bytes)."""
    written = (logs or {}).get("per_opt_out", {})
    found = {stage: float(written.get(stage, {}).get("bytes", 0.0)) for stage in STAGES}
    for stage in STAGES:
        found[stage] += invocations[stage] * platform
    found["capture"] += access
    return found


def _traces(invocations: dict[str, float], worker_functions: int,
            rate: float) -> dict[str, float]:  # fmt: skip
    """Traces recorded per opt-out by stage at `rate` opt-outs a second: each function's
    invocations sampled by X-Ray's default rule (each counted as its own trace)."""
    found = dict.fromkeys(STAGES, 0.0)
    for stage in ("capture", "resolver", "workers"):
        functions = max(1, worker_functions) if stage == "workers" else 1
        per_function = rate * invocations[stage] / functions  # invocations a second
        if per_function <= 0:
            continue
        sampled = min(per_function, XRAY_RESERVOIR_PER_SECOND) + XRAY_FIXED_RATE * max(
            0.0, per_function - XRAY_RESERVOIR_PER_SECOND
        )
        found[stage] = invocations[stage] * sampled / per_function
    return found


def _modelled_ms(calls: dict[str, Any], latency: dict[str, Any] | None,
                 a: dict[str, Any]) -> tuple[dict[str, float], dict[str, float]]:  # fmt: skip
    """(compute, wait) in ms: the functions' own time as measured (at
    `compute_measured_at_mb`), and their waits on AWS and vendor calls as assumed."""
    per = calls["per_opt_out"]
    moto_call_ms = latency["put_item_ms"]["median"] if latency else 1.0
    capture_compute = latency["overhead_ms_median"] if latency else 1.0
    resolver_calls = _per_event(calls["resolver"]["operations"], calls["resolver"]["events"])
    worker_calls_per_job = _worker_calls_per_job(calls["workers"])
    # moto's time out of the measured time: as timed call by call when the calls stage did
    # (bench/counting.py), else estimated as the calls times a median put_item.
    resolver_moto = per.get("resolver_ms_per_event_emulator", resolver_calls * moto_call_ms)
    worker_moto = per.get("worker_ms_per_job_emulator", worker_calls_per_job * moto_call_ms)
    resolver_compute = max(0.0, per["resolver_ms_per_event_moto"] - resolver_moto)
    worker_compute = max(0.0, per["worker_ms_per_job_moto"] - worker_moto)
    vendor_per_job = _vendor_calls_per_job(calls["workers"])
    sqs_per_event = calls["resolver"]["send_message_batch_calls"] / max(
        1, calls["resolver"]["events"]
    )
    compute = {
        "capture": capture_compute,
        "resolver_per_event": resolver_compute,
        "worker_per_job": worker_compute,
    }
    wait = {
        "capture": 1 * a["dynamodb_call_ms"],
        "resolver_per_event": (resolver_calls - sqs_per_event) * a["dynamodb_call_ms"]
        + sqs_per_event * a["sqs_call_ms"],
        "worker_per_job": worker_calls_per_job * a["dynamodb_call_ms"]
        + vendor_per_job * a["vendor_call_ms"],
    }
    return compute, wait


def _stage_of(modelled: str) -> str:
    return {"capture": "capture", "resolver_per_event": "resolver",
            "worker_per_job": "workers"}[modelled]  # fmt: skip


def _stage_tallies(stages: dict[str, Any], accepted: int) -> dict[str, dict[str, float]]:
    """The calls stage's tallies grouped by billing stage, per accepted opt-out."""
    group = {"capture": "capture", "resolver": "resolver", "esm:sqs": "event_sources",
             "esm:stream": "event_sources"}  # fmt: skip
    found = {s: {"wru": 0.0, "rru": 0.0, "sqs": 0.0, "dynamodb": 0.0} for s in STAGES}
    for name, tally in stages.items():
        stage = "workers" if name.startswith("worker:") else group.get(name)
        if stage is None:
            continue  # the harness's own set-up calls
        target = found[stage]
        target["wru"] += tally["wru"] / accepted
        target["rru"] += tally["rru"] / accepted
        for operation, n in tally["calls"].items():
            service = operation.split(":", 1)[0]
            if service in ("sqs", "dynamodb"):
                target[service] += n / accepted
    return found


def _components(by_stage: dict[str, dict[str, Any]]) -> dict[str, float]:
    """The same dollars, by what AWS bills (the README's breakdown)."""
    names = {"wru": "dynamodb_writes", "rru": "dynamodb_reads",
             "lambda_gb_seconds": "lambda_duration",
             "vendor_pace_gb_seconds": "lambda_vendor_pace_wait",
             "lambda_requests": "lambda_requests",
             "apigw_requests": "api_gateway", "sqs_requests": "sqs",
             "streams_read_requests": "dynamodb_streams", "log_gb": "cloudwatch_logs",
             "xray_traces": "x_ray"}  # fmt: skip
    totals = dict.fromkeys(names.values(), 0.0)
    for stage in by_stage.values():
        for key, name in names.items():
            totals[name] += stage["usd_per_million_opt_outs"][key]
    return totals


def _per_event(operations: dict[str, int], events: int) -> float:
    return float(sum(operations.values())) / max(1, events)


def _worker_calls_per_job(workers: dict[str, Any]) -> float:
    jobs = int(sum(w["jobs"] for w in workers.values()))
    calls = sum(sum(w["operations"].values()) for w in workers.values())
    return float(calls) / max(1, jobs)


def _vendor_calls_per_job(workers: dict[str, Any]) -> float:
    jobs = int(sum(w["jobs"] for w in workers.values()))
    calls = sum(w.get("vendor_waits_per_job", w["vendor_calls_per_job"]) * w["jobs"]
                for w in workers.values())  # fmt: skip
    return float(calls) / max(1, jobs)


def _init_ms(cold: dict[str, Any] | None) -> float:
    """Mean import-and-init of the three functions (Lambda bills the INIT phase)."""
    if not cold:
        return 500.0
    figures = [float(cold["functions"][n]["total_ms"]) for n in ("capture", "resolver", "worker")]
    return sum(figures) / len(figures)
