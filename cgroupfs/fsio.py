"""Raw reads and writes of cgroup interface files, with as few syscalls as possible.

``open()`` from io adds fstat/ioctl/lseek calls per file; on `pydock run`'s hot path a cgroup
file write is exactly open + write + close. Errors become one-line CgroupErrors that carry the
path, since "Invalid argument" alone tells the user nothing.
"""

from __future__ import annotations

import os

from .errors import CgroupError

_CHUNK = 65536
_PAGE = 4096


def write(path: str, value: str) -> None:
    """Write ``value`` in one write(2), as the kernel expects one record per write."""
    if not try_write(path, value):
        raise CgroupError(f"cannot open {path}: No such file or directory")


def try_write(path: str, value: str) -> bool:
    """Like write(), but False when the file does not exist (controller or feature absent)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    except OSError as e:
        raise CgroupError(f"cannot open {path}: {e.strerror}") from e
    try:
        os.write(fd, value.encode())
    except OSError as e:
        raise CgroupError(f"cannot write {value!r} to {path}: {e.strerror}") from e
    finally:
        os.close(fd)
    return True


def read(path: str, *, to_eof: bool = False) -> str:
    """The whole file.

    cgroup files are seq files: a read fills the buffer with whole records (lines, far
    shorter than a page) as long as there are any, so a read that comes back more than a
    page short is the end and the usual extra read(2) is saved. ``to_eof`` reads until
    read(2) returns nothing, for files whose records may be long (mountinfo).
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as e:
        raise CgroupError(f"cannot open {path}: {e.strerror}") from e
    try:
        chunks = []
        while True:
            b = os.read(fd, _CHUNK)
            chunks.append(b)
            if not b or (not to_eof and len(b) <= _CHUNK - _PAGE):
                break
        return b"".join(chunks).decode()
    except OSError as e:
        raise CgroupError(f"cannot read {path}: {e.strerror}") from e
    finally:
        os.close(fd)


def read_opt(path: str) -> str | None:
    """read(), or None when the file does not exist (an optional interface file)."""
    try:
        return read(path)
    except CgroupError as e:
        if isinstance(e.__cause__, FileNotFoundError):
            return None
        raise


def missing(err: CgroupError, path: str) -> bool:
    """True when ``err`` is the open() of ``path`` failing because the file does not exist."""
    cause = err.__cause__
    return isinstance(cause, FileNotFoundError) and cause.filename == path


def int_or_none(text: str | None) -> int | None:
    """A single-number file; "max" (v2's unlimited) and absent files are None."""
    if text is None:
        return None
    s = text.strip()
    if not s or s == "max":
        return None
    return int(s)


def keyed(text: str | None) -> dict[str, int]:
    """A flat-keyed file ("key value" per line: memory.events, cpu.stat, oom_control)."""
    out: dict[str, int] = {}
    if text is None:
        return out
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].lstrip("-").isdigit():
            out[parts[0]] = int(parts[1])
    return out
