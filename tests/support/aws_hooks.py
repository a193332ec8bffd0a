"""Handlers on boto3's default session (clients made later get them): AWS faults on purpose."""

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import boto3

Register = Callable[[str, Callable[..., Any]], None]


@contextmanager
def session_hooks(
    prefix: str, on_register: Callable[[], None] = lambda: None
) -> Iterator[Register]:
    """`register(event, handler)` for the block; every handler is removed after it.
    `on_register` runs after each one (e.g. to make a warm function build its clients again)."""
    assert boto3.DEFAULT_SESSION is not None
    events = boto3.DEFAULT_SESSION.events
    registered: list[tuple[str, str]] = []

    def register(event: str, handler: Callable[..., Any]) -> None:
        unique = f"{prefix}-{len(registered)}"
        events.register(event, handler, unique_id=unique)
        registered.append((event, unique))
        on_register()

    try:
        yield register
    finally:
        for event, unique in registered:
            events.unregister(event, unique_id=unique)


def lose_answer(matches: Callable[[str], bool]) -> tuple[Callable[..., Any], list[int]]:
    """A `needs-retry.<service>.<Operation>` handler: the first call whose request body
    `matches` and that succeeded is sent again at once, as botocore does when the answer to a
    committed write is lost (a 500, a reset connection). The second list counts the losses."""
    lost: list[int] = []

    def handler(request_dict: dict[str, Any] | None = None, response: Any = None, **_: Any) -> Any:
        body = (request_dict or {}).get("body", b"")
        text = body.decode() if isinstance(body, bytes) else str(body)
        if lost or response is None or response[0].status_code != 200 or not matches(text):
            return None
        lost.append(1)
        return 0  # botocore: retry now, without sleeping

    return handler, lost
