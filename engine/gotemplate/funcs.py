"""The functions a template can call: Go's builtins (text/template/funcs.go) and Docker's
(docker/cli templates/templates.go), each with Go's signature so that argument counts,
argument types and error texts come out as Go's.

A signature is a tuple of parameter kinds: ``any`` (interface{}), ``value`` (reflect.Value:
takes even a missing value), ``string``, ``int``, ``[]string``; ``variadic`` names the
kind of the ``...`` parameter. ``and``/``or`` are evaluated lazily by the executor.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .lexer import go_quote
from .values import (
    MISSING,
    NilPtr,
    StrMap,
    Struct,
    format_float,
    go_len,
    is_true,
    sprint_v,
    to_json,
    type_name,
)


class FuncError(Exception):
    """A function's returned error: the executor reports ``error calling NAME: MSG``."""


@dataclass(frozen=True, slots=True)
class Func:
    fn: Callable[..., Any]
    params: tuple[str, ...]
    variadic: str | None = None


# -- comparisons (funcs.go eq/lt) -----------------------------------------------------------------


def _kind(v: Any) -> str:
    if v is MISSING:
        return "invalid"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "int"
    if isinstance(v, float):
        return "float"
    if isinstance(v, str):
        return "string"
    return "other"


def _eq(a: Any, *rest: Any) -> bool:
    if not rest:
        raise FuncError("missing argument for comparison")
    a = None if a is MISSING else a
    k1 = _kind(MISSING if a is None else a)
    for b in rest:
        b = None if b is MISSING else b
        k2 = _kind(MISSING if b is None else b)
        if k1 != k2:
            if a is not None and b is not None:
                raise FuncError("incompatible types for comparison")
            truth = False
        elif k1 == "other":
            if isinstance(a, list | dict) or isinstance(b, list | dict):
                raise FuncError(f"non-comparable type {sprint_v(b)}: {type_name(b)}")
            truth = a is b or a == b
        else:
            truth = a == b
        if truth:
            return True
    return False


def _ne(a: Any, b: Any) -> bool:
    return not _eq(a, b)


def _lt(a: Any, b: Any) -> bool:
    k1, k2 = _kind(a), _kind(b)
    for k in (k1, k2):
        if k in ("invalid", "other"):
            raise FuncError("invalid type for comparison")
    if k1 != k2:
        raise FuncError("incompatible types for comparison")
    if k1 == "bool":
        raise FuncError("invalid type for comparison")
    return a < b


def _le(a: Any, b: Any) -> bool:
    return _lt(a, b) or _eq(a, b)


def _gt(a: Any, b: Any) -> bool:
    return not _le(a, b)


def _ge(a: Any, b: Any) -> bool:
    return not _lt(a, b)


def _not(v: Any) -> bool:
    return not is_true(v)[0]


# -- index, slice, len ------------------------------------------------------------------------


def _index_arg(i: Any, cap: int) -> int:
    if i is MISSING or i is None:
        raise FuncError("cannot index slice/array with nil")
    if not isinstance(i, int) or isinstance(i, bool):
        raise FuncError(f"cannot index slice/array with type {type_name(i)}")
    if i < 0 or i > cap:
        raise FuncError(f"index out of range: {i}")
    return i


def _index(item: Any, *indexes: Any) -> Any:
    if item is MISSING or item is None:
        raise FuncError("index of untyped nil")
    for i in indexes:
        if isinstance(item, NilPtr):
            raise FuncError("index of nil pointer")
        if isinstance(item, str | list | tuple):
            x = _index_arg(i, len(item.encode()) if isinstance(item, str) else len(item))
            if isinstance(item, str):
                b = item.encode()
                if x == len(b):
                    raise FuncError("reflect: string index out of range")
                item = b[x]  # a byte (uint8), as Go indexes strings
            else:
                if x == len(item):
                    raise FuncError("reflect: slice index out of range")
                item = item[x]
        elif isinstance(item, dict) and not isinstance(item, Struct):
            if not isinstance(i, str):
                if i is MISSING or i is None:
                    raise FuncError("value is nil; should be of type string")
                raise FuncError(f"value has type {type_name(i)}; should be string")
            # a missing key gives the zero value of the map's element type
            item = item.get(i, "" if isinstance(item, StrMap) else MISSING)
        else:
            raise FuncError(f"can't index item of type {type_name(item)}")
    return item


