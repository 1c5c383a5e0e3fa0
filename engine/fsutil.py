"""Crash-safe files and locks for the stores.

Every store file is replaced whole: written to a temporary sibling, optionally fsync'ed,
then renamed over the old one, so a reader sees the old or the new file and never half of
one, even if pydock is SIGKILLed mid-write. ``durable=True`` also fsyncs the file and its
directory, which makes the change survive a host crash; the image store uses it (content
that is expensive to lose), container state on the start path does not (a crashed host
loses its running containers anyway, and fsync costs milliseconds on ext4).
"""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path

TYPE_CHECKING = False  # typing costs milliseconds to import on the start path
if TYPE_CHECKING:
    from typing import Any


def write_atomic(
    path: str | Path, data: bytes, *, durable: bool = False, mode: int = 0o600
) -> None:
    """Replace ``path`` with ``data`` (a reader sees the old file or the new one). Records
    are root's only by default (0600, as Docker's): a container's holds its environment."""
    path = os.fspath(path)
    tmp = f"{path}.tmp-{os.getpid()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, mode)
    try:
        view = memoryview(data)
        while view:
            n = os.write(fd, view)
            view = view[n:]
        if durable:
            os.fsync(fd)
    finally:
        os.close(fd)
    os.rename(tmp, path)
    if durable:
        fsync_dir(os.path.dirname(path) or ".")


def write_new(path: str | Path, data: bytes, mode: int = 0o600) -> None:
    """Write a file that must not exist yet, in a directory nobody else reads yet (a
    stage that is renamed into place whole): no temporary sibling needed."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)


def fsync_dir(path: str | Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_json(path: str | Path, obj: Any, *, durable: bool = False) -> None:
    write_atomic(path, json.dumps(obj, separators=(",", ":")).encode(), durable=durable)


def read_json(path: str | Path) -> Any:
    with open(path, "rb") as f:
        return json.loads(f.read())


class FileLock:
    """An flock(2) on a file: shared for readers that must pin state, exclusive for writers.

    flock locks die with the process, so a SIGKILLed pydock never leaves the store locked.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = os.fspath(path)
        self.fd: int | None = None

    def acquire(self, shared: bool = False) -> FileLock:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        fcntl.flock(fd, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
        self.fd = fd
        return self

    def try_acquire(self) -> bool:
        """Take the lock exclusively unless someone holds it (then False, at once)."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self.fd = fd
        return True

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing drops the flock
            self.fd = None

    def __enter__(self) -> FileLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()
