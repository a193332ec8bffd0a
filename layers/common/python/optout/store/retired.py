"""A retired system's `RETIRED/<system>` item (optout/retire.py): read without pydantic, so the
resolver and the sweep share the rule with the status (optout/status.py).

The item keeps the first retirement as written (`retired_at`, who, why, its event: it settled
requests, and it is counsel's evidence); a later retire of the name (added back, removed again)
is added after it in `retired_again` (review s24 diff C C1). A job is closed by the first
retirement at or after it was made.
"""

from optout.store import keys, query
from optout.store.codec import Item
from optout.store.table import Table


def retirements(table: Table) -> dict[str, Item]:
    """Every retirement, by system (one Query of a partition of one item per retired system)."""
    return {str(item["sk"]): item for item in query.partition(table, keys.RETIRED_PK)}


def retired_times(retirement: Item | None) -> list[str]:
    """Every time the system was retired, first to last."""
    if retirement is None:
        return []
    later = [str(r.get("retired_at")) for r in retirement.get("retired_again") or ()]
    return sorted([str(retirement.get("retired_at")), *later])


def last_retired_at(retirement: Item) -> str:
    """The system's latest retirement: a job made at or before it was made before one."""
    return retired_times(retirement)[-1]


def made_at_or_before(job: Item, retired_at: str | None) -> bool:
    """Whether `job` was made at or before `retired_at` (a retirement's time; None: none), so
    that retirement closed it: no longer owed. The one comparison of a job with a retirement
    (the sweep, the watch's re-send, a replay, an identity's marks, `retired_at_for`). Equal
    counts: a job made in the retirement's millisecond is closed by it. Stored times share one
    format (optout/timestamps.py), so they compare as strings; a job without `created_at`
    compares as "", made before any retirement."""
    return retired_at is not None and str(job.get("created_at") or "") <= retired_at


def retired_at_for(job: Item, retirement: Item | None) -> str | None:
    """When the retirement that closed `job` happened: the first at or after the job was made;
    None for a job made after the last one (the name configured again)."""
    return next((at for at in retired_times(retirement) if made_at_or_before(job, at)), None)
