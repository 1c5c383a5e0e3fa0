"""A start worker's prepared container under a memory limit (engine/prestart.py ``take``).

The held init owns its pages ahead of its spec (nsutil/memory.py): several MB, charged to
the prepared cgroup when it took them after the worker moved it there. A ``--memory``
limit below that charge cannot be set on cgroup v1 (EBUSY) and would OOM-kill it on v2;
a served run must start under the limit as an in-process run does.
"""

from __future__ import annotations

from pathlib import Path

import test_engine_starter
from pdcli import Pydock
from test_engine_starter import _served

pooled = test_engine_starter.pooled  # a store with one start worker (and its leak checks)


def test_memory_limit_below_the_held_inits_pages(pooled: Pydock, scratch: Path) -> None:
    # Docker's smallest --memory; each run is served by the next worker of the line
    for _ in range(6):
        res = _served(pooled, scratch, "run", "--rm", "--network", "none", "--memory", "6m",
                      "busybox", "sh", "-c", "echo ok")  # fmt: skip
        assert (res.returncode, res.stdout) == (0, b"ok\n"), res.stderr
