"""``bench fs-speed``: union filesystems' own speed: kernel overlay, fuse-union, fuse-overlayfs.

The three serve the *same* lower directory (one tree on disk, so the lower page cache is
shared and equally warm for all) with a fresh upper and mount per run, and are measured
in one run of the harness:

* **seq read**: read a large lower file start to end with 1 MiB reads. The lower file is
  in the page cache (read once before), the mount is fresh, so this is the union
  filesystem's read path, not the disk;
* **copy-up**: append one byte to a lower file of 256 MiB (``--copy-mib``): overlay
  copies the whole file up first (Documentation/filesystems/overlayfs.rst,
  "Non-directories") and fsyncs it, and so does fuse-union; a sync after it, untimed,
  keeps its writeback out of the later runs;
* **find+stat warm / cold mount**: ``find -printf '%s'`` (one readdir per directory, one
  stat per name) over 20,000 lower files in 200 directories: once on the fresh mount
  ("cold mount": every name is looked up by the filesystem) and again right after
  ("warm": what the kernel's dentry/attribute caches keep).

The targets of issue #4 are ratios from this table: seq read at least fuse-overlayfs'
speed, copy-up within 1.2x kernel overlay, warm find+stat within 1.5x fuse-overlayfs.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import time
from pathlib import Path

from . import report, stats
from .runner import progress

MIB = 1 << 20
DIRS, FILES_PER_DIR = 200, 100


def build_lower(base: Path, read_mib: int, copy_mib: int) -> Path:
    """The shared lower tree (made once, kept under the workdir for later runs)."""
    lower = base / "lower"
    done = base / "lower.done"
    if done.exists() and done.read_text() == f"{read_mib} {copy_mib}\n":
        return lower
    shutil.rmtree(lower, ignore_errors=True)
    (lower / "tree").mkdir(parents=True)
    chunk = os.urandom(MIB)
    for name, mib in (("big", read_mib), ("copy", copy_mib)):
        with open(lower / name, "wb") as f:
            for _ in range(mib):
                f.write(chunk)
    for d in range(DIRS):
        sub = lower / "tree" / f"d{d:03}"
        sub.mkdir()
        for i in range(FILES_PER_DIR):
            (sub / f"f{i:03}").write_bytes(b"x" * (i % 7))
    os.sync()
    done.write_text(f"{read_mib} {copy_mib}\n")
    return lower


def _warm_file(path: Path) -> None:
    with open(path, "rb") as f:
        while f.read(MIB):
            pass


class Storage:
    """One union filesystem: ``mount`` a fresh upper over the lower, ``unmount`` it."""

    name = ""

    def __init__(self, lower: Path, base: Path) -> None:
        self.lower = str(lower)
        self.base = base / self.name
        self.n = 0

    def _dirs(self) -> tuple[str, str, str]:
        self.n += 1
        d = self.base / str(self.n)
        shutil.rmtree(d, ignore_errors=True)
        for sub in ("upper", "work", "merged"):
            (d / sub).mkdir(parents=True)
        return str(d / "upper"), str(d / "work"), str(d / "merged")

    def mount(self) -> str:
        raise NotImplementedError

    def unmount(self) -> None:
        raise NotImplementedError

    def cleanup(self) -> None:
        shutil.rmtree(self.base, ignore_errors=True)


class KernelOverlay(Storage):
    """Kernel overlayfs with the overlay2 driver's options."""

    name = "kernel overlay"

    def mount(self) -> str:
        from ..overlay import mount as mnt
        from ..overlay import probe

        upper, work, self.merged = self._dirs()
        method = mnt.FSCONFIG if mnt.lowerdir_plus_supported() else mnt.LEGACY
        options = [*probe.base_options(True), "redirect_dir=off", "metacopy=off"]
        mnt.mount_overlay(self.merged, [self.lower], upper, work, options=options, method=method)
        return self.merged

    def unmount(self) -> None:
        from ..overlay import mount as mnt

        mnt.unmount(self.merged)


class FuseUnion(Storage):
    name = "fuse-union"

    def mount(self) -> str:
        from ..fuse_union.driver import start_server

        upper, work, self.merged = self._dirs()
        self.proc = start_server(self.merged, [self.lower], upper, work)
        return self.merged

    def unmount(self) -> None:
        from ..fuse_union.driver import stop_server

        stop_server(self.proc, self.merged)


class FuseOverlayfs(Storage):
    name = "fuse-overlayfs"

    def __init__(self, lower: Path, base: Path) -> None:
        found = shutil.which("fuse-overlayfs")
        if not found:
            raise RuntimeError("fuse-overlayfs is not installed (Debian package fuse-overlayfs)")
        self.bin: str = found
        super().__init__(lower, base)

    def mount(self) -> str:
        upper, work, self.merged = self._dirs()
        opts = f"lowerdir={self.lower},upperdir={upper},workdir={work}"
        subprocess.run([self.bin, "-o", opts, self.merged], check=True, capture_output=True)
        return self.merged

    def unmount(self) -> None:
        subprocess.run(["fusermount3", "-u", self.merged], check=True, capture_output=True)


def _seq_read(merged: str) -> int:
    buf = bytearray(MIB)
    fd = os.open(os.path.join(merged, "big"), os.O_RDONLY)
    try:
        t0 = time.perf_counter_ns()
        while os.readv(fd, [buf]):
            pass
        return time.perf_counter_ns() - t0
    finally:
        os.close(fd)


def _copy_up(merged: str) -> int:
    t0 = time.perf_counter_ns()
    with open(os.path.join(merged, "copy"), "ab") as f:
        f.write(b"x")
    return time.perf_counter_ns() - t0


