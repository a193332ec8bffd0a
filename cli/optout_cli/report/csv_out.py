"""The year's figures as CSV: one row per (section, measure, source) - easy to pivot."""

import csv
import io
from typing import Any

from optout_cli.report.model import SOURCE_NAMES

MEASURES = ("received", "complied", "complied_whole", "complied_part", "denied", "failed", "open",
            "repeats")  # fmt: skip


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
        for measure in ("done", "failed", "processing", "success_rate", "overdue"):
            writer.writerow([year, "systems", measure, name, found[measure]])
    return out.getvalue()
