"""The local stack's botocore clients: DynamoDB attribute values to and from JSON as they are.

Profiled under a burst (docs/performance.md part E), botocore's client side cost about a
sixth of the local stack's CPU per call, the largest part in two walks over every DynamoDB
attribute value: the request serialiser copies each value member by member through the
`AttributeValue` shape, and the response parser builds each returned value again the same
way. For a value in DynamoDB's JSON form with no binary in it (strings, numbers as strings,
booleans, nulls, string and number sets, maps and lists of such), both walks produce a value
equal to the one they were given, so it is used as it is (the request's is only written out
by `json.dumps`). Binary values and anything else still take botocore's walk (base64).

Parameter validation is untouched: it runs before serialisation, on the caller's
parameters, and refuses what AWS would refuse. Only the local stack's process installs this
(never Lambda, never the tests' clients); tests/unit/local/test_botocore_wire.py compares
serialised requests and parsed answers with botocore's own.
"""

import functools
from typing import Any

from botocore.parsers import BaseJSONParser
from botocore.serialize import JSONSerializer

from local.moto_speedups import _plain
from local.patching import Patches

_patches = Patches()


def install() -> None:
    """Idempotent."""
    if _patches.installed():
        return
    parse = getattr(BaseJSONParser, "_handle_structure")  # noqa: B009 - private in the stubs
    serialize = getattr(JSONSerializer, "_serialize_type_structure")  # noqa: B009

    @functools.wraps(parse)
    def handle_structure(self: BaseJSONParser, shape: Any, value: Any) -> Any:
        if shape.name == "AttributeValue" and _plain(value):
            return value
        return parse(self, shape, value)

    @functools.wraps(serialize)
    def serialize_structure(
        self: JSONSerializer, serialized: Any, value: Any, shape: Any, key: Any
    ) -> None:
        if key is not None and shape.name == "AttributeValue" and _plain(value):
            serialized[key] = value
            return
        serialize(self, serialized, value, shape, key)

    _patches.swap(BaseJSONParser, "_handle_structure", handle_structure)
    _patches.swap(JSONSerializer, "_serialize_type_structure", serialize_structure)


def uninstall() -> None:
    """botocore as shipped (the tests compare both)."""
    _patches.restore()


def installed() -> bool:
    return _patches.installed()
