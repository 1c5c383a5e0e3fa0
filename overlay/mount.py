"""Mounting and unmounting overlay filesystems, with the new mount API or mount(2).

Two ways to hand overlay its layers (Documentation/filesystems/overlayfs.rst):

* **fsconfig** -- ``fsopen("overlay")`` then one ``fsconfig(FSCONFIG_SET_STRING,
  "lowerdir+", path)`` per layer (Linux >= 6.8), ``fsmount`` and ``move_mount``. Each layer
  is its own call, so the one-page limit on mount(2)'s option string does not apply and a
  chain can reach overlay's own limit of 500 lower layers. The kernel also explains a
  refusal in the fs context's message log, which we read into the error.
* **mount** -- the classic ``mount(2)`` with ``lowerdir=A:B:...`` in one option string of at
  most one page (4096 bytes, ``copy_mount_options``). Paths are the short ``l/XXXX`` links;
  when even their absolute form is too long we ``chdir`` into home and pass them relative
  (Docker does the same in a re-exec'd child; we hold a lock and restore the cwd instead).

Both produce the same mount; the driver picks one at probe time and reports it in status.
"""

from __future__ import annotations

import errno
import os
import threading
from collections.abc import Sequence

from pydock.nsutil import syscalls as sc

FSCONFIG = "fsconfig"
LEGACY = "mount"
METHODS = (FSCONFIG, LEGACY)

#: mount(2) copies at most one page of option data (fs/namespace.c copy_mount_options).
PAGE_LIMIT = os.sysconf("SC_PAGE_SIZE") - 1
#: overlay's OVL_MAX_STACK: the most lower layers one mount may have.
MAX_LOWER = 500

_cwd_lock = threading.Lock()


class MountError(OSError):
    """An overlay mount was refused; ``str()`` carries the kernel's own explanation."""


def _split_options(options: Sequence[str]) -> list[tuple[str, str | None]]:
    out = []
    for opt in options:
        for item in opt.split(","):
            item = item.strip()
            if not item:
                continue
            key, eq, value = item.partition("=")
            out.append((key, value if eq else None))
    return out


def _mount_fsconfig(
    target: str,
    lowers: Sequence[str],
    upper: str | None,
    work: str | None,
    readonly: bool,
    options: Sequence[str],
) -> None:
    fs_fd = sc.fsopen("overlay", sc.FSOPEN_CLOEXEC)
    try:
        try:
            sc.fsconfig_set_string(fs_fd, "source", "overlay")
            for lower in lowers:
                sc.fsconfig_set_string(fs_fd, "lowerdir+", lower)
            if upper is not None and work is not None:
                sc.fsconfig_set_string(fs_fd, "upperdir", upper)
                sc.fsconfig_set_string(fs_fd, "workdir", work)
            for key, value in _split_options(options):
                if value is None:
                    sc.fsconfig_set_flag(fs_fd, key)
                else:
                    sc.fsconfig_set_string(fs_fd, key, value)
            sc.fsconfig_create(fs_fd)
        except OSError as e:
            # nsutil's message already carries the kernel's fs-context log, e.g.
            # "fsconfig lowerdir+: Invalid argument (e overlay: too many lower directories...)"
            raise MountError(e.errno, f"overlay mount on {target} refused: {e.strerror}") from None
        attrs = sc.MOUNT_ATTR_RDONLY if readonly else 0
        mnt_fd = sc.fsmount(fs_fd, sc.FSMOUNT_CLOEXEC, attrs)
    finally:
        os.close(fs_fd)
    try:
        sc.move_mount(mnt_fd, "", sc.AT_FDCWD, target, sc.MOVE_MOUNT_F_EMPTY_PATH)
    finally:
        os.close(mnt_fd)


def legacy_data(
    lowers: Sequence[str], upper: str | None, work: str | None, options: Sequence[str]
) -> str:
    """The mount(2) option string; lowerdir paths must not contain ':' or ','."""
    parts = ["lowerdir=" + ":".join(lowers)]
    if upper is not None:
        parts += [f"upperdir={upper}", f"workdir={work}"]
    parts += [o for o in options if o]
    return ",".join(parts)


