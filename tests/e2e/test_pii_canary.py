"""PII canary: a full flow with canary identifiers, then every way out of the stack is searched.

The flow: a login minting an identity token, the banner with it, the webform as JSON and as a
plain form post, backend identity links, deliberate refusals, and every configured system
delivering while three of them fail half their calls (503, 429, 500) and are retried.

Searched, for the canary email, phone (as typed, E.164 and bare digits) and customer id, and
for the identity token (it carries the email): every line the stack printed (each function's
logs at DEBUG, the stack's own logs, and the EMF metric lines, metrics being on), every
queue message body (no X-Ray SDK runs in the functions: nothing else leaves to X-Ray), every
answer the API gave (refusals and operator views included), and every sandbox call's URL and
headers. A vendor's request body may carry the clear value only where that vendor must have
it (the systems configured with hashing "none": Segment, Braze, Salesforce); keyed hashes and
vendor-required hashes are fine everywhere.
"""

import json
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import Stack, start
from tests.e2e.test_local_stack import SIGV4
from tests.support.systems_subset import DEFAULT_SYSTEMS

pytestmark = pytest.mark.e2e

RUN = uuid.uuid4().hex[:8]
EMAIL = f"canary.pii.{RUN}@demo.example.com"  # a demo account: it logs in
PHONE = "+1 415 555 0199"  # a valid US number (555-01xx is reserved for fiction)
PHONE_FORMS = ("+14155550199", "4155550199", "415 555 0199", "415-555-0199")
CUSTOMER = f"cust-canary-{RUN}"
FAULTS = {"braze": 503, "salesforce": 429, "google_ads": 500}


@pytest.fixture(scope="module")
def record_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("canary") / "record.jsonl"


@pytest.fixture(scope="module")
def stack(record_file: Path) -> Iterator[Stack]:
    args = ("--log-format", "json", "--log-level", "DEBUG", "--record", str(record_file))
    stack = start(DEFAULT_SYSTEMS, record_file.parent, "tests.e2e.canary_stack", args)
    yield stack
    stack.stop()


class Seen:
    """Everything the API answered to the flow, kept for the search."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.answers: list[str] = []

    def call(self, method: str, path: str, raw: bytes | None = None, **headers: str) -> Any:
        status, _, payload = self.stack.request(method, path, raw=raw, headers=headers, timeout=30)
        self.answers.append(payload.decode("utf-8", "replace"))
        return status, payload

    def json(self, method: str, path: str, body: Any = None, **headers: str) -> Any:
        raw = None if body is None else json.dumps(body).encode()
        sent = {"content-type": "application/json", **headers} if raw is not None else headers
        status, payload = self.call(method, path, raw, **sent)
        return status, json.loads(payload) if payload else None


def _flow(seen: Seen) -> tuple[list[str], str]:
    """The canary's journey; returns the request ids that must complete, and the token."""
    device = str(uuid.uuid4())
    for system, status in FAULTS.items():
        assert (
            seen.json("POST", f"/_sandbox/{system}/faults", {"rate": 0.5, "status": status})[0]
            == 200
        )
    status, login = seen.json("POST", "/_local/demo/login", {"email": EMAIL, "device_id": device})
    assert status == 200, login
    token = login["identity_token"]
    ids: list[str] = []
    status, banner = seen.json("POST", "/v1/consent", {
        "device_id": device, "opt_out": {"sale": True, "share": True}, "identity_token": token,
        "page_url": f"https://shop.example.com/account?email={EMAIL}&phone={PHONE_FORMS[0]}",
    })  # fmt: skip
    assert status == 202, banner
    ids.append(banner["request_id"])
    status, webform = seen.json(
        "POST", "/v1/opt-out",
        {"email": EMAIL, "phone": PHONE, "customer_id": CUSTOMER, "jurisdiction": "US-CA"},
        **{"idempotency-key": f"canary-{RUN}"},
    )  # fmt: skip
    assert status == 202, webform
    ids.append(webform["request_id"])
    form = f"email={EMAIL.replace('@', '%40')}&phone=%2B14155550199&purposes=sale&purposes=share"
    status, page = seen.call("POST", "/v1/opt-out", form.encode(), **{
        "content-type": "application/x-www-form-urlencoded", "accept": "text/html",
        "cookie": f"optout_device_id={device}", "origin": seen.stack.url})  # fmt: skip
    assert status == 202 and b"<html" in page.lower()
    device_ref = {"type": "device_id", "value": device}
    links_body = {"links": [
        {"a": device_ref, "b": {"type": "customer_id", "value": CUSTOMER}},
        {"a": {"type": "email", "value": EMAIL}, "b": {"type": "phone", "value": PHONE}},
    ]}  # fmt: skip
    status, links = seen.json("POST", "/v1/identity-links", links_body, **SIGV4)
    assert status == 202, links
    ids.append(links["request_id"])
    # Refusals, each carrying the canary: none may echo it.
    for bad in (
        {"email": f"{EMAIL}@"}, {"phone": f"{PHONE} ext canary"}, {"customer_id": f"{CUSTOMER} !"},
        {"email": EMAIL, EMAIL: True}, {"email": EMAIL, "identity_token": token + "x"},
    ):  # fmt: skip
        assert seen.json("POST", "/v1/opt-out", bad)[0] in (400, 422)
    assert seen.call("POST", "/v1/opt-out", f'{{"email": "{EMAIL}", "email": "x"}}'.encode(),
                     **{"content-type": "application/json"})[0] == 400  # fmt: skip
    assert seen.json("POST", "/v1/admin/lookup", {"type": "email", "value": EMAIL})[0] == 403
    return ids, token


