"""What the Lambda layer ships is what the tests ran (review s20 supply SC1, SC2): every
distribution pinned `==` in layers/common/requirements.txt, its dependencies on Lambda too, at
the versions this test environment runs, hash-locked for the build in requirements.lock, and a
built layer holding exactly those (scripts/layer_lock.py, run by `make build`)."""

import re
import tomllib
from importlib.metadata import requires, version
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from scripts import layer_lock
from scripts.layer_lock import Pin

ROOT = Path(__file__).resolve().parents[2]
PINS = layer_lock.read_pins(layer_lock.PINS.read_text(encoding="utf-8"))


def test_every_layer_requirement_is_pinned_exactly() -> None:
    with pytest.raises(ValueError, match="not pinned with =="):
        layer_lock.read_pins("pydantic>=2.13\n")
    with pytest.raises(ValueError, match="not pinned with =="):
        layer_lock.read_pins("holidays~=0.86  # a compatible release is a range too\n")
    assert "python-dateutil" in PINS
    assert len(PINS) == len(layer_lock.logical_lines(layer_lock.PINS.read_text(encoding="utf-8")))


def test_the_tests_run_the_versions_the_layer_ships() -> None:
    # requirements/dev.txt installs the layer's file: a pin changed without `make venv` fails here
    assert "-r ../layers/common/requirements.txt" in (ROOT / "requirements/dev.txt").read_text()
    assert {name: version(name) for name in PINS} == {n: p.version for n, p in PINS.items()}


def test_every_dependency_a_pin_has_on_lambda_is_pinned_in_its_range() -> None:
    assert layer_lock.closure_gaps(PINS, requires) == []


def needed_on_lambda(name: str) -> set[str]:
    """The distributions a pin's Requires-Dist names on Lambda (no extras asked for)."""
    needs = (Requirement(line) for line in requires(name) or [])
    environment = {**layer_lock.LAMBDA_MARKERS, "extra": ""}
    return {
        layer_lock.canonical(need.name)
        for need in needs
        if need.marker is None or need.marker.evaluate(environment)
    }


def test_a_dependency_left_to_the_resolver_is_a_gap() -> None:
    # As the file was: holidays needed python-dateutil, not pinned, so pip took 4.0.0. Each pin
    # another pin needs, left out, is a gap named after it (built from today's pins and
    # metadata, so a pin change needs no edit here).
    needed = {dep for name in PINS for dep in needed_on_lambda(name)} & PINS.keys()
    assert needed  # a graph to test: at least python-dateutil, which holidays needs
    for dropped in sorted(needed):
        pins = {n: p for n, p in PINS.items() if n != dropped}
        gaps = layer_lock.closure_gaps(pins, requires)
        needers = sorted(n for n in pins if dropped in needed_on_lambda(n))
        assert [gap.split(" needs ")[0] for gap in gaps] == needers, dropped
        assert all(gap.endswith(": not pinned") for gap in gaps), gaps
        assert all(re.search(rf" needs {re.escape(dropped)}\b", gap, re.I) for gap in gaps), gaps


def test_a_dependency_only_an_unrequested_extra_or_another_platform_needs_is_no_gap() -> None:
    metadata = {
        "app": ["lib>=1", "win; sys_platform == 'win32'", "pypy; implementation_name == 'pypy'",
                "tool; extra == 'dev'", "old; python_version < '3.11'",
                "val; extra == 'validation'"],
    }  # fmt: skip
    pins = {
        "app": Pin("app", "1.0", frozenset({"validation"})),
        "lib": Pin("lib", "1.2", frozenset()),
    }
    assert layer_lock.closure_gaps(pins, metadata.get) == [
        'app needs val; extra == "validation": not pinned'
    ]
    pins["lib"] = Pin("lib", "0.9", frozenset())
    assert layer_lock.closure_gaps(pins, metadata.get)[0] == "app needs lib>=1: 0.9 pinned"


