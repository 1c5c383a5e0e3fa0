"""Go values as the template engine sees Python data, and how Go's fmt prints them.

Python data maps onto Go's kinds: ``str`` string, ``bool`` bool, ``int`` int, ``float``
float64, ``list``/``tuple`` a slice, ``dict`` a map with string keys, ``None`` a nil
interface (JSON's null), a callable a method or function. Two kinds of "nothing" stay
apart as in Go: ``MISSING`` is the invalid reflect.Value of a map key that is not there
(printed ``<no value>``), ``None`` is a nil value (printed ``<nil>`` by fmt).

``Struct`` is a Go struct: a fixed set of fields (absent ones read as their zero value),
methods, and a type name for error messages. ``NilPtr`` is a nil pointer to a struct.
``StrMap`` is a ``map[string]string`` (its missing keys index to "", not nil);
``NilSlice``/``NilMap`` print as ``[]``/``map[]`` but encode as JSON null, as Go's nil
slices and maps do.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator, Mapping
from decimal import Decimal
from typing import Any


class GoTemplateError(ValueError):
    """A template that did not parse or run; str() is Go's own message."""


class _Missing:
    __slots__ = ()

    def __repr__(self) -> str:
        return "<no value>"

    def __bool__(self) -> bool:
        return False


#: the invalid value: a missing map key or an unset variable (text/template's zero Value)
MISSING: Any = _Missing()


class NilSlice(list):
    """A Go nil slice: prints ``[]``, JSON ``null``."""


class NilMap(dict):
    """A Go nil map: prints ``map[]``, JSON ``null``."""


class StrMap(dict):
    """A ``map[string]string``: ``index`` of a missing key is "" (the element's zero)."""


class NilPtr:
    """A nil pointer to a struct type (``*types.Health``): ``<nil>``, fields are errors."""

    __slots__ = ("type_name",)

    def __init__(self, type_name: str) -> None:
        self.type_name = type_name

    def __repr__(self) -> str:
        return "<nil>"


class Struct(Mapping):
    """A Go struct (or pointer to one) over a dict of its present fields.

    ``fields``: the field names in declaration order with their zero values, the type
    of the struct in Go's terms; a field absent from ``data`` reads as its zero value, a
    name that is not a field is ``can't evaluate field X in type T``. ``methods``: callables
    that templates call with arguments (``{{.Label "k"}}``). ``for_json`` is what
    ``{{json .}}`` encodes (default: the present data).
    """

    __slots__ = ("type_name", "data", "zero", "methods", "json")

    def __init__(
        self,
        type_name: str,
        data: Mapping[str, Any],
        zero: Mapping[str, Any] | None = None,
        methods: Mapping[str, Callable[..., Any]] | None = None,
        json_value: Any = None,
    ) -> None:
        self.type_name = type_name
        self.data = data
        self.zero = zero if zero is not None else {k: "" for k in data}
        self.methods = methods or {}
        self.json = json_value

    def has_field(self, name: str) -> bool:
        return name in self.zero or name in self.data

    def field(self, name: str) -> Any:
        if name in self.data:
            return self.data[name]
        return self.zero[name]

    def __getitem__(self, key: str) -> Any:
        return self.field(key)

    def __iter__(self) -> Iterator[str]:
        return iter(self.zero if self.zero else self.data)

    def __len__(self) -> int:
        return len(self.zero)

    def for_json(self) -> Any:
        return self.json if self.json is not None else self.data


# -- type names and kinds ---------------------------------------------------------------------


def type_name(v: Any) -> str:
    """The Go type a value would have, for error messages."""
    if isinstance(v, Struct):
        return v.type_name
    if isinstance(v, NilPtr):
        return v.type_name
    if v is None:
        return "interface {}"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "int"
    if isinstance(v, float):
        return "float64"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list | tuple):
        return "[]string" if v and all(isinstance(x, str) for x in v) else "[]interface {}"
    if isinstance(v, StrMap):
        return "map[string]string"
    if isinstance(v, dict):
        return "map[string]interface {}"
    if callable(v):
        return "func"
    return type(v).__name__


def is_true(v: Any) -> tuple[bool, bool]:
    """exec.go isTrue: (truth, ok); structs are always true, nil and empty are false."""
    if v is MISSING or v is None:
        return False, True
    if isinstance(v, Struct):
        return True, True
    if isinstance(v, NilPtr):
        return False, True
    if isinstance(v, bool):
        return v, True
    if isinstance(v, int | float):
        return v != 0, True
    if isinstance(v, str | list | tuple | dict):
        return len(v) > 0, True
    if callable(v):
        return True, True
    return False, False


