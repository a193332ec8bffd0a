"""The sandbox interface the local stack mounts at /_sandbox/{system}/... and tests serve.

A Sandbox wraps one vendor module (an object with `handle(request) -> SandboxResponse`),
records every call with the status it answered, and injects faults (local/sandbox/faults.py:
a share of calls fails with a status, a mix of statuses, or a timeout; a 429 is the vendor's
own throttling answer, local/sandbox/throttles.py).
"""

import threading
import time
from datetime import UTC, datetime
from typing import Any

from local.sandbox.faults import FaultInjector, FaultPlan
from local.sandbox.throttles import throttled
from local.sandbox.vendors import VENDORS
from local.sandbox.wire import FaultStatus, SandboxRequest, SandboxResponse, Vendor, json_response

__all__ = ["FaultPlan", "Sandbox", "SandboxRequest", "SandboxResponse", "build_sandbox"]


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
        self._lock = threading.Lock()
        self._calls: list[dict[str, Any]] = []
        # Longer than any connector timeout, so a "timeout" fault is a timeout to the caller.
        self._faults = FaultInjector(
            FaultPlan(hold_seconds=timeout_delay_seconds, retry_after=retry_after_seconds)
        )

    def handle(self, request: SandboxRequest) -> SandboxResponse:
        call: dict[str, Any] = {
            "method": request.method,
            "path": request.path,
            "headers": dict(request.headers),
            "body": request.body.decode("utf-8", "replace"),
            "time": datetime.now(UTC).isoformat(),
        }
        with self._lock:
            self._calls.append(call)
            fault = self._faults.next()
            plan = self._faults.plan
        answer = self._answer(request, fault, plan)
        with self._lock:
            call["status"] = answer.status
            call["fault"] = fault is not None
        return answer

    def _answer(
        self, request: SandboxRequest, fault: FaultStatus | None, plan: FaultPlan
    ) -> SandboxResponse:
        if fault is not None and plan.applied:
            self.vendor.handle(request)  # committed, its answer lost to the fault below
        if fault == "timeout":
            time.sleep(plan.hold_seconds)
            return json_response(504, {"message": "sandbox timeout fault"})
        if fault == 429:
            return throttled(self.vendor_name, request, plan.retry_after)
        if fault is not None:
            return json_response(fault, {"message": f"sandbox fault {fault}"})
        return self.vendor.handle(request)

    def recorded(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(call) for call in self._calls]

    def set_faults(self, rate: float, status: FaultStatus) -> None:
        """Fail a share of calls with one status (the timeout hold and Retry-After stay)."""
        with self._lock:
            current = self._faults.plan
        self.configure_faults(FaultPlan(rate, (status,), current.retry_after, current.hold_seconds))

    def configure_faults(self, plan: FaultPlan) -> None:
        with self._lock:
            self._faults.configure(plan)

    def set_fault_spec(self, spec: dict[str, Any]) -> dict[str, Any]:
        """POST /faults: a JSON body (FaultPlan.parse; ValueError names what is wrong)."""
        self.configure_faults(FaultPlan.parse(spec))
        return self.faults()

    def faults(self) -> dict[str, Any]:
        """The plan in force and what it did so far: calls seen, faults injected by status."""
        with self._lock:
            return self._faults.report()


def build_sandbox(system: str, vendor: str, secrets: dict[str, Any]) -> Sandbox:
    return Sandbox(system, vendor, secrets)
