"""Load a function's app.py as its own module (every function's entry file is named app.py)."""

import importlib.util
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from tests.support import iam

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "events"


@dataclass
class FakeLambdaContext:
    function_name: str = "test-function"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:test-function"
    aws_request_id: str = "00000000-0000-4000-8000-000000000000"

    def get_remaining_time_in_millis(self) -> int:
        return 10_000


def load_function(name: str) -> ModuleType:
    """A fresh import of functions/<name>/app.py, so per-container state starts empty."""
    module_name = f"functions_{name}_app"
    path = ROOT / "functions" / name / "app.py"
    spec = importlib.util.spec_from_file_location(module_name, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    # Its AWS calls are checked against its role in template.yaml (tests/support/iam.py).
    module.__dict__["handler"] = iam.attributed(module_name, module.__dict__["handler"])
    return module


def load_event(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((EVENTS / name).read_text())
    return loaded


def invoke(module: ModuleType, event: dict[str, Any]) -> Any:
    return module.handler(event, FakeLambdaContext())
