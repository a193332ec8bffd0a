"""A request's items together with the earlier jobs its resolution cites as proof."""

from typing import Any

from optout.status import covering_keys, own_retirement_keys, quiet_keys
from optout.store import keys
from optout.store.batch import batch_get
from optout.store.codec import Item
from optout.store.requests import load_request, marked_requests
from optout.store.table import Table

Covering = dict[tuple[str, str], Item]


def load_with_proof(
    table: Table,
    request_id: str,
    *,
    consistent: bool = False,
    public: bool = False,
    quiet: bool = False,
) -> tuple[list[Item], Covering]:
    """One Query for the request, and (only when it cites any) one BatchGetItem. `consistent`
    for a read that must see a write just acknowledged (a status asked for right after its
    202, a decision taken on it): DynamoDB's default reads may not yet. `public`: also the
    no_record jobs the quiet period relied on, whose answer times the public view replays
    (`status.replayed_until`), and with nothing else to read, the own jobs' systems'
    retirements: one BatchGetItem for every request with jobs, cited or its own. `quiet`: the
    quiet period's jobs too, without the rest (the operator views: `status.not_asked` says what
    each recorded, in the same BatchGetItem)."""
    items = load_request(table, request_id, consistent=consistent)
    cited = covering_keys(items) + (quiet_keys(items) if public or quiet else [])
    if public and not cited:  # the same round trips whatever the request relied on
        cited = own_retirement_keys(items)
    return items, (batch_get(table, cited, consistent=consistent) if cited else {})


def marked_jobs(
    table: Table, items: list[Item], *, consistent: bool = False, split: bool = False
) -> list[tuple[str, str, Item | None]]:
    """The jobs a request's `REDERIVED#` markers name (a backfill step's jobs, the flush's
    rederived jobs), which live under a request id of their own, `<id>~<hex>`: (that id, the
    system, the job or None if not written yet), read in one BatchGetItem. Not a request's
    further jobs' marker (`kind` "split"): its RESOLUTION's `split_jobs` lists those. `split`:
    that marker's instead, written before them (a denial's read before the RESOLUTION)."""
    named = [pair for m in items
             if str(m["sk"]).startswith(keys.REDERIVED_PREFIX)
             and (m.get("kind") == "split") == split
             for pair in _marked_pairs(m)]  # fmt: skip
    wanted = [(keys.request_pk(r), keys.job_sk(s)) for r, s in named]
    found = batch_get(table, wanted, consistent=consistent) if wanted else {}
    return [(r, s, found.get((keys.request_pk(r), keys.job_sk(s)))) for r, s in named]


def _marked_pairs(marker: Item) -> list[tuple[str, str]]:
    """(request id, system) of each job a `REDERIVED#` marker names: its `jobs` when it has
    them (a flush's job made as parts: one system's parts beside another's whole job, so
    not every id has every system), else each id at each of its `systems`."""
    jobs = marker.get("jobs")
    if jobs:
        return sorted((r, s) for r, _, s in (str(j).rpartition(":") for j in jobs))
    return [(r, str(s)) for r in marked_requests(marker) for s in marker.get("systems", [])]


def jobs_outcome(statuses: list[str]) -> dict[str, Any]:
    """A backfill step's (or a job request's) status and counts from its jobs' statuses:
    `processing` until each has an answer, `failed` if one failed for good. A job its system's
    retirement left open (`retired`, status.retired_job) is counted in none, as a request's
    retired system is (`systems_retired` says how many, when any)."""
    retired = statuses.count("retired")
    owed = [s for s in statuses if s != "retired"]
    done = sum(1 for s in owed if s in ("done", "no_record"))
    failed = sum(1 for s in owed if s == "failed")
    status = "failed" if failed else ("processing" if done < len(owed) else "completed")
    counts = {"systems_total": len(owed), "systems_done": done, "systems_failed": failed}
    return {"status": status} | counts | ({"systems_retired": retired} if retired else {})
