"""moto with its expressions parsed once per text answers exactly what moto as shipped answers."""

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID
from moto.dynamodb import comparisons
from moto.dynamodb.models import dynamodb_backends
from moto.dynamodb.parsing.tokens import ExpressionTokenizer

from local import moto_expressions
from local.aws_resources import create_table

REGION = "us-east-1"
JOB = {"pk": {"S": "REQ#1"}, "sk": {"S": "JOB#webhook"}}
MARK = {"pk": {"S": "ID#a"}, "sk": {"S": "DLV#webhook"}}
PENDING = "#status = :pending AND attempts < :max"
JOB_UPDATE = "SET #status = :status, receipt = :receipt, attempts = attempts + :one"


def job_update(client: Any, status: str, attempt: int) -> Any:
    return client.update_item(
        TableName="t",
        Key=JOB,
        UpdateExpression=JOB_UPDATE,
        ConditionExpression=PENDING,
        ExpressionAttributeNames={"#status": "status"},
        ExpressionAttributeValues={
            ":status": {"S": status},
            ":pending": {"S": "pending"},
            ":max": {"N": "5"},
            ":one": {"N": "1"},
            ":receipt": {"M": {"attempt": {"N": str(attempt)}, "ok": {"BOOL": True}}},
        },
        ReturnValues="UPDATED_NEW",
    )


def mark(client: Any, purposes: list[str], job: str) -> Any:
    """The resolver's in-flight mark: new item first, then the same texts on an existing one."""
    values: dict[str, Any] = {
        ":p": {"SS": purposes},
        ":now": {"S": "2026-11-29"},
        ":job": {"S": job},
    }
    values.update({f":p{n}": {"S": p} for n, p in enumerate(purposes)})
    clauses = " AND ".join(f"NOT contains(inflight, :p{n})" for n in range(len(purposes)))
    return client.update_item(
        TableName="t",
        Key=MARK,
        UpdateExpression="ADD inflight :p SET updated_at = :now, job_sale = :job",
        ConditionExpression=f"attribute_not_exists(inflight) OR ({clauses})",
        ExpressionAttributeValues=values,
    )


def set_named(client: Any, expression: str, names: dict[str, str] | None) -> Any:
    return client.update_item(
        TableName="t",
        Key=JOB,
        UpdateExpression=expression,
        ExpressionAttributeValues={":v": {"S": "x"}},
        **({"ExpressionAttributeNames": names} if names else {}),
    )


def outcome(call: Any) -> Any:
    try:
        answer = call()
    except ClientError as error:
        return ("error", error.response["Error"]["Code"], error.response["Error"]["Message"])
    answer.pop("ResponseMetadata", None)
    return answer


def calls(client: Any) -> list[Any]:
    """The same texts over and over, on new and existing items, passing and failing."""
    answers = [
        outcome(
            lambda: client.put_item(
                TableName="t",
                Item={**JOB, "status": {"S": "pending"}, "attempts": {"N": "0"}},
                ConditionExpression="attribute_not_exists(pk)",
            )
        )
    ]
    answers.append(  # the same conditional put again: refused
        outcome(
            lambda: client.put_item(
                TableName="t",
                Item={**JOB, "status": {"S": "pending"}},
                ConditionExpression="attribute_not_exists(pk)",
            )
        )
    )
    for attempt in range(3):  # the first two pass, the third finds the job done
        answers.append(
            outcome(lambda a=attempt: job_update(client, "pending" if a < 1 else "done", a))
        )
    answers.append(outcome(lambda: mark(client, ["sale"], "j1")))  # a new item
    answers.append(outcome(lambda: mark(client, ["share"], "j2")))  # existing, other purpose
    answers.append(outcome(lambda: mark(client, ["sale"], "j3")))  # refused: in flight
    answers.append(  # an invalid text raises both times (nothing cached for it)
        outcome(lambda: client.update_item(TableName="t", Key=JOB, UpdateExpression="SET = :x"))
    )
    answers.append(
        outcome(lambda: client.update_item(TableName="t", Key=JOB, UpdateExpression="SET = :x"))
    )
    answers.append(  # a name the expression does not use is refused (found names are cached)
        outcome(
            lambda: client.update_item(
                TableName="t",
                Key=JOB,
                UpdateExpression="SET a = :a",
                ConditionExpression="attribute_exists(pk)",
                ExpressionAttributeNames={"#unused": "x"},
                ExpressionAttributeValues={":a": {"S": "1"}},
            )
        )
    )
    for name in ("note", "pk", "note"):  # one text: its key check depends on the names
        answers.append(outcome(lambda n=name: set_named(client, "SET #k = :v", {"#k": n})))
    for _ in range(2):  # an expression-only refusal, every time
        answers.append(outcome(lambda: set_named(client, "SET a = :v SET b = :v", None)))
    answers.append(outcome(lambda: client.get_item(TableName="t", Key=JOB, ConsistentRead=True)))
    answers.append(outcome(lambda: client.get_item(TableName="t", Key=MARK, ConsistentRead=True)))
    return answers


