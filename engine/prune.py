"""``pydock image prune [-a]`` and the store's garbage collection.

Deletes dangling images (no tag) or, with ``-a``, every image no container uses, then the
store's leftovers: layer records and driver layers no image references, blobs of pulls that
were interrupted, and spooled push exports. Everything runs under the store lock held
exclusively, which ``pydock run``/``create`` hold shared while they pin an image and a pull
holds while it applies a layer; layers a running pull has applied but no image names yet
are pinned (:mod:`.layerpins`) and kept, those of a killed pull go with the rest. The
download directory is cleared only when no pull holds ``distribution/pull.lock``.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil

from .containers import parse_time
from .engine import Engine
from .errors import InvalidInput
from .images import _depth


def _filters(items: list[str]) -> list[tuple[str, str]]:
    out = []
    for item in items:
        key, eq, value = item.partition("=")
        if not eq or key not in ("until", "label", "label!"):
            raise InvalidInput(f"invalid filter {item!r} (until=, label=, label!=)")
        if key == "until":
            from .manage import _until

            _until(value)  # a bad time fails before anything is deleted
        out.append((key, value))
    return out


def _matches(config: dict, filters: list[tuple[str, str]]) -> bool:
    labels = (config.get("config") or {}).get("Labels") or {}
    for key, value in filters:
        if key == "until":  # a duration ago (24h) or a timestamp, as container prune's
            from .manage import _until

            created = parse_time(config.get("created", ""))
            if created is None or created.timestamp() >= _until(value):
                return False
        else:
            k, eq, v = value.partition("=")
            hit = k in labels and (not eq or labels[k] == v)
            if hit != (key == "label"):
                return False
    return True


def prune_images(engine: Engine, *, all_images: bool, filters: list[str]) -> tuple[list[str], int]:
    store = engine.images
    wanted = _filters(filters)
    lines: list[str] = []
    reclaimed = 0
    with store.lock:
        containers = engine.containers.all()
        used = {c.get("Image") for c in containers}
        keep = store.layers_under(c["Parent"] for c in containers if c.get("Parent"))
        for img in store.images():
            if img.id in used or (img.tags and not all_images):
                continue
            if not _matches(img.config, wanted):
                continue
            for t in img.tags:
                store.untag(t)
                lines.append(f"untagged: {t}")
            for r in store.repo_digests(img.id):
                lines.append(f"untagged: {r}")
            sizes = {c: r.get("size", 0) for d in store.drivers_with_layers()
                     for c, r in store.layer_records(d).items()}  # fmt: skip
            removed = store.delete_image(img.id, engine.driver, keep)
            lines.append(f"deleted: {img.id}")
            for chain in removed:
                lines.append(f"deleted: {chain}")
                reclaimed += sizes.get(chain, 0)
        reclaimed += gc(engine)
    return lines, reclaimed


def gc(engine: Engine) -> int:
    """Remove what no image references; the caller holds the store lock exclusively."""
    store = engine.images
    from . import layerpins

    keep = layerpins.held(engine.root)  # a pull in progress holds its layers
    # and containers hold theirs, also when `rmi -f` deleted the image they came from
    keep.update(store.layers_under(c["Parent"] for c in engine.containers.all() if c.get("Parent")))
    for image_id in store.image_ids():
        keep.update(store.layer_chain(image_id))
    freed = 0
    for name in store.drivers_with_layers():
        records = store.layer_records(name)
        unused = [c for c in records if c not in keep]
        if not unused:
            continue
        driver = engine.driver(name)
        for chain in sorted(unused, key=lambda c: -_depth(records, c)):
            freed += records[chain].get("size", 0)
            store._drop_layer(driver, chain)
    layerpins.forget_stale(engine.root)  # what dead pulls applied went with the rest
    from .distribution.blobsums import BlobSums

    BlobSums(engine.root).forget(keep)
    dist = engine.root / "distribution"
    with contextlib.suppress(FileNotFoundError):
        fd = os.open(dist / "pull.lock", os.O_RDWR | os.O_CLOEXEC)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pass  # a pull is running: its downloads stay
        else:
            freed += _rmtree_size(dist / "downloads")
        finally:
            os.close(fd)
    spool = dist / "push"
    if spool.is_dir():
        for f in spool.iterdir():
            pid = f.name.split("-", 1)[0]
            if pid.isdigit() and not os.path.exists(f"/proc/{pid}"):
                freed += f.stat().st_size
                f.unlink()
    return freed


def _rmtree_size(path) -> int:  # noqa: ANN001
    size = 0
    for dirpath, _dirs, files in os.walk(path):
        for f in files:
            with contextlib.suppress(OSError):
                size += os.lstat(os.path.join(dirpath, f)).st_size
    shutil.rmtree(path, ignore_errors=True)
    return size
