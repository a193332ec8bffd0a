"""Where compliance operations keep their items (docs/architecture.md has the whole layout).

pk                      sk                              item
WATCH                   CURSOR                          how far the watch has enrolled arrivals
WATCH                   STATUS                          the last run: overdue / due-soon figures
WATCH                   DUE#<next check>#<request_id>   a reminder: look at this request again
WATCH                   KEY_CHECK                       the HMAC key's fingerprint, first run's
WATCH                   SYSTEMS                         configured systems, when each was first seen
LEDGER#<yyyy>           <yyyy-mm-dd>#<shard>            §7102 figures of one arrival day's shard
REQ#<request_id>        FOLDED                          what this request adds to its ledger
REQ#<request_id>        DENIAL                          an operator's denial (§7026(e), §7101)
ID#<type>#<key>         REQREF#<received_at>#<id>       a request that named this identity
"""

from typing import Final

WATCH_PK: Final = "WATCH"
CURSOR_SK: Final = "CURSOR"
STATUS_SK: Final = "STATUS"
KEY_CHECK_SK: Final = "KEY_CHECK"
SYSTEMS_SK: Final = "SYSTEMS"
DUE_PREFIX: Final = "DUE#"
FOLDED_SK: Final = "FOLDED"
DENIAL_SK: Final = "DENIAL"
REQREF_PREFIX: Final = "REQREF#"


def due_sk(next_check: str, request_id: str) -> str:
    return f"{DUE_PREFIX}{next_check}#{request_id}"


def ledger_pk(year: int | str) -> str:
    return f"LEDGER#{year}"


def ledger_sk(day: str, shard: str) -> str:
    return f"{day}#{shard}"


def reqref_sk(received_at: str, request_id: str) -> str:
    return f"{REQREF_PREFIX}{received_at}#{request_id}"
