"""What `make template` (scripts/gen_template.py) refuses before a deploy, and how `make build`
and `make deploy` run it (review s18 operator: M1, M5, L1-L4). Each refusal is exit 2 and one
line naming the system or the purpose, no traceback."""

import copy
import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from optout.systems import PLACEHOLDER, load_systems
from scripts import gen_template
from tests.support import sam

PRODUCTION: dict[str, Any] = json.loads(gen_template.SYSTEMS.read_text(encoding="utf-8"))
LOCAL = sam.ROOT / "local" / "systems.json"
LOCAL_ENV = {"LOCAL_STACK_URL": "http://127.0.0.1:3000", "OPTOUT_LOCAL_MODE": "true"}

Edit = Callable[[dict[str, Any]], None]


def _system(config: dict[str, Any], name: str) -> dict[str, Any]:
    (found,) = [s for s in config["systems"] if s["name"] == name]
    return found


def _edited(tmp_path: Path, edit: Edit, base: dict[str, Any] = PRODUCTION) -> Path:
    config = copy.deepcopy(base)
    edit(config)
    path = tmp_path / "systems.json"
    path.write_text(json.dumps(config), encoding="utf-8")
    return path


def _refusal(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    """make template --check's one line of refusal (asserting exit 2 and no traceback)."""
    code = gen_template.main(["--check", *argv])
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("make template: ") and err.count("\n") == 1, err
    assert "Traceback" not in err
    return err


def _passes(capsys: pytest.CaptureFixture[str], *argv: str) -> None:
    """Not refused: exit 0, or 1 when only the committed template is stale for this file."""
    code = gen_template.main(["--check", *argv])
    err = capsys.readouterr().err
    assert code in (0, 1), err
    refusals = [e for e in err.splitlines() if not e.startswith("make template: warning:")]
    assert refusals == ([] if code == 0 else ["out of date: template.yaml; run `make template`"])


def _without_purpose(purpose: str) -> Edit:
    def edit(config: dict[str, Any]) -> None:
        for system in config["systems"]:
            if purpose in system["purposes"]:
                system["purposes"].remove(purpose)
                system.get("options", {}).get("categories", {}).pop(purpose, None)

    return edit


def _without_webhook(config: dict[str, Any]) -> None:  # the only device_id system
    config["systems"] = [s for s in config["systems"] if s["name"] != "webhook"]


def _filled(value: Any) -> Any:
    """The production example with its placeholders edited, as an operator does."""
    if isinstance(value, dict):
        return {k: _filled(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_filled(v) for v in value]
    return value.replace(PLACEHOLDER, "acme") if isinstance(value, str) else value


# -- M1: a purpose or identifier type no system serves -----------------------------------------


@pytest.mark.parametrize("purpose", ["limit_sensitive", "profiling"])
def test_a_purpose_no_system_serves_is_refused_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], purpose: str
) -> None:
    # Given the production file with no system left serving the purpose (an opt-out of it
    # alone would make no job and read `completed`, systems_total 0)
    path = _edited(tmp_path, _without_purpose(purpose))
    # Then make template refuses it, naming the purpose and the way to declare it
    err = _refusal(capsys, "--systems", str(path))
    assert f"no system serves the purpose {purpose}:" in err
    assert f'"unserved_purposes": {{"{purpose}": ' in err


def test_an_identifier_type_no_system_takes_is_refused_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _edited(tmp_path, _without_webhook)
    err = _refusal(capsys, "--systems", str(path))
    assert "no system serves the identifier type device_id:" in err
    assert '"unserved_identifier_types"' in err


def test_a_purpose_or_type_declared_unserved_with_a_reason_passes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def edit(config: dict[str, Any]) -> None:
        _without_purpose("limit_sensitive")(config)
        _without_webhook(config)
        config["unserved_purposes"] = {"limit_sensitive": "no sensitive data is processed"}
        config["unserved_identifier_types"] = {"device_id": "no system keys on our cookie"}

    _passes(capsys, "--systems", str(_edited(tmp_path, edit)))


def test_a_declaration_of_a_purpose_a_system_serves_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def edit(config: dict[str, Any]) -> None:
        config["unserved_purposes"] = {"limit_sensitive": "stale note"}

    err = _refusal(capsys, "--systems", str(_edited(tmp_path, edit)))
    assert (
        "unserved_purposes names the purpose limit_sensitive, which webhook, segment serve" in err
    )


@pytest.mark.parametrize(("path", "env"), [(gen_template.SYSTEMS, {}), (LOCAL, LOCAL_ENV)])
def test_both_shipped_files_serve_every_purpose_and_identifier_type(
    path: Path, env: dict[str, str]
) -> None:
    gen_template.check_coverage(load_systems(path, env))  # raises ValueError naming one


# -- L2: ${VAR} in the production file ---------------------------------------------------------


def test_a_variable_in_the_production_file_is_refused_even_when_the_shell_sets_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a production file reading braze's instance from the operator's shell, which has it
    monkeypatch.setenv("BRAZE_INSTANCE", "rest.iad-01")
    path = _edited(
        tmp_path,
        lambda c: _system(c, "braze")["options"].update(
            base_url="https://${BRAZE_INSTANCE}.braze.com"
        ),
    )
    # Then make template refuses it: Lambda has no such variable, every invocation would fail
    err = _refusal(capsys, "--systems", str(path))
    assert "system braze: options.base_url uses an environment variable" in err
    assert "rest.iad-01" not in err


