"""Secrets Manager reads for the functions: their own keys (HMAC key, identity-token keys, edge
secret) and the workers' vendor credentials (`optout.connectors.credentials`), cached per
container.

Not Powertools Parameters here: importing it (boto3, and with it every provider it offers)
and creating its client cost a capture cold start about 0.8 of a bare `import boto3`, more
than botocore's own client (docs/performance.md, docs/decisions.md "Our keys without
Parameters"). What these callers used of it is one call and a cache: GetSecretValue of the
current version, its SecretString, kept `max_age` seconds per name; the workers add a forced
re-read (Parameters' `force_fetch`) for a vendor that refused a cached credential.
"""

import time
from collections.abc import Callable
from functools import cache
from typing import TYPE_CHECKING

from optout import aws
from optout.observability import logger
from optout.store.busy import AWS_ERRORS, busy

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient

Cache = dict[str, tuple[float, str]]  # name -> (monotonic expiry, value)
STALE_RETRY_SECONDS = 30  # a busy re-read is tried again this much later, the old value kept
_cached: Cache = {}


class SecretNotText(RuntimeError):
    """The secret holds binary data: our keys are text."""


def get_secret(name: str, max_age: int, *, refresh: bool = False) -> str:
    """The secret's current SecretString, read at most once per `max_age` seconds, or now
    whatever the cache holds when `refresh` (a rotation the caller has reason to suspect)."""
    return cached(_cached, name, max_age, lambda: _current(name), refresh=refresh)


def cached(
    store: Cache, name: str, max_age: int, read: Callable[[], str], *, refresh: bool = False
) -> str:
    """`read()`'s text, kept in `store` for `max_age` seconds per name; read again now when
    `refresh`."""
    now = time.monotonic()
    hit = store.get(name)
    if hit is not None and now < hit[0] and not refresh:
        return hit[1]
    try:
        value = read()
    except AWS_ERRORS as error:
        if hit is None or refresh or not busy(error):
            raise
        # Secrets Manager busy at a routine re-read: the value read before still holds (a
        # rotation is picked up at the next read that succeeds); no request pays for it.
        logger.warning("secret re-read failed, cached value kept", extra={
            "error_class": type(error).__name__})  # fmt: skip
        store[name] = (now + STALE_RETRY_SECONDS, hit[1])
        return hit[1]
    store[name] = (now + max_age, value)
    return value


def _current(name: str) -> str:
    value = _client().get_secret_value(SecretId=name).get("SecretString")
    if value is None:
        raise SecretNotText(f"secret {name} has no SecretString")
    return value


@cache  # one per container
def _client() -> "SecretsManagerClient":
    return aws.client("secretsmanager")
