"""A request's record names every configured system: those that got no job, and why, and the
systems file in force (its fingerprint); and the systems retired for it (review s30 operator
F2, F3)."""

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from optout.ops.export import request_records
from optout.store.proof import load_with_proof
from optout.systems import fingerprint
from tests.conftest import Aws
from tests.integration.test_resolver_delivery import Vendor
from tests.integration.test_retire import admin, removed_braze, retire, table, watch
from tests.support.cli import LOCAL_URL, AdminTransport, optout
from tests.support.pipeline import Pipeline, build_pipeline

EMAIL = "pat.scope@example.com"
DEVICE = "dev-scope-aaaaaaaaaaaa"
LOCAL_SYSTEMS = Path("local/systems.json")
SEGMENT_NOTE = "not planned: takes none of the identifier types known for this person"


@pytest.fixture
def pipe(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> Iterator[Pipeline]:
    yield build_pipeline(aws, monkeypatch)


def resolution(pipe: Pipeline, request_id: str) -> dict[str, Any]:
    (found,) = [i for i in pipe.items(f"REQ#{request_id}") if i["sk"] == "RESOLUTION"]
    return dict(found)


def status_text(pipe: Pipeline, capsys: pytest.CaptureFixture[str], request_id: str) -> str:
    ran = optout(capsys, AdminTransport(pipe.admin), "--base-url", LOCAL_URL, "status", request_id)
    assert ran.code == 0, ran.err
    return ran.out


def request_record(pipe: Pipeline, request_id: str) -> dict[str, Any]:
    items, covering = load_with_proof(table(pipe), request_id)
    (found,) = [r for r in request_records(request_id, items, covering) if r["record"] == "request"]
    return dict(found)


def test_an_email_opt_out_records_segment_as_not_planned_and_the_config_in_force(
    pipe: Pipeline, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given an email opt-out under local/systems.json (segment takes customer ids only)
    request_id = str(pipe.post("/v1/opt-out", {"email": EMAIL})["request_id"])
    # When the resolver resolves it
    assert pipe.resolve() == {"batchItemFailures": []}
    # Then its RESOLUTION names segment, the one configured system with no job, and why, and
    # the fingerprint of the file in force, recomputed here as an operator would
    config = fingerprint(json.loads(LOCAL_SYSTEMS.read_text(encoding="utf-8")))
    stored = resolution(pipe, request_id)
    assert stored["skipped"] == {"no_identifier": ["segment"]}
    assert stored["systems_sha256"] == config and re.fullmatch(r"[0-9a-f]{16}", config)
    # ... the operator record lists it with its note, beside the six systems it reached
    detail = admin(pipe, request_id)
    assert len(detail["systems"]) == detail["systems_total"] == 6
    assert detail["systems_skipped"] == [
        {"system": "segment", "reason": "no_identifier", "note": SEGMENT_NOTE}
    ]
    assert (detail["systems_config"], detail["retired"]) == (config, [])
    # ... `optout status` prints it after the six, and the config
    text = status_text(pipe, capsys, request_id)
    assert f"segment  {SEGMENT_NOTE}\n" in text
    assert f"systems config at resolution: {config}\n" in text
    # ... and the export's request record carries the same
    record = request_record(pipe, request_id)
    assert record["systems_skipped"] == detail["systems_skipped"]
    assert (record["systems_config"], record["retired"]) == (config, [])
    # ... while the public status has none of it
    public = pipe.get(f"/v1/requests/{request_id}", request_id=request_id)
    assert not {"systems_skipped", "systems_config", "retired"} & set(public)


def test_each_reason_a_configured_system_got_no_job(pipe: Pipeline) -> None:
    # Given a banner limit request for a device: webhook takes device ids and serves it,
    # segment serves it but takes customer ids only, the others serve none of it
    limit = pipe.post("/v1/consent", {"device_id": DEVICE, "opt_out": {"limit_sensitive": True}})
    pipe.resolve()
    assert resolution(pipe, limit["request_id"])["skipped"] == {
        "no_identifier": ["segment"],
        "not_opted_out": ["braze", "google_ads", "meta", "salesforce", "trade_desk"],
    }
    # Given the device linked to an email, which sends the email its opt-out
    body = {"links": [{"a": {"type": "device_id", "value": DEVICE},
                       "b": {"type": "email", "value": EMAIL}}]}  # fmt: skip
    pipe.post("/v1/identity-links", body, iam=True)
    pipe.resolve()
    # When the same link is posted again (it asks nothing; every job it calls for exists)
    again = pipe.post("/v1/identity-links", body, iam=True)
    pipe.resolve()
    # Then the systems earlier jobs carry read "nothing new", the others as before
    assert resolution(pipe, again["request_id"])["skipped"] == {
        "no_identifier": ["segment"], "nothing_new": ["webhook"],
        "not_opted_out": ["braze", "google_ads", "meta", "salesforce", "trade_desk"],
    }  # fmt: skip
    notes = {s["system"]: s["note"] for s in admin(pipe, again["request_id"])["systems_skipped"]}
    assert notes["webhook"].startswith("not planned: earlier jobs already carry")
    assert notes["braze"] == (
        "not planned: the person is opted out of none of the purposes it serves"
    )


def test_a_resolution_from_before_reads_not_recorded(
    pipe: Pipeline, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a request resolved before the fields were kept (both removed from its RESOLUTION)
    request_id = str(pipe.post("/v1/opt-out", {"email": EMAIL})["request_id"])
    pipe.resolve()
    table(pipe).client.update_item(
        TableName=pipe.aws.table_name,
        Key={"pk": {"S": f"REQ#{request_id}"}, "sk": {"S": "RESOLUTION"}},
        UpdateExpression="REMOVE skipped, systems_sha256",
    )
    # When an operator reads it
    detail = admin(pipe, request_id)
    # Then it reads as before, with nothing said to be skipped: "not recorded"
    assert (detail["systems_skipped"], detail["systems_config"]) == (None, None)
    assert len(detail["systems"]) == 6
    text = status_text(pipe, capsys, request_id)
    assert "systems not planned: not recorded (resolved before 2026-12-03)\n" in text
    assert "segment" not in text and "systems config" not in text
    record = request_record(pipe, request_id)
    assert (record["systems_skipped"], record["systems_config"]) == (None, None)


def test_a_system_retired_after_it_refused_is_named_on_a_request_complied_with_in_whole(
    pipe: Pipeline,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given braze refused an opt-out for good, then braze removed from the config and retired
    request_id = removed_braze(pipe, monkeypatch, tmp_path, Vendor(refuse=True))
    watch(pipe, 0)
    assert retire(pipe, "braze")["statusCode"] == 200
    pipe.resolve()
    # When an operator reads the request
    detail = admin(pipe, request_id)
    # Then it is completed, and names braze as retired, in the record, the status header and
    # the export's request record beside its outcome
    assert (detail["status"], detail["retired"]) == ("completed", ["braze"])
    header = status_text(pipe, capsys, request_id).splitlines()[1]
    assert header == "systems: 5 of 5 done, 0 failed, 1 retired: braze (failed)"
    record = request_record(pipe, request_id)
    assert (record["outcome"], record["retired"]) == ("complied_whole", ["braze"])


def test_a_phone_only_opt_out_is_planned_for_braze(pipe: Pipeline) -> None:
    # Given an opt-out by phone alone under local/systems.json (review s31 vendors V31-1:
    # Braze, which can find people by phone, was skipped as `no_identifier`)
    request_id = str(pipe.post("/v1/opt-out", {"phone": "+1 415 555 0177"})["request_id"])
    # When the resolver resolves it
    assert pipe.resolve() == {"batchItemFailures": []}
    # Then only the systems that take no phone are skipped, and Braze has its job
    assert resolution(pipe, request_id)["skipped"] == {"no_identifier": ["salesforce", "segment"]}
    assert len(pipe.drain("braze")) == 1
