"""End-to-end fixtures: the local stack (`python -m local`) as a subprocess on a free port.

`local_stack` is shared by the whole e2e session (starting moto and every handler takes a few
seconds); `start_stack` starts another one with a different systems config. On teardown each
stack gets SIGTERM and the fixture asserts that its process and any children are gone.
Everything talks to 127.0.0.1 only.
"""

import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from local.spawn import free_port, spawn, wait_ready

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_SYSTEMS = ROOT / "local" / "systems.json"
START_TIMEOUT = 60.0
STOP_TIMEOUT = 15.0


@dataclass
class Stack:
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path
    systems_path: Path
    _stopped: bool = field(default=False)

    # -- HTTP helpers (loopback only) ---------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        headers: dict[str, str] | None = None,
        raw: bytes | None = None,
        timeout: float = 10.0,
    ) -> tuple[int, dict[str, str], bytes]:
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        sent = {"content-type": "application/json"} if data is not None else {}
        sent.update(headers or {})
        req = urllib.request.Request(self.url + path, data=data, method=method, headers=sent)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as answer:
                return answer.status, dict(answer.headers), answer.read()
        except urllib.error.HTTPError as error:
            return error.code, dict(error.headers), error.read()

    def json(self, method: str, path: str, body: Any = None, **kwargs: Any) -> tuple[int, Any]:
        status, _, payload = self.request(method, path, body, **kwargs)
        return status, json.loads(payload) if payload else None

    def wait_for(
        self, probe: Callable[[], Any], timeout: float = 45.0, interval: float = 0.25
    ) -> Any:
        """Poll until probe() returns something truthy; fail with the last value and the log."""
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            last = probe()
            if last:
                return last
            time.sleep(interval)
        pytest.fail(f"timed out after {timeout}s; last value {last!r}\n{self.log_tail()}")

    def log_tail(self, lines: int = 60) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    # -- lifecycle ----------------------------------------------------------------------

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """SIGTERM, wait, then assert that nothing of the stack's process group is left."""
        if self._stopped:
            return
        self._stopped = True
        pgid = self.process.pid  # start_new_session: the stack leads its own group
        self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(pgid, signal.SIGKILL)
            self.process.wait(5)
            pytest.fail(f"the stack ignored SIGTERM for {timeout}s\n{self.log_tail()}")
        assert code == 0, f"the stack exited with {code}\n{self.log_tail()}"
        leftover = processes_in_group(pgid)
        assert not leftover, f"processes left behind: {leftover}"


def processes_in_group(pgid: int) -> list[int]:
    """Live pids whose process group is pgid (read from /proc; no signal is sent)."""
    found: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # Fields after the ")" closing the command name: state ppid pgrp ...
        state, _ppid, pgrp = stat.rsplit(")", 1)[1].split()[:3]
        if int(pgrp) == pgid and state != "Z":
            found.append(int(entry.name))
    return found


def start(
    systems: Path, log_dir: Path, module: str = "local", extra_args: tuple[str, ...] = ()
) -> Stack:
    """`python -m <module>` (the local stack, or a test entry point that wraps it)."""
    port = free_port()
    log_path = log_dir / f"stack-{port}.log"
    process = spawn(port, systems, log_path, *extra_args, module=module)
    stack = Stack(f"http://127.0.0.1:{port}", process, log_path, systems)
    problem = wait_ready(stack.url, process, START_TIMEOUT)
    if problem is None:
        return stack
    stack.stop()
    pytest.fail(f"the stack {problem}\n{stack.log_tail()}")


StackFactory = Callable[..., Stack]


@pytest.fixture(scope="session")
def _stack_logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("local-stack")


@pytest.fixture(scope="session")
def local_stack(_stack_logs: Path) -> Iterator[Stack]:
    """The stack with every connector type, each pointed at its sandbox."""
    stack = start(DEFAULT_SYSTEMS, _stack_logs)
    yield stack
    stack.stop()


@pytest.fixture
def start_stack(tmp_path: Path) -> Iterator[StackFactory]:
    """start_stack(systems=dict_or_path, *args) -> a separate stack (args: more options of
    `python -m local`), stopped after the test."""
    started: list[Stack] = []

    def make(systems: dict[str, Any] | Path | None = None, *args: str) -> Stack:
        if isinstance(systems, dict):
            path = tmp_path / "systems.json"
            path.write_text(json.dumps(systems))
        else:
            path = systems or DEFAULT_SYSTEMS
        stack = start(path, tmp_path, extra_args=args)
        started.append(stack)
        return stack

    yield make
    for stack in started:
        stack.stop()
