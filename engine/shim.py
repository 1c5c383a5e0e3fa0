"""The full-engine half of a container's monitor: start, teardown and the restart policy.

A monitor is one process for a container's whole life (see monitor_main.py for why it is
split in two). This module is what that process runs when it needs the engine:

* ``launch`` (called by ``run -d``, ``start``, ``system boot``): fork a detached monitor,
  which mounts the root, sets up the network, spawns the container as its own child,
  records it running, tells the caller, and ``execve``s the lean ``monitor_main``;
* ``python -m pydock.engine.shim exited ...`` (``execve``'d by the lean monitor when the
  container's PID 1 has been reaped): read whether the kernel OOM-killed it, empty and
  remove its cgroup, then either restart it after Docker's back-off (the same container,
  RestartCount + 1) and become the lean monitor again, or release its root and network and
  record the exit (or remove it, for ``--rm``).

Everything a monitor writes goes through the record's atomic replace (fsutil.write_json).
Other commands never write a record whose monitor is alive; they ask through files in the
container's directory (``stop-request``) and signals.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time

from .. import ownpython
from . import runtime
from .containers import alive, me, now
from .engine import Engine
from .errors import EngineError
from .spec import with_term

STOP_REQUEST = "stop-request"  # "cancel": no restart (stop, kill); "manual": flag only
ATTACH_SOCK = "attach.sock"
MAX_BACKOFF_MS = 60_000  # Docker's restart manager: 100 ms doubling, at most one minute
RESET_AFTER_MS = 10_000  # ... back to 100 ms once a run lasted 10 s


# -- restart policy (moby's restartmanager, as docker-intro.md describes it) -----------------


def parse_policy(text: str | None) -> dict:
    """``no|always|unless-stopped|on-failure[:N]`` -> HostConfig.RestartPolicy."""
    name, _, count = (text or "no").partition(":")
    if name not in ("no", "always", "unless-stopped", "on-failure") or (
        count and (name != "on-failure" or not count.isdigit())
    ):
        raise EngineError(f"invalid restart policy {text!r}", 125)
    return {"Name": name, "MaximumRetryCount": int(count or 0)}


def should_restart(policy: dict, code: int, manual: bool, restart_count: int) -> bool:
    """Docker's decision after an exit (and, with a fresh manager, after an engine restart)."""
    name = policy.get("Name") or "no"
    if name == "always":
        return True
    if name == "unless-stopped":
        return not manual
    if name == "on-failure":
        most = int(policy.get("MaximumRetryCount") or 0)
        return code != 0 and (most == 0 or restart_count < most)
    return False


def next_backoff(backoff_ms: int, uptime_ms: int) -> int:
    if uptime_ms >= RESET_AFTER_MS:
        backoff_ms = 0
    return min(MAX_BACKOFF_MS, 100 if backoff_ms == 0 else backoff_ms * 2)


def read_stop_request(cdir: str, remove: bool = True) -> str:
    path = os.path.join(cdir, STOP_REQUEST)
    try:
        with open(path) as f:
            kind = f.read().strip()
    except FileNotFoundError:
        return ""
    if remove:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
    return kind


def request_stop(cdir: str, kind: str) -> None:
    """Tell the monitor the coming exit was asked for (``cancel`` wins over ``manual``)."""
    path = os.path.join(cdir, STOP_REQUEST)
    if kind == "manual" and read_stop_request(cdir, remove=False) == "cancel":
        return
    tmp = f"{path}.{os.getpid()}"
    with open(tmp, "w") as f:
        f.write(kind)
    os.replace(tmp, path)


# -- starting ----------------------------------------------------------------------------------


