"""An operator's retirement of a system removed from the config (review s13 config 3, 5).

Stores are built under local/systems.json, then the stack is "redeployed" without braze (the
resolver and admin containers made again with another SYSTEMS_CONFIG), as the review's probe
did. Braze's job is left pending (its queue gone with the redeploy) or failed for good."""

import html
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from optout.delivery.service import DeliveryService, Received
from optout.delivery.settings import WorkerSettings
from optout.ops.export import request_records
from optout.ops.metrics import MetricsService
from optout.ops.watch import Watch, WatchSettings
from optout.status import REPLAY_CAP
from optout.store import keys
from optout.store.delivery import flights_of
from optout.store.proof import load_with_proof
from optout.store.table import Table
from optout.sweep import Sweeper, SweepSettings
from optout.systems import load_systems
from optout.webform_pages import ALL_RETIRED
from tests.conftest import Aws
from tests.integration.test_resolver_delivery import Vendor
from tests.support import iam
from tests.support.http_events import http_event, json_body
from tests.support.lambdas import invoke
from tests.support.pipeline import Pipeline, build_pipeline

EMAIL = "pat.retire@example.com"
FULL = str(Path("local/systems.json").resolve())
QUEUE_KEY = {"webhook": "webhook", "segment": "segment", "braze": "braze",
             "salesforce": "salesforce", "google_ads": "googleads", "meta": "meta",
             "trade_desk": "tradedesk"}  # fmt: skip
PURPOSES = ["sale", "share", "targeted_advertising"]  # the default opt-out's, at braze
REASON = "Braze contract ended in November; the system was removed from the config"


