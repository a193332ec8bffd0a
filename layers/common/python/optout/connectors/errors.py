"""Why a vendor call did not succeed, and whether trying again later can help.

Messages name the vendor step and status only: never an identifier, token or response body
(vendor error bodies may echo what we sent).
"""

# A reason goes onto the job's receipt (`error`, then `check_errors`) and into the INFO log:
# it is bounded, as every vendor text the receipt keeps is, so the job item stays far below
# DynamoDB's 400 KB (job items are under 1 KB: docs/performance.md) whatever a vendor answers.
REASON_MAX = 200


def clipped(text: str, limit: int) -> str:
    """The text, or its first characters and "…" so that it is `limit` characters long."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


class DeliveryError(Exception):
    def __init__(
        self,
        reason: str,
        *,
        retryable: bool,
        http_status: int | None = None,
        retry_after: float | None = None,
        auth: bool = False,
        config: bool = False,
    ) -> None:
        reason = clipped(reason, REASON_MAX)
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable
        self.http_status = http_status
        self.retry_after = retry_after
        # The vendor refused our credentials: the connector re-reads them once and tries again
        # (a rotated secret) before the failure becomes final.
        self.auth = auth
        # Our own configuration cannot be used (a UID2 key of the wrong length, a webhook
        # secret check_secret refuses): an operator fixes it, then replays; not the vendor's.
        self.config = config
        # The identifier types whose calls had started when the batch failed, where the
        # connector knows (Meta: a call per type, the first refusal stops the rest); None: the
        # job's every type may have gone. A type never sent is not `attempted` on the receipt.
        self.types_started: frozenset[str] | None = None

    @property
    def reason_class(self) -> str:
        """A coarse, value-free label for logs and metrics."""
        if self.config:
            return "config_invalid"
        if self.auth:
            return "credentials_rejected"
        if self.http_status is None:
            return "transport" if self.retryable else "vendor_rejected"
        if self.http_status == 429:
            return "throttled"
        if self.http_status >= 500 or self.retryable:
            return "vendor_unavailable"
        return "vendor_rejected"


class ConfigError(Exception):
    """A system's options or credentials are missing or malformed (an operator must fix it)."""


class SecretRefused(ConfigError):
    """A well-formed secret the connector's own check refuses (`Connector.check_secret`): after
    one fresh read, the jobs fail at once (`config_invalid`, listed for replay), as a vendor's
    refusal of our credentials does, rather than waiting out their retries."""
