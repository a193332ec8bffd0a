"""What the local stack says when a handler or poller crashes, without identifier values.

The console gets the exception class and where it was raised: the innermost frame, and the
innermost frame of this project's own code when that is elsewhere, as `module:function:line`.
Neither the exception's message nor a traceback goes to the console by default: both can
carry an email or a phone number. With `python -m local --debug-file PATH` the full
traceback is appended to that local file as well, for the developer who asked for it.
"""

import logging
import threading
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_debug_file: Path | None = None
_write_lock = threading.Lock()


def configure(debug_file: Path | None) -> None:
    global _debug_file  # noqa: PLW0603 - one process-wide setting, chosen once on the command line
    _debug_file = debug_file


def location(error: BaseException) -> str:
    """`module:function:line` of the raise, then `(via …)` the project's own innermost frame."""
    frames = traceback.extract_tb(error.__traceback__)
    if not frames:
        return "unknown location"
    innermost = _describe(frames[-1])
    own = [f for f in frames if _is_own(f.filename)]
    if own and own[-1] is not frames[-1]:
        return f"{innermost} (via {_describe(own[-1])})"
    return innermost


def report(log: logging.Logger, what: str, error: BaseException) -> None:
    """One console line (class and location only); the traceback to the debug file if asked."""
    log.error("%s raised %s at %s", what, type(error).__name__, location(error))
    if _debug_file is None:
        return
    text = "".join(traceback.format_exception(error))
    with _write_lock, _debug_file.open("a", encoding="utf-8") as out:
        out.write(f"--- {what}\n{text}\n")


def _describe(frame: traceback.FrameSummary) -> str:
    return f"{_module(frame.filename)}:{frame.name}:{frame.lineno}"


def _module(filename: str) -> str:
    """A dotted module name from a file path: site-packages and the repo root are cut off."""
    path = Path(filename)
    parts = path.with_suffix("").parts
    if "site-packages" in parts:
        parts = parts[parts.index("site-packages") + 1 :]
    elif path.is_relative_to(ROOT):
        parts = path.relative_to(ROOT).with_suffix("").parts
        if parts[:3] == ("layers", "common", "python"):
            parts = parts[3:]
    else:
        parts = parts[-2:]
    return ".".join(parts)


def _is_own(filename: str) -> bool:
    path = Path(filename)
    return path.is_relative_to(ROOT) and "site-packages" not in path.parts
