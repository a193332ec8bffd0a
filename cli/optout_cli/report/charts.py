"""Charts as inline SVG: no script, no library, nothing fetched; every bar is a `<rect
class="bar">` with a `<title>` (the tooltip, and what a screen reader reads)."""

from html import escape

from optout_cli.report.model import SOURCE_COLOURS, SOURCE_NAMES

WIDTH = 720
PLOT_TOP = 20
PLOT_LEFT = 44
AXIS_COLOUR = "#6b6b6b"


def weekly_by_source(weeks: list[dict[str, object]]) -> str:
    """Stacked bars: requests received per ISO week, one colour per source."""
    height, bottom = 260, 220
    plot_width = WIDTH - PLOT_LEFT - 10
    totals = [sum(int(str(w.get(s, 0))) for s in SOURCE_NAMES) for w in weeks]
    top = _nice_max(max(totals, default=0))
    step = plot_width / max(1, len(weeks))
    bar = max(2.0, step * 0.8)
    parts = _y_axis(top, bottom, PLOT_TOP, WIDTH - 10)
    for index, week in enumerate(weeks):
        x = PLOT_LEFT + index * step + (step - bar) / 2
        y = float(bottom)
        for source, name in SOURCE_NAMES.items():
            count = int(str(week.get(source, 0)))
            if not count:
                continue
            h = (bottom - PLOT_TOP) * count / top
            y -= h
            label = f"{week['week']}: {count} via {name}"
            parts.append(
                f'<rect class="bar" data-source="{source}" x="{x:.1f}" y="{y:.1f}" '
                f'width="{bar:.1f}" height="{h:.1f}" fill="{SOURCE_COLOURS[source]}">'
                f"<title>{escape(label)}</title></rect>"
            )
        if index % max(1, len(weeks) // 8) == 0:
            parts.append(_text(x + bar / 2, bottom + 16, str(week["week"])[5:], "middle"))
    legend_x = PLOT_LEFT
    for source, name in SOURCE_NAMES.items():
        parts.append(
            f'<rect x="{legend_x}" y="{height - 16}" width="12" height="12" '
            f'fill="{SOURCE_COLOURS[source]}"/>'
        )
        parts.append(_text(legend_x + 16, height - 6, name))
        legend_x += 100
    return _svg("chart-weekly", "Requests per week by source", height, parts)


def days_histogram(buckets: list[dict[str, int]]) -> str:
    """How many responses took 0, 1, 2, ... whole days."""
    height, bottom = 240, 210
    last = max((b["days"] for b in buckets), default=0)
    counts = {b["days"]: b["responses"] for b in buckets}
    top = _nice_max(max(counts.values(), default=0))
    slots = last + 1
    step = (WIDTH - PLOT_LEFT - 10) / max(1, slots)
    bar = max(2.0, step * 0.85)
    parts = _y_axis(top, bottom, PLOT_TOP, WIDTH - 10)
    for day in range(slots):
        x = PLOT_LEFT + day * step + (step - bar) / 2
        count = counts.get(day, 0)
        if count:
            h = (bottom - PLOT_TOP) * count / top
            label = f"{count} responded within {day + 1} day{'s' if day else ''}"
            parts.append(
                f'<rect class="bar" data-days="{day}" x="{x:.1f}" y="{bottom - h:.1f}" '
                f'width="{bar:.1f}" height="{h:.1f}" fill="#1b6ca8">'
                f"<title>{escape(label)}</title></rect>"
            )
        if day % max(1, slots // 12) == 0:
            parts.append(_text(x + bar / 2, bottom + 16, f"{day}-{day + 1}", "middle"))
    parts.append(_text(WIDTH / 2, height - 4, "days to respond", "middle"))
    return _svg("chart-days", "Days to respond", height, parts)


def systems(rows: dict[str, dict[str, object]]) -> str:
    """Per system: the share of final jobs done (bar) and the overdue requests (count)."""
    row_height = 30
    height = PLOT_TOP + row_height * max(1, len(rows)) + 24
    label_width, rate_width = 110, 380
    overdue_x = label_width + rate_width + 60
    top_overdue = max((int(str(r.get("overdue", 0))) for r in rows.values()), default=0)
    parts = [
        _text(label_width, 14, "requests done / done + failed, after replays"),
        _text(overdue_x, 14, "overdue requests"),
    ]
    for index, (name, found) in enumerate(rows.items()):
        y = PLOT_TOP + index * row_height
        rate = found.get("success_rate")
        parts.append(_text(label_width - 8, y + 17, name, "end"))
        parts.append(
            f'<rect x="{label_width}" y="{y + 4}" width="{rate_width}" height="18" fill="#eee"/>'
        )
        if isinstance(rate, int | float):
            width = rate_width * float(rate)
            colour = "#2e8540" if rate >= 0.99 else ("#e08a00" if rate >= 0.9 else "#b22222")
            parts.append(
                f'<rect class="bar rate" data-system="{escape(name)}" x="{label_width}" '
                f'y="{y + 4}" width="{width:.1f}" height="18" fill="{colour}">'
                f"<title>{escape(f'{name}: {rate * 100:.1f}% done')}</title></rect>"
            )
            parts.append(_text(label_width + rate_width + 6, y + 17, f"{rate * 100:.1f}%"))
        overdue = int(str(found.get("overdue", 0)))
        width = 130 * overdue / top_overdue if top_overdue else 0  # room for its label
        parts.append(
            f'<rect class="bar overdue" data-system="{escape(name)}" x="{overdue_x}" '
            f'y="{y + 4}" width="{max(width, 1):.1f}" height="18" fill="#b22222">'
            f"<title>{escape(f'{name}: {overdue} overdue')}</title></rect>"
        )
        parts.append(_text(overdue_x + max(width, 1) + 6, y + 17, str(overdue)))
    return _svg("chart-systems", "Requests done per system (after replays), overdue", height, parts)


def _y_axis(top: int, bottom: int, plot_top: int, right: int) -> list[str]:
    parts = []
    for tick in range(5):
        value = top * tick / 4
        y = bottom - (bottom - plot_top) * tick / 4
        parts.append(
            f'<line x1="{PLOT_LEFT}" x2="{right}" y1="{y:.1f}" y2="{y:.1f}" '
            f'stroke="#ddd" stroke-width="1"/>'
        )
        parts.append(_text(PLOT_LEFT - 6, y + 4, f"{value:g}", "end"))
    parts.append(
        f'<line x1="{PLOT_LEFT}" x2="{right}" y1="{bottom}" y2="{bottom}" stroke="{AXIS_COLOUR}"/>'
    )
    return parts


def _nice_max(value: int) -> int:
    """An axis top at or above `value` that divides into four readable ticks."""
    if value <= 4:
        return 4
    magnitude = 10 ** (len(str(value)) - 1)
    for factor in (1, 2, 2.5, 4, 5, 8, 10):
        top = int(factor * magnitude)
        if top >= value and top % 4 == 0:
            return top
    return ((value + 3) // 4) * 4


def _text(x: float, y: float, text: str, anchor: str = "start") -> str:
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" font-size="11" fill="{AXIS_COLOUR}" '
        f'text-anchor="{anchor}">{escape(text)}</text>'
    )


def _svg(chart_id: str, title: str, height: int, parts: list[str]) -> str:
    return (
        f'<svg id="{chart_id}" role="img" aria-labelledby="{chart_id}-title" '
        f'viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" height="{height}" '
        f'xmlns="http://www.w3.org/2000/svg"><title id="{chart_id}-title">{escape(title)}'
        f"</title>{''.join(parts)}</svg>"
    )
