"""The benchmark's regression guard judges counts against bench/guard.json, never times."""

from typing import Any

from bench import guard


def results(per_request_calls: list[int], wru: float, requests: int = 150) -> dict[str, Any]:
    return {
        "calls": {
            "requests": requests,
            "accepted": len(per_request_calls),
            "capture": {
                "calls_per_request": {
                    "min": min(per_request_calls),
                    "max": max(per_request_calls),
                    "mean": sum(per_request_calls) / len(per_request_calls),
                },
                "requests_not_exactly_one_call": sum(1 for n in per_request_calls if n != 1),
            },
            "per_opt_out": {"wru": wru},
        },
        # Times the guard must ignore, however bad.
        "latency": {"ratio": {"median": 99.0, "p99": 99.0}},
    }


def test_one_call_per_capture_and_writes_under_the_ceiling_pass() -> None:
    outcome = guard.check(results([1, 1, 1], wru=9.0))
    assert outcome["passed"] is True
    assert [c["passed"] for c in outcome["checks"]] == [True, True]


def test_a_capture_with_a_second_aws_call_fails_the_guard() -> None:
    outcome = guard.check(results([1, 2, 1], wru=9.0))
    assert outcome["passed"] is False
    assert outcome["checks"][0]["passed"] is False


def test_writes_per_opt_out_above_the_committed_ceiling_fail_the_guard() -> None:
    outcome = guard.check(results([1, 1], wru=50.0))
    assert outcome["passed"] is False
    assert outcome["checks"][1]["passed"] is False


def test_a_run_size_without_a_committed_ceiling_fails_rather_than_passes_unchecked() -> None:
    outcome = guard.check(results([1, 1], wru=1.0, requests=7))
    assert outcome["passed"] is False


def test_a_run_without_the_calls_stage_fails_the_guard() -> None:
    assert guard.check({"latency": {}})["passed"] is False
