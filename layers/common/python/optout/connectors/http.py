"""A minimal JSON-over-HTTPS client on the standard library (no extra dependency in the layer).

Every non-2xx answer becomes a DeliveryError classified once, here: 429 (with Retry-After),
408 and 5xx and transport failures are retryable; every other 4xx is permanent (a connector
whose vendor throttles with another status reads the answer itself: Salesforce's 403
REQUEST_LIMIT_EXCEEDED, Meta's 400 codes), unless the call names it in `also_retryable`
(Segment's Tracking API 460, which Segment's own library retries). A 429 without
Retry-After may carry the wait as `X-RateLimit-Retry-After` or `X-RateLimit-Reset` instead
(Braze), or a spent quota's reset time (Segment's regulations): `asked_wait`.

A call may be tried again at once, a bounded number of times (`RetryPolicy`; the worker
tries each call up to three times): a delivery often takes several calls (Braze looks each
email up before the update; Salesforce queries, links and updates), and without it one
flaky call in a vendor answering 30% of calls with errors fails the whole batch nearly every
time (docs/reliability.md). What outlasts the policy (a Retry-After longer than
`max_wait_seconds`, a second timeout, the last try) goes back to the queue's back-off.

Every call is bounded by the invocation's time budget (`bounded_by`): a try starts only if
`MIN_TRY_SECONDS` are left, its socket timeout is at most the time left, and no retry wait
runs past it. A client `paced` by a system's Pacer starts each try (a retry too: each is a
request the vendor counts) only at its turn, and only if the turn comes with MIN_TRY_SECONDS
still left (connectors/pace.py). A call that cannot start raises `OutOfTime` (retryable)
instead of being killed at the function timeout; `tries_started` tells a connector whether
any call of its own went out before that, so the worker can tell a job never sent from an
attempt cut short (docs/reliability.md, "Time left").
"""

import copy
import json
import logging
import random
import re
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

from optout.connectors.errors import DeliveryError
from optout.connectors.pace import Pacer, seconds_to_last_call
from optout.time_budget import TimeBudget

RETRYABLE_4XX = frozenset({408, 429})
# A try with less time than this left is not started: a loopback sandbox answers in
# milliseconds, a vendor over the internet rarely in under a second.
MIN_TRY_SECONDS = 1.0
# The most of an answer read: the vendors' answers are JSON of a few KB to a few hundred KB
# (one person's profiles, records or job status). A larger or endless body
# (a vendor fault, a mistyped base_url) would hold the worker to its timeout or run it out of
# memory (review s21 MUT-F): it is a retryable failure instead, and no more of it is read.
MAX_ANSWER_BYTES = 8 * 1024 * 1024
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RetryPolicy:
    """Tries of one call before its failure is reported (1: no retry here)."""

    attempts: int = 1
    base_seconds: float = 0.2  # back-off before the second try, doubling, with jitter
    max_wait_seconds: float = 2.0  # a longer Retry-After is honoured by the queue instead
    # A call that timed out twice is slow, not flaky: each try costs the full timeout and the
    # batch shares one Lambda timeout, so the queue's back-off tries it later.
    timed_out_tries: int = 2

    def backoff(self, attempt: int, rng: random.Random) -> float:
        ceiling = self.base_seconds * 2 ** (attempt - 1)
        return rng.uniform(ceiling / 2, ceiling)


def retryable_status(status: int, also: frozenset[int] = frozenset()) -> bool:
    """`also`: a call's own retryable 4xx, for one vendor's API only (never the global set)."""
    return status in RETRYABLE_4XX or status in also or status >= 500


class TimedOut(DeliveryError):
    def __init__(self, step: str) -> None:
        super().__init__(f"{step}: timed out", retryable=True)


class OutOfTime(DeliveryError):
    """The invocation's time budget has no room for this call: try it on a later delivery."""

    def __init__(self, step: str) -> None:
        super().__init__(f"{step}: out of time", retryable=True)


