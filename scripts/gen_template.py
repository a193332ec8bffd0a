"""Write the per-system sections of template.yaml from the production systems config.

`make template` (or `python scripts/gen_template.py`) rewrites only what lies between
`# BEGIN generated: <section>` and `# END generated: <section>` lines; everything else in
template.yaml stays hand-written. It also writes edge-waf.yaml: template.yaml's EdgeWebAcl
alone, for stacks outside us-east-1 (a CLOUDFRONT WebACL exists only there). `--check` exits 1
when either committed file is out of date (a test runs the same check). One system's
resources are scripts/templates/system.yaml with `__KEY__` (queue key) and `__NAME__` (system
name) filled in.

Before writing, it refuses (exit 2, one line naming the system or purpose) a file the stack
could not run as meant (`check_config`, which the local stack's plan runs too): a purpose or
identifier type no system serves and the file does not declare unserved, a `hashing` its
connector does not apply, a MaxConcurrency outside SQS's 2..1000, a pace too slow for a batch.
For the production file it also refuses `${VAR}` (Lambda has none of the shell's variables)
and reads it as a deployed function would, outside local mode; `--deploy` (make deploy) also
refuses EDIT-ME placeholders unless `--allow-edit-me` (a demo stack).

Why a generator and not Fn::ForEach: `sam build` and `sam validate` of the current SAM CLI
cannot read a top-level Fn::ForEach (aws/aws-sam-cli#5647), and checkov cannot read a template
that needs AWS::LanguageExtensions. See docs/decisions.md.
"""

import argparse
import dataclasses
import json
import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "layers" / "common" / "python")]

from local.cfn_yaml import loads_template  # noqa: E402 - after the layer path
from optout.connectors import CONNECTORS  # noqa: E402
from optout.connectors.base import Connector, Job  # noqa: E402
from optout.connectors.credentials import fixed  # noqa: E402
from optout.connectors.errors import ConfigError  # noqa: E402
from optout.connectors.http import HttpClient, paced_start_seconds  # noqa: E402
from optout.delivery.settings import END_MARGIN_SECONDS  # noqa: E402
from optout.identifiers import ID_TYPES, Identifier, IdType  # noqa: E402
from optout.purposes import ALL_PURPOSES  # noqa: E402
from optout.systems import (  # noqa: E402
    CONNECTOR_HASHING,
    CONNECTOR_ID_TYPES,
    PLACEHOLDER,
    VARIABLE,
    SystemConfig,
    SystemsConfig,
    load_systems,
    placeholders,
)

TEMPLATE = ROOT / "template.yaml"
SYSTEMS = ROOT / "layers" / "common" / "config" / "systems.json"
SYSTEM_RESOURCES = ROOT / "scripts" / "templates" / "system.yaml"
EDGE_WAF = ROOT / "edge-waf.yaml"
WEB_ACL = "EdgeWebAcl"
SECRET_PREFIX = "optout-bridge/systems/"  # noqa: S105 - a name, not a secret
RESOURCES_SECTION = "per-system resources"
KEY_USERS_SECTION = "worker roles"
JOBS_QUEUES_SECTION = "jobs queues"  # the resolver's and the admin's sends
DLQS_SECTION = "dead-letter queues"  # the admin's redrive reads
# SQS event source ScalingConfig.MaximumConcurrency: AWS refuses the deploy outside it.
MIN_CONCURRENCY, MAX_CONCURRENCY = 2, 1000
# A prototype line only a system whose connector may answer "submitted" keeps: the worker then
# sends itself delayed status checks (its queue's sqs:SendMessage); no other worker sends.
ASYNC_ONLY = "# asynchronous connectors only"
_MARKER = re.compile(
    r"^(?P<indent> *)# (?P<edge>BEGIN|END) generated: (?P<name>[a-z -]+?)(?: \(.*\))?$"
)


def secret_name(system: SystemConfig) -> str:
    """The one naming rule for a system's credentials in Secrets Manager."""
    return f"{SECRET_PREFIX}{system.name}"


