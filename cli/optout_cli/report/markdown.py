"""The year's figures as Markdown (the §7102 disclosure, then the operating detail)."""

from typing import Any

from optout_cli.report.model import SOURCE_NAMES, days, percent


def render(figures: dict[str, Any]) -> str:
    year = figures["year"]
    total = figures["requests"]
    lines = [
        f"# Opt-out requests, {year}",
        "",
        f"CCPA §7102 figures for requests to opt out of sale or sharing received in {year}"
        f" (as of {figures['as_of']}). A request's year and week are those of the date it was"
        " received in its jurisdiction, the date its deadline counts from.",
        "",
        "| | all | " + " | ".join(SOURCE_NAMES.values()) + " |",
        "|---|---:|" + "---:|" * len(SOURCE_NAMES),
    ]
    rows = (("received", "Received"), ("complied", "Complied with, in whole or in part"),
            ("complied_whole", "… in whole"), ("complied_part", "… in part"),
            ("denied", "Denied"), ("failed", "Not complied with (failed)"),
            ("open", "Still open"),
            ("repeats", "Repeats, in no row above (asked nothing new)"))  # fmt: skip
    by_source = figures["by_source"]
    for key, label in rows:
        cells = [str(total[key])] + [str(by_source[s][key]) for s in SOURCE_NAMES]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    for key, label in (("median", "Median days to respond"), ("mean", "Mean days to respond")):
        cells = [days(total["days_to_respond"][key])]
        cells += [days(by_source[s]["days_to_respond"][key]) for s in SOURCE_NAMES]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    limit = figures.get("limit_requests")  # a server before 2026-11-30 sends none
    if limit is not None:
        lines += ["", "## Requests to limit the use of sensitive personal information", "",
                  f"CCPA §7102(a)(1)(E)-(F), received in {year}; a request that also asks to"
                  " opt out is in the table above too.", "", "| | all |", "|---|---:|"]  # fmt: skip
        for key, label in rows:
            lines.append(f"| {label} | {limit[key]} |")
        for key, label in (("median", "Median days to respond"),
                           ("mean", "Mean days to respond")):  # fmt: skip
            lines.append(f"| {label} | {days(limit['days_to_respond'][key])} |")
    lines += ["", "## Systems (requests per system, as they stand, after replays)", "",
              "| system | done | failed | in progress | done of final | overdue |",
              "|---|---:|---:|---:|---:|---:|"]  # fmt: skip
    for name, found in figures["systems"].items():
        lines.append(
            f"| {name} | {found['done']} | {found['failed']} | {found['processing']} | "
            f"{percent(found['success_rate'])} | {found['overdue']} |"
        )
    watch = figures.get("watch") or {}
    if watch.get("run_at"):
        lines += ["", f"Deadline watch ({watch['run_at']}): {watch.get('overdue_in_year', 0)} "
                  f"requests received in {year} overdue ({watch.get('overdue', 0)} in all years), "
                  f"{watch.get('due_soon', 0)} due soon (all years)."]  # fmt: skip
    return "\n".join(lines) + "\n"