def test_what_the_runtime_sdk_imports_from_the_layer_is_in_its_range() -> None:
    # Lambda puts /opt/python first: the runtime's botocore imports the layer's python-dateutil
    # (4.0.0 before session 20, outside its range). Each pin botocore needs is inside the
    # range botocore (the tests' copy) asks for, and a version outside it is reported.
    assert layer_lock.runtime_conflicts(PINS, requires) == []
    for line in requires("botocore") or []:
        need = Requirement(line)
        name = layer_lock.canonical(need.name)
        if name not in PINS or need.marker is not None:
            continue
        assert need.specifier.contains(PINS[name].version, prereleases=True), need
        outside = {**PINS, name: Pin(name, "9999.0", frozenset())}
        assert f"botocore needs {need}: 9999.0 pinned" in layer_lock.runtime_conflicts(
            outside, requires
        )


def test_the_lock_holds_the_same_pins_each_with_a_sha256() -> None:
    text = layer_lock.LOCK.read_text(encoding="utf-8")
    assert layer_lock.read_pins(text) == PINS, "run `.venv/bin/python scripts/layer_lock.py lock`"
    hashes = layer_lock.read_hashes(text)
    assert hashes.keys() == PINS.keys()
    assert all(len(found) == 1 for found in hashes.values())


def test_the_layer_build_installs_the_lock_with_hashes_and_make_build_checks_it() -> None:
    layer_make = (ROOT / "layers/common/Makefile").read_text()
    assert "--require-hashes -r requirements.lock" in layer_make
    assert "-r requirements.txt" not in layer_make
    # the lock hashes the wheels the build takes: the same platform options
    assert f"PIP_TARGET := {' '.join(layer_lock.PIP_TARGET)}\n" in layer_make
    build = (ROOT / "Makefile").read_text().split("\nbuild:", 1)[1].split("\n\n", 1)[0]
    assert build.index("sam build") < build.index(
        "scripts/layer_lock.py check .aws-sam/build/CommonLayer"
    )


def built_layer(root: Path, shipped: dict[str, str], folders: tuple[str, ...] = ()) -> Path:
    python = root / "python"
    for name, ver in shipped.items():
        info = python / f"{re.sub('-', '_', name)}-{ver}.dist-info"
        info.mkdir(parents=True)
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {ver}\n")
    for folder in ("optout", *folders):
        (python / folder).mkdir(parents=True)
    return root


SHIPPED = {name: pin.version for name, pin in PINS.items()}


def test_a_built_layer_with_exactly_the_pins_passes(tmp_path: Path) -> None:
    layer = built_layer(tmp_path, SHIPPED)
    assert layer_lock.layer_problems(layer, PINS) == []
    assert layer_lock.check(layer) == 0


def test_a_built_layer_with_another_version_a_stray_or_a_test_package_fails(tmp_path: Path) -> None:
    # As in review s20 supply SC1: python-dateutil at another version, a stray distribution
    # (tzdata then), a pin not shipped (six then), a test package and a project folder
    other = "python-dateutil"
    missing = min(PINS.keys() - {other})
    shipped = {name: ver for name, ver in SHIPPED.items() if name != missing}
    shipped |= {other: "9999.0", "zz-stray": "1.0", "pytest": "9.0.3"}
    layer = built_layer(tmp_path, shipped, folders=("tests",))
    assert layer_lock.layer_problems(layer, PINS) == [
        "pytest 9.0.3 shipped, not pinned",
        "zz-stray 1.0 shipped, not pinned",
        f"{missing} pinned, not shipped",
        f"{other} 9999.0 shipped, {PINS[other].version} pinned",
        "pytest must not ship in the layer",
        "python/tests/ must not ship in the layer",
    ]
    assert layer_lock.check(layer) == 1


def test_the_version_is_read_from_the_metadata_header_not_the_description(
    tmp_path: Path,
) -> None:
    # A description line "Version: <the pin>" below the header must not hide the shipped version
    pinned = PINS["python-dateutil"].version
    layer = built_layer(tmp_path, {**SHIPPED, "python-dateutil": "4.0.0"})
    metadata = layer / "python/python_dateutil-4.0.0.dist-info/METADATA"
    metadata.write_text(f"{metadata.read_text()}\nChangelog\n\nVersion: {pinned}\n")
    assert layer_lock.layer_problems(layer, PINS) == [
        f"python-dateutil 4.0.0 shipped, {pinned} pinned"
    ]


