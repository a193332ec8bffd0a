"""Before `make deploy`: does the account leave room for the stack's reserved concurrency?

Lambda refuses a reservation that would leave the account's unreserved concurrency under 100
(https://docs.aws.amazon.com/lambda/latest/dg/configuration-concurrency.html: "You can reserve
up to the Unreserved account concurrency value that is shown, minus 100", checked 2026-12-03).
A new account often has a limit of 10. On a first deploy that refusal comes after the table,
its key and the secrets exist, so the stack rolls back and leaves them behind
(docs/deploy.md, "A first deploy that failed"; review s30 deploy F1).

    python scripts/check_concurrency.py [sam deploy's arguments, as `make deploy` passes ARGS]

It reads the template's ReservedConcurrentExecutions (CaptureReservedConcurrency, the watch's
1), with the parameter values `sam deploy` would use (ARGS' --parameter-overrides, else
samconfig.toml's, else the template's defaults). It asks the AWS CLI for the account's
UnreservedConcurrentExecutions and for what this stack's functions reserve already (an
upgrade gives those back). Exit 1 with a message naming both ways out when the deploy would
leave fewer than 100; `make deploy SKIP_CONCURRENCY_CHECK=1` skips it.
"""

import json
import shlex
import subprocess
import sys
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT)]

from local.cfn_yaml import load_template  # noqa: E402 - after the repository path

TEMPLATE = ROOT / "template.yaml"
SAMCONFIG = ROOT / "samconfig.toml"
UNRESERVED_MINIMUM = 100  # Lambda's floor for the functions that reserve nothing
PARAMETER = "CaptureReservedConcurrency"
SKIP = "SKIP_CONCURRENCY_CHECK=1"


class Refusal(Exception):
    """The deploy should not go ahead; the message says why and what to do."""


def deploy_options(argv: Sequence[str], samconfig: Path = SAMCONFIG) -> dict[str, Any]:
    """What `sam deploy` would read from these arguments and samconfig.toml: parameter
    overrides (the command line's list replaces samconfig.toml's as a whole), stack name,
    region and profile (None: the environment's)."""
    given: dict[str, list[str]] = {}
    option = None
    for word in argv:
        if word.startswith("--"):
            option, _, value = word[2:].partition("=")
            given[option] = [value] if value else []
        elif option is not None:
            given[option].append(word)
    env = (given.get("config-env") or ["default"])[0]
    config = tomllib.loads(samconfig.read_text(encoding="utf-8")) if samconfig.exists() else {}
    section = config.get(env, {})
    saved = section.get("global", {}).get("parameters", {}) | section.get("deploy", {}).get(
        "parameters", {}
    )

    def one(name: str) -> str | None:
        if given.get(name):
            return given[name][0]
        value = saved.get(name.replace("-", "_"))
        return str(value) if value else None

    if "parameter-overrides" in given:
        overrides = parse_overrides(given["parameter-overrides"])
    else:
        overrides = parse_overrides([str(saved.get("parameter_overrides", ""))])
    return {
        "overrides": overrides,
        "stack_name": one("stack-name"),
        "region": one("region"),
        "profile": one("profile"),
    }


def parse_overrides(words: Sequence[str]) -> dict[str, str]:
    """Key=Value words (or ParameterKey=K,ParameterValue=V), as SAM CLI takes them."""
    found: dict[str, str] = {}
    for word in (w for chunk in words for w in shlex.split(chunk)):
        if word.startswith("file://"):
            raise Refusal(
                f"parameter overrides from a file ({word}) are not read by this check: "
                f"pass {PARAMETER} on the command line, or skip the check with {SKIP}"
            )
        if word.startswith("ParameterKey="):
            key, _, value = word.partition(",")
            found[key.partition("=")[2]] = value.partition("=")[2]
        else:
            key, _, value = word.partition("=")
            found[key] = value
    return found


def reservations(template: Mapping[str, Any], overrides: Mapping[str, str]) -> dict[str, int]:
    """Each function's ReservedConcurrentExecutions, by logical id, parameters resolved."""
    parameters = template.get("Parameters", {})
    found: dict[str, int] = {}
    for logical, resource in template["Resources"].items():
        value = resource.get("Properties", {}).get("ReservedConcurrentExecutions")
        if value is None:
            continue
        if isinstance(value, dict):
            name = value["Ref"]
            value = overrides.get(name, parameters[name].get("Default"))
        found[logical] = int(value)
    return found


