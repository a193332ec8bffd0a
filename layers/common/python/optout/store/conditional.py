"""One conditional write, where a failed condition is an answer, not an error; and the one
place a write that met a transaction is tried again."""

import random
import time
from collections.abc import Callable
from typing import Any, TypeVar

from botocore.exceptions import ClientError

from optout.store.codec import Item, deserialize

T = TypeVar("T")

# A write on an item an ongoing TransactWriteItems holds is refused (TransactionConflict), and
# so is a transaction meeting another; botocore retries neither. Such a write changed nothing,
# so it is sent again after a short random pause: in all about 0.1 s at most.
CONFLICT_ATTEMPTS = 4
CONFLICT_PAUSE_SECONDS = 0.01  # doubled per attempt, times a random factor in [0, 1)
CONFLICT_REASONS = {"TransactionConflict", "None"}


def is_conflict(error: ClientError) -> bool:
    """A write refused only because a transaction held one of its items."""
    code = error.response["Error"]["Code"]
    if code == "TransactionConflictException":
        return True
    if code != "TransactionCanceledException":
        return False
    reasons = {str(r.get("Code")) for r in error.response.get("CancellationReasons") or []}
    return "TransactionConflict" in reasons and reasons <= CONFLICT_REASONS


def retry_conflicts(write: Callable[[], T]) -> T:
    """The write, sent again (CONFLICT_ATTEMPTS in all) while it meets a transaction; the last
    conflict, and any other error, is raised."""
    for attempt in range(1, CONFLICT_ATTEMPTS + 1):
        try:
            return write()
        except ClientError as error:
            if attempt == CONFLICT_ATTEMPTS or not is_conflict(error):
                raise
            time.sleep(CONFLICT_PAUSE_SECONDS * 2**attempt * random.random())  # noqa: S311
    raise AssertionError("unreachable")


def conditional(write: Callable[[], T]) -> T | None:
    """The write's answer, or None when DynamoDB refused it for its condition (someone else
    wrote first); a conflict with a transaction is tried again; any other error is raised."""
    try:
        return retry_conflicts(write)
    except ClientError as error:
        if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
            return None
        raise


def conditional_once(write: Callable[[], Any], ours: Callable[[Item], bool]) -> bool:
    """Whether the write took effect: it succeeded, or its condition failed on the item this
    very write made. The second is a write that committed but whose answer was lost (a 500,
    a reset connection): botocore sends it again, and the retry fails its own condition. Read
    as "someone else wrote first", it would leave undone what must follow our write.

    `write` must ask `ReturnValuesOnConditionCheckFailure="ALL_OLD"`; `ours` is told the item
    as the refused write found it ({} when there was none) and says whether we wrote it (a
    value only this write sets, such as its own timestamp)."""
    try:
        retry_conflicts(write)
    except ClientError as error:
        if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
            raise
        old: Any = error.response.get("Item")
        return ours(deserialize(old) if isinstance(old, dict) else {})
    return True
