"""Readable console output: the stack's own lines and the handlers' Powertools JSON logs.

The handlers log one JSON object per line, as on Lambda. In `pretty` mode those lines are
rewritten to `time level function message key=value ...`, keeping only the keys that tell
the story (request id, system, status...). The logs already hold no identifier values; this
only drops noise. `json` mode leaves them as Lambda would write them.
"""

import json
import logging
import sys
import threading
from typing import Any, TextIO

from local.lambdas import current

STACK_FORMAT = "%(asctime)s.%(msecs)03d %(levelname)-5s %(name)-12s %(message)s"
TIME_FORMAT = "%H:%M:%S"
NOISE = {
    "timestamp", "level", "location", "service", "cold_start", "function_arn",
    "function_memory_size", "function_request_id", "xray_trace_id", "sampling_rate",
    "function_name", "message", "exception", "stack_trace", "correlation_id",
}  # fmt: skip


def configure(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter(STACK_FORMAT, TIME_FORMAT))
    root = logging.getLogger("local")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False


def one_line(raw: str) -> str:
    """A Powertools JSON log line -> `12:00:01.123 INFO  capture      captured request_id=...`."""
    try:
        data: Any = json.loads(raw)
    except ValueError:
        return raw
    if not isinstance(data, dict):
        return raw
    stamp = str(data.get("timestamp", ""))
    clock = (stamp[11:23] if len(stamp) >= 23 else stamp).replace(",", ".")
    level = str(data.get("level", "INFO"))[:5]
    function = getattr(current, "name", None) or str(data.get("service", ""))
    extras = " ".join(f"{k}={_short(v)}" for k, v in data.items() if k not in NOISE)
    message = str(data.get("message", ""))
    return f"{clock} {level:<5} {function:<12} {message} {extras}".rstrip()


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= 120 else text[:117] + "..."


class PrettyStream:
    """A text stream that rewrites each complete JSON line before passing it on. An INFO line
    that only repeats the one before it (the deadline watch's, every few seconds here) is
    left out: the console is there to follow requests."""

    def __init__(self, target: TextIO) -> None:
        self._target = target
        self._partial = ""
        self._last = ""
        self._lock = threading.Lock()

    def write(self, text: str) -> int:
        with self._lock:
            self._partial += text
            *lines, self._partial = self._partial.split("\n")
            shown = [line for line in map(one_line, lines) if not self._repeats(line)]
            if shown:
                self._target.write("".join(line + "\n" for line in shown))
        return len(text)

    def _repeats(self, line: str) -> bool:
        rest = line.partition(" ")[2]  # without the clock
        repeat = rest == self._last and rest.startswith("INFO ")
        self._last = rest
        return repeat

    def flush(self) -> None:
        self._target.flush()


def prettify_powertools(service_logger: Any) -> None:
    """Point the Powertools logger's handler at a PrettyStream (its formatter is untouched)."""
    handler = service_logger.registered_handler
    if isinstance(handler, logging.StreamHandler):
        handler.setStream(PrettyStream(sys.stdout))
