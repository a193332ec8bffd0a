"""The sandbox interface the local stack mounts at /_sandbox/{system}/... and tests serve.

A Sandbox wraps one vendor module (an object with `handle(request) -> SandboxResponse`),
records every call and injects faults. Fault selection is deterministic (a counter, not a
random draw): with rate r, call n fails when floor((n+1)*r) > floor(n*r), so rate 1 fails
every call, 0.5 every second one, and a test knows which.
"""

import math
import threading
import time
from datetime import UTC, datetime
from typing import Any

from local.sandbox.vendors import VENDORS
from local.sandbox.wire import FaultStatus, SandboxRequest, SandboxResponse, Vendor, json_response

__all__ = ["Sandbox", "SandboxRequest", "SandboxResponse", "build_sandbox"]


class Sandbox:
    """One per configured system."""

    def __init__(
        self,
        system: str,
        vendor: str,
        secrets: dict[str, Any],
        *,
        timeout_delay_seconds: float = 30.0,
        retry_after_seconds: int = 2,
    ) -> None:
        self.system = system
        self.vendor_name = vendor
        self.vendor: Vendor = VENDORS[vendor](secrets)
        # Longer than any connector timeout, so a "timeout" fault is a timeout to the caller.
        self.timeout_delay_seconds = timeout_delay_seconds
        self.retry_after_seconds = retry_after_seconds
        self._lock = threading.Lock()
        self._calls: list[dict[str, Any]] = []
        self._rate = 0.0
        self._fault: FaultStatus = 500
        self._counter = 0

    def handle(self, request: SandboxRequest) -> SandboxResponse:
        with self._lock:
            self._calls.append(
                {
                    "method": request.method,
                    "path": request.path,
                    "headers": dict(request.headers),
                    "body": request.body.decode("utf-8", "replace"),
                    "time": datetime.now(UTC).isoformat(),
                }
            )
            fault = self._next_fault()
        if fault == "timeout":
            time.sleep(self.timeout_delay_seconds)
            return json_response(504, {"message": "sandbox timeout fault"})
        if fault is not None:
            headers = {"retry-after": str(self.retry_after_seconds)} if fault == 429 else {}
            return json_response(fault, {"message": f"sandbox fault {fault}"}, headers)
        return self.vendor.handle(request)

    def _next_fault(self) -> FaultStatus | None:
        n = self._counter
        self._counter += 1
        if self._rate > 0 and math.floor((n + 1) * self._rate) > math.floor(n * self._rate):
            return self._fault
        return None

    def recorded(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(call) for call in self._calls]

    def set_faults(self, rate: float, status: FaultStatus) -> None:
        if not 0 <= rate <= 1:
            raise ValueError("rate must be within 0..1")
        if status != "timeout" and not (isinstance(status, int) and 400 <= status <= 599):
            raise ValueError("status must be a 4xx/5xx code or 'timeout'")
        with self._lock:
            self._rate = rate
            self._fault = status
            self._counter = 0


def build_sandbox(system: str, vendor: str, secrets: dict[str, Any]) -> Sandbox:
    return Sandbox(system, vendor, secrets)
