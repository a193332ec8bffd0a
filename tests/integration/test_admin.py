"""Operator routes (admin function): a request's record and a lookup by identifier, IAM only,
allow-listed callers only, no PII out."""

import itertools
import json
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from local.environment import LOCAL_IAM_CALLER
from tests.conftest import Aws
from tests.support.aws_hooks import session_hooks
from tests.support.http_events import http_event, json_body
from tests.support.lambdas import invoke, load_function
from tests.support.log_lines import logged_lines
from tests.support.pipeline import Pipeline, build_pipeline

EMAIL = "Jane.Doe@Example.com"
DEVICE = "dev-admin-aaaaaaaaaaaa"
LINK = {"links": [{"a": {"type": "device_id", "value": DEVICE},
                   "b": {"type": "email", "value": EMAIL}}]}  # fmt: skip


@pytest.fixture
def pipe(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> Iterator[Pipeline]:
    yield build_pipeline(aws, monkeypatch)


def admin_get(pipe: Pipeline, request_id: str, iam: bool = True) -> dict:
    path = f"/v1/admin/requests/{request_id}"
    return invoke(
        pipe.admin, http_event("GET", path, path_parameters={"request_id": request_id}, iam=iam)
    )


def test_request_detail_lists_every_system_with_identifier_types_but_no_values(
    pipe: Pipeline,
) -> None:
    # Given a webform opt-out with an email and a device, resolved into jobs
    request = pipe.post("/v1/opt-out", {"email": EMAIL, "device_id": DEVICE})
    pipe.resolve()
    # When an operator asks for the record
    answer = admin_get(pipe, request["request_id"])
    # Then it shows how the request arrived and one entry per system, without the email
    assert answer["statusCode"] == 200
    detail = json_body(answer)
    assert detail["status"] == "processing"
    assert detail["event"]["source"] == "webform"
    assert detail["event"]["identifier_types"] == ["device_id", "email"]
    systems = {s["system"]: s for s in detail["systems"]}
    # (segment matches customer ids only, and this request has none)
    assert set(systems) == {"webhook", "braze", "salesforce", "google_ads", "meta", "trade_desk"}
    assert systems["salesforce"]["identifier_types"] == ["email"]
    assert systems["webhook"]["identifier_types"] == ["device_id", "email"]
    assert all(s["status"] == "pending" for s in systems.values())
    assert "jane" not in answer["body"].lower()


def test_request_detail_and_export_name_the_agent_who_filed_it(pipe: Pipeline) -> None:
    # Given an authorised agent's opt-out (CCPA §7026: counsel may ask it for the permission)
    agent = {"name": "Acme Agents", "agent_id": "A-1"}
    request = pipe.post("/v1/opt-out", {"email": EMAIL, "agent": agent})
    pipe.resolve()
    # When an operator reads its record, and exports the day it came in
    detail = json_body(admin_get(pipe, request["request_id"]))
    day = detail["received_at"][:10]
    export = invoke(pipe.admin, http_event("POST", "/v1/admin/exports/range",
                                           {"from": day, "to": day}, iam=True))  # fmt: skip
    # Then both say which agent filed it
    assert (detail["event"]["source"], detail["event"]["evidence"]["agent"]) == ("agent", agent)
    (record,) = [r for r in json_body(export)["records"] if r["record"] == "request"]
    assert record["evidence"]["agent"] == agent


def _export_of(pipe: Pipeline, request_id: str, day: str) -> dict[str, Any]:
    export = invoke(pipe.admin, http_event("POST", "/v1/admin/exports/range",
                                           {"from": day, "to": day}, iam=True))  # fmt: skip
    records = json_body(export)["records"]
    (record,) = [r for r in records if r["record"] == "request" and r["request_id"] == request_id]
    return record


def test_the_deadlines_calendar_is_the_operators_as_stored_and_not_the_publics(
    pipe: Pipeline,
) -> None:
    # Given an opt-out stating Texas, and one stored before the calendar was kept (its
    # answer without it), geolocated in New York (review s18 diff C1, C3)
    stated = pipe.post("/v1/opt-out", {"email": EMAIL, "jurisdiction": "US-TX"})
    old = pipe.post("/v1/opt-out", {"email": "old." + EMAIL})
    pipe.aws.dynamodb.update_item(
        TableName=pipe.aws.table_name,
        Key={"pk": {"S": f"REQ#{old['request_id']}"}, "sk": {"S": "EVENT"}},
        UpdateExpression="REMOVE #r.deadline_jurisdiction SET #e.jurisdiction = :ny, "
        "#e.jurisdiction_from = :geo",
        ExpressionAttributeNames={"#r": "response", "#e": "evidence"},
        ExpressionAttributeValues={":ny": {"S": "US-NY"}, ":geo": {"S": "geolocation"}},
    )
    pipe.resolve()
    # Then neither public answer names a calendar
    for request in (stated, old):
        rid = request["request_id"]
        assert "deadline_jurisdiction" not in request
        assert "deadline_jurisdiction" not in pipe.get(f"/v1/requests/{rid}", request_id=rid)
    # The operator's record and the export name the stored one
    detail = json_body(admin_get(pipe, stated["request_id"]))
    assert detail["deadline_jurisdiction"] == "US-TX"
    day = stated["received_at"][:10]
    assert _export_of(pipe, stated["request_id"], day)["deadline_jurisdiction"] == "US-TX"
    # and never recompute one for the old request ("US-CA" was a calendar it was not counted in)
    assert "deadline_jurisdiction" not in json_body(admin_get(pipe, old["request_id"]))
    assert "deadline_jurisdiction" not in _export_of(pipe, old["request_id"], day)


def test_lookup_by_email_shows_own_choices_effective_state_delivery_and_edges(
    pipe: Pipeline,
) -> None:
    # Given an email that opted out through the webform, typed on a browser (asserted by it)
    request = pipe.post("/v1/opt-out", {"email": EMAIL, "device_id": DEVICE})
    pipe.resolve()
    # When an operator looks the email up (value in the body, never in the URL)
    answer = invoke(
        pipe.admin,
        http_event("POST", "/v1/admin/lookup", {"type": "email", "value": EMAIL}, iam=True),
    )
    # Then the answer explains the state with request ids and hashes only
    assert answer["statusCode"] == 200
    found = json_body(answer)
    assert found["own_choices"]["sale"]["req"] == request["request_id"]
    assert found["effective"]["profiling"] is True
    assert found["delivered"] == {}  # nothing confirmed by a system yet
    assert set(found["in_flight"]) >= {"salesforce", "meta"}
    assert found["links"] == []  # typed, not verified: no link
    assert [edge["type"] for edge in found["asserted_by"]] == ["device_id"]
    assert "jane" not in json.dumps(found).lower()


def test_lookup_shows_a_system_delivered_once_its_job_is_done(pipe: Pipeline) -> None:
    # Given an email opted out and resolved, and meta's job since confirmed by the vendor
    # (the worker writes the job's receipt; the identity's mark only names the job)
    request = pipe.post("/v1/opt-out", {"email": EMAIL})
    pipe.resolve()
    pipe.aws.dynamodb.update_item(
        TableName=pipe.aws.table_name,
        Key={"pk": {"S": f"REQ#{request['request_id']}"}, "sk": {"S": "JOB#meta"}},
        UpdateExpression="SET #s = :done",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={":done": {"S": "done"}},
    )
    # When an operator looks the email up
    answer = invoke(
        pipe.admin,
        http_event("POST", "/v1/admin/lookup", {"type": "email", "value": EMAIL}, iam=True),
    )
    # Then meta is delivered and no longer in flight; the others are still in flight
    found = json_body(answer)
    assert set(found["delivered"]) == {"meta"}
    assert "meta" not in found["in_flight"] and "salesforce" in found["in_flight"]
    assert found["delivered"]["meta"] == sorted(found["delivered"]["meta"]) != []


def test_every_admin_answer_is_no_store_and_nosniff(pipe: Pipeline) -> None:
    # Given an email opted out and resolved (an export and a lookup then name its value)
    pipe.post("/v1/opt-out", {"email": EMAIL, "device_id": DEVICE})
    pipe.resolve()
    who = {"type": "email", "value": EMAIL}
    events = [
        http_event("POST", "/v1/identity-links", LINK, iam=True),  # 202
        http_event("POST", "/v1/identity-links", LINK),  # 403: unsigned
        http_event("POST", "/v1/admin/lookup", who, iam=True),  # 200
        http_event("POST", "/v1/admin/exports/identity", who, iam=True),  # 200, the value
        http_event("POST", "/v1/admin/lookup", {"type": "email"}, iam=True),  # 422
    ]
    # When an operator (or a refused caller) gets each answer
    answers = [invoke(pipe.admin, event) for event in events]
    # Then no browser or proxy may keep it, nor read it as anything but its type (review s32
    # contract F3)
    assert [a["statusCode"] for a in answers] == [202, 403, 200, 200, 422]
    for answer in answers:
        assert answer["headers"]["Cache-Control"] == "no-store"
        assert answer["headers"]["X-Content-Type-Options"] == "nosniff"


def test_admin_routes_refuse_callers_without_iam(pipe: Pipeline) -> None:
    request = pipe.post("/v1/opt-out", {"email": EMAIL})
    assert admin_get(pipe, request["request_id"], iam=False)["statusCode"] == 403
    lookup = http_event("POST", "/v1/admin/lookup", {"type": "email", "value": EMAIL})
    assert invoke(pipe.admin, lookup)["statusCode"] == 403


def test_lookup_of_an_unknown_identifier_is_404_without_echo(pipe: Pipeline) -> None:
    answer = invoke(
        pipe.admin,
        http_event("POST", "/v1/admin/lookup", {"type": "email", "value": EMAIL}, iam=True),
    )
    assert answer["statusCode"] == 404
    assert "jane" not in answer["body"].lower()


def test_a_caller_on_no_allow_list_is_refused_even_when_signed(
    pipe: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given an IAM-signed caller that is neither the linker nor an operator
    stranger = "arn:aws:sts::123456789012:assumed-role/SomeOtherRole/session"
    lookup = {"type": "email", "value": EMAIL}
    # When it calls an operator route and the link route
    answers = [
        invoke(pipe.admin, http_event("POST", "/v1/admin/lookup", lookup, iam=True,
                                      caller_arn=stranger)),
        invoke(pipe.admin, http_event("POST", "/v1/identity-links", LINK, iam=True,
                                      caller_arn=stranger)),
    ]  # fmt: skip
    # Then both are refused and nothing is written
    assert [a["statusCode"] for a in answers] == [403, 403]
    assert pipe.items() == []


def test_the_linker_role_cannot_use_operator_routes(
    pipe: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a stack whose linker and operator roles differ
    monkeypatch.setenv("LINKER_PRINCIPALS", "arn:aws:iam::123456789012:role/app/Linker")
    monkeypatch.setenv("OPERATOR_PRINCIPALS", "arn:aws:iam::123456789012:role/Operator")
    admin = load_function("admin_api")
    linker = "arn:aws:sts::123456789012:assumed-role/Linker/login-service"
    # When the linker's session links identifiers and then asks for a lookup
    link = invoke(
        admin, http_event("POST", "/v1/identity-links", LINK, iam=True, caller_arn=linker)
    )
    lookup = invoke(admin, http_event("POST", "/v1/admin/lookup",
                                      {"type": "email", "value": EMAIL}, iam=True,
                                      caller_arn=linker))  # fmt: skip
    # Then the link is accepted and the operator route refused
    assert (link["statusCode"], lookup["statusCode"]) == (202, 403)


def test_the_public_capture_function_does_not_serve_iam_routes(pipe: Pipeline) -> None:
    # An IAM path that reached the capture function: API Gateway's $default route sends it
    event = http_event("POST", "/v1/admin/lookup", {"type": "email", "value": EMAIL}, iam=True)
    event["routeKey"] = event["requestContext"]["routeKey"] = "$default"
    answer = invoke(pipe.capture, event)
    assert answer["statusCode"] == 404


def test_an_unsigned_caller_is_refused_before_its_body_is_read(pipe: Pipeline) -> None:
    # Given an unsigned call with a body that would not validate
    event = http_event("POST", "/v1/identity-links", {"links": []})
    # When the admin function gets it
    answer = invoke(pipe.admin, event)
    # Then it is refused outright, without a hint of what a valid body looks like
    assert answer["statusCode"] == 403
    assert json_body(answer)["error"]["code"] == "forbidden"
    assert "links" not in answer["body"]
    assert "jane" not in answer["body"].lower()


# -- held links ---------------------------------------------------------------------------------


def held_cluster(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> tuple[Pipeline, dict]:
    """A cap of 2: the email's second device link is held."""
    pipe = build_pipeline(aws, monkeypatch, MAX_CLUSTER_SIZE="2")
    pipe.post("/v1/opt-out", {"email": EMAIL})
    for device in (DEVICE, "dev-admin-second-bbbbbb"):
        link = {"a": {"type": "device_id", "value": device}, "b": {"type": "email", "value": EMAIL}}
        pipe.post("/v1/identity-links", {"links": [link]}, iam=True)
    pipe.resolve()
    listed = invoke(pipe.admin, http_event("GET", "/v1/admin/holds", iam=True))
    assert listed["statusCode"] == 200, listed["body"]
    (hold,) = json_body(listed)["holds"]
    return pipe, hold


def hold_action(pipe: Pipeline, hold_id: str, action: str, iam: bool = True) -> dict:
    path = f"/v1/admin/holds/{hold_id}/{action}"
    return invoke(pipe.admin, http_event("POST", path, path_parameters={"hold_id": hold_id},
                                           iam=iam))  # fmt: skip


def holds_listed(pipe: Pipeline) -> list[dict[str, Any]]:
    listed: list[dict[str, Any]] = json_body(
        invoke(pipe.admin, http_event("GET", "/v1/admin/holds", iam=True))
    )["holds"]
    return listed


def test_held_links_are_listed_with_types_and_hashes_only(
    aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    pipe, hold = held_cluster(aws, monkeypatch)
    assert hold["status"] == "held" and hold["cap"] == 2
    assert {hold["a"]["type"], hold["b"]["type"]} == {"device_id", "email"}
    assert "jane" not in json.dumps(hold).lower() and "second" not in json.dumps(hold)
    assert all("expires_at" in i for i in pipe.items("HOLD"))


def test_releasing_a_hold_links_the_pair_and_re_resolves_the_cluster(
    aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    pipe, hold = held_cluster(aws, monkeypatch)
    second = "dev-admin-second-bbbbbb"
    assert pipe.get(f"/v1/consent/{second}", device_id=second)["opt_out"]["sale"] is False
    answer = hold_action(pipe, hold["hold_id"], "release")
    assert answer["statusCode"] == 202, answer["body"]
    pipe.resolve()
    assert pipe.get(f"/v1/consent/{second}", device_id=second)["opt_out"]["sale"] is True
    (after,) = holds_listed(pipe)
    assert after["status"] == "released"
    assert hold_action(pipe, hold["hold_id"], "reject")["statusCode"] == 409


def test_a_hold_being_released_cannot_be_released_again_or_rejected(
    aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a hold an operator released, before the resolver has carried the release out
    pipe, hold = held_cluster(aws, monkeypatch)
    assert hold_action(pipe, hold["hold_id"], "release")["statusCode"] == 202
    # When another operator releases or rejects it
    again = hold_action(pipe, hold["hold_id"], "release")
    reject = hold_action(pipe, hold["hold_id"], "reject")
    # Then both are refused, and the first release is what happens
    assert (again["statusCode"], reject["statusCode"]) == (409, 409)
    pipe.resolve()
    second = "dev-admin-second-bbbbbb"
    assert pipe.get(f"/v1/consent/{second}", device_id=second)["opt_out"]["sale"] is True
    listed = json_body(invoke(pipe.admin, http_event("GET", "/v1/admin/holds", iam=True)))
    assert [h["status"] for h in listed["holds"]] == ["released"]


def test_holds_are_listed_undecided_first_then_newest_first(
    aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given four held links, each from its own request, the newest of them rejected
    pipe = build_pipeline(aws, monkeypatch, MAX_CLUSTER_SIZE="2")
    pipe.post("/v1/opt-out", {"email": EMAIL})
    pipe.resolve()
    for n in range(5):
        link = {"a": {"type": "device_id", "value": f"dev-admin-many-{n}-aaaaaa"},
                "b": {"type": "email", "value": EMAIL}}  # fmt: skip
        pipe.post("/v1/identity-links", {"links": [link]}, iam=True)
        pipe.resolve()
    every = holds_listed(pipe)
    by_age = sorted(every, key=lambda h: h["held_at"])
    assert len(by_age) == 4
    assert hold_action(pipe, by_age[-1]["hold_id"], "reject")["statusCode"] == 200

    def listed(limit: int) -> list[str]:
        event = http_event("GET", "/v1/admin/holds", iam=True)
        event["queryStringParameters"] = {"limit": str(limit)}
        event["rawQueryString"] = f"limit={limit}"
        return [h["hold_id"] for h in json_body(invoke(pipe.admin, event))["holds"]]

    # When an operator lists them, Then the undecided come first, newest first, within the limit
    ids = [h["hold_id"] for h in by_age]
    assert listed(2) == [ids[2], ids[1]]
    assert listed(10) == [ids[2], ids[1], ids[0], ids[3]]


def test_rejecting_a_hold_keeps_the_pair_apart(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> None:
    pipe, hold = held_cluster(aws, monkeypatch)
    answer = hold_action(pipe, hold["hold_id"], "reject")
    assert answer["statusCode"] == 200 and json_body(answer)["status"] == "rejected"
    assert hold_action(pipe, hold["hold_id"], "release")["statusCode"] == 409


def test_hold_routes_need_iam_and_a_known_hold(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> None:
    pipe, hold = held_cluster(aws, monkeypatch)
    assert hold_action(pipe, hold["hold_id"], "reject", iam=False)["statusCode"] == 403
    assert invoke(pipe.admin, http_event("GET", "/v1/admin/holds"))["statusCode"] == 403
    unknown = "00000000-0000-4000-8000-000000000000.000"
    assert hold_action(pipe, unknown, "release")["statusCode"] == 404


def test_a_hold_release_records_who_released_which_hold_and_the_list_shows_it(
    aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a held link
    pipe, hold = held_cluster(aws, monkeypatch)
    # When an operator releases it
    released = json_body(hold_action(pipe, hold["hold_id"], "release"))
    # Then the release's record names the signer and the hold it released
    event = json_body(admin_get(pipe, released["request_id"]))["event"]
    assert event["evidence"] == {"acted_by": LOCAL_IAM_CALLER}
    assert event["operation"] == {"hold_id": hold["hold_id"]}
    # ... and the hold list says who decided, when, and by which request
    (listed,) = holds_listed(pipe)
    assert (listed["decided_by"], listed["release_request_id"]) == (
        LOCAL_IAM_CALLER, released["request_id"],
    )  # fmt: skip
    assert listed["decided_at"] is not None


def test_a_hold_rejection_records_who_rejected_it(
    aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a held link
    pipe, hold = held_cluster(aws, monkeypatch)
    # When an operator rejects it
    assert hold_action(pipe, hold["hold_id"], "reject")["statusCode"] == 200
    # Then the hold list names the signer who rejected it, and when
    (listed,) = holds_listed(pipe)
    assert (listed["status"], listed["decided_by"]) == ("rejected", LOCAL_IAM_CALLER)
    assert listed["decided_at"] is not None


def test_a_released_hold_keeps_the_operators_decision_time(
    aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a hold an operator released, the time of the decision as the list gave it
    pipe, hold = held_cluster(aws, monkeypatch)
    assert hold_action(pipe, hold["hold_id"], "release")["statusCode"] == 202
    listed = json_body(invoke(pipe.admin, http_event("GET", "/v1/admin/holds", iam=True)))
    decided_at = listed["holds"][0]["decided_at"]
    # When the resolver links the pair later
    pipe.resolve()
    # Then the hold is released, still decided when the operator decided
    (after,) = holds_listed(pipe)
    assert (after["status"], after["decided_at"]) == ("released", decided_at)


def test_an_identity_export_shows_a_rejected_hold_and_who_rejected_it(
    aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a held link of the email, rejected by an operator
    pipe, hold = held_cluster(aws, monkeypatch)
    assert hold_action(pipe, hold["hold_id"], "reject")["statusCode"] == 200
    # When an operator exports the email's records
    body = {"type": "email", "value": EMAIL}
    answer = invoke(pipe.admin, http_event("POST", "/v1/admin/exports/identity", body, iam=True))
    assert answer["statusCode"] == 200, answer["body"]
    # Then the export holds the hold: rejected, when, by whom, and the other side by key only
    (held,) = [r for r in json_body(answer)["records"] if r["record"] == "hold"]
    assert (held["hold_id"], held["status"], held["decided_by"]) == (
        hold["hold_id"], "rejected", LOCAL_IAM_CALLER,
    )  # fmt: skip
    assert held["other"]["type"] == "device_id" and held["decided_at"] is not None
    assert "second" not in answer["body"]


def test_a_release_whose_flush_failed_links_and_writes_the_state_when_run_again(
    aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a held device link an operator released, whose first resolution failed at the
    # flush (the STATE write refused), after the resolver had marked the hold released
    pipe, hold = held_cluster(aws, monkeypatch)
    assert hold_action(pipe, hold["hold_id"], "release")["statusCode"] == 202
    records = pipe.event_records()

    def refuse_states(params: dict[str, Any], **_: Any) -> None:
        for puts in json.loads(params["body"])["RequestItems"].values():
            if any(p["PutRequest"]["Item"]["sk"]["S"] == "STATE" for p in puts):
                error = {"Error": {"Code": "ServiceUnavailable", "Message": "unavailable"}}
                raise ClientError(error, "BatchWriteItem")  # type: ignore[arg-type]

    with session_hooks("release-retry", pipe.resolver.resolver.cache_clear) as register:
        register("before-call.dynamodb.BatchWriteItem", refuse_states)
        with pytest.raises(ClientError):
            pipe.resolve(records)
    pipe.resolver.resolver.cache_clear()
    # When the stream retries the same record
    assert pipe.resolve(records) == {"batchItemFailures": []}
    # Then the released device is linked and carries the email's opt-out
    second = "dev-admin-second-bbbbbb"
    assert pipe.get(f"/v1/consent/{second}", device_id=second)["opt_out"]["sale"] is True
    assert holds_listed(pipe)[0]["status"] == "released"


# -- the audit trail of operator reads (review s19 S3) ------------------------------------

PHONE, PHONE_E164, CUSTOMER = "(415) 555-0142", "+14155550142", "CUST-778812"
_API_REQUEST_IDS = itertools.count(1)


def _signed(method: str, path: str, body: Any = None, **params: str) -> dict[str, Any]:
    """An operator's call with an API request id of its own (the access log's `requestId`)."""
    event = http_event(method, path, body, path_parameters=params or None, iam=True)
    event["requestContext"]["requestId"] = f"api-{next(_API_REQUEST_IDS)}"
    return event


def test_every_operator_read_logs_who_read_which_records_by_type_and_keyed_hash_only(
    pipe: Pipeline,
) -> None:
    # Given an opt-out naming an email, a phone and a customer id
    request = pipe.post("/v1/opt-out", {"email": EMAIL, "phone": PHONE, "customer_id": CUSTOMER})
    pipe.resolve()
    day = request["received_at"][:10]
    rid = request["request_id"]
    reads = [
        _signed("GET", f"/v1/admin/requests/{rid}", request_id=rid),
        _signed("POST", "/v1/admin/lookup", {"type": "email", "value": EMAIL}),
        _signed("POST", "/v1/admin/lookup", {"type": "email", "value": "nobody@example.com"}),
        _signed("GET", "/v1/admin/holds"),
        _signed("POST", "/v1/admin/exports/identity", {"type": "phone", "value": PHONE_E164}),
        _signed("POST", "/v1/admin/exports/identity", {"type": "customer_id", "value": CUSTOMER}),
        _signed("POST", "/v1/admin/exports/range", {"from": day, "to": day}),
    ]
    # When an operator reads its records every way there is (one of them finding nothing)
    with logged_lines() as lines:
        answers = [invoke(pipe.admin, event) for event in reads]
    assert [a["statusCode"] for a in answers] == [200, 200, 404, 200, 200, 200, 200]
    # Then each read wrote one line: the route, the signer, the API request id
    audit = [line for line in lines if line["message"] == "operator read"]
    assert [(a["route"], a["caller"], a["correlation_id"]) for a in audit] == [
        (e["routeKey"], LOCAL_IAM_CALLER, e["requestContext"]["requestId"]) for e in reads
    ]
    assert audit[0]["request_id"] == rid
    assert (audit[6]["from"], audit[6]["to"]) == (day, day)
    # and an identity's read names it by type and the keyed hash the store files it under
    keys = [(a.get("identifier_type"), a.get("identifier_key")) for a in audit]
    assert keys[1] == ("email", json_body(answers[1])["key"])
    assert keys[2][0] == "email" and len(str(keys[2][1])) == len(str(keys[1][1]))
    assert keys[4][0] == "phone" and pipe.partition(f"ID#phone#{keys[4][1]}")
    assert keys[5][0] == "customer_id" and pipe.partition(f"ID#customer_id#{keys[5][1]}")
    # And each export's last page logged its seal beside its read (review s26 counsel F1):
    # the same API request id, the digest and count the answer gave, the identity by key
    sealed = [line for line in lines if line["message"] == "export sealed"]
    assert [(s["correlation_id"], s["records_sha256"], s["records"]) for s in sealed] == [
        (e["requestContext"]["requestId"], json_body(a)["seal"]["records_sha256"],
         len(json_body(a)["records"])) for e, a in zip(reads[4:], answers[4:], strict=True)
    ]  # fmt: skip
    assert sealed[0]["export"] == {"identifier_type": "phone", "identifier_key": keys[4][1]}
    assert sealed[2]["export"] == {"from": day, "to": day}
    # never by a value, in any line
    logged = json.dumps(lines).lower()
    for value in (EMAIL.lower(), "jane.doe", "nobody@", PHONE_E164, "4155550142", CUSTOMER.lower()):
        assert value not in logged


@pytest.mark.parametrize("route", ["/v1/admin/lookup", "/v1/admin/exports/identity"])
def test_an_operator_read_of_a_national_phone_number_is_refused_not_read_as_a_us_one(
    pipe: Pipeline, route: str
) -> None:
    # Given an opt-out by a US number in E.164
    pipe.post("/v1/opt-out", {"phone": PHONE_E164})
    pipe.resolve()
    # When an operator asks for a number without its country code (which, read as the US's,
    # can be a stranger's: a Chinese mobile 131 2345 6789 is a Chicago number)
    answer = invoke(pipe.admin, _signed("POST", route, {"type": "phone", "value": PHONE}))
    # Then it is refused, naming the body's field, and nobody's records are read
    assert answer["statusCode"] == 422
    error = json_body(answer)["error"]
    assert error["field"] == "value" and "E.164" in error["message"]


def test_writes_and_public_routes_log_no_operator_read(pipe: Pipeline) -> None:
    # Given a backend's identity links (IAM, but a write) and a person's own opt-out and status
    with logged_lines() as lines:
        pipe.post("/v1/identity-links", LINK, iam=True)
        request = pipe.post("/v1/opt-out", {"email": EMAIL})
        pipe.get(f"/v1/requests/{request['request_id']}", request_id=request["request_id"])
    # Then none of them is logged as an operator's read
    assert lines and all(line["message"] != "operator read" for line in lines)
