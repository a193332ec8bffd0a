"""A systems config holding some of the local stack's default systems (for stacks of its own)."""

import json
from pathlib import Path

DEFAULT_SYSTEMS = Path(__file__).resolve().parents[2] / "local" / "systems.json"


def systems_subset(directory: Path, *names: str) -> Path:
    """Write the default config's systems named `names` (all if none) to directory."""
    config = json.loads(DEFAULT_SYSTEMS.read_text())
    if names:
        config["systems"] = [s for s in config["systems"] if s["name"] in names]
        assert {s["name"] for s in config["systems"]} == set(names), "unknown system name"
    path = directory / "systems.json"
    path.write_text(json.dumps(config))
    return path
