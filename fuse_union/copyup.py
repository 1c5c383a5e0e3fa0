"""Copy-up: bring a lower object into the upper layer before it is changed.

Done as overlayfs does it (Documentation/filesystems/overlayfs.rst, "Non-directories"):
the copy is built in the work directory -- same filesystem as the upper layer, invisible
in the merged view -- with data, owner, mode, xattrs and times, and renamed into place in
one step, so a crash never leaves a half-copied file visible. Data moves with
``copy_file_range(2)``, which lets the filesystem share extents (reflink) or copy in the
kernel without passing bytes through Python.

These are full copies; the metadata-only form for chmod/chown/utimes/xattr changes is
:mod:`.metacopy`.
"""

from __future__ import annotations

import contextlib
import os
import stat

from pydock.fuse_union.stack import PRIVATE_PREFIX

_CHUNK = 1 << 30
_RENAME_EXCHANGE = 2  # <linux/fs.h>; Python 3.11's os has no renameat2
_AT_FDCWD = -100
_libc = None


def copy_xattrs(src: str, dst: str) -> None:
    """Copy every xattr but overlay's private ones (lower layers carry opaque markers)."""
    try:
        names = os.listxattr(src, follow_symlinks=False)
    except OSError:
        return
    for name in names:
        if name.startswith(PRIVATE_PREFIX):
            continue
        try:
            value = os.getxattr(src, name, follow_symlinks=False)
            os.setxattr(dst, name, value, follow_symlinks=False)
        except OSError:
            # e.g. security.* a filesystem refuses on a symlink; overlay skips those too
            continue


def copy_data(src_fd: int, dst_fd: int, length: int) -> None:
    copied = 0
    while copied < length:
        n = os.copy_file_range(src_fd, dst_fd, min(_CHUNK, length - copied), copied, copied)
        if n == 0:
            break
        copied += n


def copy_up(src: str, dst: str, work: str, tmpname: str, *, data_len: int | None = None) -> None:
    """Copy ``src`` (lower, any file type but a directory) to ``dst`` (upper) via ``work``.

    ``data_len`` limits how many bytes of a regular file are copied: a truncate or an
    O_TRUNC open need none of the data it is about to drop.
    """
    st = os.lstat(src)
    tmp = os.path.join(work, tmpname)
    mode = stat.S_IMODE(st.st_mode)
    try:
        if stat.S_ISREG(st.st_mode):
            n = st.st_size if data_len is None else min(data_len, st.st_size)
            sfd = os.open(src, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
            try:
                dfd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
                try:
                    copy_data(sfd, dfd, n)
                    # durable before the rename makes it visible, as overlay does (it
                    # fsyncs copied-up data unless mounted "volatile"): a crash must not
                    # leave an empty upper file hiding the lower one
                    if n:
                        os.fsync(dfd)
                    os.fchown(dfd, st.st_uid, st.st_gid)
                    os.fchmod(dfd, mode)  # after chown, which clears set-id bits
                finally:
                    os.close(dfd)
            finally:
                os.close(sfd)
        elif stat.S_ISLNK(st.st_mode):
            os.symlink(os.readlink(src), tmp)
            os.chown(tmp, st.st_uid, st.st_gid, follow_symlinks=False)
        else:  # devices, fifos, sockets
            os.mknod(tmp, stat.S_IFMT(st.st_mode) | mode, st.st_rdev)
            os.chown(tmp, st.st_uid, st.st_gid, follow_symlinks=False)
            os.chmod(tmp, mode)
        copy_xattrs(src, tmp)
        os.utime(tmp, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)
        os.rename(tmp, dst)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def copy_up_dir(src: str, dst: str) -> None:
    """Create the upper directory ``dst`` with ``src``'s owner, mode, xattrs and times.

    mkdir is atomic by itself; the directory is empty, so there is nothing to stage.
    """
    st = os.lstat(src)
    os.mkdir(dst, 0o700)
    try:
        os.chown(dst, st.st_uid, st.st_gid)
        os.chmod(dst, stat.S_IMODE(st.st_mode))
        copy_xattrs(src, dst)
        os.utime(dst, ns=(st.st_atime_ns, st.st_mtime_ns))
    except BaseException:
        with contextlib.suppress(OSError):
            os.rmdir(dst)
        raise


def rename_exchange(a: str, b: str) -> None:
    """Swap two names atomically: renameat2(2) with RENAME_EXCHANGE, via libc (ctypes)."""
    import ctypes

    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
    if _libc.renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE):
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e), a, None, b)
