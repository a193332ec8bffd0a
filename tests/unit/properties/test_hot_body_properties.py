"""Properties of the hot routes' body checks (hypothesis), against the models they stand in for:
on any JSON object, a check never accepts what its model refuses and never accepts anything
as another value than the model's dump; on objects in JSON's own types (strings, booleans,
lists and objects where the model has them), the two accept and refuse alike."""

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from optout.purposes import ALL_PURPOSES
from tests.unit.test_hot_bodies import CHECKS, DEVICE, model_dump

CHARS = st.sampled_from(["a", "Z", "0", "-", "_", ".", "@", "+", " ", "é", "€", "\n", "\x00",
                         "\ud800", "٣", "US", "US-CA"])  # fmt: skip
TEXT = st.one_of(
    st.lists(CHARS, max_size=70).map("".join),
    st.builds(
        lambda c, n: c * n,
        st.sampled_from(["a", "A", "é"]),
        st.sampled_from(
            [0, 1, 2, 3, 15, 16, 64, 65, 127, 128, 129, 200, 201, 254, 255, 2048, 2049]
        ),
    ),
)
SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | TEXT
JSON_VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=12,
)
PURPOSE = st.sampled_from([*ALL_PURPOSES, "marketing", "Sale"])
NAMES = {route: list(model.model_fields) for route, (model, _check) in CHECKS.items()}
NESTED = {"identity": ["email", "customer_id", "phone"], "agent": ["name", "agent_id"]}


def _json_typed(name: str) -> st.SearchStrategy[Any]:
    """A value in JSON's own type for the field (or null), of any content."""
    if name in ("gpc", "confirm_opt_in"):
        return st.none() | st.booleans()
    if name == "opt_out":
        return st.dictionaries(PURPOSE, st.booleans(), max_size=6)
    if name == "purposes":
        return st.none() | st.lists(PURPOSE, max_size=7)
    if name in NESTED:
        fields = NESTED[name]
        keys = st.sampled_from([*fields, "extra"])
        return st.none() | st.dictionaries(keys, st.none() | TEXT, max_size=3)
    if name == "device_id":
        return st.none() | TEXT | st.just(DEVICE)
    return st.none() | TEXT


def _typed_bodies(route: str) -> st.SearchStrategy[dict[str, Any]]:
    names = st.lists(st.sampled_from([*NAMES[route], "extra"]), unique=True, max_size=6)
    return names.flatmap(lambda chosen: st.fixed_dictionaries({n: _json_typed(n) for n in chosen}))


def _any_bodies(route: str) -> st.SearchStrategy[dict[str, Any]]:
    return st.dictionaries(
        st.sampled_from([*NAMES[route], "extra"]) | TEXT, JSON_VALUES, max_size=6
    )


@given(st.sampled_from(sorted(CHECKS)).flatmap(lambda r: st.tuples(st.just(r), _any_bodies(r))))
def test_a_check_accepts_nothing_its_model_refuses(case: tuple[str, dict[str, Any]]) -> None:
    route, body = case
    model, check = CHECKS[route]
    checked = check(body)
    assert checked is None or checked == model_dump(model, body)


@given(st.sampled_from(sorted(CHECKS)).flatmap(lambda r: st.tuples(st.just(r), _typed_bodies(r))))
def test_on_json_typed_bodies_a_check_and_its_model_agree(case: tuple[str, dict[str, Any]]) -> None:
    route, body = case
    model, check = CHECKS[route]
    # A text "true" or a number is the model's to coerce; in their own types the two agree,
    # but for a text the model strips (an agent's name or id with whitespace around it): the
    # check leaves that body to the model (hot_bodies `_trimmed`), and never reads it otherwise.
    checked = check(body)
    assert checked == model_dump(model, body) or (checked is None and _padded(body))


def _padded(value: Any) -> bool:
    """Some text in it has whitespace around it."""
    if isinstance(value, str):
        return value != value.strip()
    if isinstance(value, dict):
        return any(_padded(v) for v in value.values())
    if isinstance(value, list):
        return any(_padded(v) for v in value)
    return False
