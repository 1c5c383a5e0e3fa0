"""Helpers shared by the test folders (imported as ``helpers``; tests/ is on sys.path)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

VENV_BIN = Path(sys.executable).parent
PYDOCK = str(VENV_BIN / "pydock")


def run_pydock(
    root: Path, *args: str, input: bytes | None = None, timeout: float = 120, **kw
) -> subprocess.CompletedProcess:
    """Run the installed ``pydock`` console script against the store at ``root``.

    Tests never resolve an outside name: a run of an image that is not in the store pulls
    it from Docker Hub, as Docker's does (use ``--pull never`` or a registry on
    127.0.0.1). No outside name resolves on the machines the tests run on, so such a run
    fails its lookup and says so on stderr; that fails the test here, whatever it expected.
    """
    res = subprocess.run(
        [PYDOCK, "--root", str(root), *args],
        input=input,
        capture_output=True,
        timeout=timeout,
        **kw,
    )
    if isinstance(res.stderr, bytes) and OUTSIDE_LOOKUP.search(res.stderr):
        raise AssertionError(f"pydock {' '.join(args)} looked up an outside name: {res.stderr!r}")
    return res


#: what a failed lookup of a registry outside this machine looks like in pydock's errors
OUTSIDE_LOOKUP = re.compile(rb"lookup (?!127\.|localhost\b)[A-Za-z0-9.-]+\.[A-Za-z]{2,}")


def mounts_below(root: Path) -> list[str]:
    """Mount points at or below ``root`` from /proc/self/mountinfo, deepest first."""
    prefix = str(root).rstrip("/")
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            point = line.split()[4].replace("\\040", " ")
            if point == prefix or point.startswith(prefix + "/"):
                out.append(point)
    return sorted(out, key=len, reverse=True)


def no_mounts_under(path: Path) -> bool:
    return not mounts_below(path)


def cgroup_dir(pid: int, controller: str) -> Path:
    """The v1 directory of ``pid``'s cgroup in ``controller``'s hierarchy."""
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        _, ctrls, path = line.split(":", 2)
        if controller in ctrls.split(","):
            mount = "cpu,cpuacct" if controller in ("cpu", "cpuacct") else controller
            base = Path("/sys/fs/cgroup") / mount
            if not base.exists():
                base = Path("/sys/fs/cgroup") / controller
            return base / path.lstrip("/")
    raise AssertionError(f"{controller} not in /proc/{pid}/cgroup")
