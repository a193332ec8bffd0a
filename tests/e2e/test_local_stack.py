"""The whole pipeline over real HTTP on loopback: capture -> stream -> resolver -> queues ->
workers -> sandbox vendors, served by `python -m local` (tests/e2e/conftest.py)."""

import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from local.sandbox.braze import braze_ids
from local.spawn import free_port, spawn
from tests.e2e.conftest import DEFAULT_SYSTEMS, ROOT, START_TIMEOUT, Stack, StackFactory

pytestmark = pytest.mark.e2e

# curl --aws-sigv4 sends this shape; the local stack checks only that it is SigV4.
SIGV4 = {
    "authorization": "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/execute-api/"
    "aws4_request, SignedHeaders=host;x-amz-date, Signature=00"
}
# The default config's systems that act on an email (segment takes customer and device ids).
SECRETS = ROOT / "local" / "secrets.json"
EMAIL_SYSTEMS = ("webhook", "braze", "salesforce", "google_ads", "meta", "trade_desk")


def unique_email() -> str:
    return f"e2e-{uuid.uuid4().hex[:12]}@example.com"


def settled(stack: Stack, request_id: str) -> dict[str, Any] | None:
    status, body = stack.json("GET", f"/v1/requests/{request_id}")
    assert status == 200, body
    return body if body["status"] in ("completed", "failed") else None


def calls_for(stack: Stack, system: str, needle: str) -> list[dict[str, Any]]:
    """The recorded calls of one sandbox whose path or body mentions `needle`."""
    status, calls = stack.json("GET", f"/_sandbox/{system}/requests")
    assert status == 200
    return [c for c in calls if needle in c["body"] or needle in c["path"]]


def job_ids(stack: Stack, request_id: str) -> dict[str, dict[str, Any]]:
    _, recent = stack.json("GET", "/_local/requests?limit=50")
    for entry in recent:
        if entry["request_id"] == request_id:
            return {s["system"]: s for s in entry["systems"]}
    return {}


def test_a_webform_opt_out_completes_and_every_email_system_got_its_vendor_call(
    local_stack: Stack,
) -> None:
    # Given a consumer's email, sent through the webform
    email = unique_email()
    status, answer = local_stack.json(
        "POST", "/v1/opt-out", {"email": email, "jurisdiction": "US-CA"}
    )
    assert status == 202, answer
    request_id = answer["request_id"]

    # When the pipeline runs, then the request completes for every system
    final = local_stack.wait_for(lambda: settled(local_stack, request_id))
    assert final["status"] == "completed", (final, job_ids(local_stack, request_id))
    assert final["systems_total"] == len(EMAIL_SYSTEMS) == final["systems_done"]
    assert set(job_ids(local_stack, request_id)) == set(EMAIL_SYSTEMS)

    # And each sandbox recorded the call its vendor expects, about this request only
    webhook = calls_for(local_stack, "webhook", request_id)
    assert len(webhook) == 1 and webhook[0]["method"] == "POST"
    assert webhook[0]["headers"]["x-optout-signature"].startswith("keyid=local-2026;sha256=")
    body = json.loads(webhook[0]["body"])
    assert {i["type"] for i in body["identifiers"]} == {"email"}
    # Braze: the export finds the email's profile, whose braze_id the update names
    (profile,) = braze_ids(email)
    braze = calls_for(local_stack, "braze", email) + calls_for(local_stack, "braze", profile)
    assert [c["path"] for c in braze] == ["/users/export/ids", "/users/track"]
    # (a batch may hold other tests' jobs: the update names this profile among its attributes)
    updated = [a.get("braze_id") for a in json.loads(braze[1]["body"])["attributes"]]
    assert profile in updated, updated
    # Hashing systems never see the clear email.
    for system in ("google_ads", "meta", "trade_desk", "webhook"):
        status, calls = local_stack.json("GET", f"/_sandbox/{system}/requests")
        assert all(email not in c["body"] for c in calls), system
    # And the local requests view lists it without identifier values
    _, recent = local_stack.json("GET", "/_local/requests?limit=5")
    assert any(r["request_id"] == request_id and r["status"] == "completed" for r in recent)
    assert email not in json.dumps(recent)


