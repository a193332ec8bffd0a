"""The identity-token secret on a warm production container (review s18 operator H1, M4).

README's rotation (write the new kid with `previous`, switch the backend, later drop
`previous`) must hold on containers started before it: the keys are read through the 300 s
secrets cache at each token, and again at once for a kid the cache lacks, at most once a minute
per container. A token secret of the wrong shape makes tokens unverifiable, never a request:
the webform takes its typed identifiers without the token (review s18 diff-a A1). Once the
container is up, a read of the secret that fails keeps the keys read before (A2).
"""

import json
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from optout import secrets as secret_store
from optout.token_keys import UNKNOWN_KID_REREAD_SECONDS
from tests.conftest import Aws
from tests.support.aws_hooks import session_hooks
from tests.support.emf import EmittedMetrics
from tests.support.http_events import http_event, json_body
from tests.support.lambdas import invoke, load_function
from tests.support.production_secrets import TOKEN_KEY, production_secrets
from tests.support.tokens import token_for

DEVICE = "dev-rotate-aaaaaaaaaaaa"
K1, K2 = "t" * 64, "n" * 64  # production_secrets writes {"kid": "k1", "key": K1}
ROTATING = {"kid": "k2", "key": K2, "previous": {"kid": "k1", "key": K1}}


@pytest.fixture
def capture(aws: Aws, monkeypatch: pytest.MonkeyPatch, clock: list[float]) -> Iterator[ModuleType]:
    production_secrets(monkeypatch)
    function = load_function("capture_api")
    function.services.cache_clear()
    secret_store._client.cache_clear()
    yield function
    secret_store._client.cache_clear()


def write_token_secret(value: Any) -> None:
    text = value if isinstance(value, str) else json.dumps(value)
    boto3.client("secretsmanager", region_name="us-east-1").put_secret_value(
        SecretId=TOKEN_KEY, SecretString=text
    )


def consent(capture: ModuleType, kid: str | None = None, key: str = K1) -> dict[str, Any]:
    body: dict[str, Any] = {"device_id": DEVICE, "opt_out": {"sale": True}}
    if kid is not None:
        body["identity_token"] = token_for(key=key, kid=kid, email="p@example.com",
                                           device_id=DEVICE)  # fmt: skip
    answer: dict[str, Any] = invoke(capture, http_event("POST", "/v1/consent", body))
    return answer


def webform(capture: ModuleType, kid: str | None = None, key: str = K1) -> dict[str, Any]:
    body: dict[str, Any] = {"email": "p@example.com"}
    if kid is not None:
        body["identity_token"] = token_for(key=key, kid=kid, email="p@example.com")
    answer: dict[str, Any] = invoke(capture, http_event("POST", "/v1/opt-out", body))
    return answer


def assert_refused_token(answer: dict[str, Any], why: str = "unknown key") -> None:
    assert answer["statusCode"] == 422, answer["body"]
    error = json_body(answer)["error"]
    assert (error["code"], error["field"]) == ("invalid_token", "identity_token")
    assert why in error["message"]


UNVERIFIABLE = "identity_token could not be verified: the token keys are unusable"


def unusable_counted(emitted: EmittedMetrics) -> float:
    return sum(v for k, v in emitted.totals().items() if k.name == "TokenKeysUnusable")


@pytest.fixture
def secret_reads() -> Iterator[list[str]]:
    """GetSecretValue calls the container makes from now on."""
    calls: list[str] = []
    with session_hooks("token-reads", secret_store._client.cache_clear) as register:
        register("before-call.secretsmanager.GetSecretValue", lambda **_: calls.append("read"))
        yield calls


def throttle(**_: Any) -> None:
    error = {"Code": "ThrottlingException", "Message": "Rate exceeded"}
    raise ClientError({"Error": error}, "GetSecretValue")  # type: ignore[arg-type]


# -- rotation (H1) --------------------------------------------------------------------------


def test_a_warm_container_takes_the_new_key_at_its_first_token(
    capture: ModuleType, clock: list[float]
) -> None:
    # Given a container warmed with k1 tokens, past the minute since its start
    assert consent(capture, "k1")["statusCode"] == 202
    clock[0] += UNKNOWN_KID_REREAD_SECONDS
    # When the operator writes k2 with k1 as previous and the backend switches to k2 at once
    write_token_secret(ROTATING)
    # Then the warm container verifies k2 (before: 422 for the container's lifetime), and
    # k1 still, during the rotation
    assert consent(capture, "k2", K2)["statusCode"] == 202
    assert consent(capture, "k1")["statusCode"] == 202


