"""Patches swaps class and module attributes and puts back the very objects that were there."""

import sys
import types
from collections.abc import Iterator
from typing import Any

import pytest

from local.patching import Patches
from local.stack import PATCHES


class Base:
    def inherited(self) -> str:
        return "base"


class Owner(Base):
    @classmethod
    def made(cls) -> str:
        return f"made by {cls.__name__}"

    def method(self) -> str:
        return "shipped"


class Recording(types.ModuleType):
    """A module that notes the name of every attribute set on it, in order."""

    def __init__(self) -> None:
        super().__init__("recording")
        self.__dict__["sets"] = []

    def __setattr__(self, name: str, value: Any) -> None:
        self.__dict__["sets"].append(name)
        super().__setattr__(name, value)


@pytest.fixture
def patches() -> Iterator[Patches]:
    """Patches restored after the test, whatever it left swapped."""
    patches = Patches()
    yield patches
    patches.restore()


def test_a_swapped_method_is_replaced_then_restored_as_the_same_object(
    patches: Patches,
) -> None:
    # Given Owner's own method
    shipped = vars(Owner)["method"]
    # When it is swapped, then restored
    patches.swap(Owner, "method", lambda self: "patched")
    during = Owner().method()
    patches.restore()
    # Then the replacement answered meanwhile, and the very original is back
    assert during == "patched"
    assert vars(Owner)["method"] is shipped
    assert Owner().method() == "shipped"


def test_a_classmethod_is_restored_as_the_classmethod_itself(patches: Patches) -> None:
    # Given a classmethod, which reading through the class turns into a bound method
    shipped = vars(Owner)["made"]
    # When it is swapped, then restored
    patches.swap(Owner, "made", staticmethod(lambda: "cached"))
    patches.restore()
    # Then the class holds the classmethod object again, still bound to its class on call
    assert vars(Owner)["made"] is shipped
    assert Owner.made() == "made by Owner"


def test_a_module_attribute_is_replaced_then_restored_as_the_same_object(patches: Patches) -> None:
    # Given a module with a function
    module = types.ModuleType("shipped")
    shipped = lambda: "shipped"  # noqa: E731
    module.helper = shipped  # type: ignore[attr-defined]
    # When it is swapped, then restored
    patches.swap(module, "helper", lambda: "patched")
    during = module.helper()  # type: ignore[attr-defined]
    patches.restore()
    # Then the module held the replacement meanwhile and holds the original again
    assert during == "patched"
    assert module.helper is shipped  # type: ignore[attr-defined]


def test_an_inherited_attribute_is_removed_again_not_copied_onto_the_subclass(
    patches: Patches,
) -> None:
    # Given a method Owner only inherits from Base
    # When it is swapped on Owner, then restored
    patches.swap(Owner, "inherited", lambda self: "patched")
    patches.restore()
    # Then Owner has no attribute of its own again and reads Base's
    assert "inherited" not in vars(Owner)
    assert Owner.inherited is Base.inherited


def test_attributes_are_restored_in_the_reverse_order_of_their_swaps(patches: Patches) -> None:
    # Given a module that records each attribute set on it, with three attributes
    module = Recording()
    for name in ("a", "b", "c"):
        setattr(module, name, name)
    module.__dict__["sets"].clear()
    # When the three are swapped in order, then restored
    for name in ("a", "b", "c"):
        patches.swap(module, name, name.upper())
    patches.restore()
    # Then they were set in order and put back last first, each to its own value
    assert module.__dict__["sets"] == ["a", "b", "c", "c", "b", "a"]
    assert (module.a, module.b, module.c) == ("a", "b", "c")  # type: ignore[attr-defined]


def test_installed_is_true_from_the_first_swap_until_the_restore(patches: Patches) -> None:
    # Given no swap yet
    assert not patches.installed()
    # When one attribute is swapped
    patches.swap(Owner, "method", lambda self: "patched")
    swapped = patches.installed()
    # And everything restored
    patches.restore()
    # Then it was installed in between only
    assert swapped
    assert not patches.installed()


def test_restoring_when_nothing_is_swapped_changes_nothing(patches: Patches) -> None:
    # Given a module that records sets, and patches with nothing swapped
    module = Recording()
    # When they are restored (twice)
    patches.restore()
    patches.restore()
    # Then nothing was set
    assert module.__dict__["sets"] == []


