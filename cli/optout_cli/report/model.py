"""Labels and number formats shared by the report's renderers."""

from typing import Any

SOURCE_NAMES = {"banner": "Banner", "webform": "Webform", "gpc": "GPC", "agent": "Agent"}
SOURCE_COLOURS = {"banner": "#1b6ca8", "webform": "#e08a00", "gpc": "#2e8540", "agent": "#8e44ad"}


def days(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def percent(rate: float | None) -> str:
    return "-" if rate is None else f"{rate * 100:.1f}%"


# The measures of a figures block, as the report labels them.
ROWS = (("received", "Received"), ("complied", "Complied with, in whole or in part"),
        ("complied_whole", "… in whole"), ("complied_part", "… in part"),
        ("denied", "Denied"), ("failed", "Not complied with (failed)"), ("open", "Still open"),
        ("repeats", "Repeats, in no row above (asked nothing new)"))  # fmt: skip
DAYS = (("median", "Median days to respond"), ("mean", "Mean days to respond"))

CALIFORNIA_TITLE = "California consumers' requests to opt out of sale or sharing"
CALIFORNIA_NOTE = (
    "CCPA §7102(a)(1)(D): requests whose jurisdiction is California (stated by the requester or"
    " geolocated from the request; a Californian writing from elsewhere is not in it) that ask"
    " to opt out of the sale or sharing of personal information, including opt-outs of"
    " targeted advertising (the CCPA calls disclosure for cross-context behavioural advertising"
    " sharing). Not in it: opt-outs of profiling only, and requests from another or an unknown"
    " jurisdiction (table: by jurisdiction and purpose)."
)
# What a system's "done" counts (review s25 ops O3): a vendor's "no such person" is an answer
# to the request, not a write, so counsel comparing "done" with a vendor's own count of what it
# applied finds fewer there
SYSTEMS_DONE_NOTE = (
    "Done: confirmed applied, or the vendor holds no such person (no_record); so a vendor's "
    "own count of what it applied can be lower."
)
ALL_TITLE = "All opt-out requests: all individuals, every jurisdiction, every opt-out purpose"
ALL_NOTE = (
    "Requests to opt out of sale, sharing, targeted advertising or profiling, from anyone,"
    " wherever they are (§7102(b) allows disclosing figures for all individuals, saying so)."
)
REGION_LABELS = {"california": "California", "other": "Another jurisdiction",
                 "unknown": "Unknown jurisdiction"}  # fmt: skip
PURPOSE_LABELS = {"sale_share": "opt-out of sale or sharing",
                  "ads_profiling_only": "opt-out of targeted ads or profiling only",
                  "limit": "limit sensitive personal information"}  # fmt: skip
GROUP_MEASURES = ("received", "complied", "denied", "failed", "open", "repeats")


def partial_note(figures: dict[str, Any]) -> str | None:
    """What the split by jurisdiction and purpose leaves out: requests folded before the
    ledger had it are in the all-individuals figures only (never guessed into a group)."""
    split = figures.get("split") or {}
    if split.get("complete", True):
        return None
    return (
        f"Partial split: of the requests received in {figures['year']},"
        f" {split.get('requests_not_split', 0)} opt-outs and"
        f" {split.get('limit_requests_not_split', 0)} requests to limit (repeats included)"
        " were counted before the figures recorded jurisdiction and purpose."
        " They are in the all-individuals figures only; the California and per-group figures"
        " leave them out, so their counts can be too low by up to that many."
    )


def unknown_note(figures: dict[str, Any]) -> str | None:
    """The server's warning that the year has requests of no known jurisdiction, which
    California's figures leave out (a server before 2026-12-01 sends none)."""
    warning = (figures.get("unknown_jurisdiction") or {}).get("warning")
    return str(warning) if warning else None


# Operator backfills (GET /v1/admin/metrics `backfills`, per system): not requests.
BACKFILLS_TITLE = "Backfills (operator actions, not requests)"
BACKFILL_COLUMNS = (("backfills", "backfills"), ("resends", "of them --resend"),
                    ("unfinished", "steps still to run"), ("identities", "identities sent"),
                    ("in_flight_earlier", "in flight for an earlier backfill"),
                    ("jobs_done", "jobs done"), ("jobs_failed", "jobs failed"),
                    ("jobs_open", "jobs open"), ("jobs_retired", "jobs retired"))  # fmt: skip


def backfills_note(year: object) -> str:
    return (
        f"Each `optout backfill` started in {year} (UTC), per system: everyone already opted"
        " out sent to a system added or changed later, in jobs of their own. A backfill answers"
        " no consumer's request, so it is in none of the §7102 figures above. Identities sent:"
        " those its jobs carry (a --resend sends them again); in flight for an earlier"
        " backfill: identities whose delivery was still waiting on an earlier backfill's job,"
        " counted apart (a plain backfill does not send them, a --resend does). Jobs open:"
        " no answer from the system yet. Jobs retired: pending or failed when the system was"
        " retired (`optout retire`), no longer owed."
    )


# The overdue requests' ids (GET /v1/admin/metrics `watch.overdue_requests`): the deadline
# watch keeps the first 100 (ops/watch.py KEEP_OVERDUE_IDS), every year's, sorted.


def overdue_ids(watch: dict[str, Any]) -> list[str]:
    return [str(request_id) for request_id in watch.get("overdue_requests") or ()]


def not_backfilled_note(watch: dict[str, Any]) -> str:
    """The systems added since the watch's first run that no backfill has reached: the people
    who opted out earlier are not sent to them until `optout backfill SYSTEM` ("" if none)."""
    names = [str(n) for n in watch.get("systems_not_backfilled") or []]
    if not names:
        return ""
    return (
        f"Systems added without a backfill: {', '.join(names)}. People who opted out earlier "
        "reach them only at their next event; run `optout backfill SYSTEM` for each."
    )


def overdue_ids_note(ids: list[str], overdue: int) -> str:
    """The line above the list: how many it names of how many, and what to run on each."""
    first = f"the first {len(ids)} of {overdue}" if overdue > len(ids) else "every one"
    return (
        f"Overdue requests, received in any year ({first}, by request id): `optout status ID`"
        " shows which systems have not confirmed each."
    )
