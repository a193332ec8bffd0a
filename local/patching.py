"""The local stack's swaps of moto and botocore attributes, and putting the originals back.

Each patch module (local/moto_*.py, local/botocore_wire.py) holds one `Patches`: `swap`
replaces an attribute of a class or a module and records what was there, `restore` puts
every recorded attribute back in the reverse order, the very objects that were there (a
classmethod or a property as it sat in the class, not what reading it gives), and an
attribute the class only inherited is removed again rather than copied onto it.
"""

from dataclasses import dataclass
from typing import Any

_INHERITED = object()  # the owner had no attribute of its own by that name


@dataclass(frozen=True)
class _Swap:
    held: object  # the owner's own attribute before the swap, or _INHERITED
    original: Any  # what reading the attribute gave before the swap: what to call through


# Not unittest.mock.patch in an ExitStack: a test tool with no "installed?" or original lookup.
class Patches:
    """One module's swaps: made in order, undone in reverse, each original at hand."""

    def __init__(self) -> None:
        self._swaps: dict[tuple[object, str], _Swap] = {}  # in the order they were made

    def installed(self) -> bool:
        return bool(self._swaps)

    def swap(self, owner: object, name: str, replacement: object) -> None:
        """Set `owner.name` (a class's or a module's attribute) to `replacement`."""
        if (owner, name) in self._swaps:
            raise RuntimeError(f"{name} is swapped already: restore before swapping again")
        held = vars(owner).get(name, _INHERITED)
        self._swaps[owner, name] = _Swap(held, getattr(owner, name))
        setattr(owner, name, replacement)

    def original(self, owner: object, name: str) -> Any:
        """What `owner.name` gave before it was swapped (KeyError when it is not swapped)."""
        return self._swaps[owner, name].original

    def restore(self) -> None:
        """Every swapped attribute as it was, last swapped first; nothing when none is."""
        while self._swaps:
            (owner, name), swapped = self._swaps.popitem()  # the last one made
            if swapped.held is _INHERITED:
                delattr(owner, name)
            else:
                setattr(owner, name, swapped.held)
