"""The downstream systems config (optout.systems)."""

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from optout.connectors import CONNECTORS
from optout.systems import (
    CONNECTOR_HASHING,
    CONNECTOR_ID_TYPES,
    SystemsConfigError,
    fingerprint,
    load_systems,
    read_plain,
)
from optout.systems_models import SystemModel, SystemsModel

ROOT = Path(__file__).resolve().parents[2]
SYSTEMS_JSON = ROOT / "layers" / "common" / "config" / "systems.json"


def _system(**overrides: Any) -> dict[str, Any]:
    system: dict[str, Any] = {
        "name": "crm",
        "type": "webhook",
        "identifier_types": ["email"],
        "purposes": ["sale"],
    }
    system.update(overrides)
    return system


def test_the_shipped_systems_config_validates() -> None:
    config = load_systems(SYSTEMS_JSON)
    assert len(config.systems) == len(json.loads(SYSTEMS_JSON.read_text())["systems"]) > 0


def test_every_shipped_system_has_a_distinct_queue_key() -> None:
    keys = [system.queue_key for system in load_systems(SYSTEMS_JSON).systems]
    assert len(keys) == len(set(keys))


@pytest.mark.parametrize(
    ("name", "queue_key"),
    [("google_ads", "googleads"), ("trade_desk", "tradedesk"), ("crm2", "crm2")],
)
def test_queue_key_strips_everything_but_letters_and_digits(name: str, queue_key: str) -> None:
    assert SystemModel.model_validate(_system(name=name)).config().queue_key == queue_key


def test_duplicate_system_names_are_refused() -> None:
    with pytest.raises(ValidationError):
        SystemsModel.model_validate({"systems": [_system(), _system()]})


