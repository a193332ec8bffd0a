"""The FilterCriteria pattern subset the local stream poller applies."""

import pytest

from local.patterns import PatternError, matches, matches_any, parse_filters

RESOLVER = '{"eventName": ["INSERT"], "dynamodb": {"NewImage": {"sk": {"S": ["EVENT"]}}}}'


def record(event_name: str, sk: str) -> dict:
    return {"eventName": event_name, "dynamodb": {"NewImage": {"sk": {"S": sk}}}}


def test_resolver_filter_lets_only_inserted_event_items_through() -> None:
    patterns = parse_filters({"Filters": [{"Pattern": RESOLVER}]})
    assert matches_any(patterns, record("INSERT", "EVENT"))
    assert not matches_any(patterns, record("MODIFY", "EVENT"))
    assert not matches_any(patterns, record("INSERT", "JOB#braze"))
    assert not matches_any(patterns, {"eventName": "INSERT", "dynamodb": {}})


def test_no_filters_let_everything_through_and_any_filter_suffices() -> None:
    assert matches_any([], {"anything": 1})
    either = [{"a": ["x"]}, {"b": ["y"]}]
    assert matches_any(either, {"b": "y"})
    assert not matches_any(either, {"a": "y"})


def test_a_list_in_the_event_matches_when_any_element_does() -> None:
    assert matches({"tags": ["b"]}, {"tags": ["a", "b"]})
    assert not matches({"tags": ["c"]}, {"tags": ["a", "b"]})


@pytest.mark.parametrize(
    ("rule", "value", "expected"),
    [
        ({"prefix": "REQ#"}, "REQ#1", True),
        ({"prefix": "REQ#"}, "ID#1", False),
        ({"suffix": ".json"}, "a.json", True),
        ({"equals-ignore-case": "insert"}, "INSERT", True),
        ({"anything-but": ["REMOVE"]}, "INSERT", True),
        ({"anything-but": "REMOVE"}, "REMOVE", False),
        ({"numeric": [">", 0, "<=", 5]}, 5, True),
        ({"numeric": [">", 0]}, 0, False),
        ({"exists": True}, "x", True),
    ],
)
def test_operators(rule: dict, value: object, expected: bool) -> None:
    assert matches({"f": [rule]}, {"f": value}) is expected


def test_exists_false_matches_only_a_missing_field() -> None:
    assert matches({"f": [{"exists": False}]}, {})
    assert not matches({"f": [{"exists": False}]}, {"f": 1})
    assert not matches({"f": ["x"]}, {})


def test_literals_compare_type_as_well_as_value() -> None:
    assert matches({"f": [True]}, {"f": True})
    assert not matches({"f": [True]}, {"f": 1})
    assert matches({"f": [1]}, {"f": 1.0})
    assert matches({"f": [None]}, {"f": None})


def test_unsupported_syntax_fails_loudly() -> None:
    with pytest.raises(PatternError):
        matches({"f": [{"wildcard": "*"}]}, {"f": "x"})
    with pytest.raises(PatternError):
        matches({"f": "not-a-list"}, {"f": "x"})
