"""The table handle passed to every store function (a port: tests hand in a moto-backed one)."""

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import boto3

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
else:
    DynamoDBClient = Any


@dataclass(frozen=True)
class Table:
    client: DynamoDBClient
    name: str

    @classmethod
    def connect(cls, name: str) -> "Table":
        return cls(boto3.client("dynamodb"), name)
