"""Load: 50 concurrent clients for 30 s against a local stack; zero errors, nothing lost or doubled.

Each client keeps one connection open and, until the time is up, sends a mix of what the API
serves: banner choices, webform opt-outs (JSON and plain form), retries of an earlier opt-out
with its Idempotency-Key, and reads of a device's state and of a request's status. Every
answer must be the expected success (no 4xx, no 5xx, no timeout or broken connection: client
timeouts are generous, and nothing is asserted about latency). Then every request id the API
accepted is counted against the table (`GET /_local/requests/ids`): each stored exactly once,
and nothing stored that was not accepted. The figures are printed (`-s` shows them).
"""

import http.client
import json
import random
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.e2e.conftest import Stack, start
from tests.support.systems_subset import systems_subset

pytestmark = pytest.mark.e2e

CLIENTS = 50
SECONDS = 30.0
CLIENT_TIMEOUT = 120.0  # a busy 2-core machine may be slow; slow is not an error here
JSON_HEADERS = {"content-type": "application/json"}


@dataclass
class Tally:
    """What one client saw."""

    sent: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    accepted: list[str] = field(default_factory=list)  # request ids answered 202
    replays: list[tuple[str, str]] = field(default_factory=list)  # (first id, replayed id)


@pytest.fixture(scope="module")
def load_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    path = systems_subset(tmp_path_factory.mktemp("load"), "webhook")
    stack = start(path, path.parent)
    yield stack
    # After the run the stack still holds a backlog of deliveries and a table of thousands of
    # items: its process exits cleanly but takes longer than an idle one to tear moto down.
    stack.stop(timeout=60)


class Client:
    def __init__(self, url: str, seed: int) -> None:
        parts = urlsplit(url)
        self._host, self._port = parts.hostname or "127.0.0.1", parts.port or 80
        self._conn = self._connect()
        self._random = random.Random(seed)  # a fixed mix per client
        self.tally = Tally()
        self._device = str(uuid.uuid4())
        self._earlier: list[tuple[str, bytes, str]] = []  # (key, body, request id)

    def _connect(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection(self._host, self._port, timeout=CLIENT_TIMEOUT)

    def _send(self, kind: str, method: str, path: str, body: bytes | None,
              headers: dict[str, str], expected: int) -> Any:  # fmt: skip
        self.tally.sent[kind] += 1
        try:
            self._conn.request(method, path, body=body, headers=headers)
            answer = self._conn.getresponse()
            payload = answer.read()
        except (OSError, http.client.HTTPException) as error:
            self.tally.errors.append(f"{kind}: {type(error).__name__}")
            self._conn.close()
            self._conn = self._connect()
            return None
        if answer.status != expected:
            self.tally.errors.append(f"{kind}: {answer.status} {payload[:200]!r}")
            return None
        return json.loads(payload) if answer.getheader("content-type", "").startswith(
            "application/json"
        ) else payload  # fmt: skip

    def step(self) -> None:
        roll = self._random.random()
        if roll < 0.3:
            body = {"device_id": self._device, "opt_out": {"sale": True}}
            answer = self._send("consent", "POST", "/v1/consent", json.dumps(body).encode(),
                                JSON_HEADERS, 202)  # fmt: skip
            if answer:
                self.tally.accepted.append(answer["request_id"])
        elif roll < 0.55:
            key = uuid.uuid4().hex
            raw = json.dumps({"email": f"load-{key}@example.com"}).encode()
            headers = {**JSON_HEADERS, "idempotency-key": key}
            answer = self._send("opt-out json", "POST", "/v1/opt-out", raw, headers, 202)
            if answer:
                self.tally.accepted.append(answer["request_id"])
                self._earlier.append((key, raw, answer["request_id"]))
        elif roll < 0.65:
            raw = f"customer_id=load-{uuid.uuid4().hex}&purposes=sale".encode()
            headers = {"content-type": "application/x-www-form-urlencoded"}
            answer = self._send("opt-out form", "POST", "/v1/opt-out", raw, headers, 202)
            if answer:
                self.tally.accepted.append(answer["request_id"])
        elif roll < 0.75 and self._earlier:
            key, raw, first = self._random.choice(self._earlier)
            headers = {**JSON_HEADERS, "idempotency-key": key}
            answer = self._send("idempotent retry", "POST", "/v1/opt-out", raw, headers, 202)
            if answer:
                self.tally.replays.append((first, answer["request_id"]))
        elif roll < 0.9:
            self._send("read state", "GET", f"/v1/consent/{self._device}", None, {}, 200)
        elif self.tally.accepted:
            rid = self._random.choice(self.tally.accepted)
            self._send("read status", "GET", f"/v1/requests/{rid}", None, {}, 200)

    def close(self) -> None:
        self._conn.close()


def _run(url: str) -> tuple[list[Tally], float]:
    clients = [Client(url, seed) for seed in range(CLIENTS)]
    start_gate = threading.Barrier(CLIENTS + 1)
    deadline = 0.0

    def work(client: Client) -> None:
        start_gate.wait()
        while time.monotonic() < deadline:
            client.step()
        client.close()

    threads = [threading.Thread(target=work, args=(c,), daemon=True) for c in clients]
    for thread in threads:
        thread.start()
    began = time.monotonic()
    deadline = began + SECONDS
    start_gate.wait()
    for thread in threads:
        thread.join(SECONDS + CLIENT_TIMEOUT + 30)
    assert not any(t.is_alive() for t in threads), "a client never finished"
    return [c.tally for c in clients], time.monotonic() - began


def test_fifty_clients_for_thirty_seconds_without_an_error_and_every_request_stored_once(
    load_stack: Stack,
) -> None:
    # Given a stack of its own, when 50 clients send the mix for 30 s
    tallies, elapsed = _run(load_stack.url)
    sent = sum((t.sent for t in tallies), Counter())
    errors = [e for t in tallies for e in t.errors]
    accepted = [rid for t in tallies for rid in t.accepted]
    replays = [pair for t in tallies for pair in t.replays]
    # Then nothing failed
    assert not errors, f"{len(errors)} errors, e.g. {errors[:5]}"
    assert not [p for p in replays if p[0] != p[1]], "a retry got a new request id"
    # And each accepted request is in the table exactly once, and nothing else is
    status, stored = load_stack.json("GET", "/_local/requests/ids", timeout=120)
    assert status == 200
    counted = Counter(stored["request_ids"])
    assert stored["count"] == len(counted) == len(stored["request_ids"])
    assert len(set(accepted)) == len(accepted), "two accepted requests share an id"
    assert set(counted) == set(accepted)
    assert not [rid for rid, n in counted.items() if n != 1]
    assert " raised " not in load_stack.log_path.read_text(errors="replace")
    print(
        f"\nload: {CLIENTS} clients, {elapsed:.0f} s, {sum(sent.values())} requests "
        f"({dict(sent)}), accepted {len(accepted)}, idempotent retries {len(replays)}, "
        f"stored {stored['count']}, errors {len(errors)}, lost 0, duplicated 0"
    )
