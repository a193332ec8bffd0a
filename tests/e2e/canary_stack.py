"""`python -m tests.e2e.canary_stack --record FILE ARGS`: the local stack, with every way out
of the process watched, for tests/e2e/test_pii_canary.py.

On top of `python -m local ARGS`: Powertools metrics are on (their EMF lines go to stdout, as
on Lambda, where they become CloudWatch metrics) and the functions log at DEBUG; and FILE gets
one JSON line per SQS message body sent (SendMessage, SendMessageBatch) and per tracer
annotation, metadata, and handler answer or error the tracer was asked to capture (with the
capture flag it resolved: the answer itself is recorded only if it would have gone to X-Ray).
"""

import json
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from local.lambdas import ensure_layer_on_path

_lock = threading.Lock()


def _recorder(path: Path) -> Callable[[dict[str, Any]], None]:
    def record(entry: dict[str, Any]) -> None:
        line = json.dumps(entry, default=repr)
        with _lock, path.open("a", encoding="utf-8") as out:
            out.write(line + "\n")

    return record


def _watch_environment() -> None:
    import local.stack  # noqa: PLC0415 - after the layer is on the path

    original = local.stack.stack_environment

    def with_metrics_and_debug(*args: Any, **kwargs: Any) -> dict[str, str]:
        env = original(*args, **kwargs)
        env["POWERTOOLS_METRICS_DISABLED"] = "false"
        env["POWERTOOLS_LOG_LEVEL"] = "DEBUG"
        # One vendor call per attempt: each fault goes back to the queue, so the retry path
        # (receive counts, back-off, attempts) is exercised and its logs searched too.
        env["HTTP_ATTEMPTS"] = "1"
        return env

    local.stack.stack_environment = with_metrics_and_debug  # type: ignore[assignment]


def _watch_queues(record: Callable[[dict[str, Any]], None]) -> None:
    from botocore.client import BaseClient  # noqa: PLC0415

    make_api_call = BaseClient._make_api_call

    def spy(self: BaseClient, operation: str, params: dict[str, Any]) -> Any:
        if self.meta.service_model.service_name == "sqs":
            if operation == "SendMessage":
                record({"kind": "sqs", "body": params.get("MessageBody")})
            elif operation == "SendMessageBatch":
                for entry in params.get("Entries", []):
                    record({"kind": "sqs", "body": entry.get("MessageBody")})
        return make_api_call(self, operation, params)

    BaseClient._make_api_call = spy  # type: ignore[method-assign]


def _watch_tracer(record: Callable[[dict[str, Any]], None]) -> None:
    from aws_lambda_powertools.tracing.tracer import Tracer  # noqa: PLC0415

    put_annotation, put_metadata = Tracer.put_annotation, Tracer.put_metadata
    add_response = Tracer._add_response_as_metadata
    add_error = Tracer._add_full_exception_as_metadata

    def annotation(self: Tracer, key: str, value: Any) -> None:
        record({"kind": "annotation", "key": key, "value": value})
        put_annotation(self, key, value)

    def metadata(self: Tracer, key: str, value: Any, namespace: str | None = None) -> None:
        record({"kind": "metadata", "key": key, "value": value})
        put_metadata(self, key, value, namespace)

    def response(self: Tracer, method_name: Any = None, data: Any = None, subsegment: Any = None,
                 capture_response: Any = None) -> None:  # fmt: skip
        captured = bool(capture_response)
        record({"kind": "response", "method": method_name, "capture": captured,
                "data": data if captured else None})  # fmt: skip
        add_response(self, method_name, data, subsegment, capture_response)

    def error(self: Tracer, method_name: str, error: Exception, subsegment: Any,
              capture_error: Any = None) -> None:  # fmt: skip
        captured = bool(capture_error)
        record({"kind": "error", "method": method_name, "capture": captured,
                "error": repr(error) if captured else None})  # fmt: skip
        add_error(self, method_name, error, subsegment, capture_error)

    Tracer.put_annotation = annotation  # type: ignore[method-assign]
    Tracer.put_metadata = metadata  # type: ignore[method-assign]
    Tracer._add_response_as_metadata = response  # type: ignore[method-assign]
    Tracer._add_full_exception_as_metadata = error  # type: ignore[method-assign]


if __name__ == "__main__":
    argv = sys.argv[1:]
    at = argv.index("--record")
    record = _recorder(Path(argv[at + 1]))
    del argv[at : at + 2]
    ensure_layer_on_path()
    _watch_environment()
    _watch_queues(record)
    _watch_tracer(record)
    from local.__main__ import main

    sys.exit(main(argv))