def go_len(v: Any) -> int:
    if isinstance(v, str):
        return len(v.encode())
    return len(v)


# -- fmt: %v and friends ----------------------------------------------------------------------


def format_float(f: float, verb: str = "g", prec: int = -1) -> str:
    """strconv.FormatFloat for 'g' (shortest with %v), 'e' and 'f'."""
    if math.isinf(f):
        return "+Inf" if f > 0 else "-Inf"
    if math.isnan(f):
        return "NaN"
    if verb == "f":
        if prec < 0:
            d = Decimal(repr(f))
            return format(d, "f") if d != d.to_integral() or "e" not in repr(f) else f"{f:.0f}"
        return f"{f:.{prec}f}"
    if verb == "e":
        if prec < 0:
            s = repr(f)
            digits, exp = _shortest(f)
            mant = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
            return ("-" if s.startswith("-") else "") + mant + _go_exp(exp)
        return _fix_exp(f"{f:.{prec}e}")
    # 'g'
    if prec >= 0:
        return _fix_exp(f"{f:.{prec or 1}g}")
    if f == 0:
        return "-0" if math.copysign(1, f) < 0 else "0"
    digits, exp = _shortest(f)
    sign = "-" if f < 0 else ""
    # strconv ftoa.go: %e is used if the exponent is < -4 or >= the precision, which is 6
    # for the shortest representation (fmt's %v is 'g' with precision -1)
    if exp < -4 or exp >= 6:
        mant = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return sign + mant + _go_exp(exp)
    if exp < 0:
        return sign + "0." + "0" * (-exp - 1) + digits
    if exp + 1 >= len(digits):
        return sign + digits + "0" * (exp + 1 - len(digits))
    return sign + digits[: exp + 1] + "." + digits[exp + 1 :]


def _shortest(f: float) -> tuple[str, int]:
    """Shortest round-trip decimal digits of |f| and the exponent of the first digit."""
    t = Decimal(repr(abs(f))).normalize().as_tuple()
    digits = "".join(map(str, t.digits))
    return digits, len(digits) - 1 + int(t.exponent)


def _go_exp(exp: int) -> str:
    return f"e{'-' if exp < 0 else '+'}{abs(exp):02d}"


def _fix_exp(s: str) -> str:
    return s  # Python's e+06 already matches Go's two-digit exponent


def sprint_v(v: Any, plus: bool = False, top: bool = True) -> str:
    """fmt's %v (``plus``: %+v) of a value."""
    if v is MISSING:
        return "<no value>" if top else "<nil>"
    if v is None:
        return "<nil>"
    if isinstance(v, NilPtr):
        return "<nil>"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        # fmt's %v of a float is %g with the shortest representation ('g', -1)
        return format_float(v)
    if isinstance(v, str):
        return v
    if isinstance(v, Struct):
        parts = []
        for k in v:
            val = sprint_v(v.field(k), plus, False)
            parts.append(f"{k}:{val}" if plus else val)
        return "{" + " ".join(parts) + "}"
    if isinstance(v, dict):
        items = sorted(v.items(), key=lambda kv: _sort_key(kv[0]))
        return (
            "map["
            + " ".join(f"{sprint_v(k, plus, False)}:{sprint_v(x, plus, False)}" for k, x in items)
            + "]"
        )
    if isinstance(v, list | tuple):
        return "[" + " ".join(sprint_v(x, plus, False) for x in v) + "]"
    if callable(v):
        return "0x0"  # a func value; Go prints its address
    return str(v)


def _sort_key(k: Any) -> tuple:
    # fmt sorts map keys (internal/fmtsort): numbers by value, strings lexically
    if isinstance(k, int | float):
        return (0, k, "")
    return (1, 0, str(k))


def print_value(v: Any) -> str:
    """What ``{{pipeline}}`` writes: exec.go printValue (invalid -> ``<no value>``)."""
    return sprint_v(v)


def to_json(v: Any) -> str:
    """Docker's ``json`` function: encoding/json with SetEscapeHTML(false), no newline."""
    return json.dumps(_jsonable(v), separators=(",", ":"), ensure_ascii=False)


def _jsonable(v: Any) -> Any:
    if v is MISSING or v is None or isinstance(v, NilPtr | NilSlice | NilMap):
        return None
    if isinstance(v, Struct):
        return _jsonable(v.for_json())
    if hasattr(v, "for_json"):
        return _jsonable(v.for_json())
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items() if not callable(x)}
    if isinstance(v, list | tuple):
        return [_jsonable(x) for x in v]
    if isinstance(v, float) and math.isfinite(v) and v == int(v) and abs(v) < 1e21:
        return int(v)  # encoding/json writes 1, not Python's 1.0
    return v
