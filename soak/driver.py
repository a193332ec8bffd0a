"""Send opt-outs, wait for them to settle, and read back what happened (loopback only)."""

import sys
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from soak.stack import Stack
from soak.workload import OptOut

CLIENTS = 4
POLL_SECONDS = 2.0
SAMPLE = 20  # statuses read first, before reading them all
TICK_SECONDS = 5.0


class Progress:
    def __init__(self, quiet: bool = False) -> None:
        self.quiet = quiet
        self.started = time.monotonic()
        self._last = 0.0

    def note(self, text: str) -> None:
        self._write(f"\n[{self.elapsed():6.0f} s] {text}")

    def tick(self, text: str) -> None:
        now = time.monotonic()
        if now - self._last >= TICK_SECONDS:
            self._last = now
            self._write(f"\n[{self.elapsed():6.0f} s]   {text}")

    def due(self) -> bool:
        return time.monotonic() - self._last >= TICK_SECONDS

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def _write(self, text: str) -> None:
        if not self.quiet:
            sys.stderr.write(text)
            sys.stderr.flush()


def send(stack: Stack, opt_outs: list[OptOut], progress: Progress) -> None:
    """Every opt-out's calls in order (a link after its banner), opt-outs in parallel."""

    def one(item: OptOut) -> None:
        for call in item.calls:
            status, answer = stack.call(
                call.method, call.path, call.body, call.headers, signed=call.signed
            )
            if status == 202 and isinstance(answer, dict) and answer.get("request_id"):
                item.request_ids.append(str(answer["request_id"]))
            else:
                item.refused.append(status)

    with ThreadPoolExecutor(CLIENTS) as pool:
        for n, _ in enumerate(pool.map(one, opt_outs), start=1):
            if n % 100 == 0:
                progress.tick(f"sent {n}/{len(opt_outs)}")


def jobs_in_queues(stack: Stack) -> int | None:
    """Messages in every jobs queue (visible, in flight, delayed); None if the stack is too
    busy to answer in time (its threads share one lock around moto)."""
    try:
        status, depths = stack.call("GET", "/_local/queues", timeout=60)
    except OSError:
        return None
    if status != 200 or not isinstance(depths, dict):
        return None
    return sum(sum(c.values()) for name, c in depths.items() if name.endswith("-jobs"))


def wait_for(
    stack: Stack,
    request_ids: list[str],
    settled: Callable[[str], bool],
    deadline: float,
    progress: Progress,
    faults: Callable[[], int] | None = None,
) -> dict[str, dict[str, Any]]:
    """Poll until every request's status satisfies `settled`, or the deadline passes.

    Statuses are read only while the jobs queues are empty (two polls in a row), and a few
    first (all of them when those moved, or every fifth quiet poll), so the probe does not
    load the stack it waits for. Returns the last status seen of every request read."""
    last: dict[str, dict[str, Any]] = {}
    pending = list(request_ids)
    quiet_polls = 0
    while pending and time.monotonic() < deadline:
        queued = jobs_in_queues(stack)
        quiet_polls = quiet_polls + 1 if queued == 0 else 0  # None: busy
        if progress.due():
            injected = f", vendor faults so far {faults()}" if faults else ""
            done = len(request_ids) - len(pending)
            progress.tick(f"accepted {len(request_ids)}, settled {done}, "
                          f"job messages queued {queued}{injected}")  # fmt: skip
        if quiet_polls < 2:
            time.sleep(POLL_SECONDS)
            continue
        sample = pending[:SAMPLE]
        _read(stack, sample, last)
        moved = any(settled(_status(last, r)) for r in sample)
        if len(pending) > SAMPLE and (moved or quiet_polls % 5 == 0):
            _read(stack, pending[SAMPLE:], last)  # the first few moved: read them all
        pending = [r for r in pending if not settled(_status(last, r))]
        if pending:
            time.sleep(POLL_SECONDS)
    return last


def _read(stack: Stack, request_ids: list[str], into: dict[str, dict[str, Any]]) -> None:
    for request_id in request_ids:
        status, answer = stack.call("GET", f"/v1/requests/{request_id}")
        if status == 200 and isinstance(answer, dict):
            into[request_id] = answer


def _status(seen: dict[str, dict[str, Any]], request_id: str) -> str:
    return str(seen.get(request_id, {}).get("status", ""))


def details(stack: Stack, request_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
    """The operator's record of each request (signed GET /v1/admin/requests/{id})."""

    def one(request_id: str) -> tuple[str, dict[str, Any]]:
        status, answer = stack.call("GET", f"/v1/admin/requests/{request_id}", signed=True)
        return request_id, answer if status == 200 and isinstance(answer, dict) else {}

    with ThreadPoolExecutor(CLIENTS) as pool:
        return dict(pool.map(one, list(request_ids)))


def set_faults(stack: Stack, system: str, plan: dict[str, Any]) -> None:
    status, answer = stack.call("POST", f"/_sandbox/{system}/faults", plan)
    if status != 200:
        raise RuntimeError(f"sandbox {system} refused the fault plan: {status} {answer}")


def faults_injected(stack: Stack, systems: Iterable[str]) -> int:
    return sum(sum(r.get("injected", {}).values()) for r in fault_reports(stack, systems).values())


def fault_reports(stack: Stack, systems: Iterable[str]) -> dict[str, dict[str, Any]]:
    return {s: stack.call("GET", f"/_sandbox/{s}/faults")[1] or {} for s in systems}


def sandbox_calls(stack: Stack, system: str) -> list[dict[str, Any]]:
    status, calls = stack.call("GET", f"/_sandbox/{system}/requests", timeout=120)
    return calls if status == 200 and isinstance(calls, list) else []
