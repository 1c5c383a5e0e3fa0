"""``bench``: pydock's benchmark harness.

    bench start-latency [--drivers overlay2,vfs] [--peers runc,crun,docker,podman,python]
                        [--runs N] [--warmup N] [--json F] [--markdown F] [--plot F.png]
    bench copy-up       [--drivers ...] [--runs N] [--with-1g] ...
    bench layer-sharing [--drivers ...] [--counts 1,10,100] ...
    bench scale         [--drivers ...] [--peers ...] [--idle 0,50,200] [--layers 1,10,...]
    bench pull          [--drivers ...] [--peers docker] [--layers 5] [--layer-mib 20]
    bench fs-speed      [--runs N] [--read-mib 512] [--copy-mib 256]

Defaults are small so a smoke run takes seconds; pass --runs for real numbers. Progress goes
to stderr; with neither --json nor --markdown the Markdown report is printed.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

DEFAULT_WORKDIR = "/var/tmp/pydock-bench"


def _common(p: argparse.ArgumentParser, runs: int, warmup: int | None = None) -> None:
    p.add_argument("--root", default=None, help="pydock store for the bench (default WORKDIR/root)")
    p.add_argument("--workdir", default=DEFAULT_WORKDIR, help="scratch space: bundles, traces")
    p.add_argument("--drivers", default="overlay2,vfs", help="pydock storage drivers (a,b)")
    p.add_argument("--runs", type=int, default=runs, help="measured runs per target")
    if warmup is not None:
        p.add_argument("--warmup", type=int, default=warmup, help="warm-up rounds (discarded)")
    p.add_argument("--json", help="write the JSON report here")
    p.add_argument("--markdown", help="write the Markdown report here")
    p.add_argument("--plot", help="write a PNG plot here (needs pydock[bench])")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="bench", description="pydock's benchmark harness")
    sub = p.add_subparsers(dest="cmd", required=True)

    s = sub.add_parser("start-latency", help="end-to-end start of `true`, pydock vs peers")
    _common(s, runs=10, warmup=2)
    s.add_argument("--peers", default="runc,crun,docker,podman,python")
    s.add_argument("--network", default="none", choices=["none", "bridge"])
    s.add_argument("--start-pool", type=int, default=2, metavar="N",
                   help="start workers kept ready (daemon.json start-pool; 0 = none); with N>0 "
                        "the first driver is also measured without them")  # fmt: skip

    c = sub.add_parser("copy-up", help="first write / chmod / rename cost on lower files")
    _common(c, runs=3)
    c.add_argument("--with-1g", action="store_true", help="include the 1 GiB file (slow)")
    c.add_argument("--no-cold", action="store_true", help="skip cold runs (no drop_caches)")

    ls = sub.add_parser("layer-sharing", help="disk, inodes, create time, shared page cache")
    _common(ls, runs=1)
    ls.add_argument("--counts", default="1,10", help="containers per driver (real runs: 1,10,100)")
    ls.add_argument("--file-mib", type=int, default=64, help="size of the file all containers read")

    sc = sub.add_parser("scale", help="start latency vs idle containers and vs layer count")
    _common(sc, runs=5, warmup=1)
    sc.add_argument("--peers", default="runc,docker,podman")
    sc.add_argument("--idle", default="0,10", help="idle running containers (real: 0,50,200)")
    sc.add_argument("--layers", default="1,10,100", help="image layers (real: 1,10,100,200,500)")

    fs = sub.add_parser("fs-speed", help="seq read, copy-up, find+stat: kernel vs FUSE unions")
    _common(fs, runs=3)
    fs.add_argument("--read-mib", type=int, default=512, help="size of the file read sequentially")
    fs.add_argument("--copy-mib", type=int, default=256, help="size of the file copied up")

    pl = sub.add_parser("pull", help="pull a multi-layer image from a registry on 127.0.0.1")
    _common(pl, runs=3)
    pl.add_argument("--peers", default="docker")
    pl.add_argument("--layers", type=int, default=5, help="layers of the image (at least 2)")
    pl.add_argument("--layer-mib", type=int, default=20, help="MiB of data per layer")
    return p


def main(argv: list[str] | None = None) -> int:
    a = parser().parse_args(argv)
    if os.geteuid() != 0:
        print("bench: run as root (containers, mounts and cgroups are real)", file=sys.stderr)
        return 1
    if a.root is None:
        a.root = os.path.join(a.workdir, "root")
    module = importlib.import_module("pydock.bench." + a.cmd.replace("-", "_"))
    try:
        return module.main(a)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