@pytest.fixture
def pipe(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> Iterator[Pipeline]:
    yield build_pipeline(aws, monkeypatch)


def without(tmp: Path, name: str) -> str:
    config = json.loads(Path(FULL).read_text())
    config["systems"] = [s for s in config["systems"] if s["name"] != name]
    path = tmp / f"without-{name}.json"
    path.write_text(json.dumps(config))
    return str(path)


def redeploy(pipe: Pipeline, monkeypatch: pytest.MonkeyPatch, path: str) -> None:
    """New containers with another systems.json."""
    monkeypatch.setenv("SYSTEMS_CONFIG", path)
    pipe.resolver.resolver.cache_clear()
    pipe.admin.services.cache_clear()


def work(pipe: Pipeline, system: str, vendor: Vendor) -> None:
    bodies = pipe.drain(QUEUE_KEY[system])
    service = DeliveryService(
        table(pipe), load_systems(FULL), WorkerSettings(table_name=pipe.aws.table_name),
        lambda _system: vendor,  # type: ignore[arg-type,return-value]
    )  # fmt: skip
    received = [Received(f"m{n}", json.dumps(b), 1) for n, b in enumerate(bodies)]
    service.deliver(received, lambda message, delay: None)


def table(pipe: Pipeline) -> Table:
    return Table(pipe.aws.dynamodb, pipe.aws.table_name)


def stuck_at_braze(pipe: Pipeline, braze: Vendor | None = None) -> str:
    """An opt-out every system but braze confirmed; braze's job pending (its message lost
    with its queue) or, with `braze`, answered by that vendor."""
    request_id = str(pipe.post("/v1/opt-out", {"email": EMAIL})["request_id"])
    pipe.resolve()
    for system in ("webhook", "segment", "salesforce", "google_ads", "meta", "trade_desk"):
        work(pipe, system, Vendor())
    if braze is None:
        pipe.drain("braze")
    else:
        work(pipe, "braze", braze)
    return request_id


def removed_braze(
    pipe: Pipeline, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, braze: Vendor | None = None
) -> str:
    """stuck_at_braze's opt-out (its request id), then braze removed from the config."""
    request_id = stuck_at_braze(pipe, braze)
    redeploy(pipe, monkeypatch, without(tmp_path, "braze"))
    return request_id


def retire(pipe: Pipeline, system: str, reason: str = REASON) -> dict[str, Any]:
    path = f"/v1/admin/systems/{system}/retire"
    event = http_event("POST", path, {"reason": reason}, path_parameters={"system": system},
                       iam=True)  # fmt: skip
    answer = invoke(pipe.admin, event)
    return {"statusCode": answer["statusCode"], **json_body(answer)}


def public(pipe: Pipeline, request_id: str) -> dict[str, Any]:
    """The public status once any earlier answer it relies on is replayed (tests/unit/
    test_status.py times that): what the proofs decide, whatever the vendors' timings."""
    after_replays = datetime.now(UTC) + REPLAY_CAP
    return pipe.get_at(after_replays, f"/v1/requests/{request_id}", request_id=request_id)


def admin(pipe: Pipeline, request_id: str) -> dict[str, Any]:
    path = f"/v1/admin/requests/{request_id}"
    event = http_event("GET", path, path_parameters={"request_id": request_id}, iam=True)
    return json_body(invoke(pipe.admin, event))


def lookup(pipe: Pipeline) -> dict[str, Any]:
    body = {"type": "email", "value": EMAIL}
    return json_body(invoke(pipe.admin, http_event("POST", "/v1/admin/lookup", body, iam=True)))


def delivery_record(pipe: Pipeline, system: str) -> dict[str, Any]:
    body = {"type": "email", "value": EMAIL}
    answer = invoke(pipe.admin, http_event("POST", "/v1/admin/exports/identity", body, iam=True))
    records = json_body(answer)["records"]
    (found,) = [r for r in records if r["record"] == "delivery" and r["system"] == system]
    return dict(found)


def watch(pipe: Pipeline, days: float) -> Any:
    """A watch run `days` on. The requests arrive now: a first run reads back to today (16
    Queries a day; the default 31 days were read empty); later runs go on from its cursor."""
    later = datetime.now(UTC) + timedelta(days=days, minutes=5)
    settings = WatchSettings(lag_seconds=0, backfill_days=int(days) + 1)
    return Watch(table(pipe), settings, clock=lambda: later).run()


# Each checkpoint's window read in one slice (by default six of 2 minutes, each a Query per
# shard): the same events; how a window is sliced is tests/integration/test_sweeper.py's.
SWEEP = SweepSettings(slice=SweepSettings().window)


def sweep(pipe: Pipeline, hours: float) -> Any:
    later = datetime.now(UTC) + timedelta(hours=hours)
    return Sweeper(table(pipe), SWEEP, clock=lambda: later).sweep()


def test_a_request_stuck_on_a_removed_system_completes_once_it_is_retired(
    pipe: Pipeline, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Given an opt-out whose braze job is pending, braze then removed from the config, and the
    # watch's first look at it (its §7102 ledger counts braze)
    request_id = removed_braze(pipe, monkeypatch, tmp_path)
    watch(pipe, 0)
    before = admin(pipe, request_id)
    assert (before["status"], before["systems_total"], before["systems_done"]) == (
        "processing",
        6,
        5,
    )
    # (the public view counts no progress while processing: review s20 diff C1)
    assert (public(pipe, request_id)["status"], public(pipe, request_id)["systems_done"]) == (
        "processing",
        0,
    )
    assert sorted(lookup(pipe)["in_flight"]["braze"]) == PURPOSES
    assert lookup(pipe)["retired"] == {}
    # When an operator retires braze
    answer = retire(pipe, "braze")
    assert answer["statusCode"] == 200, answer
    assert (answer["system"], answer["status"], answer["already_retired"]) == (
        "braze",
        "retired",
        False,
    )
    assert answer["retirement_id"] == answer["request_id"]
    assert pipe.resolve() == {"batchItemFailures": []}  # the retire event: nothing to do
    # Then the request reads completed: braze is neither done nor failed, nor counted
    after = public(pipe, request_id)
    assert (after["status"], after["systems_total"], after["systems_done"]) == ("completed", 5, 5)
    assert after["completed_at"] >= answer["retired_at"]
    # ... the admin view shows braze retired, with who, when and why
    detail = admin(pipe, request_id)
    (braze,) = [s for s in detail["systems"] if s["system"] == "braze"]
    assert (detail["status"], braze["satisfied"], braze["status"]) == (
        "completed",
        "retired",
        "pending",
    )
    assert braze["retired"]["reason"] == REASON
    assert braze["retired"]["retired_at"] == answer["retired_at"]
    assert braze["retired"]["retired_by"] and braze["retired"]["event_id"] == answer["request_id"]
    # ... the retire event keeps the reason and who as evidence (§7101)
    event = admin(pipe, answer["request_id"])["event"]
    assert (event["event_type"], event["evidence"]["reason"]) == ("retire", REASON)
    assert event["evidence"]["acted_by"] == braze["retired"]["retired_by"]
    # ... and the export has a retirement record for it
    items, covering = load_with_proof(table(pipe), request_id)
    records = request_records(request_id, items, covering)
    (retired,) = [r for r in records if r["record"] == "retirement"]
    assert (retired["system"], retired["reason"], retired["request_id"]) == (
        "braze",
        REASON,
        request_id,
    )
    # ... the identity's lookup and export show braze's open purposes as retired, not in
    # flight, with who, when and why (review s14 operator 8)
    person = lookup(pipe)
    assert "braze" not in person["in_flight"]
    assert person["retired"]["braze"] == {"purposes": PURPOSES} | braze["retired"]
    exported = delivery_record(pipe, "braze")
    assert (exported["in_flight"], exported["retired"]) == ([], PURPOSES)
    assert exported["retirement"] == braze["retired"]
    # ... the sweep re-drives no braze job, and the watch 40 days on finds nothing overdue
    for hours in (2.3, 8.1, 23.1):
        assert sweep(pipe, hours).stuck_jobs == []
    report = watch(pipe, 40)
    assert len(report.overdue) == 0 and report.overdue_by_system() == {}
    # ... and the §7102 figures count the request complied with in whole, braze's part in it
    # as retired, not dropped (review s14 recheck 2)
    year = int(after["completed_at"][:4])
    found = MetricsService(table(pipe)).year(year, after["completed_at"])
    assert found["requests"]["complied_whole"] == 1
    assert found["systems"]["braze"] == {
        "done": 0, "failed": 0, "processing": 0, "retired": 1, "success_rate": None, "overdue": 0,
    }  # fmt: skip
    assert found["systems"]["webhook"]["done"] == 1, found["systems"]


def test_a_retired_systems_open_job_loses_its_identifier_values_at_the_watchs_next_check(
    pipe: Pipeline, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Given braze's job pending with the clear email when braze was removed; the watch's checks
    # before the retirement leave it as it is (review s18 S3: no worker, status check or replay
    # reaches such a job again, so its email stayed until the job's TTL, 1,125 days)
    request_id = removed_braze(pipe, monkeypatch, tmp_path)
    watch(pipe, 0)
    assert job_values(pipe, request_id, "braze") == [EMAIL]
    # When an operator retires braze and the watch next checks the request, its calls made
    # under the watch's role (tests/conftest.py checks them against template.yaml: the
    # UpdateItem grant names the attributes the drop writes and reads only, review s18 diff B7)
    retire(pipe, "braze")
    as_watch = iam.current_function.set("WatchFunction")
    try:
        watch(pipe, 1)
    finally:
        iam.current_function.reset(as_watch)
    drops = [r for r in pipe.aws.calls if r.action == "dynamodb:UpdateItem"
             and r.function == "WatchFunction" and "identifiers" in r.attributes]  # fmt: skip
    assert len(drops) == 1 and not iam.denied(drops)
    # Then the job keeps its identifier types and keyed hashes, not the value, and says when
    job = own_job(pipe, request_id, "braze")
    assert job_values(pipe, request_id, "braze") == []
    assert [i["type"] for i in job["identifiers"]] == ["email"] and job["identifiers"][0]["key"]
    assert (job["status"], "values_dropped_at" in job) == ("pending", True)
    # ... the request still reads completed, braze retired, and no other job was written
    assert public(pipe, request_id)["status"] == "completed"
    others = [i for i in table_items(pipe, request_id) if i["sk"].startswith("JOB#")]
    assert [i["system"] for i in others if "values_dropped_at" in i] == ["braze"]


def own_job(pipe: Pipeline, request_id: str, system: str) -> dict[str, Any]:
    (job,) = [i for i in table_items(pipe, request_id) if i["sk"] == f"JOB#{system}"]
    return job


def job_values(pipe: Pipeline, request_id: str, system: str) -> list[str]:
    job = own_job(pipe, request_id, system)
    return [str(i["value"]) for i in job["identifiers"] if i.get("value")]


def table_items(pipe: Pipeline, request_id: str) -> list[dict[str, Any]]:
    return pipe.partition(keys.request_pk(request_id))


def test_without_a_retirement_the_removed_systems_request_stays_open_and_overdue(
    pipe: Pipeline, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # The case the retirement settles, as it is without one: processing for ever, re-driven
    # at each checkpoint, overdue at the watch
    request_id = removed_braze(pipe, monkeypatch, tmp_path)
    assert sweep(pipe, 2.3).stuck_jobs == [f"{request_id}:braze"]
    assert pipe.resolve() == {"batchItemFailures": []}  # logged: not in the config
    assert public(pipe, request_id)["status"] == "processing"
    watch(pipe, 0)
    assert watch(pipe, 40).overdue.request_ids == [request_id]


def test_a_failed_job_at_a_removed_system_is_retired_and_a_second_retire_keeps_the_first(
    pipe: Pipeline, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Given braze failed for good, then removed (its failure listed for a replay that no
    # longer exists: the replay route answers 404)
    request_id = removed_braze(pipe, monkeypatch, tmp_path, Vendor(refuse=True))
    assert public(pipe, request_id)["status"] == "failed"
    watch(pipe, 0)
    # When braze is retired (the failed listing is its record: no watch run needed)
    first = retire(pipe, "braze")
    assert (first["statusCode"], first["already_retired"]) == (200, False)
    pipe.resolve()
    # Then the request reads completed, braze retired with the reason
    after = public(pipe, request_id)
    assert (after["status"], after["systems_failed"], after["systems_total"]) == ("completed", 0, 5)
    (braze,) = [s for s in admin(pipe, request_id)["systems"] if s["system"] == "braze"]
    assert (braze["satisfied"], braze["status"]) == ("retired", "failed")
    assert braze["retired"]["event_id"] == first["request_id"]
    # When braze is retired again (a retry, "just to be sure") (review s14 operator 5)
    second = retire(pipe, "braze", "Braze retired again after a second review of the contract")
    pipe.resolve()
    # Then it answers 200 with the retirement in force, the first
    assert (second["statusCode"], second["already_retired"]) == (200, True)
    assert (second["retired_at"], second["retirement_id"]) == (
        first["retired_at"],
        first["request_id"],
    )
    assert second["request_id"] != first["request_id"]
    # ... the settled request keeps its completion time and the first reason; the second
    # retirement is kept after it (review s24 diff C C1: it retires only jobs made since)
    again = public(pipe, request_id)
    assert (again["status"], again["completed_at"]) == ("completed", after["completed_at"])
    (braze,) = [s for s in admin(pipe, request_id)["systems"] if s["system"] == "braze"]
    by = braze["retired"]["retired_by"]
    assert braze["retired"] == {
        "retired_at": first["retired_at"], "retired_by": by, "reason": REASON,
        "event_id": first["request_id"], "retired_again": [{
            "retired_at": braze["retired"]["retired_again"][0]["retired_at"], "retired_by": by,
            "reason": "Braze retired again after a second review of the contract",
            "event_id": second["request_id"]}],
    }  # fmt: skip
    (item,) = pipe.items(keys.RETIRED_PK)
    assert (item["retired_at"], item["reason"]) == (first["retired_at"], REASON)
    # ... and the second event records the attempt, naming the retirement in force
    event = admin(pipe, second["request_id"])["event"]
    assert event["event_type"] == "retire"
    assert event["evidence"]["already_retired"] == first["request_id"]
    assert len(watch(pipe, 40).overdue) == 0


def test_an_unknown_system_or_a_reason_naming_a_person_is_refused(pipe: Pipeline) -> None:
    # A name neither configured nor on record: 404, nothing written
    answer = retire(pipe, "nosuchsystem")
    assert (answer["statusCode"], answer["error"]["field"]) == (404, "system")
    assert pipe.items(keys.RETIRED_PK) == []
    # A reason holding an email address: 422, the text never echoed
    answer = retire(pipe, "braze", "asked by someone.else@example.com to stop")
    assert (answer["statusCode"], answer["error"]["field"]) == (422, "reason")
    assert "example.com" not in json.dumps(answer)
    assert pipe.items(keys.RETIRED_PK) == []


def test_an_unknown_name_close_to_a_removed_system_on_record_is_answered_with_it(
    pipe: Pipeline, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Given braze removed from the config, its request counted in the ledgers (the watch ran)
    removed_braze(pipe, monkeypatch, tmp_path)
    watch(pipe, 0)
    # When the operator mistypes it (review s14 operator 10: `retire braz` named no match)
    answer = retire(pipe, "braz")
    # Then 404 naming the close name on record (braze is in no config any more), nothing written
    assert (answer["statusCode"], answer["error"]["field"]) == (404, "system")
    assert answer["error"]["message"].endswith("; did you mean braze?")
    assert pipe.items(keys.RETIRED_PK) == []
    # ... a typo of a configured name is answered with it too, and a far name with none
    assert "did you mean trade_desk?" in retire(pipe, "tradedesk")["error"]["message"]
    assert "did you mean" not in retire(pipe, "nosuchsystem")["error"]["message"]


def operate(pipe: Pipeline, system: str, action: str) -> dict[str, Any]:
    """POST /v1/admin/systems/{system}/{action} (replay, redrive, backfill)."""
    path = f"/v1/admin/systems/{system}/{action}"
    event = http_event("POST", path, path_parameters={"system": system}, iam=True)
    answer = invoke(pipe.admin, event)
    return {"statusCode": answer["statusCode"], **json_body(answer)}


def test_a_replay_of_a_removed_system_with_failed_jobs_points_to_the_retire(
    pipe: Pipeline, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Given braze failed for good, then removed from the config, not retired (review s30
    # operator F5: the 404 read as a typo, naming only the configured systems)
    removed_braze(pipe, monkeypatch, tmp_path, Vendor(refuse=True))
    # When the operator replays it (the CLI's redrive, then replay), or backfills it
    for action in ("redrive", "replay", "backfill"):
        answer = operate(pipe, "braze", action)
        # Then 404 saying it is no longer configured, on record, and naming the retire
        message = answer["error"]["message"]
        assert (answer["statusCode"], answer["error"]["field"]) == (404, "system"), action
        assert "braze is no longer configured and is on record" in message, action
        assert "`optout retire braze --reason TEXT`" in message, action
    # ... a name on no record is still answered as a typo, with no retire named
    answer = operate(pipe, "braz", "replay")
    assert answer["statusCode"] == 404
    assert "optout retire" not in answer["error"]["message"]
    assert "did you mean" not in answer["error"]["message"]  # braze is configured no more
    # ... and once retired, as retired
    assert retire(pipe, "braze")["statusCode"] == 200
    assert "braze was retired at" in operate(pipe, "braze", "replay")["error"]["message"]


def test_a_system_still_configured_is_not_retired(pipe: Pipeline) -> None:
    # Given braze failed for good, still configured: its vendor still receives data, so its
    # open jobs are still owed (review s14 counsel 1, operator 4 and 9)
    request_id = stuck_at_braze(pipe, Vendor(refuse=True))
    # When an operator retires it before deploying the config without it
    answer = retire(pipe, "braze")
    # Then 409, saying what to do first; nothing is written and the request stays failed
    assert (answer["statusCode"], answer["error"]["code"], answer["error"]["field"]) == (
        409,
        "conflict",
        "system",
    )
    assert "remove it from systems.json and deploy first" in answer["error"]["message"]
    assert pipe.items(keys.RETIRED_PK) == []
    assert public(pipe, request_id)["status"] == "failed"
    (braze,) = [s for s in admin(pipe, request_id)["systems"] if s["system"] == "braze"]
    assert braze["status"] == "failed" and "retired" not in braze
    assert pipe.items(keys.failed_pk("braze"))  # still listed for its replay


def test_a_backfill_of_a_retired_name_added_back_sends_everyone_again(
    pipe: Pipeline, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Given braze retired with a job pending (the person's marks still name it), then braze
    # under contract again: added back to the config
    removed_braze(pipe, monkeypatch, tmp_path)
    watch(pipe, 0)
    assert retire(pipe, "braze")["statusCode"] == 200
    assert pipe.resolve() == {"batchItemFailures": []}
    redeploy(pipe, monkeypatch, FULL)
    # When the operator backfills braze, without --resend (review s14 recheck 1)
    path = "/v1/admin/systems/braze/backfill"
    answer = invoke(pipe.admin, http_event("POST", path, iam=True,
                                           path_parameters={"system": "braze"}))  # fmt: skip
    assert answer["statusCode"] == 202, answer["body"]
    backfill_id = json_body(answer)["request_id"]
    # Then it runs as a --resend: the retired job's marks do not count, the person is sent
    event = admin(pipe, backfill_id)["event"]
    record = f"{event['received_at'][:4]}#{backfill_id}"  # its BACKFILL record's key
    assert event["operation"] == {"system": "braze", "resend": 1, "retired_name": 1,
                                  "record": record}  # fmt: skip
    assert pipe.resolve() == {"batchItemFailures": []}
    sent = pipe.drain("braze")
    assert len(sent) == 1 and sent[0]["system"] == "braze"
    # ... and the person's braze marks now name the backfill's job, not the retired one
    assert sorted(lookup(pipe)["in_flight"]["braze"]) == PURPOSES
    assert "braze" not in lookup(pipe)["retired"]


def test_a_retired_name_added_back_sends_the_next_opt_out_without_a_backfill(
    pipe: Pipeline, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Given braze retired with a job pending (the person's marks still name it), then braze
    # added back to the config, and no backfill (review s18 operator M2)
    removed_braze(pipe, monkeypatch, tmp_path)
    watch(pipe, 0)
    assert retire(pipe, "braze")["statusCode"] == 200
    assert pipe.resolve() == {"batchItemFailures": []}
    redeploy(pipe, monkeypatch, FULL)
    # When the same person opts out again
    request_id = str(pipe.post("/v1/opt-out", {"email": EMAIL})["request_id"])
    assert pipe.resolve() == {"batchItemFailures": []}
    # Then the retired job's marks count for nothing: braze gets a job of this request's
    (braze,) = [s for s in admin(pipe, request_id)["systems"] if s["system"] == "braze"]
    assert (braze["proof"], braze["status"]) == ("own", "pending")
    assert sorted(lookup(pipe)["in_flight"]["braze"]) == PURPOSES
    assert "braze" not in lookup(pipe)["retired"]
    # ... the request is not completed until braze confirms it
    assert public(pipe, request_id)["status"] == "processing"
    work(pipe, "braze", Vendor())
    assert public(pipe, request_id)["status"] == "completed"
    # ... and the other systems' marks (never retired) still spare them a second job
    assert all(not pipe.drain(QUEUE_KEY[s]) for s in QUEUE_KEY if s != "braze")


def configured_with(tmp: Path, name: str, purposes: list[str]) -> str:
    """The full config with `name` limited to `purposes`."""
    config = json.loads(Path(FULL).read_text())
    for system in config["systems"]:
        if system["name"] == name:
            system["purposes"] = purposes
    path = tmp / f"{name}-{'-'.join(purposes)}.json"
    path.write_text(json.dumps(config))
    return str(path)


def test_a_retired_name_added_back_with_fewer_purposes_leaves_no_retired_job_on_the_mark(
    pipe: Pipeline, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Given braze retired with a job pending for every purpose (never sent), then added back
    # with "sale" only, and the person opts out (review s18 diff B1)
    old = removed_braze(pipe, monkeypatch, tmp_path)
    watch(pipe, 0)
    assert retire(pipe, "braze")["statusCode"] == 200
    assert pipe.resolve() == {"batchItemFailures": []}
    redeploy(pipe, monkeypatch, configured_with(tmp_path, "braze", ["sale"]))
    first = str(pipe.post("/v1/opt-out", {"email": EMAIL})["request_id"])
    assert pipe.resolve() == {"batchItemFailures": []}
    # Then the new job replaces the retired one's mark: no purpose still names the old job
    (mark,) = [i for i in pipe.items("ID#email#") if i["sk"] == keys.delivery_sk("braze")]
    named = {k: v for k, v in mark.items() if k.startswith("job_")}
    assert named == {"job_sale": f"{first}:braze"}, named
    assert set(mark["inflight"]) == {"sale"}
    assert not any(k.startswith("until_") and k != "until_sale" for k in mark)
    assert all(f"{old}:braze" not in str(v) for v in mark.values())
    work(pipe, "braze", Vendor())
    # When braze's purposes are all restored and the person opts out again
    redeploy(pipe, monkeypatch, FULL)
    second = str(pipe.post("/v1/opt-out", {"email": EMAIL})["request_id"])
    assert pipe.resolve() == {"batchItemFailures": []}
    # Then the purposes the first job did not carry reach braze in a job of this request's
    (job,) = [i for i in pipe.partition(keys.request_pk(second)) if i["sk"] == keys.job_sk("braze")]
    assert [sorted(f["purposes"]) for f in flights_of(job)] == [["share", "targeted_advertising"]]
    (braze,) = [s for s in admin(pipe, second)["systems"] if s["system"] == "braze"]
    assert f"{old}:braze" not in json.dumps(braze)
    assert public(pipe, second)["status"] == "processing"
    # ... and the request completes only once braze confirms that job
    work(pipe, "braze", Vendor())
    assert public(pipe, second)["status"] == "completed"
    (mark,) = [i for i in pipe.items("ID#email#") if i["sk"] == keys.delivery_sk("braze")]
    assert {k: v for k, v in mark.items() if k.startswith("job_")} == {
        "job_sale": f"{first}:braze",
        "job_share": f"{second}:braze",
        "job_targeted_advertising": f"{second}:braze",
    }


def page(pipe: Pipeline, request_id: str) -> str:
    """The status page a browser gets, tags dropped."""
    path = f"/v1/requests/{request_id}"
    event = http_event("GET", path, path_parameters={"request_id": request_id},
                       headers={"accept": "text/html"})  # fmt: skip
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", invoke(pipe.capture, event)["body"]))


def test_a_request_whose_systems_were_all_retired_does_not_read_none_needed(
    pipe: Pipeline, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Given an opt-out for a customer number (webhook, segment and braze take it) that none of
    # them confirmed, and then all three removed from the config and retired
    body = {"customer_id": "cust-retired-all"}
    request_id = str(pipe.post("/v1/opt-out", body)["request_id"])
    pipe.resolve()
    pipe.drain_all()
    config = json.loads(Path(FULL).read_text())
    gone = {"webhook", "segment", "braze"}
    config["systems"] = [s for s in config["systems"] if s["name"] not in gone]
    (tmp_path / "kept.json").write_text(json.dumps(config))
    redeploy(pipe, monkeypatch, str(tmp_path / "kept.json"))
    watch(pipe, 0)
    for system in sorted(gone):
        assert retire(pipe, system)["statusCode"] == 200
    pipe.resolve()
    # When the person opens the status link
    status = public(pipe, request_id)
    text = page(pipe, request_id)
    # Then the JSON keeps its fields (completed, no system counted) and the page says the
    # systems were retired, not that none needed to act (review s22 diff B7)
    assert (status["status"], status["systems_total"]) == ("completed", 0)
    assert set(status) == {"request_id", "status", "received_at", "deadline", "completed_at",
                           "systems_total", "systems_done", "systems_failed"}  # fmt: skip
    assert ALL_RETIRED in html.unescape(text) and "Systems 3 no longer in use" in text
    assert "needed" not in text and "Your privacy choice" not in text
