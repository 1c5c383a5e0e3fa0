"""``bench pull``: time to pull a multi-layer image from a registry on 127.0.0.1.

The image: ``--layers`` layers (default 5) of ``--layer-mib`` MiB each (default 20, so
about 100 MB), every layer one file of pattern bytes that gzip cannot shrink (its period is
1 MiB, beyond deflate's 32 KiB window) plus a few small files. A second image holds the
same layers but the last. Both are built in a pydock store, pushed by ``pydock push`` to
Debian's ``docker-registry`` started for the run, and then pulled by each target:

* ``cold``: into an empty store (pydock: a fresh ``--root``; Docker: after ``rmi`` of both
  images, which removes their layers);
* ``warm``: the base image is pulled first (not timed), so only the last layer is fetched.

A sample is the wall time of the whole ``pull`` command, spawn to exit (downloads, digest
checks, gunzip, layer apply, image registration). Targets: pydock per ``--drivers``, and
``docker`` (a private dockerd, see targets.Docker) when ``--peers`` names it and it can
start here. The registry is plain HTTP on loopback for every target.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import tarfile
import time
from pathlib import Path

from . import report, stats
from .layerimg import Pattern
from .runner import progress
from .targets import Docker, Unavailable, pydock_bin

MIB = 1 << 20
REGISTRY_BIN = "/usr/bin/docker-registry"
REPO = "pydock-bench/pull"
FULL, BASE = "full", "base"


class Registry:
    """Debian's docker-registry (CNCF distribution) on 127.0.0.1, storage under ``workdir``."""

    def __init__(self, workdir: Path) -> None:
        if not os.path.exists(REGISTRY_BIN):
            raise Unavailable("docker-registry is not installed (Debian package docker-registry)")
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.host = f"127.0.0.1:{self.port}"
        storage = workdir / "registry"
        shutil.rmtree(storage, ignore_errors=True)
        storage.mkdir(parents=True)
        cfg = workdir / "registry.yml"
        cfg.write_text(
            "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\n"
            f"storage:\n  filesystem:\n    rootdirectory: {storage}\n"
            f"http:\n  addr: {self.host}\n"
        )
        self.log = open(workdir / "registry.log", "wb")  # noqa: SIM115 - closed in stop()
        env = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}
        self.proc = subprocess.Popen([REGISTRY_BIN, "serve", str(cfg)], stdout=self.log,
                                     stderr=subprocess.STDOUT, env=env)  # fmt: skip
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise Unavailable("docker-registry did not start") from None
                time.sleep(0.05)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def _layer_file(path: Path, index: int, mib: int) -> str:
    """Write layer ``index``'s tar to ``path``; return its diff id."""
    with open(path, "wb") as f, tarfile.open(fileobj=f, mode="w", format=tarfile.PAX_FORMAT) as tar:
        d = tarfile.TarInfo(f"layer{index}")
        d.type, d.mode, d.mtime = tarfile.DIRTYPE, 0o755, 1_700_000_000
        tar.addfile(d)
        for name, size in ((f"layer{index}/blob", mib * MIB - 4096), (f"layer{index}/id", 16)):
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = size, 0o644, 1_700_000_000
            src = Pattern(size)
            src.off = index * 4099  # another phase per layer: distinct blobs
            tar.addfile(info, src)
    h = hashlib.sha256()
    with open(path, "rb") as written:
        while block := written.read(MIB):
            h.update(block)
    return "sha256:" + h.hexdigest()


def build_and_push(workdir: Path, registry: Registry, layers: int, mib: int) -> dict:
    """Build both images in a scratch pydock store and push them; returns their sizes."""
    from ..engine.engine import Engine

    src = workdir / "pull-source"
    shutil.rmtree(src, ignore_errors=True)
    eng = Engine(src, "vfs")
    drv = eng.driver()
    files, diff_ids = [], []
    for i in range(layers):
        progress(f"pull: building layer {i + 1}/{layers}")
        p = workdir / f"pull-layer{i}.tar"
        diff_ids.append(_layer_file(p, i, mib))
        files.append(p)
    for tag, n in ((FULL, layers), (BASE, layers - 1)):
        config = {
            "architecture": "amd64",
            "os": "linux",
            "created": "2026-01-01T00:00:00Z",
            "config": {"Cmd": ["sh"]},
            "rootfs": {"type": "layers", "diff_ids": diff_ids[:n]},
        }
        with eng.images.lock:
            eng.images.add_image(
                json.dumps(config).encode(),
                lambda i: open(files[i], "rb"),  # noqa: SIM115 - add_image closes it
                [],
                drv,
            )
            image_id = "sha256:" + hashlib.sha256(json.dumps(config).encode()).hexdigest()
            eng.images.tag(image_id, f"{registry.host}/{REPO}:{tag}")
    for f in files:
        f.unlink()
    for tag in (BASE, FULL):
        progress(f"pull: pushing {tag}")
        _timed([pydock_bin(), "--root", str(src), "--storage-driver", "vfs", "push",
                f"{registry.host}/{REPO}:{tag}"])  # fmt: skip
    manifest = _manifest(registry)
    shutil.rmtree(src, ignore_errors=True)
    sizes = [layer["size"] for layer in manifest["layers"]]
    return {"compressed_bytes": sum(sizes), "new_layer_bytes": sizes[-1]}


