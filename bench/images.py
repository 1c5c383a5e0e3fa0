"""The same image for every target: exported from pydock's store through the engine's API.

* :func:`export_rootfs` gives runc/crun their bundle's rootfs: the merged view of the image,
  read through a throwaway writable layer of the chosen driver (what ``docker export`` does),
  so the peer runs exactly the files pydock runs and does no image work at all.
* :func:`docker_archive` gives Docker and Podman a ``docker save`` tarball of the same image:
  each layer exported with ``Driver.diff`` and its diff id recomputed.
* :func:`build_layered` makes images with many layers (busybox at the bottom, one small
  file per extra layer) with ``ImageStore.add_image``, for ``bench scale``.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import os
import secrets
import tarfile
import tempfile
from pathlib import Path
from typing import Any

from ..engine.engine import Engine

BUSYBOX = "busybox:latest"
#: extractall() keywords for a tree pydock itself made (filters exist from Python 3.11.4)
_TRUSTED: dict[str, Any] = (
    {"filter": "fully_trusted"} if hasattr(tarfile, "fully_trusted_filter") else {}
)


def engine(root: Path, driver: str) -> Engine:
    return Engine(root, driver)


def ensure_busybox(root: Path, driver: str) -> str:
    """The busybox image id in ``root``, built from the host's busybox when missing, with
    its layers present in ``driver``."""
    eng = engine(root, driver)
    image_id = eng.images.lookup(BUSYBOX) or eng.ensure_default_image(BUSYBOX, lambda _m: None)
    if image_id is None:
        raise RuntimeError("pydock could not build its busybox image")
    eng._layers_for(image_id, eng.driver())
    return image_id


def export_rootfs(root: Path, driver: str, ref: str, dest: Path) -> None:
    """Materialise the merged root filesystem of image ``ref`` at ``dest`` (hard links kept)."""
    eng = engine(root, driver)
    image_id = eng.images.resolve(ref)
    drv = eng.driver()
    top = eng._layers_for(image_id, drv)
    tmp = "pydock-bench-export-" + secrets.token_hex(8)
    drv.create_rw(tmp, top)
    try:
        merged = drv.get(tmp)
        try:
            with tempfile.TemporaryFile() as buf:
                with tarfile.open(fileobj=buf, mode="w") as tar:
                    tar.add(merged, arcname=".")
                buf.seek(0)
                dest.mkdir(parents=True, exist_ok=True)
                with tarfile.open(fileobj=buf) as tar:
                    # Python < 3.11.4 (Debian 12's 3.11.2) has no extraction filters; there, no
                    # filter is the same as "fully_trusted"
                    tar.extractall(dest, **_TRUSTED)
        finally:
            drv.put(tmp)
    finally:
        drv.remove(tmp)


def docker_archive(root: Path, driver: str, ref: str, tag: str, dest: Path) -> None:
    """Write a ``docker save`` tarball of image ``ref`` (tagged ``tag``) to ``dest``."""
    eng = engine(root, driver)
    image_id = eng.images.resolve(ref)
    drv = eng.driver()
    eng._layers_for(image_id, drv)
    config = eng.images.config(image_id)
    layer_names, diff_ids = [], []
    tmp = dest.with_suffix(".partial")
    with tarfile.open(tmp, "w") as out:
        for chain in eng.images.layer_chain(image_id):
            with tempfile.TemporaryFile() as buf:
                drv.diff(chain[7:], buf)
                size = buf.tell()
                buf.seek(0)
                h = hashlib.sha256()
                for block in iter(functools.partial(buf.read, 1 << 20), b""):
                    h.update(block)
                buf.seek(0)
                name = f"{h.hexdigest()}/layer.tar"
                info = tarfile.TarInfo(name)
                info.size = size
                out.addfile(info, buf)
            layer_names.append(name)
            diff_ids.append("sha256:" + h.hexdigest())
        config["rootfs"] = {"type": "layers", "diff_ids": diff_ids}
        cfg = json.dumps(config, sort_keys=True).encode()
        cfg_name = hashlib.sha256(cfg).hexdigest() + ".json"
        manifest = [{"Config": cfg_name, "RepoTags": [tag], "Layers": layer_names}]
        for name, data in ((cfg_name, cfg), ("manifest.json", json.dumps(manifest).encode())):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            out.addfile(info, io.BytesIO(data))
    os.replace(tmp, dest)


def _tiny_layer(i: int) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for d in ("layers",):
            info = tarfile.TarInfo(d)
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(info)
        data = f"{i}\n".encode()
        info = tarfile.TarInfo(f"layers/{i:04d}")
        info.size, info.mode = len(data), 0o644
        tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def build_layered(root: Path, driver: str, layers: int) -> str:
    """An image of ``layers`` layers (busybox + one file per extra layer), tagged
    ``pydock-bench/layers-<N>:latest``; built once per store and driver."""
    from ..engine import default_image

    tag = f"pydock-bench/layers-{layers}:latest"
    eng = engine(root, driver)
    existing = eng.images.lookup(tag)
    if existing:
        eng._layers_for(existing, eng.driver())
        return tag
    base_cfg, base_layer = default_image.build()
    blobs = [base_layer] + [_tiny_layer(i) for i in range(1, layers)]
    config = json.loads(base_cfg)
    config["rootfs"] = {
        "type": "layers",
        "diff_ids": ["sha256:" + hashlib.sha256(b).hexdigest() for b in blobs],
    }
    config["history"] = [{"created_by": f"pydock bench layer {i}"} for i in range(layers)]
    with eng.images.lock:
        eng.images.add_image(
            json.dumps(config, sort_keys=True).encode(),
            lambda i: io.BytesIO(blobs[i]),
            [tag],
            eng.driver(),
        )
    return tag
