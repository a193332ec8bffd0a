"""Meta's `usersofanyaudience` answers 2xx and may process nothing when no business portfolio
owns the ad account or its Custom Audience Terms are not accepted (Meta, "Customer File Custom
Audiences", Remove Members): the connector reads the account once (check_account) and never
writes `done` for such an account (review s29 F1)."""

import hashlib
import hmac
import json
import urllib.parse
from typing import Any

import pytest
from facebook_business.adobjects.adaccount import AdAccount  # type: ignore[import-untyped]
from facebook_business.typechecker import TypeChecker  # type: ignore[import-untyped]

from local.sandbox.meta import graph_error
from local.sandbox.wire import SandboxRequest
from optout.connectors import meta
from tests.unit.connectors.conftest import (
    EMAIL_NORMALISED,
    PHONE,
    calls,
    make_connector,
    make_job,
    secret_for,
)

JOB = make_job(("email", EMAIL_NORMALISED), ("phone", PHONE), system="meta")
ACCOUNT_READ = ("GET", "/v27.0/act_1001?fields=tos_accepted,business")


def _methods(server: Any) -> list[tuple[str, str]]:
    return [(c["method"], c["path"]) for c in calls(server, "meta")]


@pytest.mark.parametrize(
    ("unset", "why"),
    [("terms_accepted", "Custom Audience Terms not accepted"),
     ("business_owned",
      "business absent (no business portfolio owns it, or the token may not read it)")],
)  # fmt: skip
def test_meta_account_usersofanyaudience_would_ignore_is_never_a_done_receipt(server, unset, why):
    # Given an ad account whose removals Meta answers 2xx and does not process
    vendor = server.sandboxes["meta"].vendor
    setattr(vendor, unset, False)
    # When a job is delivered to a system set up with only ad_account_id
    (outcome,) = make_connector(server, "meta").deliver([JOB])
    # Then it is not done: a retryable failure (the operator fixes the account, the next try
    # goes through) with a reason naming the problem, no identifier, and no removal was sent
    assert outcome.status is None and outcome.error.retryable
    assert outcome.error.reason == (
        f"configuration: meta ad account cannot remove from its audiences: {why}"
    )
    assert EMAIL_NORMALISED not in repr(outcome) and PHONE not in repr(outcome)
    assert outcome.identifier_types_sent == () and outcome.identifier_types_attempted == ()
    assert _methods(server) == [ACCOUNT_READ]
    assert vendor.removed == []


def test_meta_sandbox_removal_on_an_unusable_account_answers_2xx_and_removes_nothing(server):
    # The sandbox models Meta's documented case (the connector before check_account read
    # this answer as done)
    vendor = server.sandboxes["meta"].vendor
    vendor.terms_accepted = False
    connector = make_connector(server, "meta")
    answer = connector._delete(connector.urls[0], "EMAIL_SHA256", ["a" * 64])
    assert answer.status == 200 and vendor.removed == []


def test_meta_account_is_read_once_a_container_and_a_fixed_account_is_seen_at_once(server):
    # Given an account whose terms are not accepted yet
    vendor = server.sandboxes["meta"].vendor
    vendor.terms_accepted = False
    connector = make_connector(server, "meta")
    (refused,) = connector.deliver([JOB])
    # When the terms are accepted, and two more batches are delivered
    vendor.terms_accepted = True
    (first,) = connector.deliver([JOB])
    (second,) = connector.deliver([make_job(("email", "p2@example.com"), system="meta")])
    # Then the refused read was not kept: the next batch read the account again and went
    # through; the batch after it read nothing (a usable account is kept an hour)
    assert refused.status is None and (first.status, second.status) == ("done", "done")
    reads = [m for m in _methods(server) if m[0] == "GET"]
    assert reads == [ACCOUNT_READ, ACCOUNT_READ]
    assert len(_methods(server)) == 2 + 2 + 1  # two reads, two schemas, then one schema


def test_meta_usable_account_is_read_again_after_an_hour(server):
    clock = [1000.0]
    connector = make_connector(server, "meta")
    connector.clock = lambda: clock[0]
    connector.deliver([JOB])
    clock[0] += meta.ACCOUNT_CHECK_SECONDS - 1
    connector.deliver([JOB])
    clock[0] += 1
    connector.deliver([JOB])
    assert [m for m in _methods(server) if m[0] == "GET"] == [ACCOUNT_READ, ACCOUNT_READ]


def test_meta_audiences_alone_read_no_account(server):
    connector = make_connector(server, "meta", options={"ad_account_id": None,
                                                       "audience_ids": ["2002"]})  # fmt: skip
    (outcome,) = connector.deliver([JOB])
    assert outcome.status == "done"
    assert all(method == "DELETE" for method, _ in _methods(server))
    assert connector.calls_per_batch(10) == 2  # and the pace counts no read


