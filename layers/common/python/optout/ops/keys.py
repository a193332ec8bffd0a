"""Where compliance operations keep their items (docs/architecture.md has the whole layout).

pk                      sk                              item
WATCH                   CURSOR                          how far the watch has enrolled arrivals
WATCH                   STATUS                          the last run: overdue / due-soon figures
WATCH                   DUE#<next check>#<request_id>   a reminder: look at this request again
                                                        (`kind` jobs: at jobs of their own)
WATCH                   KEY_CHECK                       the HMAC key's fingerprint, first run's
WATCH                   SYSTEMS                         configured systems, when each was first seen
LEDGER#<yyyy>           <yyyy-mm-dd>#<shard>            §7102 figures of one arrival day's shard
REQ#<request_id>        FOLDED                          what this request adds to its ledger
REQ#<request_id>        DENIAL                          an operator's denial (§7026(e), §7101)
ID#<type>#<key>         XREF#<received_at>#<id>         a request that named this identity
ID#<type>#<key>         REQREF#<received_at>#<id>       the same, as written before session 19
                                                        (scripts/move_references.py moves them)

A reference sorts after every other item of an identity's partition (`XREF#` > `STATE`), so
what reads the identity's graph (the resolver, the admin lookup) reads `sk < XREF#` and none
of the references, which grow with every request naming the identity and are kept for the
retention (review s19 SC2). The export reads them apart, by prefix, a page at a time.
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
REF_PREFIX: Final = "XREF#"  # sorts after every other sort key of an ID# partition
LEGACY_REF_PREFIX: Final = "REQREF#"  # sorts between NODE and STATE: inside the graph's range


def due_sk(next_check: str, request_id: str) -> str:
    return f"{DUE_PREFIX}{next_check}#{request_id}"


def ledger_pk(year: int | str) -> str:
    return f"LEDGER#{year}"


def ledger_sk(day: str, shard: str) -> str:
    return f"{day}#{shard}"


def ref_sk(received_at: str, request_id: str) -> str:
    return f"{REF_PREFIX}{received_at}#{request_id}"


def legacy_ref_sk(received_at: str, request_id: str) -> str:
    """Where a reference written before session 19 is, until scripts/move_references.py."""
    return f"{LEGACY_REF_PREFIX}{received_at}#{request_id}"


def is_reference(sk: str) -> bool:
    return sk.startswith((REF_PREFIX, LEGACY_REF_PREFIX))
