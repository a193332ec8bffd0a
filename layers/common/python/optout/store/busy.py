"""AWS answers that mean "not now" to the capture function: a throttle, a 5xx, a timeout or a
failed connection, after the client's own retries (optout/aws.py). The request was not
served and may come again: the consumer gets our 503 with Retry-After (the error envelope,
or the webform's page) instead of API Gateway's bare 5xx. Any other error is a fault of ours
and raises (CaptureErrorsAlarm, with the crash's class and place in the log)."""

from collections.abc import Iterator
from contextlib import contextmanager

from botocore.exceptions import ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as AwsConnectionError

from optout.errors import Unavailable
from optout.observability import logger, metrics

AWS_ERRORS = (ClientError, HTTPClientError, AwsConnectionError)
BUSY_CODES = frozenset({
    "ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded",
    "InternalServerError", "ServiceUnavailable", "InternalServiceError",
})  # fmt: skip
RETRY_AFTER_SECONDS = 1  # botocore's own first back-off is up to 1 s: a throttle is short
NOT_SERVED = "the service could not answer just now: send the request again"


def busy(error: Exception) -> bool:
    """Whether the service refused for now (throttled, failing, timed out), not for a fault."""
    if not isinstance(error, ClientError):
        return True  # a timeout or a connection that failed (botocore's transport errors)
    code = error.response.get("Error", {}).get("Code")
    status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
    return code in BUSY_CODES or int(status) >= 500


def error_code(error: BaseException) -> str:
    """An AWS error for a log line: its code, or the exception's class where AWS gave none (a
    timeout, a failed connection); never its message, which may quote a key."""
    if isinstance(error, ClientError):
        return str(error.response.get("Error", {}).get("Code", "ClientError"))
    return type(error).__name__


def unavailable(error: Exception, store: str, message: str) -> Unavailable:
    """The consumer's 503, logged with the error's class and counted (CaptureUnavailable, an
    input of CaptureErrorsAlarm, as a crash is). `store`: what did not answer, for the log."""
    code = error.response.get("Error", {}).get("Code") if isinstance(error, ClientError) else None
    logger.warning(f"{store} unavailable", extra={"error_class": type(error).__name__,
                                                  "error_code": code})  # fmt: skip
    metrics.add_metric(name="CaptureUnavailable", unit="Count", value=1)
    return Unavailable(message, RETRY_AFTER_SECONDS)


@contextmanager
def answered_as_unavailable(store: str, message: str) -> Iterator[None]:
    """A busy answer inside becomes Unavailable (503); any other error raises as it is."""
    try:
        yield
    except AWS_ERRORS as error:
        if not busy(error):
            raise
        raise unavailable(error, store, message) from error
