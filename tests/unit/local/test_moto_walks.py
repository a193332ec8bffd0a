"""moto with its per-item walks done once answers exactly what moto as shipped answers."""

import copy
import re
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.dynamodb.models.dynamo_type import DynamoType, Item
from moto.dynamodb.models.utilities import dynamo_to_dict

from local import moto_expressions, moto_walks
from local.aws_resources import create_table
from local.patching import Patches
from tests.unit.local import test_moto_expressions, test_moto_speedups
from tests.unit.local.test_moto_expressions import outcome, stream_images

REGION = "us-east-1"
KEY = {"pk": {"S": "REQ#9"}, "sk": {"S": "JOB#braze"}}
NESTED = {
    "M": {
        "flights": {"L": [{"M": {"purposes": {"SS": ["sale", "share"]}, "n": {"N": "12.50"}}}]},
        "blob": {"B": b"\x00\xff"},
        "blobs": {"BS": [b"\x01", b"\x02\x03"]},
        "nothing": {"NULL": True},
        "ok": {"BOOL": False},
        "nums": {"NS": ["1", "22", "-3.5"]},
        "text": {"S": "é" * 3},
    }
}


def more_calls(client: Any) -> list[Any]:
    """Calls the walks touch beyond the other modules' lists: sizes, functions, refusals."""
    answers = [outcome(lambda: client.put_item(TableName="t", Item={**KEY, "doc": NESTED}))]
    big = {**KEY, "a": {"S": "x" * 200_000}, "b": {"S": "y" * 205_000}}
    answers.append(outcome(lambda: client.put_item(TableName="t", Item=big)))  # too large
    edge = {**KEY, "a": {"S": "x" * (405_000 - 19)}}  # 405,000 bytes, moto's limit: accepted
    answers.append(outcome(lambda: client.put_item(TableName="t", Item=edge)))
    answers.append(outcome(lambda: client.put_item(TableName="t", Item={**edge, "z": {"S": "!"}})))
    answers.append(outcome(lambda: client.put_item(TableName="t", Item={**KEY, "doc": NESTED})))
    for expression in (
        "SET doc.flights = list_append(doc.flights, :l), seen = if_not_exists(seen, :n)",
        "SET absent.inner = :n",  # a path that does not exist: refused
        "SET tally = tally + :one",  # an operand that does not exist: refused
        "SET tally = if_not_exists(tally, :zero) + :one REMOVE doc.nothing",
        "ADD doc.nums :ns DELETE doc.blobs :bs",
    ):
        answers.append(
            outcome(
                lambda e=expression: client.update_item(
                    TableName="t",
                    Key=KEY,
                    UpdateExpression=e,
                    ExpressionAttributeValues={
                        k: v
                        for k, v in {
                            ":l": {"L": [{"S": "more"}]},
                            ":n": {"N": "7"},
                            ":one": {"N": "1"},
                            ":zero": {"N": "0"},
                            ":ns": {"NS": ["99"]},
                            ":bs": {"BS": [b"\x01"]},
                        }.items()
                        if re.search(rf"{k}\b", e)
                    },
                    ReturnValues="ALL_NEW",
                )
            )
        )
    answers.append(
        outcome(
            lambda: client.query(
                TableName="t",
                KeyConditionExpression="pk = :pk",
                ExpressionAttributeValues={":pk": KEY["pk"]},
            )
        )
    )
    answers.append(outcome(lambda: client.batch_get_item(RequestItems={"t": {"Keys": [KEY]}})))
    return answers


def every_call(client: Any) -> list[Any]:
    return [
        *test_moto_speedups.calls(client),
        *test_moto_expressions.calls(client),
        *more_calls(client),
    ]


def run(install: Callable[[], None]) -> tuple[list[Any], list[Any]]:
    moto_walks.uninstall()
    moto_expressions.uninstall()
    install()
    with mock_aws():
        client = boto3.client("dynamodb", region_name=REGION)
        create_table(client, "t")
        return every_call(client), stream_images()


@pytest.fixture
def restore() -> Iterator[None]:
    yield
    moto_walks.uninstall()
    moto_expressions.uninstall()


def test_answers_items_and_stream_records_match_moto_as_shipped(restore: None) -> None:
    # Given the same calls on a fresh moto: as shipped, with the walks, and with the walks
    # beside the expression cache (as the local stack runs them)
    shipped = run(lambda: None)
    walks = run(moto_walks.install)
    both = run(lambda: (moto_walks.install(), moto_expressions.install()))
    # Then every answer, error, stored item and stream image is the same
    assert walks == shipped
    assert both == shipped
    # and the run did exercise the refusals it is meant to
    errors = [a[1] for a in walks[0] if isinstance(a, tuple)]
    assert "ValidationException" in errors  # the item over moto's size limit, bad paths
    assert sum("Item size has exceeded" in a[2] for a in walks[0] if isinstance(a, tuple)) == 2


