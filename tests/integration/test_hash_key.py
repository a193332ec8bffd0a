"""The HMAC key fails closed: outside local mode, no secret name means no start."""

import boto3
import pytest

from optout.hash_key import HashKeyNotConfigured, load_hash_key
from optout.settings import LOCAL_HASH_KEY, Settings
from tests.conftest import Aws
from tests.support.http_events import http_event
from tests.support.lambdas import invoke, load_event, load_function
from tests.support.production_secrets import production_secrets


@pytest.mark.parametrize(
    ("function", "event"),
    [
        ("capture_api", load_event("consent_get.json")),
        ("admin_api", load_event("admin_lookup.json")),
    ],
)
def test_a_function_refuses_to_start_without_a_hash_key_outside_local_mode(
    aws: Aws, monkeypatch: pytest.MonkeyPatch, function: str, event: dict
) -> None:
    # Given a Lambda environment: no local-mode flag and no HASH_KEY_SECRET_NAME
    monkeypatch.delenv("OPTOUT_LOCAL_MODE")
    module = load_function(function)
    # When its first invocation builds the container's services
    # Then it raises instead of hashing with the public development key
    with pytest.raises(HashKeyNotConfigured):
        invoke(module, event)
    assert aws.items() == []


def test_local_mode_uses_the_documented_development_key() -> None:
    settings = Settings(table_name="t", optout_local_mode=True)
    assert load_hash_key(settings) == LOCAL_HASH_KEY.encode()


def test_a_configured_secret_wins_over_local_mode(aws: Aws) -> None:
    # Given a hash key in Secrets Manager, even with the local-mode flag on
    secrets = boto3.client("secretsmanager", region_name="us-east-1")
    secrets.create_secret(Name="optout-bridge/test/hash-key", SecretString="k" * 64)
    settings = Settings(
        table_name="t", hash_key_secret_name="optout-bridge/test/hash-key", optout_local_mode=True
    )
    # When the key is loaded / Then it is the secret's value
    assert load_hash_key(settings) == b"k" * 64


def test_the_capture_function_answers_with_the_secret_key_in_production_mode(
    aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    production_secrets(monkeypatch)
    event = http_event("POST", "/v1/opt-out", {"email": "a@example.com"})
    answer = invoke(load_function("capture_api"), event)
    assert answer["statusCode"] == 202
