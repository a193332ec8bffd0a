"""The identity-token secret on a warm production container (review s18 operator H1, M4).

README's rotation (write the new kid with `previous`, switch the backend, later drop
`previous`) must hold on containers started before it: the keys are read through the 300 s
secrets cache at each token, and again at once for a kid the cache lacks, at most once a minute
per container. A token secret of the wrong shape refuses tokens only, loudly.
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
        body["identity_token"] = token_for(key=key, kid=kid, email="p@example.com")
    answer: dict[str, Any] = invoke(capture, http_event("POST", "/v1/consent", body))
    return answer


def assert_refused_token(answer: dict[str, Any]) -> None:
    assert answer["statusCode"] == 422, answer["body"]
    error = json_body(answer)["error"]
    assert (error["code"], error["field"]) == ("invalid_token", "identity_token")
    assert "unknown key" in error["message"]


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
    # Then a token, of any kid, is refused as one of an unknown key, and stored nothing
    stored = len(aws.items())
    assert_refused_token(consent(capture, "k2", K2))
    assert len(aws.items()) == stored
    # ... and the operator is told, without the secret's values
    (line,) = [r for r in caplog.records if r.levelname == "ERROR"]
    assert line.getMessage() == "token secret unusable: identity tokens are refused"
    assert K2 not in line.reason and K1 not in line.reason  # type: ignore[attr-defined]
    # ... until the secret is fixed: the next token reads it again (a minute after the last)
    write_token_secret(ROTATING)
    clock[0] += UNKNOWN_KID_REREAD_SECONDS
    assert consent(capture, "k2", K2)["statusCode"] == 202
