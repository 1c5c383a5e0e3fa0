"""Synthetic single-layer images for the storage benchmarks, stored with ImageStore.add_image.

File contents are a repeating pseudo-random pattern (not zeros: nothing may shortcut the
copy), streamed into the layer tar on disk so a 1 GiB file never sits in memory.
"""

from __future__ import annotations

import hashlib
import json
import os
import tarfile
import tempfile
from pathlib import Path

from ..engine.engine import Engine

_BLOCK = hashlib.shake_256(b"pydock-bench").digest(1 << 20)


class Pattern:
    """A read()-able stream of ``size`` pattern bytes."""

    def __init__(self, size: int) -> None:
        self.left = size
        self.off = 0

    def read(self, n: int = -1) -> bytes:
        n = self.left if n < 0 else min(n, self.left)
        out = bytearray()
        while len(out) < n:
            take = min(n - len(out), len(_BLOCK) - self.off)
            out += _BLOCK[self.off : self.off + take]
            self.off = (self.off + take) % len(_BLOCK)
        self.left -= n
        return bytes(out)


def ensure_image(
    root: Path, driver: str, tag: str, files: dict[str, int], dirs: dict[str, int] | None = None
) -> str:
    """Image ``tag`` of one layer: ``files`` (path -> size) and ``dirs`` (path -> number of
    16-byte files in it). Returns the image's top layer id in ``driver``."""
    eng = Engine(root, driver)
    drv = eng.driver()
    image_id = eng.images.lookup(tag)
    if image_id is None:
        with tempfile.TemporaryFile(dir=root) as layer:
            with tarfile.open(fileobj=layer, mode="w") as tar:
                for d in sorted({os.path.dirname(p) for p in files} | set(dirs or {})):
                    if d:
                        info = tarfile.TarInfo(d)
                        info.type, info.mode = tarfile.DIRTYPE, 0o755
                        tar.addfile(info)
                for path, size in files.items():
                    info = tarfile.TarInfo(path)
                    info.size, info.mode = size, 0o644
                    tar.addfile(info, Pattern(size))
                for d, count in (dirs or {}).items():
                    for i in range(count):
                        info = tarfile.TarInfo(f"{d}/f{i:05d}")
                        info.size, info.mode = 16, 0o644
                        tar.addfile(info, Pattern(16))
            layer.seek(0)
            h = hashlib.sha256()
            for block in iter(lambda: layer.read(1 << 20), b""):
                h.update(block)
            config = {
                "architecture": "amd64",
                "os": "linux",
                "config": {},
                "rootfs": {"type": "layers", "diff_ids": ["sha256:" + h.hexdigest()]},
            }

            def open_layer(_i: int):
                layer.seek(0)
                return _NoClose(layer)

            with eng.images.lock:
                image_id = eng.images.add_image(json.dumps(config).encode(), open_layer, [tag], drv)
    return eng._layers_for(image_id, drv)


class _NoClose:
    """The shared temp file, handed out as a context manager that does not close it."""

    def __init__(self, f) -> None:
        self.f = f

    def read(self, n: int = -1) -> bytes:
        return self.f.read(n)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        return None
