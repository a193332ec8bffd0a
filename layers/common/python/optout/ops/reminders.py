"""Reminders for the deadline watch (`WATCH/DUE#<time>#<request_id>`): look at a request again.

Here, not in ops/watch.py, so that writers of a reminder (the resolver's replay, a denial, an
import) need not import the watch and its pydantic settings model.
"""

from datetime import datetime

from optout.ops import keys as ops_keys
from optout.store.codec import Item
from optout.timestamps import iso


def remind_now(request_id: str, deadline: str | None, now: datetime, expires_at: int) -> Item:
    """A reminder due at `now`: what an operator action (denial, import, replay) leaves for
    the watch, so its next run reads the request again instead of at its next planned check.
    The watch reads the request itself; `deadline` is kept for an operator reading the item."""
    item: Item = {"pk": ops_keys.WATCH_PK, "sk": ops_keys.due_sk(iso(now), request_id),
                  "kind": "reminder", "request_id": request_id, "attempt": 0,
                  "expires_at": expires_at}  # fmt: skip
    if deadline:
        item["deadline"] = deadline
    return item
