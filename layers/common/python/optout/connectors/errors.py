"""Why a vendor call did not succeed, and whether trying again later can help.

Messages name the vendor step and status only: never an identifier, token or response body
(vendor error bodies may echo what we sent).
"""


class DeliveryError(Exception):
    def __init__(
        self,
        reason: str,
        *,
        retryable: bool,
        http_status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable
        self.http_status = http_status
        self.retry_after = retry_after


class ConfigError(Exception):
    """A system's options or credentials are missing or malformed (an operator must fix it)."""
