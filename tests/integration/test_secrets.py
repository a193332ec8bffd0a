"""optout.secrets: the functions' keys, read from Secrets Manager at most once per max_age."""

from typing import Any

import pytest

from optout import secrets


def test_a_secret_is_its_current_string(manager: Any, clock: list[float]) -> None:
    manager.create_secret(Name="optout/t/a", SecretString="first")
    assert secrets.get_secret("optout/t/a", 300) == "first"


def test_a_rotated_secret_is_read_again_only_after_max_age(
    manager: Any, clock: list[float]
) -> None:
    # Given a secret read once
    manager.create_secret(Name="optout/t/b", SecretString="old")
    assert secrets.get_secret("optout/t/b", 300) == "old"
    # When it rotates
    manager.put_secret_value(SecretId="optout/t/b", SecretString="new")
    # Then the cached value serves until max_age has passed, then the new one
    clock[0] += 299
    assert secrets.get_secret("optout/t/b", 300) == "old"
    clock[0] += 2
    assert secrets.get_secret("optout/t/b", 300) == "new"


def test_a_binary_secret_is_refused(manager: Any, clock: list[float]) -> None:
    manager.create_secret(Name="optout/t/c", SecretBinary=b"\x00\x01")
    with pytest.raises(secrets.SecretNotText):
        secrets.get_secret("optout/t/c", 300)


def test_a_missing_secret_fails_loudly(manager: Any, clock: list[float]) -> None:
    with pytest.raises(Exception, match="ResourceNotFound"):
        secrets.get_secret("optout/t/missing", 300)
