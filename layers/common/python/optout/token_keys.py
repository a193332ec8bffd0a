"""The identity-token keys: from Secrets Manager in production (optout/secrets.py).

The secret is JSON: `{"kid": "k2", "key": "...", "previous": {"kid": "k1", "key": "..."}}`
(`previous` only during a rotation). The template generates the first one. Without a secret
name the documented development key applies, and only in local mode: a deployed capture
function with no key refuses to start rather than accept tokens anyone could sign.

A warm container verifies with the secret as it is now (`TokenKeyring`), not as it was at its
cold start: a rotation's new kid is read at its first token, and a dropped `previous` stops
verifying once the cached secret expires (README "Rotation"). A secret of the wrong shape
makes tokens unverifiable, never a request: the webform takes its typed identifiers without
the token, the banner sends its choice again without it (TokenKeysUnusableAlarm). Once a
container has read the secret, a read that fails (access denied, the secret deleted) keeps
the keys read before, with the same alarm: only a cold start fails for the secret.
"""

import json
import time
from collections.abc import Iterator, Mapping
from typing import Any

from optout.identity_token import KeySource, TokenKeys, TokenUnverifiable
from optout.observability import logger, metrics
from optout.secrets import SecretNotText, get_secret
from optout.settings import LOCAL_TOKEN_KEY, LOCAL_TOKEN_KID, Settings
from optout.store.busy import AWS_ERRORS, NOT_SERVED, answered_as_unavailable, busy, error_code

SECRET_CACHE_SECONDS = 300
# A kid the cached secret lacks makes one container read the secret again at most this often:
# a rotation is seen at its first token, and strangers sending made-up kids cost at most one
# Secrets Manager call a minute per container. A read that failed other than busy (access
# denied, the secret deleted) is tried again no sooner either.
UNKNOWN_KID_REREAD_SECONDS = 60
UNUSABLE = TokenKeys("", {})  # a secret of the wrong shape: every token is TokenUnverifiable


class MissingTokenKey(RuntimeError):
    """No IDENTITY_TOKEN_SECRET_NAME outside local mode: fail closed."""


class TokenSecretUnusable(ValueError):
    """The token secret is not `{"kid", "key"[, "previous": {"kid", "key"}]}`. The message names
    what is wrong, never a value from the secret."""


def load_token_keys(settings: Settings) -> TokenKeys:
    """The keys now, for minting (the local demo login); raises TokenSecretUnusable."""
    if settings.identity_token_secret_name:
        return read_token_keys(
            get_secret(settings.identity_token_secret_name, SECRET_CACHE_SECONDS)
        )
    return _development_keys(settings)


def token_key_source(settings: Settings) -> KeySource:
    """What capture verifies with: the secret, read now (a cold start's 503 when Secrets Manager
    is busy, as for the hash key) and again as it changes; the development key locally."""
    if settings.identity_token_secret_name:
        keyring = TokenKeyring(settings.identity_token_secret_name)
        keyring.current()
        return keyring
    return _development_keys(settings)


def _development_keys(settings: Settings) -> TokenKeys:
    if not settings.optout_local_mode:
        raise MissingTokenKey("IDENTITY_TOKEN_SECRET_NAME is not set: refusing to start")
    return TokenKeys(LOCAL_TOKEN_KID, {LOCAL_TOKEN_KID: LOCAL_TOKEN_KEY.encode()})


def read_token_keys(raw: str) -> TokenKeys:
    try:
        secret = json.loads(raw)
    except ValueError:
        raise TokenSecretUnusable("the token secret is not JSON") from None
    return parse_token_keys(secret)


def parse_token_keys(secret: Any) -> TokenKeys:
    if not isinstance(secret, dict):
        raise TokenSecretUnusable("the token secret is not a JSON object")
    kid, key = _kid_and_key(secret, "the token secret")
    keys = {kid: key}
    previous = secret.get("previous")
    if previous is not None:
        if not isinstance(previous, dict):
            raise TokenSecretUnusable("the token secret's previous is not a JSON object")
        old_kid, old_key = _kid_and_key(previous, "the token secret's previous")
        keys.setdefault(old_kid, old_key)
    return TokenKeys(kid, keys)


def _kid_and_key(part: dict[str, Any], where: str) -> tuple[str, bytes]:
    for name in ("kid", "key"):
        value = part.get(name)
        if not isinstance(value, str) or not value.strip():
            raise TokenSecretUnusable(f"{where} has no {name} (a non-empty string)")
    return part["kid"], part["key"].encode()


