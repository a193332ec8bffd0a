"""Rules the plain readers share, without importing pydantic: their "left to the model"
marker, what pydantic takes as a `str` (http/hot_bodies.py, connectors/models.py, systems.py,
delivery/messages.py), and JSON objects with each key once (the capture body,
http/raw_body.py; the job message, delivery/messages.py)."""

from typing import Any, Final

NO: Final = object()
"""What a plain reader returns for a value it leaves to the pydantic model, which decides
and words any refusal: a plain reader answers only where the model would give the same."""


class DuplicateKey(ValueError):
    """A JSON object names `key` twice (json.loads keeps the last silently)."""

    def __init__(self, key: str) -> None:
        super().__init__("duplicate key")
        self.key = key


def unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """json.loads' object_pairs_hook: the object, or DuplicateKey."""
    found: dict[str, Any] = {}
    for key, value in pairs:
        if key in found:
            raise DuplicateKey(key)
        found[key] = value
    return found


def pydantic_str(value: object) -> bool:
    """A `str` pydantic accepts as it is from JSON: any, except one holding a lone surrogate
    (JSON's "\\ud800"), which pydantic's JSON mode refuses (its Python mode takes it). Such a
    text goes to pydantic, which decides: the plain path only ever answers for less."""
    if type(value) is not str:
        return False
    if value.isascii():
        return True
    try:
        value.encode()
    except UnicodeEncodeError:
        return False
    return True