def system_block(system: SystemConfig, prototype: str) -> str:
    if system.credentials not in (None, secret_name(system)):
        raise ValueError(
            f"{system.name}: credentials must be named {secret_name(system)!r} "
            f"(got {system.credentials!r}); the workers' IAM policies follow that rule"
        )
    asynchronous = CONNECTORS[system.type].asynchronous
    body = [
        line
        for line in prototype.splitlines()
        if not line.startswith("#") and (asynchronous or ASYNC_ONLY not in line)
    ]
    text = "\n".join(body).strip("\n")
    return text.replace("__KEY__", system.queue_key).replace("__NAME__", system.name)


def check_options(system: SystemConfig) -> None:
    """The connector's own checks of a system's options (its configure()), which the config's
    schema cannot make: a Salesforce purpose no field maps, a Segment regulation type that
    suppresses nothing. Made here, so `make template` (and the build) refuses such a config,
    not only the first job after a deploy, which would retry until its dead-letter queue. An
    EDIT-ME placeholder still to replace is the deployed worker's to name (the shipped example
    has them), so each is filled with a stand-in for this check."""
    _connector(system)


def _connector(system: SystemConfig) -> Connector[Any]:
    options = _filled(system.options)
    try:
        return CONNECTORS[system.type](
            dataclasses.replace(system, options=options), fixed({}), HttpClient(1)
        )
    except ConfigError as error:
        raise ValueError(str(error)) from None


def check_config(template: dict[str, Any], config: SystemsConfig) -> None:
    """Every check of a systems file against the template it is deployed with, beyond what
    `sections` needs to render it: `make template` runs it, and so does the local stack's
    plan, so a file works locally if and only if it passes `make template`."""
    check_coverage(config)
    for system in config.systems:
        check_hashing(system)
    check_pace(template, config.systems)


def check_coverage(config: SystemsConfig) -> None:
    """Each purpose the capture takes is served by a system, and each identifier type it takes
    is taken by one, unless the file declares it unserved: an opt-out of nothing but unserved
    purposes (or identifiers) makes no job and reads `completed` with no system at once."""
    systems = config.systems
    by_purpose = {p: [s.name for s in systems if p in s.purposes] for p in ALL_PURPOSES}
    by_type = {t: [s.name for s in systems if s.accepts(t)] for t in ID_TYPES}
    _check_served("purpose", "unserved_purposes", by_purpose, config.unserved_purposes)
    _check_served(
        "identifier type", "unserved_identifier_types", by_type, config.unserved_identifier_types
    )


Word = TypeVar("Word", bound=str)  # a purpose or an identifier type


def _check_served(
    kind: str, field: str, servers: Mapping[Word, list[str]], declared: Mapping[Word, str]
) -> None:
    """ValueError naming a word no system serves and `declared` lacks, or one it names that a
    system serves (a stale declaration would hide the next gap)."""
    missing = [word for word, names in servers.items() if not names and word not in declared]
    if missing:
        raise ValueError(
            f"no system serves the {kind}{'s' * (len(missing) > 1)} {', '.join(missing)}: "
            "an opt-out of it would read completed with nothing sent; add it to a system, "
            f'or declare it in the file\'s top-level "{field}": {{"{missing[0]}": "<why>"}}'
        )
    for word in declared:
        if servers[word]:
            names = servers[word]
            raise ValueError(
                f"{field} names the {kind} {word}, which {', '.join(names)} "
                f"{'serves' if len(names) == 1 else 'serve'}: remove it from {field}"
            )


def check_hashing(system: SystemConfig) -> None:
    """A `hashing` the system's connector applies: only the webhook reads the field, so any
    other form on another connector would be a false promise (clear values still go out)."""
    fixed_form = CONNECTOR_HASHING[system.type]
    if fixed_form is not None and system.hashing != fixed_form:
        raise ValueError(
            f"system {system.name}: hashing {system.hashing!r} is not what its {system.type} "
            f"connector sends ({fixed_form!r}, whatever the file says); set "
            f'"hashing": "{fixed_form}"'
        )


