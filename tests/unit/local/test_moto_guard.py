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
from local.aws_resources import create_table

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


def by_day(client: Any, day_pk: str) -> list[Any]:
    """The deadline watch's index Query (ByDay, one day shard)."""
    answer = client.query(
        TableName="w",
        IndexName="ByDay",
        KeyConditionExpression="day_pk = :pk AND received_at <= :until",
        ExpressionAttributeValues={":pk": {"S": day_pk}, ":until": {"S": "2026-11-29T23"}},
    )
    return list(answer["Items"])


def event(n: int, shard: str, received: str) -> dict[str, Any]:
    return {
        "pk": {"S": f"REQ#{n}"},
        "sk": {"S": "EVENT"},
        "day_pk": {"S": f"RCV#2026-11-29#{shard}"},
        "received_at": {"S": received},
    }


def index_answers(client: Any) -> list[list[Any]]:
    """Index Queries between writes that add to, change and empty a day shard."""
    answers = []
    for n in range(6):
        client.put_item(TableName="w", Item=event(n, "ab"[n % 2], f"2026-11-29T0{n}"))
    answers += [by_day(client, "RCV#2026-11-29#a"), by_day(client, "RCV#2026-11-29#b")]
    answers.append(by_day(client, "RCV#2026-11-29#a"))  # again, nothing written meanwhile
    client.put_item(TableName="w", Item=event(9, "a", "2026-11-29T09"))  # a new arrival
    answers.append(by_day(client, "RCV#2026-11-29#a"))
    client.update_item(  # an event moves to the other shard
        TableName="w",
        Key={"pk": {"S": "REQ#0"}, "sk": {"S": "EVENT"}},
        UpdateExpression="SET day_pk = :b",
        ExpressionAttributeValues={":b": {"S": "RCV#2026-11-29#b"}},
    )
    answers += [by_day(client, "RCV#2026-11-29#a"), by_day(client, "RCV#2026-11-29#b")]
    client.batch_write_item(
        RequestItems={
            "w": [
                {"DeleteRequest": {"Key": {"pk": {"S": f"REQ#{n}"}, "sk": {"S": "EVENT"}}}}
                for n in (2, 4)
            ]
        }
    )
    answers.append(by_day(client, "RCV#2026-11-29#a"))
    answers.append(by_day(client, "RCV#2026-11-29#none"))
    client.update_item(  # an update that does not name the index attribute: same item, changed
        TableName="w",
        Key={"pk": {"S": "REQ#1"}, "sk": {"S": "EVENT"}},
        UpdateExpression="SET resolved_at = :r, received_at = :t",
        ExpressionAttributeValues={":r": {"S": "now"}, ":t": {"S": "2026-11-29T00"}},
    )
    answers.append(by_day(client, "RCV#2026-11-29#b"))
    client.delete_item(TableName="w", Key={"pk": {"S": "REQ#3"}, "sk": {"S": "EVENT"}})
    answers.append(by_day(client, "RCV#2026-11-29#b"))
    client.put_item(  # the same key put again without the index attribute: it leaves the index
        TableName="w", Item={"pk": {"S": "REQ#5"}, "sk": {"S": "EVENT"}, "note": {"S": "x"}}
    )
    answers.append(by_day(client, "RCV#2026-11-29#b"))
    return answers


def index_run(guard: bool) -> list[list[Any]]:
    if guard:
        moto_guard.install()
    else:
        moto_guard.uninstall()
    with mock_aws():
        client = boto3.client("dynamodb", region_name=REGION)
        create_table(client, "w")
        return index_answers(client)


def test_an_index_query_between_writes_returns_what_moto_returns(guard_state: None) -> None:
    # Given the watch's index Query asked between puts, an update and a batch delete
    shipped = index_run(guard=False)
    # When the same calls run with the guard's grouped index partitions
    guarded = index_run(guard=True)
    # Then every answer is moto's, and the writes did show in them
    assert guarded == shipped
    assert [len(a) for a in guarded] == [3, 3, 3, 4, 3, 4, 1, 0, 4, 3, 2]
