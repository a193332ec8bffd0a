"""What the soak asserts, read back through the stack's own routes.

- every accepted request ends `completed` (or, for the refusing system, `failed`);
- every job is final, with its attempts and receipt (`GET /v1/admin/requests/{id}`);
- the DLQs and the resolver's on-failure queue are empty (`GET /_local/queues`);
- every vendor received every identifier it accepts, in the form it expects (clear, SHA-256,
  or a raw UID2), in a call it answered with success (`GET /_sandbox/{system}/requests`).
"""

import re
import urllib.parse
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from local.sandbox.uid2 import raw_uid2
from optout.connectors.hashing import (
    meta_phone_sha256,
    sha256_hex,
    uid2_email_hash,
    uid2_phone_hash,
)
from optout.systems import SystemConfig
from soak.workload import OptOut

TOKEN = re.compile(r"[A-Za-z0-9+/=@._:\-]+")
FINAL = ("completed", "failed", "denied")
DONE = ("done", "no_record")


@dataclass
class Findings:
    problems: list[str] = field(default_factory=list)

    def expect(self, ok: bool, problem: str) -> None:
        if not ok:
            self.problems.append(problem)

    @property
    def ok(self) -> bool:
        return not self.problems


def forms(id_type: str, value: str) -> set[str]:
    """Every way a vendor receives this identifier (connectors/hashing.py)."""
    found = {value, sha256_hex(value)}
    if id_type == "email":
        found.add(raw_uid2(uid2_email_hash(value)))
    if id_type == "phone":
        found |= {meta_phone_sha256(value), raw_uid2(uid2_phone_hash(value))}
    return found


def received_tokens(calls: Iterable[dict[str, Any]]) -> set[str]:
    """Words of every call the sandbox answered with a 2xx (form bodies decoded first)."""
    tokens: set[str] = set()
    for call in calls:
        if not 200 <= int(call.get("status") or 0) < 300:
            continue
        body = str(call.get("body", ""))
        headers = call.get("headers") or {}
        if "x-www-form-urlencoded" in str(headers.get("content-type", "")):
            body = urllib.parse.unquote_plus(body)
        tokens.update(TOKEN.findall(body))
        # Salesforce's queries travel as URLs inside a JSON body, their values percent-encoded.
        tokens.update(TOKEN.findall(urllib.parse.unquote(body)))
    return tokens


def missing_deliveries(
    system: SystemConfig, opt_outs: Iterable[OptOut], tokens: set[str]
) -> list[str]:
    """'<kind> #<n> <type>' for each identifier this system accepts but never received."""
    missing = []
    for item in opt_outs:
        for id_type, value in item.identifiers.items():
            if system.accepts(id_type) and not forms(id_type, value) & tokens:
                missing.append(f"{item.kind} #{item.n} {id_type}")
    return missing


def queue_problems(depths: dict[str, dict[str, int]]) -> list[str]:
    """Messages left in a DLQ or the resolver's on-failure queue, or still in a jobs queue."""
    found = []
    for name, counts in sorted(depths.items()):
        held = sum(counts.values())
        if held and (name.endswith("-dlq") or "Failure" in name):
            found.append(f"{name} holds {held} message(s)")
        elif held and name.endswith("-jobs"):
            found.append(f"{name} still holds {held} message(s)")
    return found


def job_views(detail: dict[str, Any]) -> list[dict[str, Any]]:
    systems: list[dict[str, Any]] = detail.get("systems") or []
    return systems
