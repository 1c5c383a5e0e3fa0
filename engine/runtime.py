"""Run a container's bundle: its OCI spec -> a process in its cgroup and namespaces.

This is the engine's side of the runtime, what runc's ``run`` is to Docker: create the
cgroup (nested under the caller's own), let nsutil fork the container's PID 1 into its
namespaces and place it in the cgroup before it goes on, wait for it while forwarding
signals, then tear down in reverse: cgroup emptied and removed, root filesystem released.
No subprocess anywhere on this path.
"""

from __future__ import annotations

import os
import signal
import sys
from collections import namedtuple
from collections.abc import Callable

from ..cgroupfs import Cgroup
from ..nsutil.spawn import spawn
from . import prestart, trace

FORWARDED_SIGNALS = (
    signal.SIGINT,
    signal.SIGTERM,
    signal.SIGHUP,
    signal.SIGQUIT,
    signal.SIGUSR1,
    signal.SIGUSR2,
    signal.SIGWINCH,
)


class Running(namedtuple("Running", "pid cgroup")):
    """A started container: its host ``pid`` and its ``cgroup`` (a namedtuple, not a
    dataclass: dataclasses costs milliseconds to import on the start path)."""

    __slots__ = ()
    pid: int
    cgroup: Cgroup


def start(
    spec: dict,
    stdio: tuple[int, int, int],
    console: int | None = None,
    during: Callable[[int], None] | None = None,
) -> Running:
    """Create the cgroup, spawn the container's process into it, return when it has exec'd.

    On failure everything made here is undone before the error propagates
    (nsutil.SpawnError carries Docker's 125/126/127). ``console``: see nsutil.spawn's
    ``console_socket`` (``-t``); ``during``: work to do while the init sets up (spawn's).
    """
    linux = spec.get("linux") or {}
    path = linux.get("cgroupsPath") or "pydock-anonymous"
    ready = prestart.take(path, spec, signal.SIGKILL)
    # a start worker's cgroup, made ahead, with (usually) the init already in it
    cg, held = ready if ready is not None else (Cgroup(path), None)
    try:
        if ready is None:
            cg.create()
        resources = linux.get("resources")
        if resources:
            cg.apply(resources)
        trace.mark("cgroup")
        pid = spawn(
            spec, on_forked=None if held else cg.attach, stdio=stdio, console_socket=console,
            held=held, during=during,
        )  # fmt: skip
        trace.mark("exec")
    except BaseException:
        if held is not None:  # not handed over (apply() failed): kill and reap it first,
            held.discard()  # or the cgroup keeps a member and hides the real error
        _drain(cg)
        raise
    return Running(pid, cg)


def wait(
    running: Running, *, forward_signals: bool = True, during: Callable[[], None] | None = None
) -> int:
    """Reap the container's PID 1 and return Docker's exit code for it (128+N if killed).

    Signals sent to pydock are passed on to the container while it runs, as ``docker run``
    does with its default ``--sig-proxy``. ``during`` (copying its output) runs first,
    with signals already forwarded.
    """
    old: dict[int, object] = {}
    if forward_signals:
        for sig in FORWARDED_SIGNALS:
            old[sig] = signal.signal(sig, lambda s, _f: _kill(running.pid, s))
        # A start worker blocks these until now (starter.py): what arrived meanwhile is
        # delivered here, to the handlers above.
        signal.pthread_sigmask(signal.SIG_UNBLOCK, FORWARDED_SIGNALS)
    try:
        if during is not None:
            during()
        _, status = os.waitpid(running.pid, 0)
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]
    return (
        os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else (128 + os.WTERMSIG(status))
    )


def stop_cgroup(running: Running) -> None:
    """Empty and remove the container's cgroup (PID 1 is gone; its namespace dies with it)."""
    _drain(running.cgroup)


def _drain(cg: Cgroup) -> None:
    if cg.exists() and cg.procs():
        cg.kill(signal.SIGKILL)
    cg.destroy()


def _kill(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


class LogCopier:
    """Copies a container's stdout/stderr pipes into its log (monitor_main.Log, the one
    writer of the json-file format, with the container's rotation and extras).

    ``echo`` names the streams whose bytes also go to pydock's own stdout/stderr (an
    attached ``run``/``start -a``; True: both).
    """

    def __init__(self, log, out_r: int, err_r: int, echo) -> None:  # noqa: ANN001
        self.log = log
        self.fds = {out_r: "stdout", err_r: "stderr"}
        self.echo = ("stdout", "stderr") if echo is True else tuple(echo or ())

    def run(self) -> None:
        import selectors  # only containers with a log; `run --rm` hands over its own fds

        sel = selectors.DefaultSelector()
        for fd in self.fds:
            sel.register(fd, selectors.EVENT_READ)
        try:
            while self.fds:
                for key, _ in sel.select():
                    fd = key.fd
                    data = os.read(fd, 65536)
                    stream = self.fds[fd]
                    if not data:
                        self.log.add(stream, b"", final=True)
                        sel.unregister(fd)
                        os.close(fd)
                        del self.fds[fd]
                        continue
                    if stream in self.echo:
                        target = sys.stdout.buffer if stream == "stdout" else sys.stderr.buffer
                        target.write(data)
                        target.flush()
                    self.log.add(stream, data)
        finally:
            sel.close()
            os.close(self.log.fd)
