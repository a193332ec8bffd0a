"""Reminders for the deadline watch (`WATCH/DUE#<time>#<request_id>`): look at a request again
(or at jobs made under request ids of their own: `remind_jobs`).

Here, not in ops/watch.py, so that writers of a reminder (the resolver's replay, a denial, an
import) need not import the watch and its pydantic settings model.
"""

from datetime import datetime, timedelta

from optout.ops import keys as ops_keys
from optout.store.codec import Item
from optout.timestamps import iso

# A job-only reminder's first check (`remind_jobs`): a day past the jobs' write (the watch
# re-sends a job untouched that long) and past the sweep's last look at their owner (23 h 12).
JOBS_FIRST_CHECK = timedelta(hours=25)
JOBS_KIND = "jobs"


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


def remind_jobs(marker: str, job_requests: set[str], now: datetime, expires_at: int) -> Item:
    """A reminder for jobs made under request ids of their own (no EVENT): the flush's
    re-derived jobs and a backfill step's, `request_ids` (`marker`: the id their `REDERIVED#`
    marker is kept under). The sweep reads them only at their owner's checkpoints (up to
    23 h); the watch reads them from `JOBS_FIRST_CHECK` on, daily, and re-sends one still
    pending and untouched a day (`Watch._check_jobs`). Written with the marker: one write on
    that rare path, none on an opt-out's."""
    return {"pk": ops_keys.WATCH_PK, "sk": ops_keys.due_sk(iso(now + JOBS_FIRST_CHECK), marker),
            "kind": JOBS_KIND, "request_id": marker, "request_ids": set(job_requests),
            "attempt": 0, "expires_at": expires_at}  # fmt: skip
