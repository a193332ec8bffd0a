"""A test hook that widens moto's race window, so a missing lock fails in seconds.

moto lists a table by iterating its partition map; in a small test table that takes
microseconds, so a concurrent write rarely lands inside it (issue 17 failed CI once in two
runs). Yielding the GIL between partitions lets another thread run mid-iteration, as a long
table would: the moto guard must keep it from touching the table then.
"""

import time
from typing import Any


def widen() -> None:
    from moto.dynamodb.models.table import Table  # noqa: PLC0415 - patched in the stack process

    def all_items(self: Any) -> list[Any]:
        items: list[Any] = []
        for hash_set in self.items.values():
            time.sleep(0)  # hand the GIL to another thread, mid-iteration
            items.extend(hash_set.values() if self.range_key_attr else [hash_set])
        return sorted(items, key=lambda x: (x.hash_key, x.range_key) if x.range_key else x.hash_key)

    setattr(Table, "all_items", all_items)  # noqa: B010 - a method swap
