"""local.deployment.plan: the template and systems the local stack deploys for a systems file,
or one line naming the system it could not serve (review s14 operator, finding 2)."""

import json
from pathlib import Path
from typing import Any

import pytest

from local.deployment import StackConfigError, plan
from local.iam import TEMPLATE

ROOT = Path(__file__).resolve().parents[3]
URL = "http://127.0.0.1:3000"
ENV = {"LOCAL_STACK_URL": URL, "OPTOUT_LOCAL_MODE": "true"}
SECRETS: dict[str, Any] = json.loads((ROOT / "local" / "secrets.json").read_text())


def written(tmp_path: Path, edit: dict[str, Any]) -> Path:
    """local/systems.json with salesforce's entry updated by `edit`."""
    config = json.loads((ROOT / "local" / "systems.json").read_text())
    for system in config["systems"]:
        if system["name"] == "salesforce":
            system.update(edit)
    path = tmp_path / "systems.json"
    path.write_text(json.dumps(config))
    return path


@pytest.fixture(autouse=True)
def _environ(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in ENV.items():  # gen_template reads the file with os.environ
        monkeypatch.setenv(name, value)


def with_limits_row(tmp_path: Path, key: str, concurrency: int = 2) -> Path:
    """template.yaml with a SystemLimits row for `key`, as an operator adds one for a new
    system before `make template`."""
    text = TEMPLATE.read_text(encoding="utf-8")
    anchor = "  SystemLimits:\n"
    assert anchor in text
    path = tmp_path / "template.yaml"
    path.write_text(text.replace(anchor, f"{anchor}    {key}: {{MaxConcurrency: {concurrency}}}\n"))
    return path


def test_a_system_the_committed_template_lacks_gets_its_queue_worker_and_iam_lines(
    tmp_path: Path,
) -> None:
    options = {"base_url": f"{URL}/_sandbox/salesforce_crm", "api_version": "v66.0"}
    credentials = "optout-bridge/systems/salesforce_crm"
    path = written(tmp_path, {"name": "salesforce_crm", "credentials": credentials,
                              "options": options | {"person_accounts": True}})  # fmt: skip
    secrets = SECRETS | {"optout-bridge/systems/salesforce_crm": {}}

    deployed = plan(with_limits_row(tmp_path, "salesforcecrm"), path, ENV, secrets, URL)

    resources = deployed.template["Resources"]
    assert {"salesforcecrmJobsQueue", "salesforcecrmWorker"} <= set(resources)
    assert "salesforceJobsQueue" not in resources
    # the resolver's role may send to the new queue (the line the committed template lacks)
    assert "salesforcecrmJobsQueue" in json.dumps(resources["ResolverFunctionRole"])
    assert deployed.queue_keys["salesforce_crm"] == "salesforcecrm"


@pytest.mark.parametrize(
    ("edit", "says"),
    [
        # credentials not named after the system: `make template` refuses it too
        ({"name": "salesforce_crm"}, "salesforce_crm: credentials must be named"),
        # the new name's credentials absent from the local secrets file
        ({"name": "salesforce_crm", "credentials": "optout-bridge/systems/salesforce_crm"},
         "system salesforce_crm: the local secrets file has no entry"),
        # a sandbox URL no system of this file provides
        ({"options": {"base_url": f"{URL}/_sandbox/salesforce_crm", "api_version": "v66.0",
                      "person_accounts": True}},
         "system salesforce: its options point at /_sandbox/salesforce_crm"),
    ],
)  # fmt: skip
def test_a_system_the_stack_cannot_serve_is_refused_by_name(
    tmp_path: Path, edit: dict[str, Any], says: str
) -> None:
    with pytest.raises(StackConfigError, match=says):
        plan(TEMPLATE, written(tmp_path, edit), ENV, SECRETS, URL)


# -- the same checks as `make template` (review s18 operator, L5) ------------------------------

NEW_SYSTEM = {
    "name": "salesforce_crm",
    "credentials": "optout-bridge/systems/salesforce_crm",
    "options": {"base_url": f"{URL}/_sandbox/salesforce_crm", "api_version": "v66.0",
                "person_accounts": True},
}  # fmt: skip
NEW_SECRETS = SECRETS | {"optout-bridge/systems/salesforce_crm": {}}


def test_a_new_system_without_a_system_limits_row_is_refused_as_make_template_does(
    tmp_path: Path,
) -> None:
    with pytest.raises(
        StackConfigError, match=r"salesforce_crm: template\.yaml's SystemLimits has no"
    ):
        plan(TEMPLATE, written(tmp_path, NEW_SYSTEM), ENV, NEW_SECRETS, URL)


@pytest.mark.parametrize(
    ("edit", "says"),
    [
        # a pace too slow to start one batch in the worker's timeout
        ({"rate_limit_per_second": 0.01}, "salesforce: rate_limit_per_second 0.01 over"),
        # a hashing its connector does not apply (clear values would still go out)
        ({"hashing": "sha256"}, "system salesforce: hashing 'sha256' is not what its"),
    ],
)  # fmt: skip
def test_a_file_make_template_refuses_is_refused_by_the_local_stack(
    tmp_path: Path, edit: dict[str, Any], says: str
) -> None:
    with pytest.raises(StackConfigError, match=says):
        plan(TEMPLATE, written(tmp_path, edit), ENV, SECRETS, URL)


def test_a_max_concurrency_sqs_would_refuse_is_refused_locally(tmp_path: Path) -> None:
    template = with_limits_row(tmp_path, "salesforcecrm", concurrency=1)
    with pytest.raises(StackConfigError, match=r"salesforcecrm MaxConcurrency is 1; .* 2 to 1000"):
        plan(template, written(tmp_path, NEW_SYSTEM), ENV, NEW_SECRETS, URL)


def unserving(tmp_path: Path, declared: dict[str, Any]) -> Path:
    """local/systems.json with limit_sensitive dropped from every system, plus `declared`."""
    config = json.loads((ROOT / "local" / "systems.json").read_text())
    for system in config["systems"]:
        if "limit_sensitive" in system["purposes"]:
            system["purposes"].remove("limit_sensitive")
            system["options"].get("categories", {}).pop("limit_sensitive", None)
    path = tmp_path / "systems.json"
    path.write_text(json.dumps(config | declared))
    return path


def test_a_purpose_no_system_serves_is_refused_unless_declared(tmp_path: Path) -> None:
    with pytest.raises(StackConfigError, match="no system serves the purpose limit_sensitive"):
        plan(TEMPLATE, unserving(tmp_path, {}), ENV, SECRETS, URL)

    declared = {"unserved_purposes": {"limit_sensitive": "no sensitive data"}}
    deployed = plan(TEMPLATE, unserving(tmp_path, declared), ENV, SECRETS, URL)
    assert "limit_sensitive" not in {p for s in deployed.systems for p in s.purposes}


def test_the_shipped_local_file_is_planned() -> None:
    deployed = plan(TEMPLATE, ROOT / "local" / "systems.json", ENV, SECRETS, URL)
    assert "webhook" in deployed.names
