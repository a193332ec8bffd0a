"""When to try a failed delivery again: Retry-After if the vendor said, else backoff with jitter."""

import math
import random

from optout.connectors.errors import DeliveryError
from optout.delivery.settings import SQS_MAX_VISIBILITY_SECONDS


def backoff_seconds(attempt: int, base: float, cap: float, rng: random.Random) -> int:
    """'Full jitter' exponential backoff: uniform in [base/2, min(cap, base * 2^(attempt-1))].

    The floor keeps a retry from landing at once; the jitter spreads a burst of failures so
    they do not hit the vendor again together.
    """
    ceiling = min(cap, base * 2 ** max(0, attempt - 1))
    return max(1, math.ceil(rng.uniform(min(base / 2, ceiling), ceiling)))


def retry_delay(
    error: DeliveryError, attempt: int, base: float, cap: float, rng: random.Random
) -> int:
    if error.retry_after is not None:  # the vendor's own answer wins, even above our cap
        return min(SQS_MAX_VISIBILITY_SECONDS, max(1, math.ceil(error.retry_after)))
    return backoff_seconds(attempt, base, cap, rng)
