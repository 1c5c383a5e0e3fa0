"""Fixtures for the real-cgroup tests: pdtest cgroups under the test process's own cgroup,
and child processes that wait at a gate until the test has put them into a cgroup.

Everything made here is removed in teardown: children are killed by PID and reaped, cgroups
are destroyed (which also removes the intermediate directories they created).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator

import pytest
from pydock.cgroupfs import Cgroup, Layout, detect


class Child:
    """A Python child that runs ``code`` only after go(): attach it first, then let it run."""

    def __init__(self, code: str) -> None:
        gate = "import sys\nsys.stdin.readline()\n"
        self.proc = subprocess.Popen(
            [sys.executable, "-c", gate + code],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        self.pid = self.proc.pid

    def go(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(b"go\n")
        self.proc.stdin.flush()

    def line(self) -> str:
        assert self.proc.stdout is not None
        return self.proc.stdout.readline().decode().strip()

    def wait(self, timeout: float = 30) -> int:
        return self.proc.wait(timeout)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)
        for f in (self.proc.stdin, self.proc.stdout):
            if f is not None:
                f.close()


@pytest.fixture
def spawn(make_cgroup) -> Iterator[Callable[[str], Child]]:
    """Children, killed and reaped in teardown before the cgroups (hence the dependency)."""
    children: list[Child] = []

    def make(code: str) -> Child:
        c = Child(code)
        children.append(c)
        return c

    yield make
    for c in children:
        c.stop()


def pdtest_name() -> str:
    return f"pdtest-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def name() -> str:
    """A fresh cgroup name the session leak check recognises."""
    return pdtest_name()


@pytest.fixture
def make_cgroup() -> Iterator[Callable[..., Cgroup]]:
    """Factory of created Cgroups (relative paths by default), destroyed in teardown."""
    made: list[Cgroup] = []

    def make(path: str | None = None, layout: Layout | None = None, create: bool = True):
        cg = Cgroup(path or f"{pdtest_name()}/c", layout)
        made.append(cg)
        if create:
            cg.create()
        return cg

    yield make
    for cg in reversed(made):
        # spawn depends on this fixture, so its children are already killed and reaped.
        cg.destroy(timeout=10)


@pytest.fixture(scope="session")
def hybrid() -> Layout:
    lay = detect()
    if lay.mode != "hybrid":
        pytest.skip(f"these tests describe this hybrid host; this one is {lay.mode}")
    return lay


@pytest.fixture(scope="session")
def v2() -> Layout:
    """The layout of a pure cgroup v2 host: what the QEMU guests boot (tests/guests), with
    cpu, cpuset, io, memory and pids enabled in the root's cgroup.subtree_control."""
    lay = detect()
    if lay.mode != "v2":
        pytest.skip(
            f"these tests describe a pure cgroup v2 host (the guests); this one is {lay.mode}"
        )
    return lay


@pytest.fixture(scope="session")
def v1_only(hybrid: Layout) -> Layout:
    """The host's v1 hierarchies without the unified mount: exercises the v1 freezer and
    the freeze/signal/thaw kill path, which the unified mount would otherwise take over."""
    hier = {k: v for k, v in hybrid.hierarchies.items() if k != "unified"}
    roots = {k: v for k, v in hybrid.roots.items() if k != "unified"}
    return Layout(mode="v1", hierarchies=hier, roots=roots)