def _settle(seen: Seen, ids: list[str]) -> list[dict[str, Any]]:
    def done() -> list[dict[str, Any]] | None:
        answers = [seen.stack.json("GET", f"/v1/requests/{rid}")[1] for rid in ids]
        return answers if all(a["status"] in ("completed", "failed") for a in answers) else None

    final: list[dict[str, Any]] = seen.stack.wait_for(done, timeout=240, interval=1)
    return final


def _retried(seen: Seen, ids: list[str]) -> set[str]:
    """The systems with a job of this flow that has been attempted more than once."""
    _, recent = seen.stack.json("GET", "/_local/requests?limit=50")
    return {s["system"] for r in recent if r["request_id"] in ids for s in r["systems"]
            if s["attempts"] > 1}  # fmt: skip


def _operator_views(seen: Seen, ids: list[str]) -> None:
    for rid in ids:
        assert seen.json("GET", f"/v1/requests/{rid}")[0] == 200
        assert seen.call("GET", f"/v1/requests/{rid}", accept="text/html")[0] == 200
        assert seen.json("GET", f"/v1/admin/requests/{rid}", **SIGV4)[0] == 200
    for kind, value in (("email", EMAIL), ("phone", PHONE), ("customer_id", CUSTOMER)):
        assert (
            seen.json("POST", "/v1/admin/lookup", {"type": kind, "value": value}, **SIGV4)[0] == 200
        )
    assert seen.json("GET", "/v1/admin/holds", **SIGV4)[0] == 200
    assert seen.json("GET", "/_local/requests?limit=50")[0] == 200


def _canaries(token: str) -> list[str]:
    return [
        EMAIL,
        EMAIL.split("@", maxsplit=1)[0],
        *PHONE_FORMS,
        PHONE,
        CUSTOMER,
        token,
        token[-40:],
    ]


def _leaks(text: str, token: str) -> list[str]:
    lowered = text.lower()
    return [c for c in _canaries(token) if c.lower() in lowered]


@pytest.fixture(scope="module")
def flow(stack: Stack) -> dict[str, Any]:
    seen = Seen(stack)
    ids, token = _flow(seen)
    # Once every faulty system has failed and retried, the faults are lifted (a vendor flow of
    # several calls can otherwise meet a fault on every attempt), and everything completes.
    retried = seen.stack.wait_for(lambda: _retried(seen, ids) >= set(FAULTS), timeout=120)
    for system in FAULTS:
        seen.json("POST", f"/_sandbox/{system}/faults", {"rate": 0, "status": 500})
    final = _settle(seen, ids)
    _operator_views(seen, ids)
    systems = [s["name"] for s in json.loads(DEFAULT_SYSTEMS.read_text())["systems"]]
    calls = {name: seen.stack.json("GET", f"/_sandbox/{name}/requests")[1] for name in systems}
    _, recent = seen.stack.json("GET", "/_local/requests?limit=50")
    mine = [r for r in recent if r["request_id"] in ids]
    return {"seen": seen, "ids": ids, "token": token, "final": final, "calls": calls,
            "retried": retried, "recent": mine}  # fmt: skip


