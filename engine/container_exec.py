"""``exec``: a new process inside a running container.

The process joins every namespace of the container's PID 1 (``path: /proc/<pid>/ns/*`` in
a runtime spec with no ``root``: nsutil.spawn's exec mode, where setns(CLONE_NEWNS) puts
it in the container's root), is placed in the container's cgroups before it runs, and
gets the container's capabilities, no_new_privs and environment, plus ``-e``, ``-u``,
``-w``. Like ``runc exec``, the process is the child of the command that started it; a
``-d`` one is the child of a tiny reaper (exec_reaper.py) that lives exactly as long as it.
With ``-t`` the process makes its pty on the container's devpts and sends us the master
(nsutil.console, runc's console socket), so ``tty`` inside names /dev/pts/N.
"""

from __future__ import annotations

import os

from .containers import alive
from .engine import Engine
from .errors import Conflict

# OCI namespace type -> /proc/<pid>/ns name; pid and time are joined around the fork.
_NS = {"ipc": "ipc", "uts": "uts", "network": "net", "pid": "pid", "cgroup": "cgroup",
       "mount": "mnt"}  # fmt: skip


def exec_spec(engine: Engine, rec: dict, args: list[str], *, env: list[str], user: str | None,
              workdir: str | None, tty: bool) -> dict:  # fmt: skip
    from .spec import merge_env, resolve_user, with_term

    pid = rec["State"]["Pid"]
    bundle = engine.bundle(rec)
    proc = bundle["process"]
    # /etc/passwd of the running container, read through its root (spec._read_db opens
    # every component without following symlinks out of it)
    user_spec = resolve_user(f"/proc/{pid}/root", user) if user else proc.get("user")
    base_env = [e for e in proc.get("env") or [] if not e.startswith("HOSTNAME=")]
    if tty:
        base_env = with_term(base_env)
    process = {
        "terminal": tty,
        "user": user_spec,
        "args": args,
        "env": merge_env(base_env, env, bundle.get("hostname") or rec["Config"]["Hostname"]),
        "cwd": workdir or proc.get("cwd") or "/",
        "capabilities": proc.get("capabilities"),
        "noNewPrivileges": proc.get("noNewPrivileges", False),
    }
    own = {t: f"/proc/{pid}/ns/{name}" for t, name in _NS.items()}
    linux = {"namespaces": [{"type": t, "path": p} for t, p in own.items()]}
    for key in ("seccomp",):  # whatever confines PID 1 confines its siblings
        if key in bundle.get("linux", {}):
            linux[key] = bundle["linux"][key]
    return {"ociVersion": bundle.get("ociVersion", "1.0.2"), "process": process, "linux": linux}


def run_exec(
    engine: Engine,
    ref: str,
    args: list[str],
    *,
    interactive: bool,
    tty: bool,
    detach: bool,
    env: list[str],
    user: str | None,
    workdir: str | None,
    detach_keys: str | None = None,
) -> int:
    """Run ``args`` in the container; its exit code (0 at once with ``detach``), or
    attach.DETACHED when the user typed the detach keys (``-it`` only, as Docker's)."""
    from .attach import parse_detach_keys
    from .errors import EngineError

    keys = parse_detach_keys(detach_keys, "escape")  # the daemon checks them at exec create
    rec = engine.containers.load(engine.containers.resolve(ref))
    st = rec["State"]
    if st["Status"] != "running" or st["Pid"] <= 0 or not alive(st.get("Owner")):
        raise Conflict(f"Container {rec['Id']} is not running")
    if st.get("Paused"):
        raise Conflict(f"Container {rec['Id']} is paused, unpause the container before exec")
    try:
        return _start(engine, rec, args, interactive=interactive, tty=tty, detach=detach,
                      env=env, user=user, workdir=workdir, keys=keys)  # fmt: skip
    except EngineError as e:
        # What fails after exec create (no such user, cwd or command) is moby's
        # ContainerExecStart failing: it records exit code 126 for all of them (its
        # deferred 126 overrides translateContainerdStartErr's 127), which docker exec
        # returns; with -d the client gets the daemon's error and exits 1.
        raise EngineError(str(e), 1 if detach else 126) from None


