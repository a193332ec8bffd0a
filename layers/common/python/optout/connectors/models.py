"""The base of every connector's options and secret models (pydantic), and their parsing.

Imported by each vendor's module, which a worker imports at its first job (connectors/
__init__.py): the interface in base.py needs no pydantic, so a worker's init imports none.
"""

from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from optout.connectors.errors import ConfigError

M = TypeVar("M", bound=BaseModel)


class Model(BaseModel):
    """Base of every connector's options and secret model: unknown keys are typos."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class NoSecret(Model):
    """For connectors that need no credentials."""


def parse_config(model: type[M], data: Any, what: str, system: str) -> M:
    """Validate options or a secret; the error names fields only, never values (secrets)."""
    try:
        return model.model_validate(data)
    except ValidationError as error:
        fields = ", ".join(".".join(str(p) for p in e["loc"]) or "(root)" for e in error.errors())
        raise ConfigError(f"system {system}: invalid {what} ({fields})") from None
