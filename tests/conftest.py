"""Session-wide fixtures: root check, scratch store roots, and the leftover check.

Every test runs as root against the real kernel. At the end of the session the host must
look as it did at the start: a mount, pydock cgroup, network namespace or child process that
is still there fails the run (see tests/leaks.py).
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
# Python children of the tests (python -c ...) must import the installed pydock, not the
# checkout's pydock/ folder (which holds only the top package) from their working directory.
os.environ["PYTHONSAFEPATH"] = "1"

from leaks import Snapshot  # noqa: E402

# A scratch area on a disk filesystem (overlay cannot use tmpfs upper dirs with every
# kernel feature, and /tmp here is on the root ext4 anyway).
SCRATCH = Path(os.environ.get("PYDOCK_TEST_SCRATCH", "/var/tmp/pydock-tests"))

_before: Snapshot | None = None


def pytest_sessionstart(session: pytest.Session) -> None:
    global _before
    if os.geteuid() != 0:
        raise pytest.UsageError("pydock's tests run as root against the real kernel")
    SCRATCH.mkdir(parents=True, exist_ok=True)
    _before = Snapshot.take()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _before is None:
        return
    leaked = Snapshot.take().leaked_since(_before)
    if leaked:
        sys.stderr.write("\nLEFTOVERS after the test session (cleanup is broken):\n")
        for line in leaked:
            sys.stderr.write(f"  {line}\n")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture
def scratch() -> Iterator[Path]:
    """A fresh directory on disk, removed afterwards."""
    d = Path(tempfile.mkdtemp(prefix="t-", dir=SCRATCH))
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)
