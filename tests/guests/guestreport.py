"""A pytest plugin the guests load (``-p guestreport``): one JSON line per test, with its
outcome and the text of what failed or why it skipped, for test_guests.py on the host.

Written as each test ends, so a guest that dies mid-run still reports what it finished.
"""

from __future__ import annotations

import json
import os

import pytest

_OUT = os.environ.get("PYDOCK_GUEST_REPORT", "/results/report.jsonl")
_seen: dict[str, dict] = {}


def _write(nodeid: str) -> None:
    with open(_OUT, "a") as f:
        f.write(json.dumps({"nodeid": nodeid, **_seen[nodeid]}) + "\n")


@pytest.hookimpl
def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    rec = _seen.setdefault(report.nodeid, {"outcome": "passed", "text": "", "seconds": 0.0})
    rec["seconds"] += report.duration
    if report.failed:
        # a failing setup or teardown is an error of the test, as pytest reports it
        rec["outcome"] = "failed" if report.when == "call" else "error"
        rec["text"] += f"[{report.when}] {report.longreprtext}\n"
    elif report.skipped and rec["outcome"] == "passed":
        rec["outcome"] = "skipped"
        longrepr = report.longrepr
        rec["text"] = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
    if report.when == "teardown":
        _write(report.nodeid)
