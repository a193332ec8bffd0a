"""EventBridge-style event patterns, the subset Lambda FilterCriteria use.

Lambda drops records that match none of a function's filters before it batches them; moto's
own event-source mapping does not, so the local stream poller filters with this.

Supported: nested objects, lists of allowed literal values (strings, numbers, booleans,
null), and the operators `prefix`, `suffix`, `equals-ignore-case`, `anything-but`, `exists`
and `numeric`. When the event holds a list, the pattern matches if any element matches.
"""

import json
import operator
from collections.abc import Callable, Mapping, Sequence
from typing import Any

_MISSING = object()

_NUMERIC_OPS: dict[str, Callable[[float, float], bool]] = {
    "=": operator.eq,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


class PatternError(ValueError):
    """The pattern uses syntax outside the supported subset (fail loudly, never match silently)."""


def parse_filters(criteria: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """The patterns of a FilterCriteria block; each Pattern may be a JSON string or a mapping."""
    if not criteria:
        return []
    patterns: list[dict[str, Any]] = []
    for entry in criteria.get("Filters", []):
        raw = entry["Pattern"]
        pattern = json.loads(raw) if isinstance(raw, str) else raw
        if not isinstance(pattern, dict):
            raise PatternError("a filter pattern must be a JSON object")
        patterns.append(pattern)
    return patterns


def matches_any(patterns: Sequence[Mapping[str, Any]], event: Mapping[str, Any]) -> bool:
    """Lambda semantics: no filters lets everything through; otherwise any one filter suffices."""
    return not patterns or any(matches(p, event) for p in patterns)


def matches(pattern: Mapping[str, Any], event: Any) -> bool:
    if not isinstance(pattern, Mapping):
        raise PatternError("a pattern level must be an object")
    for key, expected in pattern.items():
        actual = event.get(key, _MISSING) if isinstance(event, Mapping) else _MISSING
        if isinstance(expected, Mapping):
            if actual is _MISSING or not _any_element(actual, _matcher(expected)):
                return False
        elif isinstance(expected, list):
            if not _leaf_matches(expected, actual):
                return False
        else:
            raise PatternError(f"pattern values must be objects or lists (key {key!r})")
    return True


def _leaf_matches(allowed: list[Any], actual: Any) -> bool:
    # An `exists: false` rule is the one rule that matches a missing field.
    if actual is _MISSING:
        return any(_is_rule(rule, "exists") and rule["exists"] is False for rule in allowed)
    return any(_any_element(actual, _rule_tester(rule)) for rule in allowed)


def _matcher(pattern: Mapping[str, Any]) -> Callable[[Any], bool]:
    return lambda value: matches(pattern, value)


def _rule_tester(rule: Any) -> Callable[[Any], bool]:
    return lambda value: _rule_matches(rule, value)


def _any_element(actual: Any, test: Callable[[Any], bool]) -> bool:
    if isinstance(actual, list):
        return any(test(item) for item in actual)
    return test(actual)


def _is_rule(rule: Any, name: str) -> bool:
    return isinstance(rule, Mapping) and name in rule


def _rule_matches(rule: Any, value: Any) -> bool:
    if not isinstance(rule, Mapping):
        # Literal: booleans must not equal 1/0, so compare types as well as values.
        return (type(rule) is type(value) and bool(rule == value)) or _numbers_equal(rule, value)
    if len(rule) != 1:
        raise PatternError("an operator object holds exactly one operator")
    ((name, argument),) = rule.items()
    if name == "exists":
        return bool(argument)
    if name == "prefix":
        return isinstance(value, str) and value.startswith(_text(argument))
    if name == "suffix":
        return isinstance(value, str) and value.endswith(_text(argument))
    if name == "equals-ignore-case":
        return isinstance(value, str) and value.lower() == _text(argument).lower()
    if name == "anything-but":
        excluded = argument if isinstance(argument, list) else [argument]
        return not any(_rule_matches(item, value) for item in excluded)
    if name == "numeric":
        return _numeric(argument, value)
    raise PatternError(f"unsupported pattern operator {name!r}")


def _numbers_equal(rule: Any, value: Any) -> bool:
    numeric = (int, float)
    return (
        isinstance(rule, numeric)
        and isinstance(value, numeric)
        and not isinstance(rule, bool)
        and not isinstance(value, bool)
        and rule == value
    )


def _text(argument: Any) -> str:
    if not isinstance(argument, str):
        raise PatternError("prefix/suffix/equals-ignore-case take a string")
    return argument


def _numeric(conditions: Any, value: Any) -> bool:
    if not isinstance(conditions, list) or len(conditions) % 2:
        raise PatternError("numeric takes [op, number, ...]")
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    pairs = zip(conditions[::2], conditions[1::2], strict=True)
    return all(_NUMERIC_OPS[op](value, float(bound)) for op, bound in pairs)
