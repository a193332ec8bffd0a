"""optout.connectors.credentials: a system's secret object, from Secrets Manager (moto here),
a local file or the environment; cached, re-read at once when asked (after a 401), and every
failure a ConfigError that never shows the secret."""

import json
import traceback
from pathlib import Path
from typing import Any

import boto3
import pytest

from optout import secrets
from optout.connectors.credentials import SecretSource, SecretUnavailable, env_name
from optout.connectors.errors import ConfigError

NAME = "optout-bridge/systems/braze"


@pytest.fixture
def reads(manager: Any) -> list[str]:
    """GetSecretValue calls made by clients created after this fixture."""
    calls: list[str] = []
    assert boto3.DEFAULT_SESSION is not None  # moto's mock (the aws fixture) set it up afresh
    boto3.DEFAULT_SESSION.events.register(
        "before-call.secrets-manager.GetSecretValue",
        lambda **_: calls.append("GetSecretValue"),
        unique_id="count-secret-reads",
    )
    secrets._client.cache_clear()  # a client of this account's session
    return calls


def test_a_secret_is_its_json_object(manager: Any, clock: list[float]) -> None:
    manager.create_secret(Name=NAME, SecretString=json.dumps({"api_key": "k1"}))
    assert SecretSource().get(NAME) == {"api_key": "k1"}


def test_no_credentials_is_an_empty_object_without_a_read(
    reads: list[str], clock: list[float]
) -> None:
    assert SecretSource().get(None) == {}
    assert reads == []


@pytest.fixture
def rotated(manager: Any, reads: list[str], clock: list[float]) -> SecretSource:
    """A source that has read and cached the secret ("old"), which has since rotated ("new");
    `reads` counts that first read."""
    manager.create_secret(Name=NAME, SecretString=json.dumps({"api_key": "old"}))
    source = SecretSource()
    source.get(NAME)
    manager.put_secret_value(SecretId=NAME, SecretString=json.dumps({"api_key": "new"}))
    return source


def test_a_second_use_within_the_cache_time_reads_nothing(
    reads: list[str], clock: list[float], rotated: SecretSource
) -> None:
    # Given a secret read once, then rotated
    source = rotated
    # When it is used again before the cache expires
    clock[0] += 299
    # Then the cached copy answers, without a call
    assert source.get(NAME) == {"api_key": "old"}
    assert reads == ["GetSecretValue"]


def test_a_forced_re_read_picks_up_a_rotation_at_once(
    reads: list[str], rotated: SecretSource
) -> None:
    # Given a cached secret that has since rotated (a vendor refused the old key)
    source = rotated
    # When the connector asks again with refresh
    fresh = source.reader(NAME)(refresh=True)
    # Then Secrets Manager was read again, and the new copy is what the cache now holds
    assert fresh == {"api_key": "new"}
    assert source.get(NAME) == {"api_key": "new"}
    assert reads == ["GetSecretValue", "GetSecretValue"]


def test_the_cache_expires_after_its_time(clock: list[float], rotated: SecretSource) -> None:
    source = rotated
    clock[0] += 301
    assert source.get(NAME) == {"api_key": "new"}


def test_a_missing_secret_is_a_config_error_naming_it(manager: Any, clock: list[float]) -> None:
    with pytest.raises(SecretUnavailable, match="ResourceNotFoundException") as raised:
        SecretSource().get(NAME)
    assert isinstance(raised.value, ConfigError)  # the delivery service retries the jobs
    assert NAME in str(raised.value)


@pytest.mark.parametrize(
    "stored",
    ["api_key=hunter2-secret", json.dumps(["hunter2-secret"]), json.dumps("hunter2-secret")],
)
def test_a_secret_that_is_not_a_json_object_is_refused_without_its_value(
    manager: Any, clock: list[float], stored: str
) -> None:
    manager.create_secret(Name=NAME, SecretString=stored)
    with pytest.raises(SecretUnavailable) as raised:
        SecretSource().get(NAME)
    # Not in the message, nor in a chained exception a traceback would print
    assert "hunter2" not in "".join(traceback.format_exception(raised.value))


def test_a_binary_secret_is_refused(manager: Any, clock: list[float]) -> None:
    manager.create_secret(Name=NAME, SecretBinary=b"\x00\x01")
    with pytest.raises(SecretUnavailable, match="SecretNotText"):
        SecretSource().get(NAME)


# -- the local file and the environment ------------------------------------------------------


def test_the_local_file_is_cached_and_re_read_when_forced(
    tmp_path: Path, clock: list[float]
) -> None:
    # Given a file read once, then rewritten (a rotation)
    path = tmp_path / "secrets.json"
    path.write_text(json.dumps({NAME: {"api_key": "old"}}))
    source = SecretSource(str(path))
    source.get(NAME)
    path.write_text(json.dumps({NAME: {"api_key": "new"}}))
    # Then the cached copy answers until a forced read
    assert source.get(NAME) == {"api_key": "old"}
    assert source.get(NAME, refresh=True) == {"api_key": "new"}


def test_a_name_missing_from_the_local_file_is_an_error_not_a_read_of_aws(
    tmp_path: Path, reads: list[str], clock: list[float]
) -> None:
    path = tmp_path / "secrets.json"
    path.write_text(json.dumps({"other": {"api_key": "k"}}))
    with pytest.raises(ConfigError, match="no entry"):
        SecretSource(str(path)).get(NAME)
    assert reads == []


def test_an_unreadable_local_file_is_an_error_without_its_content(
    tmp_path: Path, clock: list[float]
) -> None:
    path = tmp_path / "secrets.json"
    path.write_text('{"hunter2-secret": ')
    with pytest.raises(ConfigError, match="unreadable") as raised:
        SecretSource(str(path)).get(NAME)
    assert "hunter2" not in str(raised.value)


def test_a_secret_in_the_environment_comes_before_secrets_manager(
    monkeypatch: pytest.MonkeyPatch, reads: list[str], clock: list[float]
) -> None:
    monkeypatch.setenv(env_name(NAME), json.dumps({"api_key": "from-env"}))
    assert env_name(NAME) == "OPTOUT_SECRET_OPTOUT_BRIDGE_SYSTEMS_BRAZE"
    assert SecretSource().get(NAME) == {"api_key": "from-env"}
    assert reads == []
