"""Load the real handlers in-process and invoke them one at a time, as a Lambda container does.

Every function's entry file is `functions/<name>/app.py`, so each is loaded under its own
module name. A loaded module plays one warm execution environment: Lambda never runs two
invocations in one environment at once, and the handlers rely on that, so each instance runs
one invocation at a time. The HTTP functions (capture, admin) share ONE lock: Powertools keeps
the request being resolved (`current_event`, `lambda_context`) on the `BaseRouter` class, one
for every resolver in the process, not on each module's app. Its routing, the admin's audit
lines (`route`, `caller`), `acted_by` and the capture's GPC header all read it, so a capture
request resolved while an admin one ran made the admin's `export sealed` line name the
capture's route and `caller=unknown` (review s31 counsel F5). On AWS each environment is one
process: not affected.
"""

import importlib.util
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
LAYER_PYTHON = ROOT / "layers" / "common" / "python"

Handler = Callable[[dict[str, Any], Any], Any]

# The one lock of every function an HTTP route invokes (above: Powertools' class-level event).
HTTP_LOCK = threading.Lock()

# Which function the current thread is running: the handlers share one Powertools logger,
# whose function_name key is global, so the console asks the thread instead.
current = threading.local()


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
    """One function instance: a handler, its name and timeout, and a one-at-a-time lock
    (`lock`: one shared with other functions, `HTTP_LOCK`; else its own)."""

    def __init__(
        self,
        name: str,
        handler: Handler,
        timeout_seconds: int,
        logical_id: str | None = None,
        lock: "threading.Lock | None" = None,
    ) -> None:
        self.name = name
        self.logical_id = logical_id  # its resource in template.yaml: whose role it runs under
        self._handler = handler
        self._timeout = timeout_seconds
        self._lock = lock or threading.Lock()

    def invoke(self, event: dict[str, Any]) -> Any:
        # The timeout is reported to the handler but not enforced: a thread cannot be killed.
        with self._lock:
            current.name, current.logical_id = self.name, self.logical_id
            try:
                return self._handler(event, LambdaContext(self.name, self._timeout))
            finally:
                current.name = current.logical_id = None
                drop_unpublished_metrics()


def drop_unpublished_metrics() -> None:
    """With metrics disabled (the local stack's default), forget this invocation's values.

    Powertools keeps one metric set per process, shared by every Metrics instance, and its
    flush neither prints nor clears it while disabled; add_metric still prints the whole set
    as EMF once a metric reaches 100 values (Powertools 3.37). Every function runs in this
    one process, so without this a ~10 KB JSON line reached the console every ~100 values.
    On Lambda each invocation's log_metrics flushes and clears; with metrics on this does
    nothing, so the EMF tests still read what the handlers publish.
    """
    from aws_lambda_powertools.metrics import Metrics  # noqa: PLC0415 - loaded with the handlers
    from aws_lambda_powertools.metrics.functions import is_metrics_disabled  # noqa: PLC0415

    if is_metrics_disabled():
        Metrics().clear_metrics()


def ensure_layer_on_path() -> None:
    """The handlers import `optout` from the layer, which Lambda mounts at /opt/python."""
    if str(LAYER_PYTHON) not in sys.path:
        sys.path.insert(0, str(LAYER_PYTHON))


def load(code_uri: str, handler: str, instance: str) -> Handler:
    """A separate import of <code_uri>/<module>.py per instance, returning its handler."""
    ensure_layer_on_path()
    module_file, _, attribute = handler.rpartition(".")
    path = ROOT / code_uri / f"{module_file.replace('.', '/')}.py"
    module_name = f"local_fn_{instance}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path.relative_to(ROOT)}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    loaded: Handler = getattr(module, attribute)
    return loaded


def code_exists(code_uri: str, handler: str) -> bool:
    module_file = handler.rpartition(".")[0]
    return (ROOT / code_uri / f"{module_file.replace('.', '/')}.py").is_file()


def local_function(
    code_uri: str,
    handler: str,
    name: str,
    timeout_seconds: int,
    logical_id: str | None = None,
    lock: "threading.Lock | None" = None,
) -> LocalFunction:
    """`name` is the function's local name (one per instance: each system has its own worker);
    `logical_id` its resource in template.yaml; `lock`: `HTTP_LOCK` for an HTTP function."""
    return LocalFunction(name, load(code_uri, handler, name), timeout_seconds, logical_id, lock)


def running_function() -> str | None:
    """The template resource whose handler this thread is running, if any."""
    found: str | None = getattr(current, "logical_id", None)
    return found
