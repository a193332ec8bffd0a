"""Load the real handlers in-process and invoke them one at a time, as a Lambda container does.

Every function's entry file is `functions/<name>/app.py`, so each is loaded under its own
module name. A loaded module plays one warm execution environment: Lambda never runs two
invocations in one environment at once, and the handlers rely on that (Powertools' resolver
keeps the current event on a module-level app), so each instance has its own lock.
"""

import importlib.util
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
FUNCTIONS = ROOT / "functions"
LAYER_PYTHON = ROOT / "layers" / "common" / "python"

Handler = Callable[[dict[str, Any], Any], Any]


@dataclass
class LambdaContext:
    """The attributes Powertools and the handlers read from a Lambda context."""

    function_name: str
    timeout_seconds: int
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    memory_limit_in_mb: int = 512
    function_version: str = "$LATEST"
    started: float = field(default_factory=time.monotonic)

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:us-east-1:123456789012:function:{self.function_name}"

    @property
    def log_group_name(self) -> str:
        return f"/aws/lambda/{self.function_name}"

    @property
    def log_stream_name(self) -> str:
        return "local"

    def get_remaining_time_in_millis(self) -> int:
        elapsed = time.monotonic() - self.started
        return max(0, int((self.timeout_seconds - elapsed) * 1000))


class LocalFunction:
    """One function instance: a handler, its name and timeout, and a one-at-a-time lock."""

    def __init__(self, name: str, handler: Handler, timeout_seconds: int) -> None:
        self.name = name
        self._handler = handler
        self._timeout = timeout_seconds
        self._lock = threading.Lock()

    def invoke(self, event: dict[str, Any]) -> Any:
        # The timeout is reported to the handler but not enforced: a thread cannot be killed.
        with self._lock:
            return self._handler(event, LambdaContext(self.name, self._timeout))


def ensure_layer_on_path() -> None:
    """The handlers import `optout` from the layer, which Lambda mounts at /opt/python."""
    if str(LAYER_PYTHON) not in sys.path:
        sys.path.insert(0, str(LAYER_PYTHON))


def function_exists(directory: str) -> bool:
    return (FUNCTIONS / directory / "app.py").is_file()


def load(directory: str, instance: str = "") -> ModuleType:
    """A separate import of functions/<directory>/app.py (one per instance name)."""
    ensure_layer_on_path()
    module_name = f"local_fn_{directory}{'_' + instance if instance else ''}"
    spec = importlib.util.spec_from_file_location(module_name, FUNCTIONS / directory / "app.py")
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load functions/{directory}/app.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module


def local_function(
    directory: str, name: str, timeout_seconds: int, instance: str = ""
) -> LocalFunction:
    module = load(directory, instance)
    handler: Handler = module.handler
    return LocalFunction(name, handler, timeout_seconds)
