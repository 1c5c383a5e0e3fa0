"""The ``bench`` console script end to end, with small numbers (no timed assertions)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = str(Path(sys.executable).parent / "bench")


def bench(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    res = subprocess.run([BENCH, *args], capture_output=True, text=True, timeout=timeout)
    assert res.returncode == 0, res.stderr[-2000:]
    return res


def test_start_latency_smoke(bench_dirs, scratch):
    root, work = bench_dirs
    out_json, out_md = scratch / "s.json", scratch / "s.md"
    res = bench("start-latency", "--runs", "3", "--warmup", "1", "--drivers", "vfs,overlay2",
                "--peers", "runc", "--root", str(root), "--workdir", str(work),
                "--json", str(out_json), "--markdown", str(out_md))  # fmt: skip
    assert "round" in res.stderr  # progress on stderr
    doc = json.loads(out_json.read_text())
    assert doc["schema"] == "pydock-bench/start-latency" and doc["schema_version"] == 1
    cold = "pydock/vfs (no start pool)"
    assert set(doc["targets"]) == {"pydock/vfs", "pydock/overlay2", cold, "runc"}
    assert doc["config"]["start_pool"] == 2
    for name in ("pydock/vfs", "pydock/overlay2", cold):
        t = doc["targets"][name]
        assert t["status"] == "ok", t["reason"]
        assert len(t["samples_ns"]) == 3 and len(t["phases_ns"]) == 3
        assert "namespaces + pivot_root + exec" in t["phase_median_ms"]
        # the phases of each run add up to its end-to-end time
        for total, ph in zip(t["samples_ns"], t["phases_ns"], strict=True):
            assert sum(ph.values()) == total
    runc = doc["targets"]["runc"]
    assert runc["status"] == "ok", runc["reason"]
    assert runc["version"].startswith("runc version")
    assert doc["order"] == ["pydock/vfs", "pydock/overlay2", cold, "runc"] * 3
    assert set(doc["ratios"]["pydock/vfs"]) == {"runc"}
    # Pooled runs were served by start workers (their trace has the hand-off; the first
    # warm-up run fills the pool), the cold ones never; the bench stopped the workers.
    handoff = "hand-off to a start worker"
    assert any(handoff in ph for ph in doc["targets"]["pydock/vfs"]["phases_ns"])
    assert not any(handoff in ph for ph in doc["targets"][cold]["phases_ns"])
    assert not list((root / "starters").glob("*.sock"))
    md = out_md.read_text()
    assert "| `pydock/overlay2` |" in md and "Machine: " in md and "phase" in md


def test_copy_up_smoke(bench_dirs, scratch):
    root, work = bench_dirs
    out = scratch / "c.json"
    bench("copy-up", "--runs", "1", "--no-cold", "--drivers", "overlay2,vfs",
          "--root", str(root), "--workdir", str(work), "--json", str(out))  # fmt: skip
    doc = json.loads(out.read_text())
    assert doc["schema"] == "pydock-bench/copy-up"
    storages = {r["storage"] for r in doc["results"]}
    assert {"overlay2", "vfs"} <= storages
    ops = {(r["storage"], r["operation"], r["size"]) for r in doc["results"]}
    assert ("vfs", "append 1 B", "64 MiB") in ops and (
        "overlay2",
        "rename dir",
        "1000 files",
    ) in ops
    assert all(r["cache"] == "warm" for r in doc["results"])


@pytest.mark.parametrize("driver", ["overlay2", "vfs"])
def test_layer_sharing_smoke(bench_dirs, scratch, driver):
    root, work = bench_dirs
    out = scratch / "l.json"
    bench("layer-sharing", "--counts", "2", "--file-mib", "4", "--drivers", driver,
          "--root", str(root), "--workdir", str(work), "--json", str(out))  # fmt: skip
    (r,) = json.loads(out.read_text())["results"]
    assert r["containers"] == 2 and len(r["disk_bytes"]) == 2 and len(r["create_ns"]) == 2
    assert r["page_cache_total"] is not None
    if driver == "vfs":  # each container holds its own copy of the file
        assert min(r["disk_bytes"]) >= 4 << 20


def test_pull_smoke(bench_dirs, scratch):
    root, work = bench_dirs
    out_json, out_md = scratch / "p.json", scratch / "p.md"
    bench("pull", "--runs", "1", "--layers", "3", "--layer-mib", "1", "--drivers", "vfs",
          "--peers", "", "--root", str(root), "--workdir", str(work),
          "--json", str(out_json), "--markdown", str(out_md))  # fmt: skip
    doc = json.loads(out_json.read_text())
    assert doc["schema"] == "pydock-bench/pull" and doc["config"]["layers"] == 3
    t = doc["targets"]["pydock/vfs"]
    assert t["status"] == "ok", t["reason"]
    assert len(t["cold"]["samples_ns"]) == 1 and len(t["warm"]["samples_ns"]) == 1
    assert doc["image"]["compressed_bytes"] > 3 * 1_000_000  # pattern data does not shrink
    assert "| `pydock/vfs` | ok |" in out_md.read_text()
