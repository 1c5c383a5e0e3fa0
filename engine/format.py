"""Docker's ways of printing: aligned tables, human sizes, "5 minutes ago"."""

from __future__ import annotations

import datetime


def table(headers: list[str], rows: list[list[str]]) -> str:
    """Columns padded like Go's tabwriter with Docker's settings (min width, 3 spaces)."""
    widths = [len(h) for h in headers]
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))
    lines = []
    for row in [headers, *rows]:
        cells = [c.ljust(widths[i] + 3) if i < len(row) - 1 else c for i, c in enumerate(row)]
        lines.append("".join(cells).rstrip())
    return "\n".join(lines)


def human_size(size: float) -> str:
    """Decimal units with 3 significant digits, as docker/go-units HumanSize prints."""
    units = ["B", "kB", "MB", "GB", "TB", "PB"]
    i = 0
    while size >= 1000 and i < len(units) - 1:
        size /= 1000.0
        i += 1
    return f"{size:.3g}{units[i]}"


def human_duration(seconds: float) -> str:
    """go-units HumanDuration: "Less than a second", "About a minute", "3 hours", ..."""
    s = int(seconds)
    if s < 1:
        return "Less than a second"
    if s == 1:
        return "1 second"
    if s < 60:
        return f"{s} seconds"
    m = s // 60
    if m == 1:
        return "About a minute"
    if m < 60:
        return f"{m} minutes"
    h = round(s / 3600)
    if h == 1:
        return "About an hour"
    if h < 48:
        return f"{h} hours"
    if h < 24 * 7 * 2:
        return f"{h // 24} days"
    if h < 24 * 30 * 2:
        return f"{h // 24 // 7} weeks"
    if h < 24 * 365 * 2:
        return f"{h // 24 // 30} months"
    return f"{h // 24 // 365} years"


def since(when: datetime.datetime | None) -> str:
    if when is None:
        return ""
    delta = datetime.datetime.now(datetime.UTC) - when
    return human_duration(delta.total_seconds())


def ellipsis(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"
