"""Settings from the environment (optout.settings): a plain dataclass every function builds at
its cold start; a bad value stops the function with the variable's name, never its value."""

import pytest

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
