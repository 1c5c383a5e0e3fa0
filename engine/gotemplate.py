"""The subset of Go's text/template that Docker's ``--format`` flags are used with.

Supported: text with ``{{ pipeline }}`` actions (``{{-``/``-}}`` trim the spaces around them),
pipelines of commands joined by ``|`` whose operands are ``.``, field chains (``.State.Pid``),
string and number literals (no parentheses or variables), and the functions Docker adds
to Go's (json, join, split, lower, upper, title, truncate, pad) plus Go's index, len, print
and printf. A field whose value is
callable is a method: ``{{.Label "com.example"}}`` calls it with the arguments. Control
actions (if, range, with, define) are refused with a clear error rather than misprinted.

``table`` formats (``table {{.ID}}\\t{{.Names}}``) render a header row from the same template
applied to the column titles, then align the tab-separated cells as Docker's tabwriter does.
Values print as Go prints them: true/false, ``map[k:v]``, ``[a b]``, ``<no value>``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable

_ACTION = re.compile(r"\{\{(-\s)?(.*?)(\s-)?\}\}", re.S)
_TOKEN = re.compile(r'\s*("(?:[^"\\]|\\.)*"|`[^`]*`|\||[^\s|"`]+)')
_CONTROL = {"if", "else", "end", "range", "with", "define", "template", "block", "break"}


class TemplateError(ValueError):
    """A template this subset cannot run; the message names the piece."""


def go_str(v: object) -> str:
    """A value as Go's fmt prints it with %v."""
    if v is None:
        return "<no value>"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, dict):
        return "map[" + " ".join(f"{k}:{go_str(v[k])}" for k in sorted(v)) + "]"
    if isinstance(v, list | tuple):
        return "[" + " ".join(go_str(x) for x in v) + "]"
    return str(v)


def to_json(v: object) -> str:
    """Docker's ``json`` function: compact encoding/json output, no HTML escaping.

    An object with ``for_json()`` (a row with methods) encodes what that returns."""
    if hasattr(v, "for_json"):
        v = v.for_json()
    return json.dumps(v, separators=(",", ":"), ensure_ascii=False)


def _truncate(s: object, n: int) -> str:
    s = go_str(s)
    return s[: int(n)]


def _pad(s: object, left: int, right: int) -> str:
    return " " * int(left) + go_str(s) + " " * int(right)


def _index(v: object, *keys: object) -> object:
    for k in keys:
        if isinstance(v, dict):
            v = v.get(k)
        elif isinstance(v, list | tuple) and isinstance(k, int):
            v = v[k] if -len(v) <= k < len(v) else None
        else:
            raise TemplateError(f"can't index item of type {type(v).__name__}")
    return v


def _printf(fmt: str, *args: object) -> str:
    # Go verbs map onto Python's for the common cases (%s %d %v %q).
    py = fmt.replace("%v", "%s").replace("%q", '"%s"')
    return py % tuple(go_str(a) if isinstance(a, bool | dict | list) else a for a in args)


FUNCS: dict[str, Callable[..., object]] = {
    "json": to_json,
    "join": lambda items, sep: sep.join(go_str(i) for i in (items or [])),
    "split": lambda s, sep: go_str(s).split(sep),
    "lower": lambda s: go_str(s).lower(),
    "upper": lambda s: go_str(s).upper(),
    "title": lambda s: go_str(s).title(),
    "truncate": _truncate,
    "pad": _pad,
    "index": _index,
    "len": lambda v: len(v) if v is not None else 0,
    "print": lambda *a: "".join(go_str(x) for x in a),
    "println": lambda *a: " ".join(go_str(x) for x in a) + "\n",
    "printf": _printf,
}


def _field(obj: object, path: str) -> object:
    cur = obj
    for part in [p for p in path.split(".") if p]:
        if isinstance(cur, _Headers):
            return cur[part]  # a header cell names the first field of a chain
        if isinstance(cur, dict):
            if part not in cur:
                return None
            cur = cur[part]
        else:
            raise TemplateError(f"can't evaluate field {part} in type {type(cur).__name__}")
    return cur


