"""Phase timestamps of one ``pydock`` process, for the bench harness's start-latency breakdown.

Set ``PYDOCK_TRACE=<file>`` and every pydock process that reaches :func:`mark` appends one
JSON line to that file when it exits::

    {"v": 1, "pid": 123, "clock": "CLOCK_MONOTONIC", "starttime_ticks": 4242, "clk_tck": 100,
     "marks": [["imports", 5000], ["cmd_run", 9000], ...]}

Mark times are ``time.perf_counter_ns()``, which is CLOCK_MONOTONIC on Linux and therefore
comparable with the clock of the process that spawned pydock (the harness takes its own
timestamp just before the spawn). ``starttime_ticks`` is field 22 of /proc/self/stat
(proc(5): clock ticks after boot at which the process started), a coarse second reference
for callers that did not record the spawn themselves.

Unset, the cost is one ``os.environ`` lookup at import and one global test per mark: the
start path must not pay for being measured. Stdlib only.
"""

from __future__ import annotations

import os
import time

_FILE = os.environ.get("PYDOCK_TRACE")
_marks: list[tuple[str, int]] | None = [("imports", time.perf_counter_ns())] if _FILE else None


def flush() -> None:
    """Append this process's marks as one line to the trace file (once; atexit does it)."""
    global _marks
    if _marks is None or not _FILE:
        return
    import json

    marks, _marks = _marks, None
    marks.append(("exit", time.perf_counter_ns()))
    try:
        with open("/proc/self/stat", "rb") as f:
            stat = f.read()
        starttime = int(stat[stat.rindex(b")") + 2 :].split()[19])
    except (OSError, ValueError, IndexError):
        starttime = None
    line = {
        "v": 1,
        "pid": os.getpid(),
        "clock": "CLOCK_MONOTONIC",
        "starttime_ticks": starttime,
        "clk_tck": os.sysconf("SC_CLK_TCK"),
        "marks": marks,
    }
    # One write(2) of one line with O_APPEND: lines of concurrent processes never mix.
    fd = os.open(_FILE, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        os.write(fd, (json.dumps(line) + "\n").encode())
    finally:
        os.close(fd)


def begin(file: str | None, marks: list[tuple[str, int]] | None = None) -> None:
    """Trace to ``file`` from here on, starting with ``marks`` (None: stop tracing).

    A start worker (engine/starter.py) serves a ``run`` for a client process: it traces
    with the client's PYDOCK_TRACE and the client's own marks, and flushes explicitly.
    """
    global _FILE, _marks
    _FILE = file or None
    _marks = list(marks or []) if _FILE else None


if _FILE:
    import atexit

    atexit.register(flush)


def mark(name: str) -> None:
    """Record that the run path reached ``name`` (a no-op unless PYDOCK_TRACE is set)."""
    if _marks is not None:
        _marks.append((name, time.perf_counter_ns()))
