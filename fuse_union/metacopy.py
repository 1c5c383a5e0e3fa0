"""Metadata-only copy-up in overlayfs' own on-disk form, and settling it for other readers.

A chmod/chown/utimes/xattr change of a lower regular file need not move its data: the
upper layer gets a *metacopy* file -- owner, mode, xattrs and times of the lower file, the
same size but no data blocks (a sparse file), and an empty ``trusted.overlay.metacopy``
xattr -- and the data stays in the lower layer until the first data write, which then
completes the copy in place. That is the kernel's format (Documentation/filesystems/
overlayfs.rst, "Metadata only copy up"; an empty xattr value is what the kernel writes
when fs-verity digests are off), so kernel overlay mounted with ``metacopy=on`` reads an
upper fuse-union left this way exactly as fuse-union does (tested).

Why the layer store never *keeps* that form. The overlay2 driver mounts with
``metacopy=off``, and the kernel then refuses every metacopy file with EPERM ("refusing
to follow metacopy origin"); switching overlay2 to ``metacopy=on`` is no way out, because
the kernel forces ``redirect_dir=on`` with it (``redirect_dir=off``/``nofollow`` are
"conflicting options"), its directory renames then write redirects, and the upper dir
stops being a complete change set: every diff/commit/export would need the slow
mount-and-compare diff, and fuse-union would have to follow directory redirects. So the
metacopy form is fuse-union's working state only:

* the server drops :data:`MARK` into its work dir before it writes the first metacopy file;
* whoever needs a complete upper dir -- the kernel mount of overlay2, the native diff,
  changes and size of both drivers -- first calls :func:`settle` when the mark is there and
  no server has the layer mounted: it copies the data of every metacopy file from the
  lower layers (``copy_file_range``), drops the xattr and then the mark. A layer removed
  while still in the metacopy state never pays for the copy;
* while fuse-union has the layer mounted, diffs compare the mounted trees instead (the
  server is the upper's only writer and serves the data).

The data origin is the same path in the lower layers, or the one a
``trusted.overlay.redirect`` names (absolute from the layer root, or a sibling name), as
the kernel writes it for renamed or hard-linked metacopy files. fuse-union itself never
renames or links a metacopy file: it completes the data first, so it writes no redirects.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat

from pydock.fuse_union import stack as st_

METACOPY_XATTR = "trusted.overlay.metacopy"
REDIRECT_XATTR = "trusted.overlay.redirect"
#: in the layer's work dir while metacopy files may be in its upper dir; the overlay2
#: driver reads this name too (overlay/driver.py), keep them equal
MARK = "fuse-union-metacopy"


def marked(work: str) -> bool:
    return os.path.exists(os.path.join(work, MARK))


def mark(work: str) -> None:
    fd = os.open(os.path.join(work, MARK), os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600)
    os.close(fd)


def may_be_metacopy(st: os.stat_result) -> bool:
    """Only regular files can be metacopy files; each one then costs a getxattr.

    The block count is no shortcut: xattrs that do not fit in the inode take a block of
    their own that st_blocks counts (ext4, xfs), so a small metacopy file with a few
    xattrs looks as if it had its data.
    """
    return stat.S_ISREG(st.st_mode)


def is_metacopy(path: str) -> bool:
    try:
        os.getxattr(path, METACOPY_XATTR, follow_symlinks=False)
        return True
    except OSError as e:
        if e.errno in (errno.ENODATA, errno.ENOTSUP):
            return False
        raise


def data_origin(lowers: list[str], rel: str, upper_real: str) -> str | None:
    """The lower file holding the data of the metacopy file ``upper_real`` at ``rel``.

    ``lowers`` are the lower layers' roots, top first. The path is resolved through them
    with overlay's rules (whiteouts end it, opaque directories stop the merge), starting
    from the redirect if the file has one.
    """
    try:
        redirect = os.fsdecode(os.getxattr(upper_real, REDIRECT_XATTR, follow_symlinks=False))
    except OSError:
        redirect = ""
    if redirect.startswith("/"):
        rel = redirect.strip("/")
    elif redirect:
        rel = os.path.join(os.path.dirname(rel), redirect)
    layers = st_.root_layers(lowers)
    parts = rel.split("/")
    cur = ""
    for i, name in enumerate(parts):
        cur = f"{cur}/{name}" if cur else name
        found = st_.lookup(lowers, layers, cur).found
        if found is None:
            return None
        if i == len(parts) - 1:
            if not stat.S_ISREG(found.st.st_mode):
                return None
            return os.path.join(lowers[found.layer], cur)
        if not found.is_dir:
            return None
        layers = found.dirlayers
    return None


def make(src: str, dst: str, work: str, tmpname: str) -> None:
    """Create the metacopy file ``dst`` (upper) for the lower regular file ``src``.

    Built in ``work`` and renamed into place like a full copy-up, so a crash leaves either
    nothing or a complete metacopy file; the mark is written first, so it is there for
    every metacopy file that may exist.
    """
    from pydock.fuse_union.copyup import copy_xattrs

    st = os.lstat(src)
    mark(work)
    tmp = os.path.join(work, tmpname)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        try:
            os.ftruncate(fd, st.st_size)  # the size, without the data: a hole
            os.fchown(fd, st.st_uid, st.st_gid)
            os.fchmod(fd, stat.S_IMODE(st.st_mode))  # after chown, which clears set-id bits
        finally:
            os.close(fd)
        copy_xattrs(src, tmp)
        os.setxattr(tmp, METACOPY_XATTR, b"", follow_symlinks=False)
        os.utime(tmp, ns=(st.st_atime_ns, st.st_mtime_ns))
        os.rename(tmp, dst)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def complete(upper_real: str, data: str, data_len: int | None = None) -> None:
    """Copy the data of ``data`` into the metacopy file ``upper_real`` and drop the xattr.

    In place, as the kernel completes a metacopy file: the data goes in first and the
    xattr goes last, so a crash in between leaves a metacopy file that the next attempt
    completes again. ``data_len`` limits the copy (a truncate drops the rest anyway). The
    file's times are kept: completing is no change a user made.
    """
    from pydock.fuse_union.copyup import copy_data

    ust = os.lstat(upper_real)
    n = ust.st_size if data_len is None else min(data_len, ust.st_size)
    sfd = os.open(data, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        dfd = os.open(upper_real, os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            copy_data(sfd, dfd, n)
            os.fsync(dfd)  # the data is on disk before the xattr that says "not here" goes
            os.utime(dfd, ns=(ust.st_atime_ns, ust.st_mtime_ns))
        finally:
            os.close(dfd)
    finally:
        os.close(sfd)
    # the write cleared set-id bits (file_remove_privs): restore the mode it had
    os.chmod(upper_real, stat.S_IMODE(ust.st_mode))
    with contextlib.suppress(OSError):
        os.removexattr(upper_real, REDIRECT_XATTR, follow_symlinks=False)
    os.removexattr(upper_real, METACOPY_XATTR, follow_symlinks=False)


def settle(upper: str, work: str, lowers: list[str]) -> int:
    """Complete every metacopy file of ``upper`` if ``work`` holds the mark; drop the mark.

    Call only while no fuse-union server has the layer mounted. Returns how many files
    were completed. A metacopy file whose data cannot be found (a lower layer went
    missing) is an error: the layer cannot be made whole.
    """
    if not marked(work):
        return 0
    done = 0
    for dirpath, _dirs, files in os.walk(upper):
        for name in files:
            real = os.path.join(dirpath, name)
            st = os.lstat(real)
            if not may_be_metacopy(st) or not is_metacopy(real):
                continue
            rel = os.path.relpath(real, upper)
            data = data_origin(lowers, rel, real)
            if data is None:
                raise OSError(errno.EIO, f"metacopy file {rel} has no data in the lower layers")
            complete(real, data)
            done += 1
    os.unlink(os.path.join(work, MARK))
    return done
