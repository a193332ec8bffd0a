"""Stage 1: AWS calls per opt-out, per stage and per downstream system (moto, in-process)."""

import time
from collections import Counter, defaultdict
from typing import Any

from bench import environment, workload
from bench.counting import CallCounter, Tally, emulator_seconds
from bench.pipeline import MotoPipeline, Resolved
from bench.progress import Progress
from local import moto_guard, moto_transactions

CLUSTER_BUCKETS = ((1, 1), (2, 2), (3, 4), (5, 8), (9, 10_000))


def run(count: int, progress: Progress) -> dict[str, Any]:
    counter = CallCounter()
    pipeline = MotoPipeline(counter).start()
    # moto's Query scans the whole table; scoped to the partition, the resolver's measured
    # time (used by the cost model) is the resolver's, not the emulator's growing scan.
    moto_guard.install()
    # moto copies the whole table on every TransactWriteItems; without this the resolver's
    # measured time (and so its Lambda cost) grew with everything stored before it.
    moto_transactions.install()
    try:
        return _measure(pipeline, counter, count, progress)
    finally:
        moto_transactions.uninstall()
        pipeline.stop()


def _measure(
    pipeline: MotoPipeline, counter: CallCounter, count: int, progress: Progress
) -> dict[str, Any]:
    requests = workload.requests(count)
    logs_before = _log_snapshot()
    per_request: list[tuple[str, int, Tally]] = []
    for n, request in enumerate(requests):
        with counter.stage("capture") as tally:
            answer = pipeline.post(workload.http_event(request))
        per_request.append((request.kind, answer["statusCode"], tally))
        progress.tick("capture", n + 1, count)
    started, emulated = time.perf_counter(), emulator_seconds()
    resolved = pipeline.resolve_new()
    resolve_seconds = time.perf_counter() - started
    resolve_emulated = emulator_seconds() - emulated
    progress.note(f"resolved {len(resolved)} events in {resolve_seconds:.1f}s")
    started, emulated = time.perf_counter(), emulator_seconds()
    batches = pipeline.deliver_all()
    deliver_seconds = time.perf_counter() - started
    deliver_emulated = emulator_seconds() - emulated
    progress.note(
        f"delivered {sum(len(b) for b in batches.values())} batches in {deliver_seconds:.1f}s"
    )
    accepted = [t for _, status, t in per_request if status == 202]
    return {
        "requests": count,
        "mix": dict(Counter(kind for kind, _, _ in per_request)),
        "accepted": len(accepted),
        "capture": _capture(accepted),
        "resolver": _resolver(resolved, pipeline.resolver_batches, resolve_seconds),
        "workers": _workers(batches, pipeline, counter),
        "esm": {name: counter.stages[name].as_dict() for name in ("esm:stream", "esm:sqs")},
        "stages": {name: tally.as_dict() for name, tally in sorted(counter.stages.items())},
        "per_opt_out": _per_opt_out(
            counter,
            pipeline,
            len(accepted),
            (resolve_seconds, resolve_emulated),
            (deliver_seconds, deliver_emulated),
        ),
        "logs": _logs(logs_before, len(accepted)),
    }


def _log_snapshot() -> dict[str, tuple[int, int]] | None:
    """What the functions have written so far, if their log output reaches the bench's sink
    (Powertools' Logger keeps the stream it found when the first handler was loaded)."""
    from optout.observability import logger  # noqa: PLC0415 - after the pipeline's prepare()

    sink = environment.log_sink()
    streams = {getattr(h, "stream", None) for h in logger.handlers}
    return sink.snapshot() if sink is not None and streams == {sink} else None


def _logs(before: dict[str, tuple[int, int]] | None, accepted: int) -> dict[str, Any] | None:
    """Log events and bytes the functions wrote (application logs and EMF metrics) per
    accepted opt-out, by billing stage; None when their output could not be counted."""
    after = _log_snapshot()
    if before is None or after is None:
        return None
    found = {stage: {"events": 0.0, "bytes": 0.0} for stage in ("capture", "resolver", "workers")}
    for label, (events, size) in after.items():
        stage = "workers" if label.startswith("worker-") else label
        if stage not in found:
            continue  # the bench's own output outside any handler
        was_events, was_bytes = before.get(label, (0, 0))
        found[stage]["events"] += (events - was_events) / max(1, accepted)
        found[stage]["bytes"] += (size - was_bytes) / max(1, accepted)
    return {"per_opt_out": found}


def _capture(accepted: list[Tally]) -> dict[str, Any]:
    per = [t.total() for t in accepted]
    return {
        "calls_per_request": {"min": min(per, default=0), "max": max(per, default=0),
                              "mean": sum(per) / max(1, len(per))},
        "requests_not_exactly_one_call": sum(1 for n in per if n != 1),
        "operations": dict(sum((t.calls for t in accepted), Counter())),
    }  # fmt: skip


