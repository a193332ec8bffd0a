"""`make bench` / `python -m bench [--quick] [--guard] [--only calls,latency,...]`.

Runs the stages in order, shows progress on stderr, prints issue 16's goal table and the
detailed table on stdout and writes every figure to bench/results/latest.json (or --out).
Figures are ratios to baselines measured in the same run. Nothing here passes or fails on a
time: `--guard` (what CI runs, `make bench-quick`) fails only on counts (bench/guard.py).
"""

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

from bench import environment, report
from bench.progress import Progress

STAGES = ("calls", "latency", "cold", "e2e", "scale", "import", "cost")
RESULTS = Path(__file__).resolve().parent / "results"


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller counts (about a minute)")
    parser.add_argument("--only", default=",".join(STAGES), help=f"comma list of {STAGES}")
    parser.add_argument("--out", type=Path, default=RESULTS / "latest.json")
    parser.add_argument("--requests", type=int, help="stage 1 requests (default 1000)")
    parser.add_argument(
        "--guard", action="store_true", help="exit 1 when a count exceeds bench/guard.json"
    )
    args = parser.parse_args(argv)
    args.only = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = set(args.only) - set(STAGES)
    if unknown:
        parser.error(f"unknown stage(s): {', '.join(sorted(unknown))}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    environment.prepare()  # from here on stdout is the handlers' sink; the table uses the real one
    quick = args.quick
    progress = Progress()
    results: dict[str, Any] = {"quick": quick, "timings_s": {}, "load_average_at": {}}
    for stage in args.only:
        progress.stage(f"stage: {stage}")
        # Other work on the machine moves absolute times: keep its load beside the figures.
        results["load_average_at"][stage] = [round(x, 2) for x in os.getloadavg()]
        started = time.monotonic()
        results.update(_run(stage, quick, args, progress, results))
        results["timings_s"][stage] = round(time.monotonic() - started, 1)
    sys.stderr.write("\n")
    if args.guard:
        from bench import guard  # noqa: PLC0415

        results["guard"] = guard.check(results)
    report.write_json(results, args.out)
    report.print_table(results, environment.real_stdout)
    environment.real_stdout.write(f"\nwritten: {args.out}\n")
    if args.guard:
        from bench import guard  # noqa: PLC0415

        environment.real_stdout.write(guard.describe(results["guard"]) + "\n")
        return 0 if results["guard"]["passed"] else 1
    return 0


def _run(
    stage: str, quick: bool, args: argparse.Namespace, progress: Progress, done: dict[str, Any]
) -> dict[str, Any]:
    # Imports per stage: `--only cold` should not pay for moto.
    if stage == "calls":
        from bench import calls  # noqa: PLC0415

        return {"calls": calls.run(args.requests or (150 if quick else 1000), progress)}
    if stage == "latency":
        from bench import latency  # noqa: PLC0415

        return {"latency": latency.run(150 if quick else 1000, progress)}
    if stage == "cold":
        from bench import cold_start  # noqa: PLC0415

        return {"cold_start": cold_start.run(3 if quick else 10, progress)}
    if stage == "e2e":
        from bench import local_e2e  # noqa: PLC0415

        count, deadline = (100, 120.0) if quick else (1000, 600.0)
        return {"local_e2e": local_e2e.run(count, deadline, progress, RESULTS)}
    if stage == "scale":
        from bench import scale  # noqa: PLC0415

        sizes = [1_000, 10_000] if quick else [1_000, 10_000, 100_000]
        return {"scale": scale.run(sizes, 20 if quick else 100, progress)}
    if stage == "import":
        from bench import imports  # noqa: PLC0415

        return {"import": imports.run(imports.QUICK_SIZES if quick else imports.SIZES, progress)}
    from bench import cost  # noqa: PLC0415

    if "calls" not in done:
        progress.note("cost needs the calls stage: skipped")
        return {}
    return {"cost": cost.model(done["calls"], done.get("latency"), done.get("cold_start"))}


if __name__ == "__main__":
    sys.exit(main())