def test_dropping_previous_stops_the_old_key_once_the_cached_secret_expires(
    capture: ModuleType, clock: list[float]
) -> None:
    # Given a warm container in a rotation
    write_token_secret(ROTATING)
    assert consent(capture, "k1")["statusCode"] == 202
    # When the operator drops previous
    write_token_secret({"kid": "k2", "key": K2})
    # Then k1 verifies only until the cached secret's 5 minutes are over (before: for good)
    clock[0] += 299
    assert consent(capture, "k1")["statusCode"] == 202
    clock[0] += 2
    assert_refused_token(consent(capture, "k1"))
    assert consent(capture, "k2", K2)["statusCode"] == 202


def test_known_tokens_read_the_secret_only_when_its_cache_expires(
    capture: ModuleType, clock: list[float], secret_reads: list[str]
) -> None:
    # Given a warm container (its keys read at its start)
    assert consent(capture, "k1")["statusCode"] == 202
    secret_reads.clear()
    # When tokens of the known kid come for just under 5 minutes: no Secrets Manager call (the
    # bench's one AWS call per accepted capture holds)
    for _ in range(5):
        assert consent(capture, "k1")["statusCode"] == 202
        clock[0] += 59
    assert secret_reads == []
    # Then once the cache has expired, one read
    clock[0] += 10
    assert consent(capture, "k1")["statusCode"] == 202
    assert consent(capture, "k1")["statusCode"] == 202
    assert secret_reads == ["read"]


def test_made_up_kids_re_read_the_secret_at_most_once_a_minute(
    capture: ModuleType, clock: list[float], secret_reads: list[str]
) -> None:
    # Given a warm container, a minute after its start
    assert consent(capture, "k1")["statusCode"] == 202
    clock[0] += UNKNOWN_KID_REREAD_SECONDS
    secret_reads.clear()
    # When a stranger sends tokens naming a new made-up kid each, many a second
    for n in range(20):
        assert_refused_token(consent(capture, f"guess-{n}"))
        clock[0] += 1
    # Then the container asked Secrets Manager once for them, then once more a minute later
    assert secret_reads == ["read"]
    clock[0] += UNKNOWN_KID_REREAD_SECONDS
    assert_refused_token(consent(capture, "guess-again"))
    assert secret_reads == ["read", "read"]


def test_a_throttled_re_read_keeps_the_keys_read_before(
    capture: ModuleType, clock: list[float]
) -> None:
    # Given a warm container with k1, a minute after its start
    assert consent(capture, "k1")["statusCode"] == 202
    clock[0] += UNKNOWN_KID_REREAD_SECONDS
    with session_hooks("token-throttled", secret_store._client.cache_clear) as register:
        register("provide-client-params.secretsmanager.GetSecretValue", throttle)
        # When Secrets Manager throttles the re-read an unknown kid asks for: that token is
        # refused as unknown (422, not a 5xx); k1 tokens and token-less requests are served
        assert_refused_token(consent(capture, "k2", K2))
        assert consent(capture, "k1")["statusCode"] == 202
        assert consent(capture)["statusCode"] == 202
        # ... and the same when the cached secret's 5 minutes run out while throttled
        clock[0] += 301
        assert consent(capture, "k1")["statusCode"] == 202
        assert consent(capture)["statusCode"] == 202
    secret_store._client.cache_clear()


# -- a token secret of the wrong shape (M4) -------------------------------------------------

BAD_SHAPES = {
    "secret for key": {"kid": "k2", "secret": K2},
    "no kid": {"key": K2},
    "empty key": {"kid": "k2", "key": ""},
    "key not a string": {"kid": "k2", "key": 12345},
    "previous without key": {"kid": "k2", "key": K2, "previous": {"kid": "k1", "secret": K1}},
    "previous a string": {"kid": "k2", "key": K2, "previous": "k1"},
    "not an object": ["k2", K2],
    "not JSON": "kid=k2 key=" + K2,
}


