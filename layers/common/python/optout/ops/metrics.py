"""CCPA §7102 figures for one calendar year, from the per-day ledgers (ops/ledger.py).

A request belongs to the year it was received in: the date its deadline counts from, in its
jurisdiction (ops/contribution.py), not the UTC date. Reading a year is one paginated Query of at
most 366 x 16 small items, whatever the number of requests; the ledgers are as fresh as the
deadline watch's last look at each request (minutes for new ones: docs/operations.md).

`requests` (and `by_source`, `weekly`, the histogram) count every individual's opt-out of sale,
sharing, targeted advertising or profiling, from any jurisdiction. `california_sale_share` is
§7102(a)(1)(D)'s figure: requests from California (stated or geolocated) that ask to opt out of
sale or sharing; `by_group` splits both rights by jurisdiction group and purpose
(ops/contribution.py). Requests folded before the ledger had groups are in the first and in no
group: `split` says how many, and that the group figures are then partial.
`unknown_jurisdiction` counts the year's requests received with no jurisdiction, with a
warning when there are any: California's figures leave them out. `backfills` counts, per
system, the operator's backfills started in the year (ops/backfills.py): not requests, so in
no other figure.
"""

from collections import Counter
from datetime import date, timedelta
from typing import Any

from optout.ops import backfills
from optout.ops import keys as ops_keys
from optout.ops.contribution import REGIONS, SOURCES
from optout.ops.ledger import year_ledgers
from optout.store.codec import Item, deserialize
from optout.store.table import Table

OUTCOMES = ("received", "complied_whole", "complied_part", "denied", "failed", "open")
SYSTEM_STATES = ("done", "failed", "processing", "retired")
REGION_NAMES = {"ca": "california", "other": "other", "unknown": "unknown"}
PURPOSE_NAMES = {"sale": "sale_share", "ads": "ads_profiling_only", "limit": "limit"}
WATCH_FIELDS = ("run_at", "finished", "overdue", "due_soon", "overdue_by_system",
                "overdue_by_state", "due_soon_by_state", "overdue_requests", "imported_owed",
                "imported_owed_by_system", "hash_key_changed",
                "systems_not_backfilled")  # fmt: skip


class MetricsService:
    def __init__(self, table: Table) -> None:
        self._table = table

    def year(self, year: int, as_of: str) -> dict[str, Any]:
        ledgers = year_ledgers(self._table, year)
        found = figures(year, ledgers, self._watch_status(), as_of)
        # Operator backfills started in the year (UTC), per system: no consumer's request, so
        # in none of the figures above (review s14 operator 1: the report had no line for them)
        found["backfills"] = backfills.year_figures(self._table, year)
        return found

    def _watch_status(self) -> Item:
        raw = self._table.client.get_item(
            TableName=self._table.name,
            Key={"pk": {"S": ops_keys.WATCH_PK}, "sk": {"S": ops_keys.STATUS_SK}},
        ).get("Item")
        return deserialize(raw) if raw else {}


def figures(year: int, ledgers: list[Item], watch: Item, as_of: str) -> dict[str, Any]:
    """Sum the ledgers (pure: tests compare it with figures computed by hand)."""
    counts: Counter[str] = Counter()
    hours: dict[str, Counter[int]] = {source: Counter() for source in SOURCES}
    # Requests to limit the use of sensitive personal information (§7102(a)(1)(E)-(F)).
    limit_counts: Counter[str] = Counter()
    limit_hours: Counter[int] = Counter()
    # Per jurisdiction group and purpose (g./gh.), ledgers folded since 2026-12-01 only.
    group_counts: Counter[str] = Counter()
    group_hours: dict[str, Counter[int]] = {}
    weekly: dict[str, Counter[str]] = {}
    systems: dict[str, Counter[str]] = {}
    for ledger in ledgers:
        day = date.fromisoformat(str(ledger["sk"]).split("#")[0])
        week = _week_of(day)
        for name, value in ledger.items():
            if not isinstance(value, int) or "." not in name:
                continue
            kind, first, second = name.split(".", 2)
            if kind == "n":
                counts[f"{first}.{second}"] += value
                if second == "received":
                    weekly.setdefault(week, Counter())[first] += value
            elif kind == "h" and first in hours:
                hours[first][int(second)] += value
            elif kind == "s":
                systems.setdefault(first, Counter())[second] += value
            elif kind == "l":
                limit_counts[f"{first}.{second}"] += value
            elif kind == "lh":
                limit_hours[int(second)] += value
            elif kind == "g":
                group_counts[f"{first}.{second}"] += value
            elif kind == "gh":
                group_hours.setdefault(first, Counter())[int(second)] += value
    # The watch's overdue requests received in this year only (a status written before it
    # split them by year has none): another year's are not this year's figures.
    mine: Item = (watch.get("overdue_by_year") or {}).get(str(year)) or {}
    overdue = dict(mine.get("by_system") or {})
    by_group = {
        REGION_NAMES[region]: {
            name: _outcomes(group_counts, (f"{region}_{purpose}",))
            | {"days_to_respond": _days([group_hours.get(f"{region}_{purpose}", Counter())])}
            for purpose, name in PURPOSE_NAMES.items()
        }
        for region in REGIONS
    }
    split = {
        "requests_not_split": _not_split(counts, group_counts, ("sale", "ads")),
        "limit_requests_not_split": _not_split(limit_counts, group_counts, ("limit",)),
    }
    unknown = by_group["unknown"]
    return {
        "year": year,
        "as_of": as_of,
        # What California's figures leave out: requests of no known jurisdiction.
        "unknown_jurisdiction": _unknown_jurisdiction(
            year,
            unknown["sale_share"]["received"] + unknown["ads_profiling_only"]["received"],
            unknown["limit"]["received"],
        ),
        # All individuals, every jurisdiction, every opt-out purpose.
        "requests": _outcomes(counts, SOURCES) | {"days_to_respond": _days(hours.values())},
        # §7102(a)(1)(D): California consumers' requests to opt out of sale or sharing.
        "california_sale_share": by_group["california"]["sale_share"],
        "by_group": by_group,
        "split": {"complete": not any(split.values())} | split,
        "by_source": {
            source: _outcomes(counts, (source,)) | {"days_to_respond": _days([hours[source]])}
            for source in SOURCES
        },
        "weekly": [
            {
                "week": week,
                "starts": _week_start(week).isoformat(),
                "partial": _partial_week(week, year),
            }
            | {source: weekly[week].get(source, 0) for source in SOURCES}
            for week in sorted(weekly)
        ],
        "days_to_respond_histogram": _histogram(hours.values()),
        "limit_requests": _outcomes(limit_counts, SOURCES)
        | {"days_to_respond": _days([limit_hours])},
        "systems": {
            name: {state: found.get(state, 0) for state in SYSTEM_STATES}
            | {"success_rate": _rate(found), "overdue": int(overdue.get(name, 0))}
            for name, found in sorted(systems.items())
        },
        "watch": {key: watch.get(key) for key in WATCH_FIELDS}
        | {"overdue_in_year": int(mine.get("overdue") or 0)},
    }


