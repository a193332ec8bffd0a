"""moto's DynamoDB expressions parsed once per text, not on every call (the local stack only).

Why (profiled under a burst, docs/performance.md part D): an UpdateItem in moto 5.2 parses its
UpdateExpression twice (once in the response layer to list the names it uses, once in the
backend), deep-copies the parsed tree before validating it against the item, and parses its
ConditionExpression twice as well; a conditional PutItem parses its condition twice. The
handlers send a handful of distinct expression texts, so this was about a sixth of the local
stack's CPU spent rebuilding the same trees.

- `UpdateExpressionParser.make` answers from a cache keyed by the expression text. The tree
  it returns is never changed by moto: the validator works on its own copy (and the response
  layer only lists names in it). That copy is made from the tree's pickled form, kept beside
  it, instead of `copy.deepcopy` walking the tree; any other deepcopy in moto's validators
  (item values) is untouched.
- Three of the validator's ten passes depend on the expression, its names and the table's key
  attributes only (at most one ADD, SET and REMOVE clause; no overlapping paths; no key
  attribute updated): once they have passed for those, they are not walked again. The other
  seven (values, the item's attributes, functions, types) run on every call as before.
- `ConditionExpressionParser.parse` answers from a cache keyed by the expression, its names
  and its values (everything the parsed condition depends on), with the names and values it
  found, which the response layer reads. A condition is evaluated by reading it, never changed.
- A condition whose values differ on every call (a timestamp, a job id: the resolver's
  in-flight mark) misses that cache; its tokens still depend on the text alone, so the
  lexer's token list is cached by text (tokens are immutable tuples whose child lists moto
  never changes) and each parse gets its own copy of the list.
- Such a condition's tree depends on its values only through the operands made from them
  (`AttributeValue`, one per placeholder used; and a NULL bound of BETWEEN, which the type
  decides): the first parse for a text, its names and its values' types is kept pickled with
  each operand by its placeholder, and later calls unpickle it with operands made from their
  own values (the mark's parse was ~0.75 ms, the unpickling ~0.03 ms: part F).

Invalid expressions are not cached (the parser raises, as before). Every cached answer is a
function of the text alone; tests/unit/local/test_moto_expressions.py compares items, answers,
errors and stream records against moto as shipped. Written against moto 5.2 (pinned).
"""

import copy
import functools
import io
import json
import pickle
from collections import deque
from typing import Any

from moto.dynamodb import comparisons
from moto.dynamodb.parsing import validators
from moto.dynamodb.parsing.expressions import UpdateExpressionParser  # type: ignore[attr-defined]

from local.moto_guard import LOCK
from local.patching import Patches

CACHE_SIZE = 512  # distinct texts; the handlers use a few dozen

_patches = Patches()
# id(tree) -> (tree, its pickle, its text): the tree is held here, so its id is not reused
# while the entry exists.
_pickled: dict[int, tuple[Any, bytes, str]] = {}
_conditions: dict[tuple[str, str, str], tuple[Any, list[str], list[str]]] = {}
# (text, names, each value's type) -> (the tree pickled with its operands by placeholder,
# the placeholders they came from, the names and values found)
_templates: dict[tuple[str, str, str], tuple[bytes, frozenset[str], list[str], list[str]]] = {}
# (text, names, key attributes) whose expression-only passes have passed
_passed: set[tuple[str, str, tuple[str, ...]]] = set()
# The validator passes that read nothing but the tree, the names and the table's key attributes.
EXPRESSION_ONLY = (
    validators.ActionCountValidator,
    validators.OverlappingPathsValidator,
    validators.UpdateHashRangeKeyValidator,
)


