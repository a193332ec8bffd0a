"""The Lambda layer's dependencies: every distribution it ships is pinned `==` in
layers/common/requirements.txt (the tests install that file) and hash-locked in
layers/common/requirements.lock (the layer's build installs that one, `--require-hashes`).

    .venv/bin/python scripts/layer_lock.py lock      # rewrite the lock (network)
    .venv/bin/python scripts/layer_lock.py check .aws-sam/build/CommonLayer # after `sam build`

Run it with the project's .venv: it imports `packaging`, which a bare system python may lack.

Why (review s20 supply SC1, SC2): the layer pinned only its 7 top-level requirements, so each
build resolved the other 10 afresh. It shipped python-dateutil 4.0.0 while the tests ran
2.9.0.post0, and Lambda puts /opt/python before the runtime's own packages, so the runtime's
botocore (`python-dateutil<3.0.0`) imported a version no test ran and botocore does not allow.

`lock` downloads, for each pin, the wheel the layer's build takes (manylinux2014 arm64,
CPython 3.13: the same pip options as layers/common/Makefile) and writes its sha256. `check`
compares a built layer with the pins: the same distributions at the same versions, and no
test or development package.
"""

import argparse
import email.parser
import hashlib
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name, parse_wheel_filename

ROOT = Path(__file__).resolve().parent.parent
LAYER = ROOT / "layers" / "common"
PINS = LAYER / "requirements.txt"
LOCK = LAYER / "requirements.lock"

# layers/common/Makefile's PIP_TARGET: the wheels Lambda's arm64 Python 3.13 loads.
PIP_TARGET = (
    "--platform", "manylinux2014_aarch64", "--implementation", "cp",
    "--python-version", "3.13", "--only-binary=:all:",
)  # fmt: skip
# Markers evaluated as on Lambda (python3.13, arm64, Amazon Linux).
LAMBDA_MARKERS = {
    "python_version": "3.13",
    "python_full_version": "3.13.0",
    "implementation_name": "cpython",
    "platform_python_implementation": "CPython",
    "platform_system": "Linux",
    "sys_platform": "linux",
    "platform_machine": "aarch64",
    "os_name": "posix",
}
# Never in the layer: test, development and build tools, the SDK the runtime provides (a copy
# would shadow it untested), and the project's own non-Lambda folders.
FORBIDDEN = frozenset(
    {"pytest", "moto", "hypothesis", "schemathesis", "playwright", "mypy", "ruff", "cfn-lint",
     "aws-sam-translator", "boto3", "botocore", "s3transfer", "boto3-stubs", "setuptools",
     "pip", "wheel", "py-spy", "google-ads-datamanager", "facebook-business", "uid2-client",
     "ttd-data", "typer", "rich", "httpx"}
)  # fmt: skip
FORBIDDEN_DIRS = frozenset({"tests", "local", "bench", "soak", "web", "docs", "cli", "scripts"})
# The import names (top-level folders or modules of python/) of test and development packages:
# refused even when copied without their metadata (review s20 diff B3).
FORBIDDEN_TOP_LEVEL = frozenset(
    {"pytest", "_pytest", "py", "pluggy", "moto", "hypothesis", "_hypothesis_pytestplugin",
     "schemathesis", "playwright", "mypy", "mypyc", "ruff", "cfnlint", "samtranslator",
     "boto3", "botocore", "s3transfer", "setuptools", "pkg_resources", "_distutils_hack",
     "pip", "wheel", "typer", "rich", "httpx", "responses", "freezegun"}
)  # fmt: skip

