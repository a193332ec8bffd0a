"""`python -m local --port 3000 --systems local/systems.json`: the whole pipeline, locally.

Starts moto, creates the table and queues from template.yaml, loads the real handlers, polls
the stream and the queues, serves the API, the sandboxes and the demo site on 127.0.0.1, and
stops cleanly on Ctrl-C or SIGTERM.
"""

import argparse
import gc
import logging
import signal
import sys
import threading
import warnings
from pathlib import Path
from types import FrameType

from local import console, crash_report
from local.lambdas import LAYER_PYTHON, ROOT, ensure_layer_on_path

log = logging.getLogger("local.stack")
# Python's cyclic garbage collector, tuned for this one long-lived process (issue 16): with the
# defaults (700, 10, 10) a burst of 1,000 opt-outs ran ~4,000 young and 12 full collections,
# each full one walking every object moto keeps (tens of thousands of items' values) with the
# GIL held: ~3.4 s of the stack's ~37 s of CPU. Young collections a thirtieth as often, and a
# full one only after 100 middle ones, collect the same cycles later. Only this process: the
# handlers run with Python's defaults on Lambda, and nothing they do depends on when a
# collection runs.
GC_THRESHOLDS = (20_000, 20, 100)


def resolve_systems(given: str) -> Path:
    """As given, else relative to the layer root: Lambda mounts the layer's config/ at /opt."""
    for candidate in (Path(given), ROOT / given, LAYER_PYTHON.parent / given):
        if candidate.is_file():
            return candidate.resolve()
    raise SystemExit(f"systems config not found: {given}")


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m local", description=__doc__)
    parser.add_argument("--port", type=int, default=3000,
                        help="the loopback port the stack listens on (default 3000)")  # fmt: skip
    parser.add_argument("--systems", default="local/systems.json",
                        help="the systems config (systems.json) the stack delivers to")  # fmt: skip
    parser.add_argument(
        "--secrets",
        type=Path,
        default=ROOT / "local" / "secrets.json",
        help="each system's sandbox credentials, keyed by its `credentials` name",
    )
    parser.add_argument(
        "--template",
        type=Path,
        help="template.yaml to deploy (default: the repository's); e.g. a copy with a "
        "SystemLimits row for a system the committed one lacks, as `make template` needs",
    )
    parser.add_argument("--log-format", choices=("pretty", "json"), default="pretty",
                        help="the functions' log lines: one readable line each (pretty, "
                        "the default) or their JSON as CloudWatch gets it")  # fmt: skip
    parser.add_argument("--log-level", default="INFO",
                        help="the least level of the stack's own lines: DEBUG, INFO, "
                        "WARNING or ERROR (default INFO)")  # fmt: skip
    parser.add_argument(
        "--debug-file",
        type=Path,
        help="append full tracebacks of crashes to this local file (they can hold identifiers)",
    )
    return parser.parse_args(argv)


def banner(url: str, systems: list[str]) -> str:
    names = ", ".join(systems)
    return "\n".join(
        [
            "",
            "optout-bridge local stack is ready",
            f"  demo site   {url}/",
            f"  API         {url}/v1/   (spec: {url}/v1/openapi.json)",
            f"  requests    {url}/requests.html   (as JSON: {url}/_local/requests)",
            f"  sandboxes   {url}/_sandbox/<system>/requests   ({names})",
            "  Ctrl-C stops it.",
            "",
        ]
    )


class StopRequest:
    """The SIGTERM and SIGINT handler, which only notes the signal, and the main thread's wait
    for it. A handler runs in the main thread between two bytecodes, so one that set the stop
    event (a plain lock inside) could run within another Event.set or wait holding that lock
    and wait for it for ever: a SIGTERM to `make run`'s process group, which make passes on to
    the stack a moment later, left the stack hung in exactly that (review s21 newcomer)."""

    def __init__(self, stop_event: threading.Event) -> None:
        self.stop_event = stop_event
        self.signal_name: str | None = None

    def __call__(self, signum: int, _frame: FrameType | None) -> None:
        self.signal_name = signal.Signals(signum).name

    def wait(self, poll_seconds: float = 0.2) -> None:
        """Until a signal asks for a stop, or something else sets the event: the main thread
        looks every poll_seconds, so the handler never has to wake it through a lock."""
        while self.signal_name is None and not self.stop_event.wait(poll_seconds):
            pass
        if self.signal_name is not None:
            log.info("%s received: stopping", self.signal_name)


def main(argv: list[str] | None = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    console.configure(args.log_level)
    crash_report.configure(args.debug_file)
    # Metrics are disabled locally (no CloudWatch), so Powertools' empty-flush warning is noise.
    warnings.filterwarnings("ignore", message="No application metrics to publish")
    ensure_layer_on_path()
    from local.deployment import StackConfigError  # noqa: PLC0415 - needs the layer on the path
    from local.stack import LocalStack, StackOptions  # noqa: PLC0415 - as above

    options = StackOptions(
        port=args.port,
        systems_config=resolve_systems(args.systems),
        secrets_file=args.secrets,
        pretty_logs=args.log_format == "pretty",
        **({"template": args.template.resolve()} if args.template else {}),
    )
    stack = LocalStack(options)

    stop_request = StopRequest(stack.stop_event)
    signal.signal(signal.SIGTERM, stop_request)
    signal.signal(signal.SIGINT, stop_request)
    try:
        try:
            stack.start()
        except StackConfigError as error:  # one line naming the system: no traceback
            print(f"python -m local: {error}", file=sys.stderr)
            return 2
        # What start() made (modules, service models, the handlers) lives as long as the
        # process: left out of every later collection.
        gc.freeze()
        gc.set_threshold(*GC_THRESHOLDS)
        print(banner(stack.url, stack.systems), flush=True)
        stop_request.wait()
    finally:
        stack.stop()
    log.info("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
