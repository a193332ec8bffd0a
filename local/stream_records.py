"""DynamoDB Streams records (GetRecords' shape) -> the records Lambda hands a stream-triggered
function."""

import base64
from datetime import UTC, datetime
from typing import Any

REGION = "us-east-1"


def to_lambda_record(raw: dict[str, Any], stream_arn: str) -> dict[str, Any]:
    """Lambda's shape: epoch-seconds creation time, eventSourceARN, binary as base64 text."""
    record: dict[str, Any] = _jsonable(raw)
    dynamodb = record.setdefault("dynamodb", {})
    created = raw.get("dynamodb", {}).get("ApproximateCreationDateTime")
    if isinstance(created, datetime):
        # moto keeps a naive UTC datetime (boto3 parses the wire number into an aware one);
        # Lambda passes the epoch number through.
        aware = created if created.tzinfo else created.replace(tzinfo=UTC)
        dynamodb["ApproximateCreationDateTime"] = int(aware.timestamp())
    record.setdefault("eventVersion", "1.1")
    record.setdefault("eventSource", "aws:dynamodb")
    record.setdefault("awsRegion", REGION)
    record["eventSourceARN"] = stream_arn
    if record.get("userIdentity") is None:
        record.pop("userIdentity", None)  # only TTL deletions carry one
    return record


def sequence_number(record: dict[str, Any]) -> str:
    return str(record["dynamodb"]["SequenceNumber"])


def request_ref(record: dict[str, Any]) -> str:
    """The table key of a record, for logs: keys hold request ids and hashes, never values."""
    keys = record.get("dynamodb", {}).get("Keys", {})
    pk = keys.get("pk", {}).get("S", "?")
    sk = keys.get("sk", {}).get("S", "?")
    return f"{pk}/{sk}"


def arrival_iso(record: dict[str, Any]) -> str:
    seconds = record.get("dynamodb", {}).get("ApproximateCreationDateTime", 0)
    return datetime.fromtimestamp(float(seconds), UTC).isoformat().replace("+00:00", "Z")


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(value).decode()
    if isinstance(value, datetime):
        return int(value.timestamp())
    return value