def launch(engine: Engine, rec: dict, *, mounted: bool = False, attach: bool = False) -> int | None:
    """Start ``rec`` under a new monitor; return once it runs (or raise why it could not).

    With ``attach`` the caller gets a connected socket fd, already the monitor's first
    attach client, so no output is lost between the start and an attach.
    """
    import _socket

    mine = theirs = -1
    if attach:
        a, b = _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_STREAM)
        mine, theirs = a.detach(), b.detach()
    size = None
    if attach and rec["Config"].get("Tty"):
        from ..nsutil.console import window_size

        size = window_size(0)
    status_r, status_w = os.pipe2(os.O_CLOEXEC)
    pid = os.fork()
    if pid == 0:
        code = 125
        try:
            os.close(status_r)
            if mine >= 0:
                os.close(mine)
            os.setsid()  # out of the caller's session: its terminal's signals are not ours
            if os.fork():  # the monitor is a grandchild: nobody has to reap it but init
                os._exit(0)
            null = os.open(os.devnull, os.O_RDWR)
            os.dup2(null, 0)
            os.dup2(null, 1)
            os.close(null)
            # What the monitor has to say, it says here (like conmon to the journal).
            err = os.path.join(engine.containers.path(rec["Id"]), "monitor.log")
            errfd = os.open(err, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            os.dup2(errfd, 2)
            os.close(errfd)
            start(engine, rec, mounted=mounted, report=status_w,
                  clients=[theirs] if attach else [], console_size=size)  # fmt: skip
        except BaseException as e:  # noqa: BLE001 - reported to the caller, then exit
            with contextlib.suppress(OSError):
                code = e.exit_code if isinstance(e, EngineError) else 125
                os.write(status_w, f"{code} {e}".encode())
        finally:
            os._exit(code)
    os.close(status_w)
    if theirs >= 0:
        os.close(theirs)
    os.waitpid(pid, 0)
    with os.fdopen(status_r, "rb") as f:
        msg = f.read().decode(errors="replace")
    if msg != "0":
        if mine >= 0:
            os.close(mine)
        code, _, text = msg.partition(" ")
        if not msg:
            text, code = "the container's monitor died before the container ran", "125"
        raise EngineError(text, int(code) if code.isdigit() else 125)
    return mine if attach else None


def start(
    engine: Engine,
    rec: dict,
    *,
    mounted: bool,
    report: int | None,
    clients: list[int],
    backoff: int = 0,
    console_size: dict | None = None,
) -> None:
    """In the monitor: spawn the container as our child, record it, become the lean monitor.

    Never returns unless it raises (before the container ran, with the record finished).
    With ``-t`` the container makes its pty on its own devpts and sends us the master
    (nsutil.console); ``console_size`` is the attached client's window, set before exec.
    """
    from ..nsutil.spawn import SpawnError

    if not mounted:
        engine.mount(rec)
    bundle = engine.bundle(rec)
    cfg = rec["Config"]
    tty, open_stdin = bool(cfg.get("Tty")), bool(cfg.get("OpenStdin"))
    console = -1
    if tty:
        import _socket

        a, b = _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_STREAM | _socket.SOCK_CLOEXEC)
        theirs, console = a.detach(), b.detach()
        null = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
        stdio, keep = (null, null, null), {"out": -1, "err": -1, "in": -1, "console": console}
        bundle["process"]["terminal"] = True
        bundle["process"]["env"] = with_term(bundle["process"].get("env") or [])
        if console_size:
            bundle["process"]["consoleSize"] = console_size
    else:
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        if open_stdin:
            in_r, in_w = os.pipe()
        else:
            in_r, in_w = os.open(os.devnull, os.O_RDONLY), -1
        stdio, keep = (in_r, out_w, err_w), {"out": out_r, "err": err_r, "in": in_w}
    try:
        mode = rec["HostConfig"].get("NetworkMode")
        if mode and mode not in ("none", "host"):
            from .network.manager import setup as network_setup

            bundle = network_setup(engine, rec, bundle)
        if any(
            str(rec["HostConfig"].get(k)).startswith("container:") for k in ("PidMode", "IpcMode")
        ):  # another container's namespace
            from . import nsjoin

            engine.flush_created(rec)  # the bundle on disk keeps the mode, not a pid
            bundle = nsjoin.join(engine, rec, bundle)
        running = runtime.start(bundle, stdio, console=theirs if tty else None)
        if tty:
            os.close(theirs)
            theirs = -1
            keep = {"out": _take_master(running, console), "err": -1, "in": -1}
            keep["in"] = keep["out"]
            os.close(console)
    except SpawnError as e:
        _close_all(stdio, keep, theirs if tty else -1)
        engine.start_failed(rec, e.exit_code, str(e))
        raise EngineError(str(e), e.exit_code) from None
    except BaseException as e:
        _close_all(stdio, keep, theirs if tty else -1)
        engine.start_failed(rec, 125, str(e) or type(e).__name__)
        raise
    for fd in set(stdio):
        os.close(fd)
    st = rec["State"]
    st["OOMKilled"] = False
    st["Restarting"] = False
    probe_every = 0
    if cfg.get("Healthcheck"):
        from . import health

        if health.active(cfg["Healthcheck"]):
            health.reset(st)  # starting again, as moby's initHealthMonitor
            probe_every = health.interval(cfg["Healthcheck"])
    rec["MonitorCgroup"] = _own_cgroup()
    # The attach socket exists before anyone hears the container runs: an `attach` right
    # after `run -d` must find it (the lean monitor takes it over across the execve).
    from .monitor_main import listen

    cdir = str(engine.containers.path(rec["Id"]))
    listener = listen(os.path.join(cdir, ATTACH_SOCK))
    engine.mark_running(rec, running.pid)
    if report is not None:
        os.write(report, b"0")
        os.close(report)
    args = {
        "root": str(engine.root),
        "cid": rec["Id"],
        "pid": str(running.pid),
        "tty": "1" if tty else "0",
        "sock": os.path.join(cdir, ATTACH_SOCK),
        "clients": ",".join(str(c) for c in clients),
        "backoff": str(backoff),
        "python": sys.executable,
        "health": str(probe_every),
        "listen": str(listener.detach()),
    }
    from .logconfig import monitor_args

    args.update(monitor_args(rec, cdir))
    for k, fd in keep.items():
        args[k] = str(fd)
    for fd in (*keep.values(), *clients, int(args["listen"])):
        if fd >= 0:
            os.set_inheritable(fd, True)
    sys.stdout.flush()
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "monitor_main.py")
    argv = ownpython.script(script, *(f"{k}={v}" for k, v in args.items()))
    os.execv(argv[0], argv)


