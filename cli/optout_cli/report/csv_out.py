"""The year's figures as CSV: one row per (section, measure, source) - easy to pivot."""

import csv
import io
from typing import Any

from optout_cli.report.model import BACKFILL_COLUMNS, SOURCE_NAMES, overdue_ids

MEASURES = ("received", "complied", "complied_whole", "complied_part", "denied", "failed", "open",
            "repeats")  # fmt: skip
BACKFILL_MEASURES = [key for key, _ in BACKFILL_COLUMNS]  # not requests: in no other section


def render(figures: dict[str, Any]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["year", "section", "measure", "source_or_system", "value"])
    year = figures["year"]
    scopes = [("all", figures["requests"])] + [(s, figures["by_source"][s]) for s in SOURCE_NAMES]
    for scope, found in scopes:
        for measure in MEASURES:
            writer.writerow([year, "requests", measure, scope, found[measure]])
        for key in ("median", "mean"):
            writer.writerow([year, "requests", f"{key}_days_to_respond", scope,
                             found["days_to_respond"][key]])  # fmt: skip
    # §7102(a)(1)(D): California consumers' opt-outs of sale or sharing (a server before
    # 2026-12-01 sends none); `requests` above are all individuals' opt-outs of any purpose.
    california = figures.get("california_sale_share")
    if california is not None:
        _block(writer, year, "california_sale_share", "california", california)
    for region, cells in (figures.get("by_group") or {}).items():
        for purpose, found in cells.items():
            _block(writer, year, "by_group", f"{region}/{purpose}", found)
    unknown = figures.get("unknown_jurisdiction")  # not in California's figures (a warning)
    if unknown is not None:
        for measure in ("requests", "limit_requests"):
            writer.writerow([year, "unknown_jurisdiction", measure, "all", unknown[measure]])
        if unknown.get("warning"):
            writer.writerow([year, "unknown_jurisdiction", "warning", "all", unknown["warning"]])
    split = figures.get("split")
    if split is not None:  # complete 0/1; the requests in no group (folded before groups)
        for measure in ("complete", "requests_not_split", "limit_requests_not_split"):
            writer.writerow([year, "split", measure, "all", int(split[measure])])
    limit = figures.get("limit_requests")  # requests to limit (§7102(a)(1)(E)-(F))
    if limit is not None:
        for measure in MEASURES:
            writer.writerow([year, "limit_requests", measure, "all", limit[measure]])
        for key in ("median", "mean"):
            writer.writerow([year, "limit_requests", f"{key}_days_to_respond", "all",
                             limit["days_to_respond"][key]])  # fmt: skip
    for week in figures["weekly"]:
        for source in SOURCE_NAMES:
            writer.writerow([year, "weekly", week["week"], source, week[source]])
    for bucket in figures["days_to_respond_histogram"]:
        writer.writerow([year, "days_to_respond", bucket["days"], "all", bucket["responses"]])
    for name, found in figures["systems"].items():
        for measure in ("done", "failed", "processing", "retired", "success_rate", "overdue"):
            writer.writerow([year, "systems", measure, name, found.get(measure, 0)])
    for name, found in (figures.get("backfills") or {}).items():  # operator actions
        for measure in BACKFILL_MEASURES:
            writer.writerow([year, "backfills", measure, name, found.get(measure, 0)])
    _watch(writer, year, figures.get("watch") or {})
    return out.getvalue()


def _watch(writer: Any, year: object, watch: dict[str, Any]) -> None:
    """The deadline watch's counts, then one row per overdue request id (the first 100, any
    year's): `optout status ID` on each."""
    if not watch.get("run_at"):
        return
    for measure in ("overdue_in_year", "overdue", "due_soon"):
        writer.writerow([year, "watch", measure, "all", watch.get(measure, 0)])
    for request_id in overdue_ids(watch):
        writer.writerow([year, "watch", "overdue_request", "all", request_id])
    for system in watch.get("systems_not_backfilled") or []:
        writer.writerow([year, "watch", "not_backfilled", system, 1])


def _block(writer: Any, year: object, section: str, scope: str, found: dict[str, Any]) -> None:
    for measure in MEASURES:
        writer.writerow([year, section, measure, scope, found[measure]])
    for key in ("median", "mean"):
        writer.writerow([year, section, f"{key}_days_to_respond", scope,
                         found["days_to_respond"][key]])  # fmt: skip
