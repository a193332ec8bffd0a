"""Idempotency-Key: a retry answers the first result without a second event or a second call."""

from types import ModuleType
from typing import Any

import pytest

from optout.api_models import OptOutIn
from optout.events import fingerprint
from optout.settings import LOCAL_HASH_KEY
from tests.conftest import Aws
from tests.support.http_events import http_event, json_body
from tests.support.lambdas import invoke, load_function

BODY = {"email": "jane.doe@example.com", "jurisdiction": "US-CA"}


@pytest.fixture
def capture(aws: Aws, dynamodb_calls: list[str]) -> ModuleType:
    return load_function("capture_api")


def _opt_out(key: str, body: dict[str, Any] = BODY) -> dict[str, Any]:
    return http_event("POST", "/v1/opt-out", body, headers={"idempotency-key": key})


def test_a_retry_with_the_same_key_stores_one_event_and_answers_the_first_result(
    aws: Aws, capture: ModuleType, dynamodb_calls: list[str]
) -> None:
    # Given a first request with an Idempotency-Key
    first = invoke(capture, _opt_out("retry-1"))
    # When the client retries it with the same key and body
    dynamodb_calls.clear()
    second = invoke(capture, _opt_out("retry-1"))
    # Then one event exists, the retry answers the first result, in one DynamoDB call
    assert (first["statusCode"], second["statusCode"]) == (202, 202)
    assert json_body(second) == json_body(first)
    assert len(aws.items()) == 1
    assert dynamodb_calls == ["PutItem"]


def test_a_retry_of_an_opt_out_stored_before_gpc_honored_still_gets_the_field(
    aws: Aws, capture: ModuleType
) -> None:
    # Given an opt-out sent with Sec-GPC: 1 whose stored answer predates `gpc_honored`
    event = http_event(
        "POST", "/v1/opt-out", BODY, headers={"idempotency-key": "old-1", "sec-gpc": "1"}
    )
    first = json_body(invoke(capture, event))
    (item,) = aws.items()
    aws.dynamodb.update_item(
        TableName=aws.table_name, Key={"pk": {"S": item["pk"]}, "sk": {"S": item["sk"]}},
        UpdateExpression="REMOVE #r.gpc_honored", ExpressionAttributeNames={"#r": "response"},
    )  # fmt: skip
    # When the client retries it
    again = json_body(invoke(capture, event))
    # Then the answer is OptOutOut's, the field read from the event's own record
    assert again == first and again["gpc_honored"] is True


def test_a_retry_that_adds_sec_gpc_is_another_request_and_a_conflict(
    aws: Aws, capture: ModuleType
) -> None:
    # Given an opt-out sent with a key and no GPC signal
    invoke(capture, _opt_out("gpc-later"))
    # When the same body is sent with that key and Sec-GPC: 1 (documented in the README)
    event = http_event(
        "POST", "/v1/opt-out", BODY, headers={"idempotency-key": "gpc-later", "sec-gpc": "1"}
    )
    answer = invoke(capture, event)
    # Then it is refused as a different request, and nothing more is stored
    assert answer["statusCode"] == 409
    assert json_body(answer)["error"]["field"] == "Idempotency-Key"
    assert len(aws.items()) == 1


def test_a_retry_of_a_banner_choice_answers_the_same_request_id(
    aws: Aws, capture: ModuleType
) -> None:
    body = {"device_id": "3f1c2a9e-8b7d-4c1e-9f00-1a2b3c4d5e6f", "opt_out": {"sale": True}}
    event = http_event("POST", "/v1/consent", body, headers={"idempotency-key": "k"})
    first = json_body(invoke(capture, event))
    second = json_body(invoke(capture, http_event("POST", "/v1/consent", body,
                                                  headers={"idempotency-key": "k"})))  # fmt: skip
    assert second["request_id"] == first["request_id"]
    assert len(aws.items()) == 1


def test_the_same_key_and_person_with_a_different_body_is_a_conflict(
    aws: Aws, capture: ModuleType
) -> None:
    invoke(capture, _opt_out("reused"))
    before = aws.items()

    answer = invoke(capture, _opt_out("reused", BODY | {"purposes": ["sale"]}))

    assert answer["statusCode"] == 409
    assert json_body(answer)["error"]["code"] == "conflict"
    assert json_body(answer)["error"]["field"] == "Idempotency-Key"
    assert "jane.doe" not in answer["body"]
    assert aws.items() == before


@pytest.mark.parametrize(
    ("first", "retry"),
    [
        ({"email": "jane.doe@example.com"}, {"email": " Jane.Doe@EXAMPLE.com "}),
        ({"phone": "+14155550132", "jurisdiction": "US-CA"},
         {"phone": "(415) 555-0132", "jurisdiction": "US-CA"}),
    ],
)  # fmt: skip
def test_a_retry_naming_the_same_identifiers_written_differently_is_the_same_request(
    aws: Aws, capture: ModuleType, first: dict[str, Any], retry: dict[str, Any]
) -> None:
    # Given an opt-out sent with a key
    original = invoke(capture, _opt_out("typed", first))
    # When it is sent again with that key, each identifier written another way (review s23 C4)
    again = invoke(capture, _opt_out("typed", retry))
    # Then it is a retry, not "a different request": the first answer, nothing more stored
    assert (original["statusCode"], again["statusCode"]) == (202, 202)
    assert json_body(again) == json_body(original)
    assert len(aws.items()) == 1


