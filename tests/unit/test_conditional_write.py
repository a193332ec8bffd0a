"""store.conditional: a refused condition is an answer (None); every other error is raised."""

import pytest
from botocore.exceptions import ClientError

from optout.store.conditional import conditional


def _refusal(code: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": "m"}}, "PutItem")


def _raise(error: ClientError) -> dict[str, str]:
    raise error


def test_a_write_that_succeeds_gives_its_answer() -> None:
    assert conditional(lambda: {"Attributes": "x"}) == {"Attributes": "x"}


def test_a_failed_condition_is_none() -> None:
    assert conditional(lambda: _raise(_refusal("ConditionalCheckFailedException"))) is None


def test_any_other_error_is_raised() -> None:
    with pytest.raises(ClientError, match="ProvisionedThroughputExceededException"):
        conditional(lambda: _raise(_refusal("ProvisionedThroughputExceededException")))
