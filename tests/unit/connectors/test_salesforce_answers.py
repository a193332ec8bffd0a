"""How Salesforce's answers decide a receipt (session-20 mutation testing, MUT-E): a lookup
Salesforce did not answer is never "no such person", a result it pages is read to its end or
refused, a write it refused fails the jobs it belongs to, and "done" needs an opt-out field
written. Answer shapes: REST API Developer Guide, Composite and sObject Collections
(docs/vendors.md, Salesforce)."""

import json
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest

from local.sandbox.faults import FaultPlan
from local.sandbox.wire import SandboxRequest, SandboxResponse, json_response
from optout.connectors.base import DROPPED_REFERENCE
from optout.connectors.http import HttpClient, RetryPolicy
from optout.connectors.salesforce import Person
from tests.unit.connectors.conftest import calls, make_connector, make_job

EMAIL = "jane@example.com"
Change = Callable[[SandboxRequest, Any], Any]


def answering(server: Any, change: Change) -> None:
    """Salesforce's sandbox answers as usual, its JSON body passed through `change(request,
    body)`; a SandboxResponse from `change` is answered as it is."""
    vendor = server.sandboxes["salesforce"].vendor
    original = vendor.handle

    def handle(request: SandboxRequest) -> SandboxResponse:
        answer = original(request)
        if request.path.endswith("/oauth2/token"):
            return answer
        given = change(request, json.loads(answer.body))
        if isinstance(given, SandboxResponse):
            return given
        return json_response(answer.status, given, answer.headers)

    vendor.handle = handle  # type: ignore[method-assign]


def lookup(change: Callable[[list[Any]], Any]) -> Change:
    """A change of the composite lookup's `compositeResponse` only."""

    def changed(request: SandboxRequest, body: Any) -> Any:
        if request.path.endswith("/composite"):
            return {**body, "compositeResponse": change(body["compositeResponse"])}
        return body

    return changed


def writes(method: str, nth: int, answer: Any) -> Change:
    """The `nth` (0-based) sObject Collections call made with `method` answers `answer`."""
    seen = []

    def changed(request: SandboxRequest, body: Any) -> Any:
        if request.method == method and request.path.endswith("/composite/sobjects"):
            seen.append(request)
            if len(seen) == nth + 1:
                return answer(body) if callable(answer) else answer
        return body

    return changed


def deliver(server: Any, *emails: str, **options: Any) -> Any:
    jobs = [make_job(("email", e), request_id=f"r{n}", system="salesforce", **options)
            for n, e in enumerate(emails or (EMAIL,))]  # fmt: skip
    return make_connector(server, "salesforce").deliver(jobs)


# -- the lookup ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sub", "reason", "retryable"),
    [({"httpStatusCode": 400}, "salesforce lookup Contact: HTTP 400 INVALID_FIELD", False),
     ({"httpStatusCode": 300}, "salesforce lookup Contact: HTTP 300", False),
     ({"httpStatusCode": None}, "salesforce lookup Contact: HTTP 500", True),
     ({"referenceId": "Other"}, "salesforce lookup Other: HTTP 200", False)],
)  # fmt: skip
def test_a_lookup_salesforce_did_not_answer_is_never_no_such_person(server, sub, reason, retryable):
    # Given the Contact query's subresponse refused (or not one of ours): its records unknown
    def refuse(subs: list[Any]) -> list[Any]:
        first = {**subs[0], **sub, "body": [{"errorCode": "INVALID_FIELD"}]}
        return [{k: v for k, v in first.items() if v is not None}, *subs[1:]]

    answering(server, lookup(refuse))

    (outcome,) = deliver(server, "unknown.person@example.com")

    # Then the job fails with the subresponse's status, never a no_record receipt
    assert outcome.status is None
    assert (outcome.error.reason, outcome.error.retryable) == (reason, retryable)


def without_composite_response(request: SandboxRequest, body: Any) -> Any:
    if request.path.endswith("/composite"):
        return {k: v for k, v in body.items() if k != "compositeResponse"}
    return body


