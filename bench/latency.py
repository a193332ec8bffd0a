"""Stage 2: the capture handler per request against a bare put_item of the same item.

Both run in this process on the same moto backend, interleaved request by request, so the
ratio isolates what the handler adds (validation, HMAC keys, evidence, logging, metrics,
response shaping) over the one write it must make. moto stands in for DynamoDB's network
time; the ratio, not the absolute milliseconds, is the figure to compare between runs.
"""

import time
import uuid
from typing import Any

from bench import workload
from bench.counting import CallCounter
from bench.pipeline import MotoPipeline
from bench.progress import Progress
from bench.stats import median, percentile, ratio

WARMUP = 20


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
    for n, request in enumerate(requests):
        event = workload.http_event(request)
        started = time.perf_counter()
        answer = pipeline.post(event)
        elapsed = time.perf_counter() - started
        if answer["statusCode"] != 202:
            raise RuntimeError(f"capture refused a benchmark request: {answer['body']}")
        params = dict(kept["params"])
        item = dict(params["Item"])
        item["pk"] = {"S": f"REQ#{uuid.uuid4()}"}  # same item, a key that is free
        params["Item"] = item
        started = time.perf_counter()
        pipeline.dynamodb.put_item(**params)
        bare = time.perf_counter() - started
        if n >= WARMUP:
            handler_ms.append(elapsed * 1000)
            bare_ms.append(bare * 1000)
        progress.tick("capture vs put_item", n + 1, len(requests))
    handler, bare_put = _summary(handler_ms), _summary(bare_ms)
    return {
        "requests": len(handler_ms),
        "handler_ms": handler,
        "put_item_ms": bare_put,
        "ratio": {k: round(ratio(handler[k], bare_put[k]), 2) for k in ("median", "p99")},
        "overhead_ms_median": round(median(handler_ms) - median(bare_ms), 3),
    }


def _summary(samples: list[float]) -> dict[str, float]:
    return {
        "median": round(median(samples), 3),
        "p95": round(percentile(samples, 95), 3),
        "p99": round(percentile(samples, 99), 3),
    }
