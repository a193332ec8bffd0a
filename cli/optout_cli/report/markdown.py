"""The year's figures as Markdown (the §7102 disclosure, then the operating detail)."""

from typing import Any

from optout_cli.report.model import (
    ALL_NOTE,
    ALL_TITLE,
    BACKFILL_COLUMNS,
    BACKFILLS_TITLE,
    CALIFORNIA_NOTE,
    CALIFORNIA_TITLE,
    DAYS,
    GROUP_MEASURES,
    PURPOSE_LABELS,
    REGION_LABELS,
    ROWS,
    SOURCE_NAMES,
    SYSTEMS_DONE_NOTE,
    backfills_note,
    days,
    not_backfilled_note,
    overdue_ids,
    overdue_ids_note,
    partial_note,
    percent,
    unknown_note,
)


def render(figures: dict[str, Any]) -> str:
    year = figures["year"]
    total = figures["requests"]
    lines = [
        f"# Opt-out requests, {year}",
        "",
        f"CCPA §7102 figures of requests received in {year} (as of {figures['as_of']}). A"
        " request's year and week are those of the date it was received in its jurisdiction,"
        " the date its deadline counts from.",
    ]
    for note in (unknown_note(figures), partial_note(figures)):
        if note:
            lines += ["", f"**{note}**"]
    california = figures.get("california_sale_share")  # a server before 2026-12-01 sends none
    if california is not None:
        lines += ["", f"## {CALIFORNIA_TITLE}", "", CALIFORNIA_NOTE, "", "| | California |",
                  "|---|---:|"]  # fmt: skip
        lines += [f"| {label} | {california[key]} |" for key, label in ROWS]
        lines += [f"| {label} | {days(california['days_to_respond'][key])} |"
                  for key, label in DAYS]  # fmt: skip
    lines += [
        "",
        f"## {ALL_TITLE}",
        "",
        ALL_NOTE,
        "",
        "| | all | " + " | ".join(SOURCE_NAMES.values()) + " |",
        "|---|---:|" + "---:|" * len(SOURCE_NAMES),
    ]
    by_source = figures["by_source"]
    for key, label in ROWS:
        cells = [str(total[key])] + [str(by_source[s][key]) for s in SOURCE_NAMES]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    for key, label in DAYS:
        cells = [days(total["days_to_respond"][key])]
        cells += [days(by_source[s]["days_to_respond"][key]) for s in SOURCE_NAMES]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    groups = figures.get("by_group")
    if groups is not None:
        labels = dict(ROWS)
        lines += ["", "## By jurisdiction and purpose", "",
                  "Each request once per right it asks: an opt-out in one opt-out row, a request"
                  " to limit in one limit row.", "",
                  "| | " + " | ".join(labels[m] for m in GROUP_MEASURES) + " |",
                  "|---|" + "---:|" * len(GROUP_MEASURES)]  # fmt: skip
        for region, cells in groups.items():
            for purpose, found in cells.items():
                label = f"{REGION_LABELS[region]}, {PURPOSE_LABELS[purpose]}"
                lines.append(f"| {label} | " + " | ".join(str(found[m]) for m in GROUP_MEASURES)
                             + " |")  # fmt: skip
    limit = figures.get("limit_requests")  # a server before 2026-11-30 sends none
    if limit is not None:
        limit_ca = (groups or {}).get("california", {}).get("limit")
        head, rule = ("| | California | all |", "|---|---:|---:|") if limit_ca else (
            "| | all |", "|---|---:|")  # fmt: skip
        lines += ["", "## Requests to limit the use of sensitive personal information", "",
                  f"CCPA §7102(a)(1)(E)-(F), received in {year}; all: all individuals, every"
                  " jurisdiction. A request that also asks to opt out is in the tables above"
                  " too.", "", head, rule]  # fmt: skip
        for key, label in ROWS:
            ca = f" {limit_ca[key]} |" if limit_ca else ""
            lines.append(f"| {label} |{ca} {limit[key]} |")
        for key, label in DAYS:
            ca = f" {days(limit_ca['days_to_respond'][key])} |" if limit_ca else ""
            lines.append(f"| {label} |{ca} {days(limit['days_to_respond'][key])} |")
    lines += ["", "## Systems (requests per system, as they stand, after replays)", "",
              "Retired: requests closed by retiring the system once it was removed from the "
              "config (nothing more owed there; such a request counts as complied with in "
              "whole).", "", SYSTEMS_DONE_NOTE, "",
              "| system | done | failed | in progress | retired | done of final | overdue |",
              "|---|---:|---:|---:|---:|---:|---:|"]  # fmt: skip
    for name, found in figures["systems"].items():
        lines.append(
            f"| {name} | {found['done']} | {found['failed']} | {found['processing']} | "
            f"{found.get('retired', 0)} | {percent(found['success_rate'])} | {found['overdue']} |"
        )
    backfills = figures.get("backfills")  # an older server sends none
    if backfills is not None:
        lines += ["", f"## {BACKFILLS_TITLE}", "", backfills_note(year), ""]
        if backfills:
            lines += ["| system | " + " | ".join(label for _, label in BACKFILL_COLUMNS) + " |",
                      "|---|" + "---:|" * len(BACKFILL_COLUMNS)]  # fmt: skip
            lines += [f"| {name} | " + " | ".join(str(row.get(k, 0)) for k, _ in BACKFILL_COLUMNS)
                      + " |" for name, row in backfills.items()]  # fmt: skip
        else:
            lines.append(f"No backfill started in {year}.")
    watch = figures.get("watch") or {}
    lines += _watch_lines(watch, year)
    ids = overdue_ids(watch)
    if ids:
        lines += ["", overdue_ids_note(ids, int(watch.get("overdue") or 0)), ""]
        lines += [f"- {request_id}" for request_id in ids]
    return "\n".join(lines) + "\n"


def _watch_lines(watch: dict[str, Any], year: object) -> list[str]:
    """The deadline watch's last run: overdue and due soon, then systems not backfilled."""
    lines: list[str] = []
    if watch.get("run_at"):
        lines += ["", f"Deadline watch ({watch['run_at']}): {watch.get('overdue_in_year', 0)} "
                  f"requests received in {year} overdue ({watch.get('overdue', 0)} in all years), "
                  f"{watch.get('due_soon', 0)} due soon (all years)."]  # fmt: skip
    if note := not_backfilled_note(watch):
        lines += ["", note]
    return lines
