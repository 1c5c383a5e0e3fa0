"""On-disk bookkeeping every driver needs: atomic metadata, cross-process refcounts, temp dirs.

Several pydock processes share one store (``pydock run`` in two terminals), so anything that
counts or builds is made safe against both concurrency and a crash at any instant:

* metadata files are replaced whole with write-to-temp + fsync + rename(2);
* mount reference counts live in one small file per layer, read-modified-written under
  ``flock(2)``, which the kernel drops when the holder dies;
* layers are built in ``<home>/.tmp-<id>-<random>`` and renamed into place when complete; a
  builder holds ``flock`` on that directory, so :func:`cleanup_temp_dirs` only removes the
  leftovers of processes that are gone.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

TYPE_CHECKING = False  # typing costs milliseconds to import on the start path
if TYPE_CHECKING:
    from typing import Any


TEMP_PREFIX = ".tmp-"
FRESH_PREFIX = ".new-"  # a temp dir for the instant before it is locked
STALE_FRESH_SECONDS = 60


def write_json_atomic(path: str | os.PathLike[str], obj: Any, *, durable: bool = True) -> None:
    """Replace ``path`` with ``obj`` as JSON so readers see the old or the new file, never half.

    ``durable=False`` skips the fsyncs: for records that are caches (a lost one is measured
    again) or that describe an ephemeral layer, on the start path where an fsync costs ms.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.urandom(4).hex()}.tmp")
    try:
        with open(tmp, "w") as f:
            json.dump(obj, f, sort_keys=True)
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.rename(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if not durable:
        return
    # The rename itself is durable only once the directory is synced.
    fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_json(path: str | os.PathLike[str]) -> Any:
    with open(path) as f:
        return json.load(f)


class RefCount:
    """The locked count of one layer inside :meth:`RefCounts.hold`; assign ``count`` to change."""

    def __init__(self, count: int) -> None:
        self.count = count


class RefCounts:
    """Mount reference counts shared by every process using the store (one file per id).

    Hold the lock across the mount or unmount itself, so that two processes cannot both see
    0 and mount twice, or both see 1 and unmount under a user::

        with refs.hold(id) as ref:
            if ref.count == 0:
                mount()
            ref.count += 1

    A process that dies holding references leaves the count too high; drivers reconcile by
    checking what is really mounted (documented per driver).
    """

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.dir = Path(directory)

    def _path(self, id: str) -> Path:
        return self.dir / f"{id}.ref"

    @contextlib.contextmanager
    def hold(self, id: str) -> Iterator[RefCount]:
        self.dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self._path(id), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            raw = os.pread(fd, 32, 0).strip()
            ref = RefCount(int(raw) if raw else 0)
            before = ref.count
            yield ref
            if ref.count != before:
                data = str(max(ref.count, 0)).encode()
                os.ftruncate(fd, 0)
                os.pwrite(fd, data, 0)
        finally:
            os.close(fd)  # releases the flock

    def count(self, id: str) -> int:
        try:
            fd = os.open(self._path(id), os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return 0
        try:
            fcntl.flock(fd, fcntl.LOCK_SH)
            raw = os.pread(fd, 32, 0).strip()
            return int(raw) if raw else 0
        finally:
            os.close(fd)

    def discard(self, id: str) -> None:
        """Forget a removed layer's counter."""
        self._path(id).unlink(missing_ok=True)


#: TempDir removals queued by :func:`defer_removals` (None: remove at once)
_deferred: list[tuple[Path, int]] | None = None


def defer_removals() -> None:
    """Queue the deletion of discarded temp dirs (a removed layer's bytes) for
    :func:`run_deferred`, keeping each one locked meanwhile.

    For a process that answers before it cleans up: a start worker tells its client the
    exit code of ``run --rm`` once the layer is unmounted and renamed out of the store,
    and deletes its files afterwards. A crash in between leaves a ``.tmp-*`` dir that
    :func:`cleanup_temp_dirs` removes.
    """
    global _deferred
    if _deferred is None:
        _deferred = []


def run_deferred() -> None:
    """Delete what :func:`defer_removals` queued, and stop queueing."""
    global _deferred
    queued, _deferred = _deferred or [], None
    for path, fd in queued:
        try:
            shutil.rmtree(path, ignore_errors=True)
        finally:
            os.close(fd)


class TempDir:
    """A layer under construction: ``<home>/.tmp-<id>-<random>``, locked while it is built.

    ``with TempDir(home, id) as tmp: fill(tmp.path); tmp.commit(final)``. Leaving the block
    without :meth:`commit` (an exception, a bad tar) deletes the directory; a crash leaves it
    for :func:`cleanup_temp_dirs`.
    """

    def __init__(self, home: str | os.PathLike[str], id: str) -> None:
        self.home = Path(home)
        self.path = self.home / f"{TEMP_PREFIX}{id}-{os.urandom(4).hex()}"
        self._fd = -1
        self.committed = False

    def __enter__(self) -> TempDir:
        self.home.mkdir(parents=True, exist_ok=True)
        # Made under a name cleanup_temp_dirs() leaves alone, locked, then renamed: a
        # ``.tmp-*`` dir is never seen unlocked while its builder lives (between a plain
        # mkdir and the flock, another process's cleanup could delete it).
        fresh = self.home / f"{FRESH_PREFIX}{self.path.name[len(TEMP_PREFIX) :]}"
        os.mkdir(fresh, 0o700)
        try:
            self._fd = os.open(fresh, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            fcntl.flock(self._fd, fcntl.LOCK_EX)
            os.rename(fresh, self.path)
        except BaseException:
            if self._fd >= 0:
                os.close(self._fd)
            shutil.rmtree(fresh, ignore_errors=True)
            raise
        return self

    def commit(self, final: str | os.PathLike[str]) -> None:
        """Atomically move the finished directory to ``final`` (which must not exist)."""
        os.rename(self.path, final)
        self.committed = True

    def __exit__(self, *exc: object) -> None:
        if not self.committed and _deferred is not None:
            _deferred.append((self.path, self._fd))  # still locked until deleted
            return
        try:
            if not self.committed:
                shutil.rmtree(self.path, ignore_errors=True)
        finally:
            os.close(self._fd)


def cleanup_temp_dirs(home: str | os.PathLike[str]) -> list[Path]:
    """Remove ``.tmp-*`` directories left by crashed builders; returns what was removed.

    A directory whose ``flock`` is held belongs to a live builder in another process and is
    left alone.
    """
    removed: list[Path] = []
    try:
        entries = list(os.scandir(home))
    except FileNotFoundError:
        return removed
    now = time.time()
    for e in entries:
        if e.name.startswith(FRESH_PREFIX):
            # A builder holds one of these for microseconds; an old one is a crash's.
            try:
                if now - e.stat(follow_symlinks=False).st_mtime > STALE_FRESH_SECONDS:
                    shutil.rmtree(e.path, ignore_errors=True)
                    removed.append(Path(e.path))
            except OSError:
                pass
            continue
        if not e.name.startswith(TEMP_PREFIX):
            continue
        try:
            fd = os.open(e.path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError:
            continue
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue
            shutil.rmtree(e.path, ignore_errors=True)
            removed.append(Path(e.path))
        finally:
            os.close(fd)
    return removed
