"""Downstream systems, declared in one config file (layers/common/config/systems.json).

Each system names its connector type, the identifier types it can act on, the purposes it
serves, how identifiers are hashed for it, its rate limit, where its credentials live, and
connector options. `${VAR}` in option strings is expanded from the environment, so the local
stack can point base URLs at its own port.
"""

import json
import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

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
    "segment": ("customer_id", "device_id"),
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

    @field_validator("options")
    @classmethod
    def _expand(cls, options: dict[str, Any]) -> dict[str, Any]:
        return {k: os.path.expandvars(v) if isinstance(v, str) else v for k, v in options.items()}

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


def load_systems(path: str | Path) -> SystemsConfig:
    return SystemsConfig.model_validate(json.loads(Path(path).read_text(encoding="utf-8")))
