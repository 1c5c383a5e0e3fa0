"""``bench scale``: start latency as the machine fills up, and as images get deeper.

* idle: before each level (0, 50, 200 ...) every target that can keeps that many idle
  ``sleep`` containers of its own running; then all targets are timed, interleaved.
  runc/crun keep none (a bare bundle has no engine state to grow), but share the host.
* layers: images of 1, 10, 100, 200, 500 layers (busybox + one small file per layer) built
  with ImageStore.add_image; pydock runs them per driver, Docker and Podman load the same
  layers as a docker-save tarball. Where a target refuses (Docker's overlay2 stops at 128
  layers, the kernel's overlay at 500 lower dirs) the error is the result.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from . import images, report, stats
from .runner import Result, measure, prepare, progress
from .start_latency import build_targets
from .targets import Unavailable


def _fresh(results: dict[str, Result]) -> dict[str, Result]:
    """Results with the same targets and availability, and no samples yet."""
    return {n: Result(r.target, r.status, r.reason) for n, r in results.items()}


def _row(res: dict[str, Result]) -> dict:
    return {n: {"status": r.status, "reason": r.reason, "samples_ns": r.samples_ns,
                "summary": stats.summarize(r.samples_ns)} for n, r in res.items()}  # fmt: skip


def idle_levels(base: dict[str, Result], levels: list[int], a: argparse.Namespace) -> list[dict]:
    out, notes = [], {}
    try:
        for level in levels:
            res = _fresh(base)
            for name, r in res.items():
                if r.status != "ok" or name in notes:
                    continue
                have = len(getattr(r.target, "_idle", []))
                try:
                    progress(f"scale: {name}: starting idle containers {have} -> {level}")
                    r.target.start_idle(level - have)
                except Unavailable as e:
                    notes[name] = str(e)
            measure(res, a.runs, a.warmup, f"scale idle={level}: ")
            out.append({"idle": level, "targets": _row(res), "idle_notes": dict(notes)})
    finally:
        for r in base.values():
            if r.status == "ok":
                progress(f"scale: {r.target.name}: stopping idle containers")
                r.target.stop_idle()
    return out


def layer_levels(base: dict[str, Result], levels: list[int], a: argparse.Namespace) -> list[dict]:
    root, workdir = Path(a.root), Path(a.workdir)
    out = []
    for n in levels:
        res = _fresh(base)
        per_target_image: dict[str, str] = {}
        tar = None
        for name, r in res.items():
            t = r.target
            if r.status != "ok":
                continue
            if not t.supports_image("x"):
                r.status, r.reason = "n/a", "runs a flat bundle: no layers"
                continue
            progress(f"scale layers={n}: preparing {name}")
            try:
                if t.kind == "pydock":
                    per_target_image[name] = images.build_layered(root, t.driver, n)
                else:
                    drivers = [x for x in a.drivers.split(",") if x] or ["vfs"]
                    tag = images.build_layered(root, drivers[0], n)
                    if tar is None:
                        tar = workdir / f"layers-{n}.tar"
                        images.docker_archive(root, drivers[0], tag, tag, tar)
                    t.load(tar)
                    per_target_image[name] = tag
            except Unavailable as e:
                r.status, r.reason = "failed", str(e)
            except Exception as e:  # noqa: BLE001 - the reason is the result
                r.status, r.reason = "failed", f"{type(e).__name__}: {e}"
        for name, image in per_target_image.items():
            res[name].image = image  # each target its own image of n layers, interleaved
        measure(res, a.runs, a.warmup, f"scale layers={n}: ")
        out.append({"layers": n, "targets": _row(res)})
        if tar is not None:
            tar.unlink(missing_ok=True)
    return out


def main(a: argparse.Namespace) -> int:
    targets = build_targets(a)
    base = prepare(targets)
    try:
        idle = idle_levels(base, [int(x) for x in a.idle.split(",") if x], a)
        layers = layer_levels(base, [int(x) for x in a.layers.split(",") if x], a)
    finally:
        for t in targets:
            t.close()
    progress("scale: done")
    doc = report.envelope("scale", {"runs": a.runs, "warmup": a.warmup, "idle": a.idle,
                                    "layers": a.layers, "drivers": a.drivers,
                                    "peers": a.peers})  # fmt: skip
    doc["versions"] = {n: r.target.version for n, r in base.items()}
    doc["idle"] = idle
    doc["layers"] = layers
    return report.finish(doc, a, markdown, plot)


def _cell(t: dict) -> str:
    if t["summary"]:
        return report.fmt(t["summary"]["p50_ms"])
    return f"{t['status']}: {t['reason']}" if t["reason"] else t["status"]


def markdown(doc: dict) -> str:
    parts = ["`bench scale`: p50 start latency, ms (or why there is none).", ""]
    for key, title in (("idle", "idle running containers"), ("layers", "image layers")):
        rows = doc[key]
        if not rows:
            continue
        names = list(rows[0]["targets"])
        table = [[str(r[key]), *(_cell(r["targets"][n]) for n in names)] for r in rows]
        parts += [report.md_table([title, *(f"`{n}`" for n in names)], table), ""]
        notes = rows[-1].get("idle_notes") or {}
        parts += [f"`{n}` kept no idle containers: {why}" for n, why in notes.items()]
        if notes:
            parts.append("")
    parts.append(report.machine_line(doc))
    return "\n".join(parts)


def plot(doc: dict, path: str) -> None:
    plt = report.pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5))
    for ax, key in zip(axes, ("idle", "layers"), strict=True):
        rows = doc[key]
        names = list(rows[0]["targets"]) if rows else []
        for n in names:
            pts = [(r[key], r["targets"][n]["summary"]["p50_ms"]) for r in rows
                   if r["targets"][n]["summary"]]  # fmt: skip
            if pts:
                ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=n)
        ax.set_xlabel("idle running containers" if key == "idle" else "image layers")
        ax.set_ylabel("p50 start latency, ms")
        ax.grid(True, alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
