"""Helpers for the fuse-union tests: layers on disk, kernel and FUSE mounts, tree snapshots.

Layers are written directly in overlay's on-disk form (0/0 character-device whiteouts,
``trusted.overlay.opaque=y``), the form the overlay2 driver stores, so the kernel and
fuse-union read the very same directories.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

from pydock.fuse_union.driver import in_mountinfo, start_server, stop_server
from pydock.nsutil import syscalls as sc
from pydock.overlay import mount as mnt

OPAQUE = "trusted.overlay.opaque"
#: what the overlay2 driver mounts with, spelled out so the oracle cannot drift
KERNEL_OPTIONS = ["index=off", "redirect_dir=off", "metacopy=off"]
#: the kernel reading metacopy files (it forces redirect_dir=on with them)
KERNEL_METACOPY_OPTIONS = ["index=off", "metacopy=on"]


def whiteout(path: Path) -> None:
    os.mknod(path, stat.S_IFCHR | 0, 0)


def opaque(path: Path) -> None:
    os.setxattr(path, OPAQUE, b"y")


def write(path: Path, data: bytes, mode: int = 0o644, **xattrs: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    os.chmod(path, mode)
    for k, v in xattrs.items():
        os.setxattr(path, k.replace("__", "."), v)


def kernel_mount(
    target: str,
    lowers: list[str],
    upper: str | None,
    work: str | None,
    options: list[str] = KERNEL_OPTIONS,
) -> None:
    method = mnt.FSCONFIG if mnt.lowerdir_plus_supported() else mnt.LEGACY
    mnt.mount_overlay(
        target, lowers, upper, work, readonly=upper is None, options=options, method=method
    )


def unmount(target: str) -> None:
    if in_mountinfo(target):
        sc.umount(target, sc.MNT_DETACH)


@contextlib.contextmanager
def fuse_mount(
    target: str, lowers: list[str], upper: str | None = None, work: str | None = None
) -> Iterator[object]:
    proc = start_server(target, lowers, upper, work)
    try:
        yield proc
    finally:
        stop_server(proc, target)


@contextlib.contextmanager
def kmount(
    target: str,
    lowers: list[str],
    upper: str | None,
    work: str | None,
    options: list[str] = KERNEL_OPTIONS,
) -> Iterator[None]:
    kernel_mount(target, lowers, upper, work, options)
    try:
        yield
    finally:
        unmount(target)


def _xattrs(p: str) -> tuple[tuple[str, bytes], ...]:
    try:
        names = os.listxattr(p, follow_symlinks=False)
    except OSError:
        return ()
    return tuple(sorted((n, os.getxattr(p, n, follow_symlinks=False)) for n in names))


def snapshot(root: str) -> dict[str, tuple]:
    """Every path -> (mode string, uid, gid, size, sha256, link target, xattrs, rdev, nlink,
    names sharing its inode). Times are left out: copy-up and creation times differ by
    microseconds between two mounts even when both are right."""
    rows: dict[str, tuple] = {}
    inodes: dict[tuple[int, int], list[str]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in sorted(dirnames + filenames):
            p = os.path.join(dirpath, name)
            rel = os.path.relpath(p, root)
            st = os.lstat(p)
            fmt = stat.S_IFMT(st.st_mode)
            digest = ""
            if fmt == stat.S_IFREG:
                with open(p, "rb") as fh:
                    digest = hashlib.sha256(fh.read()).hexdigest()
            if fmt != stat.S_IFDIR:
                inodes.setdefault((st.st_dev, st.st_ino), []).append(rel)
            rows[rel] = (
                stat.filemode(st.st_mode),
                st.st_uid,
                st.st_gid,
                st.st_size if fmt in (stat.S_IFREG, stat.S_IFLNK) else 0,
                digest,
                os.readlink(p) if fmt == stat.S_IFLNK else "",
                _xattrs(p),
                st.st_rdev if fmt in (stat.S_IFCHR, stat.S_IFBLK) else 0,
                st.st_nlink,
            )
    for paths in inodes.values():
        for p in paths:
            rows[p] = (*rows[p], tuple(sorted(paths)))
    return {p: row if len(row) == 10 else (*row, ()) for p, row in rows.items()}


@contextlib.contextmanager
def workdir(base: Path, prefix: str) -> Iterator[Path]:
    d = Path(tempfile.mkdtemp(prefix=prefix, dir=base))
    try:
        yield d
    finally:
        for m in sorted(_mounts_below(d), key=len, reverse=True):
            sc.umount(m, sc.MNT_DETACH)
        shutil.rmtree(d, ignore_errors=True)


def _mounts_below(d: Path) -> list[str]:
    prefix = str(d) + "/"
    with open("/proc/self/mountinfo") as f:
        return [p for line in f if (p := line.split(" ", 5)[4]).startswith(prefix) or p == str(d)]