def stream_images() -> list[Any]:
    # SizeBytes is the JSON length of the record with its creation time in it: not compared.
    table = dynamodb_backends[DEFAULT_ACCOUNT_ID][REGION].get_table("t")
    return [
        {
            k: v
            for k, v in r.record["dynamodb"].items()
            if k not in ("ApproximateCreationDateTime", "SizeBytes")
        }
        | {"eventName": r.record["eventName"]}
        for r in table.stream_shard.items
    ]


def run(cached: bool) -> tuple[list[Any], list[Any]]:
    if cached:
        moto_expressions.install()
    else:
        moto_expressions.uninstall()
    with mock_aws():
        client = boto3.client("dynamodb", region_name=REGION)
        create_table(client, "t")
        return calls(client), stream_images()


@pytest.fixture
def restore() -> Iterator[None]:
    yield
    moto_expressions.uninstall()


def test_answers_items_and_stream_records_match_moto_as_shipped(restore: None) -> None:
    # Given the same calls on a fresh moto, as shipped and with parsed expressions cached
    shipped_answers, shipped_stream = run(cached=False)
    cached_answers, cached_stream = run(cached=True)
    # Then every answer, error and stream image is the same
    assert cached_answers == shipped_answers
    assert cached_stream == shipped_stream
    # and the run did exercise what it is meant to: refusals, and the final item state
    assert [a[1] for a in cached_answers if isinstance(a, tuple)].count(
        "ConditionalCheckFailedException"
    ) == 3
    refusals = [a[2] for a in cached_answers if isinstance(a, tuple)]
    assert sum("Cannot update attribute pk" in r for r in refusals) == 1
    assert sum("SET" in r and "only" in r for r in refusals) == 2
    assert cached_answers[-2]["Item"]["status"] == {"S": "done"}
    assert cached_answers[-1]["Item"]["inflight"] == {"SS": ["sale", "share"]}


@pytest.mark.parametrize(("cached", "parses"), [(False, 6), (True, 1)])
def test_a_repeated_update_is_parsed_once_with_the_cache(
    restore: None, monkeypatch: pytest.MonkeyPatch, cached: bool, parses: int
) -> None:
    # Given a count of the texts moto tokenizes
    tokenized: list[str] = []
    make_list = ExpressionTokenizer.make_list

    def counting(text: str) -> Any:
        tokenized.append(text)
        return make_list(text)

    monkeypatch.setattr(ExpressionTokenizer, "make_list", staticmethod(counting))
    if cached:
        moto_expressions.install()
    with mock_aws():
        client = boto3.client("dynamodb", region_name=REGION)
        create_table(client, "t")
        client.put_item(
            TableName="t", Item={**JOB, "status": {"S": "pending"}, "attempts": {"N": "0"}}
        )
        # When the same update runs three times
        for attempt in range(3):
            job_update(client, "pending", attempt)
    # Then moto as shipped parses it twice a call, and once in all with the cache
    assert tokenized.count(JOB_UPDATE) == parses


@pytest.mark.parametrize("cached", [False, True])
def test_a_condition_with_new_values_each_call_is_lexed_once_with_the_cache(
    restore: None, monkeypatch: pytest.MonkeyPatch, cached: bool
) -> None:
    # Given a count of the tokens moto's condition lexer reads
    read: list[str] = []
    lex_one = comparisons.ConditionExpressionParser._lex_one_node

    def counting(self: Any, remaining: str) -> Any:
        read.append(remaining)
        return lex_one(self, remaining)

    monkeypatch.setattr(comparisons.ConditionExpressionParser, "_lex_one_node", counting)
    if cached:
        moto_expressions.install()
    with mock_aws():
        client = boto3.client("dynamodb", region_name=REGION)
        create_table(client, "t")
        # When the in-flight mark runs three times for three jobs (new values each time)
        answers = [outcome(lambda j=job: mark(client, ["sale"], j)) for job in ("a", "b", "c")]
    # Then the first passes and the others are refused, with or without the cache
    assert [isinstance(a, tuple) for a in answers] == [False, True, True]
    # and the condition's text is read token by token once with the cache, twice a call without
    whole = [r for r in read if r.startswith("attribute_not_exists(inflight)")]
    assert len(whole) == (1 if cached else 6)