VALUES: list[dict[str, Any]] = [
    {"S": ""},
    {"S": "ünïcode"},
    {"N": "-0.000123"},
    {"B": b"\x00" * 5},
    {"B": "AAEC"},  # base64 text, as it comes off the wire
    {"SS": ["a", "bb"]},
    {"NS": ["1", "10"]},
    {"BS": [b"x", "eXk="]},
    {"BOOL": True},
    {"NULL": True},
    {"L": [{"S": "a"}, {"N": "1"}, {"L": []}, {"M": {}}]},
    NESTED,
]


@pytest.mark.parametrize("value", VALUES, ids=lambda v: next(iter(v)))
def test_a_value_has_the_size_and_plain_form_moto_gives_it(restore: None, value: Any) -> None:
    # Given moto's own size, plain form and JSON forms of an attribute value and an item
    def forms(to_dict: Callable[[Any], Any]) -> tuple[Any, ...]:
        typed = DynamoType(value)
        item = Item(DynamoType({"S": "p"}), None, {"pk": {"S": "p"}, "v": value})
        return typed.size(), to_dict(typed), typed.to_regular_json(), item.to_json()

    shipped = forms(dynamo_to_dict)
    moto_walks.install()
    from moto.dynamodb.models import utilities  # noqa: PLC0415 - the patched name

    # Then the walks give the same
    assert forms(utilities.dynamo_to_dict) == shipped


def test_an_item_is_refused_at_the_size_moto_refuses_it(restore: None) -> None:
    # Given moto's verdict on items around its size limit
    def verdicts() -> list[bool]:
        found = []
        for extra in (-1, 0, 1):
            attrs = {"pk": {"S": "p"}, "v": {"S": "x" * (405_000 - 4 + extra)}}  # pk 3 bytes, v 1
            try:
                Item(DynamoType(attrs["pk"]), None, attrs)
                found.append(True)
            except Exception:
                found.append(False)
        return found

    shipped = verdicts()
    moto_walks.install()
    # Then the walks accept and refuse the same items (the last one only)
    assert verdicts() == shipped == [True, True, False]


def test_a_value_in_its_json_form_is_a_copy(restore: None) -> None:
    # Given a nested value in moto's form, with the walks
    moto_walks.install()
    typed = DynamoType(NESTED)
    # When its JSON form is changed at every level
    regular = typed.to_regular_json()
    regular["M"]["flights"]["L"][0]["M"]["purposes"]["SS"].append("other")
    regular["M"]["nums"]["NS"].clear()
    # Then the value itself is as it was (moto's to_regular_json copies)
    assert typed.to_regular_json() == DynamoType(NESTED).to_regular_json()
    assert typed.to_regular_json()["M"]["nums"] == {"NS": ["1", "22", "-3.5"]}


def test_an_item_copies_as_moto_copies_it(restore: None) -> None:
    # Given an item whose list holds one value twice (moto's copy keeps that sharing)
    def copied() -> tuple[Any, bool, bool]:
        shared = DynamoType({"S": "same"})
        item = Item(
            DynamoType({"S": "p"}), DynamoType({"S": "s"}), {"pk": {"S": "p"}, "doc": NESTED}
        )
        item.attrs["pair"] = DynamoType({"L": []})
        item.attrs["pair"].value.extend([shared, shared])
        twin = copy.deepcopy(item)
        pair = twin.attrs["pair"].value
        independent = twin.attrs["doc"].value is not item.attrs["doc"].value
        return twin.to_json(), pair[0] is pair[1], independent

    shipped = copied()
    moto_walks.install()
    # Then the copy is the same, keeps the sharing, and shares nothing with the original
    assert copied() == shipped
    assert shipped[1:] == (True, True)


@pytest.fixture
def sized() -> Iterator[list[int]]:
    """The items moto's own Item.size sizes, counted beneath the walks (installed here)."""
    sized: list[int] = []
    item_size = Item.size

    def counting(self: Item) -> int:
        sized.append(id(self))
        return int(item_size(self))

    counted = Patches()
    counted.swap(Item, "size", counting)
    moto_walks.install()  # the walks call through to the count
    yield sized
    moto_walks.uninstall()
    counted.restore()


def test_a_query_sizes_each_item_once_with_the_walks(restore: None, sized: list[int]) -> None:
    # Given a count of moto's item size computations, and three items in a partition
    with mock_aws():
        client = boto3.client("dynamodb", region_name=REGION)
        create_table(client, "t")
        for n in range(3):
            client.put_item(TableName="t", Item={"pk": {"S": "P"}, "sk": {"S": f"{n}"}})
        # When the partition is queried
        answer = client.query(
            TableName="t",
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": "P"}},
        )
    # Then all three come back, each sized once (moto as shipped sizes each twice)
    assert answer["Count"] == 3
    assert len(sized) == len(set(sized)) == 3
