"""The table handle passed to every store function (a port: tests hand in a moto-backed one)."""

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.config import Config

from optout import aws

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
else:
    DynamoDBClient = Any

# botocore checks every request against the service model before sending it, walking every
# attribute value of an item: a quarter of the capture handler's own time per request
# (docs/performance.md). Our requests are built by our code from validated models, and
# DynamoDB validates each one itself (a bad one fails as a ValidationException, as before).
CLIENT_CONFIG = Config(parameter_validation=False)


@dataclass(frozen=True)
class Table:
    client: DynamoDBClient
    name: str

    @classmethod
    def connect(cls, name: str) -> "Table":
        return cls(aws.client("dynamodb", CLIENT_CONFIG), name)
