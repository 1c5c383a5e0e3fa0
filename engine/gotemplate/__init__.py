"""Go's text/template as Docker's ``--format`` flags run it.

Hand-written: no maintained Python port of Go's text/template matches its grammar, its
printing of values (``map[a:1]``, ``<no value>``) and its error messages, which scripts
written for Docker rely on. The pieces are small modules:

- ``lexer``, ``parser``: text/template/parse (lex.go, parse.go, node.go);
- ``execute``: text/template/exec.go over Python data (``values`` maps it onto Go's
  kinds and prints it as fmt does);
- ``funcs``: Go's builtins and Docker's functions (docker/cli templates/templates.go);
- ``tabwriter``: Go's tabwriter, which aligns ``table`` formats;
- this module: Docker's formatter conventions (cli/command/formatter/formatter.go and
  cli/command/inspect/inspector.go): the ``table`` prefix and its header row, ``json``,
  the ``\\t``/``\\n`` escapes, one line per element, and the error texts and exit codes.

Only the commands that format import this package (never ``pydock run``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ..errors import EngineError
from . import tabwriter
from .execute import ExecError, execute
from .funcs import BUILTINS, DOCKER, HEADER, Func
from .parser import ParseError, parse
from .values import (
    MISSING,
    GoTemplateError,
    NilMap,
    NilPtr,
    NilSlice,
    StrMap,
    Struct,
    to_json,
)

__all__ = [
    "MISSING", "ExecError", "Func", "GoTemplateError", "NilMap", "NilPtr", "NilSlice",
    "ParseError", "StrMap", "Struct", "Template", "TemplateError", "format_list",
    "format_one", "inspect", "is_table", "prepare", "render", "to_json",
]  # fmt: skip

TABLE, JSON = "table", "json"


class TemplateError(EngineError):
    """A ``--format`` that failed, worded and coded as Docker's CLI reports it."""


class Template:
    """A parsed template with Docker's functions (``templates.Parse``)."""

    def __init__(self, text: str, name: str = "", funcs: Mapping[str, Func] | None = None):
        self.text = text
        self.name = name
        self.funcs: dict[str, Func] = {**DOCKER, **(funcs or {})}
        self.root, self.defines = parse(text, name, set(BUILTINS) | set(self.funcs))

    def execute(
        self, data: Any, *, missingkey: str = "default", funcs: Mapping[str, Func] | None = None
    ) -> str:
        """Run on ``data``; ``missingkey`` is Go's Option("missingkey=..."): "default"
        (``<no value>``), "zero" or "error"; ``funcs`` replaces functions (``Funcs``)."""
        fs = {**self.funcs, **funcs} if funcs else self.funcs
        return execute(
            self.root, self.defines, data, name=self.name, text=self.text, funcs=fs,
            missingkey=missingkey,
        )  # fmt: skip


def render(fmt: str, data: Any, *, missingkey: str = "default") -> str:
    """Parse and run ``fmt`` on ``data`` (raises ParseError / ExecError, Go's messages)."""
    return Template(fmt).execute(data, missingkey=missingkey)


# -- Docker's formatter (cli/command/formatter/formatter.go) -------------------------------------


def is_table(fmt: str) -> bool:
    return fmt.startswith(TABLE)


def prepare(fmt: str) -> str:
    """Context.preFormat: ``table`` dropped, ``json`` is ``{{json .}}``, spaces trimmed at
    both ends, and the two escapes ``\\t`` and ``\\n`` typed in a shell made real."""
    if is_table(fmt):
        fmt = fmt[len(TABLE) :]
    elif fmt == JSON:
        fmt = "{{json .}}"
    return fmt.strip(" ").replace("\\t", "\t").replace("\\n", "\n")


def format_list(fmt: str, rows: Iterable[Any], header: Mapping[str, str] | None = None) -> str:
    """A list command's output: every row rendered and ended by a newline; a ``table``
    format gets the header row first (the template run on ``header`` with Docker's
    HeaderFunctions, its errors ignored as Docker ignores them) and aligned columns.

    Errors: ``template parsing error: ...`` (parse and execution alike), exit code 1.
    """
    body = prepare(fmt)
    try:
        tmpl = Template(body)
    except ParseError as e:
        raise TemplateError(f"template parsing error: {e}") from None
    out: list[str] = []
    for row in rows:
        try:
            out.append(tmpl.execute(row) + "\n")
        except ExecError as e:
            raise TemplateError(f"template parsing error: {e}") from None
    if not is_table(fmt):
        return "".join(out)
    try:
        head = tmpl.execute(dict(header or {}), funcs=HEADER)
    except ExecError as e:
        head = e.partial
    return tabwriter.align(head + "\n" + "".join(out))


def format_one(fmt: str, data: Any, *, name: str = "", minwidth: int = 0, padding: int = 0) -> str:
    """``version``/``info`` with ``--format``: one rendering and a newline (``json`` is
    ``{{json .}}``). A parse error is ``template parsing error: ...`` with exit code 64, an
    execution error Go's own message with exit code 1, as docker version/info report them.
    ``minwidth``: version's output goes through tabwriter.NewWriter(out, 20, 1, 1, ' ', 0).
    """
    if fmt == JSON:
        fmt = "{{json .}}"
    try:
        tmpl = Template(fmt, name)
    except ParseError as e:
        raise TemplateError(f"template parsing error: {e}", exit_code=64) from None
    try:
        text = tmpl.execute(data) + "\n"
    except ExecError as e:
        raise TemplateError(str(e)) from None
    return tabwriter.align(text, minwidth, padding) if minwidth else text


def inspect(fmt: str, elements: list[tuple[Any, Any]]) -> tuple[str, list[str]]:
    """``inspect --format`` over ``(typed, raw)`` pairs (cli/command/inspect/inspector.go):
    ``json`` prints the raw elements as one compact JSON array; a template runs on the
    typed view and, if that fails, once more on the raw data with missingkey=error (so a
    misspelt key reads ``map has no entry for key "X"``). Returns (stdout text, error lines);
    a template that does not parse raises TemplateError with exit code 64.
    """
    if fmt == JSON:
        return to_json([raw for _typed, raw in elements]) + "\n", []
    try:
        tmpl = Template(fmt)
    except ParseError as e:
        raise TemplateError(f"template parsing error: {e}", exit_code=64) from None
    out: list[str] = []
    errors: list[str] = []
    for typed, raw in elements:
        try:
            out.append(tmpl.execute(typed) + "\n")
            continue
        except ExecError:
            pass
        try:
            out.append(tmpl.execute(raw, missingkey="error") + "\n")
        except ExecError as e:
            errors.append(f"template parsing error: {e}")
    return "".join(out) or "\n", errors