@pytest.mark.parametrize(
    ("change", "reason"),
    [(without_composite_response, "salesforce lookup: malformed answer"),
     (lookup(lambda subs: [s for s in subs if s["referenceId"] != "Lead"]),
      "salesforce lookup Lead: no answer"),
     (lookup(lambda subs: []), "salesforce lookup Contact, Lead: no answer"),
     (lookup(lambda subs: [*subs, None]), "salesforce lookup: malformed answer"),
     (lookup(lambda subs: [{**s, "body": {"done": True}} for s in subs]),
      "salesforce lookup Contact: malformed answer"),
     (lookup(lambda subs: [{**s, "body": None} for s in subs]),
      "salesforce lookup Contact: malformed answer")],
)  # fmt: skip
def test_a_lookup_answer_missing_a_query_is_retried_never_no_such_person(server, change, reason):
    # Given a 200 lookup answer without compositeResponse, or without one query's entry
    answering(server, change)

    (outcome,) = deliver(server, "unknown.person@example.com")

    # Then the answer is not understood: retried, never a no_record receipt
    assert outcome.status is None
    assert (outcome.error.reason, outcome.error.retryable) == (reason, True)


def test_a_page_without_done_is_the_last_page(server):
    def undone(subs: list[Any]) -> list[Any]:
        return [{**s, "body": {k: v for k, v in s["body"].items() if k != "done"}} for s in subs]

    answering(server, lookup(undone))

    (outcome,) = deliver(server)

    assert outcome.status == "done"
    assert [c["method"] for c in calls(server, "salesforce") if c["method"] == "GET"] == []


@pytest.mark.parametrize("locator", [None, "https://elsewhere.example/services/data/v66.0/q/1"])
def test_more_records_without_a_locator_on_this_org_are_refused(server, locator):
    # Given a first page saying more records follow, without a path on this org to read them
    page = {"done": False, "records": [], **({"nextRecordsUrl": locator} if locator else {})}
    answering(server, lookup(lambda subs: [{**s, "body": page} for s in subs]))

    (outcome,) = deliver(server)

    # Then the job fails for good (the records past page 1 would go unchanged); nothing fetched
    assert outcome.status is None
    assert outcome.error.reason == "salesforce lookup Contact: more records but no nextRecordsUrl"
    assert outcome.error.retryable is False
    assert [c["method"] for c in calls(server, "salesforce")] == ["POST", "POST"]


def test_a_result_of_more_than_50_pages_is_refused_after_reading_50_more(server):
    # Given a result that never ends
    more = {"done": False, "records": [], "nextRecordsUrl": "/services/data/v66.0/query/01gX-1"}

    def endless(request: SandboxRequest, body: Any) -> Any:
        if request.method == "GET":
            return json_response(200, more)
        return lookup(lambda subs: [{**s, "body": more} for s in subs])(request, body)

    answering(server, endless)

    (outcome,) = deliver(server)

    assert outcome.status is None
    assert outcome.error.reason == "salesforce lookup Contact: more than 50 pages"
    assert outcome.error.retryable is False
    assert len([c for c in calls(server, "salesforce") if c["method"] == "GET"]) == 51


def test_a_record_that_is_not_an_object_or_has_no_email_is_no_person(server):
    answering(server, lookup(lambda subs: [{**s, "body": {**s["body"], "records": [
        None, {"Id": "0035g00000AbCdEAAZ", "LastName": "Doe"}]}} for s in subs]))  # fmt: skip

    (outcome,) = deliver(server)

    assert (outcome.status, outcome.note, outcome.http_status) == (
        "no_record", "no such person", 200,
    )  # fmt: skip


# -- Individuals made where missing -------------------------------------------------------


def refuse_writes(server: Any, sobject: str, code: str) -> None:
    """The sandbox refuses every create or update of `sobject`, as an org's validation rule
    or duplicate rule would, inside a graph too (so the graph rolls back)."""
    vendor = server.sandboxes["salesforce"].vendor
    create, update = vendor._create, vendor._update

    def refuse(original: Callable[[Any], Any]) -> Callable[[Any], Any]:
        def write(record: Any) -> Any:
            if (record.get("attributes") or {}).get("type") == sobject:
                error = {"statusCode": code, "message": "refused", "fields": []}
                return {"success": False, "errors": [error]}
            return original(record)

        return write

    vendor._create, vendor._update = refuse(create), refuse(update)  # type: ignore[method-assign]


def test_an_individual_salesforce_refused_to_create_fails_the_job(server):
    refuse_writes(server, "Individual", "DUPLICATES_DETECTED")

    (outcome,) = deliver(server, "noindividual@example.com")

    assert (outcome.status, outcome.http_status) == (None, 200)
    assert outcome.error.reason == "salesforce update: Individual DUPLICATES_DETECTED"
    assert (outcome.error.retryable, outcome.error.http_status) == (False, 200)
    assert [c["method"] for c in calls(server, "salesforce")] == ["POST", "POST", "POST"]


