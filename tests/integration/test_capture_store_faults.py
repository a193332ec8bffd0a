"""The capture's one PutItem refused by DynamoDB (throttled, failing, timed out) after the
client's retries (optout/aws.py): the consumer gets our 503 with Retry-After, in the error
envelope or as the webform's HTML page, and the operator a log line naming the error's class
and a count (review s17 F2: before, botocore's retries outlasted the function's timeout and
API Gateway answered its own bare 5xx, the log saying only "Task timed out")."""

import json
import time
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ClientError, ReadTimeoutError

from optout import secrets as secret_store
from tests.conftest import Aws
from tests.support.aws_hooks import lose_answer, session_hooks
from tests.support.http_events import http_event, json_body
from tests.support.lambdas import invoke, load_event, load_function
from tests.support.production_secrets import EDGE_VALUE, production_secrets

THROTTLED = (
    b'{"__type":"com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",'
    b'"message":"Rate of requests exceeds the allowed throughput."}'
)
FORM = {"content-type": "application/x-www-form-urlencoded", "accept": "text/html"}
JSON_ANSWER = '"code":"unavailable"'


class _Raw:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._body


@pytest.fixture
def capture(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.setattr(time, "sleep", lambda _: None)  # botocore's back-off between attempts
    return load_function("capture_api")


@pytest.fixture
def refuse_puts(capture: ModuleType) -> Iterator[Callable[[Callable[[Any], Any]], list[int]]]:
    """Answer every PutItem with `answer(request)` before it is sent (first in line, so moto
    never sees it); botocore's own retry policy then runs. Returns the attempts made."""
    assert boto3.DEFAULT_SESSION is not None
    events = boto3.DEFAULT_SESSION.events
    names: list[str] = []

    def install(answer: Callable[[Any], Any]) -> list[int]:
        sent: list[int] = []

        def hook(request: Any, **_: Any) -> Any:
            sent.append(1)
            request.url = "https://refused.invalid/"  # moto's stubber, after us, passes it by
            return answer(request)

        name = f"capture-faults-{len(names)}"
        events.register_first("before-send.dynamodb.PutItem", hook, unique_id=name)
        names.append(name)
        capture.services.cache_clear()  # the next request builds its client with the hook
        return sent

    yield install
    for name in names:
        events.unregister("before-send.dynamodb.PutItem", unique_id=name)


def throttled(request: Any) -> AWSResponse:
    return AWSResponse(request.url, 400, {"x-amzn-requestid": "r"}, _Raw(THROTTLED))


def timed_out(request: Any) -> AWSResponse:
    raise ReadTimeoutError(endpoint_url=request.url)


def _events(aws: Aws) -> list[dict[str, Any]]:
    return [i for i in aws.items() if i["sk"] == "EVENT"]


@pytest.mark.parametrize("answer", [throttled, timed_out], ids=["throttled", "timed_out"])
def test_a_refused_store_answers_503_in_the_envelope_with_retry_after(
    capture: ModuleType,
    aws: Aws,
    refuse_puts: Callable[[Callable[[Any], Any]], list[int]],
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    answer: Callable[[Any], Any],
) -> None:
    sent = refuse_puts(answer)
    event = http_event(
        "POST", "/v1/opt-out", {"email": "busy@example.com"}, headers={"Idempotency-Key": "k-1"}
    )
    got = invoke(capture, event)
    assert got["statusCode"] == 503
    assert got["headers"]["Retry-After"] == "1"
    assert got["headers"]["Content-Type"] == "application/json"
    assert json_body(got) == {"error": {
        "code": "unavailable", "field": None,
        "message": "the request could not be recorded just now: send it again",
    }}  # fmt: skip
    assert len(sent) == 3  # the client's budget (optout/aws.py), then the answer
    assert _events(aws) == []
    (line,) = [r for r in caplog.records if r.getMessage() == "event store unavailable"]
    assert line.levelname == "WARNING"
    if answer is throttled:  # botocore's class for the code
        assert line.error_class == line.error_code == "ProvisionedThroughputExceededException"
    else:
        assert line.error_class == "ReadTimeoutError"
    out = capsys.readouterr().out.replace(" ", "")
    assert '"CaptureUnavailable":[1.0]' in out  # an input of CaptureErrorsAlarm
    assert '"OptOutCaptured"' not in out
    assert "busy@example.com" not in out + json.dumps(
        [vars(r) for r in caplog.records], default=str
    )


def test_a_refused_store_answers_a_plain_form_post_with_the_error_page(
    capture: ModuleType, refuse_puts: Callable[[Callable[[Any], Any]], list[int]]
) -> None:
    refuse_puts(throttled)
    event = http_event("POST", "/v1/opt-out", raw_body="email=form%40example.com", headers=FORM)
    got = invoke(capture, event)
    assert got["statusCode"] == 503
    assert got["headers"]["Retry-After"] == "1"
    assert got["headers"]["Content-Type"].startswith("text/html")
    assert "Content-Security-Policy" in got["headers"]
    assert "send it again" in got["body"]
    # The form named someone: the advice is to send it again, not to give an identifier
    assert "Give at least one of" not in got["body"]
    assert "send the form again" in got["body"]


def test_the_same_request_after_the_store_recovers_is_captured_once(
    capture: ModuleType, aws: Aws, refuse_puts: Callable[[Callable[[Any], Any]], list[int]]
) -> None:
    left = [3]

    def throttled_three_times(request: Any) -> Any:
        if left[0]:
            left[0] -= 1
            return throttled(request)
        return None  # not answered here: it reaches moto (the URL is moto's again below)

    sent = refuse_puts(throttled_three_times)
    event = http_event(
        "POST", "/v1/opt-out", {"email": "again@example.com"}, headers={"Idempotency-Key": "k-2"}
    )
    assert invoke(capture, event)["statusCode"] == 503
    assert _events(aws) == []
    for name in ("capture-faults-0",):
        assert boto3.DEFAULT_SESSION is not None
        boto3.DEFAULT_SESSION.events.unregister("before-send.dynamodb.PutItem", unique_id=name)
    capture.services.cache_clear()
    assert invoke(capture, event)["statusCode"] == 202
    assert len(_events(aws)) == 1 and len(sent) == 3


def test_a_fault_of_ours_still_raises(
    capture: ModuleType, refuse_puts: Callable[[Callable[[Any], Any]], list[int]]
) -> None:
    # A refusal that sending again cannot mend (here: a validation error) is not a 503: it is
    # a crash, with its class and place in the log, for CaptureErrorsAlarm.
    body = b'{"__type":"com.amazon.coral.validate#ValidationException","message":"bad"}'
    refuse_puts(lambda request: AWSResponse(request.url, 400, {}, _Raw(body)))
    event = http_event("POST", "/v1/opt-out", {"email": "ours@example.com"})
    with pytest.raises(Exception, match="ValidationException"):
        invoke(capture, event)


def test_the_openapi_document_names_the_writes_503_and_its_retry_after(
    capture: ModuleType,
) -> None:
    answer = invoke(capture, load_event("openapi_get.json"))
    paths = json.loads(answer["body"])["paths"]
    for path in ("/v1/opt-out", "/v1/consent"):
        busy = paths[path]["post"]["responses"]["503"]
        assert "Retry-After" in busy["headers"]
        assert busy["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorOut")
    assert "text/html" in paths["/v1/opt-out"]["post"]["responses"]["503"]["content"]
    for path in ("/v1/requests/{request_id}", "/v1/consent/{device_id}"):  # reads too
        assert "Retry-After" in paths[path]["get"]["responses"]["503"]["headers"]


def test_a_capture_whose_answer_was_lost_counts_as_captured_not_replayed(
    capture: ModuleType,
    aws: Aws,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Given the event's write committing and its answer lost: botocore sends it again, and the
    # retry's condition finds the item this very call wrote (review s17 F7)
    handler, lost = lose_answer(lambda body: '"EVENT"' in body)
    event = http_event(
        "POST", "/v1/opt-out", {"email": "lost@example.com"}, headers={"Idempotency-Key": "k-3"}
    )
    with session_hooks("capture-lost", capture.services.cache_clear) as register:
        register("needs-retry.dynamodb.PutItem", handler)
        got = invoke(capture, event)
    assert lost == [1] and got["statusCode"] == 202 and len(_events(aws)) == 1
    # Then it is counted and logged as a capture (CaptureSurgeAlarm's input), not a replay
    out = capsys.readouterr().out.replace(" ", "")
    assert '"OptOutCaptured":[1.0]' in out and '"IdempotentReplay"' not in out
    assert "captured" in caplog.messages and "replayed" not in caplog.messages
    # And the same request sent again later is still a replay
    capture.services.cache_clear()
    assert invoke(capture, event)["statusCode"] == 202
    assert '"IdempotentReplay":[1.0]' in capsys.readouterr().out.replace(" ", "")


# -- the reads, and the secrets a cold start reads (the same 503, not API Gateway's 5xx) ------


@pytest.fixture
def refuse(capture: ModuleType) -> Iterator[Callable[[str, str], None]]:
    """`refuse(service, operation)`: every such call throttled past the client's retries."""

    def throttle(**_: Any) -> None:
        error = {"Code": "ThrottlingException", "Message": "Rate exceeded"}
        raise ClientError({"Error": error}, "Call")  # type: ignore[arg-type]

    with session_hooks("capture-reads", capture.services.cache_clear) as register:
        yield lambda service, operation: register(
            f"provide-client-params.{service}.{operation}", throttle
        )


def _assert_busy(answer: dict[str, Any]) -> None:
    assert answer["statusCode"] == 503, answer["body"]
    assert answer["headers"]["Retry-After"] == "1"
    assert json_body(answer)["error"]["code"] == "unavailable"


def test_a_throttled_state_read_answers_503(
    capture: ModuleType, refuse: Callable[[str, str], None], caplog: pytest.LogCaptureFixture
) -> None:
    refuse("dynamodb", "GetItem")
    _assert_busy(invoke(capture, load_event("consent_get.json")))
    (line,) = [r for r in caplog.records if r.getMessage() == "state store unavailable"]
    assert line.error_code == "ThrottlingException"


def test_a_throttled_status_read_answers_503_json_or_page(
    capture: ModuleType, refuse: Callable[[str, str], None]
) -> None:
    refuse("dynamodb", "Query")
    unknown = "00000000-0000-4000-8000-000000000000"
    path = f"/v1/requests/{unknown}"
    _assert_busy(invoke(capture, http_event("GET", path, path_parameters={"request_id": unknown})))
    page = invoke(capture, http_event("GET", path, path_parameters={"request_id": unknown},
                                      headers={"accept": "text/html"}))  # fmt: skip
    assert page["statusCode"] == 503
    assert page["headers"]["Content-Type"].startswith("text/html")
    # a busy service, not a wrong link (review s17 diff-api L6)
    assert "Try again in a moment" in page["body"] and "Check the link" not in page["body"]


COLD_START_REQUESTS = {
    "json": (http_event("POST", "/v1/opt-out", {"email": "cold@example.com"}), JSON_ANSWER),
    "form": (
        http_event("POST", "/v1/opt-out", raw_body="email=cold%40example.com", headers=FORM),
        "We could not send your request",
    ),
    "status link": (
        http_event("GET", "/v1/requests/00000000-0000-4000-8000-000000000000",
                   path_parameters={"request_id": "00000000-0000-4000-8000-000000000000"},
                   headers={"accept": "text/html"}),
        "could not show this request",
    ),
}  # fmt: skip


@pytest.mark.parametrize("kind", list(COLD_START_REQUESTS))
def test_a_cold_start_whose_secret_read_is_throttled_answers_503_then_serves(
    aws: Aws, capture: ModuleType, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    # Given a production container, Secrets Manager throttled at its first request
    production_secrets(monkeypatch)
    event, shows = COLD_START_REQUESTS[kind]

    def fresh_clients() -> None:  # the next request builds its clients, with the hooks of now
        capture.services.cache_clear()
        secret_store._client.cache_clear()

    with session_hooks("capture-secrets", fresh_clients) as register:
        register("provide-client-params.secretsmanager.GetSecretValue", _throttle)
        # When the first request builds the container: our 503 (a person's browser gets the
        # page of what it asked for: the form's, or the status link's), nothing stored
        got = invoke(capture, event)
    assert (got["statusCode"], got["headers"].get("Retry-After")) == (503, "1"), got["body"]
    assert shows in got["body"]
    fresh_clients()
    assert _events(aws) == []
    # Then the next request, Secrets Manager answering again, is served
    assert invoke(capture, event)["statusCode"] in (200, 202, 404)


def test_the_edges_secret_unreadable_at_a_cold_start_answers_503(
    aws: Aws, capture: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Review s17 diff-api M2: the edge's secret was read outside the 503's catch
    production_secrets(monkeypatch, edge=True)
    event = http_event("POST", "/v1/opt-out", {"email": "edge@example.com"},
                       headers={"x-origin-verify": EDGE_VALUE})  # fmt: skip
    with session_hooks("capture-edge", capture.services.cache_clear) as register:
        register("provide-client-params.secretsmanager.GetSecretValue", _throttle)
        secret_store._client.cache_clear()
        _assert_busy(invoke(capture, event))
    secret_store._client.cache_clear()


def test_a_warm_container_keeps_serving_when_a_secrets_re_read_is_throttled(
    aws: Aws, capture: ModuleType, monkeypatch: pytest.MonkeyPatch, clock: list[float]
) -> None:
    # Given a warm container with the edge on, its secrets read and cached
    production_secrets(monkeypatch, edge=True)
    event = http_event("POST", "/v1/opt-out", {"email": "warm@example.com"},
                       headers={"x-origin-verify": EDGE_VALUE})  # fmt: skip
    capture.services.cache_clear()
    secret_store._client.cache_clear()
    assert invoke(capture, event)["statusCode"] == 202
    # When the edge secret's 5 minutes have passed and Secrets Manager throttles its re-read
    clock[0] += 301
    with session_hooks("capture-edge-warm") as register:
        register("provide-client-params.secretsmanager.GetSecretValue", _throttle)
        secret_store._client.cache_clear()
        got = invoke(capture, event)
    secret_store._client.cache_clear()
    # Then the value read before still admits the edge's requests (before: a bare 5xx from
    # every warm container once every 5 minutes), and a wrong one is still refused
    assert got["statusCode"] == 202, got["body"]
    wrong = http_event("POST", "/v1/opt-out", {"email": "warm@example.com"},
                       headers={"x-origin-verify": "guess"})  # fmt: skip
    assert invoke(capture, wrong)["statusCode"] == 403


def test_a_write_that_committed_before_the_table_got_busy_is_answered_as_captured(
    aws: Aws, capture: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given the event's write committing, its answer lost, and the retries throttled (review
    # s17 diff-api L-M3: answered 503 "could not be recorded" while stored; a form sent again
    # without an Idempotency-Key became a second request)
    assert boto3.DEFAULT_SESSION is not None
    events = boto3.DEFAULT_SESSION.events
    sent: list[int] = []

    def first_commits_then_throttled(request: Any, **_: Any) -> Any:
        sent.append(1)
        if len(sent) == 1:
            return None  # reaches the table (moto) and commits
        request.url = "https://refused.invalid/"
        return throttled(request)

    handler, lost = lose_answer(lambda body: '"EVENT"' in body)
    events.register_first("before-send.dynamodb.PutItem", first_commits_then_throttled,
                          unique_id="commit-then-busy")  # fmt: skip
    try:
        with session_hooks("commit-then-busy", capture.services.cache_clear) as register:
            register("needs-retry.dynamodb.PutItem", handler)
            got = invoke(capture, http_event("POST", "/v1/opt-out", {"email": "c@example.com"}))
    finally:
        events.unregister("before-send.dynamodb.PutItem", unique_id="commit-then-busy")
    # Then one consistent read finds this call's item: a capture, answered 202 and counted
    assert lost == [1] and len(sent) == 3
    assert got["statusCode"] == 202, got["body"]
    (stored,) = _events(aws)
    assert json_body(got)["request_id"] == stored["request_id"]
    assert '"OptOutCaptured":[1.0]' in capsys.readouterr().out.replace(" ", "")


def _throttle(**_: Any) -> None:
    error = {"Code": "ThrottlingException", "Message": "Rate exceeded"}
    raise ClientError({"Error": error}, "GetSecretValue")  # type: ignore[arg-type]


def test_a_busy_table_answers_the_backends_identity_links_503_too(
    aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The IAM route's write is the same capture write: the same 503, in its OpenAPI too
    monkeypatch.setattr(time, "sleep", lambda _: None)
    admin = load_function("admin_api")
    body = {"links": [{"a": {"type": "device_id", "value": "dev-links-aaaaaaaaaaaa"},
                       "b": {"type": "customer_id", "value": "C-1"}}]}  # fmt: skip

    def throttle(**_: Any) -> None:
        raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "x"}}, "PutItem")  # type: ignore[arg-type]

    with session_hooks("admin-links", admin.services.cache_clear) as register:
        register("provide-client-params.dynamodb.PutItem", throttle)
        got = invoke(admin, http_event("POST", "/v1/identity-links", body, iam=True))
    _assert_busy(got)
    admin.services.cache_clear()
    document = json.loads(
        invoke(admin, http_event("GET", "/v1/admin/openapi.json", iam=True))["body"]
    )
    assert (
        "Retry-After"
        in document["paths"]["/v1/identity-links"]["post"]["responses"]["503"]["headers"]
    )
