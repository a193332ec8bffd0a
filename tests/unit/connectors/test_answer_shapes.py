"""A 2xx without the vendor's documented answer is no receipt (review-s20-mute, "Flagged
loudly"): Braze's export answer without `users` and The Trade Desk's opt-out answer that is not
a JSON object (or whose `FailedLines` is neither null nor a list) are not understood, so the
job is retried, never `no_record` ("no such person") nor `done`. Answer shapes:
docs/vendors.md. Salesforce's lookup: test_salesforce_answers.py."""

import json
from collections.abc import Callable
from typing import Any

import pytest
from pydantic import ValidationError
from ttd_data.models.advertiserdsrresponse import AdvertiserDsrResponse

from local.sandbox.server import SandboxServer
from local.sandbox.wire import SandboxRequest, SandboxResponse, json_response
from tests.unit.connectors.conftest import make_connector, make_job

EMAIL = "jane@example.com"


def answering(
    server: SandboxServer, vendor: str, path: str, change: Callable[[Any], SandboxResponse]
) -> None:
    """The vendor's sandbox answers as usual, but a call to `path` answers `change(its body)`."""
    original = server.sandboxes[vendor].vendor.handle

    def handle(request: SandboxRequest) -> SandboxResponse:
        answer = original(request)
        if not request.path.endswith(path):
            return answer
        return change(json.loads(answer.body))

    server.sandboxes[vendor].vendor.handle = handle  # type: ignore[method-assign]


def without(key: str) -> Callable[[Any], SandboxResponse]:
    return lambda body: json_response(200, {k: v for k, v in body.items() if k != key})


@pytest.mark.parametrize(
    ("identifier", "change"),
    [(("email", EMAIL), without("users")),
     (("customer_id", "c1"), without("users")),
     (("email", EMAIL), lambda body: json_response(200, {**body, "users": None})),
     (("email", EMAIL), lambda body: json_response(200, [body]))],
)  # fmt: skip
def test_a_braze_export_answer_without_users_is_retried_never_no_such_person(
    server, identifier, change
):
    # Given Braze's /users/export/ids answering 200 without its `users` list
    answering(server, "braze", "/users/export/ids", change)
    job = make_job(identifier, system="braze")

    (outcome,) = make_connector(server, "braze").deliver([job])

    # Then the answer is not understood: retried, never a no_record receipt
    assert outcome.status is None
    assert outcome.error.reason == "braze users/export/ids: malformed answer"
    assert outcome.error.retryable is True


def test_a_braze_export_answer_with_empty_users_is_still_no_such_person(server):
    answering(server, "braze", "/users/export/ids",
              lambda body: json_response(200, {**body, "users": []}))  # fmt: skip
    job = make_job(("email", EMAIL), system="braze")

    (outcome,) = make_connector(server, "braze").deliver([job])

    assert (outcome.status, outcome.note) == (
        "no_record",
        "no such person (braze users/export/ids)",
    )


@pytest.mark.parametrize(
    "answer",
    [json_response(200, []), json_response(200, "ok"), json_response(200, None),
     SandboxResponse(200, {}, b"not json"), SandboxResponse(200, {}, b""),
     json_response(200, {"FailedLines": "none"})],
)  # fmt: skip
def test_a_trade_desk_answer_not_a_json_object_is_retried_never_done(server, answer):
    # Given TTD answering the opt-out with a 200 that is not its JSON object
    answering(server, "trade_desk", "/data/deletion-optout/advertiser", lambda body: answer)
    job = make_job(("email", EMAIL), system="trade_desk")

    (outcome,) = make_connector(server, "trade_desk").deliver([job])

    # Then the answer is not understood: retried, never a done receipt
    assert outcome.status is None
    assert outcome.error.reason == "trade_desk deletion-optout: malformed answer"
    assert outcome.error.retryable is True


@pytest.mark.parametrize("answer", [{}, {"FailedLines": None}, {"FailedLines": []}])
def test_a_trade_desk_answer_without_failed_lines_is_done(server, answer):
    # TTD's own client types FailedLines optional and nullable: each of these is its answer
    # with no line failed (a null read as "not understood" would retry every job for ever)
    AdvertiserDsrResponse.model_validate(answer)
    answering(server, "trade_desk", "/data/deletion-optout/advertiser",
              lambda body: json_response(200, answer))  # fmt: skip
    job = make_job(("email", EMAIL), system="trade_desk")

    (outcome,) = make_connector(server, "trade_desk").deliver([job])

    assert (outcome.status, outcome.identifier_types_sent) == ("done", ("email",))


def test_what_trade_desks_client_refuses_is_what_we_retry() -> None:
    # The other side of the oracle: the shapes retried above are not TTD's response model
    for answer in ({"FailedLines": "none"}, {"FailedLines": 3}):
        with pytest.raises(ValidationError):
            AdvertiserDsrResponse.model_validate(answer)


@pytest.mark.parametrize(
    "line",
    [{"ErrorCode": "InvalidUserId"}, {"ItemNumber": None, "ErrorCode": "InvalidUserId"},
     {"ItemNumber": 0, "ErrorCode": "InvalidUserId"}, {"ItemNumber": 2, "ErrorCode": "X"},
     "InvalidUserId"],
)  # fmt: skip
def test_a_trade_desk_failed_line_naming_no_item_of_the_call_is_retried_never_done(server, line):
    # Given TTD answering one item's opt-out with a failed line that names no item of the call
    # (TTD's client allows ItemNumber to be absent or null): read past, it left the item
    # accepted and the job done (review s20 diff D8)
    answering(server, "trade_desk", "/data/deletion-optout/advertiser",
              lambda body: json_response(200, {"FailedLines": [line]}))  # fmt: skip
    job = make_job(("email", EMAIL), system="trade_desk")

    (outcome,) = make_connector(server, "trade_desk").deliver([job])

    # Then the answer is not understood: retried, never a done receipt
    assert outcome.status is None
    assert outcome.error.reason == "trade_desk deletion-optout: malformed answer"
    assert outcome.error.retryable is True


@pytest.mark.parametrize(
    ("identifier", "field", "user"),
    [(("email", EMAIL), "braze_id", {}),
     (("email", EMAIL), "braze_id", {"braze_id": ""}),
     (("phone", "+14155550123"), "braze_id", {"braze_id": 7}),
     (("customer_id", "c1"), "external_id", {}),
     (("customer_id", "c1"), "external_id", {"external_id": None})],
)  # fmt: skip
def test_a_braze_exported_profile_without_its_id_is_retried_never_no_such_person(
    server, identifier, field, user
):
    # Given Braze's export finding a profile but answering it without the id asked for in
    # `fields_to_export` (the braze_id of an email's or phone's profile, a customer's
    # external_id)
    answering(server, "braze", "/users/export/ids",
              lambda body: json_response(200, {**body, "users": [user]}))  # fmt: skip
    job = make_job(identifier, system="braze")

    (outcome,) = make_connector(server, "braze").deliver([job])

    # Then it is not understood: retried. Before (vendor35) the profile was skipped and the
    # job read "no such person", a no_record receipt for a person Braze holds
    assert (outcome.status, outcome.error.retryable) == (None, True)
    assert outcome.error.reason == f"braze users/export/ids: a profile without its {field}"
