"""The local stack as a child process on a free loopback port: what the e2e tests, the bench's
burst stage and the soak each start, started one way."""

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def spawn(
    port: int, systems: Path, log_path: Path, *args: str, module: str = "local"
) -> "subprocess.Popen[bytes]":
    """`python -m <module> --port … --systems … <args>`, output to log_path, in a session of its
    own (so stopping it stops its children). The caller's AWS and Powertools settings are not
    passed on: the stack sets its own."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "POWERTOOLS_"))}
    env.update(AWS_ACCOUNT_ID_ENDPOINT_MODE="disabled", PYTHONUNBUFFERED="1")
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("wb") as log:
        return subprocess.Popen(  # noqa: S603 - this interpreter, our own arguments
            [sys.executable, "-m", module, "--port", str(port), "--systems", str(systems), *args],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip


def wait_ready(
    url: str, process: "subprocess.Popen[bytes]", timeout: float, interval: float = 0.2
) -> str | None:
    """Poll `GET <url>/v1/openapi.json` until it answers 200: None then, else why not (the
    process exited, or `timeout` seconds passed). The caller stops the process and reports."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return f"exited with {process.returncode}"
        try:
            with urllib.request.urlopen(f"{url}/v1/openapi.json", timeout=5) as answer:  # noqa: S310 - loopback
                if answer.status == 200:
                    return None
        except OSError:
            pass  # not listening yet (HTTPError is an OSError: not ready either)
        time.sleep(interval)
    return f"did not answer within {timeout:.0f} s"
