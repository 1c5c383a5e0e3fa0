"""Freezer and kill on real cgroups: the unified cgroup.freeze/cgroup.kill of this hybrid
host, and the v1 freezer path (a layout without the unified mount)."""

from __future__ import annotations

import contextlib
import os
import select
import signal
import time
from pathlib import Path

import pytest
from pydock.cgroupfs import Layout

# Writes a byte every 10 ms: progress is visible from outside, so "frozen" is observable.
TICKER = "import os, time\nwhile True:\n    os.write(1, b'.')\n    time.sleep(0.01)\n"


def ticks(child, window: float) -> int:
    """Bytes the child wrote during ``window`` seconds (after draining what was there)."""
    fd = child.proc.stdout.fileno()
    os.set_blocking(fd, False)
    n = 0
    end = time.monotonic() + window
    while (left := end - time.monotonic()) > 0:
        if select.select([fd], [], [], left)[0]:
            with contextlib.suppress(BlockingIOError):
                n += len(os.read(fd, 65536))
    return n


def state(pid: int) -> str:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat[stat.rindex(")") + 2]


def gone(pid: int, timeout: float = 5) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            if state(pid) in "ZX":
                return True
        except (FileNotFoundError, ProcessLookupError):
            return True  # reaped between the open and the read of its stat: ESRCH
        time.sleep(0.01)
    return False


@pytest.mark.parametrize("which", ["unified", "v1"])
def test_freeze_and_thaw(which, hybrid: Layout, v1_only: Layout, make_cgroup, spawn):
    cg = make_cgroup(layout=hybrid if which == "unified" else v1_only)
    child = spawn(TICKER)
    cg.attach(child.pid)
    child.go()
    assert ticks(child, 0.2) > 0
    assert not cg.frozen()
    cg.freeze()
    assert cg.frozen()
    if which == "unified":
        assert "frozen 1" in Path(f"{cg.paths['unified']}/cgroup.events").read_text()
        assert Path(f"{cg.paths['unified']}/cgroup.freeze").read_text().strip() == "1"
    else:
        assert Path(f"{cg.paths['freezer']}/freezer.state").read_text().strip() == "FROZEN"
    ticks(child, 0.05)  # drain what was written before the freeze took hold
    assert ticks(child, 0.3) == 0
    # A frozen task is not running: the kernel shows it sleeping (v2 signal-trap freezer)
    # or in the freezer (v1, uninterruptible).
    assert state(child.pid) in ("S", "D")
    cg.thaw()
    assert not cg.frozen()
    assert ticks(child, 0.3) > 0


# Starts a grandchild in its own session, prints its pid, then both wait forever.
PARENT_OF_TICKER = (
    "import os, signal\n"
    "pid = os.fork()\n"
    "if pid == 0:\n"
    "    os.setsid()\n"
    "    while True:\n"
    "        signal.pause()\n"
    "print(pid, flush=True)\n"
    "while True:\n"
    "    signal.pause()\n"
)


@pytest.mark.parametrize(
    "which,sig",
    [("unified", signal.SIGKILL), ("unified", signal.SIGTERM), ("v1", signal.SIGKILL)],
)
def test_kill_reaches_grandchildren(which, sig, hybrid, v1_only, make_cgroup, spawn):
    cg = make_cgroup(layout=hybrid if which == "unified" else v1_only)
    child = spawn(PARENT_OF_TICKER)
    cg.attach(child.pid)
    child.go()
    grandchild = int(child.line())
    assert sorted(cg.procs()) == sorted([child.pid, grandchild])
    cg.kill(sig)
    assert child.wait(10) == -sig
    # The grandchild was reparented (setsid'd, never waited on by the test): it is gone or
    # a zombie about to be reaped by init.
    assert gone(grandchild)
    assert not cg.frozen()
    cg.destroy()
    assert not cg.exists()
