"""``bench start-latency``: end-to-end start of one ``true`` container, pydock per storage
driver against runc/crun on a bare bundle, Docker and Podman, interleaved after a warm-up,
with pydock's own phase breakdown (PYDOCK_TRACE)."""

from __future__ import annotations

import argparse
from pathlib import Path

from . import report, stats
from .runner import Result, measure, prepare
from .targets import Pydock, Target, make


def build_targets(a: argparse.Namespace):
    workdir = Path(a.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    root = Path(a.root)
    drivers = [d for d in a.drivers.split(",") if d]
    peers = [p for p in a.peers.split(",") if p]
    # Peers get the image through the first driver (the store's images are shared).
    net, pool = getattr(a, "network", "none"), getattr(a, "start_pool", 0)
    out: list[Target] = [Pydock(root, d, workdir, net, pool) for d in drivers]
    if pool and drivers:  # the cold start too: a first run, or no pool configured
        out.append(Pydock(root, drivers[0], workdir, net, pool, pooled=False))
    out += [make(p, root, drivers[0] if drivers else "vfs", workdir) for p in peers]
    return out


def to_doc(a: argparse.Namespace, results: dict[str, Result], order: list[str]) -> dict:
    doc = report.envelope(
        "start-latency",
        {
            "runs": a.runs,
            "warmup": a.warmup,
            "drivers": a.drivers.split(","),
            "peers": a.peers.split(","),
            "network": a.network,
            "start_pool": getattr(a, "start_pool", 0),
            "interleaved": True,
            "command": "run --rm --network none busybox true",
        },
    )
    targets: dict[str, dict] = {}
    for name, r in results.items():
        t = r.target
        targets[name] = {
            "kind": t.kind,
            "status": r.status,
            "reason": r.reason,
            "version": t.version,
            "argv": t.argv() if r.status == "ok" else None,
            "samples_ns": r.samples_ns,
            "summary": stats.summarize(r.samples_ns),
            "phases_ns": r.phases_ns,
            "phase_median_ms": stats.median_phases(r.phases_ns) if r.phases_ns else None,
        }
    doc["targets"] = targets
    doc["order"] = order
    summaries = {n: v["summary"] for n, v in targets.items()}
    mine = [n for n, v in targets.items() if v["kind"] == "pydock"]
    others = [n for n, v in targets.items() if v["kind"] != "pydock"]
    doc["ratios"] = stats.ratios(summaries, mine, others)
    return doc


def markdown(doc: dict) -> str:
    rows = []
    for name, t in doc["targets"].items():
        s = t["summary"] or {}
        status = "ok" if t["status"] == "ok" else f"{t['status']}: {t['reason']}"
        rows.append([f"`{name}`", *(report.fmt(s.get(k)) for k in
                     ("p50_ms", "p90_ms", "p99_ms", "min_ms", "max_ms")),
                     str(s.get("n", 0)), status])  # fmt: skip
    cfg = doc["config"]
    parts = [
        f"`bench start-latency`: `{cfg['command']}`, {cfg['runs']} runs after {cfg['warmup']} "
        "warm-up rounds, targets interleaved. Milliseconds.",
        "",
        report.md_table(["target", "p50", "p90", "p99", "min", "max", "n", "status"], rows),
    ]
    others = [n for n, t in doc["targets"].items() if t["kind"] != "pydock" and t["summary"]]
    if doc["ratios"] and others:
        rrows = []
        for mine, row in doc["ratios"].items():
            rrows.append([f"`{mine}`", *(report.fmt(row[o]["p50"], 2) for o in others)])
        parts += ["", "p50 ratio (pydock / peer; below 1 = pydock faster):", "",
                  report.md_table(["", *(f"`{o}`" for o in others)], rrows)]  # fmt: skip
    phased = {n: t["phase_median_ms"] for n, t in doc["targets"].items() if t["phase_median_ms"]}
    if phased:
        names = list(dict.fromkeys(p for v in phased.values() for p in v))
        prow = [[p, *(report.fmt(v.get(p), 2) for v in phased.values())] for p in names]
        prow.append(["**sum**", *(report.fmt(sum(v.values()), 2) for v in phased.values())])
        parts += ["", "pydock's phase breakdown (median ms per phase, from PYDOCK_TRACE):", "",
                  report.md_table(["phase", *(f"`{n}`" for n in phased)], prow)]  # fmt: skip
    parts += ["", report.machine_line(doc)]
    versions = [f"{n}: {t['version']}" for n, t in doc["targets"].items() if t.get("version")]
    if versions:
        parts += ["", "Versions: " + "; ".join(versions) + "."]
    return "\n".join(parts)


def plot(doc: dict, path: str) -> None:
    import numpy as np

    plt = report.pyplot()
    fig, ax = plt.subplots(figsize=(8, 5))
    for name, t in doc["targets"].items():
        if not t["samples_ns"]:
            continue
        x = np.sort(np.asarray(t["samples_ns"], dtype=np.float64) / 1e6)
        ax.step(x, np.arange(1, x.size + 1) / x.size, where="post", label=name)
    ax.set_xscale("log")
    ax.set_xlabel("start latency, ms (log)")
    ax.set_ylabel("fraction of runs")
    ax.set_title("bench start-latency: run --rm --network none busybox true")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(a: argparse.Namespace) -> int:
    targets = build_targets(a)
    results = prepare(targets)
    try:
        order = measure(results, a.runs, a.warmup, "start-latency: ")
    finally:
        for t in targets:
            t.close()
    doc = to_doc(a, results, order)
    return report.finish(doc, a, markdown, plot)
