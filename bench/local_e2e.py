"""Stage 4: a burst of mixed opt-outs through the whole local stack, and POST -> last receipt.

The stack runs as a subprocess (`python -m local`) on a free 127.0.0.1 port, exactly as the
e2e tests start it. The requests are the bench's stated mix (`bench/workload.py`: banner, GPC,
webform, signed identity links) against the 7 systems of local/systems.json, posted from a few
client threads as fast as the stack accepts them. Each request is then polled until it is
`completed`: the time to its last receipt is the request's own `completed_at` minus the
client's clock at the POST (same machine, same clock), so the poll interval does not blur it.

The same run first sends one opt-out of each kind to the idle stack, one at a time: their
POST -> last receipt is the floor the stack's (scaled) batching windows set, the baseline the
burst's percentiles are read against. Bounded: N requests and a deadline; loopback only.
"""

import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from bench import workload
from bench.environment import SYSTEMS_CONFIG
from bench.progress import Progress
from bench.stats import median, percentile
from local.spawn import free_port, spawn, wait_ready

START_TIMEOUT = 60.0
CLIENTS = 8
POLL_SECONDS = 0.5
# Any SigV4 Authorization header makes the local front add the IAM authorizer block (it does
# not verify signatures); the links route refuses unsigned calls.
SIGNED = {"authorization": "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261129/us-east-1/"
          "execute-api/aws4_request, SignedHeaders=host, Signature=0"}  # fmt: skip


@dataclass(frozen=True)
class Posted:
    request_id: str
    kind: str
    sent: float  # client clock (epoch seconds) just before the POST


def run(count: int, deadline_seconds: float, progress: Progress, log_dir: Path) -> dict[str, Any]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = spawn(
        port, SYSTEMS_CONFIG, log_dir / f"local-stack-{port}.log", "--log-level", "WARNING"
    )
    try:
        problem = wait_ready(url, process, START_TIMEOUT)
        if problem is not None:
            raise RuntimeError(f"the local stack {problem}")
        progress.note(f"local stack up on {url}")
        return measure(url, count, deadline_seconds, progress)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)  # our own child's group, nothing else
            process.wait(5)


def measure(url: str, count: int, deadline_seconds: float, progress: Progress) -> dict[str, Any]:
    """The idle baseline, then the burst, against a stack already serving on `url`."""
    idle = _idle_baseline(url, deadline_seconds, progress)
    burst = workload.requests(count, seed=11)
    started = time.monotonic()
    with ThreadPoolExecutor(CLIENTS) as pool:
        posted = list(pool.map(lambda request: _post(url, request), burst))
    post_seconds = time.monotonic() - started
    progress.note(f"{count} accepted in {post_seconds:.1f}s")
    done, systems, pending = _await(url, posted, started + deadline_seconds, progress)
    first_post = min(p.sent for p in posted)
    last_receipt = max((p.sent + done[p.request_id] for p in posted if p.request_id in done),
                       default=first_post)  # fmt: skip
    latencies = list(done.values())
    return {
        "requests": count,
        "mix": {kind: sum(1 for p in posted if p.kind == kind) for kind in workload.MIX},
        "completed": len(done),
        "timed_out": pending,
        "client_threads": CLIENTS,
        "jobs": sum(systems),
        "systems_per_request_mean": round(sum(systems) / max(1, len(systems)), 2),
        "accepted_per_second": round(count / post_seconds, 1),
        "completed_per_second": round(len(done) / max(1e-9, last_receipt - first_post), 2),
        "post_to_last_receipt_s": _percentiles(latencies),
        "idle_baseline_s": idle,
    }


def _idle_baseline(url: str, deadline_seconds: float, progress: Progress) -> dict[str, Any]:
    """One request of each kind, alone on the idle stack: the floor of POST -> last receipt."""
    found: dict[str, float] = {}
    for request in workload.requests(40, seed=5):
        if request.kind in found:
            continue
        posted = _post(url, request)
        done, _, _ = _await(url, [posted], time.monotonic() + deadline_seconds, progress)
        if posted.request_id in done:
            found[request.kind] = round(done[posted.request_id], 3)
        if len(found) == len(workload.MIX):
            break
    return {"per_kind": found, "max": max(found.values(), default=float("nan"))}


def _post(url: str, request: workload.Request) -> Posted:
    headers = {**request.headers, **(SIGNED if request.iam else {})}
    sent = time.time()
    status, answer = _json(url, "POST", request.path, request.body, headers)
    if status != 202 or not isinstance(answer, dict) or "request_id" not in answer:
        error = (answer or {}).get("error", {}) if isinstance(answer, dict) else {}
        raise RuntimeError(
            f"{request.kind} refused: {status} {error.get('code')} {error.get('field')}"
        )
    return Posted(str(answer["request_id"]), request.kind, sent)


def _await(
    url: str, posted: list[Posted], deadline: float, progress: Progress
) -> tuple[dict[str, float], list[int], int]:
    """Seconds from POST to last receipt per request, systems per request, and how many never
    completed. The probe barely loads the stack it measures (a GET is a Query there): requests
    are read in the order they were posted, one at a time; one that is not done yet is asked
    again after a pause, and once it is done the next ones are read straight away. So each
    request is read about once (the earlier probe re-read every pending request each pass
    once the last one posted was done: 13 % of the stack's CPU in a 300 burst).
    `completed_at` is written by the worker, so when it is read does not change the figure."""
    done: dict[str, float] = {}
    systems: list[int] = []
    queue = list(posted)
    while queue and time.monotonic() < deadline:
        state = _finished(url, queue[0])
        if state is None:
            if len(posted) > 1:
                progress.tick("completed", len(done), len(posted))
            time.sleep(POLL_SECONDS)
            continue
        item = queue.pop(0)
        finished = datetime.fromisoformat(state["completed_at"].replace("Z", "+00:00"))
        done[item.request_id] = finished.timestamp() - item.sent
        systems.append(int(state["systems_total"]))
    if len(posted) > 1:
        progress.tick("completed", len(done), len(posted))
    return done, systems, len(queue)


def _finished(url: str, item: Posted) -> dict[str, Any] | None:
    """The request's status when it is completed or failed, else None: the operator's record,
    whose `completed_at` is the last receipt's (the public status of a request satisfied by
    earlier receipts reads `processing` until their times are replayed: README, "`GET
    /v1/requests/{request_id}`")."""
    path = f"/v1/admin/requests/{item.request_id}"
    _, state = _json(url, "GET", path, headers=SIGNED)
    if isinstance(state, dict) and state.get("status") in ("completed", "failed"):
        return state
    return None


def _percentiles(latencies: list[float]) -> dict[str, float]:
    return {
        "median": round(median(latencies), 3),
        "p95": round(percentile(latencies, 95), 3),
        "p99": round(percentile(latencies, 99), 3),
        "max": round(max(latencies, default=float("nan")), 3),
    }


def _json(
    url: str, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    sent = {"content-type": "application/json"} if data else {}
    request = urllib.request.Request(
        url + path, data=data, method=method, headers={**sent, **(headers or {})}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:  # loopback only
            return answer.status, json.loads(answer.read() or b"null")
    except urllib.error.HTTPError as error:
        try:
            return error.code, json.loads(error.read() or b"null")
        except ValueError:
            return error.code, None
