"""The local stack as a child process on a free loopback port: what the e2e tests, the bench's
burst stage and the soak each start, started one way."""

import os
import socket
import subprocess
import sys
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
