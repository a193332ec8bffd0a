"""Data access for jobs: read them, claim one before sending, write its receipt.

Every write is conditional on the job not being finished (done / no_record), so a redelivered
or duplicated message can never overwrite a receipt or send twice.
"""

from collections.abc import Iterable
from typing import Any

from botocore.exceptions import ClientError

from optout.store import keys
from optout.store.batch import batch_get
from optout.store.codec import Item, deserialize, serialize
from optout.store.table import Table

FINISHED = ("done", "no_record")


def job_key(request_id: str, system: str) -> dict[str, Any]:
    return {"pk": {"S": keys.request_pk(request_id)}, "sk": {"S": keys.job_sk(system)}}


def load_jobs(table: Table, refs: Iterable[tuple[str, str]]) -> dict[str, Item]:
    """(request_id, system) pairs -> job items by job_id; strongly consistent reads."""
    wanted = [(keys.request_pk(r), keys.job_sk(s)) for r, s in refs]
    found = batch_get(table, wanted, consistent=True)
    return {item["job_id"]: item for item in found.values()}


def claim(table: Table, job: Item, now: str, now_epoch: int, lease_seconds: int) -> int | None:
    """Take the job for one delivery attempt; returns the attempt number, or None if it is
    finished or another delivery holds a live lease."""
    try:
        answer = table.client.update_item(
            TableName=table.name,
            Key=job_key(job["request_id"], job["system"]),
            UpdateExpression="SET lease_until = :until, updated_at = :now ADD attempts :one",
            ConditionExpression="attribute_exists(pk) AND NOT #status IN (:done, :no_record) "
            "AND (attribute_not_exists(lease_until) OR lease_until < :epoch)",
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues=serialize_values(
                {
                    ":until": now_epoch + lease_seconds,
                    ":now": now,
                    ":one": 1,
                    ":done": "done",
                    ":no_record": "no_record",
                    ":epoch": now_epoch,
                }
            ),
            ReturnValues="UPDATED_NEW",
        )
    except ClientError as error:
        if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
            return None
        raise
    return int(deserialize(answer["Attributes"])["attempts"])


def record(table: Table, job: Item, status: str, receipt: Item, now: str) -> bool:
    """Write the attempt's receipt and release the lease; False if the job finished meanwhile."""
    names = {"#status": "status"}
    values: Item = {
        ":status": status,
        ":receipt": receipt,
        ":now": now,
        ":done": "done",
        ":no_record": "no_record",
    }
    update = "SET #status = :status, receipt = :receipt, updated_at = :now"
    if status != "pending":
        update += ", completed_at = :now"
    try:
        table.client.update_item(
            TableName=table.name,
            Key=job_key(job["request_id"], job["system"]),
            UpdateExpression=update + " REMOVE lease_until",
            ConditionExpression="attribute_exists(pk) AND NOT #status IN (:done, :no_record)",
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=serialize_values(values),
        )
    except ClientError as error:
        if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
            return False
        raise
    return True


def serialize_values(values: Item) -> dict[str, Any]:
    return serialize(values)
