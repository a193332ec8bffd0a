"""The systems configuration's plain reader (optout.systems.read_plain) against the pydantic
models it stands in for (optout.systems_models): on any file, where the reader answers, the
models accept the same file and make the same configuration of it (same values, same types);
the reader never accepts what the models refuse. The files we ship take the plain path."""

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import event, example, given
from hypothesis import strategies as st

from optout.identifiers import ID_TYPES
from optout.purposes import ALL_PURPOSES
from optout.systems import (
    CONNECTOR_ID_TYPES,
    SystemConfig,
    SystemsConfig,
    SystemsConfigError,
    load_systems,
    read_plain,
)
from optout.systems_models import validate

ROOT = Path(__file__).resolve().parents[3]
PRODUCTION = ROOT / "layers" / "common" / "config" / "systems.json"
LOCAL = ROOT / "local" / "systems.json"
LOCAL_ENV = {"LOCAL_STACK_URL": "http://127.0.0.1:3000", "OPTOUT_LOCAL_MODE": "true"}

TEXT = st.sampled_from(
    ["crm", "cdp", "google_ads", "Crm", "crm\n", "c" * 40, "c" * 41, "", "1crm", "crm-2",
     "é", "\ud800", "optout-bridge/systems/crm", "EDIT-ME"]
)  # fmt: skip
URLS = st.sampled_from(
    ["https://api.example.com", "http://127.0.0.1:3000/x", "http://localhost/x",
     "http://example.com", "https://", "ftp://example.com", "${LOCAL_STACK_URL}/_sandbox/crm",
     "$LOCAL_STACK_URL/x", "${NOT_SET}/x", "http://[::1/x", "https://[::1]:8443/x", "https:x"]
)  # fmt: skip
SCALARS = st.none() | st.booleans() | st.integers(-3, 3) | st.floats(allow_nan=True) | TEXT | URLS
OPTION_VALUES = st.recursive(
    SCALARS, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=2),
    max_leaves=6,
)  # fmt: skip
OPTIONS = st.dictionaries(
    st.sampled_from(["base_url", "token_url", "path", "url", "Base_url", "é_url", "\ud800"]),
    URLS | OPTION_VALUES,
    max_size=4,
)
RATES = (
    st.integers(-2, 100)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.sampled_from([0, 0.0, 1e-300, 2**53, 2**53 + 1, 10**400, True, "5", None])
)
FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "name": TEXT | st.integers(0, 2) | st.none(),
    "type": st.sampled_from([*CONNECTOR_ID_TYPES, "carrier_pigeon", "Webhook", 1]),
    "identifier_types": st.lists(st.sampled_from([*ID_TYPES, "ssn", 1]), max_size=4)
    | st.sampled_from(["email", None, ("email",)]),
    "purposes": st.lists(st.sampled_from([*ALL_PURPOSES, "marketing"]), max_size=3)
    | st.sampled_from(["sale", None]),
    "hashing": st.sampled_from(["none", "sha256", "md5", None, 0]),
    "rate_limit_per_second": RATES,
    "credentials": TEXT | st.none() | st.integers(0, 1),
    "options": OPTIONS | st.sampled_from([None, [], "x"]),
    "unexpected": st.booleans(),
}
REQUIRED = ("name", "type", "identifier_types", "purposes")


def _systems() -> st.SearchStrategy[dict[str, Any]]:
    optional = [n for n in FIELDS if n not in REQUIRED]
    chosen = st.tuples(
        st.lists(st.sampled_from(REQUIRED), unique=True, min_size=3),
        st.lists(st.sampled_from(optional), unique=True),
    ).map(lambda t: t[0] + t[1])
    return chosen.flatmap(lambda names: st.fixed_dictionaries({n: FIELDS[n] for n in names}))


GOOD_OPTIONS = st.dictionaries(
    st.sampled_from(["base_url", "token_url", "path", "retries", "categories"]),
    st.sampled_from(["https://api.example.com", "${LOCAL_STACK_URL}/x", "/v1", "", 3, None])
    | st.lists(st.sampled_from(["a", "$HOME", 1]), max_size=2),
    max_size=3,
)


