"""The cost model's vendor pace term: on AWS each worker invocation spaces its vendor requests
MaxConcurrency / rate_limit_per_second apart (connectors/pace.py), and Lambda bills the wait
beyond what the model already charges for the requests (docs/performance.md, "6. Cost")."""

import json
from pathlib import Path
from typing import Any

import pytest

from bench import cost, pace_cost
from local.cfn_yaml import loads_template

ROOT = Path(__file__).resolve().parents[2]


def _calls(workers: dict[str, Any], accepted: int) -> dict[str, Any]:
    """The calls stage's figures with no AWS call and no measured compute: only the waits."""
    jobs = sum(w["jobs"] for w in workers.values())
    return {
        "accepted": accepted,
        "mix": {"banner": accepted},
        "stages": {},
        "resolver": {"operations": {}, "events": accepted, "send_message_batch_calls": 0},
        "workers": workers,
        "per_opt_out": {"dynamodb_calls": 0.0, "sqs_requests_functions": 0.0, "wru": 0.0,
                        "rru": 0.0, "jobs": jobs / accepted, "worker_invocations": 0.2,
                        "resolver_ms_per_event_moto": 0.0, "worker_ms_per_job_moto": 0.0},
    }  # fmt: skip


# Ten opt-outs: Braze's invocation made 11 requests one after another; the webhook's made 10
# at once (the bench measured them waited as one: 0.1 a job).
WORKERS = {
    "braze": {"jobs": 10, "invocations": 1, "vendor_calls_per_job": 1.1,
              "vendor_waits_per_job": 1.1, "vendor_calls_by_invocation": {"11": 1},
              "operations": {}},
    "webhook": {"jobs": 10, "invocations": 1, "vendor_calls_per_job": 1.0,
                "vendor_waits_per_job": 0.1, "vendor_calls_by_invocation": {"10": 1},
                "operations": {}},
}  # fmt: skip
PACES = {"braze": pace_cost.Pace(0.5, 1), "webhook": pace_cost.Pace(0.2, 10)}


def test_the_pace_wait_is_priced_as_worker_duration_beyond_the_charged_vendor_wait() -> None:
    # Given the model's 200 ms per vendor request, workers at 256 MB, and the two invocations
    a = cost.load_prices()["assumptions"]
    assert (a["vendor_call_ms"], a["memory_mb"]["workers"]) == (200, 256)
    # When the model prices them with Braze paced at 0.5 s and the webhook at 0.2 s
    paced = cost.model(_calls(WORKERS, accepted=10), None, None, paces=PACES)
    unpaced = cost.model(_calls(WORKERS, accepted=10), None, None, paces={})
    # Then (by hand) Braze waits its first interval, 0.5 s from the invocation's start, and
    # 10 gaps x (0.5 - 0.2) = 3.0 s, as its previous request's 0.2 s answer hides the rest of
    # each gap: 3.5 s; the webhook's 10 requests start at 0.2 .. 2.0 s and end at 2.2 s where
    # the model charged 10 x 0.1 x 0.2 = 0.2 s: 2.0 s more.
    # Per opt-out 0.35 s and 0.2 s, at 0.25 GB and 0.0000133334 USD per GB-s:
    # 1.17 and 0.67 USD per million opt-outs.
    found = paced["vendor_pace"]
    assert found["by_system"]["braze"]["seconds_per_opt_out"] == pytest.approx(0.35)
    assert found["by_system"]["webhook"]["seconds_per_opt_out"] == pytest.approx(0.2)
    assert found["by_system"]["braze"]["usd_per_million_opt_outs"] == pytest.approx(1.167, abs=1e-3)
    assert found["by_system"]["webhook"]["usd_per_million_opt_outs"] == pytest.approx(
        0.667, abs=1e-3
    )
    assert found["seconds_per_opt_out"] == pytest.approx(0.55)
    assert found["usd_per_million_opt_outs"] == pytest.approx(1.833, abs=0.01)
    # ... in the total as its own line, the rest of Lambda's duration unchanged
    dollars = paced["dollars_per_million_opt_outs"]
    assert dollars["lambda_vendor_pace_wait"] == pytest.approx(1.833, abs=0.01)
    assert dollars["lambda_duration"] == unpaced["dollars_per_million_opt_outs"]["lambda_duration"]
    assert paced["total_dollars_per_million_opt_outs"] == pytest.approx(
        unpaced["total_dollars_per_million_opt_outs"] + 1.833, abs=0.01
    )


def test_a_pool_smaller_than_the_requests_waits_for_a_thread_or_the_pace() -> None:
    # Given 4 requests of 0.2 s, two at a time: unpaced they span 0.4 s
    assert pace_cost.paced_span(4, 0.0, 0.2, parallel=2) == pytest.approx(0.4)
    # When paced at 0.1 s they start at 0.1, 0.2, 0.3 (a thread frees), 0.4: 0.6 s
    assert pace_cost.paced_span(4, 0.1, 0.2, parallel=2) == pytest.approx(0.6)
    # And sequential requests slower than the pace wait only for the first one's interval
    assert pace_cost.pace_wait(5, pace_cost.Pace(0.1, 1), 0.2, overlap=1.0) == pytest.approx(0.1)
    assert pace_cost.pace_wait(1, pace_cost.Pace(2.0, 1), 0.2, overlap=1.0) == pytest.approx(2.0)


def test_the_paces_are_the_shipped_rates_over_the_templates_max_concurrency() -> None:
    # Given the files production is built from, read here on their own
    systems = json.loads((ROOT / "layers/common/config/systems.json").read_text("utf-8"))
    template = loads_template((ROOT / "template.yaml").read_text(encoding="utf-8"))
    limits = template["Mappings"]["SystemLimits"]
    expected = {
        s["name"]: limits[s["name"].replace("_", "")]["MaxConcurrency"] / s["rate_limit_per_second"]
        for s in systems["systems"]
    }
    # When the cost model prices a run without being given the paces
    model = cost.model(_calls(WORKERS, accepted=10), None, None)
    # Then each system's interval is MaxConcurrency / rate (Salesforce: 2 / 1 = 2 s), and
    # the webhook's requests go 10 at a time (its connector's pool)
    paces = pace_cost.shipped_paces()
    assert {n: p.interval_s for n, p in paces.items()} == pytest.approx(expected)
    assert paces["salesforce"].interval_s == pytest.approx(2.0)
    assert (paces["webhook"].parallel, paces["braze"].parallel) == (10, 1)
    assert model["vendor_pace"]["by_system"]["braze"]["interval_s"] == expected["braze"]
