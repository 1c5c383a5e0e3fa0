"""Go's ``path.Match`` for ``images --filter reference=PATTERN``.

Docker matches reference filters with distribution/reference's FamiliarMatch, which is
``path.Match`` on the familiar string (``busybox:latest``) and then on the familiar name
(``busybox``). ``path.Match`` is not a shell glob: ``*`` and ``?`` never match ``/``, so
``*:latest`` does not match ``127.0.0.1:5000/x:latest``; classes negate with ``^``, and a
``-`` or ``]`` inside a class must be escaped with ``\\``. A malformed pattern is an error
(Go's ErrBadPattern, "syntax error in pattern"), not a pattern that matches nothing.
"""

from __future__ import annotations

import functools
import re

from .errors import InvalidInput

BAD_PATTERN = "syntax error in pattern"


@functools.lru_cache(maxsize=64)
def _compile(pattern: str) -> re.Pattern[str]:
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "\\":
            if i + 1 >= n:
                raise InvalidInput(BAD_PATTERN)
            i += 1
            out.append(re.escape(pattern[i]))
        elif c == "[":
            cls, i = _char_class(pattern, i + 1)
            out.append(cls)
            continue
        else:
            out.append(re.escape(c))
        i += 1
    return re.compile("".join(out), re.DOTALL)


def _class_char(pattern: str, i: int) -> tuple[str, int]:
    """One (possibly escaped) character of a class; Go's getEsc rejects a bare - or ]."""
    if i >= len(pattern) or pattern[i] in "-]":
        raise InvalidInput(BAD_PATTERN)
    if pattern[i] == "\\":
        i += 1
        if i >= len(pattern):
            raise InvalidInput(BAD_PATTERN)
    return pattern[i], i + 1


def _char_class(pattern: str, i: int) -> tuple[str, int]:
    """``[...]`` from just after the ``[``: a regex for one character, and the index after
    the closing ``]``. Unlike ``*`` and ``?``, a class may match ``/`` (as in Go)."""
    negated = i < len(pattern) and pattern[i] == "^"
    if negated:
        i += 1
    ranges: list[str] = []
    count = 0
    while True:
        if i < len(pattern) and pattern[i] == "]" and count:
            i += 1
            break
        lo, i = _class_char(pattern, i)
        hi = lo
        if i < len(pattern) and pattern[i] == "-":
            hi, i = _class_char(pattern, i + 1)
        count += 1
        if lo <= hi:  # Go lets an inverted range stand; it just matches nothing
            ranges.append(f"{re.escape(lo)}-{re.escape(hi)}")
    if not ranges:
        return ("(?!)" if not negated else "."), i
    return "[" + ("^" if negated else "") + "".join(ranges) + "]", i


def match(pattern: str, name: str) -> bool:
    """Whether ``name`` matches ``pattern`` as a whole; InvalidInput if it is malformed."""
    return _compile(pattern).fullmatch(name) is not None


def familiar_match(pattern: str, reference: str, name: str) -> bool:
    """FamiliarMatch: the whole familiar reference, else its repository name alone."""
    return match(pattern, reference) or match(pattern, name)
