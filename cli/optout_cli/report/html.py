"""The year's figures as one self-contained HTML file: inline CSS and inline SVG charts, no
script, nothing fetched (its Content-Security-Policy forbids it), readable offline and by a
screen reader (every chart has a title and its numbers are in the tables beside it)."""

from html import escape
from typing import Any

from optout_cli.report import charts
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

STYLE = """
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1d1d1d;
margin:2rem auto;max-width:780px;padding:0 1rem}
h1{font-size:1.6rem;margin-bottom:.2rem}h2{font-size:1.15rem;margin-top:2rem}
.meta{color:#555;margin-top:0}
table{border-collapse:collapse;width:100%;margin:.6rem 0}
th,td{border-bottom:1px solid #ddd;padding:.3rem .5rem;text-align:right}
th:first-child,td:first-child{text-align:left}
thead th{background:#f4f4f4}
.figures td.key{font-weight:600}
figure{margin:1rem 0}figcaption{color:#555;font-size:.9rem}
.alert{background:#fff4e5;border-left:4px solid #e08a00;padding:.5rem .8rem}
.partial{background:#f4f4f4;border-left:4px solid #555;padding:.5rem .8rem}
"""
CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"


def render(figures: dict[str, Any]) -> str:
    year = int(figures["year"])
    total = figures["requests"]
    watch = figures.get("watch") or {}
    body = [
        f"<h1>Opt-out requests, {year}</h1>",
        f'<p class="meta">CCPA §7102 figures, as of {escape(str(figures["as_of"]))}, of '
        "the requests received in the year: the date in the request's jurisdiction its "
        "deadline counts from.</p>",
        _alert(watch, year),
        _overdue_list(watch),
        _not_backfilled(watch),
        *_partial(figures),
        *_california_section(figures.get("california_sale_share")),
        f"<h2>{escape(ALL_TITLE)}</h2>",
        f"<p>{escape(ALL_NOTE)}</p>",
        _figures_table(total, figures["by_source"]),
        *_groups_section(figures.get("by_group")),
        *_limit_section(figures.get("limit_requests"), figures.get("by_group")),
        "<h2>Requests per week, by source</h2>",
        _figure(charts.weekly_by_source(figures["weekly"]),
                "Requests received each ISO week; colours are the request's source."),
        "<h2>Days to respond</h2>",
        _figure(charts.days_histogram(figures["days_to_respond_histogram"]),
                f"{total['days_to_respond']['responses']} responses: median "
                f"{days(total['days_to_respond']['median'])} days, mean "
                f"{days(total['days_to_respond']['mean'])} days."),
        "<h2>Systems</h2>",
        _figure(charts.systems(figures["systems"]),
                "Share of each system's final jobs that are done (confirmed applied, or the "
                "vendor holds no such person: no_record), and the overdue requests received in "
                f"{year} it has not confirmed (from the deadline watch's last run)."),
        f"<p>{escape(SYSTEMS_DONE_NOTE)}</p>",
        _systems_table(figures["systems"]),
        *_backfills_section(figures.get("backfills"), year),
    ]  # fmt: skip
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>Opt-out requests {year}</title><style>{STYLE}</style></head>"
        f"<body><main>{''.join(body)}</main></body></html>\n"
    )


def _alert(watch: dict[str, Any], year: int) -> str:
    """This year's requests past their deadline now; another year's are not this report's."""
    overdue = int(watch.get("overdue_in_year") or 0)
    if not overdue:
        return ""
    return (
        f'<p class="alert" role="status"><strong>{overdue} request'
        f"{'s' if overdue != 1 else ''} received in {year} {'are' if overdue != 1 else 'is'} "
        f"past the deadline</strong> and not complete "
        f"(deadline watch, {escape(str(watch.get('run_at')))}; all years: "
        f"{int(watch.get('overdue') or 0)}).</p>"
    )


def _overdue_list(watch: dict[str, Any]) -> str:
    """The overdue requests' ids under the alert, each whole, to copy into `optout status`."""
    ids = overdue_ids(watch)
    if not ids:
        return ""
    items = "".join(f"<li><code>{escape(request_id)}</code></li>" for request_id in ids)
    note = escape(overdue_ids_note(ids, int(watch.get("overdue") or 0)))
    return f'<p class="alert">{note}</p><ul class="overdue">{items}</ul>'


def _not_backfilled(watch: dict[str, Any]) -> str:
    note = not_backfilled_note(watch)
    return f'<p class="alert" role="status">{escape(note)}</p>' if note else ""


def _figures_table(total: dict[str, Any], by_source: dict[str, Any]) -> str:
    head = "".join(f'<th scope="col">{escape(n)}</th>' for n in SOURCE_NAMES.values())
    lines = []
    for key, label in ROWS:
        cells = "".join(f"<td>{by_source[s][key]}</td>" for s in SOURCE_NAMES)
        lines.append(f'<tr><td class="key">{label}</td><td>{total[key]}</td>{cells}</tr>')
    for key, label in DAYS:
        cells = "".join(
            f"<td>{days(by_source[s]['days_to_respond'][key])}</td>" for s in SOURCE_NAMES
        )
        value = days(total["days_to_respond"][key])
        lines.append(f'<tr><td class="key">{label}</td><td>{value}</td>{cells}</tr>')
    return (
        f'<table class="figures"><thead><tr><th scope="col"></th><th scope="col">All</th>'
        f"{head}</tr></thead><tbody>{''.join(lines)}</tbody></table>"
    )


