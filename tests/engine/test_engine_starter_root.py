"""A served ``run`` with a relative store root (``--root`` or $PYDOCK_ROOT), as the
in-process CLI takes it: relative to the client's working directory.

The worker takes the client's cwd, but the container's init it prepared was forked from
"/": a path derived from a relative root (the network namespace the init joins) must
not reach it relative.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import test_engine_starter_teardown
from helpers import PYDOCK
from test_engine_starter import _wait_idle_worker

pooled_net = test_engine_starter_teardown.pooled_net  # own bridge, one start worker


def _served_from(cwd: Path, scratch: Path, args: list[str], env: dict) -> bytes:
    trace = scratch / f"trace-{time.monotonic_ns()}.jsonl"
    res = subprocess.run([PYDOCK, *args], capture_output=True, timeout=120, cwd=cwd,
                         env=dict(env, PYDOCK_TRACE=str(trace)))  # fmt: skip
    assert res.returncode == 0, res.stderr
    marks = [m[0] for m in json.loads(trace.read_text().splitlines()[-1])["marks"]]
    assert "handoff" in marks, marks  # a worker served it
    return res.stdout


def test_relative_root_on_a_bridge(pooled_net, scratch: Path) -> None:
    p, _ = pooled_net
    rel = os.path.relpath(p.root, scratch)
    run = ["-s", "overlay2", "run", "--rm", "busybox", "echo", "hi"]
    _wait_idle_worker(p.root)
    out = _served_from(scratch, scratch, ["--root", rel, *run], dict(os.environ))
    assert out == b"hi\n"
    _wait_idle_worker(p.root)
    out = _served_from(scratch, scratch, run, dict(os.environ, PYDOCK_ROOT=rel))
    assert out == b"hi\n"
