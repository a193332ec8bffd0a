"""Progress on stderr while a stage runs (the table goes to stdout at the end)."""

import sys
import time


class Progress:
    def __init__(self, quiet: bool = False) -> None:
        self.quiet = quiet
        self.started = time.monotonic()
        self._last = 0.0

    def stage(self, name: str) -> None:
        self._write(f"\n[{self._elapsed()}] {name}")

    def note(self, text: str) -> None:
        self._write(f"\n[{self._elapsed()}]   {text}")

    def tick(self, label: str, done: int, total: int) -> None:
        now = time.monotonic()
        if done == total or now - self._last > 1.0:  # at most once a second
            self._last = now
            self._write(f"\r[{self._elapsed()}]   {label} {done}/{total}   ")

    def _elapsed(self) -> str:
        seconds = int(time.monotonic() - self.started)
        return f"{seconds // 60:02d}:{seconds % 60:02d}"

    def _write(self, text: str) -> None:
        if not self.quiet:
            sys.stderr.write(text)
            sys.stderr.flush()