def _mount_legacy(
    target: str,
    lowers: Sequence[str],
    upper: str | None,
    work: str | None,
    readonly: bool,
    options: Sequence[str],
    relative_to: str | None,
) -> None:
    flags = sc.MS_RDONLY if readonly else 0
    data = legacy_data(lowers, upper, work, options)
    if len(data) <= PAGE_LIMIT or relative_to is None:
        if len(data) > PAGE_LIMIT:
            raise MountError(errno.E2BIG, f"overlay options for {target} exceed one page")
        _legacy_call(target, flags, data)
        return
    # Too long as absolute paths: pass them relative to home from inside it.
    prefix = relative_to.rstrip("/") + "/"

    def rel(p: str | None) -> str | None:
        return p[len(prefix) :] if p is not None and p.startswith(prefix) else p

    data = legacy_data([rel(p) or p for p in lowers], rel(upper), rel(work), options)
    if len(data) > PAGE_LIMIT:
        raise MountError(
            errno.E2BIG,
            f"overlay options for {target} exceed one page even with short links "
            f"({len(lowers)} layers); a kernel with fsconfig lowerdir+ (>= 6.8) is needed",
        )
    target = os.path.abspath(target)
    with _cwd_lock:
        saved = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            os.chdir(relative_to)
            _legacy_call(target, flags, data)
        finally:
            os.fchdir(saved)
            os.close(saved)


def _legacy_call(target: str, flags: int, data: str) -> None:
    try:
        sc.mount("overlay", target, "overlay", flags, data)
    except OSError as e:
        raise MountError(
            e.errno, f"overlay mount on {target} refused: {e.strerror} (see dmesg)"
        ) from None


def mount_overlay(
    target: str,
    lowers: Sequence[str],
    upper: str | None = None,
    work: str | None = None,
    *,
    readonly: bool = False,
    options: Sequence[str] = (),
    method: str = FSCONFIG,
    relative_to: str | None = None,
) -> None:
    """Mount an overlay of ``lowers`` (topmost first) and optionally ``upper`` at ``target``.

    ``relative_to`` (the driver's home) lets the mount(2) method shorten paths below it.
    """
    if len(lowers) > MAX_LOWER:
        raise MountError(
            errno.EINVAL, f"{len(lowers)} lower layers exceed overlay's limit of {MAX_LOWER}"
        )
    if (upper is None) != (work is None):
        raise ValueError("upper and work go together")
    if method == FSCONFIG:
        _mount_fsconfig(target, lowers, upper, work, readonly, options)
    elif method == LEGACY:
        _mount_legacy(target, lowers, upper, work, readonly, options, relative_to)
    else:
        raise ValueError(f"unknown mount method {method!r}")


def unmount(target: str) -> None:
    """Unmount ``target``; if something still holds it busy, detach it lazily as Docker does."""
    try:
        sc.umount(target)
    except OSError as e:
        if e.errno == errno.EBUSY:
            sc.umount(target, sc.MNT_DETACH)
        elif e.errno != errno.EINVAL:  # EINVAL: not a mount point (already gone)
            raise


def lowerdir_plus_supported() -> bool:
    """Whether this kernel's overlay accepts ``fsconfig(..., "lowerdir+", ...)`` (>= 6.8).

    Asks the kernel directly: an fs context is opened and given one lower layer (``/``), then
    dropped without creating anything.
    """
    try:
        fs_fd = sc.fsopen("overlay", sc.FSOPEN_CLOEXEC)
    except OSError:
        return False  # no new mount API, or no overlay at all
    try:
        sc.fsconfig_set_string(fs_fd, "lowerdir+", "/")
        return True
    except OSError:
        return False
    finally:
        os.close(fs_fd)


def is_mountpoint(path: str) -> bool:
    """True if ``path`` is a mount point (st_dev differs from its parent's, or same inode)."""
    return os.path.ismount(path)