def _own_cgroup() -> dict[str, str]:
    from ..cgroupfs.layout import own_paths

    return own_paths()


def _take_master(running: runtime.Running, sock: int) -> int:
    """The pty master the container's init sent; if none came, the container goes."""
    from ..nsutil.console import receive_master

    try:
        return receive_master(sock)
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            os.kill(running.pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(running.pid, 0)
        runtime.stop_cgroup(running)
        raise


def _close_all(stdio: tuple[int, ...], keep: dict[str, int], *more: int) -> None:
    for fd in {*stdio, *keep.values(), *more}:
        if fd >= 0:
            with contextlib.suppress(OSError):
                os.close(fd)


# -- after the container's exit ------------------------------------------------------------------


def exited(root: str, cid: str, pid: int, code: int, backoff: int, uptime_ms: int) -> int:
    """In the monitor, PID 1 reaped: record OOM and exit, then restart or finish."""
    from ..cgroupfs import Cgroup

    engine = Engine(root)
    rec = engine.containers.load(cid)
    cdir = str(engine.containers.path(cid))
    cg = Cgroup(engine.bundle(rec)["linux"]["cgroupsPath"])
    oom = False
    if cg.exists():
        with contextlib.suppress(OSError, ValueError):
            oom = bool(cg.stats().oom_kills)
        if cg.procs():  # PID 1 is gone (or the lean monitor failed): end the rest
            cg.kill(signal.SIGKILL)
        # A member stays in the cgroup until its parent reaps it: if the lean monitor
        # failed before reaping PID 1, it is still our child. (Only that pid: a storage
        # driver's helper, e.g. a FUSE server, may be our child too and must live on.)
        if pid > 0:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
        runtime.stop_cgroup(runtime.Running(0, cg))
    # The record changes under the container's lock (see ContainerStore.lock): a rename,
    # pause or stop in between must not be lost or act on a state we are replacing.
    lock = engine.containers.lock(cid)
    lock.acquire()
    try:
        rec = engine.containers.load(cid)  # as it is now, not as it was when we started
        request = read_stop_request(cdir)
        manual = bool(request) or bool(rec.get("HasBeenManuallyStopped"))
        st = rec["State"]
        st["OOMKilled"] = oom
        rec["HasBeenManuallyStopped"] = manual
        policy = rec["HostConfig"].get("RestartPolicy") or {}
        restart = request != "cancel" and should_restart(
            policy, code, manual, rec.get("RestartCount", 0)
        )
        if oom:
            from . import events

            events.container(engine.root, rec, "oom")
        if restart:
            from . import events

            events.container(engine.root, rec, "die", exitCode=str(code))
            backoff = next_backoff(backoff, uptime_ms)
            st.update(Status="restarting", Running=True, Restarting=True, Pid=0, ExitCode=code,
                      FinishedAt=now(), Owner=me())  # fmt: skip
            engine.containers.save(rec)
            # As Docker cleans up an exited container before its restart: the network
            # (netns, veth, leases, published ports) is made anew by the next start.
            engine.release_network(rec)
            lock.release()  # nobody waits on a lock through a back-off
            deadline = time.monotonic() + backoff / 1000
            while time.monotonic() < deadline and not _cancelled(cdir):
                time.sleep(min(0.05, max(0.0, deadline - time.monotonic())))
            lock.acquire()
            rec = engine.containers.load(cid)
            if not _cancelled(cdir, remove=True):
                rec["RestartCount"] = rec.get("RestartCount", 0) + 1
                try:  # execs the lean monitor: the lock's descriptor is close-on-exec
                    start(engine, rec, mounted=True, report=None, clients=[], backoff=backoff)
                except Exception:  # noqa: BLE001 - start() recorded why, released the container
                    return 1
            rec["HasBeenManuallyStopped"] = True
        rec["State"]["OOMKilled"] = oom
        engine.finish(rec, code)
    finally:
        lock.release()
    return 0


def _cancelled(cdir: str, remove: bool = False) -> bool:
    """Whether a stop/kill asked that the pending restart not happen."""
    if read_stop_request(cdir, remove=False) != "cancel":
        return False
    if remove:
        read_stop_request(cdir)
    return True


def main(argv: list[str]) -> int:
    if argv[:1] != ["exited"]:
        print(
            "usage: python -m pydock.engine.shim exited root=R cid=ID code=N ...", file=sys.stderr
        )
        return 2
    args = dict(a.split("=", 1) for a in argv[1:])
    try:
        return exited(
            args["root"], args["cid"], int(args.get("pid", 0)), int(args["code"]),
            int(args.get("backoff", 0)),
            int(args.get("uptime", 0)),
        )  # fmt: skip
    except Exception as e:  # noqa: BLE001 - nobody reads our stderr; the record says it
        with contextlib.suppress(Exception):
            engine = Engine(args["root"])
            rec = engine.containers.load(args["cid"])
            engine.finish(rec, int(args["code"]), f"monitor: {e}")
        return 1


def monitor_alive(rec: dict) -> bool:
    return alive(rec["State"].get("Owner"))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
