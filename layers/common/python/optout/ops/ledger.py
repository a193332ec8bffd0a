"""The §7102 ledger: per arrival day and shard, the sum of its requests' contributions.

Exactly once, and self-correcting: a request's contribution is written on the request itself
(`FOLDED`, with a version) in the same transaction that adds the difference to its ledger, so
a fold that is repeated, raced or replayed changes nothing twice, and a request whose outcome
changes later (a job confirmed, a failure replayed, a denial) moves its counts from the old
outcome to the new one. The ledger therefore always equals the sum of the contributions
recorded on its requests, each computed from that request's own records
(`rebuild` proves it from scratch).
"""

from typing import Any

from optout.ops import keys as ops_keys
from optout.ops.contribution import Contribution
from optout.store import keys, query, transact
from optout.store.codec import Item
from optout.store.table import Table


def fold_ops(
    table: Table,
    contribution: Contribution,
    folded: Item | None,
    now: str,
    expires_at: int,
    keep: Item | None = None,
) -> list[dict[str, Any]]:
    """The writes that bring the ledger from `folded` (the last recorded contribution, or
    None) to `contribution`, with `keep`'s attributes on the record (the watch's last
    redrive); empty when nothing changed."""
    new = contribution.counters()
    old: dict[str, int] = dict((folded or {}).get("counters") or {})
    sk = ops_keys.ledger_sk(contribution.day, contribution.shard)
    old_sk = str((folded or {}).get("ledger") or sk)
    if old_sk == sk:
        moves = [(sk, {k: new.get(k, 0) - old.get(k, 0) for k in sorted(set(new) | set(old))})]
    else:
        # Its ledger day moved (folded under the UTC date, before the day became the date
        # the deadline counts from): its old counts leave the old day, all of them join the
        # new one, in the same transaction.
        moves = [(old_sk, {k: -v for k, v in sorted(old.items())}), (sk, dict(sorted(new.items())))]
    moves = [(s, {k: v for k, v in d.items() if v}) for s, d in moves]
    moves = [(s, d) for s, d in moves if d]
    kept = dict(keep or {})
    if folded is not None and not moves and all(folded.get(k) == v for k, v in kept.items()):
        return []
    version = int((folded or {}).get("version", 0))
    record = {
        "pk": keys.request_pk(contribution.request_id), "sk": ops_keys.FOLDED_SK,
        "kind": "folded", "counters": new, "outcome": contribution.outcome, "ledger": sk,
        "version": version + 1, "folded_at": now, "expires_at": expires_at, **kept,
    }  # fmt: skip
    guard = "attribute_not_exists(pk)" if folded is None else "version = :v"
    put = transact.put(table, record, guard)
    if folded is not None:
        put["Put"]["ExpressionAttributeValues"] = {":v": {"N": str(version)}}
    return [put, *(_add(table, ledger_sk, delta, now) for ledger_sk, delta in moves)]


def _add(table: Table, sk: str, delta: dict[str, int], now: str) -> dict[str, Any]:
    """One day-shard ledger's update: ADD each counter's change."""
    names = {f"#c{n}": name for n, name in enumerate(delta)}
    values: Item = {f":c{n}": value for n, value in enumerate(delta.values())}
    values[":now"] = now
    adds = ", ".join(f"#c{n} :c{n}" for n in range(len(delta)))
    return transact.update(table, (ops_keys.ledger_pk(sk[:4]), sk),
                           f"ADD {adds} SET updated_at = :now", values, names=names)  # fmt: skip


def year_ledgers(table: Table, year: int) -> list[Item]:
    """Every day-shard ledger of one year (at most 366 x 16 small items)."""
    return query.partition(table, ops_keys.ledger_pk(year))
