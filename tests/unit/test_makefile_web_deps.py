"""`make banner` in a worktree whose web/tests/node_modules is a symlink to another checkout's
(as helpers are told to set up): `npm ci` through the link emptied the other checkout's copy."""

import os
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_web_deps_refuse_to_reinstall_through_a_symlinked_node_modules(tmp_path: Path) -> None:
    # Given another checkout's installed packages, older than this worktree's lock file
    elsewhere = tmp_path / "main" / "node_modules"
    elsewhere.mkdir(parents=True)
    (elsewhere / ".package-lock.json").write_text("{}")
    (elsewhere / "kept.js").write_text("")
    os.utime(elsewhere / ".package-lock.json", (1_000_000, 1_000_000))
    tree = tmp_path / "wt"
    (tree / "web" / "tests").mkdir(parents=True)
    shutil.copy(ROOT / "Makefile", tree / "Makefile")
    for name in ("package.json", "package-lock.json"):
        (tree / "web" / "tests" / name).write_text("{}")
    (tree / "web" / "tests" / "node_modules").symlink_to(elsewhere)
    # ... and an npm that records being run
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    npm = bin_dir / "npm"
    npm.write_text(f"#!/bin/sh\ntouch {tmp_path / 'npm-ran'}\n")
    npm.chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    # When the packages are made
    done = subprocess.run(
        ["make", "-C", str(tree), "web/tests/node_modules/.package-lock.json"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    # Then make stops and says why, and npm never ran through the link
    assert done.returncode != 0
    assert "symlink" in done.stderr
    assert not (tmp_path / "npm-ran").exists()
    assert (elsewhere / "kept.js").exists()
