"""``logs --since/--until`` values -> the json-file log's own time format, for comparing.

Docker takes three spellings (moby api/types/time.GetTimestamp): a Go duration counted back
from now ("10m", "1h30m", "1.5s"), a Unix timestamp with optional fraction ("1700000000.5"),
or an RFC 3339 date/time (a missing zone means local time, a missing time midnight). Each
becomes ``YYYY-MM-DDTHH:MM:SS.nnnnnnnnn`` in UTC, which orders like the log's own stamps.
"""

from __future__ import annotations

import datetime
import re
import time

from .errors import InvalidInput

_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")


def _stamp(seconds: float, nanos: int | None = None) -> str:
    whole = int(seconds // 1)
    ns = nanos if nanos is not None else int(round((seconds - whole) * 1e9))
    if ns >= 10**9:
        whole, ns = whole + 1, ns - 10**9
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)) + f".{ns:09d}"


def _duration(text: str) -> float | None:
    pos, total = 0, 0.0
    for m in _DURATION.finditer(text):
        if m.start() != pos:
            return None
        total += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    return total if pos == len(text) and text else None


def parse_bound(text: str | None, flag: str) -> str | None:
    if not text:
        return None
    dur = _duration(text)
    if dur is not None:
        return _stamp(time.time() - dur)
    if re.fullmatch(r"\d+(\.\d{1,9})?", text):
        whole, _, frac = text.partition(".")
        return _stamp(int(whole), int((frac or "0").ljust(9, "0")))
    try:
        iso = text.replace("Z", "+00:00").replace("z", "+00:00")
        frac = re.search(r"\.(\d+)", iso)
        nanos = int(frac.group(1)[:9].ljust(9, "0")) if frac else 0
        if frac:  # fromisoformat takes at most microseconds
            iso = iso[: frac.start()] + iso[frac.end() :]
        dt = datetime.datetime.fromisoformat(iso)
    except ValueError:
        raise InvalidInput(
            f"invalid value for --{flag}: {text!r} (a duration like 10m, a Unix time or "
            "an RFC 3339 date)"
        ) from None
    if dt.tzinfo is None:
        dt = dt.astimezone()  # local time, as Docker reads a zoneless value
    return _stamp(int(dt.timestamp()), nanos)
