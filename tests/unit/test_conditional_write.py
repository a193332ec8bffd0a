"""store.conditional: a refused condition is an answer (None); every other error is raised."""

import pytest
from botocore.exceptions import ClientError

from optout.store.conditional import conditional, conditional_once


def _refusal(code: str, old: dict[str, object] | None = None) -> ClientError:
    answer: dict[str, object] = {"Error": {"Code": code, "Message": "m"}}
    if old is not None:
        answer["Item"] = old
    return ClientError(answer, "PutItem")  # type: ignore[arg-type]


def _raise(error: ClientError) -> dict[str, str]:
    raise error


def test_a_write_that_succeeds_gives_its_answer() -> None:
    assert conditional(lambda: {"Attributes": "x"}) == {"Attributes": "x"}


def test_a_failed_condition_is_none() -> None:
    assert conditional(lambda: _raise(_refusal("ConditionalCheckFailedException"))) is None


def test_any_other_error_is_raised() -> None:
    with pytest.raises(ClientError, match="ProvisionedThroughputExceededException"):
        conditional(lambda: _raise(_refusal("ProvisionedThroughputExceededException")))


def test_a_refusal_of_the_item_this_write_made_counts_as_written() -> None:
    # Given a retried write refused on an item stamped with its own time (its first try
    # committed, the answer was lost)
    refusal = _refusal("ConditionalCheckFailedException", {"at": {"S": "t1"}})
    # When the write is judged by who made that item
    # Then it took effect
    assert conditional_once(lambda: _raise(refusal), lambda old: old.get("at") == "t1") is True


def test_a_refusal_of_someone_elses_item_is_not_written() -> None:
    refusal = _refusal("ConditionalCheckFailedException", {"at": {"S": "t0"}})
    assert conditional_once(lambda: _raise(refusal), lambda old: old.get("at") == "t1") is False


def test_a_write_that_succeeds_is_written_and_other_errors_are_raised() -> None:
    assert conditional_once(lambda: {}, lambda _old: False) is True
    with pytest.raises(ClientError, match="InternalServerError"):
        conditional_once(lambda: _raise(_refusal("InternalServerError")), lambda _old: True)
