"""`make banner` (and `make e2e-deps`, scripts/install-browser-deps.sh) in a worktree whose
web/tests/node_modules is a symlink to another checkout's (as helpers were told to set up):
`npm ci` through the link emptied the other checkout's copy."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _linked_tree(tmp_path: Path) -> tuple[Path, Path, dict[str, str]]:
    """A worktree (a copy of the Makefile and the install script) whose node_modules links to
    another checkout's installed packages, older than its lock file; an npm that records being
    run and a chromium (the script's apt step is then skipped) on PATH."""
    elsewhere = tmp_path / "main" / "node_modules"
    elsewhere.mkdir(parents=True)
    (elsewhere / ".package-lock.json").write_text("{}")
    (elsewhere / "kept.js").write_text("")
    os.utime(elsewhere / ".package-lock.json", (1_000_000, 1_000_000))
    tree = tmp_path / "wt"
    (tree / "web" / "tests").mkdir(parents=True)
    (tree / "scripts").mkdir()
    shutil.copy(ROOT / "Makefile", tree / "Makefile")
    shutil.copy(ROOT / "scripts" / "install-browser-deps.sh", tree / "scripts")
    for name in ("package.json", "package-lock.json"):
        (tree / "web" / "tests" / name).write_text("{}")
    (tree / "web" / "tests" / "node_modules").symlink_to(elsewhere)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("npm", "chromium"):
        fake = bin_dir / tool
        fake.write_text(f"#!/bin/sh\ntouch {tmp_path / (tool + '-ran')}\n")
        fake.chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    return tree, elsewhere, env


# Both ways the packages are installed: make's own rule, and the script `make e2e-deps` runs
INSTALLERS = {
    "make": lambda tree: ["make", "-C", str(tree), "web/tests/node_modules/.package-lock.json"],
    "install-browser-deps.sh": lambda tree: [
        "bash", str(tree / "scripts" / "install-browser-deps.sh")],
}  # fmt: skip


@pytest.mark.parametrize("installer", sorted(INSTALLERS))
def test_web_deps_refuse_npm_ci_through_a_symlinked_node_modules(
    tmp_path: Path, installer: str
) -> None:
    # Given a worktree whose node_modules links to another checkout's
    tree, elsewhere, env = _linked_tree(tmp_path)
    # When the packages are made
    done = subprocess.run(
        INSTALLERS[installer](tree), env=env, capture_output=True, text=True, check=False
    )
    # Then it stops and says why, and npm never ran through the link
    assert done.returncode != 0
    assert "symlink" in done.stderr
    assert not (tmp_path / "npm-ran").exists()
    assert (elsewhere / "kept.js").exists()
