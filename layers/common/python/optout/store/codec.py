"""Plain Python values <-> DynamoDB attribute values (numbers come back as int or float).

Not boto3's `boto3.dynamodb.types`: importing it runs boto3's whole package (sessions,
resources, s3transfer), so the store would need boto3 even where botocore's client is enough,
and its serializer tries a dozen type checks per value on the capture hot path. The few lines
below write and read what boto3's TypeSerializer and TypeDeserializer do for every value our
items hold (tests/unit/properties/test_codec_properties.py compares them), binary values
coming back as bytes.
"""

from collections.abc import Mapping
from decimal import Clamped, Context, Decimal, Inexact, Overflow, Rounded, Underflow
from typing import Any

# DynamoDB's numbers: 38 digits, exponent -130..125. A number it cannot hold exactly is an error
# here, not a silently rounded value (boto3's own context).
_NUMBERS = Context(
    Emin=-128, Emax=126, prec=38, traps=[Clamped, Overflow, Inexact, Rounded, Underflow]
)

Item = dict[str, Any]


def _to_dynamo(value: Any) -> Any:
    if isinstance(value, float):
        return Decimal(str(value))
    if isinstance(value, dict):
        return {k: _to_dynamo(v) for k, v in value.items() if v is not None}
    if isinstance(value, list | tuple):
        return [_to_dynamo(v) for v in value]
    return value


def _from_dynamo(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _from_dynamo(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_from_dynamo(v) for v in value]
    return value


def _number(value: int | Decimal) -> str:
    return str(_NUMBERS.create_decimal(value))


def _attribute(value: Any) -> dict[str, Any]:
    """One value in DynamoDB's wire format, as boto3's TypeSerializer writes it."""
    if value is None:
        return {"NULL": True}
    if isinstance(value, bool):  # before int: a bool is an int
        return {"BOOL": value}
    if isinstance(value, int | Decimal):
        return {"N": _number(value)}
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, bytes | bytearray):
        return {"B": bytes(value)}
    if isinstance(value, Mapping):
        return {"M": {k: _attribute(v) for k, v in value.items()}}
    if isinstance(value, list | tuple):
        return {"L": [_attribute(v) for v in value]}
    if isinstance(value, set | frozenset):
        return _set(value)
    raise TypeError(f"Unsupported type {type(value)!r} for a DynamoDB attribute value")


def _set(value: set[Any] | frozenset[Any]) -> dict[str, Any]:
    # boto3's order of checks: an empty set is a number set.
    if all(isinstance(v, int | Decimal) and not isinstance(v, bool) for v in value):
        return {"NS": [_number(v) for v in value]}
    if all(isinstance(v, str) for v in value):
        return {"SS": list(value)}
    if all(isinstance(v, bytes | bytearray) for v in value):
        return {"BS": [bytes(v) for v in value]}
    raise TypeError("a set must hold only numbers, only strings or only bytes")


def _write(value: Any) -> dict[str, Any]:
    """`_attribute(_to_dynamo(value))` in one walk: the kinds an item mostly holds (exactly
    str, dict, bool, int, list, tuple) written at once, anything else (floats, Decimals,
    bytes, sets, subclasses) the two-step way. The capture writes one event per request."""
    kind = type(value)
    if kind is str:
        return {"S": value}
    if kind is dict:
        return {"M": {k: _write(v) for k, v in value.items() if v is not None}}
    if kind is bool:
        return {"BOOL": value}
    if kind is int:
        return {"N": _number(value)}
    if kind is list or kind is tuple:
        return {"L": [_write(v) for v in value]}
    return _attribute(_to_dynamo(value))


def serialize(item: Item) -> dict[str, Any]:
    return {k: _write(v) for k, v in item.items() if v is not None}


def _value(raw: Mapping[str, Any]) -> Any:
    """One attribute value read back (numbers as Decimal, as boto3 reads them)."""
    ((kind, value),) = raw.items()
    if kind in ("S", "BOOL"):
        return value
    if kind == "N":
        return _NUMBERS.create_decimal(value)
    if kind == "M":
        return {k: _value(v) for k, v in value.items()}
    if kind == "L":
        return [_value(v) for v in value]
    if kind == "NULL":
        return None
    if kind == "SS":
        return set(value)
    if kind == "NS":
        return {_NUMBERS.create_decimal(v) for v in value}
    if kind == "B":
        return bytes(value)
    if kind == "BS":
        return {bytes(v) for v in value}
    raise TypeError(f"DynamoDB type {kind} is not supported")


def deserialize(raw: dict[str, Any]) -> Item:
    return {k: _from_dynamo(_value(v)) for k, v in raw.items()}
