"""``bench copy-up``: what the first change to a file of the image costs in a container.

For each storage (pydock's drivers, plus fuse-overlayfs over the same lower files when it is
installed) and each operation, a fresh container layer is made, the operation is timed
in-process, and the layer is removed:

* append 1 byte to a lower file of 4 KiB, 1 MiB, 64 MiB (and 1 GiB with --with-1g): the
  full data copy-up of overlayfs (Documentation/filesystems/overlayfs.rst, "Non-directories");
* chmod of the 64 MiB file: a metadata-only change, which still copies the data unless the
  mount has metacopy=on;
* rename of a lower directory holding 1,000 files: overlayfs without redirect_dir answers
  EXDEV (overlayfs.rst, "Renaming directories"), and like mv(1) the harness then copies and
  deletes, timing both.

"cold" runs drop the page cache first (sync; /proc/sys/vm/drop_caches = 3, see
Documentation/admin-guide/sysctl/vm.rst); "warm" runs read the lower data first.
"""

from __future__ import annotations

import argparse
import errno
import os
import secrets
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from . import report, stats
from .layerimg import ensure_image
from .runner import progress

KIB, MIB, GIB = 1 << 10, 1 << 20, 1 << 30
SIZES = {"4 KiB": 4 * KIB, "1 MiB": MIB, "64 MiB": 64 * MIB}
MANY = 1000


def drop_caches() -> None:
    os.sync()
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3")


def _warm(path: str) -> None:
    if os.path.isdir(path):
        for e in os.scandir(path):
            _warm(e.path)
        return
    with open(path, "rb") as f:
        while f.read(1 << 20):
            pass


class PydockStorage:
    def __init__(self, root: Path, driver: str, files: dict[str, int]) -> None:
        from ..engine.engine import Engine

        self.name = driver
        self.top = ensure_image(root, driver, _tag(files), files, {"many": MANY})
        self.drv = Engine(root, driver).driver()

    def new(self) -> tuple[str, str]:
        cid = "pydock-bench-cu-" + secrets.token_hex(8)
        self.drv.create_rw(cid, self.top)
        return cid, self.drv.get(cid)

    def release(self, cid: str) -> None:
        self.drv.put(cid)
        self.drv.remove(cid)

    def close(self) -> None:
        pass


class FuseOverlayfs:
    """fuse-overlayfs over the vfs driver's copy of the same image layer."""

    name = "fuse-overlayfs"

    def __init__(self, root: Path, workdir: Path, files: dict[str, int]) -> None:
        from ..engine.engine import Engine

        found = shutil.which("fuse-overlayfs")
        if not found:
            raise RuntimeError("fuse-overlayfs is not installed (Debian package fuse-overlayfs)")
        self.bin: str = found
        self.top = ensure_image(root, "vfs", _tag(files), files, {"many": MANY})
        self.drv = Engine(root, "vfs").driver()
        self.lower = self.drv.get(self.top)
        self.base = workdir / "fuse-overlayfs"

    def new(self) -> tuple[str, str]:
        cid = secrets.token_hex(8)
        d = self.base / cid
        for sub in ("upper", "work", "merged"):
            (d / sub).mkdir(parents=True)
        opts = f"lowerdir={self.lower},upperdir={d}/upper,workdir={d}/work"
        subprocess.run([self.bin, "-o", opts, str(d / "merged")], check=True, capture_output=True)
        return cid, str(d / "merged")

    def release(self, cid: str) -> None:
        d = self.base / cid
        subprocess.run(["fusermount3", "-u", str(d / "merged")], check=True, capture_output=True)
        shutil.rmtree(d)

    def close(self) -> None:
        self.drv.put(self.top)


def _tag(files: dict[str, int]) -> str:
    return "pydock-bench/copyup:" + ("1g" if max(files.values()) >= GIB else "small")


#: one timed operation on a mounted container: (nanoseconds, note)
_Op = Callable[[str, str], tuple[int, str]]


def _op_append(merged: str, rel: str) -> tuple[int, str]:
    t0 = time.perf_counter_ns()
    with open(os.path.join(merged, rel), "ab") as f:
        f.write(b"x")
    return time.perf_counter_ns() - t0, ""


def _op_chmod(merged: str, rel: str) -> tuple[int, str]:
    t0 = time.perf_counter_ns()
    os.chmod(os.path.join(merged, rel), 0o600)
    return time.perf_counter_ns() - t0, ""


