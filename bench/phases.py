"""pydock's own phase timestamps (PYDOCK_TRACE, see pydock.engine.trace) -> phase durations.

Each mark ends a phase; the first phase starts when the harness spawned pydock (its own
CLOCK_MONOTONIC timestamp, the clock pydock's marks use too) and the last one ends when the
harness reaped it. A mark missing from a trace (a refactored run path) folds its time into
the next mark that is present, so the phases always add up to the end-to-end latency.
"""

from __future__ import annotations

import json
from pathlib import Path

#: mark name -> the phase that ends at it, in run-path order
PHASES: dict[str, str] = {
    "imports": "interpreter start + first imports",
    "handoff": "hand-off to a start worker",
    "cmd_run": "pydock imports + CLI parse",
    "image": "lazy imports (monitor, spec, driver) + driver open + image resolve",
    "record": "container record + name",
    "layer": "layer create + mount",
    "created": "OCI spec + bundle write",
    "cgroup": "cgroup create",
    "exec": "namespaces + pivot_root + exec",
    "running": "state: running",
    "exited": "wait (container runs)",
    "answered": "record + name removal, answer (a start worker's teardown follows it)",
    "cgroup_removed": "cgroup teardown",
    "finished": "unmount + layer/record removal",
    "exit": "return through the CLI",
    "reaped": "interpreter exit + reap",
}


def read_last(path: Path) -> dict | None:
    """The last trace line in ``path`` (None if there is none or it is torn)."""
    try:
        lines = path.read_bytes().splitlines()
    except FileNotFoundError:
        return None
    for raw in reversed(lines):
        try:
            return json.loads(raw)
        except ValueError:
            continue
    return None


def durations(trace: dict, spawned_ns: int, reaped_ns: int) -> dict[str, int]:
    """Phase name -> nanoseconds, for one run, in run-path order."""
    marks = dict(trace.get("marks") or [])
    marks["reaped"] = reaped_ns
    out: dict[str, int] = {}
    prev = spawned_ns
    for mark, label in PHASES.items():
        t = marks.get(mark)
        if t is None or t < prev:
            continue
        out[label] = t - prev
        prev = t
    return out
