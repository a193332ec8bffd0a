"""Where a system's credentials come from, and how long a copy is trusted.

Order (first that applies):
1. env `LOCAL_SECRETS_FILE`: a JSON file mapping credentials name -> secret object (local stack,
   tests). A name missing from the file is an error, not a silent fall-through to AWS.
2. env `OPTOUT_SECRET_<NAME>`: the secret object as JSON, NAME being the credentials name
   upper-cased with every non-alphanumeric as `_` (`optout-bridge/systems/braze` ->
   `OPTOUT_SECRET_OPTOUT_BRIDGE_SYSTEMS_BRAZE`). For one-off runs and CI.
3. Secrets Manager (`optout.secrets.get_secret`, a botocore client): production.
All three are cached for `SECRET_CACHE_SECONDS`, so a rotated secret is picked up within that
time; a connector whose credentials the vendor refuses asks once more with `refresh=True`,
which reads the source again whatever the cache holds, so a rotation is picked up at once.

Not Powertools Parameters: importing it brings boto3 and every provider it offers, about 0.8
of a bare `import boto3` on a worker's cold start, for one call, a cache and `json.loads`
(docs/decisions.md "Vendor credentials without Parameters").

Every failure to get a usable secret object (unreadable source, missing name, Secrets Manager
error, not JSON, not an object) is a `ConfigError`: the delivery service retries the jobs until
an operator fixes it. Messages name the secret and the kind of failure, never its content.

Naming rule (README, docs/connectors.md, systems.json, template.yaml): one secret per system,
`optout-bridge/systems/<system name>`, a JSON object holding every credential that system's
connector needs (The Trade Desk's also holds its UID2 operator key and secret).
"""

import json
import os
import re
from pathlib import Path
from typing import Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError

from optout import secrets
from optout.connectors.errors import ConfigError

SECRET_CACHE_SECONDS = 300
ENV_PREFIX = "OPTOUT_SECRET_"


class SecretUnavailable(ConfigError):
    """The secret could not be read, or is not a JSON object."""


def env_name(credentials: str) -> str:
    return ENV_PREFIX + re.sub(r"[^A-Za-z0-9]", "_", credentials).upper()


class SecretSource:
    def __init__(self, local_secrets_file: str | None = None) -> None:
        self._file = Path(local_secrets_file) if local_secrets_file else None
        # The file's and the environment's texts; Secrets Manager's are optout.secrets' cache.
        self._cached: secrets.Cache = {}

    def get(self, credentials: str | None, *, refresh: bool = False) -> dict[str, Any]:
        if credentials is None:
            return {}
        text = self._text(credentials, refresh)
        try:
            value = json.loads(text)
        except ValueError:
            raise SecretUnavailable(f"secret {credentials!r} is not JSON") from None
        if not isinstance(value, dict):
            raise SecretUnavailable(f"secret {credentials!r} is not a JSON object")
        return value

    def reader(self, credentials: str | None) -> "CredentialReader":
        """The credentials of one system, read (through the cache) each time they are used."""
        return lambda refresh=False: self.get(credentials, refresh=refresh)

    def _text(self, name: str, refresh: bool) -> str:
        if self._file is None and env_name(name) not in os.environ:
            return _from_secrets_manager(name, refresh)
        path = self._file
        return secrets.cached(
            self._cached,
            name,
            SECRET_CACHE_SECONDS,
            lambda: _from_file(path, name) if path else os.environ[env_name(name)],
            refresh=refresh,
        )


def _from_file(path: Path, name: str) -> str:
    try:
        found = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ConfigError(f"LOCAL_SECRETS_FILE unreadable: {type(error).__name__}") from None
    if not isinstance(found, dict) or name not in found:
        raise ConfigError(f"LOCAL_SECRETS_FILE has no entry {name!r}")
    return json.dumps(found[name])


def _from_secrets_manager(name: str, refresh: bool) -> str:
    try:
        return secrets.get_secret(name, SECRET_CACHE_SECONDS, refresh=refresh)
    except ClientError as error:  # its message may quote the request, never the value: code only
        code = error.response.get("Error", {}).get("Code", "unknown")
        raise SecretUnavailable(f"secret {name!r} unreadable: {code}") from None
    except (BotoCoreError, secrets.SecretNotText) as error:
        raise SecretUnavailable(f"secret {name!r} unreadable: {type(error).__name__}") from None


class CredentialReader(Protocol):
    """Returns a system's secret object; `refresh=True` bypasses the cache (after a 401)."""

    def __call__(self, refresh: bool = False) -> dict[str, Any]: ...


def fixed(secret: dict[str, Any]) -> CredentialReader:
    """A reader that always answers the same secret (tests, and systems without credentials)."""
    return lambda refresh=False: dict(secret)