def test_make_template_reads_the_file_outside_local_mode_whatever_the_shell_says(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given an operator's shell left in local mode, and a loopback http URL in the file
    monkeypatch.setenv("OPTOUT_LOCAL_MODE", "true")
    path = _edited(
        tmp_path,
        lambda c: _system(c, "webhook")["options"].update(base_url="http://127.0.0.1:9001/x"),
    )
    # Then it is refused, as the deployed functions would refuse it
    assert "options.base_url must be an https URL" in _refusal(capsys, "--systems", str(path))


# -- L3: MaxConcurrency outside 2..1000 --------------------------------------------------------


@pytest.mark.parametrize("concurrency", [-1, 0, 1, 1001])
def test_a_max_concurrency_sqs_would_refuse_is_refused(concurrency: int) -> None:
    template = sam.load()
    template["Mappings"]["SystemLimits"]["meta"]["MaxConcurrency"] = concurrency
    systems = load_systems(gen_template.SYSTEMS, {}).systems
    with pytest.raises(
        ValueError,
        match=rf"meta: .*SystemLimits meta MaxConcurrency is {concurrency}; .* 2 to 1000",
    ):
        gen_template.check_pace(template, systems)


@pytest.mark.parametrize("concurrency", [2, 1000])
def test_the_bounds_of_max_concurrency_pass(concurrency: int) -> None:
    template = sam.load()
    template["Mappings"]["SystemLimits"]["webhook"]["MaxConcurrency"] = concurrency
    webhook = load_systems(gen_template.SYSTEMS, {}).get("webhook")
    assert gen_template._worker_limits(template, webhook)[0] == concurrency


# -- L4: a hashing the connector does not apply ------------------------------------------------


@pytest.mark.parametrize(
    ("name", "hashing", "sent"),
    [
        ("braze", "sha256", "none"),  # braze, salesforce, segment send clear values regardless
        ("salesforce", "sha256", "none"),
        ("segment", "sha256", "none"),
        ("meta", "none", "sha256"),  # the ad platforms hash regardless
        ("google_ads", "none", "sha256"),
        ("trade_desk", "none", "sha256"),
    ],
)
def test_a_hashing_the_connector_does_not_apply_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, hashing: str, sent: str
) -> None:
    path = _edited(tmp_path, lambda c: _system(c, name).update(hashing=hashing))
    err = _refusal(capsys, "--systems", str(path))
    assert f"system {name}: hashing '{hashing}' is not what its {name} connector sends" in err
    assert f'"hashing": "{sent}"' in err


@pytest.mark.parametrize("name", ["meta", "google_ads", "trade_desk", "braze"])
def test_a_hashing_left_out_reads_as_what_the_connector_does(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    # A file written before make template checked the field (no `hashing` on the ad
    # platforms) keeps passing: left out means the connector's own form, not `none`.
    path = _edited(tmp_path, lambda c: _system(c, name).pop("hashing", None))
    _passes(capsys, "--systems", str(path))


def test_the_webhook_may_send_either_form(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _edited(tmp_path, lambda c: _system(c, "webhook").update(hashing="none"))
    _passes(capsys, "--systems", str(path))


# -- L1: EDIT-ME placeholders at make deploy ---------------------------------------------------


def test_a_deploy_check_refuses_the_shipped_placeholders_naming_where(
    capsys: pytest.CaptureFixture[str],
) -> None:
    err = _refusal(capsys, "--deploy")
    assert "EDIT-ME placeholders left" in err and "braze: options.base_url" in err
    assert "ALLOW_EDIT_ME=1" in err


def test_a_deploy_check_allows_them_when_asked_and_passes_an_edited_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _passes(capsys, "--deploy", "--allow-edit-me")
    edited = tmp_path / "systems.json"
    edited.write_text(json.dumps(_filled(PRODUCTION)), encoding="utf-8")
    _passes(capsys, "--deploy", "--systems", str(edited))


# -- M5, L1: make build and make deploy run the check first ------------------------------------


def _dry_run(*args: str) -> list[str]:
    """The commands `make -n` would run, from the repository root."""
    done = subprocess.run(
        ["make", "-n", *args], cwd=sam.ROOT, capture_output=True, text=True, check=True
    )
    return done.stdout.splitlines()


def _index(lines: list[str], needle: str) -> int:
    return next(n for n, line in enumerate(lines) if needle in line)


def test_make_build_checks_the_template_before_sam_build() -> None:
    lines = _dry_run("build")
    assert _index(lines, "scripts/gen_template.py --check") < _index(lines, "sam build")


def test_make_deploy_checks_for_placeholders_before_building_and_deploying() -> None:
    lines = _dry_run("deploy")
    check = _index(lines, "scripts/gen_template.py --check --deploy")
    assert check < _index(lines, "sam build") < _index(lines, "sam deploy")
    assert "--allow-edit-me" not in lines[check]
    allowed = _dry_run("deploy", "ALLOW_EDIT_ME=1")
    assert "--allow-edit-me" in allowed[_index(allowed, "--check --deploy")]
