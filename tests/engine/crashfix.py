"""Crash states for tests: a pydock command killed (SIGKILL, by itself) at a chosen point,
and the invariant a store must hold once the next command has recovered it.

The kill point is chosen from outside the product: a child Python runs the ordinary CLI
(``cli.main``) with one function replaced by a SIGKILL of itself, so the store is left
exactly as a kill at that point leaves it, with no test hook in pydock's code.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

_KILLER = r"""
import importlib, os, signal, sys

target, mode, argv = sys.argv[1], sys.argv[2], sys.argv[3:]
modname, _, attr = target.partition(":")
owner = importlib.import_module(modname)
*path, name = attr.split(".")
for p in path:
    owner = getattr(owner, p)

def die(*args, **kw):
    if mode == "tmp":  # as fsutil.write_atomic leaves it, killed before its rename
        with open(f"{args[0]}.tmp-{os.getpid()}", "wb") as f:
            f.write(b'{"chain_id":')
    os.kill(os.getpid(), signal.SIGKILL)

setattr(owner, name, die)
from pydock.engine import cli
sys.exit(cli.main(argv))
"""


def killed_at(root: Path, target: str, *args: str, mode: str = "kill", **kw) -> int:
    """Run ``pydock --root ROOT ARGS`` in a child that SIGKILLs itself when it calls
    ``target`` (``module:attr[.attr]``); its return code (-9 when the point was reached)."""
    proc = subprocess.run(
        [sys.executable, "-c", _KILLER, target, mode, "--root", str(root), *args],
        capture_output=True, timeout=120, **kw,
    )  # fmt: skip
    return proc.returncode


def container_entries(root: Path) -> list[str]:
    try:
        return sorted(os.listdir(root / "containers"))
    except FileNotFoundError:
        return []


def check_containers(root: Path, listed: set[str]) -> list[str]:
    """What under containers/ and names/ belongs to no container ``ps -a`` lists."""
    bad = []
    for n in container_entries(root):
        if n not in listed or not (root / "containers" / n / "container.json").exists():
            bad.append(f"containers/{n}: {sorted(os.listdir(root / 'containers' / n))}")
    try:
        names = os.listdir(root / "names")
    except FileNotFoundError:
        names = []
    for n in names:
        cid = os.readlink(root / "names" / n)
        rec = root / "containers" / cid / "container.json"
        if cid not in listed or json.loads(rec.read_text())["Name"] != "/" + n:
            bad.append(f"names/{n} -> {cid}")
    return bad


def check_images(root: Path, store: str = "overlay2") -> list[str]:
    """Temporary files and driver layers that no layer record or container owns."""
    bad = []
    for d in (root / "layerdb" / store, root / "images" / "sha256", root):
        if d.is_dir():
            bad += [f"{d}/{n}" for n in os.listdir(d) if ".tmp-" in n]
    records = {n[:-5] for n in os.listdir(root / "layerdb" / store) if n.endswith(".json")}
    containers = set(container_entries(root))
    home = root / store
    for n in os.listdir(home) if home.is_dir() else []:
        if (home / n / "diff").is_dir() and n not in records | containers:
            bad.append(f"{store}/{n}: a layer without a record")
    return bad