def test_meta_calls_counted_for_the_pace_include_the_account_read(server):
    connector = make_connector(server, "meta")
    connector.deliver([JOB])
    assert connector.calls_per_batch(1) == len(calls(server, "meta")) == 3


def test_meta_account_read_refusing_the_token_is_a_credential_failure(server):
    # The account read is classified as a removal's answer: code 190 reloads the secret
    connector = make_connector(server, "meta", secret={"access_token": "rotated-away"})
    (outcome,) = connector.deliver([JOB])
    assert (outcome.error.auth, outcome.error.retryable) == (True, False)
    assert outcome.error.reason == "meta ad account: access token refused (code 190)"


@pytest.mark.parametrize(("business", "terms"), [(True, True), (False, False)])
def test_meta_sandbox_account_answer_has_the_shape_of_the_sdks_ad_account(server, business, terms):
    # facebook-business 26.0.3 AdAccount: tos_accepted is `map<string, int>`, business a
    # Business node; an unset field is left out, as the Graph API leaves it out
    vendor = server.sandboxes["meta"].vendor
    vendor.business_owned, vendor.terms_accepted = business, terms
    connector = make_connector(server, "meta")
    assert (connector.check_account() == meta.AccountCheck()) is (business and terms)
    (read,) = [c for c in calls(server, "meta") if c["method"] == "GET"]
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(read["path"]).query)
    fields = query["fields"][0].split(",")
    assert set(fields) <= {v for k, v in vars(AdAccount.Field).items() if not k.startswith("_")}
    answer = vendor.handle(_get(read["path"]))
    body = json.loads(answer.body)
    checker = TypeChecker(AdAccount._field_types, AdAccount._get_field_enum_info())
    assert all(checker.is_valid_pair(k, v) for k, v in body.items())
    assert ("tos_accepted" in body, "business" in body) == (terms, business)
    if terms:
        assert body["tos_accepted"]["custom_audience_tos"] == 1


def test_meta_unusable_account_still_sends_the_audience_ids_removals(server):
    # Given an account whose terms are not accepted, on a system that also names an audience
    vendor = server.sandboxes["meta"].vendor
    vendor.terms_accepted = False
    connector = make_connector(server, "meta", options={"audience_ids": ["2002"]})
    # When a job is delivered
    (outcome,) = connector.deliver([JOB])
    # Then the audience's removals went (they answer with counts, and removed the hashes);
    # usersofanyaudience was not called; the batch is still retried for the account
    assert [m for m in _methods(server) if m[0] == "DELETE"] == [
        ("DELETE", "/v27.0/2002/users"), ("DELETE", "/v27.0/2002/users")]  # fmt: skip
    assert len(vendor.removed) == 2
    assert outcome.status is None and outcome.error.retryable
    assert outcome.error.reason.startswith("configuration: meta ad account cannot remove")
    assert outcome.identifier_types_attempted == ("email", "phone")


def test_meta_account_read_refused_for_a_permission_sends_the_removal_with_a_note(server, caplog):
    # Given a token Meta refuses to read the ad account with (code 200, a permission error)
    vendor = server.sandboxes["meta"].vendor
    vendor.account_refused = (403, 200)
    connector = make_connector(server, "meta")
    # When two batches are delivered
    (first,) = connector.deliver([JOB])
    (second,) = connector.deliver([JOB])
    # Then each removal was sent as before the check existed, and is done with a note saying
    # the account could not be checked (Meta's numbers only); the read is tried each batch
    note = ("meta ad account not checked: meta ad account: HTTP 403 (code 200); removal sent "
            "unchecked (Meta processes none for an account without a business portfolio or its "
            "Terms)")  # fmt: skip
    assert (first.status, first.note) == ("done", note) and second.status == "done"
    assert [m[0] for m in _methods(server)] == ["GET", "DELETE", "DELETE"] * 2
    assert EMAIL_NORMALISED not in caplog.text and "not checked" in caplog.text


def test_meta_removals_sent_unchecked_are_counted_for_the_worker_s_metrics(server):
    # Given a token Meta refuses to read the ad account with, and two jobs of one batch
    vendor = server.sandboxes["meta"].vendor
    vendor.account_refused = (403, 200)
    connector = make_connector(server, "meta")
    other = make_job(("email", "p2@example.com"), request_id="req-2", system="meta")
    # When the batch is delivered
    outcomes = connector.deliver([JOB, other])
    # Then both are done, and the connector counts both as sent unchecked, with the hashes its
    # calls sent (2 emails, 1 phone) and none unmatched: names and numbers only, taken once.
    # Before, only a WARNING log said so: no metric (review s29 lead D1, vendorfix2 R1)
    assert [o.status for o in outcomes] == ["done", "done"]
    assert connector.take_counts() == {
        meta.REMOVALS_UNCHECKED: 2, meta.HASHES_SENT: 3, meta.HASHES_UNMATCHED: 0}  # fmt: skip
    assert connector.take_counts() == {}
    # And once the account can be read, a batch counts no unchecked removal
    vendor.account_refused = None
    (checked,) = connector.deliver([JOB])
    assert checked.status == "done" and checked.note is None
    assert meta.REMOVALS_UNCHECKED not in connector.take_counts()


