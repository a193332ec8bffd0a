"""Stage 6: dollars per million opt-outs = list prices (prices.json) x counted calls and
modelled durations, for the workload's stated mix (bench/workload.py MIX).

Durations are modelled, not taken from moto: each function's own compute (measured in this
run with moto's time taken out) plus, per AWS call, a typical in-region round trip, plus, per
vendor call, a typical vendor latency (all in prices.json "assumptions"). Counted quantities
(calls, capacity units, jobs, invocations) come from stage 1.
"""

import json
from pathlib import Path
from typing import Any

PRICES = Path(__file__).resolve().parent / "prices.json"
MILLION = 1_000_000


def load_prices() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(PRICES.read_text(encoding="utf-8"))
    return loaded


def model(calls: dict[str, Any], latency: dict[str, Any] | None,
          cold: dict[str, Any] | None) -> dict[str, Any]:  # fmt: skip
    book = load_prices()
    p, a = book["prices"], book["assumptions"]
    per = calls["per_opt_out"]
    moto_call_ms = latency["put_item_ms"]["median"] if latency else 1.0
    capture_compute = latency["overhead_ms_median"] if latency else 1.0
    resolver_calls = _per_event(calls["resolver"]["operations"], calls["resolver"]["events"])
    resolver_compute = max(0.0, per["resolver_ms_per_event_moto"] - resolver_calls * moto_call_ms)
    worker_calls_per_job = _worker_calls_per_job(calls["workers"])
    worker_compute = max(0.0, per["worker_ms_per_job_moto"] - worker_calls_per_job * moto_call_ms)
    vendor_per_job = _vendor_calls_per_job(calls["workers"])
    sqs_per_event = calls["resolver"]["send_message_batch_calls"] / max(
        1, calls["resolver"]["events"]
    )
    ms = {
        "capture": capture_compute + 1 * a["dynamodb_call_ms"],
        "resolver_per_event": resolver_compute
        + (resolver_calls - sqs_per_event) * a["dynamodb_call_ms"]
        + sqs_per_event * a["sqs_call_ms"],
        "worker_per_job": worker_compute
        + worker_calls_per_job * a["dynamodb_call_ms"]
        + vendor_per_job * a["vendor_call_ms"],
    }
    gb = a["memory_mb"] / 1024
    init_ms = _init_ms(cold) * a["cold_start_fraction"]
    invocations = 1 + 1 / a["resolver_events_per_invocation"] + per["worker_invocations"]
    billed_ms = ms["capture"] + ms["resolver_per_event"] + ms["worker_per_job"] * per["jobs"]
    dollars = {
        "api_gateway": p["apigw_http_api_requests_per_million"],
        "lambda_requests": invocations * p["lambda_requests_per_million"],
        "lambda_duration": (billed_ms + init_ms * invocations) / 1000 * gb
        * p["lambda_arm64_gb_second"] * MILLION,
        "dynamodb_writes": per["wru"] * p["dynamodb_write_request_unit_per_million"],
        "dynamodb_reads": per["rru"] * p["dynamodb_read_request_unit_per_million"],
        "dynamodb_streams": 0.0 if a["streams_reads_free_for_lambda_trigger"] else
        p["dynamodb_streams_read_request_per_million"] / a["resolver_events_per_invocation"],
        "sqs": (per["sqs_requests_functions"] + per["sqs_requests_event_source"])
        * p["sqs_standard_requests_per_million"],
    }  # fmt: skip
    total = sum(dollars.values())
    return {
        "recorded_on": book["recorded_on"],
        "region": book["region"],
        "mix": calls["mix"],
        "modelled_ms": {k: round(v, 2) for k, v in ms.items()},
        "lambda_invocations_per_opt_out": round(invocations, 3),
        "dollars_per_million_opt_outs": {k: round(v, 2) for k, v in dollars.items()},
        "total_dollars_per_million_opt_outs": round(total, 2),
        "share_of_total": {k: round(v / total, 3) for k, v in dollars.items()},
    }


def _per_event(operations: dict[str, int], events: int) -> float:
    return float(sum(operations.values())) / max(1, events)


def _worker_calls_per_job(workers: dict[str, Any]) -> float:
    jobs = int(sum(w["jobs"] for w in workers.values()))
    calls = sum(sum(w["operations"].values()) for w in workers.values())
    return float(calls) / max(1, jobs)


def _vendor_calls_per_job(workers: dict[str, Any]) -> float:
    jobs = int(sum(w["jobs"] for w in workers.values()))
    calls = sum(w["vendor_calls_per_job"] * w["jobs"] for w in workers.values())
    return float(calls) / max(1, jobs)


def _init_ms(cold: dict[str, Any] | None) -> float:
    """Mean import-and-init of the three functions (Lambda bills the INIT phase)."""
    if not cold:
        return 500.0
    figures = [float(cold["functions"][n]["total_ms"]) for n in ("capture", "resolver", "worker")]
    return sum(figures) / len(figures)
