"""Salesforce's optional `record_field` checkbox is written in a call of its own, after the
Individuals' opt-outs (sfdc34): whether Salesforce refuses a record naming an unknown field
alone (`allOrNone: false`) or the whole sObject Collections call (HTTP 400, as a single-record
update does) is unconfirmed (docs/vendors.md, Salesforce), and a whole-call refusal must not
cost the Individuals' opt-outs. A 4xx keeps Salesforce's errorCode, never its message."""

import json
from typing import Any

import pytest

from local.sandbox.wire import json_response
from tests.unit.connectors.conftest import calls, make_connector, make_job
from tests.unit.connectors.test_salesforce_answers import answering, writes

LEAD, PERSON = "lead.one@example.com", "person.two@example.com"
# The Person Account's checkbox under a name its Account lacks (`__c`, not `__pc`): the
# sandbox refuses it with INVALID_FIELD, as Salesforce does
MISNAMED = {"person_accounts": True, "record_field": "Do_Not_Sell__c",
            "person_account_record_field": "Do_Not_Sell__c"}  # fmt: skip


def deliver_two(server: Any, options: dict[str, Any]) -> Any:
    jobs = [make_job(("email", e), request_id=e[:4], system="salesforce") for e in (LEAD, PERSON)]
    return make_connector(server, "salesforce", options=options).deliver(jobs)


def patches(server: Any) -> list[list[str]]:
    """Each sObject Collections update's record types, in order."""
    return [[r["attributes"]["type"] for r in json.loads(c["body"])["records"]]
            for c in calls(server, "salesforce")
            if c["method"] == "PATCH" and c["path"].endswith("/composite/sobjects")]  # fmt: skip


def opted_out(server: Any) -> list[bool]:
    vendor = server.sandboxes["salesforce"].vendor
    return [bool(f.get("HasOptedOutTracking")) for f in vendor.individuals.values()]


def test_a_record_refused_alone_keeps_the_individuals_opt_outs(server):
    # Given Salesforce refusing only the record naming the unknown field (the sandbox default)
    outcomes = deliver_two(server, MISNAMED)

    # Then the Individuals were written in a call of their own, the checkboxes after it
    assert patches(server) == [["Individual", "Individual"], ["Lead"], ["Account"]]
    assert opted_out(server) == [True, True]
    lead, person = outcomes
    assert lead.status == "done"
    assert person.status is None and person.error.retryable is False
    assert person.error.reason == "salesforce update: Account INVALID_FIELD"


def test_a_whole_call_refused_keeps_the_individuals_opt_outs(server):
    # Given Salesforce refusing the whole Collections call that names an unknown field
    server.sandboxes["salesforce"].vendor.whole_call_invalid_field = True

    outcomes = deliver_two(server, MISNAMED)

    # Then the Individuals' opt-outs landed all the same (one call held both, the old way,
    # and its 400 failed every job with nothing written); the checkboxes go in a call per
    # record type, so the refused one (the Account's misnamed field) fails only its own jobs,
    # for good, with Salesforce's code and no message; the Lead's is written (review s34d M1)
    assert patches(server) == [["Individual", "Individual"], ["Lead"], ["Account"]]
    assert opted_out(server) == [True, True]
    flags = {r["type"]: r.get("Do_Not_Sell__c")
             for r in server.sandboxes["salesforce"].vendor.records.values()}  # fmt: skip
    assert flags == {"Lead": True, "Account": None}
    lead, person = outcomes
    assert lead.status == "done"
    assert (person.status, person.error.reason, person.error.retryable) == (
        None, "salesforce update: Account HTTP 400 INVALID_FIELD", False
    )  # fmt: skip
    assert "column" not in repr(outcomes)


def test_the_whole_call_switch_still_writes_a_well_formed_call(server):
    server.sandboxes["salesforce"].vendor.whole_call_invalid_field = True
    options = {"person_accounts": True, "record_field": "Do_Not_Sell__c"}

    outcomes = deliver_two(server, options)

    assert patches(server) == [["Individual", "Individual"], ["Lead"], ["Account"]]
    assert [o.status for o in outcomes] == ["done", "done"]
    flags = {r["type"]: (r.get("Do_Not_Sell__c"), r.get("Do_Not_Sell__pc"))
             for r in server.sandboxes["salesforce"].vendor.records.values()}  # fmt: skip
    assert flags == {"Lead": (True, None), "Account": (None, True)}