@pytest.mark.parametrize(
    "overrides",
    [
        {"type": "carrier_pigeon"},
        {"identifier_types": ["ssn"]},
        {"identifier_types": []},
        {"purposes": ["marketing"]},
        {"name": "Has Spaces"},
        {"hashing": "md5"},
        {"rate_limit_per_second": 0},
        {"unexpected": True},
    ],
)
def test_invalid_system_declarations_are_refused(overrides: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        SystemModel.model_validate(_system(**overrides))


def test_option_strings_expand_environment_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOCAL_STACK_URL", "http://127.0.0.1:3000")
    system = SystemModel.model_validate(
        _system(options={"base_url": "${LOCAL_STACK_URL}/_sandbox/crm", "retries": 3})
    )
    assert system.options == {"base_url": "http://127.0.0.1:3000/_sandbox/crm", "retries": 3}


def test_accepts_only_its_identifier_types() -> None:
    system = SystemModel.model_validate(_system(identifier_types=["email", "phone"])).config()
    assert system.accepts("phone") and not system.accepts("device_id")


def test_get_finds_a_system_by_name_and_raises_for_unknown() -> None:
    config = SystemsModel.model_validate(
        {"systems": [_system(name="crm"), _system(name="cdp")]}
    ).config()
    assert config.get("cdp").name == "cdp"
    with pytest.raises(KeyError):
        config.get("nope")


def test_a_system_cannot_declare_identifiers_its_connector_cannot_send() -> None:
    # Segment's track event has userId and anonymousId fields, no email
    with pytest.raises(ValidationError, match=r"segment cannot send \['email'\]"):
        SystemModel.model_validate(
            _system(name="cdp", type="segment", identifier_types=["customer_id", "email"])
        )


def test_every_connector_reads_its_identifier_types_from_the_config_table() -> None:
    assert {t: c.accepted_types for t, c in CONNECTORS.items()} == CONNECTOR_ID_TYPES


# -- what the file declares unserved on purpose (review s18 operator, M1) ---------------------


def _file(tmp_path: Path, **top: Any) -> Path:
    path = tmp_path / "systems.json"
    path.write_text(json.dumps({"systems": [_system()], **top}))
    return path


def test_a_file_may_declare_unserved_purposes_and_identifier_types_with_a_reason(
    tmp_path: Path,
) -> None:
    declared = {
        "unserved_purposes": {"limit_sensitive": "we process no sensitive data"},
        "unserved_identifier_types": {"device_id": "no system keys on our cookie"},
    }
    path = _file(tmp_path, **declared)
    config = load_systems(path, environ={})
    assert config.unserved_purposes == {"limit_sensitive": "we process no sensitive data"}
    assert config.unserved_identifier_types == {"device_id": "no system keys on our cookie"}
    # the plain reader and the models read it alike
    assert SystemsModel.model_validate(json.loads(path.read_text())).config() == config
    assert read_plain(json.loads(path.read_text()), {}) == config


def test_a_file_without_the_declarations_reads_as_before(tmp_path: Path) -> None:
    config = load_systems(_file(tmp_path), environ={})
    assert config.unserved_purposes == {} and config.unserved_identifier_types == {}


@pytest.mark.parametrize(
    "top",
    [
        {"unserved_purposes": {"marketing": "not a purpose"}},
        {"unserved_purposes": {"profiling": ""}},  # a reason is required
        {"unserved_purposes": ["profiling"]},
        {"unserved_identifier_types": {"ssn": "not a type"}},
        {"unserved_systems": {}},
    ],
)
def test_a_malformed_declaration_is_refused_at_load(tmp_path: Path, top: dict[str, Any]) -> None:
    with pytest.raises(SystemsConfigError):
        load_systems(_file(tmp_path, **top), environ={})


def test_every_connector_has_its_hashing_named_and_only_the_webhook_reads_the_field() -> None:
    # make template refuses a `hashing` other than this table's (review s18 operator, L4)
    assert set(CONNECTOR_HASHING) == set(CONNECTORS)
    assert [t for t, form in CONNECTOR_HASHING.items() if form is None] == ["webhook"]
    connectors = ROOT / "layers" / "common" / "python" / "optout" / "connectors"
    readers = sorted(f.name for f in connectors.glob("*.py") if "system.hashing" in f.read_text())
    assert readers == ["webhook.py"]


@pytest.mark.parametrize("kind", [["braze"], {"name": "braze"}, 7])
def test_a_type_of_the_wrong_kind_is_refused_in_one_line_not_a_traceback(
    kind: object, tmp_path: Path
) -> None:
    # review s18 diff A4: the hashing default looked the type up before it was checked
    raw = {"name": "crm", "type": kind, "identifier_types": ["email"], "purposes": ["sale"]}
    path = tmp_path / "systems.json"
    path.write_text(json.dumps({"systems": [raw]}))
    with pytest.raises(SystemsConfigError, match="type"):
        load_systems(path)


def _recompute_command() -> str:
    """The shell function docs/operations.md gives operators to recompute a fingerprint."""
    text = (ROOT / "docs" / "operations.md").read_text(encoding="utf-8")
    (line,) = [ln for ln in text.splitlines() if ln.startswith("fp() { python3 -c")]
    return line


def test_the_fingerprint_is_the_files_canonical_form_as_operations_md_recomputes_it(
    tmp_path: Path,
) -> None:
    # Given the shipped file, and a copy with another indentation and key order
    data = json.loads(SYSTEMS_JSON.read_text(encoding="utf-8"))
    shuffled = tmp_path / "shuffled.json"
    shuffled.write_text(json.dumps({k: data[k] for k in reversed(list(data))}, indent=4))
    changed = tmp_path / "changed.json"
    changed.write_text(json.dumps({**data, "systems": data["systems"][1:]}))
    # When each is loaded, and recomputed by the documented command
    found = {p.name: load_systems(p).fingerprint for p in (SYSTEMS_JSON, shuffled, changed)}
    command = f"{_recompute_command()}\nfp '{SYSTEMS_JSON}'"
    recomputed = subprocess.run(["bash", "-c", command], capture_output=True, text=True,
                                check=True).stdout.strip()  # fmt: skip
    # Then layout does not change it, a value does, and the operator's command agrees
    assert re.fullmatch(r"[0-9a-f]{16}", found["systems.json"])
    assert found["shuffled.json"] == found["systems.json"] == recomputed
    assert found["changed.json"] != found["systems.json"]


def test_a_file_the_models_read_has_its_fingerprint_too(tmp_path: Path) -> None:
    # Given a file the plain reader leaves to the models (an int rate beyond 2**53)
    path = tmp_path / "models.json"
    path.write_text(json.dumps({"systems": [_system(rate_limit_per_second=2**60)]}))
    assert read_plain(json.loads(path.read_text()), {}) is None
    # Then it is loaded with the same fingerprint rule
    assert load_systems(path).fingerprint == fingerprint(json.loads(path.read_text()))