class TokenKeyring:
    """The token keys as the secret holds them: read through the secrets cache at each lookup
    (no AWS call until it expires), and read again at once for a kid it lacks, at most once per
    UNKNOWN_KID_REREAD_SECONDS. After the first read, a read that fails keeps the keys read
    before: a request never fails because of the token secret once the container is up."""

    def __init__(self, secret_name: str) -> None:
        self._name = secret_name
        self._parsed: tuple[str, TokenKeys] | None = None  # the last secret text, its keys
        self._reread_at: float | None = None  # monotonic time of the last unknown-kid re-read
        self._failed_until = 0.0  # monotonic: a read that failed (not busy) waits till then

    @property
    def keys(self) -> Mapping[str, bytes]:
        return _KeysByKid(self)

    def current(self) -> TokenKeys:
        if self._parsed is None:
            # The cold start: busy is the request's 503; any other failure raises (the function
            # cannot tell a token from a forgery without its keys).
            with answered_as_unavailable("secret store", NOT_SERVED):
                raw = get_secret(self._name, SECRET_CACHE_SECONDS)
            return self._keys_of(raw)
        kept = self._parsed[1]
        if time.monotonic() < self._failed_until:
            return kept
        # Busy past the cache's age, the secrets cache answers with the value read before.
        return self._read(kept, refresh=False)

    def key(self, kid: str) -> bytes | None:
        """`kid`'s key, None if the secret has none; raises TokenUnverifiable while the secret
        holds no usable key (our fault: the token is left out, not refused as forged)."""
        keys = self.current()
        if kid not in keys.keys and self._may_reread():
            keys = self._read(keys, refresh=True)
        if keys is UNUSABLE:
            metrics.add_metric(name="TokenKeysUnusable", unit="Count", value=1)
            raise TokenUnverifiable
        return keys.keys.get(kid)

    def _may_reread(self) -> bool:
        now = time.monotonic()
        if now < self._failed_until:
            return False
        if self._reread_at is not None and now - self._reread_at < UNKNOWN_KID_REREAD_SECONDS:
            return False
        self._reread_at = now
        return True

    def _read(self, kept: TokenKeys, *, refresh: bool) -> TokenKeys:
        """The secret read again after the first read: if that fails, `kept` still holds."""
        try:
            raw = get_secret(self._name, SECRET_CACHE_SECONDS, refresh=refresh)
        except (*AWS_ERRORS, SecretNotText) as error:
            self._read_failed(error)
            return kept
        return self._keys_of(raw)

    def _read_failed(self, error: Exception) -> None:
        code = error_code(error)
        if not isinstance(error, SecretNotText) and busy(error):
            logger.warning("token secret re-read failed, cached keys kept", extra={
                "error_code": code})  # fmt: skip
            return
        # Access denied (a key or policy change), the secret deleted, or binary: it will not
        # pass by itself, so the operator is paged; tokens go on with the keys read before.
        self._failed_until = time.monotonic() + UNKNOWN_KID_REREAD_SECONDS
        logger.error("token secret unreadable: the keys read before are kept", extra={
            "error_code": code, "secret_name": self._name})  # fmt: skip
        metrics.add_metric(name="TokenKeysUnusable", unit="Count", value=1)

    def _keys_of(self, raw: str) -> TokenKeys:
        if self._parsed is not None and self._parsed[0] == raw:
            return self._parsed[1]
        try:
            keys = read_token_keys(raw)
        except TokenSecretUnusable as error:
            # Logged once per secret value and container; `key` counts every token it leaves
            # unverified too.
            logger.error("token secret unusable: identity tokens cannot be verified", extra={
                "reason": str(error), "secret_name": self._name})  # fmt: skip
            metrics.add_metric(name="TokenKeysUnusable", unit="Count", value=1)
            keys = UNUSABLE
        self._parsed = (raw, keys)
        return keys


class _KeysByKid(Mapping[str, bytes]):
    """`TokenKeyring`'s keys as `TokenVerifier` looks them up: `get(kid)` asks the keyring
    (and raises the keyring's TokenUnverifiable: `Mapping.get` turns only KeyError to None)."""

    def __init__(self, keyring: TokenKeyring) -> None:
        self._keyring = keyring

    def __getitem__(self, kid: str) -> bytes:
        key = self._keyring.key(kid)
        if key is None:
            raise KeyError(kid)
        return key

    def __iter__(self) -> Iterator[str]:
        return iter(self._keyring.current().keys)

    def __len__(self) -> int:
        return len(self._keyring.current().keys)
