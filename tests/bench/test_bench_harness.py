"""The runner with real processes: interleaved order, missing and failing targets, the
report document's fields, and the peer cgroup parent's cleanup."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from pydock.bench import SCHEMA_VERSION, start_latency
from pydock.bench.hostcg import PeerCgroupParent
from pydock.bench.runner import measure, prepare
from pydock.bench.targets import OciRuntime, PythonFloor, Target


class Program(Target):
    """A target that runs a fixed program (a real process each time)."""

    def __init__(self, name: str, argv: list[str]) -> None:
        self.name = name
        self._argv = argv

    def argv(self, image=None) -> list[str]:
        return self._argv


def _args(**kw):
    import argparse

    base = dict(runs=2, warmup=1, drivers="", peers="python", network="none")
    base.update(kw)
    return argparse.Namespace(**base)


def test_measure_interleaves_after_warmup():
    a = Program("a", [sys.executable, "-c", "pass"])
    b = Program("b", ["/bin/true"])
    results = prepare([a, b])
    order = measure(results, runs=3, warmup=2)
    assert order == ["a", "b"] * 3
    assert len(results["a"].samples_ns) == 3 and len(results["b"].samples_ns) == 3
    assert all(ns > 0 for ns in results["a"].samples_ns)


def test_missing_peer_is_reported_with_its_reason(bench_dirs):
    root, work = bench_dirs
    ghost = OciRuntime("pdtest-no-such-runtime", root, "vfs", work)
    floor = PythonFloor()
    results = prepare([floor, ghost])
    measure(results, runs=2, warmup=0)
    r = results["pdtest-no-such-runtime"]
    assert r.status == "missing"
    assert "not installed" in r.reason and r.samples_ns == []
    doc = start_latency.to_doc(_args(), results, [])
    assert doc["targets"]["pdtest-no-such-runtime"]["status"] == "missing"
    md = start_latency.markdown(doc)
    assert "pdtest-no-such-runtime" in md and "not installed" in md


def test_failing_target_is_kept_with_the_error():
    bad = Program("bad", [sys.executable, "-c", "import sys; sys.exit('boom here')"])
    good = Program("good", ["/bin/true"])
    results = prepare([bad, good])
    order = measure(results, runs=2, warmup=1)
    assert results["bad"].status == "failed"
    assert "exit 1" in results["bad"].reason and "boom here" in results["bad"].reason
    assert order == ["good", "good"]


def test_report_fields(bench_dirs):
    results = prepare([PythonFloor()])
    order = measure(results, runs=2, warmup=0)
    doc = start_latency.to_doc(_args(), results, order)
    assert doc["schema"] == "pydock-bench/start-latency"
    assert doc["schema_version"] == SCHEMA_VERSION
    for key in ("cpu", "cores", "kernel", "os", "python", "pydock", "cgroups", "memory_bytes"):
        assert key in doc["machine"]
    assert doc["machine"]["kernel"] == os.uname().release
    t = doc["targets"]["python"]
    assert t["version"].startswith("Python ")
    assert len(t["samples_ns"]) == 2 and t["summary"]["n"] == 2
    assert doc["config"]["interleaved"] is True and doc["order"] == ["python", "python"]


def test_peer_cgroup_parent_removes_only_what_was_made():
    parent = PeerCgroupParent(f"pdtest-bench-{os.getpid()}")
    made = []
    for mnt in parent._mounts:
        d = Path(mnt + parent.path) / "child"
        d.mkdir(parents=True)
        made.append(d)
    assert parent.cleanup() == []
    for d in made:
        assert not d.parent.exists()
    # the caller's own cgroups are still there
    with open("/proc/self/cgroup") as f:
        own = [ln.rstrip("\n").split(":", 2)[2] for ln in f]
    for mnt in parent._mounts:
        assert any(os.path.isdir(mnt + p) for p in own)