PIN = re.compile(
    r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)(?:\[(?P<extras>[^\]]*)\])?==(?P<ver>[^\s;#\\]+)"
)


def canonical(name: str) -> str:
    """PEP 503's normal form: `PyJWT`, `typing_extensions` -> `pyjwt`, `typing-extensions`."""
    return str(canonicalize_name(name))


@dataclass(frozen=True)
class Pin:
    name: str  # canonical
    version: str
    extras: frozenset[str]


def logical_lines(text: str) -> list[str]:
    """Requirement lines without comments, blank lines and `\\` continuations."""
    joined = re.sub(r"\\\n", " ", text)
    lines = (line.split(" #", 1)[0].strip() for line in joined.splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def read_pins(text: str) -> dict[str, Pin]:
    """Every requirement of a requirements file, which must each be `name[extras]==version`."""
    pins: dict[str, Pin] = {}
    for line in logical_lines(text):
        found = PIN.match(line)
        if found is None:
            raise ValueError(f"not pinned with ==: {line!r}")
        name = canonical(found["name"])
        extras = frozenset(e.strip() for e in (found["extras"] or "").split(",") if e.strip())
        pins[name] = Pin(name, found["ver"], extras)
    return pins


def read_hashes(text: str) -> dict[str, list[str]]:
    """The `--hash=sha256:...` values of each requirement of a lock file."""
    return {
        canonical(found["name"]): re.findall(r"--hash=sha256:([0-9a-f]{64})", line)
        for line in logical_lines(text)
        if (found := PIN.match(line)) is not None
    }


def closure_gaps(pins: dict[str, Pin], requires: Callable[[str], list[str] | None]) -> list[str]:
    """Each dependency a pinned distribution has on Lambda (its markers evaluated there, with
    the extras asked for) that is not pinned, or pinned outside the range it asks for.
    `requires(name)`: that distribution's Requires-Dist (importlib.metadata.requires)."""
    gaps: list[str] = []
    for pin in pins.values():
        for line in requires(pin.name) or []:
            need = Requirement(line)
            environments = [{**LAMBDA_MARKERS, "extra": extra} for extra in pin.extras or {""}]
            if need.marker is not None and not any(need.marker.evaluate(e) for e in environments):
                continue
            name = canonical(need.name)
            if name not in pins:
                gaps.append(f"{pin.name} needs {need}: not pinned")
            elif not need.specifier.contains(pins[name].version, prereleases=True):
                gaps.append(f"{pin.name} needs {need}: {pins[name].version} pinned")
    return gaps


# Lambda's runtime provides these (not shipped: docs/decisions.md, "Clients from botocore
# alone"), and they import what the layer may also ship, from the layer first.
RUNTIME_SDK = ("boto3", "botocore", "s3transfer")


def runtime_conflicts(
    pins: dict[str, Pin], requires: Callable[[str], list[str] | None]
) -> list[str]:
    """Each pin outside the range the runtime's SDK asks for that package: the layer's copy is
    what that SDK imports. `requires` reads the SDK's metadata (the tests' copy, 1.44.8)."""
    conflicts: list[str] = []
    for sdk in RUNTIME_SDK:
        for line in requires(sdk) or []:
            need = Requirement(line)
            if need.marker is not None and not need.marker.evaluate(
                {**LAMBDA_MARKERS, "extra": ""}
            ):
                continue
            pin = pins.get(canonical(need.name))
            if pin is not None and not need.specifier.contains(pin.version, prereleases=True):
                conflicts.append(f"{sdk} needs {need}: {pin.version} pinned")
    return conflicts


def name_and_version(info: Path) -> tuple[str, str]:
    """A dist-info's Name and Version, read from the METADATA header only (up to the first
    blank line, as importlib.metadata does): a `Version: ` line in the description below it
    is text, not the version."""
    header = email.parser.HeaderParser().parsestr((info / "METADATA").read_text(encoding="utf-8"))
    return canonical(header["Name"]), header["Version"]


def built_distributions(python_dir: Path) -> dict[str, list[str]]:
    """The distributions `pip install --target` put in a layer's python/ folder, each with the
    versions of its dist-info folders (more than one: a build folder reused)."""
    found: dict[str, list[str]] = {}
    for info in sorted(python_dir.glob("*.dist-info")):
        name, ver = name_and_version(info)
        found.setdefault(name, []).append(ver)
    return found


def top_level_name(path: Path) -> str:
    """`_pytest/` -> `_pytest`, `six.py` -> `six`, `_cffi_backend.cpython-313-...so` ->
    `_cffi_backend`."""
    return path.name if path.is_dir() else path.name.split(".", 1)[0]


def layer_problems(layer_dir: Path, pins: dict[str, Pin]) -> list[str]:
    """What differs between a built layer (`.aws-sam/build/CommonLayer`) and the pins."""
    python_dir = layer_dir / "python"
    built = built_distributions(python_dir)
    problems = [
        f"{name} {', '.join(built[name])} shipped, not pinned"
        for name in sorted(built.keys() - pins.keys())
    ]
    problems += [f"{name} pinned, not shipped" for name in sorted(pins.keys() - built.keys())]
    problems += [
        f"{name} {ver} shipped, {pins[name].version} pinned"
        for name in sorted(built.keys() & pins.keys())
        for ver in built[name]
        if ver != pins[name].version
    ]
    problems += [
        f"{name} shipped {len(built[name])} times ({', '.join(built[name])}): a reused build folder"
        for name in sorted(built)
        if len(built[name]) > 1
    ]
    problems += [f"{name} must not ship in the layer" for name in sorted(built.keys() & FORBIDDEN)]
    problems += [
        f"python/{path.name}/ must not ship in the layer"
        for path in sorted(python_dir.iterdir())
        if path.is_dir() and path.name in FORBIDDEN_DIRS
    ]
    problems += [
        f"python/{path.name} (a test or development package) must not ship in the layer"
        for path in sorted(python_dir.iterdir())
        if top_level_name(path) in FORBIDDEN_TOP_LEVEL
    ]
    return problems


def wheel_name(filename: str) -> str:
    """`pydantic_core-2.46.4-cp313-....whl` -> `pydantic-core`."""
    return str(parse_wheel_filename(filename)[0])


def lock_text(pins: dict[str, Pin], wheels: dict[str, Path], header: str) -> str:
    lines = [header]
    for name in sorted(pins):
        pin = pins[name]
        extras = f"[{','.join(sorted(pin.extras))}]" if pin.extras else ""
        digest = hashlib.sha256(wheels[name].read_bytes()).hexdigest()
        lines.append(f"{name}{extras}=={pin.version} \\\n    --hash=sha256:{digest}")
    return "\n".join(lines) + "\n"


LOCK_HEADER = """\
# Generated by `python scripts/layer_lock.py lock` from requirements.txt: do not edit.
# The layer's build installs this file with --require-hashes (layers/common/Makefile): each
# hash is the wheel Lambda's arm64 Python 3.13 loads, as downloaded when the lock was made."""


def lock() -> None:
    pins = read_pins(PINS.read_text(encoding="utf-8"))
    with tempfile.TemporaryDirectory() as scratch:
        wanted = [f"{pin.name}=={pin.version}" for pin in pins.values()]
        subprocess.run(  # noqa: S603 - this interpreter's pip, fixed arguments
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", *PIP_TARGET,
             "--dest", scratch, *wanted],
            check=True,
        )  # fmt: skip
        wheels = {wheel_name(path.name): path for path in Path(scratch).glob("*.whl")}
        missing = sorted(pins.keys() - wheels.keys())
        if missing:
            raise SystemExit(f"no wheel downloaded for: {', '.join(missing)}")
        LOCK.write_text(lock_text(pins, wheels, LOCK_HEADER), encoding="utf-8")
    print(f"{LOCK.relative_to(ROOT)}: {len(pins)} pinned distributions, one sha256 each")


def check(layer_dir: Path) -> int:
    problems = layer_problems(layer_dir, read_pins(PINS.read_text(encoding="utf-8")))
    for problem in problems:
        print(f"layer: {problem}", file=sys.stderr)
    return 1 if problems else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("lock", help="rewrite requirements.lock from requirements.txt")
    checking = commands.add_parser("check", help="compare a built layer with the pins")
    checking.add_argument("layer_dir", type=Path)
    args = parser.parse_args(argv)
    if args.command == "lock":
        lock()
        return 0
    return check(args.layer_dir)


if __name__ == "__main__":
    sys.exit(main())