def _resolver(resolved: list[Resolved], batches: list[Tally], seconds: float) -> dict[str, Any]:
    buckets: dict[str, list[Resolved]] = defaultdict(list)
    for r in resolved:
        low, high = next(b for b in CLUSTER_BUCKETS if b[0] <= max(1, r.cluster_size) <= b[1])
        buckets[
            f"{low}" if low == high else f"{low}-{min(high, 99)}" if high < 10_000 else f"{low}+"
        ].append(r)
    by_size = {
        label: {
            "events": len(rs),
            "reads_per_event": _mean(r.tally.reads() for r in rs),
            "writes_per_event": _mean(r.tally.writes() for r in rs),
            "send_message_batch_per_event": _mean(r.tally.of("SendMessageBatch") for r in rs),
            "messages_per_event": _mean(r.jobs for r in rs),
            "queries_per_event": _mean(r.tally.of("Query") for r in rs),
        }
        for label, rs in sorted(
            buckets.items(), key=lambda kv: int(kv[0].split("-")[0].rstrip("+"))
        )
    }
    total = Tally()  # the invocations': each event's own calls plus the batch's shared flush
    for batch in batches:
        total.add(batch)
    sends = total.of("SendMessageBatch")
    return {
        "events": len(resolved),
        "stream_batches": len(batches),
        "seconds": round(seconds, 3),
        "by_cluster_size": by_size,
        "operations": dict(total.calls),
        "messages_sent": total.sqs_messages,
        "send_message_batch_calls": sends,
        "messages_per_send_message_batch": total.sqs_messages / max(1, sends),
        "flush_per_event": {
            "send_message_batch": sends / max(1, len(resolved)),
            "writes": (total.writes() - sum(r.tally.writes() for r in resolved))
            / max(1, len(resolved)),
        },
    }


def _workers(
    batches: dict[str, list[Tally]], pipeline: MotoPipeline, counter: CallCounter
) -> dict[str, Any]:
    found: dict[str, Any] = {}
    vendor_calls = pipeline.vendor_calls()
    for system, tallies in sorted(batches.items()):
        total = counter.stages.get(f"worker:{system}", Tally())
        jobs = len(pipeline.worker_jobs.get(system, ()))
        found[system] = {
            "invocations": len(tallies),
            "jobs": jobs,
            "messages": pipeline.worker_messages.get(system, 0),
            "dynamodb_calls_per_job": total.total("dynamodb") / max(1, jobs),
            "vendor_calls_per_job": vendor_calls.get(system, 0) / max(1, jobs),
            # The same calls counted by the time the worker waited on them: calls made
            # together count once (calls x the measured union / the calls' summed durations).
            "vendor_waits_per_job": vendor_calls.get(system, 0)
            / max(1, jobs)
            * _overlap(
                pipeline.vendor_wait.get(system, 0.0), pipeline.vendor_busy.get(system, 0.0)
            ),
            # Invocations by the vendor requests each sent (HttpClient.send calls): the cost
            # model paces each invocation's requests at the shipped rates (bench/pace_cost.py).
            "vendor_calls_by_invocation": {
                str(k): n for k, n in sorted(pipeline.vendor_requests.get(system, {}).items())
            },
            "operations": dict(total.calls),
        }
    return found


def _per_opt_out(
    counter: CallCounter,
    pipeline: MotoPipeline,
    accepted: int,
    resolve: tuple[float, float],
    deliver: tuple[float, float],
) -> dict[str, Any]:
    """Totals divided by accepted requests: what the cost model multiplies by prices.
    `resolve`, `deliver`: each phase's seconds, and the seconds moto spent answering in it."""
    (resolve_seconds, resolve_emulated), (deliver_seconds, deliver_emulated) = resolve, deliver
    functions = Tally()
    for name, tally in counter.stages.items():
        if name == "capture" or name == "resolver" or name.startswith("worker:"):
            functions.add(tally)
    esm_sqs = counter.stages.get("esm:sqs", Tally())
    jobs = sum(len(found) for found in pipeline.worker_jobs.values())
    per = max(1, accepted)
    return {
        "dynamodb_calls": functions.total("dynamodb") / per,
        "wru": functions.wru / per,
        "wru_by_item_kind": {
            kind: units / per
            for kind, units in sorted(functions.wru_by_kind.items(), key=lambda kv: -kv[1])
        },
        "rru": functions.rru / per,
        "sqs_requests_functions": functions.total("sqs") / per,
        "sqs_requests_event_source": esm_sqs.total("sqs") / per,
        "jobs": jobs / per,
        "worker_invocations": sum(pipeline.worker_invocations.values()) / per,
        "resolver_ms_per_event_moto": 1000 * resolve_seconds / per,
        # The workers' own time: the vendor waits (the stand-in latency included) are priced
        # apart, per call and overlap (cost.py).
        "worker_ms_per_job_moto": 1000
        * max(0.0, deliver_seconds - sum(pipeline.vendor_wait.values()))
        / max(1, jobs),
        # Of those, moto answering the calls (the cost model takes it out of the compute).
        "resolver_ms_per_event_emulator": 1000 * resolve_emulated / per,
        "worker_ms_per_job_emulator": 1000 * deliver_emulated / max(1, jobs),
    }


def _overlap(wait: float, busy: float) -> float:
    """1.0 for calls one after another, 1/n for n calls entirely together."""
    return wait / busy if busy > 0 else 1.0


def _mean(values: Any) -> float:
    found = list(values)
    return round(sum(found) / len(found), 3) if found else 0.0
