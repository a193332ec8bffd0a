"""Issue 16's goal table: every row, its figure now, its baseline from the same run, the goal.

Rows whose stage did not run print "not run". A row is "met" only when its goal holds for
this run's figure; the goals are those of docs/performance.md.
"""

from typing import Any

GoalRow = tuple[str, str, str, str, str]  # figure, now, same-run baseline, goal, met
HEADER = ("goal (issue 16)", "now", "baseline, same run", "goal", "met")

CAPTURE_COLD_MAX = 1.5
OTHER_COLD_MAX = 2.0
HANDLER_RATIO_MAX = 1.3
USD_PER_MILLION_MAX = 5.00
COMPLETED_PER_SECOND_MIN = 50.0
P95_SECONDS_MAX = 10.0
SCALE_RATIO_MAX = 1.1


def goal_rows(results: dict[str, Any]) -> list[GoalRow]:
    return [_cold_capture(results), _cold_others(results), _handler(results), _cost(results),
            _local(results), _scale(results)]  # fmt: skip


def _met(ok: bool) -> str:
    return "yes" if ok else "NO"


def _cold_capture(results: dict[str, Any]) -> GoalRow:
    name = "capture cold start (import + init) vs a bare import boto3"
    cold = results.get("cold_start")
    if not cold:
        return (name, "not run", "", f"<= x{CAPTURE_COLD_MAX}", "")
    c = cold["functions"]["capture"]
    base = cold["functions"]["boto3 only (baseline)"]["total_ms"]
    ok = c["ratio_to_boto3"] <= CAPTURE_COLD_MAX
    return (name, f"x{c['ratio_to_boto3']:.2f} ({c['total_ms']:.0f} ms)",
            f"import boto3 {base:.0f} ms", f"<= x{CAPTURE_COLD_MAX}", _met(ok))  # fmt: skip


def _cold_others(results: dict[str, Any]) -> GoalRow:
    name = "resolver / worker cold start vs import boto3"
    cold = results.get("cold_start")
    if not cold:
        return (name, "not run", "", f"<= x{OTHER_COLD_MAX}", "")
    r, w = cold["functions"]["resolver"], cold["functions"]["worker"]
    base = cold["functions"]["boto3 only (baseline)"]["total_ms"]
    ok = max(r["ratio_to_boto3"], w["ratio_to_boto3"]) <= OTHER_COLD_MAX
    return (name, f"x{r['ratio_to_boto3']:.2f} / x{w['ratio_to_boto3']:.2f}",
            f"import boto3 {base:.0f} ms", f"<= x{OTHER_COLD_MAX}", _met(ok))  # fmt: skip


def _handler(results: dict[str, Any]) -> GoalRow:
    name = "capture handler vs a bare conditional put_item, median / p99"
    lat = results.get("latency")
    if not lat:
        return (name, "not run", "", f"<= x{HANDLER_RATIO_MAX} both", "")
    r, b = lat["ratio"], lat["put_item_ms"]
    ok = max(r["median"], r["p99"]) <= HANDLER_RATIO_MAX
    return (name, f"x{r['median']:.2f} / x{r['p99']:.2f}",
            f"put_item {b['median']:.2f} / {b['p99']:.2f} ms", f"<= x{HANDLER_RATIO_MAX} both",
            _met(ok))  # fmt: skip


def _cost(results: dict[str, Any]) -> GoalRow:
    name = "USD per million opt-outs, stated mix, list prices"
    cost = results.get("cost")
    if not cost:
        return (name, "not run", "", f"<= {USD_PER_MILLION_MAX:.2f}", "")
    total = cost["total_dollars_per_million_opt_outs"]
    now = (f"{total:.2f} ({cost['aws_calls_per_opt_out']:.2f} AWS calls, "
           f"{cost['wru_per_opt_out']:.2f} WRU per opt-out)")  # fmt: skip
    return (name, now, f"prices checked {cost['checked_on']}", f"<= {USD_PER_MILLION_MAX:.2f}",
            _met(total <= USD_PER_MILLION_MAX))  # fmt: skip


def _local(results: dict[str, Any]) -> GoalRow:
    e2e = results.get("local_e2e")
    goal = f">= {COMPLETED_PER_SECOND_MIN:.0f} completed/s, p95 <= {P95_SECONDS_MAX:.0f} s"
    if not e2e:
        return ("local stack, burst of mixed opt-outs x 7 systems", "not run", "", goal, "")
    t = e2e["post_to_last_receipt_s"]
    name = f"local stack, burst of {e2e['requests']:,} mixed opt-outs x 7 systems"
    now = (f"{e2e['completed_per_second']:.1f} completed/s, p50 {t['median']:.1f} s, "
           f"p95 {t['p95']:.1f} s, p99 {t['p99']:.1f} s")  # fmt: skip
    idle = e2e["idle_baseline_s"]["max"]
    ok = e2e["completed_per_second"] >= COMPLETED_PER_SECOND_MIN and t["p95"] <= P95_SECONDS_MAX
    return (name, now, f"one request alone: <= {idle:.1f} s", goal, _met(ok))


def _scale(results: dict[str, Any]) -> GoalRow:
    scale = results.get("scale")
    name = "local stack per-event time as the table grows"
    if not scale:
        return (name, "not run", "", f"<= x{SCALE_RATIO_MAX}", "")
    last = scale["sizes"][-1]
    name = f"per-event time, {last['baseline_identities']:,} -> {last['identities']:,} identities"
    return (name, f"x{last['ratio_to_baseline']:.2f} ({last['ms_per_event_median']:.1f} ms)",
            f"{last['baseline_identities']:,}: {last['baseline_ms_per_event_median']:.1f} ms, "
            "paired", f"<= x{SCALE_RATIO_MAX}",
            _met(last["ratio_to_baseline"] <= SCALE_RATIO_MAX))  # fmt: skip
