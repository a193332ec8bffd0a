"""`make soak` / `python -m soak [--count 2000] [--fault-rate 0.3] [--seed 7]`.

Starts the local stack, makes every vendor sandbox (and the UID2 operator) fail a share of its
calls with throttling (429 faults, each in its vendor's own shape: Salesforce 403, Meta 400),
503 and timeouts, sends `--count` opt-outs of every kind, and checks that none is lost: every
request completes, every job is done with its attempts on the receipt, the DLQs are empty and
every vendor received every identifier it accepts. Then one
system refuses everything with a permanent 400: its jobs fail, their requests show failed, the
rest complete; with the fault cleared, the operator replay completes them. Prints the figures,
writes them to artifacts/soak/latest.json, and exits 1 if any check failed.
"""

import argparse
import json
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from optout.systems import SystemConfig, load_systems
from soak import checks, driver
from soak.checks import Findings
from soak.stack import ROOT, Stack, start
from soak.workload import OptOut, workload

SYSTEMS = ROOT / "local" / "systems.json"
OUT = ROOT / "artifacts" / "soak" / "latest.json"
FAULTS = [429, 503, "timeout"]


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m soak", description=__doc__)
    parser.add_argument("--count", type=int, default=2000, help="opt-outs under faults")
    parser.add_argument("--fault-rate", type=float, default=0.3, help="share of calls failing")
    parser.add_argument("--seed", type=int, default=7, help="the sandboxes' fault draws")
    parser.add_argument("--refusing", default="braze", help="the system answering 400 in phase 2")
    parser.add_argument("--deadline", type=float, help="seconds per phase (default from count)")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--quiet", action="store_true")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    progress = driver.Progress(args.quiet)
    stack = start(SYSTEMS, args.out.parent)
    progress.note(f"local stack on {stack.url} (log {stack.log_path})")
    env = {"LOCAL_STACK_URL": stack.url, "OPTOUT_LOCAL_MODE": "true"}
    systems = list(load_systems(SYSTEMS, env).systems)
    findings = Findings()
    figures: dict[str, Any] = {"count": args.count, "fault_rate": args.fault_rate}
    try:
        phase_faults(stack, systems, args, progress, findings, figures)
        phase_refusal(stack, systems, args, progress, findings, figures)
    finally:
        figures["stack_exit_code"] = stack.stop()
    figures["duration_s"] = round(progress.elapsed(), 1)
    # The reconciliation sweep runs in the stack too; what it re-drove, it logged.
    log = stack.log_path.read_text(encoding="utf-8", errors="replace")
    figures["sweep_redrives"] = log.count("re-driven")
    figures["problems"] = findings.problems
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    print(table(figures))
    for problem in findings.problems[:50]:
        print(f"FAILED: {problem}")
    return 0 if findings.ok else 1


def phase_faults(
    stack: Stack,
    systems: list[SystemConfig],
    args: argparse.Namespace,
    progress: driver.Progress,
    findings: Findings,
    figures: dict[str, Any],
) -> None:
    names = sandboxes(systems)
    for n, name in enumerate(names):
        plan = {"rate": args.fault_rate, "statuses": FAULTS, "retry_after": 1,
                "hold_seconds": 1.5, "seed": args.seed + n}  # fmt: skip
        driver.set_faults(stack, name, plan)
    progress.note(f"phase 1: {args.count} opt-outs, {args.fault_rate:.0%} of vendor calls fail")
    started = time.monotonic()
    items = workload(0, args.count)
    ids, seen = send_and_settle(stack, items, args, progress, findings,
                                lambda: driver.faults_injected(stack, names))  # fmt: skip
    figures["phase1_seconds"] = round(time.monotonic() - started, 1)
    statuses = Counter(seen.get(r, {}).get("status", "never read") for r in ids)
    for request_id in ids:
        status = seen.get(request_id, {}).get("status")
        findings.expect(status == "completed", f"request {request_id} ended {status}")
    jobs = all_jobs(stack, ids, findings)
    for system, job in jobs:
        findings.expect(job["status"] in checks.DONE, f"{system} job ended {job['status']}")
        findings.expect(int(job.get("attempts") or 0) >= 1, f"{system} job with no attempt")
        receipt = job.get("receipt") or {}
        findings.expect(bool(receipt.get("completed_at")), f"{system} job without a receipt")
    queues = stack.call("GET", "/_local/queues")[1] or {}
    findings.problems.extend(checks.queue_problems(queues))
    findings.problems.extend(vendor_gaps(stack, systems, items))
    attempts = [int(job.get("attempts") or 0) for _, job in jobs]
    faults = driver.fault_reports(stack, names)
    injected: Counter[str] = Counter()
    for report in faults.values():
        injected.update(report.get("injected", {}))
    figures["phase1"] = {
        "opt_outs": len(items),
        "requests": len(ids),
        "refused": sum(len(i.refused) for i in items),
        "statuses": dict(statuses),
        "lost": sum(n for s, n in statuses.items() if s not in checks.FINAL),
        "jobs": len(jobs),
        "jobs_by_status": dict(Counter(job["status"] for _, job in jobs)),
        "jobs_by_system": dict(Counter(system for system, _ in jobs)),
        "attempts": sum(attempts),
        "attempts_retried": sum(a - 1 for a in attempts if a > 1),
        "jobs_retried": sum(1 for a in attempts if a > 1),
        "most_attempts": max(attempts, default=0),
        "vendor_calls": sum(int(r.get("calls", 0)) for r in faults.values()),
        "faults_injected": dict(injected),
        "dlq_messages": dead_letters(queues),
    }


