"""The item codec writes what boto3's TypeSerializer writes and reads back what it wrote
(hypothesis). The codec no longer imports boto3 (a cold-start cost), so boto3's own
serializer is the oracle here, over every kind of value our items hold."""

from decimal import Decimal
from typing import Any

import pytest
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from hypothesis import given
from hypothesis import strategies as st

from optout.store import codec
from optout.store.codec import _attribute, _to_dynamo, deserialize, serialize

NAMES = st.text(min_size=1, max_size=12)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(10**37), 10**37)
    | st.floats(allow_nan=False, allow_infinity=False, width=32)
    | st.text(max_size=40)
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(NAMES, inner, max_size=4),
    max_leaves=20,
)
ITEMS = st.dictionaries(NAMES, VALUES, max_size=8)
SETS = (
    st.sets(st.text(max_size=10), min_size=1, max_size=4)
    | st.sets(st.integers(-1000, 1000), max_size=4)
    | st.sets(st.binary(min_size=1, max_size=8), min_size=1, max_size=4)
)


@given(ITEMS)
def test_an_item_is_written_as_boto3_writes_it(item: dict[str, Any]) -> None:
    # Given any item of plain values (floats become Decimals, None is left out, as before)
    boto3_serializer = TypeSerializer()
    expected = {
        k: boto3_serializer.serialize(_to_dynamo(v)) for k, v in item.items() if v is not None
    }
    # When the codec writes it / Then the wire format is boto3's, attribute for attribute
    assert serialize(item) == expected


@given(SETS)
def test_a_set_is_written_as_boto3_writes_it(value: set[Any]) -> None:
    assert serialize({"a": value}) == {"a": TypeSerializer().serialize(value)}


@given(ITEMS)
def test_what_is_written_reads_back_as_boto3_reads_it(item: dict[str, Any]) -> None:
    # Given an item the codec wrote
    raw = serialize(item)
    # When it is read back by the codec and by boto3 (numbers: int when whole, else float)
    read = deserialize(raw)
    boto3_read = {k: TypeDeserializer().deserialize(v) for k, v in raw.items()}
    # Then both agree
    assert read == _plain(boto3_read)


def test_a_number_dynamodb_cannot_hold_exactly_is_refused_not_rounded() -> None:
    with pytest.raises(ArithmeticError):
        serialize({"n": 10**40 + 1})


def test_a_value_of_no_dynamodb_type_is_refused() -> None:
    with pytest.raises(TypeError):
        serialize({"x": object()})


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


@given(SETS)
def test_a_set_reads_back_as_boto3_reads_it(value: set[Any]) -> None:
    raw = {"a": TypeSerializer().serialize(value)}
    boto3_read = TypeDeserializer().deserialize(raw["a"])
    expected = {bytes(v) if not isinstance(v, Decimal | str) else v for v in boto3_read}
    assert deserialize(raw)["a"] == expected


# What the one-walk writer must agree with the two steps on: subclasses of the kinds it
# writes at once (they take the two-step way), tuples, Decimals, bytes and sets inside.
class _Text(str):
    pass


class _Mapping(dict[str, Any]):
    pass


MIXED = st.recursive(
    SCALARS
    | st.decimals(
        allow_nan=False, allow_infinity=False, places=3, max_value=10**6, min_value=-(10**6)
    )
    | st.binary(max_size=6)
    | st.text(max_size=6).map(_Text)
    | SETS,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.lists(inner, max_size=4).map(tuple)
        | st.dictionaries(NAMES, inner, max_size=4)
        | st.dictionaries(NAMES, inner, max_size=4).map(_Mapping)
    ),
    max_leaves=20,
)


@given(st.dictionaries(NAMES, MIXED, max_size=8))
def test_one_walk_writes_what_the_two_steps_write(item: dict[str, Any]) -> None:
    expected = {k: _attribute(_to_dynamo(v)) for k, v in item.items() if v is not None}
    assert serialize(item) == expected


def test_an_event_like_item_is_written_in_one_walk(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given an item of the kinds a captured event holds (text, numbers, flags, maps, lists)
    item = {
        "pk": "REQ#1",
        "n": 3,
        "gpc": True,
        "opt_out": {"sale": True, "x": None},
        "ids": [{"type": "device_id", "role": "device"}],
        "pair": ("a", "b"),
        "gone": None,
    }
    calls: list[Any] = []
    convert = codec._to_dynamo

    def counted(value: Any) -> Any:
        calls.append(value)
        return convert(value)

    monkeypatch.setattr(codec, "_to_dynamo", counted)
    # When it is written / Then no value was converted first and walked again
    written = serialize(item)
    assert calls == []
    assert written["opt_out"] == {"M": {"sale": {"BOOL": True}}}
    assert written["pair"] == {"L": [{"S": "a"}, {"S": "b"}]}
    assert "gone" not in written
