"""A write meeting a DynamoDB transaction: AWS refuses it (TransactionConflictException, or a
transaction cancelled with reason TransactionConflict), botocore does not retry it, and moto,
which runs one call at a time, never does it. Here the conflict is injected before the call."""

from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from optout.store import keys
from optout.store.conditional import CONFLICT_ATTEMPTS
from tests.conftest import Aws
from tests.integration.test_operator_routes import deny, ok
from tests.support.aws_hooks import session_hooks
from tests.support.pipeline import Pipeline, build_pipeline


@pytest.fixture
def pipe(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> Iterator[Pipeline]:
    monkeypatch.setattr("optout.store.conditional.CONFLICT_PAUSE_SECONDS", 0.0)
    yield build_pipeline(aws, monkeypatch)


class Conflicts:
    """Refuses the first `times` matching calls as AWS would when a transaction holds the item."""

    def __init__(self, times: int, cancelled: bool = False) -> None:
        self.left, self.cancelled, self.refused = times, cancelled, 0

    def node_put(self, params: dict[str, Any], **_: Any) -> None:
        if params.get("Item", {}).get("sk", {}).get("S") == keys.NODE_SK:
            self._refuse("PutItem")

    def transaction(self, params: dict[str, Any], **_: Any) -> None:
        self._refuse("TransactWriteItems", len(params["TransactItems"]))

    def _refuse(self, operation: str, actions: int = 1) -> None:
        if not self.left:
            return
        self.left -= 1
        self.refused += 1
        if self.cancelled:
            reasons = [{"Code": "TransactionConflict"}] + [{"Code": "None"}] * (actions - 1)
            error: dict[str, Any] = {
                "Error": {"Code": "TransactionCanceledException", "Message": "cancelled"},
                "CancellationReasons": reasons,
            }
        else:
            error = {"Error": {"Code": "TransactionConflictException",
                               "Message": "Transaction is ongoing for the item"}}  # fmt: skip
        raise ClientError(error, operation)  # type: ignore[arg-type]


def test_a_node_write_meeting_a_transaction_once_is_tried_again(pipe: Pipeline) -> None:
    # Given an opt-out whose identity node write meets a transaction once
    request_id = pipe.post("/v1/opt-out", {"email": "conflict@example.com"})["request_id"]
    conflicts = Conflicts(1)
    with session_hooks("conflict", pipe.resolver.resolver.cache_clear) as register:
        register("provide-client-params.dynamodb.PutItem", conflicts.node_put)
        # When the resolver handles it
        answer = pipe.resolve()
    # Then the write is sent again and the record does not fail
    assert conflicts.refused == 1
    assert answer == {"batchItemFailures": []}
    resolved = {(i["pk"], i["sk"]) for i in pipe.aws.items()}
    assert (keys.request_pk(request_id), keys.RESOLUTION_SK) in resolved


def test_a_node_write_that_keeps_meeting_transactions_fails_its_record(pipe: Pipeline) -> None:
    pipe.post("/v1/opt-out", {"email": "conflict@example.com"})
    conflicts = Conflicts(100)
    with session_hooks("conflict", pipe.resolver.resolver.cache_clear) as register:
        register("provide-client-params.dynamodb.PutItem", conflicts.node_put)
        answer = pipe.resolve()
    # A bounded number of tries, then the record fails (the stream retries it)
    assert conflicts.refused == CONFLICT_ATTEMPTS
    assert len(answer["batchItemFailures"]) == 1


def test_a_denial_cancelled_by_a_conflicting_transaction_once_is_tried_again(
    pipe: Pipeline,
) -> None:
    request_id = pipe.post("/v1/opt-out", {"email": "conflict@example.com"})["request_id"]
    pipe.resolve()
    conflicts = Conflicts(1, cancelled=True)
    with session_hooks("conflict", pipe.admin.services.cache_clear) as register:
        register("provide-client-params.dynamodb.TransactWriteItems", conflicts.transaction)
        answer = deny(pipe, request_id)
    assert conflicts.refused == 1
    assert ok(answer)["status"] == "denied"


def test_a_denial_that_keeps_meeting_transactions_fails_after_bounded_tries(
    pipe: Pipeline,
) -> None:
    request_id = pipe.post("/v1/opt-out", {"email": "conflict@example.com"})["request_id"]
    pipe.resolve()
    conflicts = Conflicts(100, cancelled=True)
    with session_hooks("conflict", pipe.admin.services.cache_clear) as register:
        register("provide-client-params.dynamodb.TransactWriteItems", conflicts.transaction)
        with pytest.raises(ClientError):  # the function fails: API Gateway answers 500
            deny(pipe, request_id)
    assert conflicts.refused == CONFLICT_ATTEMPTS
