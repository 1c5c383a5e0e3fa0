#!/usr/bin/env python3
"""Regenerates the README's table of the hosts pydock is tested on from a test run's rows.

`bash dev/test.sh` (the whole suite, guests included) leaves one JSON row per kernel in
$PYDOCK_TEST_SCRATCH/hosts/ (default /var/tmp/pydock-tests/hosts): the host's own, written by
tests/guests/conftest.py, and each guest's, by tests/guests/test_guests.py. This script puts
them between the README's hosts-table markers: `python3 dev/hosts-table.py [DIR]`.
"""

from __future__ import annotations

import json
import os
import sys
from datetime import date
from pathlib import Path

BEGIN, END = "<!-- hosts-table:begin -->", "<!-- hosts-table:end -->"
README = Path(__file__).resolve().parent.parent / "README.md"


def table(rows: list[dict]) -> str:
    lines = [
        "| kernel | cgroups | where | passed | failed | skipped |",
        "|---|---|---|---|---|---|",
    ]
    for r in sorted(rows, key=lambda r: [int(x) for x in r["kernel"].split("-")[0].split(".")[:2]]):
        failed = r["failed"] + r.get("error", 0)
        lines.append(
            f"| {r['kernel']} | {r['cgroup']} | {r['where']} | {r['passed']} | {failed} "
            f"| {r['skipped']} |"
        )
    return "\n".join(lines)


def main() -> int:
    default = Path(os.environ.get("PYDOCK_TEST_SCRATCH", "/var/tmp/pydock-tests")) / "hosts"
    src = Path(sys.argv[1]) if len(sys.argv) > 1 else default
    rows = [json.loads(p.read_text()) for p in sorted(src.glob("*.json"))]
    if not rows:
        print(f"hosts-table: no rows in {src} (run bash dev/test.sh first)", file=sys.stderr)
        return 1
    text = README.read_text()
    if BEGIN not in text or END not in text:
        print(f"hosts-table: {README} has no {BEGIN} ... {END} section", file=sys.stderr)
        return 1
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    body = f"\n{table(rows)}\n\nFrom the test run of {date.today().isoformat()} "
    body += "(`bash dev/test.sh`, then `python3 dev/hosts-table.py`).\n"
    README.write_text(head + BEGIN + body + END + tail)
    return 0


if __name__ == "__main__":
    sys.exit(main())