# -- the flow really ran: otherwise a clean search proves nothing ---------------------------


def test_the_flow_completed_on_every_system_through_failures_and_retries(
    flow: dict[str, Any],
) -> None:
    assert [f["status"] for f in flow["final"]] == ["completed"] * len(flow["ids"])
    systems = {s["system"] for r in flow["recent"] for s in r["systems"]}
    assert systems == set(flow["calls"])  # every configured system got a job
    retried = {s["system"] for r in flow["recent"] for s in r["systems"] if s["attempts"] > 1}
    assert retried >= set(FAULTS), "every injected failure was retried"


def test_what_is_searched_was_captured(
    stack: Stack, record_file: Path, flow: dict[str, Any]
) -> None:
    log = stack.log_path.read_text(errors="replace")
    records = [json.loads(line) for line in record_file.read_text().splitlines()]
    # Every kind of function logged: capture and admin ("captured"), the resolver ("resolved")
    # and the workers ("delivery attempts": a batch's clean attempts; "delivery attempt": one
    # retried). Named by message: lines carry no function_name (optout/observability.py).
    messages = set(re.findall(r'"message":"([a-z ]+)"', log))
    assert {"captured", "resolved", "delivery attempts", "delivery attempt"} <= messages
    assert " DEBUG local." in log  # the stack's own logs, at DEBUG
    assert '"CloudWatchMetrics"' in log and "OptOutCaptured" in log  # EMF metric lines
    assert any(r["kind"] == "sqs" for r in records)  # queue message bodies
    # And the search finds the canary where it is allowed: Braze gets the clear email
    assert any(EMAIL in call["body"] for call in flow["calls"]["braze"])
    calls = sum(len(c) for c in flow["calls"].values())
    metric_lines = log.count('"CloudWatchMetrics"')
    print(  # the figures of the search (`-s` shows them); the tests below find nothing
        f"\ncanary: {len(_canaries(flow['token']))} values searched in {len(log.splitlines())} "
        f"log lines ({metric_lines} with EMF metrics), "
        f"{sum(r['kind'] != 'sqs' for r in records)} trace records, "
        f"{sum(r['kind'] == 'sqs' for r in records)} queue messages, "
        f"{len(flow['seen'].answers)} answers, {calls} sandbox calls"
    )


# -- the search ----------------------------------------------------------------------------


def test_no_log_line_or_metric_holds_a_canary(stack: Stack, flow: dict[str, Any]) -> None:
    lines = stack.log_path.read_text(errors="replace").splitlines()
    leaking = [line for line in lines if _leaks(line, flow["token"])]
    assert not leaking, "\n".join(leaking[:5])


def test_no_queue_message_holds_a_canary(record_file: Path, flow: dict[str, Any]) -> None:
    records = [json.loads(line) for line in record_file.read_text().splitlines()]
    bodies = [r["body"] for r in records if r["kind"] == "sqs"]
    assert not [b for b in bodies if _leaks(b, flow["token"])]


def test_no_answer_of_the_api_holds_a_canary(flow: dict[str, Any]) -> None:
    leaking = [a for a in flow["seen"].answers if _leaks(a, flow["token"])]
    # The demo login's answer is the token itself (the site's backend gets it, not a log)
    leaking = [a for a in leaking if '"identity_token"' not in a]
    assert not leaking, leaking[:3]


def test_no_sandbox_call_holds_a_canary_in_its_url_or_headers(flow: dict[str, Any]) -> None:
    for system, calls in flow["calls"].items():
        for call in calls:
            assert not _leaks(call["path"], flow["token"]), (system, call["path"])
            assert not _leaks(json.dumps(call["headers"]), flow["token"]), system


def test_only_vendors_that_need_the_clear_value_get_it_and_only_in_their_body(
    flow: dict[str, Any],
) -> None:
    config = json.loads(DEFAULT_SYSTEMS.read_text())["systems"]
    clear_allowed = {s["name"] for s in config if s["hashing"] == "none"}
    assert clear_allowed == {"segment", "braze", "salesforce"}
    for system, calls in flow["calls"].items():
        if system in clear_allowed:
            continue
        for call in calls:
            assert not _leaks(call["body"], flow["token"]), (system, call["body"][:200])
