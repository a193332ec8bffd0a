"""When to try a failed delivery again: Retry-After if the vendor said, else backoff with jitter.

SQS hides a message for at most 12 h in total, counted from the receive that delivered it, and
refuses (does not shorten) a ChangeMessageVisibility past that. A longer wait is made of
visibility legs: each return before the job's `retry_at` is hidden again without a vendor call
(delivery.service), so a vendor's "come back tomorrow" is honoured, within what the message's
remaining receives can hold (docs/decisions.md, "Retry-After past SQS's 12 h").
"""

import math
import random

from optout.connectors.errors import DeliveryError
from optout.delivery.settings import SQS_MAX_VISIBILITY_SECONDS

# Between SQS's receive and our ChangeMessageVisibility, besides the batching window and the
# invocation's own run (counted apart): Lambda's poller may hold a received batch for as long
# as the jobs queue's VisibilityTimeout (180 s, scripts/templates/system.yaml) while it retries
# a throttled invocation, then a cold start and clock differences (30 s). A margin shorter than
# that makes SQS refuse the change (`VisibilityRefused`) and costs the message a receive.
VISIBILITY_MARGIN_SECONDS = 210
# A message back within this of its job's retry time is tried now (clock differences); one
# back earlier is hidden for the rest, even minutes: two legs of a day-long Retry-After fall
# ~14 min short of it, and a vendor's quota that resets at the time it said answers 429 again
# before then (a wasted call and receive, where a short leg costs only the receive).
WAIT_AGAIN_AFTER_SECONDS = 5


def longest_visibility(batch_window_seconds: float, elapsed_seconds: float = 0.0) -> int:
    """The most ChangeMessageVisibility accepts for a message of this batch: 12 h less the
    time since its receive (the batching window plus the invocation so far) and a margin."""
    spent = batch_window_seconds + elapsed_seconds + VISIBILITY_MARGIN_SECONDS
    return max(0, math.floor(SQS_MAX_VISIBILITY_SECONDS - spent))


def backoff_seconds(attempt: int, base: float, cap: float, rng: random.Random) -> int:
    """'Full jitter' exponential backoff: uniform in [base/2, min(cap, base * 2^(attempt-1))].

    The floor keeps a retry from landing at once; the jitter spreads a burst of failures so
    they do not hit the vendor again together.
    """
    ceiling = min(cap, base * 2 ** max(0, attempt - 1))
    return max(1, math.ceil(rng.uniform(min(base / 2, ceiling), ceiling)))


def retry_delay(
    error: DeliveryError,
    attempt: int,
    base: float,
    cap: float,
    rng: random.Random,
    longest: int = SQS_MAX_VISIBILITY_SECONDS,
) -> int:
    """Seconds until the next vendor call, at most `longest` (what the message can wait)."""
    if error.retry_after is not None:  # the vendor's own answer wins, even above our cap
        # clamped before ceil: an infinite or NaN wait is read as the longest one
        asked = error.retry_after if math.isfinite(error.retry_after) else longest
        return max(1, math.ceil(min(asked, longest)))
    return min(longest, backoff_seconds(attempt, base, cap, rng))
