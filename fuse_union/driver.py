"""The fuse-union storage driver: overlay2's layer store, mounted by a FUSE server.

Sharing the store. fuse-union *is* the overlay2 driver for everything but mounting: the
class inherits layer creation, ``apply_diff``, whiteout conversion, diffs, changes, usage
and removal from :class:`pydock.overlay.driver.Overlay2Driver`, and its home is
overlay2's (``<root>/overlay2``, derived from the ``<root>/fuse-union`` the registry
passes). Mount reference counts (``.refs``) and mount points (``<id>/merged``) are shared
too, so a layer is mounted by one of the two at a time and either one sees it as mounted.
Switching ``--storage-driver`` between them never copies or re-extracts a layer; the
engine keys its layer records by :attr:`layer_store` ("overlay2") instead of the driver
name for the same reason.

Mounting. ``get`` starts one FUSE server process per mounted layer
(``python -m pydock.fuse_union.server``, see :mod:`.server`) and returns once the server
reports the mount live through a pipe; the last ``put`` unmounts with ``umount2``, which
ends the server, and reaps it. A subprocess is acceptable here: fuse-union is the fallback
where kernel overlay cannot serve, never on the default ``run`` path, and the server must
outlive the pydock command that mounted it (``create`` then ``start``).

A server that died (killed, crashed) leaves a mount whose every access fails with ENOTCONN
and that ``os.path.ismount`` cannot even see; mounts are therefore found in
``/proc/self/mountinfo``, and a dead server's mount is detached lazily (``MNT_DETACH``)
and reported on stderr by the next ``get``/``put``/``remove`` instead of hanging.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import sys
import time
from collections import Counter
from pathlib import Path

from pydock.drivers.base import Driver, DriverError, DriverOptions, NotSupported
from pydock.drivers.layers import RefCounts, cleanup_temp_dirs
from pydock.overlay import mount as mnt
from pydock.overlay.driver import REFS_DIR, Overlay2Driver
from pydock.overlay.layout import LayerPaths, Layout

from pydock import ownpython

#: the driver whose layer store (home directory and engine layer records) this one uses
SHARED_STORE = "overlay2"
RUNTIME_DIR = ".fuse-union"
READY_TIMEOUT = 30.0
EXIT_TIMEOUT = 10.0


def store_home(home: str | Path) -> Path:
    """``<root>/fuse-union`` -> ``<root>/overlay2``; a path already naming the store stays."""
    home = Path(home).absolute()
    return home.parent / SHARED_STORE if home.name == FuseUnionDriver.name else home


def _unescape(field: str) -> str:
    return field.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n")


def in_mountinfo(path: str) -> bool:
    """Is ``path`` a mount point? Unlike ``os.path.ismount``, true for a dead FUSE mount."""
    real = os.path.realpath(path)
    with open("/proc/self/mountinfo") as f:
        return any(_unescape(line.split(" ", 5)[4]) == real for line in f)


def _detach(path: str) -> None:
    from pydock.nsutil import syscalls as sc

    try:
        sc.umount(path, sc.MNT_DETACH)
    except OSError as e:
        if e.errno != errno.EINVAL:
            raise


def _start_time(pid: int) -> str | None:
    """The process start time (field 22 of /proc/PID/stat): tells a PID from its reuse."""
    try:
        data = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = data.rsplit(")", 1)[1].split()
    if fields[0] == "Z":
        return None  # a zombie serves nothing
    return fields[19]


class FuseUnionDriver(Overlay2Driver):
    """overlay2's store and code, mounted through :mod:`pydock.fuse_union.server`."""

    name = "fuse-union"
    #: the engine keys layer records by this, so both drivers share one set of records
    layer_store = SHARED_STORE

    def __init__(self, home: str | Path, options: DriverOptions | None = None) -> None:
        Driver.__init__(self, store_home(home), options)
        self.home = self.home.absolute()
        self.probe(self.home)
        self.home.mkdir(parents=True, exist_ok=True)
        self.layout = Layout(self.home)
        self.layout.link_dir.mkdir(exist_ok=True)
        self.refs = RefCounts(self.home / REFS_DIR)
        self.runtime = self.home / RUNTIME_DIR
        # The FUSE server implements overlay with metacopy and redirect_dir off, so the
        # upper dir is always a complete diff.
        self.metacopy = False
        self.native_diff = True
        self.mount_options: list[str] = []
        self.method = "fuse"
        self._held: Counter[str] = Counter()
        self._procs: dict[int, object] = {}  # servers this process started (to reap)
        cleanup_temp_dirs(self.home)
        self._sweep_runtime()

    @classmethod
    def probe(cls, home: str | Path) -> None:
        import importlib.util

        for module in ("pyfuse3", "trio"):
            if importlib.util.find_spec(module) is None:
                raise NotSupported(f"fuse-union: the Python module {module} is not installed")
        try:
            fd = os.open("/dev/fuse", os.O_RDWR | os.O_CLOEXEC)
        except OSError as e:
            raise NotSupported(f"fuse-union: cannot open /dev/fuse: {e.strerror}") from None
        os.close(fd)

    # -- mounts ----------------------------------------------------------------------------
    def _pidfile(self, id: str) -> Path:
        return self.runtime / f"{id}.pid"

    def _server(self, id: str) -> tuple[int, str] | None:
        try:
            pid_s, start = self._pidfile(id).read_text().split()
            return int(pid_s), start
        except (OSError, ValueError):
            return None

    def _server_alive(self, id: str) -> bool:
        s = self._server(id)
        if s is None:
            return False
        self._reap_if_child(s[0], block=False)
        return _start_time(s[0]) == s[1]

    def _reap_if_child(self, pid: int, *, block: bool) -> int | None:
        proc = self._procs.get(pid)
        if proc is None:
            return None
        import subprocess

        try:
            code = proc.wait(EXIT_TIMEOUT) if block else proc.poll()  # type: ignore[attr-defined]
        except subprocess.TimeoutExpired:
            return None
        if code is not None:
            del self._procs[pid]
        return code

    def get(self, id: str) -> str:
        p = self.layout.existing(id)
        if not self._needs_mount(id):
            return super().get(id)  # a base layer is its own diff dir: nothing to mount
        merged = str(p.merged)
        with self.refs.hold(id) as ref:
            mounted = in_mountinfo(merged)
            if mounted and not self._server_alive(id):
                self._detach_dead(id, merged)
                mounted = False
            if not mounted:
                ref.count = 0  # stale: the mount went away (reboot, or a holder died)
                self._mount(id, p)
            ref.count += 1
        self._held[id] += 1
        return merged

    def _mount(self, id: str, p: LayerPaths) -> None:
        lowers = [str(d) for d in self.layout.lower_diffs(id)]
        upper = work = None
        if self.layout.is_rw(id):
            upper, work = str(p.diff), str(p.work)
        else:
            lowers.insert(0, str(p.diff))  # a read-only image layer: its diff is the top lower
        os.makedirs(p.merged, mode=0o700, exist_ok=True)
        self.runtime.mkdir(mode=0o700, exist_ok=True)
        try:
            proc = start_server(str(p.merged), lowers, upper, work, self.runtime / f"{id}.log")
        except DriverError as e:
            raise DriverError(f"fuse-union: cannot mount layer {id!r}: {e}") from None
        self._procs[proc.pid] = proc
        start = _start_time(proc.pid) or "0"
        tmp = self._pidfile(id).with_suffix(".tmp")
        tmp.write_text(f"{proc.pid} {start}\n")
        tmp.replace(self._pidfile(id))

    def put(self, id: str) -> None:
        p = self.layout.existing(id)
        if not self._needs_mount(id):
            super().put(id)
            return
        merged = str(p.merged)
        with self.refs.hold(id) as ref:
            if ref.count <= 0:
                raise DriverError(f"fuse-union: layer {id!r} is not mounted")
            ref.count -= 1
            if in_mountinfo(merged) and not self._server_alive(id):
                self._detach_dead(id, merged)
                ref.count = 0  # every holder's view of it is gone
            elif ref.count == 0:
                s = self._server(id)
                mnt.unmount(merged)
                if s is not None:
                    self._wait_exit(*s)
                self._pidfile(id).unlink(missing_ok=True)
            if ref.count == 0 and self.layout.is_rw(id):
                self._record_usage(p)
        if self._held[id] > 0:
            self._held[id] -= 1

    def mounted(self, id: str) -> bool:
        p = self.layout.existing(id)
        if self.refs.count(id) <= 0:
            return False
        return not self._needs_mount(id) or in_mountinfo(str(p.merged))

    def remove(self, id: str) -> None:
        p = self.layout.existing(id)
        merged = str(p.merged)
        if self._needs_mount(id) and in_mountinfo(merged) and not self._server_alive(id):
            with self.refs.hold(id) as ref:
                self._detach_dead(id, merged)
                ref.count = 0
        s = self._server(id)
        super().remove(id)  # unmounts a live mount nobody holds, like overlay2
        if s is not None:
            self._wait_exit(*s)
        self._pidfile(id).unlink(missing_ok=True)
        (self.runtime / f"{id}.log").unlink(missing_ok=True)  # the layer's server's log

    def _sweep_runtime(self) -> None:
        """Remove the server logs and pid files of layers that no longer exist: left by
        a ``remove`` that was killed, or by versions that kept logs for good."""
        try:
            names = os.listdir(self.runtime)
        except FileNotFoundError:
            return
        for name in names:
            id = name.partition(".")[0]
            if not (self.home / id / "diff").is_dir():
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self.runtime / name)

    def _detach_dead(self, id: str, merged: str) -> None:
        s = self._server(id)
        code = self._reap_if_child(s[0], block=True) if s else None
        _detach(merged)
        self._pidfile(id).unlink(missing_ok=True)
        how = f" (exit status {code})" if code is not None else ""
        sys.stderr.write(
            f"pydock: fuse-union server of layer {id[:12]} died{how}; its mount was detached\n"
        )

    def _wait_exit(self, pid: int, start: str) -> None:
        """After the unmount the server's session ends; make sure it is gone and reaped."""
        if self._reap_if_child(pid, block=True) is not None:
            return
        deadline = time.monotonic() + EXIT_TIMEOUT
        while _start_time(pid) == start:
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)  # still mounted elsewhere, or wedged
                deadline = time.monotonic() + EXIT_TIMEOUT
            self._reap_if_child(pid, block=False)
            time.sleep(0.01)

    # -- driver-wide -----------------------------------------------------------------------
    def status(self) -> list[tuple[str, str]]:
        from importlib.metadata import PackageNotFoundError, version

        from pydock.overlay.probe import backing_fs, docker_fs_name

        try:
            pyfuse3_version = version("pyfuse3")
        except PackageNotFoundError:
            pyfuse3_version = "unknown"
        return [
            ("Backing Filesystem", docker_fs_name(backing_fs(self.home))),
            ("Layer store", f"{self.home} (shared with {SHARED_STORE})"),
            ("Native Overlay Diff", "true"),
            ("FUSE server", f"pyfuse3 {pyfuse3_version}, one process per mounted layer"),
        ]


