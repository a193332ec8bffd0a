"""Stage 4: opt-outs per second through the whole local stack, and POST -> last receipt.

The stack runs as a subprocess (`python -m local`) on a free 127.0.0.1 port, exactly as the
e2e tests start it. Webform opt-outs (an email each: every configured system gets a job) are
posted from a few client threads; each request is then polled until `completed`. The time to
the last receipt is the request's own `completed_at` minus the client's clock at the POST
(same machine, same clock), so the poll interval does not blur it. Bounded: N requests and a
deadline; loopback only.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

from bench.environment import ROOT, SYSTEMS_CONFIG
from bench.progress import Progress
from bench.stats import median, percentile

START_TIMEOUT = 60.0
CLIENTS = 4
POLL_SECONDS = 1.0


def run(count: int, deadline_seconds: float, progress: Progress, log_dir: Path) -> dict[str, Any]:
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "POWERTOOLS_"))}
    env.update(AWS_ACCOUNT_ID_ENDPOINT_MODE="disabled", PYTHONUNBUFFERED="1")
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"local-stack-{port}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "local", "--port", str(port), "--systems", str(SYSTEMS_CONFIG),
             "--log-level", "WARNING"],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        _wait_ready(url, process)
        progress.note(f"local stack up on {url}")
        return _measure(url, count, deadline_seconds, progress)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)  # our own child's group, nothing else
            process.wait(5)


def _measure(url: str, count: int, deadline_seconds: float, progress: Progress) -> dict[str, Any]:
    def post(n: int) -> tuple[str, float]:
        body = {"email": f"bench{n}@example.com", "jurisdiction": "US-CA"}
        sent = time.time()
        status, answer = _json(url, "POST", "/v1/opt-out", body)
        if status != 202:
            raise RuntimeError(f"opt-out refused: {status} {answer}")
        return str(answer["request_id"]), sent

    started = time.monotonic()
    with ThreadPoolExecutor(CLIENTS) as pool:
        posted = list(pool.map(post, range(count)))
    post_seconds = time.monotonic() - started
    first_post = min(sent for _, sent in posted)
    pending = dict(posted)
    done: dict[str, float] = {}
    last_receipt = first_post
    systems: list[int] = []
    deadline = started + deadline_seconds
    while pending and time.monotonic() < deadline:
        for request_id, sent in list(pending.items()):
            _, state = _json(url, "GET", f"/v1/requests/{request_id}")
            if state and state.get("status") in ("completed", "failed"):
                finished = datetime.fromisoformat(state["completed_at"].replace("Z", "+00:00"))
                done[request_id] = finished.timestamp() - sent
                last_receipt = max(last_receipt, finished.timestamp())
                systems.append(int(state["systems_total"]))
                del pending[request_id]
        progress.tick("completed", len(done), count)
        # Each GET is a Query on moto, which scans the whole table: poll gently so the probe
        # does not load the stack it measures (completed_at makes the interval irrelevant).
        time.sleep(POLL_SECONDS)
    latencies = list(done.values())
    return {
        "requests": count,
        "completed": len(done),
        "timed_out": len(pending),
        "client_threads": CLIENTS,
        "systems_per_request": round(median(systems), 1) if systems else None,
        "accepted_per_second": round(count / post_seconds, 1),
        "completed_per_second": round(len(done) / max(1e-9, last_receipt - first_post), 2),
        "post_to_last_receipt_s": {
            "median": round(median(latencies), 3),
            "p95": round(percentile(latencies, 95), 3),
        },
    }


def _json(url: str, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    headers = {"content-type": "application/json"} if data else {}
    request = urllib.request.Request(url + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:  # loopback only
            return answer.status, json.loads(answer.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, None


def _wait_ready(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the local stack exited with {process.returncode}")
        try:
            if _json(url, "GET", "/v1/openapi.json")[0] == 200:
                return
        except OSError:
            pass  # not listening yet
        time.sleep(0.2)
    raise RuntimeError(f"the local stack did not answer within {START_TIMEOUT}s")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port
