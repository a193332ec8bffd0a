"""The regression guard CI runs (`make bench-quick`): counts only, never a time.

Two counts per run of the calls stage, checked against `bench/guard.json`:
- capture makes exactly one AWS call per accepted request (the conditional PutItem), every
  request of the run, no exception;
- DynamoDB write request units per opt-out stay at or under the committed ceiling (set from
  the measured value with a small margin; lowering writes lowers it).
Both come from the seeded workload, not the clock: the same code gives the same counts on
any machine, however busy (WRU to within a fraction of a percent: receipts carry vendor
references of varying length).

When the `import` stage ran (`--only ...,import`; `make bench-quick` does not run it), two
counts per size as well: AWS calls per imported row (one BatchGetItem and the BatchWriteItems
of each batch of up to 100 rows: about 0.107) and estimated WRU per row, each under its
ceiling in `bench/guard.json`. Its time ratio is never judged.
"""

import json
from pathlib import Path
from typing import Any

CEILINGS = Path(__file__).resolve().parent / "guard.json"


def check(results: dict[str, Any]) -> dict[str, Any]:
    """{"passed": bool, "checks": [...]}; a run without the calls stage fails the guard."""
    ceilings: dict[str, Any] = json.loads(CEILINGS.read_text(encoding="utf-8"))
    calls = results.get("calls")
    if not calls:
        failed = {"name": "calls stage ran", "passed": False, "value": None, "limit": "required"}
        return {"passed": False, "checks": [failed]}
    capture = calls["capture"]["calls_per_request"]
    exactly_one = (
        calls["accepted"] > 0
        and capture["min"] == capture["max"] == 1
        and calls["capture"]["requests_not_exactly_one_call"] == 0
    )
    wru = round(calls["per_opt_out"]["wru"], 3)
    # The seeded workload's mix of clusters depends on its size: one ceiling per request count.
    ceiling = ceilings["wru_per_opt_out_max"].get(str(calls["requests"]))
    checks = [
        {
            "name": "capture: AWS calls per accepted request",
            "passed": exactly_one,
            "value": {"min": capture["min"], "max": capture["max"], "accepted": calls["accepted"]},
            "limit": "exactly 1",
        },
        {
            "name": "DynamoDB WRU per opt-out",
            "passed": ceiling is not None and wru <= ceiling,
            "value": wru,
            "limit": ceiling if ceiling is not None else f"none for {calls['requests']} requests",
        },
    ]
    if imported := results.get("import"):  # only when the stage ran (not in make bench-quick)
        checks += _import_checks(imported, ceilings)
    return {"passed": all(c["passed"] for c in checks), "checks": checks}


def _import_checks(imported: dict[str, Any], ceilings: dict[str, Any]) -> list[dict[str, Any]]:
    """Per row, at every size: AWS calls (a call per row instead of per batch is about x10)
    and estimated write units. Never the time ratio: that moves with the machine."""
    calls_max, wru_max = ceilings["import_calls_per_row_max"], ceilings["import_wru_per_row_max"]
    checks = []
    for size in imported["sizes"]:
        rows = f"{size['rows']:,} rows"
        checks.append({"name": f"import: AWS calls per row, {rows}",
                       "passed": size["aws_calls_per_row"] <= calls_max,
                       "value": size["aws_calls_per_row"], "limit": calls_max})  # fmt: skip
        checks.append({"name": f"import: DynamoDB WRU per row, {rows}",
                       "passed": size["wru_per_row"] <= wru_max,
                       "value": size["wru_per_row"], "limit": wru_max})  # fmt: skip
    return checks


def describe(outcome: dict[str, Any]) -> str:
    lines = []
    for c in outcome["checks"]:
        mark = "ok  " if c["passed"] else "FAIL"
        lines.append(f"guard {mark} {c['name']}: {c['value']} (limit {c['limit']})")
    return "\n".join(lines)