def test_a_retry_of_an_event_stored_with_the_body_as_sent_is_still_a_retry(
    aws: Aws, capture: ModuleType
) -> None:
    # Given an opt-out stored before 2026-12-02, its fingerprint taken of the body as sent
    first = json_body(invoke(capture, _opt_out("old-key")))
    (item,) = aws.items()
    as_sent = OptOutIn.model_validate(BODY).model_dump(mode="json")
    legacy = fingerprint(LOCAL_HASH_KEY.encode(), "opt_out", {"body": as_sent, "gpc": False})
    aws.dynamodb.update_item(
        TableName=aws.table_name, Key={"pk": {"S": item["pk"]}, "sk": {"S": item["sk"]}},
        UpdateExpression="SET fingerprint = :f", ExpressionAttributeValues={":f": {"S": legacy}},
    )  # fmt: skip
    # When the client retries it with the same key and body
    again = invoke(capture, _opt_out("old-key"))
    # Then it answers the first answer
    assert again["statusCode"] == 202
    assert json_body(again) == first
    assert len(aws.items()) == 1


def test_a_key_someone_else_used_first_is_another_request_not_a_conflict(
    aws: Aws, capture: ModuleType
) -> None:
    # Given a stranger who learned a webform key and used it first for another email
    theirs = invoke(capture, _opt_out("learned", {"email": "someone.else@example.com"}))
    # When the person sends their own request with that key
    mine = invoke(capture, _opt_out("learned"))
    # Then both are stored, each under its own request id: neither blocks nor answers the other
    assert (theirs["statusCode"], mine["statusCode"]) == (202, 202)
    assert json_body(mine)["request_id"] != json_body(theirs)["request_id"]
    assert len(aws.items()) == 2


def _consent(key: str, device: str, opt_out: dict[str, bool]) -> dict[str, Any]:
    body = {"device_id": device, "opt_out": opt_out}
    return http_event("POST", "/v1/consent", body, headers={"idempotency-key": key})


def test_a_banner_key_used_first_by_another_device_does_not_refuse_this_devices_choice(
    aws: Aws, capture: ModuleType
) -> None:
    # Given a stranger who read a queued banner key and posted an opt-in under another device
    stranger = "ffffffff-ffff-4fff-bfff-ffffffffffff"
    theirs = invoke(capture, _consent("queued", stranger, {"sale": False}))
    # When the device's own opt-out is sent with that key
    device = "3f1c2a9e-8b7d-4c1e-9f00-1a2b3c4d5e6f"
    mine = invoke(capture, _consent("queued", device, {"sale": True}))
    # Then it is stored as its own request (no 409), answering this device's choice
    assert (theirs["statusCode"], mine["statusCode"]) == (202, 202)
    answer = json_body(mine)
    assert answer["request_id"] != json_body(theirs)["request_id"]
    assert (answer["device_id"], answer["opt_out"]) == (device, {"sale": True})
    assert len(aws.items()) == 2


def test_the_same_banner_key_and_device_with_another_choice_is_still_a_conflict(
    aws: Aws, capture: ModuleType
) -> None:
    device = "3f1c2a9e-8b7d-4c1e-9f00-1a2b3c4d5e6f"
    invoke(capture, _consent("k", device, {"sale": True}))
    before = aws.items()

    answer = invoke(capture, _consent("k", device, {"sale": True, "share": True}))

    assert (answer["statusCode"], json_body(answer)["error"]["code"]) == (409, "conflict")
    assert aws.items() == before


def _asserting(key: str, email: str) -> dict[str, Any]:
    device = "3f1c2a9e-8b7d-4c1e-9f00-1a2b3c4d5e6f"
    body = {"device_id": device, "opt_out": {"sale": True}, "identity": {"email": email}}
    return http_event("POST", "/v1/consent", body, headers={"idempotency-key": key})


def test_the_same_banner_key_and_device_asserting_another_person_is_a_conflict(
    aws: Aws, capture: ModuleType
) -> None:
    # Given a device's opt-out asserted for one email, under a key
    invoke(capture, _asserting("k", "jane.doe@example.com"))
    before = aws.items()
    # When the same device and key assert another email (the request id covers only the
    # device on this route: the fingerprint's identifiers are what tell the two apart)
    answer = invoke(capture, _asserting("k", "john.roe@example.com"))
    # Then it is "a different request", and nothing is stored for the second person
    assert (answer["statusCode"], json_body(answer)["error"]["code"]) == (409, "conflict")
    assert aws.items() == before


def test_the_same_banner_key_and_device_asserting_the_same_email_written_otherwise_is_a_retry(
    aws: Aws, capture: ModuleType
) -> None:
    first = invoke(capture, _asserting("k", "jane.doe@example.com"))
    again = invoke(capture, _asserting("k", " Jane.Doe@EXAMPLE.com "))
    assert (first["statusCode"], again["statusCode"]) == (202, 202)
    assert json_body(again) == json_body(first)


def test_different_keys_store_different_events(aws: Aws, capture: ModuleType) -> None:
    first = json_body(invoke(capture, _opt_out("one")))
    second = json_body(invoke(capture, _opt_out("two")))
    assert first["request_id"] != second["request_id"]
    assert len(aws.items()) == 2


def test_requests_without_a_key_are_never_deduplicated(aws: Aws, capture: ModuleType) -> None:
    invoke(capture, http_event("POST", "/v1/opt-out", BODY))
    invoke(capture, http_event("POST", "/v1/opt-out", BODY))
    assert len(aws.items()) == 2
