"""A vendor's Retry-After past SQS's 12 h visibility (a daily quota): the worker asks SQS only
for what it accepts, the job's retry_at says when the vendor is really called again, and the
message's returns before then are hidden again without a vendor call (so a "come back
tomorrow" cannot use up the job's receives in minutes). The delivery runs on a virtual clock;
moto's queues enforce SQS's 12 h total visibility."""

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, ReadTimeoutError

from local.sandbox.faults import FaultPlan
from optout.delivery.retry import VISIBILITY_MARGIN_SECONDS
from optout.delivery.settings import SQS_MAX_VISIBILITY_SECONDS
from optout.timestamps import iso
from tests.integration.test_worker import CUSTOMER, Stack, failed_ids, stack  # noqa: F401

A_DAY = 86_400
BATCH_WINDOW = 300  # the worker's default (the stack sets no BATCH_WINDOW_SECONDS)
LONGEST = SQS_MAX_VISIBILITY_SECONDS - BATCH_WINDOW - VISIBILITY_MARGIN_SECONDS


@dataclass
class Daily:
    """The Braze sandbox answering 429 with `Retry-After: 86400` to every call, the worker's
    delivery on a clock the test moves, and every visibility the worker asks SQS for."""

    stack: Stack
    now: list[datetime]
    asked: list[int] = field(default_factory=list)
    last: list[dict[str, Any]] = field(default_factory=list)  # the messages of the last run

    def calls(self) -> int:
        return int(self.stack.server.sandboxes["braze"].faults()["calls"])

    def job(self) -> dict[str, Any]:
        return self.stack.job("r1", "braze")

    def run(self) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        answer, self.last = self.stack.run("braze")
        return answer, self.last

    def back_after(self, seconds: float) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """The last run's message is visible again `seconds` later and is run again."""
        self.stack.fast_forward("braze", self.last)
        self.now[0] += timedelta(seconds=seconds)
        return self.run()