@pytest.mark.parametrize(
    ("refusal", "retryable"), [((401, 190), False), ((400, 2635), False), ((400, 17), True)]
)
def test_meta_account_read_refused_otherwise_still_stops_the_batch(server, refusal, retryable):
    # A refused token, an expired version or a throttle would refuse the removal too (guard)
    server.sandboxes["meta"].vendor.account_refused = refusal
    (outcome,) = make_connector(server, "meta").deliver([JOB])
    assert outcome.status is None and outcome.error.retryable is retryable
    assert _methods(server)[-1][0] == "GET" and server.sandboxes["meta"].vendor.removed == []


def _get(path: str) -> SandboxRequest:
    token = secret_for("meta")["access_token"]
    return SandboxRequest("GET", path, {"authorization": f"Bearer {token}"}, b"")


APP_SECRET = "local-fake-meta-app-secret"


def test_meta_app_requiring_the_proof_gets_it_on_every_call_never_the_secret(server):
    # Given a Meta app set to "Require App Secret" (review s31 vendors V31-4)
    vendor = server.sandboxes["meta"].vendor
    vendor.app_secret = APP_SECRET
    token = secret_for("meta")["access_token"]
    proof = hmac.new(APP_SECRET.encode(), token.encode(), hashlib.sha256).hexdigest()
    job = make_job(("email", "p1@example.com"), system="meta")
    secret = {**secret_for("meta"), "app_secret": APP_SECRET}
    connector = make_connector(server, "meta", options={"audience_ids": ["2002"]}, secret=secret)

    # When a removal is sent with the app secret in Meta's secret
    (outcome,) = connector.deliver([job])

    # Then the account's read carries the proof in its query (a GET has no body), each removal
    # in its form body beside the payload and not in its URL, and the secret goes nowhere
    read, *removals = calls(server, "meta")
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(read["path"]).query)
    assert query["appsecret_proof"] == [proof]
    assert len(removals) == 2
    for call in removals:
        assert dict(urllib.parse.parse_qsl(call["body"]))["appsecret_proof"] == proof
        assert "appsecret_proof" not in call["path"]
    assert not any(APP_SECRET in json.dumps(c) for c in calls(server, "meta"))
    assert outcome.status == "done" and APP_SECRET not in repr(outcome)


def test_meta_app_requiring_the_proof_refuses_a_call_without_it_or_with_another(server):
    # Given an app requiring the proof, and a secret without the app secret, or a wrong one
    server.sandboxes["meta"].vendor.app_secret = APP_SECRET
    job = make_job(("email", "p1@example.com"), system="meta")
    for secret in (secret_for("meta"), {**secret_for("meta"), "app_secret": "another"}):
        connector = make_connector(server, "meta", options={"ad_account_id": None,
                                                            "audience_ids": ["2002"]},
                                   secret=secret)  # fmt: skip

        (outcome,) = connector.deliver([job])

        # Then Meta refuses the removal: the job fails for good, never done
        assert outcome.status is None and outcome.error.retryable is False
    assert server.sandboxes["meta"].vendor.removed == []


@pytest.mark.parametrize(
    ("code", "more", "codes"),
    [(2663, {}, "code 2663"),  # Meta's answer quoted whole in issue threads
     (2655, {}, "code 2655"),  # its older number
     (200, {"error_subcode": 1870090}, "code 200, subcode 1870090")],  # Meta's guide's subcode
)  # fmt: skip
def test_meta_audience_refused_for_terms_not_accepted_fails_naming_it(server, code, more, codes):
    # Given an audience removal Meta refuses because the Custom Audience Terms are not
    # accepted (a system naming audience_ids only: no account read to catch it first)
    vendor = server.sandboxes["meta"].vendor
    original = vendor.handle

    def refuse(request: SandboxRequest) -> Any:
        if request.method == "DELETE":
            message = "(#2663) Terms of service has not been accepted. To accept, go to https://x"
            return graph_error(400, code, message, "OAuthException", **more)
        return original(request)

    vendor.handle = refuse  # type: ignore[method-assign]
    connector = make_connector(server, "meta", options={"ad_account_id": None,
                                                          "audience_ids": ["2002"]})  # fmt: skip

    (outcome,) = connector.deliver([JOB])

    # Then the job fails for good (an operator accepts the terms, then replays), and the reason
    # names what to fix beside Meta's numbers, never Meta's message
    assert outcome.status is None and outcome.error.retryable is False
    assert outcome.error.reason == (
        f"meta remove EMAIL_SHA256: HTTP 400 ({codes}): Custom Audience Terms not accepted"
    )
    assert "go to" not in repr(outcome)
