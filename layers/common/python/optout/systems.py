"""Downstream systems, declared in one config file.

Two files ship: `layers/common/config/systems.json`, the production example (vendors' real
base URLs, `EDIT-ME` placeholders an operator must replace), and `local/systems.json`, the
local stack's default (sandbox URLs under `${LOCAL_STACK_URL}`).

Each system names its connector type, the identifier types it can act on, the purposes it
serves, how identifiers are hashed for it, its rate limit, where its credentials live, and
connector options. `${VAR}` in option strings is expanded from the environment. Loading
refuses, naming the system and the option: a variable left unexpanded, and a URL option
(`*url`) that is not HTTPS, except plain HTTP to a loopback host in local mode
(`OPTOUT_LOCAL_MODE=true`: the local stack and the tests set it, a deployed stack never does).
"""

import ipaddress
import json
import os
import re
import urllib.parse
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from optout.identifiers import IdType
from optout.purposes import Purpose

ConnectorType = Literal[
    "webhook", "segment", "braze", "salesforce", "google_ads", "meta", "trade_desk"
]


# The identifier types each connector can send (its vendor's API has a field for them). A
# system may declare fewer, never more: a job the connector cannot act on would only end as
# "no record". The connectors read their `accepted_types` from here.
CONNECTOR_ID_TYPES: dict[str, tuple[IdType, ...]] = {
    "webhook": ("email", "phone", "customer_id", "device_id"),
    # Segment matches on userId only: our device_id is our cookie, not Segment's anonymousId.
    "segment": ("customer_id",),
    "braze": ("customer_id", "email"),
    "salesforce": ("email",),
    "google_ads": ("email", "phone"),
    "meta": ("email", "phone"),
    "trade_desk": ("email", "phone"),
}


class SystemConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,39}$")]
    type: ConnectorType
    identifier_types: Annotated[tuple[IdType, ...], Field(min_length=1)]
    purposes: Annotated[tuple[Purpose, ...], Field(min_length=1)]
    hashing: Literal["none", "sha256"] = "none"
    rate_limit_per_second: Annotated[float, Field(gt=0)] = 10
    credentials: str | None = Field(
        default=None, description="Secrets Manager name (prod) or key in the local secrets file"
    )
    options: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _expand(cls, data: Any, info: ValidationInfo) -> Any:
        if not isinstance(data, dict) or not isinstance(data.get("options"), dict):
            return data
        environ = _environ(info)
        name = str(data.get("name", "?"))
        options = {k: _expand(v, environ, name, f"options.{k}") for k, v in data["options"].items()}
        for key, value in options.items():
            if key.endswith("url") and isinstance(value, str):
                _check_url(
                    value, name, f"options.{key}", local=environ.get("OPTOUT_LOCAL_MODE") == "true"
                )
        return {**data, "options": options}

    @model_validator(mode="after")
    def _sendable(self) -> "SystemConfig":
        unsupported = set(self.identifier_types) - set(CONNECTOR_ID_TYPES[self.type])
        if unsupported:
            raise ValueError(
                f"{self.type} cannot send {sorted(unsupported)}; "
                f"it takes {list(CONNECTOR_ID_TYPES[self.type])}"
            )
        return self

    def accepts(self, id_type: str) -> bool:
        return id_type in self.identifier_types

    @property
    def queue_key(self) -> str:
        """Letters and digits only: names the system's queue, DLQ and worker in template.yaml."""
        return re.sub(r"[^A-Za-z0-9]", "", self.name)


class SystemsConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    systems: tuple[SystemConfig, ...]

    @field_validator("systems")
    @classmethod
    def _unique(cls, systems: tuple[SystemConfig, ...]) -> tuple[SystemConfig, ...]:
        names = [s.name for s in systems]
        if len(names) != len(set(names)):
            raise ValueError("system names must be unique")
        return systems

    def get(self, name: str) -> SystemConfig:
        for system in self.systems:
            if system.name == name:
                return system
        raise KeyError(name)


class SystemsConfigError(ValueError):
    """The systems file is unusable; the message names each system and field at fault."""


def load_systems(path: str | Path, environ: Mapping[str, str] | None = None) -> SystemsConfig:
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    env = dict(os.environ if environ is None else environ)
    try:
        return SystemsConfig.model_validate(data, context={"environ": env})
    except ValidationError as error:
        problems = "; ".join(_describe(e) for e in error.errors())
        raise SystemsConfigError(f"{path}: {problems}") from None


def _describe(error: Any) -> str:
    where = ".".join(str(p) for p in error["loc"])
    return f"{where}: {error['msg']}" if where else str(error["msg"])


VARIABLE = re.compile(r"\$\{([^}]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)")
LOOPBACK_NAMES = frozenset({"localhost"})


def _environ(info: ValidationInfo) -> Mapping[str, str]:
    context = info.context if isinstance(info.context, dict) else {}
    environ = context.get("environ")
    return environ if isinstance(environ, Mapping) else os.environ


def _expand(value: Any, environ: Mapping[str, str], system: str, field: str) -> Any:
    """${VAR} (and $VAR) from the environment; an unset one refuses the file."""
    if isinstance(value, list):
        return [_expand(v, environ, system, f"{field}[{n}]") for n, v in enumerate(value)]
    if isinstance(value, dict):
        return {k: _expand(v, environ, system, f"{field}.{k}") for k, v in value.items()}
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match[str]) -> str:
        variable = match.group(1) if match.group(1) is not None else match.group(2)
        if variable not in environ:
            raise ValueError(f"system {system}: {field} uses ${{{variable}}}, which is not set")
        return environ[variable]

    return VARIABLE.sub(substitute, value)


def _check_url(url: str, system: str, field: str, *, local: bool) -> None:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return
    if parts.scheme == "http" and parts.hostname and local and _loopback(parts.hostname):
        return
    allowed = "https (or http to a loopback host in local mode)" if local else "https"
    raise ValueError(f"system {system}: {field} must be an {allowed} URL")


def _loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


PLACEHOLDER = "EDIT-ME"  # marks values in the production example an operator must replace


def placeholders(options: Mapping[str, Any], prefix: str = "options") -> list[str]:
    """Option paths still holding the production example's placeholder."""
    found: list[str] = []
    for key, value in options.items():
        path = f"{prefix}.{key}"
        if isinstance(value, str) and PLACEHOLDER in value:
            found.append(path)
        elif isinstance(value, Mapping):
            found.extend(placeholders(value, path))
        elif isinstance(value, list):
            found.extend(p for n, v in enumerate(value) for p in placeholders({str(n): v}, path))
    return found