def check_pace(template: dict[str, Any], systems: Sequence[SystemConfig]) -> None:
    """Each system's pace (rate_limit_per_second / MaxConcurrency a second per invocation) lets
    one full batch start its last vendor call with MIN_TRY_SECONDS left of the worker's
    timeout (less END_MARGIN_SECONDS). A slower pace would return every batch's last jobs to
    the queue, time after time, until their dead-letter queue."""
    for system in systems:
        concurrency, props, timeout = _worker_limits(template, system)
        batch = int(props["Events"]["Jobs"]["Properties"].get("BatchSize", 10))
        calls = _connector(system).calls_per_batch(batch)
        rate = system.rate_limit_per_second
        needed = paced_start_seconds(calls, rate, concurrency)
        if needed > timeout - END_MARGIN_SECONDS:
            raise ValueError(
                f"{system.name}: rate_limit_per_second {rate:g} over MaxConcurrency "
                f"{concurrency} paces a batch of {batch} jobs ({calls} vendor calls) over "
                f"{needed:.1f} s, more than its worker's timeout of {timeout:g} s allows "
                f"({END_MARGIN_SECONDS:g} s kept for the writes): raise the rate if the vendor "
                f"allows it, or lower MaxConcurrency (at least 2) in template.yaml's SystemLimits"
            )


def job_pace_warnings(template: dict[str, Any], systems: Sequence[SystemConfig]) -> list[str]:
    """One line per system whose pace cannot start one worst-case job's calls in its worker's
    timeout: a job of MaxClusterSize identifiers of one of the system's types (a Braze job
    makes a call per email of its cluster; a concurrent link can carry up to twice the cap).
    The worker fails such a job on its first receive (`cannot start within one invocation`):
    a warning, not a refusal, as most clusters are far smaller (docs/connectors.md, "Pace")."""
    cap = int(template["Parameters"]["MaxClusterSize"]["Default"])
    found: list[str] = []
    for system in systems:
        concurrency, _, timeout = _worker_limits(template, system)
        allowed = timeout - END_MARGIN_SECONDS
        connector = _connector(system)
        rate = system.rate_limit_per_second

        def fits(size: int) -> bool:
            calls = _worst_job_calls(connector, system, size)  # noqa: B023 - used in this pass
            return paced_start_seconds(calls, rate, concurrency) <= allowed  # noqa: B023

        if fits(cap):
            continue
        fitting = next((n for n in range(cap - 1, 0, -1) if fits(n)), 0)
        calls = _worst_job_calls(connector, system, cap)
        found.append(
            f"{system.name}: a job of MaxClusterSize {cap} identifiers makes up to {calls} "
            f"vendor calls, more than rate_limit_per_second {rate:g} over MaxConcurrency "
            f"{concurrency} starts in its worker's {allowed:g} s: such a job fails at once "
            f"(a job of {fitting} fits); raise the rate if the vendor allows it, or the "
            "worker's Timeout"
        )
    return found


def narrow_type_warnings(systems: Sequence[SystemConfig]) -> list[str]:
    """One line per system that leaves out identifier types its connector can send: a person
    known only by those is never sent to it (resolver: `no_identifier`), although the vendor
    could find them. A warning, as leaving one out can be meant (review s31 vendors V31-1:
    Braze took phones from session 31, and an existing file lists only customer_id and email)."""
    found: list[str] = []
    for system in systems:
        missing = [t for t in CONNECTOR_ID_TYPES[system.type] if not system.accepts(t)]
        if missing:
            found.append(
                f"{system.name}: its {system.type} connector can also send {', '.join(missing)}, "
                "which identifier_types leaves out: an opt-out known only by "
                f"{' or '.join(missing)} does not reach it; add {' and '.join(missing)} "
                "unless that is meant"
            )
    return found


def _worker_limits(
    template: dict[str, Any], system: SystemConfig
) -> tuple[int, dict[str, Any], float]:
    """A system's worker as the template declares it: its MaxConcurrency (SystemLimits), its
    properties and its timeout (its own, else Globals')."""
    limits = template.get("Mappings", {}).get("SystemLimits", {})
    key = system.queue_key
    if key not in limits:
        raise ValueError(f"{system.name}: template.yaml's SystemLimits has no {key} row")
    concurrency = int(limits[key]["MaxConcurrency"])
    if not MIN_CONCURRENCY <= concurrency <= MAX_CONCURRENCY:
        raise ValueError(
            f"{system.name}: template.yaml's SystemLimits {key} MaxConcurrency is {concurrency}; "
            f"its SQS event source takes {MIN_CONCURRENCY} to {MAX_CONCURRENCY} "
            "(ScalingConfig.MaximumConcurrency), so the deploy would fail"
        )
    default_timeout = template.get("Globals", {}).get("Function", {}).get("Timeout", 3)
    props: dict[str, Any] = template["Resources"][f"{key}Worker"]["Properties"]
    return concurrency, props, float(props.get("Timeout", default_timeout))


