"""JSON text as Go's encoding/json writes it, for output that must match Docker's byte for byte.

:func:`indent` is ``json.Indent``: it re-spaces a document without touching its tokens, so
a manifest keeps its own key order, number spelling and string escapes. :func:`dumps` is
``json.MarshalIndent`` of plain data: Python's encoder with Go's HTML-safe escapes
(``<``, ``>``, ``&``, U+2028, U+2029 as ``\\u003c``...) that Go applies by default.
"""

from __future__ import annotations

import json
import re

_GO_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028",
               "\u2029": "\\u2029"}  # fmt: skip
_GO_ESCAPE_RE = re.compile("[<>&\u2028\u2029]")


def indent(raw: bytes | str, step: str, prefix: str = "") -> str:
    """Go's json.Indent(raw, prefix, step): whitespace between tokens replaced, empty
    ``{}``/``[]`` kept together, leading whitespace dropped and trailing whitespace kept."""
    text = raw.decode() if isinstance(raw, bytes) else raw
    body = text.lstrip(" \t\r\n")
    stripped = body.rstrip(" \t\r\n")
    trailing = body[len(stripped) :]
    out: list[str] = []
    depth = 0
    need_indent = False  # an opening bracket was written; its first element is pending
    i, n = 0, len(stripped)
    while i < n:
        c = stripped[i]
        if c in " \t\r\n":
            i += 1
            continue
        if need_indent and c not in "]}":
            out.append("\n" + prefix + step * depth)
            need_indent = False
        if c == '"':
            j = i + 1
            while stripped[j] != '"':
                j += 2 if stripped[j] == "\\" else 1
            out.append(stripped[i : j + 1])
            i = j + 1
            continue
        if c in "[{":
            out.append(c)
            depth += 1
            need_indent = True
        elif c in "]}":
            depth -= 1
            if need_indent:  # empty: Go writes {} and []
                need_indent = False
            else:
                out.append("\n" + prefix + step * depth)
            out.append(c)
        elif c == ",":
            out.append(",\n" + prefix + step * depth)
        elif c == ":":
            out.append(": ")
        else:
            out.append(c)
        i += 1
    return "".join(out) + trailing


def dumps(data: object, step: str = "\t") -> str:
    """Go's json.MarshalIndent(data, "", step) for dicts (in their order), lists,
    strings, ints, bools and None."""
    text = json.dumps(data, indent=step, ensure_ascii=False, separators=(",", ": "))
    return _GO_ESCAPE_RE.sub(lambda m: _GO_ESCAPES[m.group()], text)
