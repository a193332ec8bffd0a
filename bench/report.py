"""The results as a plain-text table (stdout) and as JSON (bench/results/latest.json)."""

import json
import platform
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from bench import goals

Row = tuple[str, str, str]


def rows(results: dict[str, Any]) -> list[Row]:
    found: list[Row] = []
    if calls := results.get("calls"):
        cap = calls["capture"]["calls_per_request"]
        found.append((f"capture: AWS calls per accepted request ({calls['accepted']} of "
                      f"{calls['requests']})", f"mean {cap['mean']:.2f}, max {cap['max']}",
                      "target 1"))  # fmt: skip
        res = calls["resolver"]
        for size, b in res["by_cluster_size"].items():
            found.append((f"resolver: per event, cluster size {size} ({b['events']} events)",
                          f"{b['reads_per_event']:.2f} reads, {b['writes_per_event']:.2f} writes",
                          f"{b['messages_per_event']:.2f} jobs queued"))  # fmt: skip
        flush = res["flush_per_event"]
        found.append((f"resolver: batch flush, per event ({res['stream_batches']} batches)",
                      f"{flush['send_message_batch']:.2f} SendMessageBatch",
                      f"{flush['writes']:.2f} state writes"))  # fmt: skip
        found.append(("resolver: messages per SendMessageBatch call",
                      f"{res['messages_per_send_message_batch']:.2f}", "limit 10"))  # fmt: skip
        for system, w in calls["workers"].items():
            found.append(
                (
                    f"worker {system}: per job ({w['jobs']} jobs, {w['invocations']} inv.)",
                    f"{w['dynamodb_calls_per_job']:.2f} DynamoDB",
                    f"{w['vendor_calls_per_job']:.2f} vendor HTTP, waited as "
                    f"{w.get('vendor_waits_per_job', w['vendor_calls_per_job']):.2f}",
                )
            )
        per = calls["per_opt_out"]
        found.append(("all functions: per opt-out", f"{per['dynamodb_calls']:.2f} DynamoDB calls",
                      f"{per['wru']:.2f} WRU, {per['rru']:.2f} RRU"))  # fmt: skip
        if kinds := per.get("wru_by_item_kind"):
            found.append(("all functions: WRU per opt-out by item kind",
                          f"{sum(kinds.values()):.2f} WRU",
                          ", ".join(f"{k} {v:.2f}" for k, v in kinds.items())))  # fmt: skip
    if lat := results.get("latency"):
        h, b = lat["handler_ms"], lat["put_item_ms"]
        found.append(
            (
                "capture handler vs bare put_item, median (ms)",
                f"{h['median']:.2f} vs {b['median']:.2f}",
                f"x{lat['ratio']['median']:.2f}",
            )
        )
        found.append(
            (
                "capture handler vs bare put_item, p99 (ms)",
                f"{h['p99']:.2f} vs {b['p99']:.2f}",
                f"x{lat['ratio']['p99']:.2f}",
            )
        )
        if seen := lat.get("gc_collections"):  # runs before part G did not count them
            windows = [seen["handler"], seen["put_item"]]
            found.append(
                (
                    "capture handler vs bare put_item, gc collections in their windows",
                    " vs ".join("/".join(str(w[f"gen{g}"]) for g in range(3)) for w in windows),
                    "generations 0/1/2, paid by the call that crossed the threshold",
                )
            )
    if cold := results.get("cold_start"):
        for name, c in cold["functions"].items():
            found.append(
                (
                    f"cold start: {name} import+init (median of {cold['repeats']})",
                    f"{c['total_ms']:.0f} ms",
                    f"x{c['ratio_to_boto3']:.2f} boto3; CPU {c['cpu_ms']:.0f} ms, "
                    f"x{c['cpu_ratio_to_boto3']:.2f}",
                )
            )
            if "first_request_ms" in c:
                found.append(
                    (
                        f"cold start: {name} first request (median of {cold['repeats']})",
                        f"{c['first_request_ms']:.0f} ms",
                        "a banner opt-out, its PutItem stubbed",
                    )
                )
            if "first_batch_ms" in c:
                found.append(
                    (
                        f"cold start: {name} first batch (median of {cold['repeats']})",
                        f"{c['first_batch_ms']:.0f} ms",
                        FIRST_BATCH_DETAIL.get(name, "its AWS calls stubbed"),
                    )
                )
    if e2e := results.get("local_e2e"):
        t = e2e["post_to_last_receipt_s"]
        mix = ", ".join(f"{k} {v}" for k, v in e2e["mix"].items())
        found.append((f"local stack: {e2e['requests']} mixed opt-outs ({mix})",
                      f"{e2e['accepted_per_second']} accepted/s",
                      f"{e2e['completed_per_second']} completed/s, "
                      f"{e2e['systems_per_request_mean']} systems per request"))  # fmt: skip
        found.append(("local stack: POST -> last receipt (s)",
                      f"p50 {t['median']:.2f}, p95 {t['p95']:.2f}, p99 {t['p99']:.2f}",
                      f"{e2e['completed']} completed, {e2e['timed_out']} timed out"))  # fmt: skip
        idle = ", ".join(f"{k} {v:.2f}" for k, v in e2e["idle_baseline_s"]["per_kind"].items())
        found.append(("local stack: one request alone on the idle stack (s)", idle,
                      "the same run's baseline"))  # fmt: skip
    if scale := results.get("scale"):
        for s in scale["sizes"]:
            of_medians = s.get("ratio_of_medians", s["ratio_to_baseline"])
            found.append((f"scale: resolver per event, {s['identities']:,} identities",
                          f"{s['ms_per_event_median']:.1f} ms CPU, "
                          f"{s['aws_calls_per_event']} calls",
                          f"x{s['ratio_to_baseline']:.2f} a {s['baseline_identities']:,}-identity "
                          f"graph, median of {s['events']} pairs (medians "
                          f"{s['baseline_ms_per_event_median']:.1f} ms, "
                          f"x{of_medians:.2f})"))  # fmt: skip
    if imported := results.get("import"):
        for s in imported["sizes"]:
            found.append((f"import: `optout import` of {s['rows']:,} rows, CLI -> admin -> moto",
                          f"{s['rows_per_second']:.0f} rows/s, {s['cpu_us_per_row'] / 1000:.2f} ms "
                          "CPU per row outside moto",
                          f"{s['aws_calls_per_row']:.3f} AWS calls, {s['wru_per_row']:.2f} WRU per "
                          f"row; {s['batches']} batches, {s['rejected']} rejected"))  # fmt: skip
        r, first, last = imported["ratio"], imported["sizes"][0], imported["sizes"][-1]
        found.append((f"import: per-row time, {last['rows']:,} vs {first['rows']:,} rows",
                      f"x{r['cpu_per_row']:.2f} CPU outside moto",
                      f"x{r['wall_per_row']:.2f} wall (moto included); linear reads x1.0, "
                      "quadratic about x10"))  # fmt: skip
    if cost := results.get("cost"):
        d = cost["dollars_per_million_opt_outs"]
        biggest = ", ".join(f"{k} {v:.2f}" for k, v in sorted(d.items(), key=lambda kv: -kv[1])[:3])
        found.append(
            (
                f"cost: USD per million opt-outs (prices checked {cost['checked_on']})",
                f"{cost['total_dollars_per_million_opt_outs']:.2f}",
                biggest,
            )
        )
        if pace := cost.get("vendor_pace"):
            waits = {n: s for n, s in pace["by_system"].items() if s["seconds_per_opt_out"] > 0}
            found.append((
                "cost: vendor pace wait on AWS (shipped rates), per opt-out",
                f"USD/M {pace['usd_per_million_opt_outs']:.2f}, "
                f"{pace['seconds_per_opt_out']:.3f} s",
                ", ".join(f"{n} {s['usd_per_million_opt_outs']:.2f} ({s['seconds_per_opt_out']:.3f}"
                          " s)" for n, s in waits.items()) or "no wait",
            ))  # fmt: skip
        for stage, figures in cost["by_stage"].items():
            q = figures["per_opt_out"]
            found.append((f"cost by stage: {stage}, per opt-out",
                          f"{q['wru']:.2f} WRU, {q['rru']:.2f} RRU, "
                          f"{q['lambda_gb_seconds']:.4f} GB-s",
                          f"{q['apigw_requests']:.2f} API GW, {q['lambda_requests']:.3f} Lambda, "
                          f"{q['sqs_requests']:.2f} SQS, {q['dynamodb_calls']:.2f} DynamoDB calls;"
                          f" USD/M {figures['usd_total']:.2f}"))  # fmt: skip
        if obs := cost.get("observability"):
            logged = sum(obs["log_bytes_per_opt_out"].values())
            at = obs["x_ray_usd_per_million_at"]
            found.append((
                "cost: logs and traces, per opt-out",
                f"{logged:,.0f} log bytes"
                + ("" if obs["logs_measured"] else " (handlers' own lines not counted)")
                + f", {obs['xray_traces_per_opt_out']:.3f} traces",
                f"at {obs['steady_opt_outs_per_second']:g} opt-outs/s; X-Ray USD/M at 1/s "
                f"{at['1']:.2f}, 10/s {at['10']:.2f}, 100/s {at['100']:.2f}",
            ))  # fmt: skip
            if lean := obs.get("lean_observability"):
                found.append((
                    "cost: with TracingMode=PassThrough, SystemLogLevel=WARN",
                    f"{lean['total_dollars_per_million_opt_outs']:.2f}",
                    "no X-Ray traces, no START/REPORT records; the rest as above",
                ))  # fmt: skip
        if edge := cost.get("with_edge"):
            found.append((
                "cost: with the edge (CloudFront + WAF, EnableEdge=true)",
                f"{edge['total_dollars_per_million_opt_outs']:.2f}",
                ", ".join(f"{k} {v:.2f}" for k, v in edge["dollars_per_million_opt_outs"].items()),
            ))  # fmt: skip
    return found


