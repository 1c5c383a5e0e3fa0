"""Helpers shared by the test folders (imported as ``helpers``; tests/ is on sys.path)."""

from __future__ import annotations

import os
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


def no_mounts_under(path: Path) -> bool:
    prefix = os.fspath(path)
    with open("/proc/self/mountinfo") as f:
        return not any(line.split()[4].startswith(prefix) for line in f)
