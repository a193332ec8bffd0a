"""Settings from the environment (optout.settings): a plain dataclass every function builds at
its cold start; a bad value stops the function with the variable's name, never its value."""

import os
from unittest import mock

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter

from optout.settings import LOCAL_HASH_KEY, Settings


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in Settings.__dataclass_fields__:
        monkeypatch.delenv(name.upper(), raising=False)
    monkeypatch.setenv("TABLE_NAME", "optout-table")


def test_unset_and_empty_variables_take_the_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POLICY_VERSION", "")
    settings = Settings.from_env()
    assert settings == Settings(table_name="optout-table")
    assert settings.local_hash_key == LOCAL_HASH_KEY
    assert settings.policy_version == "unversioned"
    assert settings.record_retention_days == 1095


@pytest.mark.parametrize(
    ("word", "value"),
    [("true", True), ("True", True), ("1", True), ("yes", True), ("on", True),
     ("false", False), ("FALSE", False), ("0", False), ("no", False), ("off", False)],
)  # fmt: skip
def test_a_boolean_variable_takes_the_usual_words(
    monkeypatch: pytest.MonkeyPatch, word: str, value: bool
) -> None:
    monkeypatch.setenv("STORE_IP_ADDRESS", word)
    assert Settings.from_env().store_ip_address is value


def test_numbers_and_texts_are_read_from_their_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAX_BODY_BYTES", "4096")
    monkeypatch.setenv("RECORD_RETENTION_DAYS", "800")
    monkeypatch.setenv("HASH_KEY_SECRET_NAME", "hash")
    settings = Settings.from_env()
    assert (settings.max_body_bytes, settings.record_retention_days) == (4096, 800)
    assert settings.hash_key_secret_name == "hash"


@pytest.mark.parametrize(
    ("name", "raw"),
    [("STORE_IP_ADDRESS", "maybe"), ("MAX_BODY_BYTES", "16k"), ("RECORD_RETENTION_DAYS", "730"),
     ("MAX_CLUSTER_SIZE", "1"), ("MAX_CLUSTER_SIZE", "100"), ("MAX_ASSERTERS", "0"),
     ("MAX_ASSERTED", "0"), ("MAX_CLUSTER_ASSERTED", "0"), ("NO_RECORD_QUIET_HOURS", "-1"),
     ("NO_RECORD_QUIET_HOURS", "169"),
     ("IDENTITY_TOKEN_MAX_LIFETIME_SECONDS", "3601")],
)  # fmt: skip
def test_a_bad_value_stops_the_function_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, raw: str
) -> None:
    monkeypatch.setenv(name, raw)
    with pytest.raises(ValueError, match=name) as refused:
        Settings.from_env()
    assert raw not in str(refused.value).replace(name, "")


def test_a_missing_table_name_stops_the_function(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TABLE_NAME")
    with pytest.raises(ValueError, match="TABLE_NAME"):
        Settings.from_env()


@pytest.mark.parametrize(
    "values",
    [{"max_cluster_size": True}, {"record_retention_days": "1095"}, {"table_name": None},
     {"identity_token_audience": ""}, {"optout_local_mode": "true"}],
)  # fmt: skip
def test_settings_built_in_code_are_checked_too(values: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        Settings(**{"table_name": "t", **values})  # type: ignore[arg-type]


# Settings was a pydantic model: a value a stack was deployed with must read the same now.
# CloudFormation `Type: Number` parameters can reach a function as "1100.0".
_PYDANTIC = {int: TypeAdapter(int), bool: TypeAdapter(bool)}
_CHARS = st.sampled_from(["0", "1", "5", "9", "_", ".", "-", "+", " ", "\t", "\n", "\u3000",
                          "\xa0", "\x1c", "e", "x", "t", "T", "r", "u", "E", "y", "o", "N",
                          "f", "\uff15", "\u0663", "\u212a"])  # fmt: skip
_RAW = st.lists(_CHARS, min_size=1, max_size=12).map("".join) | st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), min_size=1
)


def _pydantic_reads(kind: type, raw: str) -> object:
    try:
        return _PYDANTIC[kind].validate_python(raw)
    except ValueError:  # pydantic's ValidationError
        return "refused"


def _settings_read(variable: str, raw: str) -> object:
    with mock.patch.dict(os.environ, {"TABLE_NAME": "t", variable: raw}, clear=True):
        try:
            return getattr(Settings.from_env(), variable.lower())
        except ValueError:
            return "refused"


@pytest.mark.parametrize(
    ("raw", "days"),
    [("1100.0", 1100), ("1_095", 1095), (" 1095 ", 1095), ("+1095", 1095), ("01095.00", 1095),
     ("1_095.0", 1095), ("1095.5", None), ("1095.", None), ("1e3", None), ("\uff11095", None),
     ("1__095", None), ("0x44f", None)],
)  # fmt: skip
def test_a_whole_number_reads_as_the_pydantic_model_read_it(
    monkeypatch: pytest.MonkeyPatch, raw: str, days: int | None
) -> None:
    # Given a retention period written as CloudFormation or a person may write it
    monkeypatch.setenv("RECORD_RETENTION_DAYS", raw)
    # When the settings are read
    # Then it is the number pydantic read, or refused where pydantic refused it
    assert _pydantic_reads(int, raw) == (days if days is not None else "refused")
    if days is None:
        with pytest.raises(ValueError, match="RECORD_RETENTION_DAYS"):
            Settings.from_env()
    else:
        assert Settings.from_env().record_retention_days == days


@pytest.mark.parametrize("raw", [" true", "True ", "yes\n", "\tno", "1.0", "2", "\u212a"])
def test_a_boolean_word_with_anything_around_it_is_refused_as_pydantic_refused_it(
    monkeypatch: pytest.MonkeyPatch, raw: str
) -> None:
    monkeypatch.setenv("OPTOUT_LOCAL_MODE", raw)
    assert _pydantic_reads(bool, raw) == "refused"
    with pytest.raises(ValueError, match="OPTOUT_LOCAL_MODE"):
        Settings.from_env()


@settings(max_examples=400, deadline=None)
@given(_RAW)
@example("1" * 4300)
@example("-" + "1" * 4300)
@example(" " + "1" * 4300 + ".0")
@example("0_0")
@example("0_.0")
@example("-00")
@example("+-1")
def test_a_number_variable_reads_any_text_as_pydantic_int_does(raw: str) -> None:
    # MAX_BODY_BYTES has no bounds: every whole number pydantic reads is a valid value
    assert _settings_read("MAX_BODY_BYTES", raw) == _pydantic_reads(int, raw)


@settings(max_examples=400, deadline=None)
@given(_RAW)
@example("TRUE")
@example("oFf")
@example("1")
@example("\u0131")
def test_a_boolean_variable_reads_any_text_as_pydantic_bool_does(raw: str) -> None:
    assert _settings_read("STORE_IP_ADDRESS", raw) == _pydantic_reads(bool, raw)


@settings(max_examples=200, deadline=None)
@given(_RAW)
def test_a_text_variable_is_kept_as_written(raw: str) -> None:
    assert _settings_read("POLICY_VERSION", raw) == TypeAdapter(str).validate_python(raw)


def test_a_refused_number_never_appears_in_the_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAX_BODY_BYTES", "4096.5-secret")
    with pytest.raises(ValueError, match="MAX_BODY_BYTES") as refused:
        Settings.from_env()
    assert "4096" not in str(refused.value) and "secret" not in str(refused.value)
