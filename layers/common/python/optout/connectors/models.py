"""The base of every connector's options and secret: a frozen, keyword-only dataclass that
pydantic validates (its `__pydantic_config__` forbids unknown keys: they are typos).

`parse_config` reads the plain form (JSON's own types, exactly as annotated: what an operator
writes and what a secret holds) directly, and gives any other to pydantic's TypeAdapter of the
same dataclass, imported only then: the dataclass's annotations are the one description, and
pydantic words every refusal. So a worker's first job imports no pydantic for its connector
(docs/decisions.md, "The systems configuration without pydantic";
tests/unit/connectors/test_config_plain.py holds the plain reader to pydantic).
"""

import types
import typing
from dataclasses import MISSING, dataclass, fields
from typing import Any, ClassVar, Literal, TypeVar, Union

from optout.connectors.errors import ConfigError
from optout.plain_text import NO, pydantic_str


class Model:
    """Subclass it as `@dataclass(frozen=True, kw_only=True)`."""

    __pydantic_config__: ClassVar[dict[str, Any]] = {"extra": "forbid"}


@dataclass(frozen=True, kw_only=True)
class NoSecret(Model):
    """For connectors that need no credentials."""


M = TypeVar("M", bound=Model)


def parse_config(model: type[M], data: Any, what: str, system: str) -> M:
    """Validate options or a secret; the error names fields only, never values (secrets)."""
    plain = _plain(model, data)
    if plain is not None:
        return plain
    from pydantic import TypeAdapter, ValidationError  # noqa: PLC0415 - off the plain path

    try:
        validated: M = TypeAdapter(model).validate_python(data)
    except ValidationError as error:
        found = ", ".join(".".join(str(p) for p in e["loc"]) or "(root)" for e in error.errors())
        raise ConfigError(f"system {system}: invalid {what} ({found})") from None
    return validated


def _plain(model: type[M], data: Any) -> M | None:
    if type(data) is not dict:
        return None
    readers = _readers(model)
    if not data.keys() <= readers.keys():
        return None
    values: dict[str, Any] = {}
    for name, (read, required) in readers.items():
        if name not in data:
            if required:
                return None
            continue
        value = read(data[name])
        if value is NO:
            return None
        values[name] = value
    return model(**values)


Reader = typing.Callable[[Any], Any]


_READERS: dict[type[Model], dict[str, tuple[Reader, bool]]] = {}


def _readers(model: type[Model]) -> dict[str, tuple[Reader, bool]]:
    """Each field's reader and whether it is required, once per class."""
    if model not in _READERS:
        hints = typing.get_type_hints(model)
        _READERS[model] = {
            f.name: (_reader(hints[f.name]), f.default is MISSING and f.default_factory is MISSING)
            for f in fields(model)  # type: ignore[arg-type]  # a dataclass, by Model's contract
        }
    return _READERS[model]


def _reader(hint: Any) -> Reader:
    """The plain reader of one annotation; an annotation it does not know reads nothing."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is str:
        return _text
    if hint is bool:
        return lambda v: v if type(v) is bool else NO
    if hint is int:
        return lambda v: v if type(v) is int else NO
    if isinstance(hint, type) and issubclass(hint, Model):  # a nested model, read the same way
        return lambda v: _or_no(_plain(hint, v))
    if origin is Literal:
        words = frozenset(a for a in args if type(a) is str)
        return lambda v: v if type(v) is str and v in words else NO
    if origin in (Union, types.UnionType) and len(args) == 2 and type(None) in args:
        inner = _reader(next(a for a in args if a is not type(None)))
        return lambda v: None if v is None else inner(v)
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        item = _reader(args[0])
        return lambda v: _sequence(v, item)
    if origin is dict and len(args) == 2:
        key, value = _reader(args[0]), _reader(args[1])
        return lambda v: _mapping(v, key, value)
    return lambda v: NO


def _or_no(value: Any) -> Any:
    return NO if value is None else value


def _text(value: Any) -> Any:
    return value if pydantic_str(value) else NO


def _sequence(value: Any, item: Reader) -> Any:
    if type(value) is not list:
        return NO
    read = tuple(item(v) for v in value)
    return NO if any(v is NO for v in read) else read


def _mapping(value: Any, key: Reader, item: Reader) -> Any:
    if type(value) is not dict:
        return NO
    read = {key(k): item(v) for k, v in value.items()}
    return NO if NO in read or any(v is NO for v in read.values()) else read