def send_and_settle(
    stack: Stack,
    items: list[OptOut],
    args: argparse.Namespace,
    progress: driver.Progress,
    findings: Findings,
    faults: Callable[[], int] | None = None,
) -> tuple[list[str], dict[str, dict[str, Any]]]:
    """Send the opt-outs, then wait (one phase's deadline) until each accepted request is final:
    the accepted request ids and the last status read of each."""
    started = time.monotonic()
    driver.send(stack, items, progress)
    ids = accepted(items, findings)
    final = lambda status: status in checks.FINAL  # noqa: E731
    return ids, driver.wait_for(stack, ids, final, deadline(args, started), progress, faults)


def phase_refusal(
    stack: Stack,
    systems: list[SystemConfig],
    args: argparse.Namespace,
    progress: driver.Progress,
    findings: Findings,
    figures: dict[str, Any],
) -> None:
    refusing = args.refusing
    count = max(12, args.count // 10)
    progress.note(f"phase 2: {count} opt-outs while {refusing} answers every call with 400")
    driver.set_faults(stack, refusing, {"rate": 1.0, "status": 400})
    started = time.monotonic()
    items = workload(args.count, count)
    ids, seen = send_and_settle(stack, items, args, progress, findings)
    views = driver.details(stack, ids)
    refused_requests = [r for r in ids if refusing in systems_of(views.get(r, {}))]
    for request_id in ids:
        status = seen.get(request_id, {}).get("status")
        wanted = "failed" if request_id in refused_requests else "completed"
        findings.expect(status == wanted, f"phase 2: request {request_id} {status}, not {wanted}")
        for view in checks.job_views(views.get(request_id, {})):
            if view["system"] == refusing:
                receipt = view.get("receipt") or {}
                findings.expect(
                    view["status"] == "failed" and receipt.get("http_status") == 400,
                    f"phase 2: {refusing} job {view['status']} ({receipt.get('http_status')})",
                )
            else:
                findings.expect(view["status"] in checks.DONE,
                                f"phase 2: {view['system']} job {view['status']}")  # fmt: skip
    figures["phase2"] = {"opt_outs": len(items), "requests": len(ids),
                         "failed_requests": len(refused_requests),
                         "seconds_to_fail": round(time.monotonic() - started, 1)}  # fmt: skip
    progress.note(f"phase 2: fault cleared, operator replay of {refusing}")
    driver.set_faults(stack, refusing, {"rate": 0})
    queues = stack.call("GET", "/_local/queues")[1] or {}
    for name, counts in queues.items():  # DLQ messages back to work, if any
        if name.endswith("-dlq") and counts.get("visible"):
            stack.call("POST", f"/_local/queues/{name}/redrive")
    started = time.monotonic()
    status, answer = stack.call("POST", f"/v1/admin/systems/{refusing}/replay", signed=True)
    findings.expect(status == 202, f"replay answered {status}: {answer}")
    seen = driver.wait_for(stack, refused_requests, lambda s: s == "completed",
                           deadline(args, started), progress)  # fmt: skip
    for request_id in refused_requests:
        status = seen.get(request_id, {}).get("status")
        findings.expect(status == "completed", f"after replay: request {request_id} {status}")
    after = driver.details(stack, refused_requests)
    replayed = [v for r in refused_requests for v in checks.job_views(after.get(r, {}))
                if v["system"] == refusing]  # fmt: skip
    findings.expect(all(v["status"] in checks.DONE for v in replayed), "replayed jobs not done")
    config = next(s for s in systems if s.name == refusing)
    phase2_items = [i for i in items if set(i.request_ids) & set(refused_requests)]
    tokens = checks.received_tokens(driver.sandbox_calls(stack, refusing))
    gaps = checks.missing_deliveries(config, phase2_items, tokens)
    findings.problems.extend(f"after replay, {refusing} never received {g}" for g in gaps)
    queues = stack.call("GET", "/_local/queues")[1] or {}
    findings.problems.extend(checks.queue_problems(queues))
    figures["phase2"] |= {"replayed_jobs": len(replayed),
                          "completed_after_replay": sum(1 for r in refused_requests
                                                        if seen.get(r, {}).get("status")
                                                        == "completed"),
                          "seconds_to_replay": round(time.monotonic() - started, 1)}  # fmt: skip


def sandboxes(systems: list[SystemConfig]) -> list[str]:
    """Every system's sandbox, and the UID2 operator The Trade Desk maps through."""
    names = [s.name for s in systems]
    return names + (["uid2"] if any(s.type == "trade_desk" for s in systems) else [])


def accepted(items: list[OptOut], findings: Findings) -> list[str]:
    for item in items:
        findings.expect(not item.refused, f"{item.kind} #{item.n}: refused {item.refused}")
    return [r for item in items for r in item.request_ids]


def deadline(args: argparse.Namespace, started: float) -> float:
    seconds = float(args.deadline or max(600.0, 1.5 * args.count))
    return started + seconds


def all_jobs(stack: Stack, ids: list[str], findings: Findings) -> list[tuple[str, dict[str, Any]]]:
    views = driver.details(stack, ids)
    jobs: list[tuple[str, dict[str, Any]]] = []
    for request_id in ids:
        view = views.get(request_id)
        findings.expect(bool(view), f"no operator record of request {request_id}")
        jobs.extend((job["system"], job) for job in checks.job_views(view or {}))
    return jobs


def systems_of(view: dict[str, Any]) -> set[str]:
    return {job["system"] for job in checks.job_views(view)}


def vendor_gaps(stack: Stack, systems: list[SystemConfig], items: list[OptOut]) -> list[str]:
    gaps = []
    for system in systems:
        tokens = checks.received_tokens(driver.sandbox_calls(stack, system.name))
        missing = checks.missing_deliveries(system, items, tokens)
        gaps += [f"{system.name} never received {m}" for m in missing[:20]]
        if len(missing) > 20:
            gaps.append(f"{system.name}: {len(missing) - 20} more identifiers never received")
    return gaps


def dead_letters(queues: dict[str, dict[str, int]]) -> int:
    return sum(
        sum(counts.values())
        for name, counts in queues.items()
        if name.endswith("-dlq") or "Failure" in name
    )


def table(figures: dict[str, Any]) -> str:
    one = figures.get("phase1", {})
    two = figures.get("phase2", {})
    injected = one.get("faults_injected", {})
    faults = ", ".join(f"{k}: {v}" for k, v in sorted(injected.items()))
    attempts = f"{one.get('attempts')} / {one.get('attempts_retried')} ({one.get('jobs_retried')})"
    problems = figures.get("problems") or []
    verdict = f"{len(problems)} FAILED" if problems else "all passed"
    rows = [
        ("opt-outs under faults (requests)", f"{one.get('opt_outs')} ({one.get('requests')})"),
        ("jobs (by status)", f"{one.get('jobs')} {one.get('jobs_by_status')}"),
        ("vendor calls / faults injected", f"{one.get('vendor_calls')} / {faults}"),
        ("delivery attempts / retried attempts (jobs retried)", attempts),
        ("lost / DLQ messages", f"{one.get('lost')} / {one.get('dlq_messages')}"),
        ("sweep runs that re-drove something", f"{figures.get('sweep_redrives')}"),
        ("phase 1 seconds", f"{figures.get('phase1_seconds')}"),
        (
            "refusing system: requests failed, then completed after replay",
            f"{two.get('failed_requests')} -> {two.get('completed_after_replay')}",
        ),
        ("total seconds", f"{figures.get('duration_s')}"),
        ("checks", verdict),
    ]
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)


if __name__ == "__main__":
    sys.exit(main())
