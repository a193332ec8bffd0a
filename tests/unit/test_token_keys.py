"""The token keyring without AWS: which key a kid gets as the secret changes and fails, when
the secret is read again, and what the operator is told (README "Rotation"; the integration
tests in tests/integration/test_token_keys.py drive the same through the capture function)."""

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest
from botocore.exceptions import ClientError

from optout import token_keys
from optout.errors import Unavailable
from optout.identity_token import TokenKeys, TokenUnverifiable, TokenVerifier
from optout.secrets import SecretNotText
from optout.settings import Settings
from optout.token_keys import (
    MissingTokenKey,
    TokenKeyring,
    load_token_keys,
    read_token_keys,
    token_key_source,
)
from tests.support.tokens import token_for

NAME = "optout-bridge/test/identity-token-key"
K1, K2 = "o" * 40, "n" * 40
FIRST = {"kid": "k1", "key": K1}
ROTATING = {"kid": "k2", "key": K2, "previous": {"kid": "k1", "key": K1}}


def aws_error(code: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": "no"}}, "GetSecretValue")  # type: ignore[arg-type]


@dataclass
class Secret:
    """Secrets Manager (`value`, `error`) behind the secrets cache, as `get_secret` reads it:
    the text read before until `max_age` passes, read now when `refresh`."""

    clock: list[float]
    value: Any = field(default_factory=lambda: dict(FIRST))
    error: Exception | None = None
    reads: list[tuple[str, int, bool]] = field(default_factory=list)
    cached: tuple[float, str] | None = None  # expiry, text

    def __call__(self, name: str, max_age: int, *, refresh: bool = False) -> str:
        self.reads.append((name, max_age, refresh))
        now = self.clock[0]
        if self.cached is not None and now < self.cached[0] and not refresh:
            return self.cached[1]
        if self.error is not None:
            raise self.error
        text = self.value if isinstance(self.value, str) else json.dumps(self.value)
        self.cached = (now + max_age, text)
        return text


@dataclass
class Told:
    """What the operator sees: log lines (level, message, extra) and metrics."""

    logs: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    metrics: list[str] = field(default_factory=list)

    def warning(self, message: str, extra: dict[str, Any]) -> None:
        self.logs.append(("warning", message, extra))

    def error(self, message: str, extra: dict[str, Any]) -> None:
        self.logs.append(("error", message, extra))

    def add_metric(self, name: str, unit: str, value: float) -> None:
        assert (unit, value) == ("Count", 1)
        self.metrics.append(name)


@dataclass
class World:
    secret: Secret
    told: Told
    clock: list[float]

    def later(self, seconds: float) -> None:
        self.clock[0] += seconds


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    clock = [1000.0]
    w = World(Secret(clock), Told(), clock)
    monkeypatch.setattr(token_keys, "get_secret", w.secret)
    monkeypatch.setattr(token_keys, "time", SimpleNamespace(monotonic=lambda: w.clock[0]))
    monkeypatch.setattr(token_keys, "logger", w.told)
    monkeypatch.setattr(token_keys, "metrics", w.told)
    yield w


def warm(world: World) -> TokenKeyring:
    keyring = TokenKeyring(NAME)
    keyring.current()
    world.secret.reads.clear()
    return keyring


def test_a_cold_start_reads_the_secret_through_the_five_minute_cache(world: World) -> None:
    keyring = token_key_source(Settings(table_name="t", identity_token_secret_name=NAME))
    assert world.secret.reads == [(NAME, 300, False)]
    assert keyring.keys.get("k1") == K1.encode()
    token = token_for(email="a@example.com", kid="k1", key=K1)
    identity = TokenVerifier(keyring, "optout-bridge", 600).verify(token, datetime.now(UTC))
    assert identity.kid == "k1"


def test_a_cold_start_with_the_secret_store_busy_is_a_503_and_refused_is_fatal(
    world: World,
) -> None:
    settings = Settings(table_name="t", identity_token_secret_name=NAME)
    world.secret.error = aws_error("ThrottlingException")
    with pytest.raises(Unavailable):
        token_key_source(settings)
    world.secret.error = aws_error("AccessDeniedException")
    with pytest.raises(ClientError):
        token_key_source(settings)


def test_without_a_secret_name_minting_and_verifying_use_the_development_key_locally_only(
    world: World,
) -> None:
    local = Settings(table_name="t", optout_local_mode=True)
    assert token_key_source(local).keys == {"local-dev": token_keys.LOCAL_TOKEN_KEY.encode()}
    with pytest.raises(MissingTokenKey):
        token_key_source(Settings(table_name="t"))
    assert world.secret.reads == []


def test_with_a_secret_name_minting_uses_the_secret_even_in_local_mode(world: World) -> None:
    settings = Settings(table_name="t", optout_local_mode=True, identity_token_secret_name=NAME)
    assert load_token_keys(settings) == TokenKeys("k1", {"k1": K1.encode()})
    assert world.secret.reads == [(NAME, 300, False)]


def test_each_lookup_sees_the_secret_as_the_cache_now_holds_it(world: World) -> None:
    keyring = warm(world)
    world.secret.value = {"kid": "k2", "key": K2}  # rotated, previous dropped
    world.later(300)  # the cached value expired
    assert keyring.keys.get("k2") == K2.encode()
    assert keyring.keys.get("k1") is None  # previous dropped: k1 no longer verifies
    assert (NAME, 300, False) in world.secret.reads


def test_a_kid_the_secret_lacks_reads_it_again_at_once_then_at_most_once_a_minute(
    world: World,
) -> None:
    keyring = warm(world)
    assert keyring.keys.get("k9") is None
    assert world.secret.reads[-1] == (NAME, 300, True)
    forced = lambda: sum(refresh for _, _, refresh in world.secret.reads)  # noqa: E731
    world.later(59.9)
    assert keyring.keys.get("k9") is None and forced() == 1
    assert keyring.keys.get("k1") == K1.encode() and forced() == 1  # a known kid: no re-read
    world.later(0.1)
    world.secret.value = ROTATING  # the new kid, written within the minute
    assert keyring.keys.get("k2") == K2.encode() and forced() == 2
    assert keyring.keys.get("k1") == K1.encode()


def test_the_keys_by_kid_are_the_current_secrets(world: World) -> None:
    world.secret.value = ROTATING
    keys = warm(world).keys
    assert (sorted(keys), len(keys)) == (["k1", "k2"], 2)
    with pytest.raises(KeyError):
        keys["k9"]


@pytest.mark.parametrize("value", ["not json", {"kid": "k1", "secret": K1}])
def test_a_secret_of_the_wrong_shape_makes_every_token_unverifiable_logged_once_counted_each(
    world: World, value: object
) -> None:
    world.secret.value = value
    keyring = warm(world)
    for _ in range(2):
        with pytest.raises(TokenUnverifiable):
            keyring.keys.get("k1")
    errors = [(m, x["secret_name"]) for level, m, x in world.told.logs if level == "error"]
    assert errors == [("token secret unusable: identity tokens cannot be verified", NAME)]
    assert K1 not in json.dumps(world.told.logs)
    assert world.told.metrics == ["TokenKeysUnusable"] * 3  # the read, then each token
    # ... until the operator writes a usable value
    world.secret.value = FIRST
    world.later(60)
    assert keyring.keys.get("k1") == K1.encode()


def test_a_busy_re_read_keeps_the_keys_read_before_and_pages_no_one(world: World) -> None:
    keyring = warm(world)
    world.secret.error = aws_error("ThrottlingException")
    world.later(300)
    assert keyring.keys.get("k1") == K1.encode()
    assert keyring.keys.get("k9") is None  # the lookup's read and the forced one throttled
    assert world.told.metrics == []
    assert [(lvl, x) for lvl, _, x in world.told.logs] == [
        ("warning", {"error_code": "ThrottlingException"})
    ] * 3
    # a busy read is tried again at the next lookup, not a minute later
    world.secret.error = None
    world.secret.value = ROTATING
    assert keyring.keys.get("k2") == K2.encode()


@pytest.mark.parametrize(
    "error", [aws_error("AccessDeniedException"), SecretNotText("binary")], ids=["denied", "binary"]
)
def test_a_refused_re_read_keeps_the_keys_pages_and_waits_a_minute(
    world: World, error: Exception
) -> None:
    keyring = warm(world)
    world.secret.error = error
    world.later(300)
    assert keyring.keys.get("k1") == K1.encode()
    ((level, message, extra),) = world.told.logs
    assert (level, extra["secret_name"]) == ("error", NAME)
    assert message == "token secret unreadable: the keys read before are kept"
    assert extra["error_code"] in ("AccessDeniedException", "SecretNotText")
    assert world.told.metrics == ["TokenKeysUnusable"]
    reads = len(world.secret.reads)
    world.later(59)
    assert keyring.keys.get("k9") is None and keyring.keys.get("k1") == K1.encode()
    assert len(world.secret.reads) == reads  # no read at all within the minute
    world.later(1)
    world.secret.error = None
    world.secret.value = ROTATING
    # the minute is over: the lookup reads the secret, and an unknown kid forces a read
    assert keyring.keys.get("k9") is None
    assert world.secret.reads[reads:] == [(NAME, 300, False), (NAME, 300, True)]
    assert keyring.keys.get("k2") == K2.encode()


def test_the_secret_text_is_parsed_once_per_value(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    parsed: list[str] = []
    monkeypatch.setattr(
        token_keys, "read_token_keys", lambda raw: parsed.append(raw) or read_token_keys(raw)
    )
    keyring = warm(world)
    for _ in range(3):
        assert keyring.keys.get("k1") == K1.encode()
    assert len(parsed) == 1