def _valid() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {
            "name": st.text("abcdefgh_0123", min_size=1, max_size=8).map(lambda t: "s" + t),
            "type": st.just("webhook"),
            "identifier_types": st.lists(st.sampled_from(ID_TYPES), min_size=1, max_size=3),
            "purposes": st.lists(st.sampled_from(ALL_PURPOSES), min_size=1, max_size=3),
        },
        optional={
            "hashing": st.sampled_from(["none", "sha256"]),
            "rate_limit_per_second": st.integers(1, 100) | st.floats(0.1, 1e6),
            "credentials": st.sampled_from(["optout-bridge/systems/crm", "crm"]) | st.none(),
            "options": GOOD_OPTIONS,
        },
    )


def _plausible() -> st.SearchStrategy[dict[str, Any]]:
    """Valid systems, then up to two fields replaced by any value above (or dropped)."""
    valid = _valid()
    changes = st.dictionaries(st.sampled_from(list(FIELDS)), st.none(), max_size=2).flatmap(
        lambda names: st.fixed_dictionaries({n: FIELDS[n] for n in names})
    )
    dropped = st.sampled_from([None, *REQUIRED])
    unchanged = st.builds(_changed, valid, st.just({}), st.none())
    return unchanged | st.builds(_changed, valid, changes, dropped) | _systems()


def _changed(
    system: dict[str, Any], changes: dict[str, Any], dropped: str | None
) -> dict[str, Any]:
    system = {**system, **changes}
    system.pop(dropped or "-", None)
    return system


def _unserved(words: tuple[str, ...]) -> st.SearchStrategy[Any]:
    """A top-level unserved_* declaration: word -> reason, or something else."""
    reasons = TEXT | st.integers(0, 1) | st.none()
    return st.dictionaries(st.sampled_from([*words, "marketing"]), reasons, max_size=2) | (
        st.sampled_from([None, [], "x", ["profiling"]])
    )


FILES = st.one_of(
    st.fixed_dictionaries({"systems": st.lists(_plausible(), max_size=3)}),
    st.fixed_dictionaries({"systems": st.lists(_plausible(), max_size=1), "extra": st.none()}),
    st.fixed_dictionaries(
        {"systems": st.lists(_plausible(), max_size=1)},
        optional={
            "unserved_purposes": _unserved(ALL_PURPOSES),
            "unserved_identifier_types": _unserved(ID_TYPES),
        },
    ),
    st.sampled_from([{}, {"systems": None}, {"systems": {}}, [], "systems"]),
)
ENVIRON = st.fixed_dictionaries(
    {
        "LOCAL_STACK_URL": st.sampled_from(["http://127.0.0.1:3000", "https://x.example", "ftp:"]),
        "HOME": st.just("/home"),
    },
    optional={"OPTOUT_LOCAL_MODE": st.sampled_from(["true", "false", "True"])},
)


def _shape(config: SystemsConfig) -> list[Any]:
    """Each field's value and type name: 10 and 10.0 are equal, not the same configuration;
    then the file's unserved declarations."""
    return [
        [(name, value, type(value).__name__) for name, value in vars(system).items()]
        for system in config.systems
    ] + [config.unserved_purposes, config.unserved_identifier_types]


def _models_make(data: Any, environ: dict[str, str]) -> SystemsConfig | str:
    try:
        return validate(data, environ)
    except (SystemsConfigError, UnicodeError):  # a lone surrogate in a refusal's own words
        return "refused"


@given(FILES, ENVIRON)
@example({"systems": [{"name": "crm", "type": "webhook", "identifier_types": ["email"],
                       "purposes": ["sale"], "rate_limit_per_second": 5}]}, {})  # fmt: skip
@example({"systems": [{"name": "crm", "type": "segment", "identifier_types": ["email"],
                       "purposes": ["sale"]}]}, {})  # fmt: skip
