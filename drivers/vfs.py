"""The vfs driver: every layer is a full copy of its parent. Slow, big, and works anywhere.

It needs no kernel feature at all (no overlayfs, no FUSE), which makes it the fallback of
the automatic choice and the reference the other drivers are checked against: its diffs
come from comparing two plain trees, so they are exact by construction.

Layout under ``home`` (``<pydock root>/vfs``)::

    dir/<id>/         the layer's full tree (what ``get`` returns; nothing is mounted)
    meta/<id>.json    {"parent", "rw", "copied_ns", "usage": {"size", "inodes"}}
    meta/<id>.tar-split.gz  the applied tar's framing, for exact re-export (drivers.tarsplit)
    refs/<id>.ref     cross-process reference count (pydock.drivers.state.RefCounts)
    .tmp-<id>-<rnd>/  a layer being built or applied; renamed into dir/ when complete
    .lock             flock serialising registration (create/remove/recovery)

A layer is registered when both ``dir/<id>`` and ``meta/<id>.json`` exist. While a diff is
applied the tree lives under ``.tmp-*``, so a crash leaves an unregistered layer that the
next driver start removes. Usage is measured when a diff is applied and when a writable
layer's last reference is put: a running container's usage is as of its last unmount.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

from pydock.drivers.base import (
    Change,
    Driver,
    DriverError,
    DriverOptions,
    LayerExists,
    LayerInUse,
    LayerNotFound,
    Usage,
)
from pydock.drivers.layers import (
    DeletingWhiteouts,
    RefCounts,
    TempDir,
    apply_tar,
    cleanup_temp_dirs,
    copy_tree,
    diff_size,
    measure_usage,
    read_json,
    reproduce_tar,
    tree_changes,
    write_json_atomic,
    write_tar,
)
from pydock.drivers.state import TEMP_PREFIX

SPLIT_SUFFIX = ".tar-split.gz"
_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:+-]{0,254}")


class VfsDriver(Driver):
    name = "vfs"

    def __init__(self, home: str | Path, options: DriverOptions | None = None) -> None:
        super().__init__(home, options)
        self._dirs = self.home / "dir"
        self._meta = self.home / "meta"
        for d in (self._dirs, self._meta):
            d.mkdir(parents=True, exist_ok=True)
        self._refs = RefCounts(self.home / "refs")
        self._recover()

    # -- bookkeeping -----------------------------------------------------------------------
    def _path(self, id: str) -> Path:
        if not _ID_RE.fullmatch(id):
            raise DriverError(f"invalid layer id {id!r}")
        return self._dirs / id

    def _meta_path(self, id: str) -> Path:
        return self._meta / f"{id}.json"

    def _split_path(self, id: str) -> Path:
        return self._meta / f"{id}{SPLIT_SUFFIX}"

    def _read_meta(self, id: str) -> dict[str, Any]:
        if not self._path(id).is_dir():
            raise LayerNotFound(f"layer {id} does not exist in the vfs driver")
        try:
            return read_json(self._meta_path(id))
        except FileNotFoundError:
            raise LayerNotFound(f"layer {id} does not exist in the vfs driver") from None

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        fd = os.open(self.home / ".lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _recover(self) -> None:
        """Undo what crashed processes left: temp dirs, metadata without tree, tree without."""
        with self._locked():
            cleanup_temp_dirs(self.home)
            busy = {
                e.name[len(TEMP_PREFIX) :].rsplit("-", 1)[0]
                for e in os.scandir(self.home)
                if e.name.startswith(TEMP_PREFIX)
            }
            metas = {p.name[:-5] for p in self._meta.glob("*.json")}
            trees = set(os.listdir(self._dirs))
            for id in metas - trees - busy:
                self._meta_path(id).unlink(missing_ok=True)
            for p in self._meta.glob(f"*{SPLIT_SUFFIX}*"):
                id = p.name.split(SPLIT_SUFFIX)[0]
                if id not in busy and (id not in metas or id not in trees):
                    p.unlink(missing_ok=True)
            for id in trees - metas - busy:
                shutil.rmtree(self._dirs / id, ignore_errors=True)

    # -- layers ----------------------------------------------------------------------------
    def create(self, id: str, parent: str | None) -> None:
        self._create(id, parent, rw=False)

    def create_rw(self, id: str, parent: str | None, *, ephemeral: bool = False) -> None:
        self._create(id, parent, rw=True, ephemeral=ephemeral)

    def _create(self, id: str, parent: str | None, *, rw: bool, ephemeral: bool = False) -> None:
        final = self._path(id)
        if self.exists(id):
            raise LayerExists(f"layer {id} already exists")
        parent_dir = self._path(parent) if parent else None
        if parent is not None:
            self._read_meta(parent)  # LayerNotFound
        with TempDir(self.home, id) as tmp:
            tree = tmp.path / "fs"
            if parent_dir is not None:
                copy_tree(parent_dir, tree)
            else:
                os.mkdir(tree, 0o755)
            copied_ns = time.time_ns()
            meta = {
                "parent": parent,
                "rw": rw,
                "copied_ns": copied_ns,
                "usage": _usage_json(measure_usage(tree)),
                "ephemeral": ephemeral,
            }
            with self._locked():
                if self.exists(id):
                    raise LayerExists(f"layer {id} already exists")
                if final.exists():  # an orphan tree from a crash between rename and meta
                    shutil.rmtree(final)
                os.rename(tree, final)
                write_json_atomic(self._meta_path(id), meta, durable=not ephemeral)

    def apply_diff(self, id: str, parent: str | None, stream: BinaryIO) -> int:
        meta = self._read_meta(id)
        if parent is not None and meta["parent"] != parent:
            raise DriverError(f"layer {id} was created on {meta['parent']}, not on {parent}")
        final = self._path(id)
        with TempDir(self.home, id) as tmp:
            tree = tmp.path / "fs"
            with self._refs.hold(id) as ref:
                if ref.count:
                    raise LayerInUse(f"layer {id} is mounted; cannot apply a diff to it")
                # Move the tree out of dir/ while it is being changed: a crash from here on
                # leaves an unregistered layer (no tree in dir/), never a half-applied one.
                os.rename(final, tree)
            try:
                split = self._split_path(id)
                size = apply_tar(stream, tree, whiteouts=DeletingWhiteouts(), tar_split=split)
                meta["usage"] = _usage_json(measure_usage(tree))
                os.rename(tree, final)
                write_json_atomic(self._meta_path(id), meta)
            except BaseException:
                # The caller's layer is gone (its tree is discarded with the temp dir).
                self._meta_path(id).unlink(missing_ok=True)
                self._split_path(id).unlink(missing_ok=True)
                self._refs.discard(id)
                raise
        return size

    def remove(self, id: str) -> None:
        with self._locked():
            self._read_meta(id)
            if self._refs.count(id):
                raise LayerInUse(f"layer {id} is mounted")
            children = [c for c in self.list_layers() if self._parent_of(c) == id]
            if children:
                raise LayerInUse(f"layer {id} has child layers: {', '.join(sorted(children))}")
            # Unregister first, then delete: a crash in between leaves an orphan tree that
            # recovery removes, never a registered layer with half its files.
            self._meta_path(id).unlink()
            self._split_path(id).unlink(missing_ok=True)
            self._refs.discard(id)
            with TempDir(self.home, id) as tmp:
                os.rename(self._path(id), tmp.path / "fs")

    def exists(self, id: str) -> bool:
        try:
            return self._path(id).is_dir() and self._meta_path(id).is_file()
        except DriverError:
            return False

    def list_layers(self) -> list[str]:
        return sorted(
            p.name[:-5] for p in self._meta.glob("*.json") if (self._dirs / p.name[:-5]).is_dir()
        )

    def _parent_of(self, id: str) -> str | None:
        try:
            return read_json(self._meta_path(id)).get("parent")
        except FileNotFoundError:
            return None

    def parent(self, id: str) -> str | None:
        return self._read_meta(id)["parent"]

    # -- mounts ----------------------------------------------------------------------------
    def get(self, id: str) -> str:
        with self._refs.hold(id) as ref:
            self._read_meta(id)
            ref.count += 1
        return str(self._path(id))

    def put(self, id: str) -> None:
        with self._refs.hold(id) as ref:
            meta = self._read_meta(id)
            if ref.count <= 0:
                raise DriverError(f"layer {id} is not mounted")
            ref.count -= 1
            if ref.count == 0 and meta.get("rw") and not meta.get("ephemeral"):
                meta["usage"] = _usage_json(measure_usage(self._path(id)))
                write_json_atomic(self._meta_path(id), meta)

    def mounted(self, id: str) -> bool:
        return self._refs.count(id) > 0

    # -- diffs -----------------------------------------------------------------------------
    def _changes(self, id: str) -> list[Change]:
        meta = self._read_meta(id)
        parent = meta["parent"]
        return tree_changes(
            self._path(id),
            self._path(parent) if parent else None,
            unchanged_before_ns=meta.get("copied_ns") if parent else None,
        )

    def diff(self, id: str, out: BinaryIO) -> None:
        write_tar(out, self._path(id), self._changes(id))

    def diff_exact(self, id: str, out: BinaryIO) -> bool:
        # The layer's full tree holds, at each recorded path, the file this tar wrote there:
        # image layers are never written after apply_diff (containers get copies).
        self._read_meta(id)
        return reproduce_tar(self._split_path(id), self._path(id), out)

    def changes(self, id: str) -> list[Change]:
        return self._changes(id)

    def diff_size(self, id: str) -> int:
        return diff_size(self._path(id), self._changes(id))

    def usage(self, id: str) -> Usage:
        u = self._read_meta(id).get("usage") or {}
        return Usage(size=int(u.get("size", 0)), inodes=int(u.get("inodes", 0)))

    # -- driver-wide -----------------------------------------------------------------------
    def status(self) -> list[tuple[str, str]]:
        return [("Backing Filesystem", backing_filesystem(self.home))]

    def capabilities(self) -> dict[str, bool]:
        return {"ReproducesExactDiffs": True}

    def metadata(self, id: str) -> dict[str, str]:
        self._read_meta(id)
        return {"Dir": str(self._path(id))}


def _usage_json(u: Usage) -> dict[str, int]:
    return {"size": u.size, "inodes": u.inodes}


#: names Docker prints for "Backing Filesystem" (its statfs-magic table), by mount fs type
_FS_NAMES = {"ext2": "extfs", "ext3": "extfs", "ext4": "extfs", "overlay": "overlayfs"}


def backing_filesystem(path: str | Path) -> str:
    """The filesystem type holding ``path``, from the longest matching /proc/self/mountinfo row.

    Python exposes no ``statfs(2)`` ``f_type``, and mountinfo names the type directly.
    """
    target = os.path.realpath(path)
    best, fstype = "", "unknown"
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            mnt = _unescape(fields[4])
            sep = fields.index("-")
            inside = target == mnt or target.startswith(mnt.rstrip("/") + "/")
            if inside and len(mnt) >= len(best):
                best, fstype = mnt, fields[sep + 1]
    return _FS_NAMES.get(fstype, fstype)


def _unescape(s: str) -> str:
    # mountinfo escapes space, tab, newline and backslash as \ooo (proc(5)).
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), s)
