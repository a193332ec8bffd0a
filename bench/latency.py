"""Stage 2: the capture handler per request against a bare put_item of the same item.

Both run in this process on the same moto backend, interleaved request by request, so the
ratio isolates what the handler adds (validation, HMAC keys, evidence, logging, metrics,
response shaping) over the one write it must make. moto stands in for DynamoDB's network
time; the ratio, not the absolute milliseconds, is the figure to compare between runs.
"""

import gc
import time
import uuid
from collections import Counter
from typing import Any

from bench import workload
from bench.counting import CallCounter
from bench.pipeline import MotoPipeline
from bench.progress import Progress
from bench.stats import median, percentile, ratio

WARMUP = 20


class GcWindows:
    """Python's garbage collections counted by the timed window they started in, by
    generation. A collection is paid by whichever call's allocation crossed its threshold, and
    in this process moto's table grows by both writes of every pair, so its older generations
    are what the slowest answers of either side wait on (docs/performance.md, part G)."""

    def __init__(self, *names: str) -> None:
        self.counts: dict[str, Counter[int]] = {name: Counter() for name in names}
        # The window open now, or None: set around each timed call (a plain attribute, so
        # counting allocates nothing in or between the windows)
        self.open: str | None = None

    def __enter__(self) -> "GcWindows":
        gc.callbacks.append(self._seen)
        return self

    def __exit__(self, *_: object) -> None:
        gc.callbacks.remove(self._seen)

    def _seen(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start" and self.open is not None:
            self.counts[self.open][info["generation"]] += 1

    def as_dict(self) -> dict[str, dict[str, int]]:
        return {
            name: {f"gen{g}": counted[g] for g in range(3)} for name, counted in self.counts.items()
        }


def run(count: int, progress: Progress) -> dict[str, Any]:
    pipeline = MotoPipeline(CallCounter()).start(with_workers=False)
    try:
        return _measure(pipeline, count, progress)
    finally:
        pipeline.stop()


def _measure(pipeline: MotoPipeline, count: int, progress: Progress) -> dict[str, Any]:
    import boto3  # noqa: PLC0415

    kept: dict[str, Any] = {}

    def keep(params: dict[str, Any], **_: Any) -> None:
        kept["params"] = dict(params)

    session = boto3.DEFAULT_SESSION
    assert session is not None
    # Registered before the handler builds its client (on its first invocation).
    session.events.register("before-parameter-build.dynamodb.PutItem", keep)
    requests = [r for r in workload.requests(count + WARMUP, seed=11) if r.kind != "link"]
    handler_ms: list[float] = []
    bare_ms: list[float] = []
    with GcWindows("handler", "put_item") as collections:
        for n, request in enumerate(requests):
            event = workload.http_event(request)
            measured = n >= WARMUP
            collections.open = "handler" if measured else None
            started = time.perf_counter()
            answer = pipeline.post(event)
            elapsed = time.perf_counter() - started
            collections.open = None
            bare = _bare_put(kept, answer)
            collections.open = "put_item" if measured else None
            started = time.perf_counter()
            pipeline.dynamodb.put_item(**bare)
            bare_seconds = time.perf_counter() - started
            collections.open = None
            if measured:
                handler_ms.append(elapsed * 1000)
                bare_ms.append(bare_seconds * 1000)
            progress.tick("capture vs put_item", n + 1, len(requests))
    handler, bare_put = _summary(handler_ms), _summary(bare_ms)
    return {
        "requests": len(handler_ms),
        "handler_ms": handler,
        "put_item_ms": bare_put,
        "ratio": {k: round(ratio(handler[k], bare_put[k]), 2) for k in ("median", "p99")},
        "overhead_ms_median": round(median(handler_ms) - median(bare_ms), 3),
        # Collections started in each timed window, by generation (measured requests only)
        "gc_collections": collections.as_dict(),
    }


def _bare_put(kept: dict[str, Any], answer: Any) -> dict[str, Any]:
    """The handler's PutItem again: same item, a key that is free."""
    if answer["statusCode"] != 202:
        raise RuntimeError(f"capture refused a benchmark request: {answer['body']}")
    params = dict(kept["params"])
    item = dict(params["Item"])
    item["pk"] = {"S": f"REQ#{uuid.uuid4()}"}  # same item, a key that is free
    params["Item"] = item
    return params


def _summary(samples: list[float]) -> dict[str, float]:
    return {
        "median": round(median(samples), 3),
        "p95": round(percentile(samples, 95), 3),
        "p99": round(percentile(samples, 99), 3),
    }