def install() -> None:
    """Idempotent; for the local stack's process and, for their duration, the resolver's
    property and scale tests (tests/integration/conftest.py); never Lambda."""
    if _patches.installed():
        return
    make = UpdateExpressionParser.make
    parse = comparisons.ConditionExpressionParser.parse
    lex = comparisons.ConditionExpressionParser._lex_condition_expression

    @functools.lru_cache(maxsize=CACHE_SIZE)
    def tokens(expression: str) -> tuple[Any, ...]:
        # The lexer reads nothing of the parser but the text (and class constants).
        parser = comparisons.ConditionExpressionParser.__new__(
            comparisons.ConditionExpressionParser
        )
        parser.condition_expression = expression
        return tuple(lex(parser))  # raises on a text it cannot read: nothing cached

    @functools.wraps(lex)
    def cached_lex(self: comparisons.ConditionExpressionParser) -> Any:
        expression = self.condition_expression
        if not isinstance(expression, str):
            return lex(self)
        return deque(tokens(expression))

    init = validators.UpdateExpressionValidator.__init__

    @functools.lru_cache(maxsize=CACHE_SIZE)
    def parsed(expression: str) -> Any:
        tree = make(expression)
        try:
            blob = pickle.dumps(tree, protocol=pickle.HIGHEST_PROTOCOL)
        except (pickle.PicklingError, TypeError, AttributeError):
            return tree  # copied the slow way below
        with LOCK:
            if len(_pickled) >= CACHE_SIZE * 2:
                _pickled.clear()  # trees evicted from the lru cache are let go with it
            _pickled[id(tree)] = (tree, blob, expression)
        return tree

    def cached_make(expression: str) -> Any:
        return parsed(expression) if isinstance(expression, str) else make(expression)

    def tree_copy(value: Any, memo: Any = None) -> Any:
        entry = _pickled.get(id(value))
        if entry is not None and entry[0] is value:
            return pickle.loads(entry[1])  # noqa: S301 - our own pickle of moto's own tree
        return copy.deepcopy(value, memo)

    @functools.wraps(parse)
    def cached_parse(self: comparisons.ConditionExpressionParser) -> Any:
        key = _condition_key(self)
        if key is None:
            return parse(self)
        hit = _conditions.get(key)
        if hit is None:
            condition = parse(self)  # raises on an invalid expression: nothing cached
            with LOCK:
                if len(_conditions) >= CACHE_SIZE * 8:
                    _conditions.clear()
                _conditions[key] = (
                    condition,
                    list(self.expr_attr_names_found),
                    list(self.expr_attr_values_found),
                )
            return condition
        condition, names, values = hit
        self.expr_attr_names_found.extend(names)
        self.expr_attr_values_found.extend(values)
        return condition

    @functools.wraps(init)
    def remembering_init(self: Any, expression: Any, *args: Any, **kwargs: Any) -> None:
        init(self, expression, *args, **kwargs)
        self.local_source_tree = expression

    _patches.swap(UpdateExpressionParser, "make", staticmethod(cached_make))
    # moto defines both on Validator, not on this subclass: restoring drops the overrides.
    _patches.swap(validators.UpdateExpressionValidator, "__init__", remembering_init)
    _patches.swap(validators.UpdateExpressionValidator, "validate", _validate)
    _patches.swap(validators, "deepcopy", tree_copy)
    remembering_make, templated_parse = _templates_over(parse, cached_parse)
    _patches.swap(comparisons.ConditionExpressionParser, "parse", templated_parse)
    _patches.swap(comparisons.ConditionExpressionParser, "_make_operand", remembering_make)
    _patches.swap(comparisons.ConditionExpressionParser, "_lex_condition_expression", cached_lex)


def _templates_over(parse: Any, cached_parse: Any) -> tuple[Any, Any]:
    """moto's `_make_operand`, noting which placeholder made each operand while a template is
    parsed, and the parse that answers from a template when it has one (else `cached_parse`)."""
    make_operand = comparisons.ConditionExpressionParser._make_operand

    def operand_remembering_make(
        self: comparisons.ConditionExpressionParser, node: Any
    ) -> comparisons.Operand:
        operand = make_operand(self, node)
        placed = getattr(self, "local_placed", None)
        if placed is not None and node.kind == self.Kind.EXPRESSION_ATTRIBUTE_VALUE:
            placed[id(operand)] = (operand, node.text)
        return operand

    @functools.wraps(parse)
    def templated_parse(self: comparisons.ConditionExpressionParser) -> Any:
        key = _template_key(self)
        if key is None:
            return cached_parse(self)
        values: dict[str, Any] = self.expression_attribute_values or {}
        hit = _templates.get(key)
        if hit is not None and hit[1] <= values.keys():
            blob, _, names, found = hit
            condition = _Unpickler(io.BytesIO(blob), values).load()
            self.expr_attr_names_found.extend(names)
            self.expr_attr_values_found.extend(found)
            return condition
        if hit is not None:
            return parse(self)  # a placeholder missing: moto's own error
        self.local_placed = {}  # type: ignore[attr-defined]
        try:
            condition = parse(self)  # raises on an invalid expression: nothing kept
        finally:
            placed = self.local_placed  # type: ignore[attr-defined]
            del self.local_placed  # type: ignore[attr-defined]
        try:
            blob = _pickled_by_placeholder(condition, placed)
        except (pickle.PicklingError, TypeError, AttributeError):
            return condition
        with LOCK:
            if len(_templates) >= CACHE_SIZE:
                _templates.clear()
            _templates[key] = (
                blob,
                frozenset(name for _, name in placed.values()),
                list(self.expr_attr_names_found),
                list(self.expr_attr_values_found),
            )
        return condition

    return operand_remembering_make, templated_parse