@pytest.mark.parametrize("shape", list(BAD_SHAPES))
def test_a_token_secret_of_the_wrong_shape_refuses_tokens_only(
    aws: Aws,
    monkeypatch: pytest.MonkeyPatch,
    clock: list[float],
    caplog: pytest.LogCaptureFixture,
    shape: str,
) -> None:
    # Given a token secret mistyped by hand, then a new container
    production_secrets(monkeypatch)
    write_token_secret(BAD_SHAPES[shape])
    capture = load_function("capture_api")
    capture.services.cache_clear()
    # When token-less opt-outs, consent choices and reads come: served (before: KeyError for
    # every request, nothing stored)
    webform = invoke(capture, http_event("POST", "/v1/opt-out", {"email": "a@example.com"}))
    assert webform["statusCode"] == 202, webform["body"]
    assert consent(capture)["statusCode"] == 202
    path = f"/v1/consent/{DEVICE}"
    read = invoke(capture, http_event("GET", path, path_parameters={"device_id": DEVICE}))
    assert read["statusCode"] == 200
    # Then a banner's token, of any kid, is refused as one we cannot verify (the banner sends
    # the choice again without it), and stored nothing
    stored = len(aws.items())
    assert_refused_token(consent(capture, "k2", K2), UNVERIFIABLE)
    assert len(aws.items()) == stored
    # ... and the operator is told, without the secret's values
    (line,) = [r for r in caplog.records if r.levelname == "ERROR"]
    assert line.getMessage() == "token secret unusable: identity tokens cannot be verified"
    assert K2 not in line.reason and K1 not in line.reason  # type: ignore[attr-defined]
    # ... until the secret is fixed: the next token reads it again (a minute after the last)
    write_token_secret(ROTATING)
    clock[0] += UNKNOWN_KID_REREAD_SECONDS
    assert consent(capture, "k2", K2)["statusCode"] == 202


def test_with_the_token_secret_unusable_the_webform_takes_the_typed_email_without_the_token(
    aws: Aws, monkeypatch: pytest.MonkeyPatch, clock: list[float]
) -> None:
    # Given a token secret mistyped by hand ("secret" for "key"), then a new container
    production_secrets(monkeypatch)
    write_token_secret(BAD_SHAPES["secret for key"])
    capture = load_function("capture_api")
    capture.services.cache_clear()
    # When a logged-in person's webform (its token, their typed email) is sent, and sent again
    # as the error page said (a reload mints a new token) - before: 422 both times, nothing kept
    for _ in range(2):
        answer = webform(capture, "k1")
        # Then the opt-out is taken, the email asserted, the token left out as a stale one is
        assert answer["statusCode"] == 202, answer["body"]
        clock[0] += 1
    events = [e for e in aws.items() if e.get("event_type") == "opt_out"]
    assert len(events) == 2
    for event in events:
        assert [(i["type"], i["role"]) for i in event["identifiers"]] == [("email", "asserted")]
        assert event["links"] == []
        assert event["evidence"]["identity_token"] == {"left_out": UNVERIFIABLE}
    # ... while a form that names no one but through the token is still refused, as a stale one
    alone = {"identity_token": token_for(key=K1, kid="k1", email="p@example.com")}
    refused = invoke(capture, http_event("POST", "/v1/opt-out", alone))
    assert_refused_token(refused, UNVERIFIABLE)
    assert len([e for e in aws.items() if e.get("event_type") == "opt_out"]) == 2


def test_with_usable_keys_a_webform_token_of_an_unknown_kid_or_forged_is_still_refused(
    capture: ModuleType, aws: Aws, clock: list[float]
) -> None:
    # Given a warm container with k1, a minute after its start
    assert consent(capture, "k1")["statusCode"] == 202
    clock[0] += UNKNOWN_KID_REREAD_SECONDS
    stored = len(aws.items())
    # When webforms carry a token of a kid the secret lacks after its re-read, or a k1 token
    # signed with another key / Then each is refused as today (not left out), storing nothing
    assert_refused_token(webform(capture, "k9", K2))
    assert_refused_token(webform(capture, "k1", K2), "signature does not verify")
    assert len(aws.items()) == stored


# -- a re-read of the token secret that fails on a warm container (A2) -----------------------


def refuse_token_reads(code: str, calls: list[str] | None = None) -> Any:
    """A provide-client-params hook: GetSecretValue of the token secret fails with `code`
    (before the call is sent: `calls` gets a "read" for each, as `secret_reads` would)."""

    def hook(params: dict[str, Any], **_: Any) -> None:
        if params.get("SecretId") == TOKEN_KEY:
            if calls is not None:
                calls.append("read")
            error = {"Code": code, "Message": "refused"}
            raise ClientError({"Error": error}, "GetSecretValue")  # type: ignore[arg-type]

    return hook


