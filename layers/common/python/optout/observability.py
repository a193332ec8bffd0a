"""One Logger and Metrics for every function (service name from POWERTOOLS_SERVICE_NAME).

Tracing is the function's own (template.yaml's `TracingMode`, Active by default): Lambda
records each sampled invocation's segment (initialisation, invocation, overhead) with no SDK in
the process, and the Logger puts the trace id (`xray_trace_id`) on every log line. Powertools'
Tracer is left out on purpose: it imports the X-Ray SDK (and patches botocore), the largest
single part of a cold start (docs/decisions.md, "Tracing without the X-Ray SDK").

Log lines carry what the line is about, `cold_start`, `correlation_id` (API Gateway's request
id, as in the access log) where set, the invocation's `function_request_id` and the trace id;
not the keys that are the same for every line of a log group (docs/performance.md, "Log bytes
per opt-out").
"""

import functools
from collections.abc import Callable
from typing import Any, TypeVar, cast

import jmespath  # type: ignore[import-untyped]
from aws_lambda_powertools.exceptions import InvalidEnvelopeExpressionError
from aws_lambda_powertools.logging import Logger
from aws_lambda_powertools.metrics import Metrics
from aws_lambda_powertools.utilities.jmespath_utils import PowertoolsFunctions
from jmespath.visitor import TreeInterpreter  # type: ignore[import-untyped]

Handler = TypeVar("Handler", bound=Callable[..., Any])

# What Powertools' inject_lambda_context puts on every line, and CloudWatch already says: the
# function is the log group's name (Logs Insights' @log), its memory is in Lambda's
# platform.report records, and the service is one name for the whole stack (EMF lines keep it:
# it is the metrics' dimension). `function_request_id` stays: a failed stream or queue batch's
# DLQ record names the invocation by it (`requestContext.requestId`), and it is how an operator
# finds that invocation's lines (platform records are gone with `SystemLogLevel=WARN`).
DROPPED_KEYS = (
    "function_name",
    "function_memory_size",
    "function_arn",
    "service",
)

# location=None: the message names the line (an error's own place is in `error_at` or the
# exception's stack trace).
logger = Logger(location=None)
metrics = Metrics(namespace="OptOutBridge")


def log_context(correlation_id_path: str | None = None) -> Callable[[Handler], Handler]:
    """Powertools' inject_lambda_context with every invocation's keys started afresh (a key
    one invocation set never reaches the next) and DROPPED_KEYS left out.

    The correlation id is read as Powertools reads it (its JMESPath query, with its functions),
    from an expression compiled once: Powertools' own `correlation_id_path` parses the path
    and builds its functions again at every invocation (a reference cycle of garbage each
    time, on the capture's hot path; docs/performance.md, part G)."""
    path = jmespath.compile(correlation_id_path).parsed if correlation_id_path else None
    # What `ParsedResult.search` builds at every call: one interpreter does for every event
    interpreter = TreeInterpreter(jmespath.Options(custom_functions=PowertoolsFunctions()))

    def decorate(handler: Handler) -> Handler:
        @functools.wraps(handler)
        def without_dropped_keys(event: Any, context: Any, *args: Any, **kwargs: Any) -> Any:
            logger.remove_keys(DROPPED_KEYS)
            if path is not None:
                logger.set_correlation_id(_correlation_id(interpreter, path, event))
            return handler(event, context, *args, **kwargs)

        wrapped = logger.inject_lambda_context(without_dropped_keys, clear_state=True)
        return cast(Handler, wrapped)

    return decorate


def _correlation_id(interpreter: Any, path: Any, event: Any) -> Any:
    """Powertools' `jmespath_utils.query`, its expression compiled beforehand."""
    try:
        return interpreter.visit(path, event)
    except (TypeError, UnicodeError) as error:  # what query turns into its own error
        message = f"Failed to unwrap event from envelope using expression. Error: {error}"
        raise InvalidEnvelopeExpressionError(message) from error