def _find(merged: str) -> int:
    t0 = time.perf_counter_ns()
    subprocess.run(
        ["find", os.path.join(merged, "tree"), "-printf", "%s\n"],
        check=True, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    return time.perf_counter_ns() - t0


OPS = ["seq read", "copy-up", "find+stat cold mount", "find+stat warm"]


def measure_reads(st: Storage, out: dict[str, list[int]]) -> None:
    lower = Path(st.lower)
    merged = st.mount()
    try:
        # re-warmed right before use, untimed: on a shared machine something may have
        # dropped the page cache since (another benchmark's cold runs do)
        _warm_file(lower / "big")
        out["seq read"].append(_seq_read(merged))
        out["find+stat cold mount"].append(_find(merged))
        out["find+stat warm"].append(_find(merged))
    finally:
        st.unmount()


def measure_copy_up(st: Storage, out: dict[str, list[int]]) -> None:
    merged = st.mount()
    try:
        _warm_file(Path(st.lower) / "copy")
        out["copy-up"].append(_copy_up(merged))
        # untimed: the copy's writeback must not slow the next storage's run down
        os.sync()
    finally:
        st.unmount()


def main(a: argparse.Namespace) -> int:
    base = Path(a.workdir) / "fs-speed"
    base.mkdir(parents=True, exist_ok=True)
    progress("fs-speed: preparing the lower tree ...")
    lower = build_lower(base, a.read_mib, a.copy_mib)
    _warm_file(lower / "big")
    _warm_file(lower / "copy")
    storages: list[Storage] = []
    skipped = {}
    for cls in (KernelOverlay, FuseUnion, FuseOverlayfs):
        try:
            storages.append(cls(lower, base))
        except Exception as e:  # noqa: BLE001 - the reason goes into the report
            skipped[cls.name] = str(e)
    samples: dict[str, dict[str, list[int]]] = {s.name: {op: [] for op in OPS} for s in storages}
    try:
        # interleaved, run by run, so a busy moment of the machine hits all of them alike;
        # the copy-ups after every read, whose FUSE page cache churn they would disturb
        for phase, fn in (("reads", measure_reads), ("copy-up", measure_copy_up)):
            for i in range(a.runs):
                for st in storages:
                    progress(f"fs-speed: {phase} {i + 1}/{a.runs} {st.name}")
                    fn(st, samples[st.name])
    finally:
        for st in storages:
            st.cleanup()
    progress("fs-speed: done")
    rows = [{"storage": name, "operation": op, "samples_ns": ns, "summary": stats.summarize(ns)}
            for name, per_op in samples.items() for op, ns in per_op.items()]  # fmt: skip
    doc = report.envelope("fs-speed", {"runs": a.runs, "read_mib": a.read_mib,
                                       "copy_mib": a.copy_mib, "files": DIRS * FILES_PER_DIR,
                                       "storages": [s.name for s in storages]})  # fmt: skip
    doc["skipped"] = skipped
    doc["results"] = rows
    return report.finish(doc, a, markdown, plot)


def _p50(doc: dict, storage: str, op: str) -> float | None:
    for r in doc["results"]:
        if r["storage"] == storage and r["operation"] == op and r["summary"]:
            return r["summary"]["p50_ms"]
    return None


def markdown(doc: dict) -> str:
    c = doc["config"]
    ops = OPS
    names = c["storages"]
    table = []
    for op in ops:
        row = [op]
        for n in names:
            v = _p50(doc, n, op)
            extra = ""
            if v and op == "seq read":
                extra = f" ({c['read_mib'] / (v / 1000):.0f} MiB/s)"
            row.append(report.fmt(v, 1) + extra)
        table.append(row)
    parts = [
        f"`bench fs-speed`: p50 of {c['runs']} runs, milliseconds, fresh upper and mount per"
        f" run; seq read of a {c['read_mib']} MiB lower file (page-cached lower, 1 MiB reads);"
        f" copy-up: 1-byte append to a {c['copy_mib']} MiB lower file;"
        f" find+stat over {c['files']} lower files.",
        "",
        report.md_table(["operation", *names], table),
    ]
    targets = [
        ("seq read: fuse-union / fuse-overlayfs <= 1", "seq read", "fuse-overlayfs", 1.0),
        ("copy-up: fuse-union / kernel <= 1.2", "copy-up", "kernel overlay", 1.2),
        ("find+stat warm: fuse-union / fuse-overlayfs <= 1.5", "find+stat warm", "fuse-overlayfs",
         1.5),
    ]  # fmt: skip
    lines = []
    for label, op, ref, limit in targets:
        fu, other = _p50(doc, "fuse-union", op), _p50(doc, ref, op)
        if fu and other:
            verdict = "met" if fu / other <= limit else "not met"
            lines.append(f"- {label}: {fu / other:.2f} ({verdict})")
    if lines:
        parts += ["", "Issue #4 targets:", *lines]
    return report.closing(parts, doc)


def plot(doc: dict, path: str) -> None:
    plt = report.pyplot()
    c = doc["config"]
    ops = OPS
    fig, ax = plt.subplots(figsize=(8, 5))
    width = 0.8 / max(1, len(c["storages"]))
    for i, name in enumerate(c["storages"]):
        vals = [_p50(doc, name, op) or 0 for op in ops]
        ax.bar([x + i * width for x in range(len(ops))], vals, width, label=name)
    ax.set_xticks([x + width * (len(c["storages"]) - 1) / 2 for x in range(len(ops))], ops)
    ax.set_ylabel("ms (p50)")
    ax.set_title("bench fs-speed: the same lower tree through three union filesystems")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