def _unknown_jurisdiction(year: int, requests: int, limit: int) -> dict[str, Any]:
    """The year's requests received with no jurisdiction (none stated, none geolocated), and
    a warning when there are any: the webform and the banner send none, and without the edge
    nothing geolocates them, so California's figure can read 0 beside thousands of these
    (review s14 counsel 4)."""
    warning = None
    if requests or limit:
        warning = (
            f"{requests} opt-out requests and {limit} requests to limit received in {year} have"
            " no known jurisdiction (none stated, none geolocated; an imported row without one"
            " among them) and are not in California's"
            " figures, which can be too low by up to that many. To count California's, deploy"
            " with EnableEdge=true (CloudFront geolocates each request) or send `jurisdiction`"
            " with each request; or publish the all-individuals figures, saying so (§7102(b))."
        )
    return {"requests": requests, "limit_requests": limit, "warning": warning}


def _outcomes(counts: Counter[str], sources: tuple[str, ...]) -> dict[str, Any]:
    found = {o: sum(counts.get(f"{s}.{o}", 0) for s in sources) for o in OUTCOMES}
    found["complied"] = found["complied_whole"] + found["complied_part"]
    # Requests that asked nothing an earlier one had not (ops/contribution.py): in no other row.
    found["repeats"] = sum(counts.get(f"{s}.repeat", 0) for s in sources)
    return found


def _not_split(counts: Counter[str], groups: Counter[str], purposes: tuple[str, ...]) -> int:
    """Requests (and repeats) in the year's figures but in no group: folded before the ledger
    had groups (each request's counters are written at once, so the difference is exact)."""
    counted = sum(v for k, v in counts.items() if k.endswith((".received", ".repeat")))
    cells = [f"{region}_{purpose}" for region in REGIONS for purpose in purposes]
    grouped = sum(
        groups.get(f"{cell}.{row}", 0) for cell in cells for row in ("received", "repeat")
    )
    return max(0, counted - grouped)


def _days(histograms: Any) -> dict[str, Any]:
    """Median and mean days to respond (hours / 24), over every response counted; from the
    histogram itself, so a year of millions of responses costs no more than a few buckets."""
    merged: Counter[int] = Counter()
    for histogram in histograms:
        merged.update({h: n for h, n in histogram.items() if n > 0})
    total = sum(merged.values())
    if not total:
        return {"responses": 0, "median": None, "mean": None}
    middle = [_nth(merged, (total - 1) // 2), _nth(merged, total // 2)]
    mean = sum(h * n for h, n in merged.items()) / total / 24
    return {"responses": total, "median": round(sum(middle) / 2 / 24, 2), "mean": round(mean, 2)}


def _nth(histogram: Counter[int], index: int) -> int:
    """The value at `index` (0-based) of the sorted values the histogram counts."""
    seen = 0
    for value in sorted(histogram):
        seen += histogram[value]
        if index < seen:
            return value
    raise IndexError(index)


def _histogram(histograms: Any) -> list[dict[str, int]]:
    """Responses per whole day taken (0 = within the first 24 hours)."""
    per_day: Counter[int] = Counter()
    for histogram in histograms:
        for hours_taken, n in histogram.items():
            per_day[max(0, (hours_taken - 1) // 24)] += n
    return [{"days": d, "responses": per_day[d]} for d in sorted(per_day) if per_day[d]]


def _rate(found: Counter[str]) -> float | None:
    final = found.get("done", 0) + found.get("failed", 0)
    return round(found.get("done", 0) / final, 4) if final else None


def _week_of(day: date) -> str:
    iso = day.isocalendar()
    return f"{iso.year}-W{iso.week:02d}"


def _week_start(week: str) -> date:
    year, number = week.split("-W")
    return date.fromisocalendar(int(year), int(number), 1)


def _partial_week(week: str, year: int) -> bool:
    """An ISO week spanning 1 January: the year's figures hold only its days in the year, and
    the other year's report lists the same week with the rest."""
    starts = _week_start(week)
    return starts.year != year or (starts + timedelta(days=6)).year != year


__all__ = ["MetricsService", "figures"]
