"""The bench's import stage: its arithmetic, its rows in the table and its guard checks, on made
up totals (no moto, no import run, no timing)."""

from pathlib import Path
from typing import Any

from bench import guard, imports, report
from bench.counting import Tally
from optout_cli import csv_import


def size(
    rows: int, cpu_s: float, wall_s: float, calls: int = 0, wru: float = 0.0
) -> dict[str, Any]:
    tally = Tally()
    tally.calls.update(
        {"dynamodb:BatchGetItem": calls // 9, "dynamodb:BatchWriteItem": calls - calls // 9}
    )
    tally.wru = wru
    answered = {"stored": rows, "duplicates": 0, "rejected": 0, "batches": rows // 100}
    # moto's and the counter's CPU (1 s and 0.5 s of it) are not the import's own
    return imports.figures(rows, wall_s, cpu_s + 1.5, 1.0, 0.5, tally, answered)


def test_a_size_gives_rows_a_second_and_its_own_cpu_and_calls_per_row() -> None:
    s = size(5_000, cpu_s=5.0, wall_s=20.0, calls=540, wru=11_150.0)
    assert (s["rows_per_second"], s["wall_us_per_row"]) == (250.0, 4000.0)
    assert s["cpu_us_per_row"] == 1000.0  # 6.5 s of CPU less 1.5 s of moto and counter
    assert (s["aws_calls_per_row"], s["wru_per_row"]) == (0.108, 2.23)


def test_the_ratio_is_the_larger_sizes_time_per_row_over_the_smallers() -> None:
    linear = imports.summarise([size(5_000, 5.0, 20.0), size(50_000, 50.0, 200.0)])
    assert linear["ratio"] == {"rows": "50000 / 5000", "cpu_per_row": 1.0, "wall_per_row": 1.0}
    quadratic = imports.summarise([size(5_000, 5.0, 20.0), size(50_000, 500.0, 2_000.0)])
    assert (quadratic["ratio"]["cpu_per_row"], quadratic["ratio"]["wall_per_row"]) == (10.0, 10.0)


def test_the_table_prints_a_row_per_size_and_the_ratio() -> None:
    results = {"import": imports.summarise([size(1_000, 1.0, 4.0, 106, 2230.0),
                                            size(10_000, 11.0, 44.0, 1069, 22300.0)])}  # fmt: skip
    lines = [r for r in report.rows(results) if r[0].startswith("import:")]
    assert [r[0] for r in lines] == [
        "import: `optout import` of 1,000 rows, CLI -> admin -> moto",
        "import: `optout import` of 10,000 rows, CLI -> admin -> moto",
        "import: per-row time, 10,000 vs 1,000 rows",
    ]
    assert lines[0][1] == "250 rows/s, 1.00 ms CPU per row outside moto"
    assert lines[2][1] == "x1.10 CPU outside moto"


def calls_stage_ok() -> dict[str, Any]:
    one = {"min": 1, "max": 1, "mean": 1.0}
    return {"requests": 150, "accepted": 3, "per_opt_out": {"wru": 9.0},
            "capture": {"calls_per_request": one, "requests_not_exactly_one_call": 0}}  # fmt: skip


def test_the_guard_judges_the_imports_counts_per_row_and_never_its_ratio() -> None:
    # A tenfold time ratio with calls and writes per row as measured: passes
    slow = imports.summarise([size(1_000, 1.0, 4.0, 106, 2230.0),
                              size(10_000, 100.0, 400.0, 1069, 22300.0)])  # fmt: skip
    outcome = guard.check({"calls": calls_stage_ok(), "import": slow})
    assert outcome["passed"] is True
    assert [c["name"] for c in outcome["checks"][2:]] == [
        "import: AWS calls per row, 1,000 rows", "import: DynamoDB WRU per row, 1,000 rows",
        "import: AWS calls per row, 10,000 rows", "import: DynamoDB WRU per row, 10,000 rows",
    ]  # fmt: skip
    # A call per row instead of per batch fails it, at any speed
    chatty = imports.summarise([size(1_000, 1.0, 4.0, 1_106, 2230.0),
                                size(10_000, 10.0, 40.0, 11_069, 22300.0)])  # fmt: skip
    failed = guard.check({"calls": calls_stage_ok(), "import": chatty})
    assert failed["passed"] is False
    assert [c["passed"] for c in failed["checks"][2:]] == [False, True, False, True]
    # A run without the stage is judged on the calls stage alone, as before
    assert [c["name"] for c in guard.check({"calls": calls_stage_ok()})["checks"]] == [
        "capture: AWS calls per accepted request", "DynamoDB WRU per opt-out"]  # fmt: skip


def test_the_seeded_csv_is_one_the_cli_takes_with_one_bad_row_in_a_hundred(tmp_path: Path) -> None:
    source = tmp_path / "history.csv"
    assert imports.write_csv(source, 300) == 3
    assert csv_import.count_rows(source) == 300
    batches = [b for b, _, refused in csv_import._batches(source, 1) if b or refused]
    assert sum(len(b) for b in batches) == 300 and all(len(b) <= 100 for b in batches)
