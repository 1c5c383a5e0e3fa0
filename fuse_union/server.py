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


def _tell(fd: int | None, text: str) -> None:
    if fd is None:
        return
    try:
        os.write(fd, text.encode())
        os.close(fd)
    except OSError:
        pass


async def _serve() -> None:
    import pyfuse3
    import trio

    async def stop_on_signal(cancel: trio.CancelScope) -> None:
        with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            async for _ in signals:
                pyfuse3.terminate()
                return

    async with trio.open_nursery() as nursery:
        nursery.start_soon(stop_on_signal, nursery.cancel_scope)
        await pyfuse3.main(min_tasks=4, max_tasks=64)
        nursery.cancel_scope.cancel()


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
    _tell(a.ready_fd, "ok")
    try:
        trio.run(_serve)
    finally:
        pyfuse3.close(unmount=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