def _slice(item: Any, *indexes: Any) -> Any:
    if item is MISSING or item is None:
        raise FuncError("slice of untyped nil")
    if len(indexes) > 3:
        raise FuncError(f"too many slice indexes: {len(indexes)}")
    if isinstance(item, str):
        if len(indexes) == 3:
            raise FuncError("cannot 3-index slice a string")
        seq: Any = item.encode()
    elif isinstance(item, list | tuple):
        seq = item
    else:
        raise FuncError(f"can't slice item of type {type_name(item)}")
    cap = len(seq)
    idx = [0, len(seq)]
    for i, x in enumerate(indexes):
        idx_i = _index_arg(x, cap)
        if i < 2:
            idx[i] = idx_i
        else:
            idx.append(idx_i)
    if idx[0] > idx[1]:
        raise FuncError(f"invalid slice index: {idx[0]} > {idx[1]}")
    if len(idx) == 3 and idx[1] > idx[2]:
        raise FuncError(f"invalid slice index: {idx[1]} > {idx[2]}")
    out = seq[idx[0] : idx[1]]
    return out.decode(errors="replace") if isinstance(item, str) else list(out)


def _len(item: Any) -> int:
    if item is MISSING:
        # Go 1.2x reports its own reflect panic for an untyped nil
        raise FuncError("reflect: call of reflect.Value.Type on zero Value")
    if item is None or isinstance(item, NilPtr):
        raise FuncError("len of nil pointer")
    if isinstance(item, str | list | tuple | dict) and not isinstance(item, Struct):
        return go_len(item)
    raise FuncError(f"len of type {type_name(item)}")


# -- print, printf, println (fmt) -------------------------------------------------------------


def _sprint(*args: Any) -> str:
    # fmt.Sprint: a space between operands when neither is a string
    out = []
    for i, a in enumerate(args):
        if i > 0 and not isinstance(a, str) and not isinstance(args[i - 1], str):
            out.append(" ")
        out.append(sprint_v(a, top=False))
    return "".join(out)


def _sprintln(*args: Any) -> str:
    return " ".join(sprint_v(a, top=False) for a in args) + "\n"


_SPEC = re.compile(r"%([-+# 0]*)(\[\d+\])?(\*|\d+)?(?:\.(\[\d+\])?(\*|\d*))?(\[\d+\])?(.|$)", re.S)


def sprintf(fmt: str, *args: Any) -> str:
    """fmt.Sprintf for the verbs templates use: v +v #v T t s q d b o x X c U e E f F g G %."""
    out: list[str] = []
    argi = 0
    reordered = False
    pos = 0
    while True:
        j = fmt.find("%", pos)
        if j < 0:
            out.append(fmt[pos:])
            break
        out.append(fmt[pos:j])
        m = _SPEC.match(fmt, j)
        assert m is not None
        flags, idx1, width, pidx, prec, idx2, verb = m.groups()
        pos = m.end()
        if verb == "":
            out.append("%!(NOVERB)")
            break
        if verb == "%":
            out.append("%")
            continue
        for idx in (idx1,):
            if idx:
                argi = int(idx[1:-1]) - 1
                reordered = True
        w: int | None = None
        if width == "*":
            if argi < len(args) and isinstance(args[argi], int):
                w = args[argi]
            else:
                out.append("%!(BADWIDTH)")
            argi += 1
        elif width:
            w = int(width)
        p: int | None = None
        if prec is not None:
            if pidx:
                argi = int(pidx[1:-1]) - 1
                reordered = True
            if prec == "*":
                if argi < len(args) and isinstance(args[argi], int):
                    p = args[argi]
                else:
                    out.append("%!(BADPREC)")
                argi += 1
            else:
                p = int(prec or 0)
        if idx2:
            argi = int(idx2[1:-1]) - 1
            reordered = True
        if argi >= len(args) or argi < 0:
            out.append(f"%!{verb}(MISSING)")
            continue
        out.append(_fmt_one(args[argi], verb, flags, w, p))
        argi += 1
    if not reordered and argi < len(args):
        extra = ", ".join(
            "<nil>" if a is None or a is MISSING else f"{type_name(a)}={sprint_v(a, top=False)}"
            for a in args[argi:]
        )
        out.append(f"%!(EXTRA {extra})")
    return "".join(out)