@pytest.fixture
def daily(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> Iterator[Daily]:  # noqa: F811
    stack.put_request("r1", ["braze"], CUSTOMER)
    stack.send("braze", "r1")
    stack.server.sandboxes["braze"].configure_faults(FaultPlan(1.0, (429,), A_DAY))
    services = stack.worker.services()
    now = [datetime.now(UTC)]
    monkeypatch.setattr(services.delivery, "clock", lambda: now[0])
    state = Daily(stack, now)
    real = services.sqs.change_message_visibility

    def asking(**kwargs: Any) -> Any:
        state.asked.append(kwargs["VisibilityTimeout"])
        return real(**kwargs)

    monkeypatch.setattr(services.sqs, "change_message_visibility", asking)
    yield state


def test_a_day_long_retry_after_asks_sqs_for_what_it_accepts_and_records_the_vendors_time(
    daily: Daily,
) -> None:
    # Given a vendor answering 429 with Retry-After: 86400
    start = daily.now[0]
    # When the worker tries the job
    answer, messages = daily.run()
    # Then SQS is asked to hide the message for 12 h less what may have passed since its
    # receive (and accepts it: moto refuses a total past 12 h), and the job says the vendor
    # is called again a day later
    assert failed_ids(answer) == {messages[0]["MessageId"]}
    assert len(daily.asked) == 1 and LONGEST - 60 <= daily.asked[0] <= LONGEST
    job = daily.job()
    assert (job["status"], job["attempts"]) == ("pending", 1)
    assert job["retry_at"] == iso(start + timedelta(seconds=A_DAY))
    assert daily.stack.receive("braze") == []  # hidden: the visibility change was accepted


def test_returns_before_the_retry_time_are_hidden_again_without_a_vendor_call(
    daily: Daily,
) -> None:
    # Given a job waiting out a day-long Retry-After
    daily.run()
    # When its message keeps coming back every 3 minutes (a visibility SQS did not keep),
    # up to its seventh receive
    for _ in range(6):
        answer, messages = daily.back_after(180)
        # Then each return is a retry hidden again for as long as SQS takes
        assert failed_ids(answer) == {messages[0]["MessageId"]}
        assert int(messages[0]["Attributes"]["ApproximateReceiveCount"]) <= 7
    assert len(daily.asked) == 7 and all(LONGEST - 60 <= s <= LONGEST for s in daily.asked)
    # and the vendor was called once, the job is still pending with its one attempt
    job = daily.job()
    assert daily.calls() == 1
    assert (job["status"], job["attempts"]) == ("pending", 1)


def test_at_its_retry_time_the_job_calls_the_vendor_again(daily: Daily) -> None:
    # Given a job that waited out a day-long Retry-After (one early return on the way)
    daily.run()
    daily.back_after(LONGEST)
    # When the message comes back when the vendor said
    daily.back_after(A_DAY - LONGEST)
    # Then the vendor is called again and the attempt is recorded
    job = daily.job()
    assert daily.calls() == 2
    assert (job["status"], job["attempts"]) == ("pending", 2)


def test_a_return_minutes_before_the_retry_time_is_hidden_for_the_rest_of_the_wait(
    daily: Daily,
) -> None:
    # Given a job waiting out a day-long Retry-After, whose message came back after two of the
    # longest visibilities SQS accepts (minutes short of the day)
    start = daily.now[0]
    daily.run()
    daily.back_after(daily.asked[-1])
    daily.back_after(daily.asked[-1])
    left = A_DAY - (daily.now[0] - start).total_seconds()
    assert 0 < left < 1800
    # When it is back
    # Then it is hidden again for the minutes left, with no vendor call, and the vendor is
    # called when it comes back at the time the vendor asked for
    assert daily.calls() == 1
    assert daily.asked[-1] == math.ceil(left)
    daily.back_after(daily.asked[-1])
    assert daily.calls() == 2 and daily.now[0] >= start + timedelta(seconds=A_DAY)


@pytest.mark.parametrize(("early", "vendor_calls"), [(5.5, 1), (4.5, 2)], ids=["hidden", "called"])
def test_a_return_within_5_s_of_the_retry_time_calls_the_vendor_now(
    daily: Daily, early: float, vendor_calls: int
) -> None:
    # Given a job waiting out a day-long Retry-After
    daily.run()
    # When its message is back `early` seconds before the time the vendor asked for
    daily.back_after(A_DAY - early)
    # Then 5.5 s early it is hidden again for the 6 s left; within 5 s (clock differences
    # between us and the vendor) the vendor is called now
    assert daily.calls() == vendor_calls
    if vendor_calls == 1:
        assert daily.asked[-1] == 6


REFUSED = ClientError(
    {"Error": {"Code": "InvalidParameterValue", "Message": "beyond the limit"}},
    "ChangeMessageVisibility",
)


@pytest.mark.parametrize(
    "fault",
    [
        REFUSED,
        ReadTimeoutError(endpoint_url="https://sqs.us-east-1.amazonaws.com/"),
        EndpointConnectionError(endpoint_url="https://sqs.us-east-1.amazonaws.com/"),
    ],
    ids=["refused", "read-timeout", "no-connection"],
)
def test_a_refused_visibility_change_is_counted_and_the_message_still_retried(
    daily: Daily, monkeypatch: pytest.MonkeyPatch, fault: Exception
) -> None:
    # Given SQS refusing the visibility change, or the network failing it past botocore's
    # retries (a BotoCoreError, not a ClientError)
    def refuse(**_: Any) -> Any:
        raise fault

    services = daily.stack.worker.services()
    monkeypatch.setattr(services.sqs, "change_message_visibility", refuse)
    added: list[str] = []
    real_add = daily.stack.worker.metrics.add_metric
    monkeypatch.setattr(
        daily.stack.worker.metrics,
        "add_metric",
        lambda **kw: (added.append(kw["name"]), real_add(**kw))[1],
    )
    # When the worker tries the job
    answer, messages = daily.run()
    # Then the message is still a batch item failure, and the refusal is a metric
    assert failed_ids(answer) == {messages[0]["MessageId"]}
    assert "VisibilityRefused" in added


def test_a_wait_longer_than_the_messages_receives_can_hold_is_recorded_as_its_real_time(
    daily: Daily,
) -> None:
    # Given a vendor asking for a week (more than 7 visibility legs of under 12 h each)
    week = 7 * A_DAY
    daily.stack.server.sandboxes["braze"].configure_faults(FaultPlan(1.0, (429,), week))
    start = daily.now[0]
    # When the worker tries the job on its first receive
    daily.run()
    # Then retry_at is when the message's last allowed receive calls the vendor, not a week
    assert daily.job()["retry_at"] == iso(start + timedelta(seconds=7 * LONGEST))


def test_the_last_allowed_receive_calls_the_vendor_even_before_the_retry_time(
    daily: Daily,
) -> None:
    # Given a job waiting out a day-long Retry-After whose message came back early 6 times
    daily.run()
    for _ in range(6):
        daily.back_after(180)
    # When it comes back an eighth time, still before the retry time
    _, messages = daily.back_after(180)
    # Then the vendor is called (the job's last chance), and its 429 fails the job for good
    job = daily.job()
    assert int(messages[0]["Attributes"]["ApproximateReceiveCount"]) == 8
    assert daily.calls() == 2
    assert job["status"] == "failed" and job["receipt"]["error"].startswith("retries exhausted")


def test_a_vendor_throttled_daily_on_every_call_is_called_4_times_over_about_2_5_days(
    daily: Daily,
) -> None:
    # Given a vendor answering every call with 429 and Retry-After: 86400
    start = daily.now[0]
    _, messages = daily.run()
    # When each return of the message comes when the visibility the worker asked for ends
    while daily.job()["status"] == "pending":
        _, messages = daily.back_after(daily.asked[-1])
    # Then (as README and docs/connectors.md say) each daily wait costs 3 receives, so the
    # vendor is called 4 times, on receives 1, 4, 7 and 8, and the job fails after about 2.5 days
    job = daily.job()
    hours = (daily.now[0] - start).total_seconds() / 3600
    assert int(messages[0]["Attributes"]["ApproximateReceiveCount"]) == 8
    assert (daily.calls(), job["status"]) == (4, "failed")
    assert job["receipt"]["error"].startswith("retries exhausted")
    assert 59 < hours < 61


def test_a_replayed_job_does_not_wait_for_its_old_retry_time(daily: Daily) -> None:
    # Given a job with a retry time a day away, then reset by an operator replay (its last
    # write), and the vendor answering again
    daily.run()
    replayed = iso(daily.now[0])
    daily.stack.aws.dynamodb.update_item(
        TableName=daily.stack.aws.table_name,
        Key={"pk": {"S": "REQ#r1"}, "sk": {"S": "JOB#braze"}},
        UpdateExpression="SET replayed_at = :t, updated_at = :t",
        ExpressionAttributeValues={":t": {"S": replayed}},
    )
    daily.stack.server.sandboxes["braze"].configure_faults(FaultPlan(0.0))
    # When its message comes back minutes later
    daily.back_after(180)
    # Then the vendor is called at once and the job completes
    assert daily.job()["status"] == "done"
