"""The cost model's Lambda duration: memory as template.yaml sets it, and what less memory
changes (the waits cost less; the measured compute takes longer and costs the same)."""

from pathlib import Path
from typing import Any

import pytest

from bench import cost
from local.cfn_yaml import loads_template

ROOT = Path(__file__).resolve().parents[2]


def _calls() -> dict[str, Any]:
    """The calls stage's figures for one opt-out and one job: one vendor call, no AWS call."""
    return {
        "accepted": 1,
        "mix": {"banner": 1},
        "stages": {},
        "resolver": {"operations": {}, "events": 1, "send_message_batch_calls": 0},
        "workers": {"webhook": {"jobs": 1, "vendor_calls_per_job": 1.0, "operations": {}}},
        "per_opt_out": {"dynamodb_calls": 0.0, "sqs_requests_functions": 0.0, "wru": 0.0,
                        "rru": 0.0, "jobs": 1.0, "worker_invocations": 1.0,
                        "resolver_ms_per_event_moto": 0.0, "worker_ms_per_job_moto": 40.0},
    }  # fmt: skip


def _workers_gb_seconds(monkeypatch: pytest.MonkeyPatch, worker_mb: int) -> float:
    book = cost.load_prices()
    book["assumptions"]["memory_mb"] = {"capture": 512, "resolver": 512, "workers": worker_mb}
    book["assumptions"]["cold_start_fraction"] = 0.0
    monkeypatch.setattr(cost, "load_prices", lambda: book)
    model = cost.model(_calls(), None, None)
    return float(model["by_stage"]["workers"]["per_opt_out"]["lambda_gb_seconds"])


def test_half_the_memory_halves_the_waits_cost_and_keeps_the_computes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a job with 40 ms of compute measured on one core (Lambda's one vCPU, 1,769 MB)
    # and one 200 ms vendor call
    assert cost.load_prices()["assumptions"]["compute_measured_at_mb"] == 1769
    # When the workers are priced at 512 MB and at 256 MB
    at_512 = _workers_gb_seconds(monkeypatch, 512)
    at_256 = _workers_gb_seconds(monkeypatch, 256)
    # Then the compute costs the same GB-s (1769/512 and 1769/256 times as long) and the wait
    # half as much at half the memory
    compute, wait = 0.040 * 1769 / 1024, 0.200 * 0.5
    assert at_512 == pytest.approx(compute + wait, abs=1e-4)
    assert at_256 == pytest.approx(compute + wait / 2, abs=1e-4)


def test_the_models_memory_is_what_template_yaml_gives_each_function() -> None:
    # Given template.yaml's functions and the cost model's assumptions
    template = loads_template((ROOT / "template.yaml").read_text(encoding="utf-8"))
    default = template["Globals"]["Function"]["MemorySize"]
    resources = template["Resources"]
    workers = {
        r["Properties"].get("MemorySize", default)
        for name, r in resources.items()
        if name.endswith("Worker") and r["Type"] == "AWS::Serverless::Function"
    }
    assumed = cost.load_prices()["assumptions"]["memory_mb"]
    # Then each stage is priced at its function's memory
    assert workers == {assumed["workers"]}
    assert (
        resources["CaptureFunction"]["Properties"].get("MemorySize", default) == assumed["capture"]
    )
    assert (
        resources["ResolverFunction"]["Properties"].get("MemorySize", default)
        == assumed["resolver"]
    )