def guarded(client: Any, condition: str, values: dict[str, Any]) -> Any:
    try:
        return outcome(
            lambda: client.update_item(
                TableName="t",
                Key=JOB,
                UpdateExpression="SET note = :note",
                ConditionExpression=condition,
                ExpressionAttributeValues={":note": {"S": str(len(values))}, **values},
                ReturnValues="ALL_NEW",
            )
        )
    except (comparisons.IncorrectOperandType, KeyError) as error:  # moto raises, not a 400
        return ("raised", type(error).__name__, str(error))


BETWEEN = "attempts BETWEEN :lo AND :hi"
RECEIPT = "receipt = :r OR (attempts = :n AND attempts <> :n)"


def value_calls(client: Any) -> list[Any]:
    """Condition texts seen again with other values: other content, types, NULL, missing."""
    client.put_item(
        TableName="t",
        Item={**JOB, "attempts": {"N": "2"}, "receipt": {"M": {"ok": {"BOOL": True}}}},
    )
    answers = [
        guarded(client, BETWEEN, {":lo": {"N": "0"}, ":hi": {"N": "9"}}),  # passes
        guarded(client, BETWEEN, {":lo": {"N": "3"}, ":hi": {"N": "9"}}),  # refused
        guarded(client, BETWEEN, {":lo": {"NULL": True}, ":hi": {"N": "9"}}),  # a NULL bound
        guarded(client, BETWEEN, {":lo": {"N": "1"}, ":hi": {"N": "2"}}),  # passes again
        guarded(client, BETWEEN, {":lo": {"N": "1"}}),  # :hi missing
        guarded(client, BETWEEN, {":lo": {"N": "1"}, ":hi": {"N": "2"}, ":x": {"N": "1"}}),
        guarded(client, RECEIPT, {":r": {"M": {"ok": {"BOOL": True}}}, ":n": {"N": "2"}}),
        guarded(client, RECEIPT, {":r": {"M": {"ok": {"BOOL": False}}}, ":n": {"N": "2"}}),
        guarded(client, RECEIPT, {":r": {"L": [{"S": "a"}]}, ":n": {"N": "2"}}),
        guarded(client, RECEIPT, {":r": {"M": {}}, ":n": {"N": "1"}}),
    ]
    answers += [outcome(lambda j=job: mark(client, ["sale", "share"], j)) for job in "abc"]
    answers.append(outcome(lambda: client.get_item(TableName="t", Key=MARK, ConsistentRead=True)))
    return answers


def run_values(cached: bool) -> tuple[list[Any], list[Any]]:
    if cached:
        moto_expressions.install()
    else:
        moto_expressions.uninstall()
    with mock_aws():
        client = boto3.client("dynamodb", region_name=REGION)
        create_table(client, "t")
        return value_calls(client), stream_images()


def test_conditions_seen_again_with_other_values_match_moto_as_shipped(restore: None) -> None:
    # Given condition texts called again with other values, as shipped and with the cache
    shipped_answers, shipped_stream = run_values(cached=False)
    cached_answers, cached_stream = run_values(cached=True)
    # Then every answer, error and stream image is the same
    assert cached_answers == shipped_answers
    assert cached_stream == shipped_stream
    # and the calls did pass, fail the condition and fail validation, as meant
    kinds = [a[1] if isinstance(a, tuple) else "ok" for a in cached_answers]
    assert kinds[:6] == ["ok", "ConditionalCheckFailedException", "IncorrectOperandType",
                         "ok", "KeyError", "ValidationException"]  # fmt: skip
    assert kinds[6:10] == ["ok"] + ["ConditionalCheckFailedException"] * 3
    assert kinds[10:13] == ["ok"] + ["ConditionalCheckFailedException"] * 2
    assert cached_answers[3]["Attributes"]["note"] == {"S": "2"}


@pytest.mark.parametrize(("cached", "parses"), [(False, 6), (True, 1)])
def test_a_condition_with_new_values_each_call_is_parsed_once_with_the_cache(
    restore: None, monkeypatch: pytest.MonkeyPatch, cached: bool, parses: int
) -> None:
    # Given a count of the conditions moto's parser builds from their tokens
    built: list[str] = []
    apply_between = comparisons.ConditionExpressionParser._apply_between

    def counting(self: Any, nodes: Any) -> Any:
        built.append(self.condition_expression)
        return apply_between(self, nodes)

    monkeypatch.setattr(comparisons.ConditionExpressionParser, "_apply_between", counting)
    if cached:
        moto_expressions.install()
    with mock_aws():
        client = boto3.client("dynamodb", region_name=REGION)
        create_table(client, "t")
        # When the in-flight mark runs three times for three jobs (new values each time)
        answers = [outcome(lambda j=job: mark(client, ["sale"], j)) for job in ("a", "b", "c")]
    # Then the first passes and the others are refused, with or without the cache
    assert [isinstance(a, tuple) for a in answers] == [False, True, True]
    # and its tree is built once with the cache, twice a call without
    assert len(built) == parses