def test_a_banner_opt_out_reaches_email_systems_once_the_device_is_linked(
    local_stack: Stack,
) -> None:
    # Given a banner opt-out from a device the bridge knows nothing else about
    device = uuid.uuid4().hex
    status, answer = local_stack.json(
        "POST", "/v1/consent", {"device_id": device, "opt_out": {"sale": True, "share": True}}
    )
    assert status == 202, answer
    banner = local_stack.wait_for(lambda: settled(local_stack, answer["request_id"]))
    assert banner["status"] == "completed"
    email = unique_email()

    # When the backend links that device to an email (unsigned first: refused)
    links = {"links": [{"a": {"type": "device_id", "value": device},
                        "b": {"type": "email", "value": email}}]}  # fmt: skip
    assert local_stack.json("POST", "/v1/identity-links", links)[0] == 403
    status, linked = local_stack.json("POST", "/v1/identity-links", links, headers=SIGV4)
    assert status == 202, linked

    # Then the old opt-out reaches the systems that act on emails
    final = local_stack.wait_for(lambda: settled(local_stack, linked["request_id"]))
    assert final["status"] == "completed", (final, job_ids(local_stack, linked["request_id"]))
    systems = job_ids(local_stack, linked["request_id"])
    assert {"braze", "salesforce"} <= set(systems)
    assert local_stack.wait_for(lambda: calls_for(local_stack, "braze", email))
    # And the device's effective state reflects the opt-out
    _, state = local_stack.json("GET", f"/v1/consent/{device}")
    assert state["opt_out"]["sale"] is True


def test_a_person_braze_did_not_know_is_not_asked_about_again_within_the_quiet_period(
    local_stack: Stack,
) -> None:
    # Given an opt-out for a person the Braze sandbox holds no profile for (no_record)
    email = f"unknown-{uuid.uuid4().hex[:12]}@example.com"
    status, first = local_stack.json("POST", "/v1/opt-out", {"email": email})
    assert status == 202, first
    local_stack.wait_for(lambda: settled(local_stack, first["request_id"]))
    assert job_ids(local_stack, first["request_id"])["braze"]["status"] == "no_record"
    assert len(calls_for(local_stack, "braze", email)) == 1  # the export that found nobody

    # When the same person opts out again, within the quiet period (24 hours by default)
    status, second = local_stack.json("POST", "/v1/opt-out", {"email": email})
    assert status == 202, second
    local_stack.wait_for(lambda: settled(local_stack, second["request_id"]))

    # Then Braze is not called again, nor proven by the first's "no such person": the
    # second request's record says it was not asked, and why
    assert "braze" not in job_ids(local_stack, second["request_id"])
    assert len(calls_for(local_stack, "braze", email)) == 1
    status, record = local_stack.json(
        "GET", f"/v1/admin/requests/{second['request_id']}", headers=SIGV4
    )
    assert status == 200, record
    assert "braze" not in [s["system"] for s in record["systems"]]
    (quiet,) = [q for q in record["not_asked"] if q["system"] == "braze"]
    assert quiet["job_id"] == f"{first['request_id']}:braze"
    assert quiet["note"].startswith("not asked: the vendor answered no such person at ")


def test_requests_complete_while_a_sandbox_fails_half_its_calls(
    start_stack: StackFactory,
) -> None:
    # Given a stack whose webhook sandbox fails half its calls with 503 (every second call:
    # the sandbox's fault schedule is deterministic; the webhook makes one call per job)
    stack = start_stack()
    status, _ = stack.json("POST", "/_sandbox/webhook/faults", {"rate": 0.5, "status": 503})
    assert status == 200

    # When two webform opt-outs go through, one after the other
    attempts = []
    for _ in range(2):
        status, answer = stack.json("POST", "/v1/opt-out", {"email": unique_email()})
        assert status == 202, answer
        final = stack.wait_for(lambda a=answer: settled(stack, a["request_id"]))
        # Then each still completes
        assert final["status"] == "completed", (final, job_ids(stack, answer["request_id"]))
        webhook = job_ids(stack, answer["request_id"])["webhook"]
        assert webhook["status"] == "done"
        attempts.append(webhook["attempts"])

    # And the call its sandbox failed was tried again (within the attempt: the worker tries a
    # vendor call up to 3 times before the queue's back-off)
    assert sum(attempts) >= 2, attempts
    _, calls = stack.json("GET", "/_sandbox/webhook/requests")
    assert len(calls) >= 3 and 503 in [c["status"] for c in calls], calls


def test_stopping_the_stack_leaves_no_process_behind(start_stack: StackFactory) -> None:
    stack = start_stack()
    assert stack.request("GET", "/")[0] == 200
    stack.stop()  # asserts exit code 0 and an empty process group
    with pytest.raises(OSError):
        stack.request("GET", "/v1/openapi.json")


# -- a systems file other than the shipped one (review s14 operator, findings 2 and 3) -------

SIGNED_ADMIN = SIGV4  # the admin routes take any SigV4-signed call locally


def shipped_systems() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DEFAULT_SYSTEMS.read_text())
    return loaded


def renamed(config: dict[str, Any], old: str, new: str) -> dict[str, Any]:
    """`old` renamed `new`: its credentials and sandbox URL follow the name, as they must."""
    for system in config["systems"]:
        if system["name"] == old:
            system["name"] = new
            system["credentials"] = f"optout-bridge/systems/{new}"
            system["options"]["base_url"] = f"${{LOCAL_STACK_URL}}/_sandbox/{new}"
    return config