def test_a_record_salesforce_refused_to_link_leaves_no_individual_behind(server):
    # Review s29 V2: the link refused used to leave the new Individual (the person's last
    # name) linked to nothing; the graph now rolls its creation back with the link
    sandbox = server.sandboxes["salesforce"].vendor
    deliver(server, EMAIL)  # an ordinary person: the sandbox's state holds their Individual
    before = dict(sandbox.individuals)
    refuse_writes(server, "Contact", "INVALID_CROSS_REFERENCE_KEY")

    (outcome,) = deliver(server, "noindividual@example.com")

    assert outcome.status is None
    assert outcome.error.reason == "salesforce update: Contact INVALID_CROSS_REFERENCE_KEY"
    assert sandbox.individuals == before


def test_a_new_individual_is_named_after_its_record_linked_in_one_graph_and_listed(server):
    (outcome,) = deliver(server, "noindividual@example.com")

    (graph_call,) = [c for c in calls(server, "salesforce") if c["path"].endswith("/graph")]
    (graph,) = json.loads(graph_call["body"])["graphs"]
    create, link = graph["compositeRequest"]
    assert (create["method"], create["body"]) == ("POST", {"LastName": "Sandbox"})
    assert create["url"].endswith("/sobjects/Individual")
    assert (link["method"], link["body"]) == ("PATCH", {"IndividualId": "@{individual0.id}"})
    assert f"Individual/{outcome.vendor_ref}" in outcome.records_changed
    assert any(c.startswith("Contact/003") for c in outcome.records_changed)
    assert (outcome.status, outcome.http_status, outcome.note) == ("done", 200, None)
    assert not any(c["path"].endswith("/composite/sobjects") and c["method"] == "POST"
                   for c in calls(server, "salesforce"))  # fmt: skip


def test_graph_reference_ids_are_unique_across_the_payload(server):
    # Salesforce's graph pages leave open whether a referenceId may repeat in another graph;
    # the sandbox refuses a repeat (the strict reading), and the connector never sends one
    # (vendorfix L3; before, every graph used `individual` and `link`)
    vendor = server.sandboxes["salesforce"].vendor
    before = len(vendor.individuals)

    outcomes = deliver(server, "noindividual1@example.com", "noindividual2@example.com")

    (graph_call,) = [c for c in calls(server, "salesforce") if c["path"].endswith("/graph")]
    graphs = json.loads(graph_call["body"])["graphs"]
    refs = [[r["referenceId"] for r in g["compositeRequest"]] for g in graphs]
    assert refs == [["individual0", "link0"], ["individual1", "link1"]]
    assert graphs[1]["compositeRequest"][1]["body"] == {"IndividualId": "@{individual1.id}"}
    assert [o.status for o in outcomes] == ["done", "done"]
    assert len(vendor.individuals) == before + 2


def test_a_create_answered_503_after_salesforce_committed_it_makes_one_individual(server):
    # Review s29 V2: Salesforce applies the create-and-link, then its answer is lost (503).
    # With the worker's in-call retries a resend made a second Individual; a redelivery did
    # too, the record still unlinked. Now the call is tried once and the redelivery's lookup
    # finds the link: Individuals grow by 1, not 2.
    sandbox = server.sandboxes["salesforce"]
    connector = make_connector(server, "salesforce")
    connector.http = HttpClient(2.0, RetryPolicy(attempts=3), sleep=lambda _: None)
    job = make_job(("email", "noindividual@example.com"), system="salesforce")
    before = len(sandbox.vendor.individuals)
    # every third call fails, carried out first: the token, the lookup, then the graph
    sandbox.configure_faults(FaultPlan(rate=1 / 3, statuses=(503,), applied=True))

    (first,) = connector.deliver([job])
    (second,) = connector.deliver([job])

    assert len(sandbox.vendor.individuals) == before + 1
    assert first.status is None and first.error.retryable
    assert (second.status, second.note) == ("done", None)
    (record,) = [r for r in sandbox.vendor.records.values()
                 if r["email"] == "noindividual@example.com"]  # fmt: skip
    assert second.vendor_ref == record["IndividualId"]
    assert sandbox.faults()["injected"] == {"503": 1}


def graph_answer(graphs: list[dict[str, Any]]) -> Change:
    def changed(request: SandboxRequest, body: Any) -> Any:
        return {"graphs": graphs} if request.path.endswith("/composite/graph") else body

    return changed