def _start(engine: Engine, rec: dict, args: list[str], *, interactive: bool, tty: bool,
           detach: bool, env: list[str], user: str | None, workdir: str | None,
           keys: bytes) -> int:  # fmt: skip
    from ..nsutil.spawn import SpawnError
    from .errors import EngineError

    spec = exec_spec(engine, rec, args, env=env, user=user, workdir=workdir, tty=tty)
    cgroup = engine.container_cgroup(rec)
    if detach:
        _exec_detached(spec, cgroup.attach, tty)
        return 0
    if tty and interactive:
        # Detachable: the reaper (exec -d's) is the process's parent from the start and
        # lends us the pty master; we leave with the keys, it stays (docker exec's shim).
        from ..nsutil.console import window_size

        size = window_size(0)  # ours: the reaper's stdin is /dev/null
        if size:
            spec["process"]["consoleSize"] = size
        ctl, master = _exec_detached(spec, cgroup.attach, tty, lend=True)
        try:
            return _relay_pty(master, True, ctl=ctl, keys=keys)
        finally:
            os.close(master)
            os.close(ctl)
    master = -1
    null = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
    try:
        stdio = (null, null, null) if tty else (0 if interactive else null, 1, 2)
        try:
            pid, master = _spawn(spec, cgroup.attach, stdio, tty)
        except SpawnError as e:
            raise EngineError(str(e), e.exit_code) from None
        if master >= 0:
            return _relay_pty(master, interactive, pid=pid)
        return _wait(pid)
    finally:
        os.close(null)
        if master >= 0:
            os.close(master)


def _spawn(spec: dict, on_forked, stdio: tuple[int, int, int], tty: bool) -> tuple[int, int]:
    """Spawn the exec'd process; with ``tty`` also return the master of its pty (else -1)."""
    import _socket

    from ..nsutil.console import receive_master, window_size
    from ..nsutil.spawn import spawn

    if not tty:
        return spawn(spec, on_forked=on_forked, stdio=stdio), -1
    size = window_size(0)
    if size:
        spec["process"]["consoleSize"] = size
    a, b = _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_STREAM | _socket.SOCK_CLOEXEC)
    mine, theirs = a.detach(), b.detach()
    try:
        try:
            pid = spawn(spec, on_forked=on_forked, stdio=stdio, console_socket=theirs)
        finally:
            os.close(theirs)
        try:
            return pid, receive_master(mine)
        except BaseException:
            os.kill(pid, 9)  # our child, which sent no terminal
            os.waitpid(pid, 0)
            raise
    finally:
        os.close(mine)


def _exec_detached(spec: dict, on_forked, tty: bool, *, lend: bool = False):
    """``exec -d``: a detached reaper spawns the process and stays its parent (see
    exec_reaper.py); returns once the process runs, or raises why it could not.

    ``lend`` (``exec -it``): the reaper also sends us the pty master and keeps a control
    socket to us, on which it reports the exit code; returns (control socket, master)."""
    from .. import ownpython
    from ..nsutil.spawn import SpawnError
    from .errors import EngineError

    mine = theirs = -1
    if lend:
        import _socket

        a, b = _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_STREAM | _socket.SOCK_CLOEXEC)
        mine, theirs = a.detach(), b.detach()
    status_r, status_w = os.pipe2(os.O_CLOEXEC)
    pid = os.fork()
    if pid == 0:
        code = 125
        try:
            os.close(status_r)
            if mine >= 0:
                os.close(mine)
            os.setsid()  # not in the caller's session: its terminal's signals are not ours
            if os.fork():  # the reaper is a grandchild: its parent is gone at once
                os._exit(0)
            null = os.open(os.devnull, os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(null, fd)
            os.close(null)
            child, master = _spawn(spec, on_forked, (0, 0, 0), tty)
            if theirs >= 0:
                from ..nsutil.console import send_fd

                send_fd(theirs, master)  # before "0": the caller reads it next
            os.write(status_w, b"0")
            argv = [str(child)]
            if master >= 0:
                os.set_inheritable(master, True)
                argv.append(str(master))
            if theirs >= 0:
                os.set_inheritable(theirs, True)
                argv.append(str(theirs))
            script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "exec_reaper.py")
            cmd = ownpython.script(script, *argv)
            os.execv(cmd[0], cmd)
        except BaseException as e:  # noqa: BLE001 - reported to the command, then exit
            code = e.exit_code if isinstance(e, SpawnError) else 125
            try:
                os.write(status_w, f"{code} {e}".encode())
            except OSError:
                pass
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
        raise EngineError(text or "exec: the reaper died before the process ran",
                          int(code) if code.isdigit() else 125)  # fmt: skip
    if not lend:
        return None
    from ..nsutil.console import receive_master

    try:
        return mine, receive_master(mine)
    except BaseException:
        os.close(mine)  # the reaper sees us gone and keeps the process, as after a detach
        raise