@dataclass(frozen=True)
class HttpResponse:
    status: int
    headers: dict[str, str]  # lower-case names
    body: bytes

    def json(self) -> Any:
        if not self.body:
            return None
        try:
            return json.loads(self.body)
        except ValueError:
            return None


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    # A redirect would resend credentials to wherever the vendor points: treat it as an answer.
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def paced_start_seconds(calls: int, rate_per_second: float, max_concurrency: int) -> float:
    """Seconds from an invocation's start that `calls` requests at a system's pace need for
    the last of them to start with MIN_TRY_SECONDS to run: the worker's test of one job
    (delivery/service.py), and `make template`'s of a batch and of a worst-case job."""
    return seconds_to_last_call(calls, rate_per_second, max_concurrency) + MIN_TRY_SECONDS


@dataclass
class _Shared:
    """What a client and its paced copies (`HttpClient.paced`) share: one invocation's budget,
    the retry count and each thread's tries."""

    budget: TimeBudget
    retried: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    local: threading.local = field(default_factory=threading.local)


class HttpClient:
    def __init__(
        self,
        timeout_seconds: float,
        retry: RetryPolicy | None = None,
        *,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.timeout = timeout_seconds
        self.retry = retry or RetryPolicy()
        self._sleep = sleep
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not security
        self._opener = urllib.request.build_opener(_NoRedirect)
        # One invocation at a time per Lambda container; a batch's pool threads share it.
        self._shared = _Shared(TimeBudget.unbounded())
        self._pacer: Pacer | None = None  # None: unpaced (a CLI run, a config check)

    def paced(self, pacer: Pacer) -> "HttpClient":
        """This client with every try of every call waiting its turn on `pacer` (one system's
        pace); budget, retry count and tries stay shared with this client."""
        twin = copy.copy(self)
        twin._pacer = pacer
        return twin

    @contextmanager
    def bounded_by(self, budget: TimeBudget) -> Iterator[None]:
        """Every call made inside ends before `budget` runs out (or raises OutOfTime)."""
        shared = self._shared
        previous, shared.budget = shared.budget, budget
        try:
            yield
        finally:
            shared.budget = previous

    @property
    def retried(self) -> int:
        """Tries after a failed one, since this client was made (a metric)."""
        return self._shared.retried

    def tries_started(self) -> int:
        """Tries this thread has started (sent or not, answered or not) since this client was
        made: unchanged across a call that raised OutOfTime, nothing of it reached a vendor."""
        return int(getattr(self._shared.local, "tries", 0))

    def send(
        self,
        method: str,
        url: str,
        *,
        step: str,
        headers: dict[str, str] | None = None,
        body: bytes | None = None,
        raise_for_status: bool = True,
        also_retryable: frozenset[int] = frozenset(),
        once: bool = False,
    ) -> HttpResponse:
        """One call, tried as `retry` allows; raises DeliveryError for a non-2xx unless told
        not to (the caller then classifies the answer itself). `step` names it in errors;
        `also_retryable`: 4xx statuses this vendor's API means as "try again". `once`: one
        try whatever the policy, for a call that is not idempotent (a 5xx or a timeout may
        come after the vendor applied it, and a resend would apply it twice): its failure
        goes to the caller, which can look before trying again."""
        if not url.startswith(("https://", "http://")):
            raise DeliveryError(f"{step}: base_url must be http(s)", retryable=False)
        timed_out = 0
        attempt = 1
        budget = self._shared.budget
        failure: DeliveryError | None = None  # the last try's, when it raised
        while True:
            try:
                left = self._take_turn(budget, step)
            except OutOfTime:
                # No turn for a retry before the budget ends: the last try's failure stands.
                if failure is not None:
                    raise failure from None
                if attempt == 1:
                    raise
                break
            self._shared.local.tries = self.tries_started() + 1
            try:
                response = self._once(method, url, step, headers, body, min(self.timeout, left))
                failure = None
            except DeliveryError as error:
                failure = error
                timed_out += isinstance(error, TimedOut)
                last = (
                    once
                    or attempt >= self.retry.attempts
                    or timed_out >= self.retry.timed_out_tries
                )
                if last:
                    raise
                wait = self.retry.backoff(attempt, self._rng)
                if not budget.allows(wait + MIN_TRY_SECONDS):
                    raise  # no time for another try: the queue's back-off tries it later
            else:
                answered_wait = (
                    None if once else self._wait_before_retry(response, attempt, also_retryable)
                )
                if answered_wait is None or not budget.allows(answered_wait + MIN_TRY_SECONDS):
                    break  # no time for another try: its failure goes to the queue's back-off
                wait = answered_wait
            log.debug("retrying %s after %.2f s (try %d)", step, wait, attempt)
            with self._shared.lock:  # `+= 1` is a read and a write another thread may split
                self._shared.retried += 1
            self._sleep(wait)
            attempt += 1
        if 200 <= response.status < 300 or not raise_for_status:
            return response
        raise status_error(step, response, also_retryable)

    def _take_turn(self, budget: TimeBudget, step: str) -> float:
        """Seconds left for a try once its pace allows it to start; OutOfTime (nothing sent,
        no pace slot taken) if the try cannot start with MIN_TRY_SECONDS still left."""
        left = budget.left()
        if left < MIN_TRY_SECONDS:
            raise OutOfTime(step)
        if self._pacer is None:
            return left
        if not self._pacer.wait_turn(left - MIN_TRY_SECONDS):
            raise OutOfTime(step)
        # Read again: the pool's other calls (and their answers) went on during the wait.
        left = budget.left()
        if left < MIN_TRY_SECONDS:
            raise OutOfTime(step)
        return left

    def _wait_before_retry(
        self, response: HttpResponse, attempt: int, also: frozenset[int] = frozenset()
    ) -> float | None:
        """Seconds to wait before trying a failed answer again, or None to return it now."""
        if not retryable_status(response.status, also) or attempt >= self.retry.attempts:
            return None
        asked = asked_wait(response)
        if asked is None:
            return self.retry.backoff(attempt, self._rng)
        return asked if asked <= self.retry.max_wait_seconds else None

    def _once(
        self,
        method: str,
        url: str,
        step: str,
        headers: dict[str, str] | None,
        body: bytes | None,
        timeout: float,
    ) -> HttpResponse:
        request = urllib.request.Request(url, data=body, method=method, headers=headers or {})  # noqa: S310 - scheme checked by send
        try:
            # The socket timeout bounds each read, not the whole answer: a vendor trickling
            # bytes can still outlast it (the function's own timeout is then the stop).
            with self._opener.open(request, timeout=timeout) as answer:
                read = _bounded(answer, step)
                return HttpResponse(answer.status, _lower(answer.headers), read)
        except urllib.error.HTTPError as error:
            return HttpResponse(error.code, _lower(error.headers), _bounded(error, step))
        except TimeoutError:
            raise TimedOut(step) from None
        except urllib.error.URLError as error:
            if isinstance(error.reason, TimeoutError):
                raise TimedOut(step) from None
            raise DeliveryError(f"{step}: connection failed", retryable=True) from None
        except (ConnectionError, OSError):
            raise DeliveryError(f"{step}: connection failed", retryable=True) from None


def _bounded(answer: Any, step: str) -> bytes:
    """The answer's body, at most MAX_ANSWER_BYTES: past it, a retryable failure."""
    body: bytes = answer.read(MAX_ANSWER_BYTES + 1)
    if len(body) > MAX_ANSWER_BYTES:
        raise DeliveryError(f"{step}: answer over {MAX_ANSWER_BYTES} bytes", retryable=True)
    return body


def status_error(
    step: str,
    response: HttpResponse,
    also_retryable: frozenset[int] = frozenset(),
    *,
    detail: str = "",
) -> DeliveryError:
    """The error of a non-2xx answer, classified by its status. `detail`, a vendor's code the
    caller read from the answer (never its free text), follows the status in the reason."""
    status = response.status
    retryable = retryable_status(status, also_retryable)
    retry_after = asked_wait(response) if retryable else None
    return DeliveryError(
        f"{step}: HTTP {status} {detail}".rstrip(),
        retryable=retryable,
        http_status=status,
        retry_after=retry_after,
        auth=status == 401,
    )


def asked_wait(response: HttpResponse, now: datetime | None = None) -> float | None:
    """Seconds the vendor asked us to wait: Retry-After, else on a 429 the rate-limit headers
    Braze sends instead (braze.com/docs/api/messaging_api/rate_limits, checked 2026-12-01):
    `X-RateLimit-Retry-After` (seconds), else the later of two resets: `X-RateLimit-Reset`
    (when the window resets: Braze's epoch seconds, or Segment's Public API window as an
    RFC 5322 date, docs.segmentapis.com/tag/Rate-Limits, read 2026-12-02) and Segment's
    regulation quota, `X-Regulation-RateLimit-Quota-Reset`, "ISO 8601 timestamp for when the
    quota resets", read only when `X-Regulation-RateLimit-Remaining` says 0 requests are left
    (a 429 with some left is another limit's: Segment Public API, createWorkspaceRegulation,
    "Rate limit headers"); a retry before the later reset meets the other limit again. Only a
    429 reads them: on a 5xx a window's reset says nothing about the outage. A reset time not
    ahead of now asks no wait (None: the back-off applies). The caller bounds the wait (the
    in-call retry's `max_wait_seconds`, the queue's visibility: delivery.retry)."""
    headers = response.headers
    asked = parse_retry_after(headers.get("retry-after"), now)
    if asked is not None or response.status != 429:
        return asked
    asked = parse_retry_after(headers.get("x-ratelimit-retry-after"), now)
    if asked is not None:
        return asked
    quota = None
    if whole_number(headers.get("x-regulation-ratelimit-remaining") or "") == 0:
        quota = parse_iso_reset(headers.get("x-regulation-ratelimit-quota-reset"), now)
    resets = (parse_rate_limit_reset(headers.get("x-ratelimit-reset"), now), quota)
    return max((r for r in resets if r is not None), default=None)


# Below this an X-RateLimit-Reset is seconds from now, at or above it epoch seconds (2001-09-09):
# vendors use both conventions (Braze and GitHub epoch, others a delta), and no window is 31
# years long, so each value reads one way only.
EPOCH_SECONDS_FROM = 1_000_000_000
# A whole number a vendor sends (seconds in a header, a line number in a body): ASCII digits
# only, and few enough to stay a finite, exact float (str.isdigit() also takes '²' or
# Arabic-Indic digits, which int() refuses or reads, and 309 digits overflow a float to inf).
WHOLE_NUMBER = re.compile(r"[0-9]{1,10}")


def whole_number(value: str) -> int | None:
    """`value` (stripped) as a whole number, or None when it is not one."""
    value = value.strip()
    return int(value) if WHOLE_NUMBER.fullmatch(value) else None


def parse_rate_limit_reset(value: str | None, now: datetime | None = None) -> float | None:
    """X-RateLimit-Reset as seconds to wait: a whole number, epoch seconds or a delta, or a
    date (Segment's Public API: "a timestamp, in RFC 5322 format"), read as a Retry-After date;
    a time not ahead asks no wait (`_ahead`)."""
    reset = whole_number(value) if value else None
    if reset is None:
        return _date_ahead(value, now)
    if reset < EPOCH_SECONDS_FROM:
        return float(reset)
    return _ahead(reset - (now or datetime.now(UTC)).timestamp())


def _ahead(seconds: float) -> float | None:
    """Seconds until a reset time the vendor sent, or None when that time is not ahead: a
    stale header or another clock asks for no wait, so the usual back-off applies, never an
    immediate retry (review s24 diff B F3: a quota reset in the past read as 0 s made every
    retry at once, the job spent in a minute). A delta (`Retry-After: 0`) is not a time."""
    return seconds if seconds > 0 else None


def parse_iso_reset(value: str | None, now: datetime | None = None) -> float | None:
    """An ISO 8601 time (`2024-12-31T23:59:59.000Z`) as seconds from now; a time without a
    zone is read as UTC; None when it is not one or not ahead (`_ahead`)."""
    if not value:
        return None
    try:
        when = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return _ahead((when - (now or datetime.now(UTC))).total_seconds())


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Retry-After is either delta-seconds or an HTTP date (RFC 9110 §10.2.3); a date not
    ahead is no wait asked (`_ahead`)."""
    if not value:
        return None
    value = value.strip()
    seconds = whole_number(value)
    if seconds is not None:
        return float(seconds)
    return _date_ahead(value, now)


def _date_ahead(value: str | None, now: datetime | None = None) -> float | None:
    """An RFC 5322 / HTTP date as seconds from now (a date without a zone, `-0000`, read as
    UTC); None when it is not one or not ahead (`_ahead`)."""
    if not value:
        return None
    try:
        when = parsedate_to_datetime(value.strip())
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return _ahead((when - (now or datetime.now(UTC))).total_seconds())


def json_body(payload: Any) -> bytes:
    return json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()


def _lower(headers: Any) -> dict[str, str]:
    return {str(k).lower(): str(v) for k, v in (headers.items() if headers else [])}