def test_an_attribute_is_not_swapped_twice_by_the_same_patches(patches: Patches) -> None:
    # Given Owner's method swapped once
    shipped = vars(Owner)["method"]
    first = lambda self: "first"  # noqa: E731
    patches.swap(Owner, "method", first)
    # When it is swapped again
    with pytest.raises(RuntimeError):
        patches.swap(Owner, "method", lambda self: "second")
    # Then the first replacement stays, and the restore still puts the shipped one back
    assert vars(Owner)["method"] is first
    patches.restore()
    assert vars(Owner)["method"] is shipped


def test_the_original_is_what_reading_the_attribute_gave_before_the_swap(patches: Patches) -> None:
    # Given Owner's method and classmethod swapped
    shipped = Owner.method
    patches.swap(Owner, "method", lambda self: "patched")
    patches.swap(Owner, "made", staticmethod(lambda: "cached"))
    # When a replacement looks up the originals to call through
    method = patches.original(Owner, "method")
    made = patches.original(Owner, "made")
    # Then it gets the method as read before, and the classmethod bound to its class
    assert method is shipped
    assert method(Owner()) == "shipped"
    assert made() == "made by Owner"
    # and an attribute that was not swapped has no original
    with pytest.raises(KeyError):
        patches.original(Owner, "inherited")


def _attributes() -> dict[tuple[str, str], dict[str, object]]:
    """Every moto and botocore module's and class's own attributes, by module and name."""
    found: dict[tuple[str, str], dict[str, object]] = {}
    for module_name, module in list(sys.modules.items()):
        if module is None or not module_name.startswith(("moto", "botocore")):
            continue
        found[module_name, ""] = dict(vars(module))
        for name, value in list(vars(module).items()):
            if isinstance(value, type) and value.__module__ == module_name:
                found[module_name, name] = dict(vars(value))
    return found


_MISSING = object()


def _differences(
    before: dict[tuple[str, str], dict[str, object]],
    after: dict[tuple[str, str], dict[str, object]],
) -> list[str]:
    """The attributes of `before`'s modules and classes that are not the same objects after."""
    changed = []
    for owner, attributes in before.items():
        now = after.get(owner, {})
        for name in attributes.keys() | now.keys():
            if attributes.get(name, _MISSING) is not now.get(name, _MISSING):
                changed.append(".".join(filter(None, (*owner, name))))
    return sorted(changed)


# As imported, before any test ran: a restore that went wrong in an earlier test would
# otherwise be the baseline of a later one.
SHIPPED = _attributes()


@pytest.fixture
def uninstalled() -> Iterator[None]:
    for module in reversed(PATCHES):
        module.uninstall()
    yield
    for module in reversed(PATCHES):
        module.uninstall()


def test_the_stacks_patches_installed_twice_are_installed_once(uninstalled: None) -> None:
    # Given every patch of the local stack installed in its order
    for module in PATCHES:
        module.install()
    once = _attributes()
    # When they are installed again
    for module in PATCHES:
        module.install()
    # Then nothing in moto or botocore changed
    assert _differences(once, _attributes()) == []


def test_the_stacks_patches_uninstalled_leave_moto_and_botocore_as_shipped(
    uninstalled: None,
) -> None:
    # Given moto and botocore as shipped (SHIPPED; other tests may have changed other parts)
    before = _attributes()
    # When every patch of the local stack is installed in its order and uninstalled in reverse
    for module in PATCHES:
        module.install()
    replaced = _differences(before, _attributes())
    for module in reversed(PATCHES):
        module.uninstall()
    # Then every attribute they replaced holds the very object it held as shipped again
    assert {  # a method, a classmethod, a property, module attributes, inherited methods
        "moto.core.botocore_stubber.BotocoreStubber.process_request",
        "moto.dynamodb.parsing.expressions.UpdateExpressionParser.make",
        "moto.sqs.models.Queue.attributes",
        "moto.dynamodb.models.copy",
        "moto.dynamodb.responses.dynamo_to_dict",
        "moto.dynamodb.parsing.validators.UpdateExpressionValidator.__init__",
        "moto.dynamodb.parsing.validators.UpdateExpressionValidator.validate",
    } <= set(replaced)
    assert set(replaced) & set(_differences(SHIPPED, _attributes())) == set()