def _wait(pid: int) -> int:
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    return code if code >= 0 else 128 - code


def _relay_pty(master: int, interactive: bool, *, pid: int = -1, ctl: int = -1,
               keys: bytes = b"") -> int:  # fmt: skip
    """Our terminal <-> the process's pty until it exits (raw mode, window size passed on):
    its exit code, from waiting on ``pid`` (our child) or from the reaper on ``ctl``; with
    ``keys``, attach.DETACHED as soon as the user types them."""
    import fcntl
    import select
    import signal
    import termios

    from .attach import _DetachScanner

    scanner = _DetachScanner(keys) if keys else None
    restore = None
    if interactive and os.isatty(0):
        import tty as ttymod

        restore = termios.tcgetattr(0)
        ttymod.setraw(0)

    def winch(*_a) -> None:
        try:
            fcntl.ioctl(master, termios.TIOCSWINSZ, fcntl.ioctl(0, termios.TIOCGWINSZ, b"\0" * 8))
        except OSError:
            pass

    old = signal.signal(signal.SIGWINCH, winch) if os.isatty(0) else None
    if old is not None:
        winch()
    done_fd = os.pidfd_open(pid) if pid > 0 else ctl
    report = b""
    try:
        poller = select.poll()
        poller.register(master, select.POLLIN)
        poller.register(done_fd, select.POLLIN)
        if interactive:
            poller.register(0, select.POLLIN)
        exited = master_done = False
        while not exited:
            try:
                events = poller.poll()
            except InterruptedError:
                continue
            for fd, _ in events:
                if fd == done_fd:
                    if pid <= 0:  # the reaper's "CODE\n" (nothing: it died)
                        chunk = os.read(ctl, 64)
                        report += chunk
                        if chunk and not report.endswith(b"\n"):
                            continue
                    exited = True
                elif fd == master:
                    try:
                        data = os.read(master, 65536)
                    except OSError:  # EIO: every slave fd is closed
                        data = b""
                    if not data:
                        poller.unregister(master)
                        master_done = True
                        continue
                    os.write(1, data)
                elif fd == 0:
                    data = os.read(0, 65536)
                    if not data:
                        poller.unregister(0)
                        os.write(master, b"\x04")  # EOF on a terminal is ^D
                        continue
                    detach = False
                    if scanner is not None:
                        data, detach = scanner.feed(data)
                    if data:
                        os.write(master, data)
                    if detach:
                        from .attach import DETACHED

                        return DETACHED
        # the process is gone; what it wrote may still sit in the pty
        while not master_done and select.select([master], [], [], 0.1)[0]:
            try:
                data = os.read(master, 65536)
            except OSError:
                break
            if not data:
                break
            os.write(1, data)
        if pid > 0:
            return _wait(pid)
        text = report.strip()
        return int(text) if text.isdigit() else 255  # the reaper went away without a word
    finally:
        if pid > 0:
            os.close(done_fd)
        if old is not None:
            signal.signal(signal.SIGWINCH, old)
        if restore is not None:
            termios.tcsetattr(0, termios.TCSADRAIN, restore)