@pytest.mark.parametrize("stale", ["0.1", "99.0"])  # globbed before or after the right one
def test_one_distribution_shipped_twice_fails(tmp_path: Path, stale: str) -> None:
    pinned = PINS["python-dateutil"].version
    layer = built_layer(tmp_path, SHIPPED)
    info = layer / f"python/python_dateutil-{stale}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Name: python-dateutil\nVersion: {stale}\n")
    versions = ", ".join(sorted([pinned, stale], key=lambda v: f"python_dateutil-{v}.dist-info"))
    assert layer_lock.layer_problems(layer, PINS) == [
        f"python-dateutil {stale} shipped, {pinned} pinned",
        f"python-dateutil shipped 2 times ({versions}): a reused build folder",
    ]
    # the same version twice too (a second copy under another folder name)
    (info / "METADATA").write_text(f"Name: python-dateutil\nVersion: {pinned}\n")
    assert layer_lock.layer_problems(layer, PINS) == [
        f"python-dateutil shipped 2 times ({pinned}, {pinned}): a reused build folder"
    ]


def test_a_test_package_copied_without_its_metadata_fails(tmp_path: Path) -> None:
    layer = built_layer(tmp_path, SHIPPED, folders=("_pytest", "moto", "hypothesis"))
    (layer / "python/py.py").write_text("")
    assert layer_lock.layer_problems(layer, PINS) == [
        f"python/{name} (a test or development package) must not ship in the layer"
        for name in ("_pytest", "hypothesis", "moto", "py.py")
    ]
    assert layer_lock.check(layer) == 1


@pytest.mark.parametrize(
    "path", sorted((ROOT / "requirements").glob("*.txt")), ids=lambda p: p.name
)
def test_every_requirement_file_pins_each_package_exactly(path: Path) -> None:
    # Development and tool environments too (review s20 supply SC6): `-r` includes a file
    # checked on its own.
    lines = [
        line for line in layer_lock.logical_lines(path.read_text()) if not line.startswith("-r ")
    ]
    assert layer_lock.read_pins("\n".join(lines))


def test_every_pip_install_in_the_makefile_takes_a_pinned_file() -> None:
    installs = [
        line.strip()
        for line in (ROOT / "Makefile").read_text().splitlines()
        if "pip install" in line and not line.lstrip().startswith(("#", "@#"))
    ]
    assert len(installs) == 10  # .venv, .venv-sam, .venv-checkov and .venv-py313 (session 21)
    for line in installs:
        takes_a_file = re.search(r"pip install --quiet -r requirements/\w+\.txt$", line)
        builds_the_cli = line.endswith("--no-deps --no-build-isolation --editable .")
        assert takes_a_file or builds_the_cli, line
    bootstrap = layer_lock.read_pins((ROOT / "requirements/bootstrap.txt").read_text())
    assert list(bootstrap) == ["pip"]


def test_the_cli_is_built_by_the_pinned_setuptools_on_any_machine() -> None:
    # Review s20 diff B6: docs/operations.md's install on another machine ran an isolated build,
    # which fetched an unpinned setuptools; cli.txt now pins it and the line skips isolation.
    backend = tomllib.loads((ROOT / "pyproject.toml").read_text())["build-system"]["requires"]
    cli = layer_lock.read_pins(
        "\n".join(
            line
            for line in layer_lock.logical_lines((ROOT / "requirements/cli.txt").read_text())
            if not line.startswith("-r ")
        )
    )
    for line in backend:
        need = Requirement(line)
        name = layer_lock.canonical(need.name)
        assert name in cli and need.specifier.contains(cli[name].version), line
    builds = [
        line
        for line in (ROOT / "docs/operations.md").read_text().splitlines()
        if re.search(r"pip install [^`]*--no-deps", line)
    ]
    assert builds
    assert all("--no-build-isolation" in line for line in builds), builds