def with_limits_row(tmp_path: Path, key: str) -> Path:
    """template.yaml with a SystemLimits row for `key`: what an operator adds for a new system
    (`make template`, and so the local stack, refuse one without)."""
    text = (ROOT / "template.yaml").read_text(encoding="utf-8")
    anchor = "  SystemLimits:\n"
    assert anchor in text
    path = tmp_path / "template.yaml"
    path.write_text(text.replace(anchor, f"{anchor}    {key}: {{MaxConcurrency: 2}}\n"))
    return path


def test_a_stack_started_with_a_system_template_yaml_does_not_name_serves_it(
    start_stack: StackFactory, tmp_path: Path
) -> None:
    # Given a systems file renaming salesforce (a queue key the committed template.yaml does
    # not declare: a template with its SystemLimits row), and its credentials under the new
    # name in a secrets file
    secrets = json.loads(SECRETS.read_text())
    secrets["optout-bridge/systems/salesforce_crm"] = secrets["optout-bridge/systems/salesforce"]
    (tmp_path / "secrets.json").write_text(json.dumps(secrets))
    config = renamed(shipped_systems(), "salesforce", "salesforce_crm")
    template = with_limits_row(tmp_path, "salesforcecrm")
    stack = start_stack(
        config, "--secrets", str(tmp_path / "secrets.json"), "--template", str(template)
    )

    # When a webform opt-out goes through
    email = unique_email()
    status, answer = stack.json("POST", "/v1/opt-out", {"email": email})
    assert status == 202, answer

    # Then it completes at every system, the renamed one too (the resolver may send to its
    # queue: the stack's IAM follows the systems file, as a deploy after `make template`)
    final = stack.wait_for(lambda: settled(stack, answer["request_id"]))
    assert final["status"] == "completed", (final, job_ids(stack, answer["request_id"]))
    assert "salesforce_crm" in job_ids(stack, answer["request_id"])
    # (this stack's only request: the calls its sandbox recorded are this request's)
    assert stack.json("GET", "/_sandbox/salesforce_crm/requests")[1]


def test_a_systems_file_the_stack_cannot_serve_stops_it_at_start_naming_the_system(
    tmp_path: Path,
) -> None:
    # Given a renamed system whose credentials the local secrets file does not hold
    path = tmp_path / "systems.json"
    path.write_text(json.dumps(renamed(shipped_systems(), "salesforce", "salesforce_crm")))

    # When the stack starts with it, then it exits at once with one line naming the system
    log = tmp_path / "refused.log"
    process = spawn(free_port(), path, log)
    assert process.wait(START_TIMEOUT) == 2
    assert "system salesforce_crm: the local secrets file has no entry" in log.read_text()
    assert "Traceback" not in log.read_text()


def test_a_system_added_through_local_systems_receives_a_backfill_of_earlier_opt_outs(
    start_stack: StackFactory,
) -> None:
    # Given a stack without trade_desk, and a person opted out there
    before = shipped_systems()
    before["systems"] = [s for s in before["systems"] if s["name"] != "trade_desk"]
    stack = start_stack(before)
    email = unique_email()
    status, answer = stack.json("POST", "/v1/opt-out", {"email": email})
    assert status == 202, answer
    first = stack.wait_for(lambda: settled(stack, answer["request_id"]))
    assert first["status"] == "completed"

    # When the systems file with trade_desk is deployed over the running stack
    status, deployed = stack.json("POST", "/_local/systems", shipped_systems())
    assert status == 200, deployed
    assert deployed["added"] == ["trade_desk"] and deployed["removed"] == []
    assert "trade_desk" in stack.json("GET", "/_local/systems")[1]["systems"]

    # Then the earlier request is still there, and a backfill reaches trade_desk with it
    assert stack.json("GET", f"/v1/requests/{answer['request_id']}")[0] == 200
    status, started = stack.json(
        "POST", "/v1/admin/systems/trade_desk/backfill", headers=SIGNED_ADMIN
    )
    assert status in (200, 202), started
    assert stack.wait_for(lambda: stack.json("GET", "/_sandbox/trade_desk/requests")[1])

    def delivered_to_trade_desk() -> bool:
        body = {"type": "email", "value": email}
        status, person = stack.json("POST", "/v1/admin/lookup", body, headers=SIGNED_ADMIN)
        assert status == 200, person
        return "trade_desk" in json.dumps(person.get("delivered"))

    assert stack.wait_for(delivered_to_trade_desk)

    # And a file the stack cannot serve is refused with the system named, nothing changed
    broken = renamed(shipped_systems(), "meta", "meta_two")
    status, refused = stack.json("POST", "/_local/systems", broken)
    assert status == 422 and "meta_two" in refused["error"]["message"], refused
    assert "meta_two" not in stack.json("GET", "/_local/systems")[1]["systems"]