HALTED_GRAPH = {"graphId": "g0", "isSuccessful": False, "graphResponse": {"compositeResponse": [
    {"referenceId": r, "httpStatusCode": 400, "body": [{"errorCode": "PROCESSING_HALTED"}]}
    for r in ("individual0", "link0")]}}  # fmt: skip


@pytest.mark.parametrize(
    "graphs", [[], [{"graphId": "g0", "isSuccessful": True}], [{"graphId": "g0"}],
               [{"graphId": "g0", "isSuccessful": True, "graphResponse": {"compositeResponse": [
                   {"referenceId": "individual0", "body": {"success": True}}]}}]],
)  # fmt: skip
def test_a_graph_answer_not_understood_is_retried_never_created_again_in_the_call(server, graphs):
    answering(server, graph_answer(graphs))

    (outcome,) = deliver(server, "noindividual@example.com")

    assert outcome.status is None and outcome.error.retryable is True
    assert outcome.error.reason == "salesforce create Individual: malformed answer"
    assert len([c for c in calls(server, "salesforce") if c["path"].endswith("/graph")]) == 1


def test_graphs_salesforce_halted_unprocessed_are_sent_again(server):
    # Given Salesforce running the first graph of the first call and halting the second
    vendor = server.sandboxes["salesforce"].vendor
    original, bodies = vendor.handle, []

    def handle(request: SandboxRequest) -> SandboxResponse:
        if not request.path.endswith("/composite/graph"):
            return original(request)
        bodies.append(json.loads(request.body))
        if len(bodies) > 1:
            return original(request)
        first, second = bodies[0]["graphs"]
        ran = json.loads(
            original(replace(request, body=json.dumps({"graphs": [first]}).encode())).body
        )
        halted = {**HALTED_GRAPH, "graphId": second["graphId"]}
        return json_response(200, {"graphs": [*ran["graphs"], halted]})

    vendor.handle = handle  # type: ignore[method-assign]
    before = len(vendor.individuals)

    outcomes = deliver(server, "noindividual1@example.com", "noindividual2@example.com")

    # Then the halted one is sent again, alone, and each record has one Individual
    assert [len(b["graphs"]) for b in bodies] == [2, 1]
    assert [o.status for o in outcomes] == ["done", "done"]
    assert len(vendor.individuals) == before + 2


def test_a_graph_halted_every_time_is_retried_later_not_sent_without_end(server):
    answering(server, graph_answer([HALTED_GRAPH]))

    (outcome,) = deliver(server, "noindividual@example.com")

    assert outcome.status is None and outcome.error.retryable is True
    assert "PROCESSING_HALTED" in outcome.error.reason


def test_the_sandbox_halts_graphs_after_14_failed_ones(server):
    # Salesforce: "if the number of graph failures exceeds the maximum limit of 14,
    # processing is halted for the remaining graphs" (Composite Graph Limits)
    refuse_writes(server, "Individual", "DUPLICATES_DETECTED")
    emails = [f"noindividual{n}@example.com" for n in range(16)]

    outcomes = deliver(server, *emails)

    graph_calls = [c for c in calls(server, "salesforce") if c["path"].endswith("/graph")]
    assert [len(json.loads(c["body"])["graphs"]) for c in graph_calls] == [16, 1]
    assert {o.error.reason for o in outcomes} == {
        "salesforce update: Individual DUPLICATES_DETECTED"
    }


# -- the opt-out write --------------------------------------------------------------------


def test_a_record_field_alone_is_no_opt_out_written(server):
    # Given a job with no purpose and a system that also sets a checkbox on the record: the
    # checkbox is written, no Individual field is
    connector = make_connector(server, "salesforce", options={"record_field": "Do_Not_Sell__c"})
    job = make_job(("email", EMAIL), system="salesforce", purposes=())

    (outcome,) = connector.deliver([job])

    # Then the job is not done (the record's checkbox is not the Individual's opt-out)
    assert (outcome.status, outcome.http_status) == (None, 200)
    assert outcome.error.reason == "salesforce: no opt-out field written"
    assert outcome.error.retryable is False


def test_a_refused_record_field_write_fails_the_job(server):
    def refuse_record(body: Any) -> Any:
        return [{"success": False, "errors": [{"statusCode": "INVALID_FIELD"}]}
                if i == len(body) - 1 else entry for i, entry in enumerate(body)]  # fmt: skip

    answering(server, writes("PATCH", 1, refuse_record))  # the checkbox call
    connector = make_connector(server, "salesforce", options={"record_field": "Do_Not_Sell__c"})

    (outcome,) = connector.deliver([make_job(("email", EMAIL), system="salesforce")])

    assert outcome.status is None
    assert outcome.error.reason == "salesforce update: Contact INVALID_FIELD"


