"""When the worker calls a vendor again after a retryable failure (delivery/retry.py): the
vendor's Retry-After when it gave one, else back-off with jitter between fixed bounds, never
past what the message's visibility can hold. The jitter is pinned to its ends here, so each
test reads the bounds an operator can expect from the settings."""

import random

import pytest

from optout.connectors.errors import DeliveryError
from optout.delivery.retry import backoff_seconds, longest_visibility, retry_delay
from optout.delivery.settings import SQS_MAX_VISIBILITY_SECONDS


class Lowest(random.Random):
    """Jitter at the bottom of its range."""

    def uniform(self, a: float, b: float) -> float:
        return a


class Highest(random.Random):
    """Jitter at the top of its range."""

    def uniform(self, a: float, b: float) -> float:
        return b


def retryable(retry_after: float | None = None) -> DeliveryError:
    return DeliveryError("vendor: HTTP 503", retryable=True, retry_after=retry_after)


@pytest.mark.parametrize(
    ("attempt", "bounds"),
    [(1, (15, 30)), (2, (15, 60)), (3, (15, 120)), (6, (15, 900)), (0, (15, 30))],
)
def test_the_back_off_doubles_from_the_base_up_to_the_cap(
    attempt: int, bounds: tuple[int, int]
) -> None:
    # base 30 s, cap 900 s: at least half the base, at most base * 2^(attempt - 1), capped
    assert (
        backoff_seconds(attempt, 30, 900, Lowest()),
        backoff_seconds(attempt, 30, 900, Highest()),
    ) == bounds


def test_a_cap_below_half_the_base_bounds_the_back_off_too() -> None:
    assert backoff_seconds(1, 30, 10, Lowest()) == backoff_seconds(1, 30, 10, Highest()) == 10


def test_a_back_off_is_whole_seconds_rounded_up_and_never_at_once() -> None:
    assert backoff_seconds(1, 3, 900, Lowest()) == 2  # 1.5 s: SQS takes whole seconds
    assert backoff_seconds(1, 0.5, 900, Lowest()) == 1  # 0.25 s: not a retry at once
    assert backoff_seconds(1, 0, 900, Highest()) == 1


def test_without_retry_after_the_delay_is_the_back_off_within_the_longest_wait() -> None:
    assert retry_delay(retryable(), 3, 30, 900, Highest()) == 120
    assert retry_delay(retryable(), 3, 30, 900, Highest(), longest=100) == 100


@pytest.mark.parametrize(
    ("asked", "delay"),
    [(7.0, 7), (7.2, 8), (0.0, 1), (0.4, 1), (3600.0, 3600), (50_000.0, 43_200)],
)
def test_the_vendor_s_retry_after_wins_over_the_back_off_and_its_cap(
    asked: float, delay: int
) -> None:
    # A Retry-After above the 900 s cap is still honoured, rounded up to whole seconds, at
    # least 1 s, and at most what the message can wait
    assert retry_delay(retryable(asked), 1, 30, 900, Lowest(), longest=43_200) == delay


def test_the_longest_visibility_is_12_h_less_the_batch_s_time_and_the_margin() -> None:
    # 300 s batching window, 20.5 s into the invocation, a 210 s margin: whole seconds, down
    assert longest_visibility(300, 20.5) == SQS_MAX_VISIBILITY_SECONDS - 300 - 210 - 21
    assert longest_visibility(300) == SQS_MAX_VISIBILITY_SECONDS - 510
    assert longest_visibility(SQS_MAX_VISIBILITY_SECONDS) == 0  # never negative