def _worst_job_calls(connector: Connector[Any], system: SystemConfig, size: int) -> int:
    """The most calls one job of `size` identifiers of one of the system's types makes."""
    types = [t for t in connector.accepted_types if system.accepts(t)]
    return max((connector.calls_per_job(_sized_job(t, size)) for t in types), default=0)


def _sized_job(id_type: IdType, size: int) -> Job:
    identifiers = tuple(Identifier(id_type, f"{id_type}-{n}") for n in range(size))
    return Job("job", "request", "system", ("sale",), identifiers)


def _filled(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _filled(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_filled(v) for v in value]
    return value.replace(PLACEHOLDER, "placeholder") if isinstance(value, str) else value


def sections(
    systems_path: Path = SYSTEMS, environ: Mapping[str, str] | None = None
) -> dict[str, list[str]]:
    """Section name -> its generated lines (without indentation). The file is read with
    `environ` (default os.environ)."""
    systems = load_systems(systems_path, environ).systems
    keys = [s.queue_key for s in systems]
    duplicates = sorted({k for k in keys if keys.count(k) > 1})
    if duplicates:
        raise ValueError(f"systems whose names differ only in punctuation: {duplicates}")
    for system in systems:
        check_options(system)
    prototype = SYSTEM_RESOURCES.read_text(encoding="utf-8")
    blocks = [system_block(s, prototype) for s in systems]
    return {
        RESOURCES_SECTION: "\n\n".join(blocks).splitlines(),
        KEY_USERS_SECTION: [f"- !GetAtt {s.queue_key}WorkerRole.Arn" for s in systems],
        JOBS_QUEUES_SECTION: [f"- !GetAtt {s.queue_key}JobsQueue.Arn" for s in systems],
        DLQS_SECTION: [f"- !GetAtt {s.queue_key}DeadLetterQueue.Arn" for s in systems],
    }


def render(template_text: str, generated: dict[str, list[str]]) -> str:
    """template_text with every generated section replaced, indentation kept from its BEGIN."""
    out: list[str] = []
    lines = template_text.splitlines()
    seen: set[str] = set()
    index = 0
    while index < len(lines):
        line = lines[index]
        found = _MARKER.match(line)
        out.append(line)
        index += 1
        if not found or found["edge"] != "BEGIN":
            continue
        name, indent = found["name"], found["indent"]
        if name not in generated:
            raise ValueError(f"template.yaml has an unknown generated section: {name!r}")
        while index < len(lines) and not _is_end(lines[index], name):
            index += 1
        if index == len(lines):
            raise ValueError(f"no '# END generated: {name}' in template.yaml")
        out += [f"{indent}{g}" if g else "" for g in generated[name]]
        seen.add(name)
    missing = set(generated) - seen
    if missing:
        raise ValueError(f"template.yaml lacks generated sections: {sorted(missing)}")
    return "\n".join(out) + "\n"


def _is_end(line: str, name: str) -> bool:
    found = _MARKER.match(line)
    return bool(found and found["edge"] == "END" and found["name"] == name)


def edge_waf(template: dict[str, Any]) -> str:
    """A stand-alone template of the edge's WebACL, with the parameters it reads."""
    acl = {k: v for k, v in template["Resources"][WEB_ACL].items() if k != "Condition"}
    used = set(re.findall(r"\{'Ref': '(\w+)'\}", repr(acl)))
    parameters = {k: v for k, v in template["Parameters"].items() if k in used}
    standalone = {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": (
            "optout-bridge edge WebACL, for a stack outside us-east-1: deploy this in us-east-1 "
            "and pass its WebAclArn output as the main stack's EdgeWebAclArn."
        ),
        "Parameters": parameters,
        "Resources": {WEB_ACL: acl},
        "Outputs": {"WebAclArn": {"Value": {"Fn::GetAtt": [WEB_ACL, "Arn"]}}},
    }
    header = "# Generated from template.yaml's EdgeWebAcl by scripts/gen_template.py: edit that.\n"
    return header + yaml.safe_dump(standalone, sort_keys=False, width=100)


