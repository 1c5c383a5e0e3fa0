"""Go's text/tabwriter as Docker's table formats use it (cli/command/formatter/tabwriter:
``NewWriter(out, minwidth=10, tabwidth=1, padding=3, ' ', 0)``).

Cells are tab-*terminated*: the text after a line's last tab is not part of a column and
is never padded. A column is a run of consecutive lines that have a cell at that index; its
width is the widest cell plus ``padding``, at least ``minwidth`` (the elastic-tabstops
algorithm of tabwriter.go's ``format``, recursive over columns). Widths count terminal
cells (East Asian wide characters are 2), as Docker's fork does with go-runewidth.
"""

from __future__ import annotations

import unicodedata


def _width(s: str) -> int:
    if s.isascii():
        return len(s)
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in s)


def align(text: str, minwidth: int = 10, padding: int = 3) -> str:
    """``text`` with its tab-terminated cells padded into aligned columns."""
    lines = [line.split("\t") for line in text.split("\n")]
    out: list[str] = []
    widths: list[int] = []

    def write_lines(line0: int, line1: int) -> None:
        for i in range(line0, line1):
            cells = lines[i]
            parts = []
            for j, c in enumerate(cells):
                parts.append(c)
                if j < len(widths) and j < len(cells) - 1:
                    parts.append(" " * (widths[j] - _width(c)))
            out.append("".join(parts))

    def fmt(line0: int, line1: int) -> None:
        column = len(widths)
        this = line0
        while this < line1:
            if column >= len(lines[this]) - 1:
                this += 1
                continue
            write_lines(line0, this)
            line0 = this
            width = minwidth
            while this < line1 and column < len(lines[this]) - 1:
                width = max(width, _width(lines[this][column]) + padding)
                this += 1
            widths.append(width)
            fmt(line0, this)
            widths.pop()
            line0 = this
        write_lines(line0, line1)

    fmt(0, len(lines))
    return "\n".join(out)
