"""One conditional write, where a failed condition is an answer, not an error."""

from collections.abc import Callable
from typing import Any, TypeVar

from botocore.exceptions import ClientError

from optout.store.codec import Item, deserialize

T = TypeVar("T")


def conditional(write: Callable[[], T]) -> T | None:
    """The write's answer, or None when DynamoDB refused it for its condition (someone else
    wrote first); any other error is raised."""
    try:
        return write()
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
        write()
    except ClientError as error:
        if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
            raise
        old: Any = error.response.get("Item")
        return ours(deserialize(old) if isinstance(old, dict) else {})
    return True
