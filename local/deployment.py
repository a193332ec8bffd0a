"""What a deploy of one systems file is, for the local stack: template.yaml as `make template`
would write it for that file, and the file's systems, checked so that each can be served.

The per-system resources of template.yaml (each system's queue, DLQ, worker, and the lines of
the resolver's and the admin's roles that name the queues) are generated from a systems file
(scripts/gen_template.py). The committed template holds the shipped systems only, so a local
file naming another system (a new vendor, a rename) got a queue but no IAM line allowing the
resolver to send to it: every resolver batch touching it failed (review s14 operator, finding
2). The local stack now renders the template for its own systems file, as a deploy after
`make template` would, and refuses at start-up, naming the system, a file it could not serve.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from local.cfn_yaml import loads_template
from optout.connectors.errors import ConfigError
from optout.systems import SystemConfig, SystemsConfigError, load_systems
from scripts import gen_template

SANDBOX_PATH = "/_sandbox/"


class StackConfigError(Exception):
    """A systems file this stack cannot serve; the message says which system and why."""


@dataclass(frozen=True)
class Deployment:
    systems_config: Path
    systems: tuple[SystemConfig, ...]
    template: dict[str, Any]

    @property
    def names(self) -> list[str]:
        return [s.name for s in self.systems]

    @property
    def queue_keys(self) -> dict[str, str]:
        """system name -> queue key."""
        return {s.name: s.queue_key for s in self.systems}


def plan(
    template_path: Path,
    systems_config: Path,
    environ: Mapping[str, str],
    secrets: Mapping[str, Any],
    url: str,
) -> Deployment:
    """The template and systems for `systems_config`, or StackConfigError naming a system that
    cannot be served: one `make template` would refuse (`gen_template.check_config`: a purpose
    or identifier type no system serves and none declared unserved, a `hashing` the connector
    does not apply, no SystemLimits row or a MaxConcurrency out of range, too slow a pace; the
    production-only checks, `${VAR}` and EDIT-ME, aside), one whose credentials the local
    secrets file lacks (its worker would fail every job), or one whose base URL points at a
    sandbox of this stack that no system provides (`/_sandbox/<name>` follows system names).
    `environ` must hold LOCAL_STACK_URL (the sandbox URLs in the file)."""
    try:
        config = load_systems(systems_config, environ)
    except (SystemsConfigError, ValueError) as error:
        raise StackConfigError(f"systems config refused: {error}") from None
    systems = config.systems
    sandboxes = {s.name for s in systems} | {"uid2"}  # uid2: trade_desk's operator sandbox
    for system in systems:
        try:
            gen_template.check_options(system)
            gen_template.system_block(system, "")  # its credentials follow the naming rule
        except (ValueError, ConfigError) as error:
            raise StackConfigError(_naming(system, str(error))) from None
        if system.credentials and system.credentials not in secrets:
            raise StackConfigError(
                f"system {system.name}: the local secrets file has no entry "
                f"{system.credentials!r} (add one, as you would create that secret on AWS)"
            )
        for value in _strings(system.options):
            if value.startswith(url + SANDBOX_PATH):
                target = value[len(url + SANDBOX_PATH) :].split("/", 1)[0]
                if target not in sandboxes:
                    raise StackConfigError(
                        f"system {system.name}: its options point at {SANDBOX_PATH}{target}, "
                        f"but this stack has a sandbox only per system name ({SANDBOX_PATH}"
                        f"{system.name})"
                    )
    try:
        # The same generator and checks `make template` runs (review s18 operator, L5).
        generated = gen_template.sections(systems_config, environ)
        text = gen_template.render(template_path.read_text(encoding="utf-8"), generated)
        template: dict[str, Any] = loads_template(text)
        gen_template.check_config(template, config)
    except (ValueError, ConfigError) as error:
        raise StackConfigError(f"systems config refused: {error}") from None
    return Deployment(systems_config, tuple(systems), template)


def _naming(system: SystemConfig, message: str) -> str:
    return message if system.name in message else f"system {system.name}: {message}"


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list | tuple):
        return [s for v in value for s in _strings(v)]
    return []
