"""`make deploy` first asks whether the account leaves Lambda's 100 unreserved executions beside
the stack's reservations (scripts/check_concurrency.py; review s30 deploy F1): short of them a
first deploy rolls back after the table, key and secrets exist. No AWS here: a fake `aws` on
PATH answers from files the test writes."""

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "check_concurrency.py"

FAKE_AWS = """#!{python}
import json, pathlib, sys
here = pathlib.Path(__file__).parent
with open(here / "calls.log", "a") as log:
    log.write(" ".join(sys.argv[1:]) + "\\n")
command = " ".join(sys.argv[1:3])
answer = here / (command.replace(" ", "_") + ".json")
if not answer.exists():
    sys.stderr.write("An error occurred (ValidationError): Stack with id x does not exist\\n")
    sys.exit(254)
data = json.loads(answer.read_text())
if "--function-name" in sys.argv:  # one answer per function
    data = data[sys.argv[sys.argv.index("--function-name") + 1]]
sys.stdout.write(json.dumps(data))
"""


def _fake_aws(tmp_path: Path, answers: dict[str, Any]) -> dict[str, str]:
    """A PATH whose `aws` answers each 'service command' from `answers`; the rest fail as an
    absent stack does."""
    aws = tmp_path / "aws"
    aws.write_text(FAKE_AWS.format(python=sys.executable), encoding="utf-8")
    aws.chmod(0o755)
    for command, answer in answers.items():
        (tmp_path / f"{command.replace(' ', '_')}.json").write_text(json.dumps(answer))
    return {**os.environ, "PATH": f"{tmp_path}{os.pathsep}{os.environ['PATH']}"}


def _settings(unreserved: int, limit: int) -> dict[str, Any]:
    return {
        "AccountLimit": {
            "ConcurrentExecutions": limit,
            "UnreservedConcurrentExecutions": unreserved,
        }
    }


def _check(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


def test_a_new_account_of_10_is_refused_naming_the_quota_it_needs(tmp_path: Path) -> None:
    env = _fake_aws(tmp_path, {"lambda get-account-settings": _settings(10, 10)})
    done = _check(env)
    assert done.returncode == 1, done.stderr
    # 50 (the default) + the watch's 1 + Lambda's 100: a limit of 151.
    assert 'Service Quotas, AWS Lambda, "Concurrent executions" to at least 151' in done.stderr
    assert "a lower CaptureReservedConcurrency is not enough here" in done.stderr
    assert "A first deploy that failed" in done.stderr
    assert "SKIP_CONCURRENCY_CHECK=1" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_lower_reservation_is_offered_when_it_fits(tmp_path: Path) -> None:
    env = _fake_aws(tmp_path, {"lambda get-account-settings": _settings(130, 130)})
    done = _check(env)
    assert done.returncode == 1, done.stderr
    # 130 - 100 - the watch's 1 = 29 for the capture function.
    assert "deploy with CaptureReservedConcurrency=29 or less" in done.stderr
    assert "to at least 151" in done.stderr


def test_the_overrides_sam_deploy_would_use_are_the_ones_checked(tmp_path: Path) -> None:
    env = _fake_aws(tmp_path, {"lambda get-account-settings": _settings(130, 130)})
    # The command line's list replaces samconfig.toml's, as in sam deploy.
    fits = _check(
        env,
        "--region",
        "eu-west-1",
        "--parameter-overrides",
        "Stage=prod",
        "CaptureReservedConcurrency=29",
        "--no-confirm-changeset",
    )
    assert fits.returncode == 0, fits.stderr
    calls = (tmp_path / "calls.log").read_text()
    assert "lambda get-account-settings --output json --region eu-west-1" in calls
    too_many = _check(env, "--parameter-overrides", "CaptureReservedConcurrency=30")
    assert too_many.returncode == 1
    assert "CaptureReservedConcurrency=29 or less" in too_many.stderr


def test_an_upgrade_counts_what_the_stack_reserves_already(tmp_path: Path) -> None:
    # An account of 151: the stack's 50 + 1 are reserved and 100 are left, so the same
    # reservation fits; raising CaptureReservedConcurrency by one does not.
    answers = {
        "lambda get-account-settings": _settings(100, 151),
        "cloudformation describe-stack-resources": {
            "StackResources": [
                {"LogicalResourceId": "CaptureFunction", "PhysicalResourceId": "stack-Capture"},
                {"LogicalResourceId": "WatchFunction", "PhysicalResourceId": "stack-Watch"},
                {"LogicalResourceId": "OptOutTable", "PhysicalResourceId": "stack-table"},
            ]
        },
        "lambda get-function-concurrency": {
            "stack-Capture": {"ReservedConcurrentExecutions": 50},
            "stack-Watch": {"ReservedConcurrentExecutions": 1},
        },
    }
    env = _fake_aws(tmp_path, answers)
    assert _check(env).returncode == 0
    calls = (tmp_path / "calls.log").read_text()
    assert "describe-stack-resources --stack-name optout-bridge" in calls  # samconfig.toml's
    more = _check(env, "--parameter-overrides", "CaptureReservedConcurrency=51")
    assert more.returncode == 1
    assert "(51 of them already this stack's)" in more.stderr
    assert "CaptureReservedConcurrency=50 or less" in more.stderr


def test_no_aws_cli_is_a_refusal_naming_the_skip(tmp_path: Path) -> None:
    env = {**os.environ, "PATH": str(tmp_path)}
    done = _check(env)
    assert done.returncode == 1
    assert "`aws` is not on PATH" in done.stderr and "SKIP_CONCURRENCY_CHECK=1" in done.stderr


def _dry_run(*args: str) -> list[str]:
    done = subprocess.run(
        ["make", "-n", *args], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return done.stdout.splitlines()


@pytest.mark.parametrize("skip", [False, True])
def test_make_deploy_runs_the_check_before_sam_deploy_unless_skipped(skip: bool) -> None:
    args = ["deploy", "ARGS=--region eu-west-1"] + (["SKIP_CONCURRENCY_CHECK=1"] * skip)
    lines = _dry_run(*args)
    deploy = next(n for n, line in enumerate(lines) if "sam deploy" in line)
    checks = [n for n, line in enumerate(lines) if "scripts/check_concurrency.py" in line]
    if skip:
        assert checks == []
    else:
        assert checks and checks[0] < deploy
        assert lines[checks[0]].endswith("check_concurrency.py --region eu-west-1")


def test_a_failing_aws_call_is_a_refusal_naming_the_call_and_the_skip(tmp_path: Path) -> None:
    env = _fake_aws(tmp_path, {})  # every call fails (no credentials, say)
    done = _check(env)
    assert done.returncode == 1
    assert "aws lambda get-account-settings: An error occurred" in done.stderr
    assert "SKIP_CONCURRENCY_CHECK=1 skips this check" in done.stderr
    assert "Traceback" not in done.stderr