def start_server(
    mountpoint: str,
    lowers: list[str],
    upper: str | None = None,
    work: str | None = None,
    log: str | os.PathLike[str] | None = None,
):
    """Start a FUSE server on ``mountpoint`` and return its ``Popen`` once the mount is live.

    Raises :class:`DriverError` with the server's own one-line reason if it cannot mount.
    The server runs in a session of its own so a terminal's signals do not reach it.
    """
    import subprocess

    args = ownpython.module("pydock.fuse_union.server", "--mountpoint", mountpoint)
    if upper is not None:
        args += ["--upper", upper, "--work", str(work)]
    for d in lowers:
        args += ["--lower", d]
    r, w = os.pipe()
    try:
        out = open(log, "ab") if log is not None else subprocess.DEVNULL  # noqa: SIM115
        try:
            proc = subprocess.Popen(
                [*args, "--ready-fd", str(w)],
                stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                pass_fds=(w,), start_new_session=True, cwd="/",
            )  # fmt: skip
        finally:
            if out is not subprocess.DEVNULL:
                out.close()  # type: ignore[union-attr]
        os.close(w)
        w = -1
        msg = _read_ready(r, READY_TIMEOUT)
    finally:
        os.close(r)
        if w >= 0:
            os.close(w)
    if msg != "ok":
        stop_server(proc, mountpoint)
        raise DriverError(msg or f"FUSE server exited with status {proc.returncode}")
    return proc


def stop_server(proc, mountpoint: str) -> None:
    """Unmount (lazily if busy) and end ``proc``: SIGTERM, then SIGKILL; always reaped."""
    import subprocess

    if in_mountinfo(mountpoint):
        try:
            mnt.unmount(mountpoint)
        except OSError:
            _detach(mountpoint)
    try:
        proc.wait(EXIT_TIMEOUT)
        return
    except subprocess.TimeoutExpired:
        pass
    proc.terminate()
    try:
        proc.wait(EXIT_TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _read_ready(fd: int, timeout: float) -> str:
    """The server's one-line verdict, or "" if it closed the pipe (died) or timed out."""
    import select

    deadline = time.monotonic() + timeout
    chunks = b""
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return "timed out waiting for the FUSE server"
        ready, _, _ = select.select([fd], [], [], left)
        if not ready:
            continue
        data = os.read(fd, 4096)
        if not data:
            return chunks.decode(errors="replace").strip()
        chunks += data