def uninstall() -> None:
    """moto as shipped (the tests compare both)."""
    _patches.restore()
    _pickled.clear()
    _conditions.clear()
    _templates.clear()
    _passed.clear()


def _validate(self: Any) -> Any:
    """moto's Validator.validate, skipping the expression-only passes once they have passed."""
    key = _validation_key(self)
    skip = key is not None and key in _passed
    node = self.node_to_validate
    pending = 0 if skip else sum(isinstance(p, EXPRESSION_ONLY) for p in self.processors)
    for processor in self.processors:
        if isinstance(processor, EXPRESSION_ONLY):
            if skip:
                continue
            node = processor.traverse(node)
            pending -= 1
            if pending == 0 and key is not None:
                with LOCK:
                    _passed.add(key)
            continue
        node = processor.traverse(node)
    return node


def _validation_key(validator: Any) -> tuple[str, str, tuple[str, ...]] | None:
    source = getattr(validator, "local_source_tree", None)
    entry = _pickled.get(id(source))
    if entry is None or entry[0] is not source:
        return None  # not a tree from the cache: validate it all
    try:
        names = json.dumps(validator.expression_attribute_names or {}, sort_keys=True)
    except (TypeError, ValueError):
        return None
    return entry[2], names, tuple(validator.table.table_key_attrs)


def installed() -> bool:
    return _patches.installed()


def _condition_key(parser: comparisons.ConditionExpressionParser) -> tuple[str, str, str] | None:
    """Everything a parsed condition depends on, or None when it cannot be a key (binary)."""
    expression = parser.condition_expression
    if not expression:
        return None
    try:
        return (
            expression,
            json.dumps(parser.expression_attribute_names or {}, sort_keys=True),
            json.dumps(parser.expression_attribute_values or {}, sort_keys=True),
        )
    except (TypeError, ValueError):
        return None


def _template_key(parser: comparisons.ConditionExpressionParser) -> tuple[str, str, str] | None:
    """A condition's text, its names and each value's type: all its parsed tree depends on but
    the operands made from the values. None when it cannot be a key."""
    expression = parser.condition_expression
    values = parser.expression_attribute_values or {}
    if not expression or not isinstance(values, dict):
        return None
    if not all(isinstance(value, dict) for value in values.values()):
        return None
    try:
        types = {name: list(value) for name, value in values.items()}
        return (
            expression,
            json.dumps(parser.expression_attribute_names or {}, sort_keys=True),
            json.dumps(types, sort_keys=True),
        )
    except (TypeError, ValueError):
        return None


class _Pickler(pickle.Pickler):
    def __init__(self, file: io.BytesIO, placed: dict[int, tuple[Any, str]]) -> None:
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self.placed = placed

    def persistent_id(self, obj: Any) -> str | None:
        entry = self.placed.get(id(obj))
        return entry[1] if entry is not None and entry[0] is obj else None


class _Unpickler(pickle.Unpickler):
    def __init__(self, file: io.BytesIO, values: dict[str, Any]) -> None:
        super().__init__(file)
        self.values = values

    def persistent_load(self, pid: Any) -> Any:
        # The operand moto's parser makes from this call's value for the placeholder.
        return comparisons.AttributeValue(self.values[pid])


def _pickled_by_placeholder(condition: Any, placed: dict[int, tuple[Any, str]]) -> bytes:
    buffer = io.BytesIO()
    _Pickler(buffer, placed).dump(condition)
    return buffer.getvalue()