def test_where_the_plain_reader_answers_the_models_make_the_same(
    data: Any, environ: dict[str, str]
) -> None:
    plain = read_plain(data, environ)
    made = _models_make(data, environ)
    event("plain" if plain is not None else "models: " + ("refused" if made == "refused" else "ok"))
    if plain is not None:
        assert made != "refused"
        assert isinstance(made, SystemsConfig)
        assert _shape(plain) == _shape(made)


@pytest.mark.parametrize("field", sorted(FIELDS))
@given(data=st.data())
def test_one_field_of_any_value_on_a_valid_system_is_read_as_the_models_read_it(
    field: str, data: st.DataObject
) -> None:
    # Given a valid system with one field set to any value of the strategies above
    system = {**data.draw(_valid()), field: data.draw(FIELDS[field])}
    file = {"systems": [system]}
    environ = data.draw(ENVIRON)
    # Then the plain reader answers only where the models accept, and with their result
    plain = read_plain(file, environ)
    made = _models_make(file, environ)
    if plain is not None:
        assert isinstance(made, SystemsConfig) and _shape(plain) == _shape(made)


@given(st.lists(st.sampled_from(["crm", "cdp", "braze"]), min_size=1, max_size=4), ENVIRON)
def test_the_plain_reader_accepts_valid_files_as_the_models_do(
    names: list[str], environ: dict[str, str]
) -> None:
    # Given a file in its plain form: one system per name (a repeated name is refused)
    systems = [
        {"name": n, "type": "webhook", "identifier_types": ["email"], "purposes": ["sale"],
         "rate_limit_per_second": 2.5, "credentials": f"optout-bridge/systems/{n}",
         "options": {"base_url": "https://api.example.com", "retries": [1, {"x": "$HOME"}]}}
        for n in names
    ]  # fmt: skip
    data = {"systems": systems}
    env = {**environ, "HOME": "/home"}
    made = _models_make(data, env)
    # Then the plain reader answers exactly where the models accept, with their result
    plain = read_plain(data, env)
    assert (plain is None) == (made == "refused")
    if plain is not None:
        assert isinstance(made, SystemsConfig) and _shape(plain) == _shape(made)


@pytest.mark.parametrize(("path", "environ"), [(PRODUCTION, {}), (LOCAL, LOCAL_ENV)])
def test_the_shipped_files_take_the_plain_path(path: Path, environ: dict[str, str]) -> None:
    data = json.loads(path.read_text())
    plain = read_plain(data, environ)
    assert plain is not None
    assert _shape(plain) == _shape(validate(data, environ))
    assert plain == load_systems(path, environ)


def test_a_file_the_plain_reader_leaves_is_refused_in_the_models_words(tmp_path: Path) -> None:
    path = tmp_path / "systems.json"
    system = {"name": "crm", "type": "webhook", "identifier_types": ["email"],
              "purposes": ["sale"], "rate_limit_per_second": 0}  # fmt: skip
    path.write_text(json.dumps({"systems": [system]}))
    with pytest.raises(SystemsConfigError) as refused:
        load_systems(path, environ={})
    assert str(refused.value) == (
        f"{path}: systems.0.rate_limit_per_second: Input should be greater than 0"
    )


def test_a_value_in_another_form_is_read_by_the_models(tmp_path: Path) -> None:
    # A rate written as a string is not the plain form: the models read it (lax mode)
    path = tmp_path / "systems.json"
    system = {"name": "crm", "type": "webhook", "identifier_types": ["email"],
              "purposes": ["sale"], "rate_limit_per_second": "2.5"}  # fmt: skip
    path.write_text(json.dumps({"systems": [system]}))
    assert read_plain(json.loads(path.read_text()), {}) is None
    (loaded,) = load_systems(path, environ={}).systems
    expected = SystemConfig("crm", "webhook", ("email",), ("sale",), rate_limit_per_second=2.5)
    assert loaded == expected
