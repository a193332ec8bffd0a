"""The JSON lines the functions' shared Powertools logger writes (stdout on Lambda)."""

import io
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from optout.observability import logger


@contextmanager
def logged_lines() -> Iterator[list[dict[str, Any]]]:
    """Points the logger's handler at a buffer for the block; the list fills at its end."""
    handler = logger.registered_handler
    stream = io.StringIO()
    before = handler.setStream(stream)  # type: ignore[attr-defined]
    lines: list[dict[str, Any]] = []
    try:
        yield lines
    finally:
        handler.setStream(before)  # type: ignore[attr-defined]
        lines.extend(json.loads(line) for line in stream.getvalue().splitlines())
