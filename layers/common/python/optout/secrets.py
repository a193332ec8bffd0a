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
from functools import cache
from typing import TYPE_CHECKING

from optout import aws

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient

_cached: dict[str, tuple[float, str]] = {}  # name -> (monotonic expiry, value)


class SecretNotText(RuntimeError):
    """The secret holds binary data: our keys are text."""


def get_secret(name: str, max_age: int, *, refresh: bool = False) -> str:
    """The secret's current SecretString, read at most once per `max_age` seconds, or now
    whatever the cache holds when `refresh` (a rotation the caller has reason to suspect)."""
    now = time.monotonic()
    hit = _cached.get(name)
    if hit is not None and now < hit[0] and not refresh:
        return hit[1]
    answer = _client().get_secret_value(SecretId=name)
    value = answer.get("SecretString")
    if value is None:
        raise SecretNotText(f"secret {name} has no SecretString")
    _cached[name] = (now + max_age, value)
    return value


@cache  # one per container
def _client() -> "SecretsManagerClient":
    return aws.client("secretsmanager")
