"""The FUSE server process: ``python -m pydock.fuse_union.server``, one per mounted layer.

Started by :class:`pydock.fuse_union.driver.FuseUnionDriver` with the layers on the
command line and a pipe (``--ready-fd``): the server writes ``ok`` once the mount is live,
or one line of error and exits non-zero, so the driver never waits on a mount that will
not come. It runs until the mount is unmounted (``umount2`` ends the FUSE session) or it
gets SIGTERM/SIGINT, then closes the session; it is the only writer of the upper layer.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys

#: mount options: ``dev``/``suid`` because a container root needs device nodes and set-id
#: programs; ``allow_other`` so the container's non-root users can use it;
#: ``default_permissions`` so the kernel checks modes (we run as root). ``max_read`` is
#: left at libfuse's default: pyfuse3 cannot set the matching conn.max_read, and libfuse
#: then refuses the session.
BASE_OPTIONS = ("fsname=fuse-union", "subtype=pydock", "allow_other", "dev", "suid")
#: readahead of the mount's backing device info. The kernel gives a FUSE mount 128 KiB
#: (VM_READAHEAD_PAGES), so a sequential read arrives as 128 KiB requests; with 1 MiB the
#: requests reach the session's max_pages (256 pages with libfuse 3.14's 1 MiB
#: max_write) and a read costs a quarter of the round trips
#: (Documentation/ABI/stable/sysfs-class-bdi, read_ahead_kb).
READ_AHEAD_KB = 1024


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m pydock.fuse_union.server")
    p.add_argument("--mountpoint", required=True)
    p.add_argument("--upper", help="writable top layer (omit for a read-only mount)")
    p.add_argument("--work", help="scratch dir on the upper's filesystem (copy-up staging)")
    p.add_argument("--lower", action="append", default=[], help="read-only layer, top first")
    p.add_argument("--ready-fd", type=int, help="write 'ok' here once mounted")
    p.add_argument("--debug", action="store_true")
    a = p.parse_args(argv)
    if bool(a.upper) != bool(a.work):
        p.error("--upper and --work go together")
    if not a.upper and not a.lower:
        p.error("no layers")
    return a


def _mount_dev(mountpoint: str) -> str | None:
    """``major:minor`` of the mount at ``mountpoint``, from mountinfo (a stat of the mount
    itself would be a FUSE request nobody serves yet)."""
    # realpath of the parent only: resolving the mount point would stat it
    absolute = os.path.abspath(mountpoint)
    real = os.path.join(os.path.realpath(os.path.dirname(absolute)), os.path.basename(absolute))
    dev = None
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split(" ", 5)
            if fields[4] == real:
                dev = fields[2]  # the last one listed is the one on top
    return dev


def set_read_ahead(mountpoint: str, kb: int) -> None:
    """Raise the mount's readahead; call it once FUSE_INIT is answered, since the kernel's
    handling of the INIT reply caps readahead at the 128 KiB it offered. A stat of the
    mount returns only after that reply (requests wait for it), so one is made first."""
    dev = _mount_dev(mountpoint)
    if dev is None or kb <= 0:
        return
    try:
        os.stat(mountpoint)
    except OSError:
        return
    try:
        with open(f"/sys/class/bdi/{dev}/read_ahead_kb", "w") as f:
            f.write(str(kb))
    except OSError:
        pass  # no sysfs (a container without it): 128 KiB requests, slower but correct


def _tell(fd: int | None, text: str) -> None:
    if fd is None:
        return
    try:
        os.write(fd, text.encode())
        os.close(fd)
    except OSError:
        pass


async def _serve(mountpoint: str, ready_fd: int | None) -> None:
    import pyfuse3
    import trio

    async def stop_on_signal(cancel: trio.CancelScope) -> None:
        with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            async for _ in signals:
                pyfuse3.terminate()
                return

    from pydock.fuse_union import loop

    loop.install()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(stop_on_signal, nursery.cancel_scope)
        nursery.start_soon(_ready, mountpoint, ready_fd)
        await pyfuse3.main(min_tasks=4, max_tasks=64)
        nursery.cancel_scope.cancel()


async def _ready(mountpoint: str, ready_fd: int | None) -> None:
    """Raise readahead, then report the mount live: a file opened earlier would keep the
    128 KiB readahead it was opened with (file_ra_state_init copies it at open)."""
    import trio

    # in a thread: its stat of the mount is served by this very loop
    await trio.to_thread.run_sync(set_read_ahead, mountpoint, READ_AHEAD_KB)
    _tell(ready_fd, "ok")


def main(argv: list[str] | None = None) -> int:
    a = parse(sys.argv[1:] if argv is None else argv)
    os.umask(0)  # the kernel already applied the caller's umask to every mode we get
    try:
        import pyfuse3
        import trio
        from pydock.fuse_union.fs import UnionFS

        roots = ([a.upper] if a.upper else []) + a.lower
        ops = UnionFS(roots, a.work)
        options = set(pyfuse3.default_options) | set(BASE_OPTIONS)
        if a.debug:
            options.add("debug")
        if not a.upper:
            options.add("ro")
        pyfuse3.init(ops, a.mountpoint, options)
    except Exception as e:  # report to the waiting driver, in one line
        _tell(a.ready_fd, f"error: {e}".replace("\n", " "))
        return 1
    try:
        trio.run(_serve, a.mountpoint, a.ready_fd)
    finally:
        pyfuse3.close(unmount=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
