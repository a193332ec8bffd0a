"""`python -m tests.e2e.race_stack [--no-guard] ARGS`: the local stack, moto's race window wide.

Used by tests/e2e/test_concurrency.py. `--no-guard` runs the stack without local/moto_guard.py,
to watch the 500s of issue 17 come back (docs/local-stack.md shows how).
"""

import sys

from local import moto_guard
from local.__main__ import main
from tests.support.race_window import widen

if __name__ == "__main__":
    argv = sys.argv[1:]
    if "--no-guard" in argv:
        argv.remove("--no-guard")
        setattr(moto_guard, "install", lambda: None)  # noqa: B010 - the stack as it was
    widen()
    sys.exit(main(argv))
