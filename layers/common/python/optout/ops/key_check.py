"""Whether the HMAC key is still the one the table's lookup keys were made with (review s18
operator H2).

Every lookup key is HMAC(key, identifier): a changed key (a `put-secret-value`, a console
"rotate", a table restored beside a new secret) makes every stored identity unreachable, and
nothing else notices. The deadline watch loads the key as capture and the resolver do, and
keeps, under `WATCH / KEY_CHECK`, a short keyed fingerprint of it: HMAC(key, a fixed label),
never the key, and useless for finding it. The first run writes it (a conditional put: once);
every later run compares, and a mismatch is reported (metric, ERROR log, alarm).
"""

import hashlib
import hmac
from typing import Literal

from optout.ops import keys as ops_keys
from optout.store.batch import get_item
from optout.store.codec import serialize
from optout.store.conditional import conditional
from optout.store.table import Table

LABEL = b"optout-bridge key check"
FINGERPRINT_HEX = 16  # 64 bits: enough to tell two keys apart, and no more
Outcome = Literal["recorded", "same", "changed"]


def fingerprint(key: bytes) -> str:
    return hmac.new(key, LABEL, hashlib.sha256).hexdigest()[:FINGERPRINT_HEX]


def check_hash_key(table: Table, key: bytes, now: str) -> Outcome:
    """`recorded` on the first run (this key is the table's from now on), then `same` or
    `changed` (this key is not the one recorded)."""
    mine = fingerprint(key)
    recorded = _recorded(table)
    if recorded is None:
        item = {"pk": ops_keys.WATCH_PK, "sk": ops_keys.KEY_CHECK_SK, "kind": "hash_key_check",
                "fingerprint": mine, "recorded_at": now}  # fmt: skip
        written = conditional(lambda: table.client.put_item(
            TableName=table.name, Item=serialize(item),
            ConditionExpression="attribute_not_exists(pk)",
        ))  # fmt: skip
        if written is not None:
            return "recorded"
        recorded = _recorded(table)  # another run wrote it first: compare with that one
    return "same" if recorded is not None and hmac.compare_digest(recorded, mine) else "changed"


def _recorded(table: Table) -> str | None:
    item = get_item(table, (ops_keys.WATCH_PK, ops_keys.KEY_CHECK_SK))
    return str(item["fingerprint"]) if item else None
