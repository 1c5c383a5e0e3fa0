"""Turn an OCI runtime spec into a running container process: fork, isolate, exec.

The shape follows runc's "init" protocol in one Python fork instead of a re-exec:

  parent                                   child (PID 1 of the new pid namespace)
  ------                                   ---------------------------------------
  unshare(CLONE_NEWPID); fork()            pdeathsig, stdio, wait on the sync pipe
  setns back to its own pid namespace
  on_forked(pid)  (engine: cgroups)
  release the sync pipe             ---->  setns joins, unshares (cgroup last), lo up,
                                           hostname, rootfs + pivot_root, rlimits,
                                           oom_score_adj, no_new_privs, seccomp, user,
                                           caps, cwd
  read the CLOEXEC error pipe       <----  execve(): the pipe closes (EOF = success) or
                                           a JSON error arrives and the child exits

Only the stdlib and the cffi module are used, so `pydock run` stays fast to start.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import signal
from collections.abc import Callable
from errno import EACCES, EINVAL, ENOENT, ENOTDIR, EOPNOTSUPP

from pydock.nsutil import caps, memory, namespaces, rootfs
from pydock.nsutil import syscalls as sc

EXIT_SETUP_FAILED = 125  # Docker's "the engine failed"
EXIT_CANNOT_EXEC = 126  # found but not executable
EXIT_NOT_FOUND = 127  # command not found

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# Namespaces that unshare()/setns() apply only to the caller's future children, so the
# parent enters them around fork() and goes back afterwards.
_FOR_CHILDREN = ("pid", "time")


class SpawnError(Exception):
    """Container setup or exec failed; ``str()`` is one line fit for the CLI."""

    def __init__(self, errno: int, stage: str, message: str, exit_code: int | None = None):
        self.errno = errno
        self.stage = stage
        self.message = " ".join(message.split())
        if exit_code is None:
            exit_code = _exit_code_for(stage, errno)
        self.exit_code = exit_code
        super().__init__(self.message)

    def __str__(self) -> str:
        return f"container {self.stage} failed: {self.message}"


def _exit_code_for(stage: str, err: int) -> int:
    if stage != "exec":
        return EXIT_SETUP_FAILED
    return EXIT_NOT_FOUND if err == ENOENT else EXIT_CANNOT_EXEC


#: namespaces a held init makes while it waits: new ones, like a spec's, only made early
#: (a network namespace with lo up costs ~1 ms); a spec must ask for all of them
_PREMADE = ("network", "uts", "ipc")

#: largest spec a held init accepts (a SOCK_SEQPACKET message; Docker's seccomp profile
#: makes a spec of ~30 KiB)
_MAX_SPEC = 1 << 20


class Held:
    """A container's PID 1 forked before its spec is known (:func:`prefork`).

    It sits in its new pid namespace, waiting on ``chan`` for the spec and its stdio; the
    caller may move it into cgroups meanwhile, which is the point: joining a v1 cgroup
    waits for an RCU grace period (milliseconds), paid here ahead of the start.
    """

    __slots__ = ("pid", "chan", "err_r", "sync_w", "pdeathsig")

    def __init__(self, pid: int, chan, err_r: int, sync_w: int, pdeathsig: int | None) -> None:
        self.pid = pid
        self.chan = chan  # socket.socket (SOCK_SEQPACKET), the parent's end
        self.err_r = err_r
        self.sync_w = sync_w
        self.pdeathsig = pdeathsig

    def usable_for(self, spec: dict, pdeathsig: int | None) -> bool:
        """Whether ``spec`` can start in this init: it must want what was made before the
        fork (a new pid namespace, new or joined network, UTS and IPC namespaces: the init
        setns()es into a joined one, leaving its own), no time namespace, and the same
        parent-death signal."""
        if self.chan is None or pdeathsig != self.pdeathsig:
            return False
        try:
            ns = namespaces.plan((spec.get("linux") or {}).get("namespaces"))
        except ValueError:
            return False
        return (
            "pid" in ns.new
            and all(ns.private(t) for t in _PREMADE)
            and "time" not in ns.new
            and "time" not in ns.join
        )

    def discard(self) -> None:
        """Kill and reap the unused init and close its channels."""
        if self.chan is not None:
            self.chan.close()
            self.chan = None
            os.close(self.err_r)
            os.close(self.sync_w)
            _kill_and_reap(self.pid)


def prefork(*, pdeathsig: int | None = signal.SIGKILL) -> Held:
    """Fork a container's PID 1 into a new pid namespace ahead of its spec.

    :func:`spawn` with ``held=`` hands it the spec later; until then it blocks on a socket,
    and it dies with its parent (``pdeathsig``, checked against a parent that died before
    the prctl). Used by the start workers (engine/starter.py).

    Returns once the init owns its memory (nsutil/memory.py), so that the caller moves it
    into the container's cgroup only then: memory cgroups charge a page to the cgroup of
    the task that faulted it and do not move charges with the task (memory.rst,
    "move_charge_at_immigrate", off by default; cgroup-v2.rst: never), so those pages stay
    the caller's, and a ``--memory`` limit below them can still be set.
    """
    import socket

    ns = namespaces.plan([{"type": "pid"}])
    parent_end, child_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    err_r, err_w = os.pipe2(os.O_CLOEXEC)
    sync_r, sync_w = os.pipe2(os.O_CLOEXEC)
    try:
        pid = _fork_into_child_namespaces(ns, lambda: _held_child(
            child_end, parent_end, sync_r, sync_w, err_r, err_w, pdeathsig))  # fmt: skip
    except BaseException:
        for fd in (err_r, err_w, sync_r, sync_w):
            os.close(fd)
        parent_end.close()
        raise
    finally:
        child_end.close()
    os.close(err_w)
    os.close(sync_r)
    held = Held(pid, parent_end, err_r, sync_w, pdeathsig)
    try:
        ready = parent_end.recv(1)
    except OSError:
        ready = b""
    if ready != b"r":
        held.discard()
        raise SpawnError(EINVAL, "init", "the prepared init exited before it was ready")
    return held


def _held_child(
    chan, other, sync_r: int, sync_w: int, err_r: int, err_w: int,
    pdeathsig: int | None,
) -> None:  # fmt: skip
    """A held init: wait for the spec and stdio, then go on as :func:`_child`."""
    import socket

    try:
        other.close()
        if pdeathsig:
            sc.prctl(sc.lib.PR_SET_PDEATHSIG, pdeathsig)
        sc.unshare(sum(namespaces.NAMESPACE_TYPES[t][0] for t in _PREMADE))
        namespaces.loopback_up()
        # Idle until the spec comes: own our pages now rather than fault on each one the
        # container's setup writes to (nsutil/memory.py).
        memory.own_private_memory()
        chan.send(b"r")  # now the worker may move us into the container's cgroup
        # A parent that died before the prctl took effect closed its end: recv sees EOF.
        msg, fds, _, _ = socket.recv_fds(chan, _MAX_SPEC, 4)
        chan.close()
        if not msg or len(fds) < 3:
            os._exit(EXIT_SETUP_FAILED)  # discarded: the parent closed the channel
        size = int.from_bytes(msg[:8], "little")
        spec = json.loads(msg[8 : 8 + size])
        bpf = msg[8 + size :]
        if bpf:  # compiled by the parent: the child only installs it (see spawn())
            from pydock.nsutil import seccomp

            seccomp.remember(spec["linux"]["seccomp"], bpf)
        ns = namespaces.plan((spec.get("linux") or {}).get("namespaces"))
    except BaseException:
        os._exit(EXIT_SETUP_FAILED)
    console = fds[3] if len(fds) > 3 else None
    _child(spec, ns, (fds[0], fds[1], fds[2]), sync_r, sync_w, err_r, err_w, pdeathsig, console,
           premade=_PREMADE)  # fmt: skip


def spawn(
    spec: dict,
    *,
    on_forked: Callable[[int], None] | None = None,
    stdio: tuple[int, int, int] = (0, 1, 2),
    pdeathsig: int | None = signal.SIGKILL,
    console_socket: int | None = None,
    held: Held | None = None,
    during: Callable[[int], None] | None = None,
) -> int:
    """Start the container process described by ``spec``; return its host pid once it has
    exec'd. The caller owns the child: it must waitpid() it.

    ``on_forked(pid)`` is where the engine moves the child into its cgroups. It runs while
    the child builds its namespaces and root filesystem (the two overlap: joining v1
    cgroups costs an RCU grace period, milliseconds, which the child's mount work hides);
    the child waits for it to return before it unshares its cgroup namespace (so that
    namespace is rooted at the container's cgroup) and before anything of the container's
    own runs; a spec's cgroupfs mounts wait for it, after its other mounts. ``stdio`` are the
    caller's fds to become the container's 0, 1, 2. ``pdeathsig`` is sent to the
    container if the caller's thread dies.

    With ``process.terminal`` and a ``console_socket`` (a connected AF_UNIX socket, like
    runc's ``--console-socket``), the child makes a pty on the container's own devpts once
    its root is in place, takes it as stdio and controlling terminal, and sends the master
    over the socket (nsutil.console.receive_master reads it). Without a socket the caller's
    ``stdio`` must already be a terminal, and stdin becomes the controlling one.

    ``root.path`` is used as given (relative paths against the caller's cwd); the engine
    passes absolute paths.

    ``held``: an init made by :func:`prefork` (check :meth:`Held.usable_for` first) gets
    the spec instead of a fresh fork; it is consumed either way. ``during(pid)`` runs once
    the child is released, while it builds the container (the engine writes its state then).
    """
    process = spec.get("process") or {}
    if not process.get("args"):
        raise SpawnError(EINVAL, "config", "process.args is empty")
    try:
        ns = namespaces.plan((spec.get("linux") or {}).get("namespaces"))
    except ValueError as e:
        raise SpawnError(EINVAL, "config", str(e)) from None
    if "user" in ns.new:
        raise SpawnError(
            EOPNOTSUPP,
            "namespaces",
            "creating a user namespace (uid/gid mappings) is not supported",
        )
    if not ns.private("mount"):
        raise SpawnError(EINVAL, "config", "a mount namespace is required to set up the rootfs")
    if (spec.get("linux") or {}).get("seccomp"):
        from pydock.nsutil import seccomp

        try:  # compiled (or read from the cache) here, once; the child only installs it
            seccomp.program(spec["linux"]["seccomp"])
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise SpawnError(getattr(e, "errno", None) or EINVAL, "seccomp", str(e)) from None

    if process.get("terminal") and console_socket is not None:
        from pydock.nsutil import console  # noqa: F401 - the child cannot import after pivot_root

    if held is not None:
        pid, err_r, sync_w = _release(held, spec, stdio, console_socket)
    else:
        err_r, err_w = os.pipe2(os.O_CLOEXEC)
        sync_r, sync_w = os.pipe2(os.O_CLOEXEC)
        try:
            pid = _fork_into_child_namespaces(ns, lambda: _child(spec, ns, stdio, sync_r,
                                                                 sync_w, err_r, err_w,
                                                                 pdeathsig,
                                                                 console_socket))  # fmt: skip
        except BaseException:
            for fd in (err_r, err_w, sync_r, sync_w):
                os.close(fd)
            raise
        os.close(err_w)
        os.close(sync_r)
    try:
        try:
            if on_forked is not None:
                on_forked(pid)
            os.write(sync_w, b"go")
        finally:
            os.close(sync_w)
        if during is not None:
            during(pid)
        report = _read_all(err_r)
    except BaseException:
        # The child may have failed first (a sethostname or a cwd of its own, before it
        # waits for "go"): our write then gets EPIPE, on_forked an ESRCH. Its report is
        # the cause the user must see, not our Broken pipe; a killed child reports nothing.
        _kill_and_reap(pid)
        report = _read_all(err_r)
        if report:
            raise _reported(report) from None
        raise
    finally:
        os.close(err_r)
    if not report:
        return pid
    os.waitpid(pid, 0)
    raise _reported(report)


def _reported(report: bytes) -> SpawnError:
    """The SpawnError for the child's JSON error report."""
    try:
        info = json.loads(report)
        return SpawnError(int(info["errno"]), str(info["stage"]), str(info["message"]))
    except (ValueError, KeyError, TypeError):
        return SpawnError(0, "init", report.decode(errors="replace"))


def _release(
    held: Held, spec: dict, stdio: tuple[int, int, int], console_socket: int | None
) -> tuple[int, int, int]:
    """Send a held init its spec and fds; return (pid, err_r, sync_w) as a fork would."""
    import socket

    if held.chan is None:
        raise SpawnError(EINVAL, "init", "the prepared init was already used")
    fds = list(stdio)
    if (spec.get("process") or {}).get("terminal") and console_socket is not None:
        fds.append(console_socket)
    doc = json.dumps(spec).encode()
    bpf = b""
    if (spec.get("linux") or {}).get("seccomp"):
        from pydock.nsutil import seccomp

        bpf = seccomp.program(spec["linux"]["seccomp"])  # memoized: compiled by spawn()
    chan, held.chan = held.chan, None
    try:
        socket.send_fds(chan, [len(doc).to_bytes(8, "little"), doc, bpf], fds)
    except OSError as e:
        os.close(held.err_r)
        os.close(held.sync_w)
        _kill_and_reap(held.pid)
        raise SpawnError(e.errno or 0, "init", f"the prepared init is gone: {e.strerror}") from None
    finally:
        chan.close()
    return held.pid, held.err_r, held.sync_w


def _read_all(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 65536):
        chunks.append(chunk)
    return b"".join(chunks)


def _kill_and_reap(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)


def _fork_into_child_namespaces(ns: namespaces.NamespacePlan, child: Callable[[], None]) -> int:
    """fork() with the pid/time namespaces the spec asks for applied to the child only.

    unshare(CLONE_NEWPID) and setns() of a pid namespace change what the caller's *next*
    child gets (pid_namespaces(7)); afterwards we setns() back to our own so the caller's
    later forks are unaffected.
    """
    saved: list[tuple[str, int]] = []
    try:
        for t in _FOR_CHILDREN:
            if t in ns.new or t in ns.join:
                fd = os.open(namespaces.ns_path(t), os.O_RDONLY | os.O_CLOEXEC)
                saved.append((t, fd))
        try:
            for t in _FOR_CHILDREN:
                if t in ns.join:
                    namespaces.join(t, ns.join[t])
            flags = ns.new_flags(*_FOR_CHILDREN)
            if flags:
                sc.unshare(flags)
        except OSError as e:
            raise SpawnError(e.errno or 0, "namespaces", e.strerror or str(e)) from None
        pid = os.fork()
        if pid == 0:
            child()  # never returns
            os._exit(EXIT_SETUP_FAILED)
        return pid
    finally:
        for t, fd in saved:
            try:
                sc.setns(fd, namespaces.NAMESPACE_TYPES[t][0], namespaces.ns_path(t))
            finally:
                os.close(fd)


class _Stage:
    """Which step the child is in, for the error report."""

    name = "init"


def _child(
    spec: dict,
    ns: namespaces.NamespacePlan,
    stdio: tuple[int, int, int],
    sync_r: int,
    sync_w: int,
    err_r: int,
    err_w: int,
    pdeathsig: int | None,
    console_socket: int | None,
    premade: tuple[str, ...] = (),
) -> None:
    """The container's init, from fork to execve. Never returns. ``premade``: new
    namespaces it already unshared (a held init's)."""
    stage = _Stage()
    code = EXIT_SETUP_FAILED
    try:
        os.close(sync_w)
        os.close(err_r)
        if pdeathsig:
            sc.prctl(sc.lib.PR_SET_PDEATHSIG, pdeathsig)
        _setup_stdio(stdio)
        if (spec.get("process") or {}).get("terminal") and console_socket is None:
            stage.name = "terminal"
            _controlling_terminal()
        _init(spec, ns, stage, pdeathsig, err_w, sync_r, console_socket, premade)
    except BaseException as e:
        err = getattr(e, "errno", None) or 0
        if stage.name == "exec":
            code = EXIT_NOT_FOUND if err == ENOENT else EXIT_CANNOT_EXEC
        report = {"errno": err, "stage": stage.name, "message": _describe(e)}
        with contextlib.suppress(OSError):
            os.write(err_w, json.dumps(report).encode())
    finally:
        os._exit(code)


def _describe(e: BaseException) -> str:
    if isinstance(e, OSError) and e.strerror:
        msg = e.strerror
        if e.filename is not None and str(e.filename) not in msg:
            msg = f"{msg}: {e.filename}"
        return msg
    return str(e) or type(e).__name__


def _controlling_terminal() -> None:
    """process.terminal: a new session whose controlling terminal is stdin (a pty slave),
    so job control and ^C reach the container's foreground process group (credentials(7),
    tty_ioctl(4) TIOCSCTTY)."""
    import fcntl
    import termios

    os.setsid()
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def _setup_stdio(stdio: tuple[int, int, int]) -> None:
    # Duplicate first so that e.g. stdio=(1, 0, 2) does not clobber a source fd.
    high = [os.dup(fd) for fd in stdio]
    for target, fd in enumerate(high):
        os.dup2(fd, target, inheritable=True)
        os.close(fd)


def _wait_for_cgroups(sync_r: int, ns: namespaces.NamespacePlan) -> None:
    """Block until the parent's on_forked() has placed us, then enter the cgroup namespace."""
    if os.read(sync_r, 2) != b"go":
        os._exit(EXIT_SETUP_FAILED)  # the parent died or gave up before releasing us
    os.close(sync_r)
    if "cgroup" in ns.new:
        # After on_forked() placed us: the namespace's root is the container's cgroup.
        sc.unshare(sc.lib.CLONE_NEWCGROUP)


def _init(
    spec: dict,
    ns: namespaces.NamespacePlan,
    stage: _Stage,
    pdeathsig: int | None,
    err_w: int,
    sync_r: int,
    console_socket: int | None = None,
    premade: tuple[str, ...] = (),
) -> None:
    process = spec.get("process") or {}
    linux = spec.get("linux") or {}

    stage.name = "setns"
    for t in namespaces.JOIN_ORDER:
        if t in ns.join and t not in _FOR_CHILDREN:
            namespaces.join(t, ns.join[t])

    stage.name = "unshare"
    flags = ns.new_flags(*(t for t in ("mount", "uts", "ipc", "network") if t not in premade))
    if flags:
        sc.unshare(flags)

    if "network" in ns.new and "network" not in premade:
        stage.name = "network"
        namespaces.loopback_up()

    stage.name = "hostname"
    if spec.get("hostname") or linux.get("domainname") or spec.get("domainname"):
        if not ns.private("uts"):
            raise OSError(EINVAL, "cannot set hostname without a private UTS namespace")
        if spec.get("hostname"):
            sc.sethostname(spec["hostname"])
        domain = spec.get("domainname") or linux.get("domainname")
        if domain:
            sc.setdomainname(domain)

    stage.name = "oom"
    if process.get("oomScoreAdj") is not None:
        with open("/proc/self/oom_score_adj", "w") as f:
            f.write(str(int(process["oomScoreAdj"])))

    stage.name = "rlimits"
    for rl in process.get("rlimits") or []:
        kind = getattr(resource, rl["type"], None)
        if not isinstance(kind, int) or not rl["type"].startswith("RLIMIT_"):
            raise OSError(EINVAL, f"unknown rlimit {rl['type']!r}")
        resource.setrlimit(kind, (int(rl["soft"]), int(rl["hard"])))

    # The mounts overlap with the parent's (slow) cgroup attach; a cgroupfs mount shows
    # the cgroup namespace and the cgroups we are in, so it waits and comes after.
    stage.name = "mount"
    own_root = spec.get("root") is not None or "mount" not in ns.join
    waited = False
    if own_root:
        waited = rootfs.setup(spec, lambda: _wait_for_cgroups(sync_r, ns))
    # else "exec mode": a spec without root that joins a mount namespace enters a running
    # container, whose namespace already has its root (setns(2) moves root and cwd there).

    if process.get("terminal") and console_socket is not None:
        stage.name = "terminal"
        from pydock.nsutil import console  # loaded by spawn() before the fork

        console.make_console(console_socket, uid=int((process.get("user") or {}).get("uid", 0)),
                             size=process.get("consoleSize"), mount_console=own_root)  # fmt: skip

    if not waited:
        stage.name = "cgroup"
        _wait_for_cgroups(sync_r, ns)

    stage.name = "capabilities"
    cap_spec = process.get("capabilities")
    if cap_spec is not None:
        caps.drop_bounding(caps.to_mask(cap_spec.get("bounding", ())))

    if process.get("noNewPrivileges"):
        stage.name = "no_new_privs"
        sc.prctl(sc.lib.PR_SET_NO_NEW_PRIVS, 1)

    # seccomp(2) without no_new_privs needs CAP_SYS_ADMIN: load the filter while init still
    # has it; with no_new_privs, as late as possible (just before exec), as runc does.
    filter_cfg = linux.get("seccomp")
    if filter_cfg and not process.get("noNewPrivileges"):
        stage.name = "seccomp"
        _load_seccomp(filter_cfg)

    stage.name = "user"
    user = process.get("user") or {}
    uid, gid = int(user.get("uid", 0)), int(user.get("gid", 0))
    os.setgroups([int(g) for g in user.get("additionalGids") or []])
    os.setgid(gid)
    if cap_spec is not None:
        caps.set_keepcaps(True)  # keep the permitted set across setuid (capabilities(7))
    os.setuid(uid)
    if cap_spec is not None:
        caps.set_keepcaps(False)
    if pdeathsig:
        # A credential change clears the parent-death signal (prctl(2)); set it again.
        sc.prctl(sc.lib.PR_SET_PDEATHSIG, pdeathsig)
    os.umask(int(user["umask"]) if user.get("umask") is not None else 0o022)

    if cap_spec is not None:
        stage.name = "capabilities"
        caps.apply_sets(cap_spec)

    stage.name = "cwd"
    os.chdir(process.get("cwd") or "/")

    if filter_cfg and process.get("noNewPrivileges"):
        stage.name = "seccomp"
        _load_seccomp(filter_cfg)

    stage.name = "exec"
    env_list = process.get("env") or []
    env = dict(e.split("=", 1) if "=" in e else (e, "") for e in env_list)
    if "HOME" not in env:
        env["HOME"] = _home_of(uid)
    args = [str(a) for a in process["args"]]
    _reset_signals()
    os.closerange(3, err_w)
    os.closerange(err_w + 1, _fd_limit())
    _exec(args, env)


def _home_of(uid: int) -> str:
    """HOME for a process whose spec sets none: the user's home in the container's
    /etc/passwd, else "/" (as runc does; Docker leaves HOME to the runtime)."""
    key = str(uid)
    try:
        with open("/etc/passwd", "rb") as f:
            for line in f:
                fields = line.rstrip(b"\n").split(b":")
                if len(fields) >= 6 and fields[2].decode(errors="replace") == key:
                    return fields[5].decode(errors="surrogateescape") or "/"
    except OSError:
        pass
    return "/"


def _load_seccomp(cfg: dict) -> None:
    from pydock.nsutil import seccomp

    seccomp.load(cfg)


def _fd_limit() -> int:
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return soft if soft != resource.RLIM_INFINITY else 1 << 20


def _reset_signals() -> None:
    """Undo what the interpreter changed: ignored signals (SIGPIPE, SIGXFSZ) stay ignored
    across execve, and so does the blocked mask (signal(7))."""
    for sig in signal.valid_signals():
        if sig in (signal.SIGKILL, signal.SIGSTOP):
            continue
        # Python knows every disposition it set or found at start (None: set from C, so
        # unknown); a default one needs no syscall.
        if signal.getsignal(sig) == signal.SIG_DFL:
            continue
        with contextlib.suppress(OSError, ValueError):
            signal.signal(sig, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_SETMASK, [])


def _exec(args: list[str], env: dict[str, str]) -> None:
    """execve args[0], searched in the container's PATH like execvp(3) does."""
    cmd = args[0]
    if "/" in cmd:
        candidates = [cmd]
    else:
        search = env.get("PATH", DEFAULT_PATH)
        candidates = [os.path.join(d or ".", cmd) for d in search.split(":")]
    saw_eacces: OSError | None = None
    last: OSError | None = None
    for path in candidates:
        try:
            os.execve(path, args, env)
        except OSError as e:
            if e.errno in (ENOENT, ENOTDIR):
                last = last or e
                continue
            if e.errno == EACCES:
                saw_eacces = saw_eacces or e
                continue
            raise OSError(e.errno, f"exec {cmd}: {e.strerror}", path) from None
    err = saw_eacces or last
    assert err is not None
    raise OSError(err.errno, f"exec {cmd}: {err.strerror}", cmd)
