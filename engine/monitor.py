"""Running a created container in the foreground, in this process.

The plain ``run`` (no ``-d``, no ``-t``, no restart policy) keeps its container in the
pydock process itself: it is the benchmarked start path, and a monitor would add a fork
and an ``execve`` to it. ``--rm`` runs hand the terminal's own descriptors to the
container and keep no log, so nothing is copied; other attached runs copy the output into
the json-file log. Everything that must outlive the command (``run -d``, ``start``,
``-t`` with its detach keys, restart policies) runs under a per-container monitor
instead: see shim.py and monitor_main.py.
"""

from __future__ import annotations

import contextlib
import os
import sys

from ..nsutil.spawn import SpawnError
from . import prestart, runtime, trace
from .engine import Engine
from .errors import EngineError


def _null_fd() -> int:
    return os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)


def run_attached(
    engine: Engine, rec: dict, *, interactive: bool, mounted: bool = False,
    echo: tuple[str, ...] = ("stdout", "stderr"),
) -> int:  # fmt: skip
    """Start the container with pydock's stdio and wait for it; returns its exit code.
    ``echo``: the streams ``-a`` attached; the others go to the log only."""
    log_config = rec["HostConfig"].get("LogConfig") or {}
    # --rm keeps no log (nothing reads it after the container is gone), nor does "none"
    direct = bool(rec["HostConfig"].get("AutoRemove")) or log_config.get("Type") == "none"
    stdin = 0 if interactive else _null_fd()
    if direct:
        out = 1 if "stdout" in echo else _null_fd()
        err = 2 if "stderr" in echo else _null_fd()
        return _run(engine, rec, (stdin, out, err), None, echo=echo, mounted=mounted)
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    return _run(engine, rec, (stdin, out_w, err_w), (out_r, err_r), echo=echo, mounted=mounted)


def _starting(engine: Engine, rec: dict, pid: int) -> None:
    """While the container's init builds its root and execs (spawn's ``during``): write
    the bundle and the record, marked running with its pid. Should the exec fail, the
    error path records the exit at once (finish), as after any failed start."""
    engine.flush_created(rec)
    engine.mark_running(rec, pid)


def _run(
    engine: Engine,
    rec: dict,
    stdio: tuple[int, int, int],
    pipes: tuple[int, int] | None,
    *,
    echo: tuple[str, ...],
    mounted: bool,
    report: int | None = None,
) -> int:
    if not mounted:
        engine.mount(rec)
    bundle = engine.bundle(rec)
    before = dict(rec["State"])  # _starting marks it running before the exec is known
    try:
        mode = rec["HostConfig"].get("NetworkMode")
        if mode and mode not in ("none", "host"):  # none/host never load the network code
            from .network.manager import setup as network_setup

            engine.flush_created(rec)  # the bundle on disk is the one without this network
            bundle = network_setup(engine, rec, bundle)
        if any(
            str(rec["HostConfig"].get(k)).startswith("container:") for k in ("PidMode", "IpcMode")
        ):  # another container's namespace
            from . import nsjoin

            engine.flush_created(rec)  # the bundle on disk keeps the mode, not a pid
            bundle = nsjoin.join(engine, rec, bundle)
        running = runtime.start(bundle, stdio, during=lambda pid: _starting(engine, rec, pid))
    except SpawnError as e:
        _close(pipes, stdio)
        engine.start_failed(rec, e.exit_code, str(e), before)
        raise EngineError(str(e), e.exit_code) from None
    except BaseException as e:
        _close(pipes, stdio)
        engine.start_failed(rec, 125, str(e) or type(e).__name__, before)
        raise
    if pipes:  # the container holds the write ends now
        os.close(stdio[1])
        os.close(stdio[2])
    trace.mark("running")
    if report is not None:
        os.write(report, b"0")
        os.close(report)
    if "pydock.engine.network.pool" in sys.modules:  # a start drew from a namespace pool
        sys.modules["pydock.engine.network.pool"].refill_after_start()
    copier = None
    if pipes:
        copier = runtime.LogCopier(_log(engine, rec), pipes[0], pipes[1], echo)
    try:
        code = runtime.wait(running, during=copier.run if copier else None)
        trace.mark("exited")
        if prestart.answer_early is not None and rec["HostConfig"].get("AutoRemove"):
            # A start worker's client needs no more than this: the exit code, the record,
            # name, network and anonymous volumes gone. Unmount, layer and cgroup removal
            # follow off its path (engine/starter.py).
            prestart.answer_early(engine, rec, code, running.cgroup)
    finally:
        runtime.stop_cgroup(running)
    trace.mark("cgroup_removed")
    engine.finish(rec, code)
    trace.mark("finished")
    prestart.torn_down = True
    return code


def _log(engine: Engine, rec: dict):  # -> monitor_main.Log
    from .monitor_main import Log

    cfg = rec["HostConfig"].get("LogConfig") or {}
    if (cfg.get("Type") or "json-file") == "json-file" and not cfg.get("Config"):
        return Log(rec["LogPath"])  # the default: no rotation, no extras
    from .logconfig import monitor_args

    args = monitor_args(rec, str(engine.containers.path(rec["Id"])))
    return Log(args["log"], int(args["logmax"]), int(args["logfiles"]), args["logzip"] == "1",
               args["logattrs"])  # fmt: skip


def _close(pipes: tuple[int, int] | None, stdio: tuple[int, int, int]) -> None:
    if pipes:
        for fd in (*pipes, stdio[1], stdio[2]):
            with contextlib.suppress(OSError):
                os.close(fd)


def flush_std() -> None:
    for f in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            f.flush()
