"""TransactWriteItems with plain items, and the one place that reads why it was cancelled."""

from typing import Any

from botocore.exceptions import ClientError

from optout.store.codec import Item, deserialize, serialize
from optout.store.conditional import retry_conflicts
from optout.store.table import Table


def put(
    table: Table,
    item: Item,
    condition: str | None = None,
    values: Item | None = None,
    names: dict[str, str] | None = None,
) -> dict[str, Any]:
    op: dict[str, Any] = {"TableName": table.name, "Item": serialize(item)}
    if condition:
        op["ConditionExpression"] = condition
    if values:
        op["ExpressionAttributeValues"] = serialize(values)
    if names:
        op["ExpressionAttributeNames"] = names
    return {"Put": op}


def update(
    table: Table,
    key: tuple[str, str],
    expression: str,
    values: Item,
    condition: str | None = None,
    names: dict[str, str] | None = None,
) -> dict[str, Any]:
    op: dict[str, Any] = {
        "TableName": table.name,
        "Key": {"pk": {"S": key[0]}, "sk": {"S": key[1]}},
        "UpdateExpression": expression,
        "ExpressionAttributeValues": serialize(values),
    }
    if condition:
        op["ConditionExpression"] = condition
    if names:
        op["ExpressionAttributeNames"] = names
    return {"Update": op}


def delete(table: Table, key: tuple[str, str]) -> dict[str, Any]:
    return {"Delete": {"TableName": table.name, "Key": {"pk": {"S": key[0]}, "sk": {"S": key[1]}}}}


class Cancelled(Exception):
    """A condition failed; `failed` holds the indexes of the operations whose condition did,
    `found` the item each of them met, by index, when its operation asked for it
    (ReturnValuesOnConditionCheckFailure ALL_OLD) and there was one."""

    def __init__(self, failed: list[int], found: dict[int, Item] | None = None) -> None:
        super().__init__(f"transaction cancelled by conditions at {failed}")
        self.failed = failed
        self.found = found or {}


def write(table: Table, operations: list[dict[str, Any]]) -> None:
    """All or nothing; raises Cancelled when a condition fails (nothing is written). One
    cancelled only by a conflict with another transaction is tried again a few times."""
    if not operations:
        return
    try:
        retry_conflicts(
            lambda: table.client.transact_write_items(TransactItems=operations)  # type: ignore[arg-type]
        )
    except ClientError as error:
        if error.response["Error"]["Code"] != "TransactionCanceledException":
            raise
        reasons = error.response.get("CancellationReasons") or []
        failed = [n for n, r in enumerate(reasons) if r.get("Code") == "ConditionalCheckFailed"]
        if not failed and reasons:
            raise  # cancelled for another reason (throttling, conflicts past the retries)
        found = {n: deserialize(dict(reasons[n]["Item"])) for n in failed if reasons[n].get("Item")}
        raise Cancelled(failed, found) from None