# A deployed function's view of the file: no shell variables, not local mode.
PRODUCTION_ENVIRON: Mapping[str, str] = {}


def check_production(systems_path: Path, *, deploy: bool, allow_edit_me: bool) -> None:
    """What only the production file must hold: no `${VAR}` (`make template` runs in the
    operator's shell, the functions on Lambda, which has none of its variables: every
    invocation would refuse the file), and for a deploy no EDIT-ME placeholder left (each job
    would fail after eight receives, the first alarm some 30 minutes later), unless allowed."""
    data = json.loads(systems_path.read_text(encoding="utf-8"))
    for raw in data.get("systems", []) if isinstance(data, dict) else []:
        name = raw.get("name", "?") if isinstance(raw, dict) else "?"
        options = raw.get("options", {}) if isinstance(raw, dict) else {}
        for path, value in _option_strings(options, "options"):
            if VARIABLE.search(value):
                raise ValueError(
                    f"system {name}: {path} uses an environment variable ($NAME or ${{NAME}}); "
                    "the deployed functions do not have your shell's: write the value itself"
                )
    if deploy and not allow_edit_me:
        config = load_systems(systems_path, PRODUCTION_ENVIRON)
        left = [f"{s.name}: {p}" for s in config.systems for p in placeholders(s.options)]
        if left:
            raise ValueError(
                f"{PLACEHOLDER} placeholders left ({'; '.join(left)}): replace them, or deploy "
                "a demo stack with `make deploy ALLOW_EDIT_ME=1`"
            )


def _option_strings(value: Any, path: str) -> list[tuple[str, str]]:
    if isinstance(value, str):
        return [(path, value)]
    if isinstance(value, dict):
        return [f for k, v in value.items() for f in _option_strings(v, f"{path}.{k}")]
    if isinstance(value, list):
        return [f for n, v in enumerate(value) for f in _option_strings(v, f"{path}[{n}]")]
    return []


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if a file is stale")
    parser.add_argument("--systems", type=Path, default=SYSTEMS)
    parser.add_argument(
        "--deploy", action="store_true", help="also refuse EDIT-ME placeholders (make deploy)"
    )
    parser.add_argument(
        "--allow-edit-me", action="store_true", help="with --deploy: allow them (a demo stack)"
    )
    args = parser.parse_args(argv)
    try:
        check_production(args.systems, deploy=args.deploy, allow_edit_me=args.allow_edit_me)
        generated = sections(args.systems, PRODUCTION_ENVIRON)
        template = render(TEMPLATE.read_text(encoding="utf-8"), generated)
        config = load_systems(args.systems, PRODUCTION_ENVIRON)
        check_config(loads_template(template), config)
        warnings = job_pace_warnings(loads_template(template), config.systems)
        for warning in warnings + narrow_type_warnings(config.systems):
            print(f"make template: warning: {warning}", file=sys.stderr)
    except ValueError as error:  # a config the stack could not run: say which, no traceback
        print(f"make template: {error}", file=sys.stderr)
        return 2
    wanted = {TEMPLATE: template, EDGE_WAF: edge_waf(loads_template(template))}
    stale = [path for path, text in wanted.items() if _read(path) != text]
    if args.check:
        if stale:
            names = ", ".join(p.name for p in stale)
            print(f"out of date: {names}; run `make template`", file=sys.stderr)
            return 1
        return 0
    for path in stale:
        path.write_text(wanted[path], encoding="utf-8")
        print(f"{path.name}: rewritten")
    return 0


def _read(path: Path) -> str:
    return path.read_text(encoding="utf-8") if path.exists() else ""


if __name__ == "__main__":
    sys.exit(main())