def _partial(figures: dict[str, Any]) -> list[str]:
    notes = (unknown_note(figures), partial_note(figures))
    return [f'<p class="partial" role="note">{escape(note)}</p>' for note in notes if note]


def _columns(blocks: dict[str, dict[str, Any]]) -> str:
    """One figures table, a column per block (label: figures)."""
    head = "".join(f'<th scope="col">{escape(name)}</th>' for name in blocks)
    lines = []
    for key, label in ROWS:
        cells = "".join(f"<td>{found[key]}</td>" for found in blocks.values())
        lines.append(f'<tr><td class="key">{label}</td>{cells}</tr>')
    for key, label in DAYS:
        cells = "".join(f"<td>{days(f['days_to_respond'][key])}</td>" for f in blocks.values())
        lines.append(f'<tr><td class="key">{label}</td>{cells}</tr>')
    return (
        f'<table class="figures"><thead><tr><th scope="col"></th>{head}</tr></thead>'
        f"<tbody>{''.join(lines)}</tbody></table>"
    )


def _california_section(california: dict[str, Any] | None) -> list[str]:
    """§7102(a)(1)(D)'s figure; none from a server before 2026-12-01."""
    if california is None:
        return []
    return [f"<h2>{escape(CALIFORNIA_TITLE)}</h2>", f"<p>{escape(CALIFORNIA_NOTE)}</p>",
            _columns({"California": california})]  # fmt: skip


def _groups_section(groups: dict[str, dict[str, Any]] | None) -> list[str]:
    if groups is None:
        return []
    labels = dict(ROWS)
    head = "".join(f'<th scope="col">{escape(labels[m])}</th>' for m in GROUP_MEASURES)
    lines = []
    for region, cells in groups.items():
        for purpose, found in cells.items():
            label = escape(f"{REGION_LABELS[region]}, {PURPOSE_LABELS[purpose]}")
            values = "".join(f"<td>{found[m]}</td>" for m in GROUP_MEASURES)
            lines.append(f'<tr><td class="key">{label}</td>{values}</tr>')
    return [
        "<h2>By jurisdiction and purpose</h2>",
        "<p>Each request once per right it asks: an opt-out in one opt-out row, a request to "
        "limit in one limit row.</p>",
        f'<table class="figures"><thead><tr><th scope="col"></th>{head}</tr></thead>'
        f"<tbody>{''.join(lines)}</tbody></table>",
    ]


def _limit_section(
    limit: dict[str, Any] | None, groups: dict[str, dict[str, Any]] | None
) -> list[str]:
    """Requests to limit the use of sensitive personal information (§7102(a)(1)(E)-(F)); none
    from a server before 2026-11-30 (and no California column before 2026-12-01)."""
    if limit is None:
        return []
    california = (groups or {}).get("california", {}).get("limit")
    blocks = ({"California": california} if california else {}) | {"All": limit}
    return [
        "<h2>Requests to limit the use of sensitive personal information</h2>",
        "<p>All: all individuals, every jurisdiction. A request that also asks to opt out is in "
        "the figures above too.</p>",
        _columns(blocks),
    ]


def _systems_table(rows: dict[str, dict[str, Any]]) -> str:
    lines = "".join(
        f"<tr><td>{escape(name)}</td><td>{r['done']}</td><td>{r['failed']}</td>"
        f"<td>{r['processing']}</td><td>{r.get('retired', 0)}</td>"
        f"<td>{percent(r['success_rate'])}</td>"
        f"<td>{r['overdue']}</td></tr>"
        for name, r in rows.items()
    )
    return (
        '<table><thead><tr><th scope="col">System</th><th scope="col">Done</th>'
        '<th scope="col">Failed</th><th scope="col">In progress</th><th scope="col">Retired</th>'
        '<th scope="col">Done of final</th><th scope="col">Overdue</th></tr></thead>'
        f"<tbody>{lines}</tbody></table>"
    )


def _backfills_section(rows: dict[str, dict[str, Any]] | None, year: int) -> list[str]:
    """Operator backfills per system (an older server sends none): not requests."""
    if rows is None:
        return []
    head = [f"<h2>{escape(BACKFILLS_TITLE)}</h2>", f"<p>{escape(backfills_note(year))}</p>"]
    if not rows:
        return [*head, f"<p>No backfill started in {year}.</p>"]
    cols = "".join(f'<th scope="col">{escape(label)}</th>' for _, label in BACKFILL_COLUMNS)
    lines = "".join(
        f"<tr><td>{escape(name)}</td>"
        + "".join(f"<td>{int(r.get(k, 0))}</td>" for k, _ in BACKFILL_COLUMNS)
        + "</tr>"
        for name, r in rows.items()
    )
    return [*head, f'<table><thead><tr><th scope="col">System</th>{cols}</tr></thead>'
            f"<tbody>{lines}</tbody></table>"]  # fmt: skip


def _figure(svg: str, caption: str) -> str:
    return f"<figure>{svg}<figcaption>{escape(caption)}</figcaption></figure>"
