"""The systems configuration's pydantic models: the one description of a valid file.

`optout.systems.load_systems` reads a plain, valid file without them and comes here for any
other (every refusal is worded here); tools, the admin and tests may use them directly.
`config()` gives the frozen dataclasses the functions read.
"""

import os
from collections.abc import Mapping
from dataclasses import fields
from typing import Annotated, Any

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
from optout.systems import (
    CONNECTOR_HASHING,
    CONNECTOR_ID_TYPES,
    DEFAULT_RATE_LIMIT,
    NAME_PATTERN,
    ConnectorType,
    Hashing,
    SystemConfig,
    SystemsConfig,
    SystemsConfigError,
    expand_options,
)


class SystemModel(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: Annotated[str, Field(pattern=f"^{NAME_PATTERN}$")]
    type: ConnectorType
    identifier_types: Annotated[tuple[IdType, ...], Field(min_length=1)]
    purposes: Annotated[tuple[Purpose, ...], Field(min_length=1)]
    hashing: Hashing = "none"
    rate_limit_per_second: Annotated[float, Field(gt=0)] = DEFAULT_RATE_LIMIT
    credentials: str | None = Field(
        default=None, description="Secrets Manager name (prod) or key in the local secrets file"
    )
    options: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _own_hashing(cls, data: Any) -> Any:
        # A `hashing` left out means what the connector does (the ad platforms hash): a file
        # written before `make template` checked the field keeps passing.
        kind = data.get("type") if isinstance(data, dict) else None
        # A `type` of the wrong kind (a list, an object) is the field check's to refuse.
        if isinstance(kind, str) and "hashing" not in data and kind in CONNECTOR_HASHING:
            return {**data, "hashing": CONNECTOR_HASHING[kind] or "none"}
        return data

    @model_validator(mode="before")
    @classmethod
    def _expand(cls, data: Any, info: ValidationInfo) -> Any:
        if not isinstance(data, dict) or not isinstance(data.get("options"), dict):
            return data
        name = str(data.get("name", "?"))
        return {**data, "options": expand_options(data["options"], _environ(info), name)}

    @model_validator(mode="after")
    def _sendable(self) -> "SystemModel":
        unsupported = set(self.identifier_types) - set(CONNECTOR_ID_TYPES[self.type])
        if unsupported:
            raise ValueError(
                f"{self.type} cannot send {sorted(unsupported)}; "
                f"it takes {list(CONNECTOR_ID_TYPES[self.type])}"
            )
        return self

    def config(self) -> SystemConfig:
        return SystemConfig(**{f.name: getattr(self, f.name) for f in fields(SystemConfig)})


Reason = Annotated[str, Field(min_length=1)]


class SystemsModel(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    systems: tuple[SystemModel, ...]
    unserved_purposes: dict[Purpose, Reason] = Field(
        default_factory=dict,
        description="Purposes no system serves on purpose, each with the reason: `make template`"
        " refuses a purpose left unserved without one",
    )
    unserved_identifier_types: dict[IdType, Reason] = Field(
        default_factory=dict,
        description="Identifier types no system takes on purpose, each with the reason",
    )

    @field_validator("systems")
    @classmethod
    def _unique(cls, systems: tuple[SystemModel, ...]) -> tuple[SystemModel, ...]:
        names = [s.name for s in systems]
        if len(names) != len(set(names)):
            raise ValueError("system names must be unique")
        return systems

    def config(self) -> SystemsConfig:
        return SystemsConfig(
            tuple(s.config() for s in self.systems),
            dict(self.unserved_purposes),
            dict(self.unserved_identifier_types),
        )


def validate(data: Any, environ: Mapping[str, str]) -> SystemsConfig:
    """The parsed file through the models; SystemsConfigError names each system and field."""
    try:
        return SystemsModel.model_validate(data, context={"environ": environ}).config()
    except ValidationError as error:
        raise SystemsConfigError("; ".join(_describe(e) for e in error.errors())) from None


def _describe(error: Any) -> str:
    where = ".".join(str(p) for p in error["loc"])
    return f"{where}: {error['msg']}" if where else str(error["msg"])


def _environ(info: ValidationInfo) -> Mapping[str, str]:
    context = info.context if isinstance(info.context, dict) else {}
    environ = context.get("environ")
    return environ if isinstance(environ, Mapping) else os.environ