def table(results: dict[str, Any]) -> str:
    return _grid(HEADER, rows(results))


def goal_table(results: dict[str, Any]) -> str:
    return _grid(goals.HEADER, goals.goal_rows(results))


def _grid(header: tuple[str, ...], lines: Sequence[tuple[str, ...]]) -> str:
    widths = [max([len(h)] + [len(r[i]) for r in lines]) for i, h in enumerate(header)]
    out = [" | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))]
    out.append("-|-".join("-" * w for w in widths))
    out += [" | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in lines]
    return "\n".join(out)


HEADER = ("figure", "value", "baseline / ratio / detail")
FIRST_BATCH_DETAIL = {
    "resolver": "a banner opt-out's stream record, AWS calls stubbed",
    "worker": "its job message, AWS calls stubbed, vendor 200",
}


def write_json(results: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"python": sys.version.split()[0], "platform": platform.platform(),
                    "cpus": _cpus(), "load_average_1_5_15": _load()},
        **results,
    }  # fmt: skip
    path.write_text(json.dumps(document, indent=2, sort_keys=False) + "\n", encoding="utf-8")


def print_table(results: dict[str, Any], stream: IO[str]) -> None:
    stream.write("\n" + goal_table(results) + "\n\n" + table(results) + "\n")
    stream.flush()


def _load() -> list[float]:
    import os  # noqa: PLC0415

    return [round(x, 2) for x in os.getloadavg()]


def _cpus() -> int:
    import os  # noqa: PLC0415

    return os.cpu_count() or 0
