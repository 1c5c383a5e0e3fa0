"""PYDOCK_TRACE: one JSON line of run-path marks per ``pydock run``, nothing when unset."""

from __future__ import annotations

import json
import os

from helpers import run_pydock
from pydock.bench.phases import PHASES


def test_run_appends_one_line_of_ordered_marks(scratch):
    trace = scratch / "trace.jsonl"
    env = dict(os.environ, PYDOCK_TRACE=str(trace))
    for _ in range(2):
        res = run_pydock(scratch / "root", "--storage-driver=vfs", "run", "--rm",
                         "--network", "none", "busybox", "true", env=env)  # fmt: skip
        assert res.returncode == 0, res.stderr
    lines = trace.read_text().splitlines()
    assert len(lines) == 2
    rec = json.loads(lines[-1])
    assert rec["v"] == 1 and rec["clock"] == "CLOCK_MONOTONIC"
    assert isinstance(rec["starttime_ticks"], int) and rec["clk_tck"] > 0
    names = [m[0] for m in rec["marks"]]
    # an in-process run: no start worker, so no hand-off and no early answer
    assert names == [m for m in PHASES if m not in ("reaped", "handoff", "answered")]
    times = [m[1] for m in rec["marks"]]
    assert times == sorted(times)


def test_unset_writes_nothing(scratch):
    env = {k: v for k, v in os.environ.items() if k != "PYDOCK_TRACE"}
    res = run_pydock(scratch / "root", "--storage-driver=vfs", "run", "--rm", "busybox", "true",
                     env=env, cwd=scratch)  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert sorted(p.name for p in scratch.iterdir()) == ["root"]
