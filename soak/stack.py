"""The local stack as a subprocess on a free loopback port, and the soak's HTTP client.

IAM routes (`/v1/identity-links`, `/v1/admin/*`) are SigV4-signed with botocore, as a backend
or an operator signs them; the local front accepts any signature (docs/local-stack.md).
"""

import json
import os
import signal
import subprocess
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from local.spawn import free_port, spawn, wait_ready

ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT = 90.0
STOP_TIMEOUT = 20.0
SIGNER = SigV4Auth(Credentials("testing", "testing"), "execute-api", "us-east-1")


class StackError(RuntimeError):
    pass


@dataclass
class Stack:
    url: str
    process: "subprocess.Popen[bytes]"
    log_path: Path

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        headers: dict[str, str] | None = None,
        *,
        signed: bool = False,
        timeout: float = 30.0,
    ) -> tuple[int, Any]:
        """One JSON call; answers (status, parsed body or None)."""
        data = None if body is None else json.dumps(body).encode()
        sent = {"content-type": "application/json"} if data is not None else {}
        sent.update(headers or {})
        if signed:
            request = AWSRequest(method=method, url=self.url + path, data=data, headers=sent)
            SIGNER.add_auth(request)
            sent = dict(request.headers.items())
        outgoing = urllib.request.Request(self.url + path, data=data, method=method, headers=sent)
        try:
            with urllib.request.urlopen(outgoing, timeout=timeout) as answer:
                return answer.status, _parse(answer.read())
        except urllib.error.HTTPError as error:
            return error.code, _parse(error.read())

    def stop(self) -> int:
        """SIGTERM to our own child, then its exit code (SIGKILL to its group if it hangs)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)  # the stack leads its own group
                self.process.wait(5)
        return int(self.process.returncode)


def start(systems: Path, log_dir: Path) -> Stack:
    port = free_port()
    log_path = log_dir / f"stack-{port}.log"
    process = spawn(port, systems, log_path, "--log-level", "WARNING")
    stack = Stack(f"http://127.0.0.1:{port}", process, log_path)
    problem = wait_ready(stack.url, process, START_TIMEOUT, interval=0.3)
    if problem is None:
        return stack
    stack.stop()
    raise StackError(f"the local stack {problem}; see {log_path}")


def _parse(raw: bytes) -> Any:
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return None