def _op_rename(merged: str, rel: str) -> tuple[int, str]:
    src, dst = os.path.join(merged, rel), os.path.join(merged, rel + "-renamed")
    t0 = time.perf_counter_ns()
    try:
        os.rename(src, dst)
        note = "rename(2)"
    except OSError as e:
        if e.errno != errno.EXDEV:
            raise
        shutil.copytree(src, dst, symlinks=True)
        shutil.rmtree(src)
        note = "EXDEV: copied + deleted, as mv(1) does"
    return time.perf_counter_ns() - t0, note


def operations(files: dict[str, int]) -> list[tuple[str, str, str, int, _Op]]:
    """(operation, size label, path in the image, bytes, function)."""
    ops: list[tuple[str, str, str, int, _Op]] = [
        ("append 1 B", label, f"data/{label.replace(' ', '')}", size, _op_append)
        for label, size in files.items()
    ]
    ops.append(("chmod (metadata)", "64 MiB", "data/64MiB", 64 * MIB, _op_chmod))
    ops.append(("rename dir", f"{MANY} files", "many", MANY * 16, _op_rename))
    return ops


def main(a: argparse.Namespace) -> int:
    from ..drivers import registry

    sizes = dict(SIZES)
    if a.with_1g:
        sizes["1 GiB"] = GIB
    files = {f"data/{label.replace(' ', '')}": size for label, size in sizes.items()}
    root, workdir = Path(a.root), Path(a.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    states = ["warm"] if a.no_cold else ["cold", "warm"]
    drivers = [d for d in a.drivers.split(",") if d]
    storages: list[PydockStorage | FuseOverlayfs] = []
    skipped: dict[str, str] = {}
    for name in [*drivers, "fuse-overlayfs"]:
        progress(f"copy-up: preparing {name} ...")
        try:
            if name == "fuse-overlayfs":
                storages.append(FuseOverlayfs(root, workdir, files))
            elif name not in registry.names():
                skipped[name] = f"storage driver {name} is not registered in this build"
            else:
                storages.append(PydockStorage(root, name, files))
        except Exception as e:  # noqa: BLE001 - the reason goes into the report
            skipped[name] = str(e)
    rows = []
    try:
        for st in storages:
            for op, label, rel, nbytes, fn in operations(sizes):
                for state in states:
                    samples, note = [], ""
                    for i in range(a.runs):
                        progress(f"copy-up: {st.name} {op} {label} {state} {i + 1}/{a.runs}")
                        cid, merged = st.new()
                        try:
                            if state == "cold":
                                drop_caches()
                            else:
                                _warm(os.path.join(merged, rel))
                            ns, note = fn(merged, rel)
                        finally:
                            st.release(cid)
                        samples.append(ns)
                    row = {"storage": st.name, "operation": op, "size": label, "bytes": nbytes,
                           "cache": state, "note": note, "samples_ns": samples}  # fmt: skip
                    row["summary"] = stats.summarize(samples)
                    rows.append(row)
    finally:
        for st in storages:
            st.close()
    progress("copy-up: done")
    doc = report.envelope("copy-up", {"runs": a.runs, "sizes": sizes, "dir_files": MANY,
                                      "storages": [s.name for s in storages]})  # fmt: skip
    doc["skipped"] = skipped
    doc["results"] = rows
    return report.finish(doc, a, markdown, plot)


def markdown(doc: dict) -> str:
    table = []
    for r in doc["results"]:
        s = r["summary"] or {}
        table.append([r["storage"], r["operation"], r["size"], r["cache"],
                      report.fmt(s.get("p50_ms"), 3), report.fmt(s.get("max_ms"), 3),
                      r["note"]])  # fmt: skip
    parts = [f"`bench copy-up`: {doc['config']['runs']} runs each, fresh container layer per run."
             " Milliseconds.", "",
             report.md_table(["storage", "operation", "size", "cache", "p50", "max", "note"],
                             table)]  # fmt: skip
    return report.closing(parts, doc)


def plot(doc: dict, path: str) -> None:
    plt = report.pyplot()
    fig, ax = plt.subplots(figsize=(8, 5))
    series: dict[tuple[str, str], list[tuple[int, float]]] = {}
    for r in doc["results"]:
        if r["operation"] == "append 1 B" and r["summary"]:
            series.setdefault((r["storage"], r["cache"]), []).append(
                (r["bytes"], r["summary"]["p50_ms"])
            )
    for (storage, cache), pts in series.items():
        pts.sort()
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=f"{storage} ({cache})")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("lower file size, bytes")
    ax.set_ylabel("first 1-byte append, ms (p50)")
    ax.set_title("bench copy-up: first write to a lower file")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
