"""``bench layer-sharing``: what N containers of one image cost per storage driver.

For N = 1, 10, 100 containers of a one-layer image holding one ``--file-mib`` file:

* create time per container: the driver's ``create_rw`` + ``get`` (mount);
* disk bytes (allocated blocks) and inodes of each container's own layer, from
  ``Driver.usage`` after the last ``put`` (drivers record it at unmount);
* page-cache bytes charged when every container reads the file once: each reader runs in a
  cgroup of its own (nested under this process's), and the charge is read from that
  cgroup's memory.stat ("cache" on v1, "file" on v2; Documentation/admin-guide/cgroup-v1/
  memory.rst 5.2, cgroup-v2.rst "memory.stat"). The page cache is dropped first, so a page
  is charged to the first cgroup that faults it in: overlay's containers share the lower
  file's pages, vfs's copies do not.
"""

from __future__ import annotations

import argparse
import os
import secrets
import time
from pathlib import Path

from . import report
from .copy_up import drop_caches
from .layerimg import ensure_image
from .runner import progress

MIB = 1 << 20


def _page_cache(cg) -> int | None:
    """Page-cache bytes charged to ``cg`` (v1 memory "cache", v2 "file")."""
    d, key = cg.paths.get("memory"), "cache"
    if d is None:
        d, key = cg.paths.get("unified"), "file"
    try:
        with open(f"{d}/memory.stat") as f:
            for line in f:
                k, _, v = line.partition(" ")
                if k == key:
                    return int(v)
    except (OSError, TypeError):
        return None
    return None


def _read_in_cgroup(path: str, cg) -> None:
    """Fork a reader, move it into ``cg`` before it reads ``path`` to the end, reap it."""
    go_r, go_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            os.close(go_w)
            os.read(go_r, 1)
            fd = os.open(path, os.O_RDONLY)
            while os.read(fd, 1 << 20):
                pass
        except BaseException:  # noqa: BLE001 - report through the exit code only
            code = 1
        finally:
            os._exit(code)
    os.close(go_r)
    try:
        cg.attach(pid)
    finally:
        os.write(go_w, b"g")
        os.close(go_w)
        _, status = os.waitpid(pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"reader of {path} failed")


def measure_driver(root: Path, driver: str, n: int, file_mib: int) -> dict:
    from ..cgroupfs import Cgroup
    from ..engine.engine import Engine

    tag = f"pydock-bench/shared-{file_mib}m:latest"
    top = ensure_image(root, driver, tag, {"data/big": file_mib * MIB})
    drv = Engine(root, driver).driver()
    ids, create_ns, cgs = [], [], []
    try:
        for i in range(n):
            progress(f"layer-sharing: {driver} N={n}: create {i + 1}/{n}")
            cid = "pydock-bench-ls-" + secrets.token_hex(8)
            t0 = time.perf_counter_ns()
            drv.create_rw(cid, top)
            ids.append(cid)
            path = drv.get(cid)
            create_ns.append(time.perf_counter_ns() - t0)
        drop_caches()
        cache = []
        for i, cid in enumerate(ids):
            progress(f"layer-sharing: {driver} N={n}: read {i + 1}/{n}")
            cg = Cgroup(f"pydock-bench-ls-{os.getpid()}-{i}")
            cg.create()
            cgs.append(cg)
            path = os.path.join(drv.get(cid), "data/big")
            drv.put(cid)
            _read_in_cgroup(path, cg)
            cache.append(_page_cache(cg))
    finally:
        for cg in cgs:
            cg.destroy()
        usage = []
        for cid in ids:
            while drv.mounted(cid):
                drv.put(cid)
            usage.append(drv.usage(cid))
            drv.remove(cid)
    known = [c for c in cache if c is not None]
    return {
        "driver": driver,
        "containers": n,
        "create_ns": create_ns,
        "create_ms_mean": sum(create_ns) / len(create_ns) / 1e6,
        "disk_bytes": [u.size for u in usage],
        "disk_bytes_per_container": sum(u.size for u in usage) / n,
        "inodes": [u.inodes for u in usage],
        "inodes_per_container": sum(u.inodes for u in usage) / n,
        "page_cache_bytes": cache,
        "page_cache_total": sum(known) if known else None,
        "file_bytes": file_mib * MIB,
    }


def main(a: argparse.Namespace) -> int:
    from ..drivers import registry

    root = Path(a.root)
    root.mkdir(parents=True, exist_ok=True)
    counts = [int(c) for c in a.counts.split(",") if c]
    rows, skipped = [], {}
    for driver in [d for d in a.drivers.split(",") if d]:
        if driver not in registry.names():
            skipped[driver] = f"storage driver {driver} is not registered in this build"
            continue
        for n in counts:
            rows.append(measure_driver(root, driver, n, a.file_mib))
    progress("layer-sharing: done")
    doc = report.envelope("layer-sharing", {"counts": counts, "file_mib": a.file_mib})
    doc["skipped"] = skipped
    doc["results"] = rows
    return report.finish(doc, a, markdown, plot)


def markdown(doc: dict) -> str:
    table = []
    for r in doc["results"]:
        pc = r["page_cache_total"]
        table.append([r["driver"], str(r["containers"]), report.fmt(r["create_ms_mean"], 2),
                      report.fmt(r["disk_bytes_per_container"] / 1024, 1),
                      report.fmt(r["inodes_per_container"], 0),
                      "–" if pc is None else report.fmt(pc / MIB, 1),
                      report.fmt(r["file_bytes"] * r["containers"] / MIB, 0)])  # fmt: skip
    hdr = ["driver", "N", "create ms/ctr", "disk KiB/ctr", "inodes/ctr",
           "page cache MiB (all N)", "MiB read (all N)"]  # fmt: skip
    parts = [
        f"`bench layer-sharing`: N containers of one image with a {doc['config']['file_mib']} MiB "
        "file; each reads it once in its own cgroup after the page cache was dropped.",
        "",
        report.md_table(hdr, table),
    ]
    return report.closing(parts, doc)


def plot(doc: dict, path: str) -> None:
    plt = report.pyplot()
    fig, ax = plt.subplots(figsize=(8, 5))
    by: dict[str, list[tuple[int, float]]] = {}
    for r in doc["results"]:
        if r["page_cache_total"] is not None:
            by.setdefault(r["driver"], []).append((r["containers"], r["page_cache_total"] / MIB))
    for driver, pts in by.items():
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=driver)
    ax.set_xlabel("containers reading the same file")
    ax.set_ylabel("page cache charged, MiB")
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