@pytest.mark.parametrize(
    ("entry", "code"),
    [({"success": False, "errors": [{"statusCode": "INVALID_FIELD"}]}, "INVALID_FIELD"),
     ({"success": False, "errors": []}, "UNKNOWN_ERROR"),
     ({"success": False, "errors": [{"statusCode": 7}]}, "UNKNOWN_ERROR")],
)  # fmt: skip
def test_a_refused_opt_out_write_fails_with_salesforces_code(server, entry, code):
    answering(server, writes("PATCH", 0, lambda body: [entry for _ in body]))

    (outcome,) = deliver(server)

    assert (outcome.status, outcome.http_status) == (None, 200)
    assert outcome.error.reason == f"salesforce update: Individual {code}"
    assert outcome.error.retryable is False


@pytest.mark.parametrize("answer", [{}, []])
def test_a_write_answer_not_one_entry_a_record_is_retried(server, answer):
    answering(server, writes("PATCH", 0, answer))

    (outcome,) = deliver(server)

    assert outcome.status is None
    assert outcome.error.reason == "salesforce set opt-out: malformed answer"
    assert outcome.error.retryable is True


def test_a_write_answered_with_a_300_is_not_a_write(server):
    answering(server, writes("PATCH", 0, json_response(300, [])))

    (outcome,) = deliver(server)

    assert outcome.status is None and outcome.error.http_status == 300


def test_the_opt_out_write_lets_salesforce_take_each_record_apart(server):
    (outcome,) = deliver(server)

    (write,) = [c for c in calls(server, "salesforce") if c["method"] == "PATCH"]
    (look,) = [c for c in calls(server, "salesforce") if c["path"].endswith("/composite")]
    assert json.loads(write["body"])["allOrNone"] is False
    assert json.loads(look["body"])["allOrNone"] is False
    assert (outcome.status, outcome.note) == ("done", None)


def test_a_dropped_record_id_alone_is_noted(server):
    # Given a person whose Individual id is an id and one of whose changed records' is not
    job = make_job(("email", EMAIL), system="salesforce")
    individual = "0PK5g00000AbCdEAAZ"
    person = Person("Contact", "x y", EMAIL, "Doe", individual, opted_out=True,
                    changed=[f"Individual/{individual}", "Contact/x y"])  # fmt: skip

    outcome = make_connector(server, "salesforce")._outcome(job, {EMAIL: [person]})

    assert (outcome.status, outcome.vendor_ref) == ("done", individual)
    assert outcome.records_changed == (f"Individual/{individual}",)
    assert outcome.note == DROPPED_REFERENCE


# -- more than 200 records: several sObject Collections calls (vendor35) --------------------


def test_no_collections_call_holds_more_than_200_records(server):
    # Given 201 people, each with an Individual (more than one batch's 100 emails: one email
    # can hold several Contacts and Leads in a real org, so a batch can reach past 200)
    jobs = [make_job(("email", f"p{n}@example.com"), request_id=f"r{n}", system="salesforce")
            for n in range(201)]  # fmt: skip

    outcomes = make_connector(server, "salesforce").send(jobs)

    # Then the Individuals went in calls of 200 and 1 (Salesforce refuses a longer list as a
    # whole, EXCEEDED_ID_LIMIT), and every job is done
    sizes = [len(json.loads(c["body"])["records"]) for c in calls(server, "salesforce")
             if c["method"] == "PATCH"]  # fmt: skip
    assert sizes == [200, 1]
    assert {o.status for o in outcomes} == {"done"}


def test_a_call_of_more_than_200_records_is_refused_whole(server, monkeypatch):
    # Given a connector that would send 201 records in one call (the sandbox holds
    # Salesforce's limit: "cannot submit more than 200 records into this call")
    monkeypatch.setattr("optout.connectors.salesforce.COLLECTION_SIZE", 300)
    jobs = [make_job(("email", f"p{n}@example.com"), request_id=f"r{n}", system="salesforce")
            for n in range(201)]  # fmt: skip

    outcomes = make_connector(server, "salesforce").send(jobs)

    # Then nothing is done, every job failing with Salesforce's code
    assert {(o.status, o.error.reason) for o in outcomes} == {
        (None, "salesforce update: Individual HTTP 400 EXCEEDED_ID_LIMIT")
    }


