"""One conditional write, where a failed condition is an answer, not an error."""

from collections.abc import Callable
from typing import TypeVar

from botocore.exceptions import ClientError

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
