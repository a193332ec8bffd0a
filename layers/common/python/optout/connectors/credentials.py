"""Where a system's credentials come from, behind Powertools Parameters in every case.

Order (first that applies):
1. env `LOCAL_SECRETS_FILE`: a JSON file mapping credentials name -> secret object (local stack,
   tests). A name missing from the file is an error, not a silent fall-through to AWS.
2. env `OPTOUT_SECRET_<NAME>`: the secret object as JSON, NAME being the credentials name
   upper-cased with every non-alphanumeric as `_` (`optout-bridge/systems/braze` ->
   `OPTOUT_SECRET_OPTOUT_BRIDGE_SYSTEMS_BRAZE`). For one-off runs and CI.
3. Secrets Manager (`parameters.get_secret`, JSON transform): production.
All three are cached by Powertools for `max_age` seconds, so a rotated secret is picked up
within that time; a connector whose credentials the vendor refuses asks once more with
`refresh=True` (Powertools' force_fetch), so a rotation is picked up at once.

Naming rule (README, docs/connectors.md, systems.json, template.yaml): one secret per system,
`optout-bridge/systems/<system name>`, a JSON object holding every credential that system's
connector needs (The Trade Desk's also holds its UID2 operator key and secret).
"""

import json
import os
import re
from pathlib import Path
from typing import Any, Protocol

from aws_lambda_powertools.utilities import parameters
from aws_lambda_powertools.utilities.parameters.base import BaseProvider

from optout.connectors.errors import ConfigError

SECRET_CACHE_SECONDS = 300
ENV_PREFIX = "OPTOUT_SECRET_"


class LocalSecretsProvider(BaseProvider):
    """A Powertools provider over a JSON file: local code takes the Secrets Manager path."""

    def __init__(self, path: str | Path) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # Powertools leaves it untyped
        self.path = Path(path)

    def _get(self, name: str, **sdk_options: Any) -> str:
        try:
            secrets = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise ConfigError(f"LOCAL_SECRETS_FILE unreadable: {type(error).__name__}") from None
        if name not in secrets:
            raise ConfigError(f"LOCAL_SECRETS_FILE has no entry {name!r}")
        return json.dumps(secrets[name])

    def _get_multiple(self, path: str, **sdk_options: Any) -> dict[str, str]:
        raise NotImplementedError("secrets are read one name at a time")


class EnvSecretsProvider(BaseProvider):
    def _get(self, name: str, **sdk_options: Any) -> str:
        return os.environ[env_name(name)]

    def _get_multiple(self, path: str, **sdk_options: Any) -> dict[str, str]:
        raise NotImplementedError("secrets are read one name at a time")


def env_name(credentials: str) -> str:
    return ENV_PREFIX + re.sub(r"[^A-Za-z0-9]", "_", credentials).upper()


class SecretSource:
    def __init__(self, local_secrets_file: str | None = None) -> None:
        self._file = LocalSecretsProvider(local_secrets_file) if local_secrets_file else None
        self._env = EnvSecretsProvider()  # type: ignore[no-untyped-call]

    def get(self, credentials: str | None, *, refresh: bool = False) -> dict[str, Any]:
        if credentials is None:
            return {}
        value: Any
        options: dict[str, Any] = {
            "max_age": SECRET_CACHE_SECONDS,
            "transform": "json",
            "force_fetch": refresh,
        }
        if self._file is not None:
            value = self._file.get(credentials, **options)
        elif env_name(credentials) in os.environ:
            value = self._env.get(credentials, **options)
        else:
            value = parameters.get_secret(credentials, **options)
        if not isinstance(value, dict):
            raise ConfigError(f"secret {credentials!r} is not a JSON object")
        return value

    def reader(self, credentials: str | None) -> "CredentialReader":
        """The credentials of one system, read (through the cache) each time they are used."""
        return lambda refresh=False: self.get(credentials, refresh=refresh)


class CredentialReader(Protocol):
    """Returns a system's secret object; `refresh=True` bypasses the cache (after a 401)."""

    def __call__(self, refresh: bool = False) -> dict[str, Any]: ...


def fixed(secret: dict[str, Any]) -> CredentialReader:
    """A reader that always answers the same secret (tests, and systems without credentials)."""
    return lambda refresh=False: dict(secret)
