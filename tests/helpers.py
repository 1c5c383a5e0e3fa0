"""Helpers shared by the test folders (imported as ``helpers``; tests/ is on sys.path)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

VENV_BIN = Path(sys.executable).parent
PYDOCK = str(VENV_BIN / "pydock")


def run_pydock(
    root: Path, *args: str, input: bytes | None = None, timeout: float = 120, **kw
) -> subprocess.CompletedProcess:
    """Run the installed ``pydock`` console script against the store at ``root``."""
    return subprocess.run(
        [PYDOCK, "--root", str(root), *args],
        input=input,
        capture_output=True,
        timeout=timeout,
        **kw,
    )


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