def _manifest(registry: Registry) -> dict:
    import urllib.request

    req = urllib.request.Request(
        f"http://{registry.host}/v2/{REPO}/manifests/{FULL}",
        headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"},
    )
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.load(r)


def _timed(argv: list[str]) -> int:
    t0 = time.perf_counter_ns()
    p = subprocess.run(argv, capture_output=True, timeout=1800)
    ns = time.perf_counter_ns() - t0
    if p.returncode != 0:
        err = p.stderr.decode(errors="replace").strip().splitlines()
        raise RuntimeError(f"{' '.join(argv[-2:])} failed: {err[-1] if err else p.returncode}")
    return ns


class _Puller:
    """Timed pulls of the full image into an empty store (cold) and on top of its base
    layers (warm); subclasses say how to pull and how to empty the store."""

    name = ""
    version: str | None = None

    def prepare(self) -> None:
        """Make the puller ready (a daemon started, a version read)."""

    def close(self) -> None:
        """Undo prepare()."""

    def _pull(self, tag: str) -> int:
        raise NotImplementedError

    def reset(self) -> None:
        raise NotImplementedError

    def cold(self) -> int:
        self.reset()
        try:
            return self._pull(FULL)
        finally:
            self.reset()

    def warm(self) -> int:
        self.reset()
        try:
            self._pull(BASE)
            return self._pull(FULL)
        finally:
            self.reset()


class _PydockPull(_Puller):
    kind = "pydock"

    def __init__(self, driver: str, workdir: Path, host: str) -> None:
        self.name, self.driver, self.host = f"pydock/{driver}", driver, host
        self.root = workdir / f"pull-{driver}"

    def _pull(self, tag: str) -> int:
        return _timed([pydock_bin(), "--root", str(self.root), "--storage-driver", self.driver,
                       "pull", f"{self.host}/{REPO}:{tag}"])  # fmt: skip

    def prepare(self) -> None:
        self.version = subprocess.run([pydock_bin(), "--version"], capture_output=True,
                                      text=True).stdout.strip() or "pydock"  # fmt: skip

    def reset(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)

    def close(self) -> None:
        self.reset()


class _DockerPull(_Puller):
    kind = "peer"
    name = "docker"

    def __init__(self, workdir: Path, host: str) -> None:
        self.d = Docker(workdir / "pull-unused", "vfs", workdir)
        self.host = host

    def prepare(self) -> None:
        self.d.start_daemon()
        self.version = self.d.version

    def reset(self) -> None:
        subprocess.run([*self.d._cli(), "rmi", "-f", f"{self.host}/{REPO}:{FULL}",
                        f"{self.host}/{REPO}:{BASE}"], capture_output=True)  # fmt: skip

    def _pull(self, tag: str) -> int:
        return _timed([*self.d._cli(), "pull", "-q", f"{self.host}/{REPO}:{tag}"])

    def close(self) -> None:
        self.d.close()


