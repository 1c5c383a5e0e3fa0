"""Shared layer helpers: OCI layer tars in and out of a directory, for every driver.

Public API (drivers import from here; the sibling modules hold the pieces):

``apply_tar(stream, dest_dir, *, whiteouts: WhiteoutHandler) -> int``
    Stream an uncompressed OCI layer tar (``tarfile`` mode ``r|``) into ``dest_dir``; returns
    the bytes of regular-file content written. Preserves modes (setuid/sticky included),
    numeric owners, mtimes in ns (PAX ``mtime``; directories get theirs after their
    contents), xattrs (PAX ``SCHILY.xattr.*``), hard links, symlinks, char/block devices and
    fifos; sockets are skipped. Whiteouts go to ``whiteouts`` (see
    :mod:`pydock.drivers.whiteouts`); other ``.wh..wh.*`` names are reserved and skipped.
    Hostile entries raise :class:`~pydock.drivers.base.UnsafeLayer` before anything is
    written outside ``dest_dir``. Nothing is rolled back: the caller builds into a
    temporary directory (:class:`pydock.drivers.state.TempDir`) and discards it on error.

``reproduce_tar(tar_split, tree, out) -> bool``
    The exact layer tar ``apply_tar(..., tar_split=...)`` read, rebuilt from the recorded
    framing and the files in ``tree`` (:mod:`pydock.drivers.tarsplit`); False when it
    cannot be (no recording, a file missing or resized), before any byte is written.

``write_tar(out, root_dir, changes=None, *, whiteout_reader=None) -> int``
    Write an OCI layer tar (PAX, numeric owners, ns mtimes, xattrs, hard links by
    (dev, ino), devices, directories before their contents). With ``changes`` (a list of
    :class:`~pydock.drivers.base.Change`, e.g. from :func:`tree_changes`) only those paths
    are written and deletions become ``.wh.NAME``; without, the whole of ``root_dir`` is
    written (an overlay upper dir) and ``whiteout_reader`` turns on-disk whiteouts into
    ``.wh.NAME`` and opaque directories into ``DIR/.wh..wh..opq``. Returns regular-file
    bytes written.

From :mod:`pydock.drivers.treeops` (re-exported here):
``tree_changes(layer_dir, parent_dir, *, unchanged_before_ns=None) -> list[Change]``,
``diff_size(root_dir, changes) -> int``, ``copy_tree(src, dst) -> None``,
``measure_usage(root_dir) -> Usage``, ``read_xattrs(path) -> dict[str, bytes]``.

From :mod:`pydock.drivers.state` (re-exported here):
``write_json_atomic(path, obj)``, ``read_json(path)``, ``RefCounts(dir)``,
``TempDir(home, id)`` and ``cleanup_temp_dirs(home)``.

From :mod:`pydock.drivers.whiteouts`: ``WhiteoutHandler``, ``WhiteoutReader``,
``DeletingWhiteouts`` (vfs), ``OverlayWhiteouts`` and ``OverlayWhiteoutReader`` (overlay2).
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
from collections.abc import Iterable
from pathlib import Path

from pydock.drivers.base import Change, ChangeKind, DriverError, UnsafeLayer
from pydock.drivers.safefs import SafeRoot, remove_at, split_member_name
from pydock.drivers.state import (
    RefCounts,
    TempDir,
    cleanup_temp_dirs,
    read_json,
    write_json_atomic,
)
from pydock.drivers.treeops import (
    copy_tree,
    diff_size,
    measure_usage,
    read_xattrs,
    tree_changes,
)
from pydock.drivers.whiteouts import (
    DeletingWhiteouts,
    OverlayWhiteoutReader,
    OverlayWhiteouts,
    WhiteoutHandler,
    WhiteoutReader,
)

TYPE_CHECKING = False  # typing costs milliseconds to import on the start path
if TYPE_CHECKING:
    import tarfile
    from typing import BinaryIO

# tarfile and decimal are imported where layers are read or written, not at import time:
# `pydock run` loads this module (via the driver) but only creates and mounts layers.

__all__ = [
    "apply_tar",
    "reproduce_tar",
    "write_tar",
    "tree_changes",
    "diff_size",
    "copy_tree",
    "measure_usage",
    "read_xattrs",
    "write_json_atomic",
    "read_json",
    "RefCounts",
    "TempDir",
    "cleanup_temp_dirs",
    "WhiteoutHandler",
    "WhiteoutReader",
    "DeletingWhiteouts",
    "OverlayWhiteouts",
    "OverlayWhiteoutReader",
    "WHITEOUT_PREFIX",
    "OPAQUE_MARKER",
]

WHITEOUT_PREFIX = ".wh."
OPAQUE_MARKER = ".wh..wh..opq"
_RESERVED_PREFIX = ".wh..wh."
_XATTR_PAX = "SCHILY.xattr."
#: overlayfs bookkeeping is never layer content, in either direction
_PRIVATE_XATTR_PREFIX = "trusted.overlay."

Key = tuple[str, ...]


# -- reading a layer tar -------------------------------------------------------------------


def apply_tar(
    stream: BinaryIO,
    dest_dir: str | os.PathLike[str],
    *,
    whiteouts: WhiteoutHandler,
    tar_split: str | os.PathLike[str] | None = None,
) -> int:
    """Unpack the layer tar ``stream`` into ``dest_dir``; see the module docstring.

    With ``tar_split``, the tar's framing is recorded to that file (see
    :mod:`pydock.drivers.tarsplit`) and the stream is read to its end, so that
    :func:`reproduce_tar` can later write the original bytes back. The file is only
    created when the recording is reproducible.
    """
    if tar_split is None:
        return _Applier(dest_dir, whiteouts).run(stream)
    from pydock.drivers.tarsplit import Recorder

    rec = Recorder(stream, tar_split)
    try:
        size = _Applier(dest_dir, whiteouts).run(rec)  # type: ignore[arg-type]
        rec.finish()
    except BaseException:
        rec.abort()
        raise
    return size


def reproduce_tar(
    tar_split: str | os.PathLike[str], tree: str | os.PathLike[str], out: BinaryIO
) -> bool:
    """Write the layer tar recorded by :func:`apply_tar` back, byte for byte, from ``tree``.

    False (nothing written) when there is no recording or the tree no longer matches it.
    """
    if not os.path.exists(tar_split):
        return False
    from pydock.drivers.tarsplit import reproduce

    return reproduce(tar_split, tree, out)


def _pax_ns(member: tarfile.TarInfo, key: str, fallback: float) -> int:
    # PAX keeps the full decimal string; TarInfo.mtime is a float that loses nanoseconds.
    from decimal import Decimal

    raw = member.pax_headers.get(key)
    if raw is not None:
        try:
            return int(Decimal(raw) * 1_000_000_000)
        except ArithmeticError:
            pass
    return int(Decimal(str(fallback)) * 1_000_000_000)


def _member_xattrs(member: tarfile.TarInfo) -> dict[str, bytes]:
    # tarfile decodes PAX values as UTF-8 with surrogateescape (hdrcharset=BINARY for
    # non-UTF-8 values); encoding back the same way restores the original bytes.
    return {
        k[len(_XATTR_PAX) :]: v.encode("utf-8", "surrogateescape")
        for k, v in member.pax_headers.items()
        if k.startswith(_XATTR_PAX)
    }


class _Applier:
    def __init__(self, dest: str | os.PathLike[str], whiteouts: WhiteoutHandler) -> None:
        self.dest = dest
        self.wh = whiteouts
        self.added: set[Key] = set()  # paths this tar created (whiteouts skip them)
        self.whited: set[Key] = set()  # paths this tar whited out (a later dir is opaque)
        self.dir_times: dict[Key, tuple[int, int]] = {}
        self.size = 0

    def run(self, stream: BinaryIO) -> int:
        import tarfile

        try:
            with (
                SafeRoot(self.dest) as self.root,
                tarfile.open(
                    fileobj=stream, mode="r|", encoding="utf-8", errors="surrogateescape"
                ) as tar,
            ):
                for member in tar:
                    self._member(tar, member)
                self._set_dir_times()
        except tarfile.TarError as e:
            raise DriverError(f"invalid layer tar: {e}") from None
        return self.size

    # -- one entry -----------------------------------------------------------------------
    def _member(self, tar: tarfile.TarFile, m: tarfile.TarInfo) -> None:
        parts = split_member_name(m.name)
        if not parts:
            if m.isdir():  # "./": the layer root's own metadata
                self._set_meta_fd(self.root.root_fd, m)
                self.dir_times[()] = self._times(m)
            return
        *pp, base = parts
        if base.startswith(WHITEOUT_PREFIX):
            self._whiteout(m, tuple(pp), base)
            return
        pfd = self.root.dir_fd(pp, create=True, entry=m.name)
        key = tuple(parts)
        self._create(tar, m, pfd, base, key)
        self.added.add(key)
        if m.isdir() and key in self.whited:
            # ".wh.x" then "x/" in one layer: the new x replaces the lower one entirely.
            self.wh.opaque(self.root.dir_fd(key, create=False, entry=m.name), frozenset())

    def _whiteout(self, m: tarfile.TarInfo, pp: Key, base: str) -> None:
        pfd = self.root.dir_fd(pp, create=True, entry=m.name)
        if base == OPAQUE_MARKER:
            self.root.forget_below(pp)
            self.wh.opaque(pfd, self._added_below(pp))
            return
        if base.startswith(_RESERVED_PREFIX):
            return  # reserved (aufs .wh..wh.plnk and friends): layer.md says ignore
        name = base[len(WHITEOUT_PREFIX) :]
        if name in ("", ".", "..") or "/" in name:
            raise UnsafeLayer(f"layer entry {m.name!r} is an invalid whiteout")
        key = (*pp, name)
        if key in self.added:
            # Whiteouts hide lower layers only. If the same tar added a directory there,
            # that directory must still hide the lower one's children.
            st = os.stat(name, dir_fd=pfd, follow_symlinks=False)
            if stat.S_ISDIR(st.st_mode):
                fd = self.root.dir_fd(key, create=False, entry=m.name)
                self.root.forget_below(key)
                self.wh.opaque(fd, self._added_below(key))
            return
        self.root.forget(key)
        self.wh.whiteout(pfd, name)
        self.whited.add(key)

    def _added_below(self, key: Key) -> frozenset[Key]:
        n = len(key)
        return frozenset(k[n:] for k in self.added if len(k) > n and k[:n] == key)

    def _create(
        self, tar: tarfile.TarFile, m: tarfile.TarInfo, pfd: int, base: str, key: Key
    ) -> None:
        try:
            old = os.stat(base, dir_fd=pfd, follow_symlinks=False)
        except FileNotFoundError:
            old = None
        if old is not None:
            if m.isdir() and stat.S_ISDIR(old.st_mode):
                fd = self.root.dir_fd(key, create=False, entry=m.name)
                self._set_meta_fd(fd, m, replace_xattrs=True)
                self.dir_times[key] = self._times(m)
                return
            if m.islnk() and self._same_as_link_target(m, old):
                return
            # Replace whatever is there (a symlink included) rather than write through it.
            self.root.forget(key)
            remove_at(pfd, base)

        if m.isreg():
            self._regular(tar, m, pfd, base)
        elif m.isdir():
            os.mkdir(base, 0o700, dir_fd=pfd)
            fd = self.root.dir_fd(key, create=False, entry=m.name)
            self._set_meta_fd(fd, m)
            self.dir_times[key] = self._times(m)
        elif m.issym():
            os.symlink(m.linkname, base, dir_fd=pfd)
            self._set_meta_at(pfd, base, m, chmod=False)
        elif m.islnk():
            self._hardlink(m, pfd, base)
        elif m.ischr() or m.isblk() or m.isfifo():
            kind = stat.S_IFCHR if m.ischr() else stat.S_IFBLK if m.isblk() else stat.S_IFIFO
            dev = os.makedev(m.devmajor, m.devminor) if not m.isfifo() else 0
            os.mknod(base, kind | 0o600, dev, dir_fd=pfd)
            self._set_meta_at(pfd, base, m, chmod=True)
        else:
            raise DriverError(f"layer entry {m.name!r} has unsupported type {m.type!r}")

    def _regular(self, tar: tarfile.TarFile, m: tarfile.TarInfo, pfd: int, base: str) -> None:
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        fd = os.open(base, flags, 0o600, dir_fd=pfd)
        with os.fdopen(fd, "wb") as f:
            src = tar.extractfile(m)
            if src is not None:
                shutil.copyfileobj(src, f, 1 << 20)
            f.flush()
            self._set_meta_fd(fd, m)
            os.utime(fd, ns=self._times(m))
        self.size += m.size

    def _hardlink(self, m: tarfile.TarInfo, pfd: int, base: str) -> None:
        tparts = split_member_name(m.linkname)
        if not tparts:
            raise UnsafeLayer(f"layer entry {m.name!r} hard-links the layer root")
        missing = f"layer entry {m.name!r}: link target {m.linkname!r} missing"
        try:
            tpfd = self.root.dir_fd(tparts[:-1], create=False, entry=m.name)
        except FileNotFoundError:
            raise DriverError(missing) from None
        try:
            os.link(tparts[-1], base, src_dir_fd=tpfd, dst_dir_fd=pfd, follow_symlinks=False)
        except FileNotFoundError:
            raise DriverError(missing) from None
        except PermissionError:
            raise DriverError(f"layer entry {m.name!r}: cannot hard-link {m.linkname!r}") from None

    def _same_as_link_target(self, m: tarfile.TarInfo, old: os.stat_result) -> bool:
        tparts = split_member_name(m.linkname)
        try:
            tpfd = self.root.dir_fd(tparts[:-1], create=False, entry=m.name)
            t = os.stat(tparts[-1], dir_fd=tpfd, follow_symlinks=False)
        except (FileNotFoundError, IndexError):
            return False
        return (t.st_dev, t.st_ino) == (old.st_dev, old.st_ino)

    # -- metadata ------------------------------------------------------------------------
    @staticmethod
    def _times(m: tarfile.TarInfo) -> tuple[int, int]:
        mtime = _pax_ns(m, "mtime", m.mtime)
        return _pax_ns(m, "atime", mtime / 1e9) if "atime" in m.pax_headers else mtime, mtime

    def _set_meta_fd(self, fd: int, m: tarfile.TarInfo, *, replace_xattrs: bool = False) -> None:
        os.fchown(fd, m.uid, m.gid)
        os.fchmod(fd, m.mode & 0o7777)  # after chown, which clears setuid/setgid
        want = _member_xattrs(m)
        if replace_xattrs:
            # An existing directory takes the entry's xattrs as a whole (an exact diff of a
            # directory whose xattr was removed must remove it here too).
            for name in os.listxattr(fd):
                if name not in want and not name.startswith(_PRIVATE_XATTR_PREFIX):
                    os.removexattr(fd, name)
        for name, value in want.items():
            _set_xattr(fd, name, value, m.name)

    def _set_meta_at(self, pfd: int, base: str, m: tarfile.TarInfo, *, chmod: bool) -> None:
        # Symlinks, devices and fifos are never opened (opening a device or fifo has effects).
        os.chown(base, m.uid, m.gid, dir_fd=pfd, follow_symlinks=False)
        if chmod:
            # ``base`` was just made by us with mknod in a verified directory: not a symlink.
            os.chmod(base, m.mode & 0o7777, dir_fd=pfd)
        path = self.root.proc_path(pfd, base)
        for name, value in _member_xattrs(m).items():
            _set_xattr(path, name, value, m.name, follow_symlinks=False)
        os.utime(base, ns=self._times(m), dir_fd=pfd, follow_symlinks=False)

    def _set_dir_times(self) -> None:
        # Deepest first, after every entry: creating children changes a directory's mtime.
        for key in sorted(self.dir_times, key=len, reverse=True):
            try:
                fd = self.root.dir_fd(key, create=False, entry="/".join(key))
            except (FileNotFoundError, UnsafeLayer):
                continue  # removed or replaced by a later entry
            os.utime(fd, ns=self.dir_times[key])


def _set_xattr(
    target: int | str, name: str, value: bytes, entry: str, *, follow_symlinks: bool = True
) -> None:
    if name.startswith(_PRIVATE_XATTR_PREFIX):
        # A layer must not forge overlayfs whiteouts/redirects (they would change what the
        # kernel shows from the lower layers).
        return
    try:
        os.setxattr(target, name, value, follow_symlinks=follow_symlinks)
    except OSError as e:
        if e.errno in (errno.ENOTSUP, errno.EOPNOTSUPP):
            raise DriverError(
                f"layer entry {entry!r}: the backing filesystem does not support xattr {name!r}"
            ) from None
        raise


# -- writing a layer tar -------------------------------------------------------------------


def write_tar(
    out: BinaryIO,
    root_dir: str | os.PathLike[str],
    changes: Iterable[Change] | None = None,
    *,
    whiteout_reader: WhiteoutReader | None = None,
) -> int:
    """Write an OCI layer tar of ``root_dir`` to ``out``; see the module docstring."""
    w = _Writer(out, Path(root_dir), whiteout_reader)
    try:
        if changes is None:
            w.walk("")
        else:
            for ch in sorted(changes):
                rel = ch.path.lstrip("/")
                if ch.kind == ChangeKind.DELETE:
                    w.whiteout(rel)
                else:
                    w.entry(rel)
    finally:
        w.tar.close()
    return w.size


class _Writer:
    def __init__(self, out: BinaryIO, root: Path, reader: WhiteoutReader | None) -> None:
        import tarfile

        self.root = root
        self.reader = reader
        self.tar = tarfile.open(  # noqa: SIM115 - closed by write_tar
            fileobj=out,
            mode="w|",
            format=tarfile.PAX_FORMAT,
            encoding="utf-8",
            errors="surrogateescape",
        )
        self.links: dict[tuple[int, int], str] = {}
        self.size = 0

    def walk(self, rel: str) -> None:
        """Whole-tree export, directories first, in name order (reproducible output)."""
        base = self.root / rel if rel else self.root
        for name in sorted(os.listdir(base)):
            child = f"{rel}/{name}" if rel else name
            st = os.lstat(self.root / child)
            if self.reader is not None and self.reader.is_whiteout(st):
                self.whiteout(child)
                continue
            xattrs = self.entry(child, st)
            if stat.S_ISDIR(st.st_mode):
                if self.reader is not None and self.reader.is_opaque(xattrs):
                    self._marker(f"{child}/{OPAQUE_MARKER}")
                self.walk(child)

    def whiteout(self, rel: str) -> None:
        head, _, name = rel.rpartition("/")
        self._marker(f"{head}/{WHITEOUT_PREFIX}{name}" if head else f"{WHITEOUT_PREFIX}{name}")

    def _marker(self, name: str) -> None:
        import tarfile

        ti = tarfile.TarInfo(name)
        ti.type, ti.mode, ti.uid, ti.gid, ti.uname, ti.gname = tarfile.REGTYPE, 0o644, 0, 0, "", ""
        self.tar.addfile(ti)

    def entry(self, rel: str, st: os.stat_result | None = None) -> dict[str, bytes]:
        import tarfile

        path = self.root / rel
        if st is None:
            st = os.lstat(path)
        xattrs = read_xattrs(path)
        ti = tarfile.TarInfo(rel)
        ti.uid, ti.gid, ti.uname, ti.gname = st.st_uid, st.st_gid, "", ""
        ti.mode = stat.S_IMODE(st.st_mode)
        ti.mtime = st.st_mtime_ns // 1_000_000_000
        ti.pax_headers = {"mtime": _ns_str(st.st_mtime_ns)}
        for name, value in xattrs.items():
            if not (self.reader is not None and self.reader.is_private_xattr(name)):
                ti.pax_headers[_XATTR_PAX + name] = value.decode("utf-8", "surrogateescape")
        fmt = stat.S_IFMT(st.st_mode)
        data = None
        if fmt != stat.S_IFDIR and st.st_nlink > 1:
            first = self.links.get((st.st_dev, st.st_ino))
            if first is not None:
                ti.type, ti.linkname = tarfile.LNKTYPE, first
                self.tar.addfile(ti)
                return xattrs
            self.links[(st.st_dev, st.st_ino)] = rel
        if fmt == stat.S_IFREG:
            ti.type, ti.size = tarfile.REGTYPE, st.st_size
            data = open(path, "rb")  # noqa: SIM115 - closed below
        elif fmt == stat.S_IFDIR:
            ti.type = tarfile.DIRTYPE
        elif fmt == stat.S_IFLNK:
            ti.type, ti.linkname = tarfile.SYMTYPE, os.readlink(path)
        elif fmt in (stat.S_IFCHR, stat.S_IFBLK):
            ti.type = tarfile.CHRTYPE if fmt == stat.S_IFCHR else tarfile.BLKTYPE
            ti.devmajor, ti.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
        elif fmt == stat.S_IFIFO:
            ti.type = tarfile.FIFOTYPE
        else:
            return xattrs  # sockets are not layer content
        try:
            self.tar.addfile(ti, data)
        finally:
            if data is not None:
                data.close()
        self.size += ti.size
        return xattrs


def _ns_str(ns: int) -> str:
    sec, frac = divmod(ns, 1_000_000_000)
    return f"{sec}.{frac:09d}" if frac else str(sec)