def _operand(tok: str, dot: object) -> tuple[object, bool]:
    """(value, is_method) of one token; a callable field is a method taking arguments."""
    if tok.startswith('"'):
        return json.loads(tok), False
    if tok.startswith("`"):
        return tok[1:-1], False
    if tok.startswith("."):
        v = _field(dot, tok)
        return v, callable(v)
    if re.fullmatch(r"-?\d+", tok):
        return int(tok), False
    if tok in ("true", "false"):
        return tok == "true", False
    if tok == "nil":
        return None, False
    if tok.startswith("(") or tok.startswith("$"):
        raise TemplateError(
            f"{tok!r}: parentheses and variables are not supported in --format here"
        )
    raise TemplateError(f'function "{tok}" not defined')


def _command(tokens: list[str], dot: object, piped: tuple[object, ...]) -> object:
    head = tokens[0]
    if head in FUNCS:
        args = [_operand(t, dot)[0] for t in tokens[1:]]
        try:
            return FUNCS[head](*args, *piped)
        except TypeError as e:
            raise TemplateError(f"wrong arguments for {head}: {e}") from None
    value, is_method = _operand(head, dot)
    if is_method:
        args = [_operand(t, dot)[0] for t in tokens[1:]]
        return value(*args, *piped)  # type: ignore[operator]
    if len(tokens) > 1 or piped:
        raise TemplateError(f"can't give argument to non-function {head}")
    return value


def _pipeline(expr: str, dot: object) -> object:
    tokens = _TOKEN.findall(expr)
    if not tokens:
        raise TemplateError("missing value for command")
    if tokens[0] in _CONTROL:
        raise TemplateError(f"{{{{{tokens[0]}}}}} actions are not supported in --format here")
    commands: list[list[str]] = [[]]
    for t in tokens:
        if t == "|":
            commands.append([])
        else:
            commands[-1].append(t)
    if any(not c for c in commands):
        raise TemplateError(f"missing command in pipeline {expr!r}")
    value: object = _command(commands[0], dot, ())
    for c in commands[1:]:
        value = _command(c, dot, (value,))
    return value


def render(fmt: str, dot: object) -> str:
    """Execute template ``fmt`` on ``dot`` and return the text."""
    out: list[str] = []
    pos = 0
    for m in _ACTION.finditer(fmt):
        text = fmt[pos : m.start()]
        if m.group(1):
            text = text.rstrip()
        out.append(text)
        value = _pipeline(m.group(2), dot)
        out.append(value if isinstance(value, str) else go_str(value))
        pos = m.end()
        if m.group(3):
            rest = fmt[pos:]
            pos += len(rest) - len(rest.lstrip())
    out.append(fmt[pos:])
    return "".join(out)


def is_table(fmt: str) -> bool:
    return fmt.startswith("table")


def prepare(fmt: str) -> str:
    """The template body as Docker runs it: ``table`` dropped, ``\\t``/``\\n`` escapes
    turned into real tabs and newlines (so shell users can type them)."""
    if is_table(fmt):
        fmt = fmt[len("table") :]
        fmt = fmt.strip(" ")
    return fmt.replace("\\t", "\t").replace("\\n", "\n")


def render_all(fmt: str, items: list[object], headers: dict[str, str] | None = None) -> str:
    """Render ``items`` one per line; a ``table`` format gets a header and aligned cells.

    ``headers`` maps field names to their column titles; the header row is the template
    applied to it, so any combination of fields gets the matching titles.
    """
    from .format import table

    body = prepare(fmt)
    lines = [render(body, it) for it in items]
    if not is_table(fmt):
        return "\n".join(lines)
    head = render(body, _Headers(headers or {}))
    rows = [line.split("\t") for line in lines]
    cols = head.split("\t")
    width = max([len(cols), *(len(r) for r in rows)])
    pad = [*cols, *[""] * (width - len(cols))]
    return table(pad, [[*r, *[""] * (width - len(r))] for r in rows])


class _Headers(dict):
    """The header context: every field is its column title, every method too."""

    def __init__(self, titles: dict[str, str]) -> None:
        super().__init__()
        self.titles = titles

    def __contains__(self, key: object) -> bool:
        return True

    def __getitem__(self, key: str) -> object:
        title = self.titles.get(key, key.upper())
        if key == "Label":
            return lambda *_a: "LABEL"
        return title