def _pad(s: str, flags: str, w: int | None, zero_ok: bool = False) -> str:
    if w is None or len(s) >= w:
        return s
    if "-" in flags:
        return s + " " * (w - len(s))
    if "0" in flags and zero_ok:
        sign = s[0] if s[:1] in "+-" else ""
        return sign + "0" * (w - len(s)) + s[len(sign) :]
    return " " * (w - len(s)) + s


def _bad(verb: str, v: Any) -> str:
    if v is None or v is MISSING:
        return f"%!{verb}(<nil>)"
    return f"%!{verb}({type_name(v)}={sprint_v(v, top=False)})"


def _fmt_one(v: Any, verb: str, flags: str, w: int | None, p: int | None) -> str:
    if verb == "T":
        return _pad("<nil>" if v is None or v is MISSING else type_name(v), flags, w)
    if verb == "v":
        if isinstance(v, float):
            return _fmt_one(v, "g", flags, w, p)
        if isinstance(v, int) and not isinstance(v, bool):
            return _fmt_one(v, "d", flags, w, p)
        if "#" in flags:
            s = go_quote(v) if isinstance(v, str) else sprint_v(v, True, False)
        else:
            s = sprint_v(v, "+" in flags, False)
        return _pad(s, flags, w)
    if isinstance(v, list | tuple) and verb in "sqdxXobeEfFgGc":
        # fmt applies the verb to each element of a slice
        return _pad("[" + " ".join(_fmt_one(x, verb, flags, None, p) for x in v) + "]", flags, w)
    if v is None or v is MISSING or isinstance(v, NilPtr):
        return _bad(verb, None)
    if isinstance(v, bool):
        return _pad("true" if v else "false", flags, w) if verb == "t" else _bad(verb, v)
    if isinstance(v, int):
        return _fmt_int(v, verb, flags, w, p)
    if isinstance(v, float):
        return _fmt_float(v, verb, flags, w, p)
    if isinstance(v, str):
        return _fmt_str(v, verb, flags, w, p)
    if verb in "sq" and isinstance(v, dict | Struct):
        return _pad(sprint_v(v, "+" in flags, False), flags, w)
    return _bad(verb, v)


def _fmt_int(v: int, verb: str, flags: str, w: int | None, p: int | None) -> str:
    sign = "-" if v < 0 else ("+" if "+" in flags else (" " if " " in flags else ""))
    a = abs(v)
    if verb == "d":
        digits = str(a)
    elif verb == "b":
        digits = format(a, "b")
    elif verb in "oO":
        digits = format(a, "o")
        if verb == "O":
            digits = "0o" + digits
        elif "#" in flags:
            digits = "0" + digits
    elif verb in "xX":
        digits = format(a, verb)
        if "#" in flags:
            digits = "0" + verb + digits
    elif verb == "c":
        return _pad(chr(v), flags, w)
    elif verb == "q":
        return _pad("'" + go_quote(chr(v))[1:-1].replace("'", "\\'").replace('\\"', '"') + "'",
                    flags, w)  # fmt: skip
    elif verb == "U":
        return _pad(f"U+{v:04X}", flags, w)
    elif verb in "eEfFgG":
        return _bad(verb, v)
    else:
        return _bad(verb, v)
    if p is not None and len(digits) < p:
        digits = "0" * (p - len(digits)) + digits
    return _pad(sign + digits, flags, w, zero_ok=p is None)


def _fmt_float(v: float, verb: str, flags: str, w: int | None, p: int | None) -> str:
    if verb not in "eEfFgG":
        return _bad(verb, v)
    low = verb.lower()
    if low == "f":
        s = format_float(v, "f", 6 if p is None else p)
    elif low == "e":
        s = format_float(v, "e", 6 if p is None else p)
    else:
        s = format_float(v, "g", -1 if p is None else p)
    if verb.isupper():
        s = s.upper()
    if "+" in flags and not s.startswith("-"):
        s = "+" + s
    return _pad(s, flags, w, zero_ok=True)