def shortfall(unreserved: int, current: Mapping[str, int], wanted: Mapping[str, int]) -> int:
    """How far below Lambda's 100 the deploy would take the account's unreserved
    concurrency (0: room enough). What this stack reserves now comes back to it."""
    left = unreserved + sum(current.values()) - sum(wanted.values())
    return max(0, UNRESERVED_MINIMUM - left)


def refusal(
    unreserved: int, limit: int | None, current: Mapping[str, int], wanted: Mapping[str, int]
) -> str | None:
    """The message refusing the deploy, or None when it fits."""
    short = shortfall(unreserved, current, wanted)
    if not short:
        return None
    capture = wanted.get("CaptureFunction", 0)
    others = sum(wanted.values()) - capture
    lowest = capture - short  # the most the capture function may reserve at this limit
    total = sum(wanted.values())
    held = f" ({sum(current.values())} of them already this stack's)" if current else ""
    lower = (
        f"deploy with {PARAMETER}={lowest} or less (ARGS='--parameter-overrides ... "
        f"{PARAMETER}={lowest}': the list replaces samconfig.toml's)"
        if lowest >= 1
        else f"a lower {PARAMETER} is not enough here (at least 1)"
    )
    quota = f" to at least {limit + short}" if limit is not None else f" by at least {short}"
    return (
        f"make deploy: this stack reserves {total} concurrent executions ({PARAMETER} "
        f"{capture} and {others} for the other functions); the account has {unreserved} "
        f"unreserved in this region{held}, and Lambda keeps {UNRESERVED_MINIMUM} unreserved, "
        f"so CloudFormation would roll the deploy back after creating the table, key and "
        f'secrets (docs/deploy.md, "A first deploy that failed"). Either ask AWS for more: '
        f'Service Quotas, AWS Lambda, "Concurrent executions"{quota}; or {lower}. '
        f"{SKIP} skips this check."
    )


def aws(args: Sequence[str], options: Mapping[str, Any]) -> Any:
    """One AWS CLI call's JSON answer; Refusal with its error when it fails."""
    command = ["aws", *args, "--output", "json"]
    for name in ("region", "profile"):
        if options.get(name):
            command += [f"--{name}", options[name]]
    try:
        done = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603 - the operator's own aws CLI
    except FileNotFoundError:
        raise Refusal(
            "make deploy checks the account's Lambda concurrency with the AWS CLI, and `aws` "
            f"is not on PATH: install it, or skip the check with {SKIP}"
        ) from None
    if done.returncode != 0:
        failed = done.stderr.strip() or f"exited {done.returncode}"
        raise Refusal(f"aws {' '.join(args)}: {failed} ({SKIP} skips this check)")
    return json.loads(done.stdout or "{}")


def current_reservations(options: Mapping[str, Any], logical_ids: Sequence[str]) -> dict[str, int]:
    """What this stack's functions reserve now (empty for a stack not created yet)."""
    if not options.get("stack_name"):
        return {}
    try:
        listed = aws(
            ["cloudformation", "describe-stack-resources", "--stack-name", options["stack_name"]],
            options,
        )
    except Refusal as error:
        if "does not exist" in str(error):
            return {}
        raise
    found: dict[str, int] = {}
    for resource in listed.get("StackResources", []):
        logical, physical = resource.get("LogicalResourceId"), resource.get("PhysicalResourceId")
        if logical not in logical_ids or not physical:
            continue
        try:
            answer = aws(
                ["lambda", "get-function-concurrency", "--function-name", physical], options
            )
        except Refusal as error:
            if "ResourceNotFoundException" in str(error):  # a rolled-back stack's function
                continue
            raise
        found[logical] = int(answer.get("ReservedConcurrentExecutions", 0))
    return found


def main(argv: Sequence[str] | None = None) -> int:
    try:
        options = deploy_options(list(sys.argv[1:] if argv is None else argv))
        wanted = reservations(load_template(TEMPLATE), options["overrides"])
        settings = aws(["lambda", "get-account-settings"], options)
        limits = settings.get("AccountLimit", {})
        current = current_reservations(options, list(wanted))
        message = refusal(
            int(limits["UnreservedConcurrentExecutions"]),
            limits.get("ConcurrentExecutions"),
            current,
            wanted,
        )
    except Refusal as error:
        print(f"make deploy: concurrency check: {error}", file=sys.stderr)
        return 1
    if message:
        print(message, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
