"""Write the per-system sections of template.yaml from the production systems config.

`make template` (or `python scripts/gen_template.py`) rewrites only what lies between
`# BEGIN generated: <section>` and `# END generated: <section>` lines; everything else in
template.yaml stays hand-written. `--check` exits 1 when the committed file is out of date
(a test runs the same check). One system's resources are scripts/templates/system.yaml with
`__KEY__` (queue key) and `__NAME__` (system name) filled in.

Why a generator and not Fn::ForEach: `sam build` and `sam validate` of the current SAM CLI
cannot read a top-level Fn::ForEach (aws/aws-sam-cli#5647), and checkov cannot read a template
that needs AWS::LanguageExtensions. See docs/decisions.md.
"""

import argparse
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "layers" / "common" / "python"))

from optout.systems import SystemConfig, load_systems  # noqa: E402 - after the layer path

TEMPLATE = ROOT / "template.yaml"
SYSTEMS = ROOT / "layers" / "common" / "config" / "systems.json"
SYSTEM_RESOURCES = ROOT / "scripts" / "templates" / "system.yaml"
SECRET_PREFIX = "optout-bridge/systems/"  # noqa: S105 - a name, not a secret
RESOURCES_SECTION = "per-system resources"
KEY_USERS_SECTION = "worker roles"
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
    body = [line for line in prototype.splitlines() if not line.startswith("#")]
    text = "\n".join(body).strip("\n")
    return text.replace("__KEY__", system.queue_key).replace("__NAME__", system.name)


def sections(systems_path: Path = SYSTEMS) -> dict[str, list[str]]:
    """Section name -> its generated lines (without indentation)."""
    systems = load_systems(systems_path).systems
    keys = [s.queue_key for s in systems]
    duplicates = sorted({k for k in keys if keys.count(k) > 1})
    if duplicates:
        raise ValueError(f"systems whose names differ only in punctuation: {duplicates}")
    prototype = SYSTEM_RESOURCES.read_text(encoding="utf-8")
    blocks = [system_block(s, prototype) for s in systems]
    return {
        RESOURCES_SECTION: "\n\n".join(blocks).splitlines(),
        KEY_USERS_SECTION: [f"- !GetAtt {s.queue_key}WorkerRole.Arn" for s in systems],
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if template.yaml is stale")
    parser.add_argument("--systems", type=Path, default=SYSTEMS)
    args = parser.parse_args(argv)
    current = TEMPLATE.read_text(encoding="utf-8")
    wanted = render(current, sections(args.systems))
    if args.check:
        if wanted != current:
            print("template.yaml is out of date: run `make template`", file=sys.stderr)
            return 1
        return 0
    if wanted != current:
        TEMPLATE.write_text(wanted, encoding="utf-8")
        print("template.yaml: per-system sections rewritten")
    return 0


if __name__ == "__main__":
    sys.exit(main())