def _fmt_str(v: str, verb: str, flags: str, w: int | None, p: int | None) -> str:
    if p is not None:
        v = v[:p]
    if verb == "s":
        return _pad(v, flags, w)
    if verb == "q":
        if "#" in flags and "`" not in v and all(c.isprintable() or c == "\t" for c in v):
            return _pad("`" + v + "`", flags, w)
        q = go_quote(v)
        if "+" in flags:  # ASCII only: \u00e9, as strconv.QuoteToASCII
            q = "".join(c if c.isascii() else (f"\\u{ord(c):04x}" if ord(c) < 0x10000
                        else f"\\U{ord(c):08x}") for c in q)  # fmt: skip
        return _pad(q, flags, w)
    if verb in "xX":
        sep = " " if " " in flags else ""
        pre = ("0" + verb) if "#" in flags else ""
        return _pad(sep.join(pre + format(b, "02" + verb.lower() if verb == "x" else "02X")
                             for b in v.encode()), flags, w)  # fmt: skip
    return _bad(verb, v)


# -- Docker's functions (docker/cli templates/templates.go) ----------------------------------


def _split(s: str, sep: str) -> list[str]:
    if sep == "":
        return list(s)  # strings.Split with "" splits after each UTF-8 sequence
    return s.split(sep)


def _is_separator(ch: str) -> bool:
    # strings.Title's isSeparator: ASCII other than letters, digits and _; Unicode spaces
    if ch.isascii():
        return not (ch.isalnum() or ch == "_")
    return not ch.isalnum() and ch.isspace()


def _title(s: str) -> str:
    # strings.Title: upper-case the letter that starts each word
    out, prev = [], " "
    for ch in s:
        out.append(ch.upper() if _is_separator(prev) else ch)
        prev = ch
    return "".join(out)


def _pad_space(s: str, prefix: int, suffix: int) -> str:
    # padWithSpace: an empty string stays empty
    return s if s == "" else " " * prefix + s + " " * suffix


def _truncate(s: str, n: int) -> str:
    b = s.encode()
    return s if len(b) < n else b[:n].decode(errors="ignore")


def _ident(v: Any, *_rest: Any) -> Any:
    return v


def _call(fn: Any, *args: Any) -> Any:
    if fn is MISSING or fn is None:
        raise FuncError("call of nil")
    if not callable(fn):
        raise FuncError(f"non-function of type {type_name(fn)}")
    return fn(*args)


BUILTINS: dict[str, Func] = {
    "and": Func(_ident, ("value",), "value"),
    "or": Func(_ident, ("value",), "value"),
    "not": Func(_not, ("value",)),
    "eq": Func(_eq, ("value",), "value"),
    "ne": Func(_ne, ("value", "value")),
    "lt": Func(_lt, ("value", "value")),
    "le": Func(_le, ("value", "value")),
    "gt": Func(_gt, ("value", "value")),
    "ge": Func(_ge, ("value", "value")),
    "index": Func(_index, ("value",), "value"),
    "slice": Func(_slice, ("value",), "value"),
    "len": Func(_len, ("value",)),
    "print": Func(_sprint, (), "any"),
    "printf": Func(sprintf, ("string",), "any"),
    "println": Func(_sprintln, (), "any"),
    "call": Func(_call, ("value",), "value"),
}

DOCKER: dict[str, Func] = {
    "json": Func(to_json, ("any",)),
    "split": Func(_split, ("string", "string")),
    "join": Func(lambda items, sep: sep.join(items), ("[]string", "string")),
    "title": Func(_title, ("string",)),
    "lower": Func(str.lower, ("string",)),
    "upper": Func(str.upper, ("string",)),
    "pad": Func(_pad_space, ("string", "int", "int")),
    "truncate": Func(_truncate, ("string", "int")),
}

#: templates.HeaderFunctions: a table's header row keeps the column titles intact
HEADER: dict[str, Func] = {
    "json": Func(_ident, ("string",)),
    "split": Func(_ident, ("string", "string")),
    "join": Func(_ident, ("string", "string")),
    "title": Func(_ident, ("string",)),
    "lower": Func(_ident, ("string",)),
    "upper": Func(_ident, ("string",)),
    "truncate": Func(_ident, ("string", "int")),
}
