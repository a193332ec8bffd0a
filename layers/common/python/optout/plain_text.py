"""The one rule the plain readers (http/hot_bodies.py, connectors/models.py) share for text:
what pydantic takes as a `str`, checked without importing pydantic."""


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
