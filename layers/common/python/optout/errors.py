"""Domain errors; the API layer maps each class to one HTTP status in one place."""


class DomainError(Exception):
    """Base class. Messages never contain identifier values (PII)."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class InvalidInput(DomainError):
    """The input is malformed (400/422)."""


class NotFound(DomainError):
    """The addressed record does not exist (404)."""


class Conflict(DomainError):
    """The request conflicts with an earlier one, e.g. an Idempotency-Key reused (409)."""


class Forbidden(DomainError):
    """The caller is not authorised for this route (403)."""


class Unavailable(DomainError):
    """A store this request needs did not answer (throttled, failing or timed out) after the
    client's retries: nothing was recorded, and the same request may be sent again after
    `retry_after` seconds (503 with Retry-After)."""

    def __init__(self, message: str, retry_after: int = 1) -> None:
        super().__init__(message, None)
        self.retry_after = retry_after
