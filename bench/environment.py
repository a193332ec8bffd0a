"""The process environment every in-process stage shares: fake AWS credentials, the layer on
the path, Powertools configured as on Lambda, and handler output sent to a sink.

Handlers log and emit metrics to stdout (CloudWatch reads it on Lambda). The bench keeps that
work in the measurement but must keep its own table readable, so stdout is swapped for a sink
that keeps nothing before the first handler is loaded (Powertools captures the stream at
import), and the bench writes to the saved real streams. The sink counts what each function
wrote (log events and their bytes, as CloudWatch Logs would ingest them), so the cost model can
price the logs the functions actually write rather than a guess.
"""

import io
import os
import sys
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import IO, Any

from local.environment import FAKE_AWS_ENV

ROOT = Path(__file__).resolve().parent.parent
LAYER_PYTHON = ROOT / "layers" / "common" / "python"
SYSTEMS_CONFIG = ROOT / "local" / "systems.json"  # sandbox URLs (the layer's is production)
LOCAL_ENV = {"LOCAL_STACK_URL": "http://127.0.0.1:9", "OPTOUT_LOCAL_MODE": "true"}
SECRETS_FILE = ROOT / "local" / "secrets.json"
AWS_ENV = {
    **FAKE_AWS_ENV,  # X-Ray is off: no daemon here; production pays for it apart
    "POWERTOOLS_SERVICE_NAME": "optout-bridge",
    "POWERTOOLS_METRICS_NAMESPACE": "OptOutBridge",
    "POWERTOOLS_DEV": "false",
    "ALLOWED_ORIGINS": "https://shop.example.com",
}


class LogSink(io.TextIOBase):
    """Writes nowhere; counts, per function (the label `invoke` sets), the lines written and
    their UTF-8 bytes without the newline: one CloudWatch Logs event per line on Lambda."""

    def __init__(self) -> None:
        super().__init__()
        self.label = "outside"
        self.events: dict[str, int] = defaultdict(int)
        self.bytes: dict[str, int] = defaultdict(int)
        self._partial = 0  # bytes of a line not yet ended (print writes the newline apart)

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        *ended, rest = text.split("\n")
        for line in ended:
            self.bytes[self.label] += self._partial + len(line.encode("utf-8"))
            self.events[self.label] += 1
            self._partial = 0
        self._partial += len(rest.encode("utf-8"))
        return len(text)

    @contextmanager
    def labelled(self, label: str) -> Iterator[None]:
        before, self.label = self.label, label
        try:
            yield
        finally:
            self.label = before

    def snapshot(self) -> dict[str, tuple[int, int]]:
        """label -> (events, bytes) so far."""
        return {label: (self.events[label], self.bytes[label]) for label in self.events}


real_stdout: IO[str] = sys.stdout
_sink: LogSink | None = None


def prepare() -> None:
    """Idempotent: env, sys.path, and the stdout sink (before any handler import)."""
    global _sink  # noqa: PLW0603 - one sink for the process
    os.environ.update(AWS_ENV)
    os.environ.pop("HASH_KEY_SECRET_NAME", None)  # the documented local key: no Secrets Manager
    for path in (str(ROOT), str(LAYER_PYTHON)):
        if path not in sys.path:
            sys.path.insert(0, path)
    if _sink is None:
        _sink = LogSink()
        sys.stdout = _sink


def log_sink() -> LogSink | None:
    """The sink handlers write to, once `prepare` has run."""
    return _sink


def load_function(name: str, instance: str) -> ModuleType:
    """functions/<name>/app.py as its own module, as a fresh Lambda container imports it."""
    import importlib.util  # noqa: PLC0415 - only stages that run handlers need it

    path = ROOT / "functions" / name / "app.py"
    spec = importlib.util.spec_from_file_location(f"bench_fn_{instance}", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def invoke(module: ModuleType, event: dict[str, Any], name: str = "bench") -> Any:
    from local.lambdas import LambdaContext  # noqa: PLC0415 - needs the layer on the path

    if _sink is None:
        return module.handler(event, LambdaContext(name, 30))
    with _sink.labelled(name):
        return module.handler(event, LambdaContext(name, 30))
