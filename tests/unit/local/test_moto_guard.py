"""The local stack's moto guard: the race behind issue 17, made deterministic.

A Query is paused half-way through moto's iteration of the table while another thread puts a
new item. Without the guard that is moto's `dictionary changed size during iteration` (the
500 the e2e suite saw at random); with it, the put waits for the Query and both succeed.
"""

import threading
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID
from moto.dynamodb.models import dynamodb_backends

from local import moto_guard

REGION = "us-east-1"
WAIT = 5.0


class PausingItems(defaultdict[Any, Any]):
    """moto's partition map, whose iteration can stop after the first partition until resumed."""

    armed = False
    paused = threading.Event()
    resume = threading.Event()

    def values(self) -> Iterator[Any]:  # type: ignore[override]
        for n, value in enumerate(super().values()):
            yield value
            if n == 0 and PausingItems.armed:
                PausingItems.armed = False
                PausingItems.paused.set()
                PausingItems.resume.wait(WAIT)


@pytest.fixture
def guard_state() -> Iterator[None]:
    was_installed = moto_guard.installed()
    yield
    if was_installed:
        moto_guard.install()
    else:
        moto_guard.uninstall()


@pytest.fixture
def table(guard_state: None) -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("dynamodb", region_name=REGION)
        client.create_table(
            TableName="t",
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            KeySchema=[
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
        )
        for n in range(3):
            client.put_item(TableName="t", Item={"pk": {"S": f"P{n}"}, "sk": {"S": "A"}})
        moto_table = dynamodb_backends[DEFAULT_ACCOUNT_ID][REGION].tables["t"]
        moto_table.items = PausingItems(dict, moto_table.items)
        PausingItems.paused.clear()
        PausingItems.resume.clear()
        yield client


@dataclass
class Race:
    errors: list[BaseException]
    put_done: threading.Event
    threads: list[threading.Thread]

    def finish(self) -> None:
        PausingItems.resume.set()
        for thread in self.threads:
            thread.join(WAIT)


def read_then_write(client: Any) -> Race:
    """Start a read that pauses inside moto's iteration, then put a new item from another thread."""
    race = Race([], threading.Event(), [])

    def read() -> None:
        try:
            client.scan(TableName="t")  # Scan iterates every partition, as moto's Query does
        except Exception as error:
            race.errors.append(error)

    def write() -> None:
        client.put_item(TableName="t", Item={"pk": {"S": "NEW"}, "sk": {"S": "A"}})
        race.put_done.set()

    PausingItems.armed = True
    race.threads.append(threading.Thread(target=read))
    race.threads[0].start()
    assert PausingItems.paused.wait(WAIT), "the read never reached moto's iteration"
    race.threads.append(threading.Thread(target=write))
    race.threads[1].start()
    return race


def test_without_the_guard_a_write_during_a_read_breaks_moto(table: Any) -> None:
    # Given moto as shipped
    moto_guard.uninstall()
    # When a put lands while a read iterates the table
    race = read_then_write(table)
    assert race.put_done.wait(WAIT)  # nothing stops the writer
    race.finish()
    # Then the read fails the way the local stack's 500 did
    assert [type(e) for e in race.errors] == [RuntimeError]
    assert "changed size during iteration" in str(race.errors[0])


def test_with_the_guard_the_write_waits_and_both_succeed(table: Any) -> None:
    # Given the local stack's guard
    moto_guard.install()
    # When a put arrives while a read iterates the table
    race = read_then_write(table)
    # Then the put waits for the read...
    assert not race.put_done.wait(0.3)
    race.finish()
    # ...and both complete, the new item readable afterwards
    assert race.errors == []
    assert race.put_done.is_set()
    found = table.get_item(TableName="t", Key={"pk": {"S": "NEW"}, "sk": {"S": "A"}})
    assert "Item" in found


def test_a_scoped_query_returns_what_moto_returns(table: Any) -> None:
    # Given items in several partitions, one with several sort keys
    for sk in ("C", "B", "D"):
        table.put_item(TableName="t", Item={"pk": {"S": "P1"}, "sk": {"S": sk}})
    kwargs = {
        "TableName": "t",
        "KeyConditionExpression": "pk = :p AND sk > :s",
        "ExpressionAttributeValues": {":p": {"S": "P1"}, ":s": {"S": "A"}},
        "Limit": 2,
    }
    moto_guard.uninstall()
    plain = [table.query(**kwargs), table.query(**kwargs, ScanIndexForward=False)]
    # When the same queries run partition-scoped
    moto_guard.install()
    scoped = [table.query(**kwargs), table.query(**kwargs, ScanIndexForward=False)]
    # Then the answers are the same, paging key included
    for before, after in zip(plain, scoped, strict=True):
        assert before["Items"] == after["Items"]
        assert before.get("LastEvaluatedKey") == after.get("LastEvaluatedKey")
