"""Labels and number formats shared by the report's renderers."""

SOURCE_NAMES = {"banner": "Banner", "webform": "Webform", "gpc": "GPC", "agent": "Agent"}
SOURCE_COLOURS = {"banner": "#1b6ca8", "webform": "#e08a00", "gpc": "#2e8540", "agent": "#8e44ad"}


def days(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def percent(rate: float | None) -> str:
    return "-" if rate is None else f"{rate * 100:.1f}%"
