"""Every process pydock starts as root runs code only from pydock's installation.

A root user who runs ``pydock`` in a directory another user can write (``/tmp/x``), or with
a ``PYTHONPATH`` that names one, must not run that user's code through any process pydock
starts: the FUSE server of fuse-union, the container shim and its lean monitor, the exec
reaper. Each entry point is driven here with a trap in both places: a ``pydock/`` package
and a ``sitecustomize`` module that leave a marker file when imported.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import PYDOCK
from pdcli import Pydock

TRAP = "import os\nopen(os.path.join({marks!r}, 'PWNED-%d' % os.getpid()), 'w').close()\n"


class Trapped:
    """The ``pydock`` command run from a hostile working directory with a hostile
    ``PYTHONPATH``; ``marks()`` lists the processes that imported the trap."""

    def __init__(self, pd: Pydock, base: Path) -> None:
        self.pd = pd
        self.cwd = base / "cwd"
        self.path = base / "pythonpath"
        self.marks_dir = base / "marks"
        self.marks_dir.mkdir()
        trap = TRAP.format(marks=str(self.marks_dir))
        for top in (self.cwd, self.path):
            (top / "pydock").mkdir(parents=True)
            (top / "pydock" / "__init__.py").write_text(trap)
            (top / "sitecustomize.py").write_text(trap)
            (top / "usercustomize.py").write_text(trap)
        env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
        # without a start pool the CLI itself starts the shim and the FUSE servers
        env.update(PYTHONPATH=str(self.path), PYTHONSTARTUP=str(self.path / "sitecustomize.py"),
                   PYDOCK_NO_START_POOL="1")  # fmt: skip
        self.env = env

    def __call__(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        res = subprocess.run(
            [PYDOCK, "--root", str(self.pd.root), *self.pd._args(args)],
            capture_output=True, timeout=120, cwd=self.cwd, env=self.env,
        )  # fmt: skip
        if check:
            assert res.returncode == 0, (args, res.stderr.decode())
        return res

    def marks(self) -> list[str]:
        return sorted(os.listdir(self.marks_dir))


@pytest.fixture(params=["fuse-union", "overlay2"])
def trapped(request, scratch: Path) -> Iterator[Trapped]:
    pd = Pydock(scratch / "root", request.param)
    pd("image", "bootstrap", check=True)
    try:
        yield Trapped(pd, scratch)
    finally:
        pd.cleanup()


def test_the_trap_works(trapped: Trapped) -> None:
    # the trap is live: a plain python in that directory with that environment imports it
    subprocess.run(["python3", "-c", "import pydock"], cwd=trapped.cwd, env=trapped.env,
                   check=True, capture_output=True)  # fmt: skip
    assert trapped.marks(), "the trap was never imported: this test would prove nothing"


def test_run_rm(trapped: Trapped) -> None:
    res = trapped("run", "--rm", "busybox", "echo", "hi")
    assert res.stdout == b"hi\n"
    assert trapped.marks() == []


def test_run_detached_exec_cp_stop_start_restart(trapped: Trapped) -> None:
    cid = trapped("run", "-d", "busybox", "sleep", "600").stdout.decode().strip()
    assert trapped.marks() == [], "run -d"
    assert trapped("exec", cid, "echo", "in").stdout == b"in\n"
    assert trapped.marks() == [], "exec"
    trapped("exec", "-d", cid, "sleep", "1")  # a detached exec's reaper
    assert trapped.marks() == [], "exec -d"
    trapped("cp", f"{cid}:/etc/passwd", "hostname.out")
    assert (trapped.cwd / "hostname.out").exists()
    assert trapped.marks() == [], "cp out of a running container"
    trapped("stop", "-t", "1", cid)
    # the monitor of the stopped container re-executes itself to record the exit
    deadline = time.monotonic() + 10
    while trapped("inspect", "-f", "{{.State.Status}}", cid).stdout.strip() != b"exited":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert trapped.marks() == [], "stop"
    trapped("cp", f"{cid}:/etc/passwd", "hostname2.out")
    assert trapped.marks() == [], "cp out of a stopped container"
    trapped("start", cid)
    assert trapped.marks() == [], "start"
    trapped("restart", "-t", "1", cid)
    assert trapped.marks() == [], "restart"
    trapped("rm", "-f", cid)
    assert trapped.marks() == [], "rm -f"


def test_health_probes(trapped: Trapped) -> None:
    cid = trapped("run", "-d", "--health-cmd", "true", "--health-interval", "100ms",
                  "busybox", "sleep", "600").stdout.decode().strip()  # fmt: skip
    deadline = time.monotonic() + 20
    fmt = "{{.State.Health.Status}}"
    while trapped("inspect", "-f", fmt, cid).stdout.strip() != b"healthy":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert trapped.marks() == [], "the monitor's health probe"
    trapped("rm", "-f", cid)