def main(a: argparse.Namespace) -> int:
    from ..drivers import registry as driver_registry

    workdir = Path(a.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    drivers = [d for d in a.drivers.split(",") if d]
    peers = [p for p in a.peers.split(",") if p]
    config = {"runs": a.runs, "layers": a.layers, "layer_mib": a.layer_mib,
              "drivers": drivers, "peers": peers}  # fmt: skip
    doc = report.envelope("pull", config)
    targets: dict[str, dict] = {}
    reg = Registry(workdir)
    runners: list[_Puller] = []
    try:
        doc["image"] = build_and_push(workdir, reg, a.layers, a.layer_mib)
        for d in drivers:
            t = {"kind": "pydock", "status": "ok", "reason": None, "version": None}
            targets[f"pydock/{d}"] = t
            if d not in driver_registry.names():
                t.update(status="missing", reason=f"storage driver {d} is not registered")
                continue
            runners.append(_PydockPull(d, workdir, reg.host))
        for p in peers:
            t = {"kind": "peer", "status": "ok", "reason": None, "version": None}
            targets[p] = t
            if p != "docker":
                t.update(status="missing", reason=f"bench pull has no peer {p!r} (docker only)")
                continue
            runners.append(_DockerPull(workdir, reg.host))
        ready = []
        for r in runners:
            t = targets[r.name]
            try:
                r.prepare()
                t["version"] = r.version
                ready.append(r)
            except Unavailable as e:
                t.update(status="missing" if "not installed" in str(e) else "failed", reason=str(e))
                r.close()
        samples: dict[str, dict[str, list[int]]] = {r.name: {"cold": [], "warm": []} for r in ready}
        for i in range(a.runs):
            for r in list(ready):
                for mode in ("cold", "warm"):
                    progress(f"pull: round {i + 1}/{a.runs}: {r.name} {mode}")
                    try:
                        samples[r.name][mode].append(getattr(r, mode)())
                    except (RuntimeError, subprocess.TimeoutExpired, Unavailable) as e:
                        targets[r.name].update(status="failed", reason=str(e))
                        ready.remove(r)
                        break
        for name, by_mode in samples.items():
            for mode, ns in by_mode.items():
                targets[name][mode] = {"samples_ns": ns, "summary": stats.summarize(ns)}
    finally:
        for r in runners:
            r.close()
        reg.stop()
        shutil.rmtree(workdir / "registry", ignore_errors=True)
    progress("pull: done")
    doc["targets"] = targets
    mine = [n for n, t in targets.items() if t["kind"] == "pydock"]
    others = [n for n, t in targets.items() if t["kind"] == "peer"]
    doc["ratios"] = {
        mode: stats.ratios(
            {n: (t.get(mode) or {}).get("summary") for n, t in targets.items()}, mine, others
        )  # fmt: skip
        for mode in ("cold", "warm")
    }
    return report.finish(doc, a, markdown, plot)


def markdown(doc: dict) -> str:
    img = doc.get("image") or {}
    total = img.get("compressed_bytes")
    rows = []
    for name, t in doc["targets"].items():
        if t["status"] != "ok":
            rows.append([f"`{name}`", t["status"], "–", "–", "–", t.get("reason") or ""])
            continue
        cold = (t.get("cold") or {}).get("summary")
        warm = (t.get("warm") or {}).get("summary")
        rate = total / MIB / (cold["p50_ms"] / 1000) if cold and total else None
        rows.append([f"`{name}`", "ok", report.fmt(cold and cold["p50_ms"], 0),
                     report.fmt(warm and warm["p50_ms"], 0), report.fmt(rate, 1),
                     t.get("version") or ""])  # fmt: skip
    c = doc["config"]
    parts = [
        f"`bench pull`: a {c['layers']}-layer image ({report.fmt((total or 0) / MIB, 1)} MiB "
        f"compressed) from a registry on 127.0.0.1; cold = empty store, warm = all but the "
        f"last layer ({report.fmt(img.get('new_layer_bytes', 0) / MIB, 1)} MiB) present. "
        f"Median of {c['runs']} run(s), whole `pull` command.",
        "",
        report.md_table(
            ["target", "status", "cold p50 ms", "warm p50 ms", "cold MiB/s", "version / reason"],
            rows,
        ),  # fmt: skip
        "",
        report.machine_line(doc),
    ]
    return "\n".join(parts)


def plot(doc: dict, path: str) -> None:
    plt = report.pyplot()
    fig, ax = plt.subplots(figsize=(8, 5))
    names = [n for n, t in doc["targets"].items() if t["status"] == "ok"]
    for k, mode in enumerate(("cold", "warm")):
        vals = [doc["targets"][n][mode]["summary"]["p50_ms"] / 1000 for n in names]
        ax.bar([i + k * 0.4 for i in range(len(names))], vals, width=0.4, label=mode)
    ax.set_xticks([i + 0.2 for i in range(len(names))], names)
    ax.set_ylabel("pull time, s (median)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
