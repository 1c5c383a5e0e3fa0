"""Whole-tree operations on trusted layer directories: copy, compare, measure.

These run on directories the driver owns (a parent layer, a container's writable copy), so
they use plain ``lstat``/``follow_symlinks=False`` path calls rather than the descriptor walk
that untrusted tar input needs (:mod:`pydock.drivers.safefs`).
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterable
from pathlib import Path

from pydock.drivers.base import Change, ChangeKind, Usage

_CHUNK = 1 << 20
#: kernel file timestamps come from a coarse clock that may lag the fine one by a tick or so;
#: a file whose ctime is within this margin of a layer's copy is compared byte by byte.
CTIME_MARGIN_NS = 1_000_000_000


def read_xattrs(path: str | os.PathLike[str]) -> dict[str, bytes]:
    """All xattrs of ``path`` (not following a final symlink), including trusted.*."""
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError as e:
        if e.errno in (errno.ENOTSUP, errno.EOPNOTSUPP):
            return {}
        raise
    out = {}
    for name in names:
        try:
            out[name] = os.getxattr(path, name, follow_symlinks=False)
        except OSError as e:
            if e.errno != errno.ENODATA:  # removed meanwhile
                raise
    return out


# -- copy ----------------------------------------------------------------------------------


def copy_tree(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
    """Copy the tree ``src`` to ``dst`` (new or empty) with everything a layer carries.

    Content goes through ``copy_file_range(2)``, which reflinks on btrfs/xfs (O(1)) and copies
    in-kernel elsewhere. Modes, owners, ns times, xattrs (trusted.* too), hard links within
    the tree, symlinks, devices and fifos are kept; sockets are skipped.
    """
    _Copier().copy_dir(os.fspath(src), os.fspath(dst), is_root=True)


class _Copier:
    def __init__(self) -> None:
        self.links: dict[tuple[int, int], str] = {}

    def copy_dir(self, src: str, dst: str, *, is_root: bool = False) -> None:
        st = os.lstat(src)
        if is_root:
            try:
                os.mkdir(dst, 0o700)
            except FileExistsError:
                if os.listdir(dst):
                    raise

        with os.scandir(src) as it:
            entries = sorted(it, key=lambda e: e.name)
        for e in entries:
            s, d = e.path, os.path.join(dst, e.name)
            est = e.stat(follow_symlinks=False)
            fmt = stat.S_IFMT(est.st_mode)
            if fmt == stat.S_IFDIR:
                os.mkdir(d, 0o700)
                self.copy_dir(s, d)
                continue
            if est.st_nlink > 1:
                first = self.links.get((est.st_dev, est.st_ino))
                if first is not None:
                    os.link(first, d, follow_symlinks=False)
                    continue
                self.links[(est.st_dev, est.st_ino)] = d
            if fmt == stat.S_IFREG:
                _copy_file(s, d, est)
            elif fmt == stat.S_IFLNK:
                os.symlink(os.readlink(s), d)
                _copy_meta(s, d, est)
            elif fmt in (stat.S_IFCHR, stat.S_IFBLK, stat.S_IFIFO):
                os.mknod(d, fmt | 0o600, est.st_rdev)
                _copy_meta(s, d, est)
            # sockets: not layer content
        _copy_meta(src, dst, st)  # after the contents, which changed dst's mtime


def _copy_file(src: str, dst: str, st: os.stat_result) -> None:
    with open(src, "rb") as fi:
        fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        try:
            _copy_data(fi.fileno(), fd, st.st_size)
        finally:
            os.close(fd)
    _copy_meta(src, dst, st)


def _copy_data(fi: int, fo: int, size: int) -> None:
    left = size
    try:
        while left > 0:
            n = os.copy_file_range(fi, fo, min(left, 1 << 30))
            if n == 0:
                break
            left -= n
        return
    except OSError as e:
        if e.errno not in (errno.EXDEV, errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
            raise
    # Filesystems without copy_file_range support: plain copy from where we are.
    while True:
        buf = os.read(fi, _CHUNK)
        if not buf:
            break
        os.write(fo, buf)


def _copy_meta(src: str, dst: str, st: os.stat_result) -> None:
    os.chown(dst, st.st_uid, st.st_gid, follow_symlinks=False)
    if not stat.S_ISLNK(st.st_mode):
        os.chmod(dst, stat.S_IMODE(st.st_mode))  # after chown, which clears setuid
    for name, value in read_xattrs(src).items():
        os.setxattr(dst, name, value, follow_symlinks=False)
    os.utime(dst, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)


# -- compare -------------------------------------------------------------------------------


def tree_changes(
    layer_dir: str | os.PathLike[str],
    parent_dir: str | os.PathLike[str] | None,
    *,
    unchanged_before_ns: int | None = None,
) -> list[Change]:
    """What ``layer_dir`` changed relative to ``parent_dir`` (None: an empty parent), sorted.

    Docker's naive diff, made exact: an entry is modified ("C") when its type, mode, owner,
    xattrs, link target or device number differ, for non-directories also size, mtime (ns)
    or link count, and for regular files whose metadata all match, their bytes. A directory
    is also "C" when its mtime changed or anything below it changed (Docker reports the
    parents of every change so that applying the diff restores their metadata). The layer
    root itself is never listed. Deleted directories are listed once, not per child.

    ``unchanged_before_ns``: when the layer was made as a copy, files whose ctime is older
    than this (minus :data:`CTIME_MARGIN_NS`) were not touched since, so their bytes are not
    compared (any write or utime after the copy moves ctime forward).
    """
    cutoff = None if unchanged_before_ns is None else unchanged_before_ns - CTIME_MARGIN_NS
    out: list[Change] = []
    pdir = os.fspath(parent_dir) if parent_dir is not None else None
    _compare_dir(os.fspath(layer_dir), pdir, "", out, cutoff)
    out.sort()
    return out


def _compare_dir(
    ldir: str, pdir: str | None, rel: str, out: list[Change], cutoff: int | None
) -> bool:
    lnames = os.listdir(ldir)
    pnames = set(os.listdir(pdir)) if pdir is not None else set()
    changed = False
    for name in pnames.difference(lnames):
        out.append(Change(f"{rel}/{name}", ChangeKind.DELETE))
        changed = True
    for name in lnames:
        r = f"{rel}/{name}"
        lp = os.path.join(ldir, name)
        lst = os.lstat(lp)
        ldir_ = stat.S_ISDIR(lst.st_mode)
        if name not in pnames:
            out.append(Change(r, ChangeKind.ADD))
            if ldir_:
                _all_added(lp, r, out)
            changed = True
            continue
        pp = os.path.join(pdir, name)  # type: ignore[arg-type]
        pst = os.lstat(pp)
        same_type = stat.S_IFMT(lst.st_mode) == stat.S_IFMT(pst.st_mode)
        differs = not same_type or _meta_differs(lp, lst, pp, pst, cutoff)
        if ldir_:
            mark = len(out)
            inner = _compare_dir(lp, pp if same_type else None, r, out, cutoff)
            if differs or inner:
                out.insert(mark, Change(r, ChangeKind.MODIFY))
                changed = True
        elif differs:
            out.append(Change(r, ChangeKind.MODIFY))
            changed = True
    return changed


def _all_added(ldir: str, rel: str, out: list[Change]) -> None:
    with os.scandir(ldir) as it:
        for e in it:
            r = f"{rel}/{e.name}"
            out.append(Change(r, ChangeKind.ADD))
            if e.is_dir(follow_symlinks=False):
                _all_added(e.path, r, out)


def _meta_differs(
    lp: str, lst: os.stat_result, pp: str, pst: os.stat_result, cutoff: int | None
) -> bool:
    if (lst.st_mode, lst.st_uid, lst.st_gid) != (pst.st_mode, pst.st_uid, pst.st_gid):
        return True
    if lst.st_mtime_ns != pst.st_mtime_ns:
        return True
    fmt = stat.S_IFMT(lst.st_mode)
    if fmt != stat.S_IFDIR and (lst.st_size, lst.st_nlink) != (pst.st_size, pst.st_nlink):
        return True
    if fmt in (stat.S_IFCHR, stat.S_IFBLK) and lst.st_rdev != pst.st_rdev:
        return True
    if fmt == stat.S_IFLNK and os.readlink(lp) != os.readlink(pp):
        return True
    if read_xattrs(lp) != read_xattrs(pp):
        return True
    if fmt == stat.S_IFREG:
        if cutoff is not None and lst.st_ctime_ns < cutoff:
            return False
        return not _same_bytes(lp, pp)
    return False


def _same_bytes(a: str, b: str) -> bool:
    with open(a, "rb") as fa, open(b, "rb") as fb:
        while True:
            x, y = fa.read(_CHUNK), fb.read(_CHUNK)
            if x != y:
                return False
            if not x:
                return True


def diff_size(root_dir: str | os.PathLike[str], changes: Iterable[Change]) -> int:
    """Bytes of regular-file content the added/modified paths hold (hard links once)."""
    seen: set[tuple[int, int]] = set()
    total = 0
    root = Path(root_dir)
    for ch in changes:
        if ch.kind == ChangeKind.DELETE:
            continue
        try:
            st = os.lstat(root / ch.path.lstrip("/"))
        except FileNotFoundError:
            continue  # removed by the running container since the changes were listed
        if stat.S_ISREG(st.st_mode) and (st.st_dev, st.st_ino) not in seen:
            seen.add((st.st_dev, st.st_ino))
            total += st.st_size
    return total


# -- measure -------------------------------------------------------------------------------


def measure_usage(root_dir: str | os.PathLike[str]) -> Usage:
    """Blocks actually allocated (st_blocks * 512) and inodes under ``root_dir``, links once."""
    seen: set[tuple[int, int]] = set()
    size = 0
    stack = [os.fspath(root_dir)]
    st = os.lstat(stack[0])
    seen.add((st.st_dev, st.st_ino))
    size += st.st_blocks * 512
    while stack:
        with os.scandir(stack.pop()) as it:
            for e in it:
                est = e.stat(follow_symlinks=False)
                key = (est.st_dev, est.st_ino)
                if key in seen:
                    continue
                seen.add(key)
                size += est.st_blocks * 512
                if stat.S_ISDIR(est.st_mode):
                    stack.append(e.path)
    return Usage(size=size, inodes=len(seen))
