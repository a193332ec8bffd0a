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


def test_a_system_the_committed_template_lacks_gets_its_queue_worker_and_iam_lines(
    tmp_path: Path,
) -> None:
    options = {"base_url": f"{URL}/_sandbox/salesforce_crm", "api_version": "v66.0"}
    credentials = "optout-bridge/systems/salesforce_crm"
    path = written(tmp_path, {"name": "salesforce_crm", "credentials": credentials,
                              "options": options | {"person_accounts": True}})  # fmt: skip
    secrets = SECRETS | {"optout-bridge/systems/salesforce_crm": {}}

    deployed = plan(TEMPLATE, path, ENV, secrets, URL)

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
