"""The connectors' options and secrets (optout.connectors.models.parse_config): the plain reader
against pydantic's TypeAdapter of the same dataclass. Where the reader answers, pydantic
accepts the same data and makes the same object of it; the reader never accepts what pydantic
refuses; the shipped systems' options and the local secrets take the plain path."""

import dataclasses
import json
import sys
import types
import typing
from pathlib import Path
from typing import Any, Literal, Union

import pytest
from hypothesis import event, given
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from optout.connectors import CONNECTORS
from optout.connectors.errors import ConfigError
from optout.connectors.models import Model, _plain, parse_config
from optout.purposes import ALL_PURPOSES
from optout.systems import load_systems

ROOT = Path(__file__).resolve().parents[3]
LOCAL_ENV = {"LOCAL_STACK_URL": "http://127.0.0.1:3000", "OPTOUT_LOCAL_MODE": "true"}


def _models() -> list[type[Model]]:
    found: list[type[Model]] = []
    for kind in CONNECTORS:
        connector = CONNECTORS[kind]
        module = sys.modules[connector.__module__]
        options = [
            v for n, v in vars(module).items()
            if n.endswith("Options") and isinstance(v, type) and issubclass(v, Model)
        ]  # fmt: skip
        found.extend([*options, connector.secret_model])
    return found


MODELS = _models()
TEXT = st.sampled_from(
    ["https://api.example.com", "v66.0", "", "é", "\ud800", "consent", "regulation",
     "SUPPRESS_ONLY", "GOOGLE_ADS", "v1", "C0004", "123"]
)  # fmt: skip
VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-1, 2) | st.floats(allow_nan=False) | TEXT,
    lambda inner: (
        st.lists(inner, max_size=2)
        | st.dictionaries(st.sampled_from([*ALL_PURPOSES, "marketing"]) | TEXT, inner, max_size=2)
    ),
    max_leaves=4,
)


def _typed(hint: Any) -> st.SearchStrategy[Any]:
    """Values of the annotation's own JSON type (any content, valid or not)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is str:
        return TEXT
    if hint is bool:
        return st.booleans()
    if hint is int:
        return st.integers(-1, 200)
    if isinstance(hint, type) and issubclass(hint, Model):  # a nested model (Segment's form)
        return _near_valid(hint)
    if origin is Literal:
        return st.sampled_from([*args, "nope"])
    if origin in (Union, types.UnionType):
        return st.one_of(*[st.none() if a is type(None) else _typed(a) for a in args])
    if origin is tuple:
        return st.lists(_typed(args[0]), max_size=3)
    if origin is dict:
        return st.dictionaries(_typed(args[0]), _typed(args[1]), max_size=3)
    raise AssertionError(f"no strategy for {hint}")


def _near_valid(model: type[Model]) -> st.SearchStrategy[dict[str, Any]]:
    """Required fields and some optional ones in their own types; then maybe one field of any
    value, or an unknown key, or a required field left out."""
    hints = typing.get_type_hints(model)
    items = dataclasses.fields(model)  # type: ignore[arg-type]
    required = {f.name: _typed(hints[f.name]) for f in items if _required(f)}
    optional = {f.name: _typed(hints[f.name]) for f in items if not _required(f)}
    typed = st.fixed_dictionaries(required, optional=optional)
    names = [f.name for f in items] or ["extra"]
    change = st.just({}) | st.dictionaries(st.sampled_from([*names, "extra"]), VALUES, max_size=1)
    dropped = st.sampled_from([None, *required])
    return st.builds(
        lambda d, c, x: {k: v for k, v in {**d, **c}.items() if k != x}, typed, change, dropped
    )


def _required(item: dataclasses.Field[Any]) -> bool:
    return item.default is dataclasses.MISSING and item.default_factory is dataclasses.MISSING


def _shape(value: Any) -> Any:
    """Values with their types: 1 and True, a list and a tuple, are not alike here."""
    if dataclasses.is_dataclass(value):
        return (type(value).__name__, _shape(dataclasses.asdict(value)))  # type: ignore[arg-type]
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return (type(value).__name__, [_shape(v) for v in value])
    return (type(value).__name__, value)


# Built once per model (a TypeAdapter ~6 ms, a strategy ~3 ms), not once per example
_ADAPTERS: dict[type[Model], TypeAdapter[Any]] = {}
_NEAR_VALID: dict[type[Model], st.SearchStrategy[dict[str, Any]]] = {}


def _adapter(model: type[Model]) -> TypeAdapter[Any]:
    if model not in _ADAPTERS:
        _ADAPTERS[model] = TypeAdapter(model)
    return _ADAPTERS[model]


def _pydantic_makes(model: type[Model], data: Any) -> Any:
    try:
        return _adapter(model).validate_python(data)
    except ValidationError:
        return "refused"


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
@given(data=st.data())
def test_where_the_plain_reader_answers_pydantic_makes_the_same(
    model: type[Model], data: st.DataObject
) -> None:
    names = [f.name for f in dataclasses.fields(model)]  # type: ignore[arg-type]
    keys = st.sampled_from([*names, "extra"]) if names else st.just("extra")
    if model not in _NEAR_VALID:
        _NEAR_VALID[model] = _near_valid(model)
    given_data = data.draw(
        _NEAR_VALID[model]
        | st.dictionaries(keys, VALUES, max_size=len(names) + 1)
        | st.sampled_from([None, [], "x"])
    )
    plain = _plain(model, given_data)
    made = _pydantic_makes(model, given_data)
    event("plain" if plain is not None else f"pydantic: {'refused' if made == 'refused' else 'ok'}")
    if plain is not None:
        assert made != "refused"
        assert _shape(plain) == _shape(made)


def test_the_shipped_systems_options_and_the_local_secrets_take_the_plain_path() -> None:
    secrets = json.loads((ROOT / "local" / "secrets.json").read_text())
    for path, env in ((ROOT / "local" / "systems.json", LOCAL_ENV),
                      (ROOT / "layers" / "common" / "config" / "systems.json", {})):  # fmt: skip
        for system in load_systems(path, env).systems:
            module = sys.modules[CONNECTORS[system.type].__module__]
            (options,) = [m for m in MODELS if m.__module__ == module.__name__
                          and m.__name__.endswith("Options")]  # fmt: skip
            assert _plain(options, system.options) is not None, system.name
            secret = CONNECTORS[system.type].secret_model
            assert _plain(secret, secrets[system.credentials]) is not None, system.name


def test_a_refusal_names_the_fields_never_the_values() -> None:
    secret = next(m for m in MODELS if m.__name__ == "WebhookSecret")
    with pytest.raises(ConfigError) as refused:
        parse_config(secret, {"signing_secret": 7, "nope": "hunter2"}, "credentials", "crm")
    assert str(refused.value) == "system crm: invalid credentials (signing_secret, nope)"


@pytest.mark.parametrize(
    "changes",
    [{"person_accounts": 1}, {"person_accounts": "true"}, {"base_url": 5},
     {"fields": {"marketing": "X__c"}}, {"fields": {"sale": 1}}, {"record_field": ["x"]},
     {"api_version": None}, {"unknown": "x"}],
)  # fmt: skip
def test_a_value_in_another_form_is_left_to_pydantic(changes: dict[str, Any]) -> None:
    # pydantic reads some of these (1 as True) and refuses others: either way, not the reader
    options = next(m for m in MODELS if m.__name__ == "SalesforceOptions")
    given_data = {"base_url": "https://x.my.salesforce.com", **changes}
    assert _plain(options, given_data) is None
