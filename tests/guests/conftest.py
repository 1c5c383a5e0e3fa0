"""The host's own row of the README's table of tested hosts (dev/hosts-table.py): this
session's kernel, cgroup mode and the counts of its tests, the guests' excepted (they write
their own rows, tests/guests/test_guests.py)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

SCRATCH = Path(os.environ.get("PYDOCK_TEST_SCRATCH", "/var/tmp/pydock-tests"))  # conftest's


@pytest.hookimpl(trylast=True)
def pytest_terminal_summary(terminalreporter, exitstatus: int) -> None:  # noqa: ANN001
    from pydock.cgroupfs import detect

    counts = {"passed": 0, "failed": 0, "error": 0, "skipped": 0}
    for key in counts:
        for rep in terminalreporter.stats.get(key, []):
            if "tests/guests/" not in getattr(rep, "nodeid", "tests/guests/"):
                counts[key] += 1
    if not any(counts.values()):
        return  # only the guests ran
    mode = detect().mode
    row = {
        "kernel": os.uname().release,
        "cgroup": {"hybrid": "hybrid (v1 controllers, empty unified)"}.get(mode, mode),
        "where": "this development host, Debian 12 userland",
        **counts,
    }
    out = SCRATCH / "hosts"
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{row['kernel']}.json").write_text(json.dumps(row) + "\n")