def test_a_collections_call_refused_whole_fails_only_its_own_records_jobs(server, monkeypatch):
    # Given the Individuals' writes in two calls (one record a call here; 200 in production)
    # and Salesforce refusing the second call as a whole
    monkeypatch.setattr("optout.connectors.salesforce.COLLECTION_SIZE", 1)
    refused = json_response(400, [{"message": "jane is no column", "errorCode": "INVALID_FIELD"}])
    answering(server, writes("PATCH", 1, refused))

    first, second = deliver(server, "ann@example.com", "bob@example.com")

    # Then the first call's job is done (its Individual was written), and only the second's
    # fails, for good, with Salesforce's code and not its message. Before, the refusal was
    # raised for the whole batch: the first job failed too, its opt-out written
    assert first.status == "done"
    assert (second.status, second.error.retryable) == (None, False)
    assert second.error.reason == "salesforce update: Individual HTTP 400 INVALID_FIELD"
    assert "jane" not in repr(second)


def test_a_collections_call_failing_for_now_retries_the_batch(server, monkeypatch):
    # A 503 on the second call: nothing is failed for good; the next delivery writes the
    # first call's Individuals again (the same values: a PATCH setting a checkbox to true)
    monkeypatch.setattr("optout.connectors.salesforce.COLLECTION_SIZE", 1)
    answering(server, writes("PATCH", 1, json_response(503, [{"errorCode": "SERVER_UNAVAILABLE"}])))

    outcomes = deliver(server, "ann@example.com", "bob@example.com")

    assert [(o.status, o.error.retryable) for o in outcomes] == [(None, True), (None, True)]


def test_a_graph_call_refused_whole_fails_only_its_own_records_jobs(server, monkeypatch):
    # Given two people without an Individual, their graphs in two calls (one a call here; 75
    # in production), and Salesforce refusing the second call as a whole
    monkeypatch.setattr("optout.connectors.salesforce.GRAPHS_PER_CALL", 1)
    seen = []

    def refuse_second(request: SandboxRequest, body: Any) -> Any:
        if request.path.endswith("/composite/graph"):
            seen.append(request)
            if len(seen) == 2:
                return json_response(400, [{"message": "bob", "errorCode": "JSON_PARSER_ERROR"}])
        return body

    answering(server, refuse_second)

    first, second = deliver(server, "noindividual.ann@example.com", "noindividual.bob@example.com")

    # Then the first person's Individual was made, linked and opted out: done; only the
    # second job fails, for good, with Salesforce's code. Before, the refusal was raised for
    # the batch: the first job failed too, its Individual made and its opt-out never written
    assert first.status == "done"
    assert (second.status, second.error.retryable) == (None, False)
    assert second.error.reason == "salesforce update: Individual HTTP 400 JSON_PARSER_ERROR"
    # (the sandbox ran the second call before this test put the refusal in its place: its
    # Individual exists here, and no opt-out was written to it)
    individuals = server.sandboxes["salesforce"].vendor.individuals.values()
    assert sorted(bool(f.get("HasOptedOutTracking")) for f in individuals) == [False, True]


@pytest.mark.parametrize("status", [400, 403, 429])
def test_a_token_endpoint_throttling_logins_is_retried_at_any_status(
    server: Any, status: int
) -> None:
    # Given Salesforce's token endpoint answering its `rate_limit_exceeded` (too many logins),
    # whose HTTP status it does not document (an RFC 6749 error answer is a 400 by default)
    vendor = server.sandboxes["salesforce"].vendor
    vendor.token_refusal = (status, "rate_limit_exceeded")
    connector = make_connector(server, "salesforce")
    connector.http = HttpClient(2.0, RetryPolicy(attempts=1), sleep=lambda _: None)

    # When a batch is sent
    (outcome,) = connector.deliver([make_job(("email", EMAIL), system="salesforce")])

    # Then it is retried later, never failed for good (vendor37: at 400 or 403 it was final,
    # and the batch failed where a wait would have done), with the code and nothing else
    assert outcome.status is None and outcome.error is not None
    assert (outcome.error.retryable, outcome.error.auth) == (True, False)
    assert outcome.error.reason == f"salesforce token: HTTP {status} rate_limit_exceeded"
    assert [c["path"] for c in calls(server, "salesforce")] == ["/services/oauth2/token"]
