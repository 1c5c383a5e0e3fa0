"""``bench fs-speed`` end to end with small files (no timed assertions)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = str(Path(sys.executable).parent / "bench")

pytestmark = pytest.mark.skipif(not os.path.exists("/dev/fuse"), reason="no /dev/fuse")


def test_fs_speed_smoke(bench_dirs, scratch):
    _root, work = bench_dirs
    out, md = scratch / "f.json", scratch / "f.md"
    res = subprocess.run(
        [BENCH, "fs-speed", "--runs", "1", "--read-mib", "4", "--copy-mib", "2",
         "--workdir", str(work), "--json", str(out), "--markdown", str(md)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr[-2000:]
    doc = json.loads(out.read_text())
    assert doc["schema"] == "pydock-bench/fs-speed"
    assert doc["config"]["files"] == 20000
    got = {(r["storage"], r["operation"]) for r in doc["results"]}
    for storage in ["kernel overlay", "fuse-union", *doc["config"]["storages"]]:
        for op in ("seq read", "copy-up", "find+stat cold mount", "find+stat warm"):
            assert (storage, op) in got
    assert all(len(r["samples_ns"]) == 1 and r["samples_ns"][0] > 0 for r in doc["results"])
    assert "| seq read |" in md.read_text()
    assert not list((work / "fs-speed").glob("fuse-union/*"))  # mounts and uppers gone