def test_a_record_field_call_failing_for_now_is_retried_with_the_opt_outs_written(server):
    # Given the checkbox call answered 503: the batch goes back to the queue (its next
    # delivery writes the Individuals again, the same values), nothing is failed for good
    unavailable = json_response(503, [{"errorCode": "SERVER_UNAVAILABLE"}])
    answering(server, writes("PATCH", 1, unavailable))
    connector = make_connector(server, "salesforce", options={"record_field": "Do_Not_Sell__c"})

    (outcome,) = connector.deliver([make_job(("email", "jane@example.com"), system="sf")])

    assert outcome.status is None and outcome.error.retryable is True
    assert outcome.error.reason == "salesforce set record field: HTTP 503"
    assert opted_out(server) == [True]


@pytest.mark.parametrize(
    ("options", "made", "bound"), [({}, 4, 4), ({"record_field": "Do_Not_Sell__c"}, 5, 7)]
)
def test_the_record_field_call_is_counted_and_made_only_when_configured(
    server, options, made, bound
):
    # A Contact without an Individual: token, lookup, graph, opt-outs (and its type's
    # checkboxes); the bound counts a checkbox call for each of the three record types
    connector = make_connector(server, "salesforce", options=options)

    (outcome,) = connector.deliver([make_job(("email", "noindividual@example.com"), system="sf")])

    assert outcome.status == "done"
    assert len(calls(server, "salesforce")) == made
    assert connector.calls_per_batch(1) == bound
    assert len(patches(server)) == made - 3


def test_a_4xx_keeps_salesforces_error_code_only(server):
    # Given an Individual field the org lacks, refused for the whole call
    server.sandboxes["salesforce"].vendor.whole_call_invalid_field = True
    fields = dict.fromkeys(("sale", "share", "targeted_advertising", "profiling"), "NoSuchField")
    connector = make_connector(server, "salesforce", options={"fields": fields})

    (outcome,) = connector.deliver([make_job(("email", "jane@example.com"), system="sf")])

    assert outcome.status is None and outcome.error.retryable is False
    assert outcome.error.reason == "salesforce update: Individual HTTP 400 INVALID_FIELD"


@pytest.mark.parametrize(
    ("path", "status", "reason"),
    [("/composite", 400, "salesforce lookup: HTTP 400 MALFORMED_QUERY"),
     ("/composite/sobjects", 404, "salesforce update: Individual HTTP 404 MALFORMED_QUERY")],
)  # fmt: skip
def test_a_4xx_reason_has_the_code_and_never_the_message(server, path, status, reason):
    # Salesforce's error body: [{"message": ..., "errorCode": ...}]; a message can quote values
    body = [{"message": "jane@example.com is not a column", "errorCode": "MALFORMED_QUERY"}]

    def refuse(request: Any, answer: Any) -> Any:
        return json_response(status, body) if request.path.endswith(path) else answer

    answering(server, refuse)

    (outcome,) = make_connector(server, "salesforce").deliver(
        [make_job(("email", "jane@example.com"), system="sf")]
    )

    assert (outcome.error.reason, outcome.error.retryable) == (reason, False)
    assert "jane" not in repr(outcome)


def test_a_4xx_code_that_is_not_a_code_is_left_out(server):
    def refuse(request: Any, answer: Any) -> Any:
        if request.path.endswith("/composite"):
            return json_response(400, [{"errorCode": "jane@example.com"}])
        return answer

    answering(server, refuse)

    (outcome,) = make_connector(server, "salesforce").deliver(
        [make_job(("email", "jane@example.com"), system="sf")]
    )

    assert outcome.error.reason == "salesforce lookup: HTTP 400"


def test_no_checkbox_for_a_person_whose_individual_was_refused(server):
    # Given Salesforce refusing the Individual's write (a field the org lacks, per record)
    fields = dict.fromkeys(("sale", "share", "targeted_advertising", "profiling"), "NoSuchField")
    options = {"fields": fields, "record_field": "Do_Not_Sell__c"}
    connector = make_connector(server, "salesforce", options=options)

    (outcome,) = connector.deliver([make_job(("email", "jane@example.com"), system="sf")])

    # Then the job fails on the Individual, and no record says "do not sell" (review s34d L2)
    assert outcome.status is None and outcome.error.reason.startswith(
        "salesforce update: Individual"
    )
    assert patches(server) == [["Individual"]]
    records = server.sandboxes["salesforce"].vendor.records.values()
    assert not any(r.get("Do_Not_Sell__c") for r in records)