@pytest.mark.parametrize(
    "failure", ["AccessDeniedException", "ResourceNotFoundException", "SecretNotText"]
)
def test_a_warm_container_whose_token_secret_read_fails_keeps_its_keys_and_pages(
    capture: ModuleType,
    clock: list[float],
    caplog: pytest.LogCaptureFixture,
    emitted_metrics: EmittedMetrics,
    secret_reads: list[str],
    failure: str,
) -> None:
    # Given a warm container with k1
    assert consent(capture, "k1")["statusCode"] == 202
    with session_hooks("token-refused", secret_store._client.cache_clear) as register:
        # When its cached secret has expired and reading it fails other than busy: a key or
        # policy change (AccessDenied), the secret deleted, or its value written as binary
        if failure == "SecretNotText":
            boto3.client("secretsmanager", region_name="us-east-1").put_secret_value(
                SecretId=TOKEN_KEY, SecretBinary=b"\x00binary"
            )
        else:
            register("provide-client-params.secretsmanager.GetSecretValue",
                     refuse_token_reads(failure, secret_reads))  # fmt: skip
        clock[0] += 301
        secret_reads.clear()
        # Then posts with a k1 token are served with the keys read before (before: a 500 for
        # each), a webform's token still verified
        assert consent(capture, "k1")["statusCode"] == 202
        answer = webform(capture, "k1")
        assert answer["statusCode"] == 202, answer["body"]
        # ... a kid it lacks is refused as unknown, a client's 422 (no re-read within the minute)
        assert_refused_token(consent(capture, "k2", K2))
        # ... the secret is read again at most once a minute
        assert secret_reads == ["read"]
        # ... and the operator is paged, with the error's code, never a value
        (line,) = [r for r in caplog.records if r.levelname == "ERROR"]
        assert line.getMessage() == "token secret unreadable: the keys read before are kept"
        assert line.error_code == failure  # type: ignore[attr-defined]
        assert K1 not in caplog.text
        assert unusable_counted(emitted_metrics) >= 1
    secret_store._client.cache_clear()
    # ... until the secret is readable again: the next read a minute later takes its keys
    write_token_secret(ROTATING)
    clock[0] += UNKNOWN_KID_REREAD_SECONDS
    assert consent(capture, "k2", K2)["statusCode"] == 202
    assert len([r for r in caplog.records if r.levelname == "ERROR"]) == 1


def test_a_warm_container_with_an_unusable_secret_whose_read_then_fails_leaves_tokens_out(
    aws: Aws, monkeypatch: pytest.MonkeyPatch, clock: list[float]
) -> None:
    # Given a container started with a mistyped token secret (no key read)
    production_secrets(monkeypatch)
    write_token_secret(BAD_SHAPES["no kid"])
    capture = load_function("capture_api")
    capture.services.cache_clear()
    secret_store._client.cache_clear()
    assert webform(capture)["statusCode"] == 202
    with session_hooks("token-denied", secret_store._client.cache_clear) as register:
        register("provide-client-params.secretsmanager.GetSecretValue",
                 refuse_token_reads("AccessDeniedException"))  # fmt: skip
        # When reading it then fails as well / Then tokens are left out of webforms, refused
        # on the banner's posts (a 422 it drops the token for), never a 5xx
        clock[0] += 301
        assert webform(capture, "k1")["statusCode"] == 202
        assert_refused_token(consent(capture, "k1"), UNVERIFIABLE)
    secret_store._client.cache_clear()


def test_a_cold_start_whose_token_secret_read_fails_still_refuses_to_serve(
    aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a new container whose token secret cannot be read (no first read to keep)
    production_secrets(monkeypatch)
    capture = load_function("capture_api")
    capture.services.cache_clear()
    with session_hooks("token-cold", secret_store._client.cache_clear) as register:
        register("provide-client-params.secretsmanager.GetSecretValue",
                 refuse_token_reads("AccessDeniedException"))  # fmt: skip
        # When a request comes / Then its start fails, as before (not served without keys)
        with pytest.raises(ClientError):
            invoke(capture, http_event("POST", "/v1/opt-out", {"email": "a@example.com"}))
    secret_store._client.cache_clear()
