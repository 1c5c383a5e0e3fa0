"""Walking a directory tree that an untrusted layer is writing into, without ever leaving it.

A layer tar is hostile input: it may plant ``a -> /etc`` and then write ``a/passwd``. Every
parent component is therefore opened with ``O_NOFOLLOW | O_DIRECTORY`` relative to the
previous one (``openat(2)``), so a symlink anywhere in a path is an error instead of a way
out, and the final component is always created or replaced with ``*at`` calls on that
verified parent descriptor. ``openat2(RESOLVE_BENEATH)`` would do the same in one call, but
Python has no binding for it and the component walk is cached, so it costs little.
"""

from __future__ import annotations

import errno
import os
import stat

from pydock.drivers.base import DriverError, UnsafeLayer

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def split_member_name(name: str) -> list[str]:
    """Split a tar member name into path components, refusing any that could escape.

    ``./a//b/`` -> ``["a", "b"]``; ``.`` -> ``[]`` (the layer root). Absolute names and
    ``..`` components raise :class:`UnsafeLayer` (OCI image-spec layer.md: entries are
    relative to the layer root).
    """
    if name.startswith("/"):
        raise UnsafeLayer(f"layer entry {name!r} has an absolute path")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise UnsafeLayer(f"layer entry {name!r} contains '..'")
    if "\x00" in name:
        raise UnsafeLayer(f"layer entry {name!r} contains a NUL byte")
    return parts


class SafeRoot:
    """A directory opened once, with cached descriptors of subdirectories walked safely.

    All descriptors are relative to ``root_fd``; none was reached through a symlink. The
    cache must be told (:meth:`forget`) when a directory is removed or replaced, so a later
    entry does not land in an unlinked inode.
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root_fd = os.open(root, _DIR_FLAGS)
        self._fds: dict[tuple[str, ...], int] = {(): self.root_fd}

    def close(self) -> None:
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()

    def __enter__(self) -> SafeRoot:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def dir_fd(self, parts: list[str] | tuple[str, ...], *, create: bool, entry: str) -> int:
        """Descriptor of the directory ``parts``; missing ones are made (0755 root) if ``create``.

        A symlink or non-directory on the way raises :class:`UnsafeLayer` naming ``entry``.
        """
        key = tuple(parts)
        fd = self._fds.get(key)
        if fd is not None:
            return fd
        parent = self.dir_fd(key[:-1], create=create, entry=entry)
        name = key[-1]
        try:
            fd = os.open(name, _DIR_FLAGS, dir_fd=parent)
        except FileNotFoundError:
            if not create:
                raise
            # Like Docker's unpacker: parents a tar does not list are made root-owned 0755.
            os.mkdir(name, 0o755, dir_fd=parent)
            fd = os.open(name, _DIR_FLAGS, dir_fd=parent)
        except OSError as e:
            if e.errno in (errno.ELOOP, errno.ENOTDIR):
                st = os.stat(name, dir_fd=parent, follow_symlinks=False)
                what = "a symlink" if stat.S_ISLNK(st.st_mode) else "not a directory"
                raise UnsafeLayer(
                    f"layer entry {entry!r}: parent {'/'.join(key)!r} is {what}"
                ) from None
            raise
        self._fds[key] = fd
        return fd

    def forget(self, parts: list[str] | tuple[str, ...]) -> None:
        """Drop cached descriptors of ``parts`` and everything below it."""
        key = tuple(parts)
        n = len(key)
        for k in [k for k in self._fds if k[:n] == key and k != ()]:
            os.close(self._fds.pop(k))

    def forget_below(self, parts: list[str] | tuple[str, ...]) -> None:
        """Drop cached descriptors strictly below ``parts`` (its children are being cleared)."""
        key = tuple(parts)
        n = len(key)
        for k in [k for k in self._fds if len(k) > n and k[:n] == key]:
            os.close(self._fds.pop(k))

    def proc_path(self, dir_fd: int, name: str) -> str:
        """A path for calls without ``dir_fd`` support (``lsetxattr``): via /proc/self/fd.

        The magic link resolves to the verified directory itself; ``name`` is then looked up
        in it without following (the callers pass ``follow_symlinks=False``).
        """
        return f"/proc/self/fd/{dir_fd}/{name}"


def remove_at(dir_fd: int, name: str) -> None:
    """Remove ``name`` in ``dir_fd`` recursively, never following symlinks."""
    try:
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return
    if not stat.S_ISDIR(st.st_mode):
        os.unlink(name, dir_fd=dir_fd)
        return
    fd = os.open(name, _DIR_FLAGS, dir_fd=dir_fd)
    try:
        clear_dir_at(fd)
    finally:
        os.close(fd)
    os.rmdir(name, dir_fd=dir_fd)


def clear_dir_at(fd: int, keep: set[str] | frozenset[str] = frozenset()) -> None:
    """Remove every child of the directory ``fd`` except the names in ``keep``."""
    for child in os.listdir(fd):
        if child not in keep:
            remove_at(fd, child)


def open_dir_nofollow(path: str | os.PathLike[str], dir_fd: int | None = None) -> int:
    """``open(path, O_DIRECTORY|O_NOFOLLOW)``; raises DriverError for a non-directory."""
    try:
        return os.open(path, _DIR_FLAGS, dir_fd=dir_fd)
    except OSError as e:
        if e.errno in (errno.ELOOP, errno.ENOTDIR):
            raise DriverError(f"{os.fspath(path)!r} is not a directory") from None
        raise
