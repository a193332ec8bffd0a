"""The local stack's clients send and read DynamoDB attribute values as botocore would."""

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ParamValidationError
from botocore.parsers import JSONParser
from botocore.serialize import JSONSerializer
from botocore.session import get_session
from moto import mock_aws

from local import botocore_wire
from local.aws_resources import create_table
from tests.unit.local import test_moto_expressions, test_moto_speedups, test_moto_walks

REGION = "us-east-1"
ITEM = {
    "pk": {"S": "REQ#1"},
    "sk": {"S": "JOB#x"},
    "doc": test_moto_walks.NESTED,
    "plain": {"M": {"a": {"L": [{"S": "x"}, {"NULL": True}, {"BOOL": True}]}}},
}


@pytest.fixture
def restore() -> Iterator[None]:
    yield
    botocore_wire.uninstall()


def wire(install: bool) -> tuple[bytes, Any]:
    """A PutItem request as serialised, and a GetItem answer body as parsed."""
    if install:
        botocore_wire.install()
    else:
        botocore_wire.uninstall()
    model = get_session().get_service_model("dynamodb")
    request = JSONSerializer().serialize_to_request(
        {"TableName": "t", "Item": ITEM}, model.operation_model("PutItem")
    )
    body = (
        b'{"Item": {"pk": {"S": "REQ#1"}, "n": {"NS": ["1", "2"]}, "b": {"B": "AAE="},'
        b' "m": {"M": {"l": {"L": [{"S": "x"}, {"BOOL": false}, {"NULL": true}]}}}}}'
    )
    parsed = JSONParser().parse(
        {"body": body, "headers": {}, "status_code": 200},
        model.operation_model("GetItem").output_shape,
    )
    return request["body"], parsed


def test_requests_and_answers_are_what_botocore_makes_of_them(restore: None) -> None:
    # Given botocore's own serialised request and parsed answer
    shipped = wire(install=False)
    # Then the same with plain values taken as they are (binary decoded as before)
    faster = wire(install=True)
    assert faster == shipped
    assert faster[1]["Item"]["b"] == {"B": b"\x00\x01"}


def test_invalid_parameters_are_still_refused(restore: None) -> None:
    # Given the shortcut installed
    botocore_wire.install()
    with mock_aws():
        client = boto3.client("dynamodb", region_name=REGION)
        # When an attribute value is not one (a number given as a number)
        # Then botocore refuses it before anything is sent, as without the shortcut
        with pytest.raises(ParamValidationError):
            client.put_item(TableName="t", Item={"pk": {"N": 1}})


def test_calls_through_moto_answer_the_same(restore: None) -> None:
    # Given the same calls on a fresh moto, with and without the shortcut
    def run(install: bool) -> list[Any]:
        if install:
            botocore_wire.install()
        else:
            botocore_wire.uninstall()
        with mock_aws():
            client = boto3.client("dynamodb", region_name=REGION)
            create_table(client, "t")
            return [
                *test_moto_speedups.calls(client),
                *test_moto_expressions.calls(client),
                *test_moto_walks.more_calls(client),
            ]

    # Then every answer is the same
    assert run(install=True) == run(install=False)
