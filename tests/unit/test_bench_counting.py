"""The benchmark's capacity estimate bills what DynamoDB bills: a transaction's every action
twice, an update on the item's size. A behaviour check on the counter alone, no AWS call."""

from typing import Any

from bench.counting import CallCounter


def _item(pk: str, padding: int) -> dict[str, Any]:
    return {"pk": {"S": pk}, "sk": {"S": "JOB#x"}, "blob": {"S": "x" * padding}}


def test_each_action_of_a_transaction_costs_twice_its_write_units() -> None:
    # Given a counter and a transaction of a 1.5 KB put and an update of a small item
    counter = CallCounter()
    body = {
        "TransactItems": [
            {"Put": {"TableName": "t", "Item": _item("A", 1500)}},
            {
                "Update": {
                    "TableName": "t",
                    "Key": {"pk": {"S": "B"}, "sk": {"S": "DELIVERY#x"}},
                    "UpdateExpression": "SET n = :n",
                    "ExpressionAttributeValues": {":n": {"N": "1"}},
                }
            },
        ]
    }
    # When its capacity is estimated
    wru, rru = counter._capacity("TransactWriteItems", body, {})
    # Then the put costs 2 x 2 units (two started KB) and the update 2 x 1
    assert (wru, rru) == (6.0, 0.0)


def test_an_update_after_a_transactional_put_is_billed_on_the_item_the_put_wrote() -> None:
    # Given a 1.5 KB item written inside a transaction
    counter = CallCounter()
    counter._capacity(
        "TransactWriteItems", {"TransactItems": [{"Put": {"Item": _item("A", 1500)}}]}, {}
    )
    # When a plain update of that item follows
    update = {"Key": {"pk": {"S": "A"}, "sk": {"S": "JOB#x"}}, "ExpressionAttributeValues": {}}
    wru, _ = counter._capacity("UpdateItem", update, {})
    # Then it costs the item's two started KB, not the minimum
    assert wru == 2.0
