"""Start workers: ``pydock run`` served by a process that has already started.

Most of a cold ``pydock run`` is spent before any container work: the interpreter, the
imports, the parser (~45 ms), then joining the container's v1 cgroups, which waits for an
RCU grace period (~9 ms). With ``"start-pool": N`` in ``<root>/daemon.json`` up to N
workers wait in ``<root>/starters``, each a forked pydock that has imported the run path
and prepared one container: an id, its cgroup and its PID 1 (nsutil.spawn.prefork, already
in the cgroup, blocked until it gets a spec). The ``pydock`` client (engine/client.py)
claims one and hands it its argv, cwd, environment, umask and stdio (SCM_RIGHTS); the worker
runs the ordinary CLI with them (engine/cli.py ``main``) and answers the exit code. What the
run could not use (another cgroup parent, other namespaces) is undone: the prepared init is
only a head start, never a different behaviour. Like Docker's daemon, the worker, not the
client, is the container's parent; signals sent to the client are forwarded to it.

Protocol, on a SOCK_SEQPACKET socket bound at ``<pid>-<start>.sock`` (``start`` is field
22 of /proc/<pid>/stat, so a recycled pid is never mistaken for the worker):
  * claim: the client renames the socket to ``<pid>-<start>.claimed``; rename(2) is atomic,
    so one client wins; a worker that wants to retire renames it to ``.retired`` first,
    and a failed rename means a client has it;
  * request: one message ``pydock-run/1 NUL origin NUL cwd NUL umask NUL n NUL argv... NUL
    m NUL env... NUL imports_ns`` with fds 0, 1, 2 attached (``origin``: the client's
    pydock.engine directory; a worker of another installation declines);
  * reply: ``exit <code>``, or ``fallback`` (the worker's code changed on disk, another
    installation, a request it cannot serve: the client runs the CLI itself).

Each worker serves one run and exits. As it starts, it forks its successor in waiting (a
pristine copy, no fork on the run's path); the successor goes on once its predecessor was
claimed and has exited, so the refill does not compete with the run, and only while the
code on disk is the code it runs. Idle workers retire after ``start-pool-idle``
seconds (default 1800). ``pydock system warm`` fills the pool now, ``--stop`` empties it.

The worker cleans up on SIGTERM and on its idle timeout; a worker killed with SIGKILL takes
its init along (PR_SET_PDEATHSIG) and leaves an empty cgroup and a dead socket, which the
next fill or ``--stop`` removes.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import io
import os
import resource
import select
import signal
import socket
import sys
import time

from ..cgroupfs import Cgroup, CgroupError, own_paths
from ..nsutil import memory, spawn
from . import prestart, trace
from .client import GLOBAL_VALUED, command_word
from .containers import proc_start_time
from .fsutil import FileLock

MAGIC = b"pydock-run/1"
#: where this pydock is installed: a client of another installation sharing the root is
#: sent back to its own code
_ORIGIN = os.fsencode(os.path.dirname(os.path.abspath(__file__)))
#: how long a successor waits for its predecessor's run to end before it prepares anyway
SUCCESSOR_WAIT = 5.0
#: how long a claimed worker waits for its client's connection (an idle one checks for
#: an abandoned claim this often)
CLAIM_WAIT = 5.0
_SOURCES = ("__init__.py", "engine/starter.py", "engine/cli.py")


class Retire(Exception):
    """SIGTERM or the idle timeout: clean up and exit."""


def pool_dir(root: str) -> str:
    return os.path.join(root, "starters")


# -- the pool as seen from outside ---------------------------------------------------------


def _entries(d: str) -> dict[str, list[str]]:
    """Worker key ``<pid>-<start>`` -> its files in ``d``."""
    out: dict[str, list[str]] = {}
    try:
        names = os.listdir(d)
    except FileNotFoundError:
        return out
    for name in names:
        key, dot, _ = name.partition(".")
        if dot and "-" in key:
            out.setdefault(key, []).append(name)
    return out


_alive = prestart.alive


def sweep(root: str) -> None:
    """Remove what dead workers of ``root`` left: sockets, prepared cgroups, and the
    teardowns they had journaled after an early answer."""
    _live_workers(pool_dir(root))


def _live_workers(d: str, exclude: str = "") -> int:
    """Count live idle or preparing workers; remove the files of dead ones."""
    n = 0
    for key, names in _entries(d).items():
        if key == exclude:
            continue
        if not _alive(key):
            if key + ".teardown" in names and not _finish_teardown(
                os.path.join(d, key + ".teardown")
            ):
                continue  # kept, with its cgroup record, for the next sweep
            if key + ".cgroup" in names and not _remove_orphan_cgroup(
                os.path.join(d, key + ".cgroup")
            ):
                continue  # still busy: kept for the next sweep, which tries again
            for name in names:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(os.path.join(d, name))
        elif any(n_.endswith((".sock", ".pending", ".claimed")) for n_ in names):
            n += 1
    return n


def fill(root: str, want: int | None = None) -> int:
    """Fork workers until ``want`` (daemon.json's start-pool) are idle or preparing.

    Returns how many were forked. Called after a ``run`` that found no worker, and by
    ``system warm``. Concurrent fills serialize on a lock and count each other's workers.
    """
    if want is None:
        want, _ = prestart.pool_settings(root)
    if want <= 0:
        return 0
    root = os.path.abspath(root)  # a worker works from "/"
    d = pool_dir(root)
    os.makedirs(d, mode=0o700, exist_ok=True)
    lock = FileLock(os.path.join(d, "fill.lock"))
    if not lock.try_acquire():
        return 0  # another fill is counting
    try:
        missing = want - _live_workers(d)
        for _ in range(max(missing, 0)):
            _fork_worker(root, None, lock.release)  # a worker must not hold the fill lock
        return max(missing, 0)
    finally:
        lock.release()


def stop(root: str, timeout: float = 5.0) -> int:
    """Retire every worker of ``root`` (SIGTERM, then SIGKILL after ``timeout``) and
    remove what dead ones left; returns how many were running."""
    d = pool_dir(root)
    # Idle and preparing workers; a claimed one finishes its run (its successor then
    # follows daemon.json's start-pool).
    keys = [
        k
        for k, names in _entries(d).items()
        if _alive(k) and any(n.endswith((".sock", ".pending")) for n in names)
    ]
    for key in list(keys):
        # An idle worker's socket is taken first, as a client would take it: one that a
        # client claims meanwhile serves its run (a SIGTERM now would end it).
        try:
            os.rename(os.path.join(d, key + ".sock"), os.path.join(d, key + ".retired"))
        except FileNotFoundError:
            if not os.path.exists(os.path.join(d, key + ".pending")):
                keys.remove(key)
                continue
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(key.partition("-")[0]), signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while any(_alive(k) for k in keys) and time.monotonic() < deadline:
        time.sleep(0.01)
    for key in keys:
        if _alive(key):
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(key.partition("-")[0]), signal.SIGKILL)
    while any(_alive(k) for k in keys) and time.monotonic() < deadline + timeout:
        time.sleep(0.01)
    # A serving worker's run --rm may still be torn down after its early answer: the
    # store is quiet only once that ends (a caller may remove it next).
    prestart.settle_teardowns(root)
    _live_workers(d)  # sweeps what the dead left
    return len(keys)


def _remove_orphan_cgroup(record: str) -> bool:
    """Remove the cgroup a worker that died without cleaning up (SIGKILL) had prepared;
    False if it is still there. Its init dies with the worker (pdeathsig) but may still
    be exiting when the sweep comes, and whatever else is in it is killed, as after any
    run: a record dropped on EBUSY would leave the cgroup for good."""
    from .cgroupref import drain

    try:
        with open(record) as f:
            cg_path, own = f.read().split("\n", 1)
    except FileNotFoundError:
        return True
    except (OSError, ValueError):
        return True  # unreadable (a worker killed while writing it): nothing to go by
    try:
        drain(Cgroup(cg_path, own=_parse_own(own)))
    except (OSError, CgroupError):
        return False
    return True


def _parse_own(text: str) -> dict[str, str]:
    return dict(line.split("\t", 1) for line in text.splitlines() if "\t" in line)


# -- the worker --------------------------------------------------------------------------


def _fork_worker(root: str, predecessor: int | None, forget=None) -> None:
    """Fork a detached worker (it is reparented to init when its creator exits).

    ``forget()`` runs first in the child: it closes what the creator's objects hold, so
    that the creator's sockets and pipes see EOF when the creator closes them.
    """
    pid = os.fork()
    if pid:
        return
    code = 0
    try:
        if forget is not None:
            forget()
        _worker(root, predecessor)
    except Retire:
        pass
    except BaseException as e:  # noqa: BLE001 - a worker has no terminal: it leaves a note
        code = 1
        _note_error(root, e)
    finally:
        os._exit(code)


def _note_error(root: str, e: BaseException) -> None:
    """Keep the last worker failure in ``<root>/starters/last-error`` (one line plus the
    traceback), for ``system warm`` to show and for whoever wonders why runs are cold."""
    import traceback

    path = os.path.join(pool_dir(root), "last-error")
    with contextlib.suppress(OSError), open(path, "w") as f:
        f.write(f"{type(e).__name__}: {e}\n")
        traceback.print_exception(e, file=f)


def _detach() -> None:
    """Leave the creator's session and stdio: a bench or shell waiting for the creator's
    output must not wait for the worker too."""
    os.setsid()
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    os.close(null)
    os.chdir("/")
    # Descriptors inherited across the creator's exec (a job server's, a caller's extra
    # pipe): whoever waits for their EOF must not wait for the worker. pydock's own are
    # close-on-exec (PEP 446) and stay.
    for name in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            if int(name) > 2 and os.get_inheritable(int(name)):
                os.close(int(name))
    atexit._clear()  # the creator's handlers (trace, pool reaps) are not ours
    trace.begin(None)
    prestart.current = None
    for sig in _CLIENT_SIGNALS:
        signal.signal(sig, _on_signal)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)


#: what a client forwards (client._FORWARDED, runtime.FORWARDED_SIGNALS)
_CLIENT_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1,
                   signal.SIGUSR2, signal.SIGWINCH)  # fmt: skip
#: a client connected: a signal from now on is one it forwarded, for its run
_serving = False
_pending: list[int] = []


def _on_signal(sig: int, _frame) -> None:
    if _serving:
        _pending.append(sig)  # _serve() passes it on to the run
    elif sig == signal.SIGTERM:
        raise Retire()


def _sources_stamp() -> tuple[int, ...]:
    """mtimes of a few of pydock's own files: an upgrade or an edit changes them, and a
    worker running the old code must not serve."""
    base = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = []
    for rel in _SOURCES:
        try:
            out.append(os.stat(os.path.join(base, rel)).st_mtime_ns)
        except OSError:
            out.append(0)
    return tuple(out)


#: the stamp of the code this process (and every worker forked from it) runs
_LOADED = _sources_stamp()


def _warm_imports(root: str) -> None:
    """Import what a run needs, so the served run imports nothing. Done once per line of
    workers: a successor is forked after it and inherits it."""
    global _parser
    if _parser is not None:
        return
    from ..nsutil import console, rootfs, seccomp  # noqa: F401 - the held init uses them
    from ..overlay import driver  # noqa: F401
    from . import cli, cmd_containers, monitor, runtime, shim, spec  # noqa: F401

    _parser = cli.build_parser("run")
    # The root's default storage driver, opened (probe cache read, temp dirs swept) now.
    from .engine import preopen_driver

    preopen_driver(root)
    # A dry parse: argparse and gettext compile their regular expressions on first use,
    # and run's option modules load lazily; both would otherwise be paid by the run.
    a = _parser.parse_args(["run", "--rm", "--network", "none", "-e", "A=B", "busybox", "true"])
    opts = cmd_containers._run_options(a)
    # The default seccomp filter, compiled (or read from its cache) once for every run
    # this worker line serves: spec.py and nsutil.seccomp memoize it.
    from ..nsutil.seccomp import program
    from .seccomp import default_oci
    from .security import capabilities

    program(default_oci(capabilities(spec.DEFAULT_CAPS, opts.cap_add, opts.cap_drop, False)))
    from .network import config, manager, pool  # noqa: F401


#: in the pool directory: the root's served runs set up bridges without a namespace pool
_NEEDS_PYROUTE2 = "needs-pyroute2"


def _warm_pyroute2(root: str) -> None:
    """Import pyroute2 (~200 ms, ~25 MB) if this root's runs need it: a bridge network
    without a namespace pool (engine/network/pool.py) sets up its veth with it.

    Only once a served run did (:func:`_serve` leaves the hint), not ahead: every process
    of the line carries what the worker imported, and the held init copies it all while
    idle and frees it at execve, ~1 ms of a ``--network none`` run's start for 25 MB.
    Each worker checks before it forks its successor, so a line imports it once.
    """
    if "pyroute2.iproute.linux" in sys.modules:
        return
    if not os.path.exists(os.path.join(pool_dir(root), _NEEDS_PYROUTE2)):
        return
    from .errors import EngineError
    from .network import config

    try:
        if config.load(root).pool_size > 0:
            return
    except EngineError:
        return  # a bad daemon.json: the run will say what is wrong
    import pyroute2.iproute.linux  # noqa: F401
    import pyroute2.netlink.exceptions  # noqa: F401


#: the ``run`` parser, built before the client's command line arrives
_parser = None


def _await_turn(predecessor: int) -> bool:
    """As a successor in waiting: True once the predecessor was claimed (it writes "s")
    and its run is over (EOF when it exits); False if it retired without serving."""
    try:
        if os.read(predecessor, 1) != b"s":
            return False
        select.select([predecessor], [], [], SUCCESSOR_WAIT)
        return True
    finally:
        os.close(predecessor)


def _worker(root: str, predecessor: int | None) -> None:
    """One worker's life: (wait for its turn,) fork its own successor in waiting, prepare,
    publish its socket, wait for a client or retirement, serve one run, exit."""
    _detach()
    d = pool_dir(root)
    me = f"{os.getpid()}-{proc_start_time(os.getpid())}"
    if predecessor is not None:
        if not _await_turn(predecessor):
            return
        if prestart.pool_size(root) <= _live_workers(d, exclude=me):
            return  # the pool was shrunk, or filled meanwhile
        if _sources_stamp() != _LOADED:
            return  # upgraded: the next fill starts workers of the new code
    base = os.path.join(d, me)
    prep: prestart.Prepared | None = None
    try:
        _touch(base + ".pending")
        _warm_imports(root)
        _warm_pyroute2(root)
    except BaseException:
        _cleanup(base, None)
        raise
    # The successor is forked now, warm but pristine (no client's state, no prepared
    # container), and off any run's path; it waits on the pipe.
    r, w = os.pipe2(os.O_CLOEXEC)
    try:
        _fork_worker(root, r, lambda: os.close(w))
    finally:
        os.close(r)
    try:
        # A SIGTERM (stop) waits until the preparation is complete and undoable as a
        # whole: raised halfway, it could leave a cgroup no record names.
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
        try:
            prep = _prepare(base)
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})
        # Our pages are shared copy-on-write with the processes we were forked from and
        # forked: copy them now, while no client waits, not one fault at a time during
        # the run (~4 ms of CPU, see nsutil/memory.py).
        memory.own_private_memory()
        lsock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        lsock.bind(base + ".tmp")
        lsock.listen(1)
        os.rename(base + ".tmp", base + ".sock")
        os.unlink(base + ".pending")
        conn = _wait_for_client(lsock, base, prestart.pool_settings(root)[1])
    except Retire:
        _cleanup(base, prep)
        return
    except BaseException:
        _cleanup(base, prep)
        raise
    os.write(w, b"s")  # the successor takes over once this process exits (w closes)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(base + ".claimed")
    lsock.close()
    try:
        _serve(conn, prep, base)
    finally:
        conn.close()
        _cleanup(base, prep)


def _touch(path: str) -> None:
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600))


def _prepare(base: str) -> prestart.Prepared:
    """The container id, its cgroup (recorded for cleanup after a crash) and its init."""
    cid = os.urandom(32).hex()
    cg = Cgroup(f"pydock-{cid}")
    own = own_paths()
    with open(base + ".cgroup", "w") as f:
        f.write(cg.path + "\n" + "".join(f"{k}\t{v}\n" for k, v in own.items()))
    cg.create()
    prep = prestart.Prepared(cid, cg, None)
    try:
        prep.held = spawn.prefork()
        cg.attach(prep.held.pid)
    except BaseException:
        prep.discard()
        raise
    return prep


def _wait_for_client(lsock: socket.socket, base: str, idle: float) -> socket.socket:
    """The claiming client's connection; Retire at the idle timeout, when the socket was
    taken away (``--stop``, a removed pool directory), or when a claim is not followed by
    a connection within CLAIM_WAIT (its client died in between: without this the worker
    would wait, and count as the pool's, for good)."""
    global _serving, _my_world
    _my_world = _world("self")  # while idle: what a client must share (_same_world)
    deadline = time.monotonic() + idle
    claimed_since = None
    while True:
        now = time.monotonic()
        if now >= deadline and claimed_since is None:
            try:
                os.rename(base + ".sock", base + ".retired")
            except FileNotFoundError:
                pass  # claimed just now: its client is connecting
            else:
                raise Retire()
        wait = min(deadline - now, CLAIM_WAIT) if now < deadline else CLAIM_WAIT
        ready, _, _ = select.select([lsock], [], [], wait)
        if ready:
            conn, _ = lsock.accept()
            _serving = True
            return conn
        if os.path.exists(base + ".sock"):
            continue
        if not os.path.exists(base + ".claimed"):
            raise Retire()
        if claimed_since is None:
            claimed_since = time.monotonic()
        elif time.monotonic() - claimed_since >= CLAIM_WAIT:
            raise Retire()


def _cleanup(base: str, prep: prestart.Prepared | None) -> None:
    if prep is not None:
        with contextlib.suppress(OSError, CgroupError):
            prep.discard()
    for ext in (".sock", ".claimed", ".retired", ".tmp", ".pending", ".cgroup"):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(base + ext)


#: what the client's paths, pids and network mean: a client in a chroot or in another
#: namespace (a container sharing the store) names other things by the same names
_WORLD = ("root", "ns/mnt", "ns/pid", "ns/net", "ns/ipc", "ns/uts", "ns/user", "ns/cgroup")


#: what confines a process (capabilities(7), no_new_privs, seccomp): a client with less
#: must not get a worker's full root by handing its command line over
_CONFINEMENT = (b"CapInh", b"CapPrm", b"CapEff", b"CapBnd", b"CapAmb", b"NoNewPrivs", b"Seccomp")


def _same_world(pid: int) -> bool:
    global _my_world
    try:
        if _my_world is None:  # read ahead by _wait_for_client
            _my_world = _world("self")
        return _world(str(pid)) == _my_world
    except OSError:
        return False


def _world(pid: str) -> list:
    out: list = [(st.st_dev, st.st_ino) for st in (os.stat(f"/proc/{pid}/{r}") for r in _WORLD)]
    return out + _confinement(pid)


_my_world: list | None = None


def _confinement(pid: str) -> list[bytes]:
    with open(f"/proc/{pid}/status", "rb") as f:
        return [line for line in f.read().splitlines() if line.split(b":")[0] in _CONFINEMENT]


def _adopt(pid: int, prep: prestart.Prepared) -> None:
    """Take the client's resource limits, nice value, CPU affinity and oom_score_adj: the
    container inherits them, as it inherits an in-process run's. A held init forked with
    other ones is discarded (the run forks a fresh one from this process)."""
    changed = False
    for res in _RLIMITS:
        theirs = resource.prlimit(pid, res)
        if theirs != resource.getrlimit(res):
            resource.setrlimit(res, theirs)
            changed = True
    nice = os.getpriority(os.PRIO_PROCESS, pid)
    if nice != os.getpriority(os.PRIO_PROCESS, 0):
        os.setpriority(os.PRIO_PROCESS, 0, nice)
        changed = True
    cpus = os.sched_getaffinity(pid)
    if cpus != os.sched_getaffinity(0):
        os.sched_setaffinity(0, cpus)
        changed = True
    with open(f"/proc/{pid}/oom_score_adj", "rb") as f:
        oom = f.read()
    with open("/proc/self/oom_score_adj", "r+b") as f:
        if f.read() != oom:
            f.seek(0)
            f.write(oom)
            changed = True
    if changed and prep.held is not None:
        prep.held.discard()
        prep.held = None


_RLIMITS = [getattr(resource, n) for n in dir(resource) if n.startswith("RLIMIT_")]


def _die_with_client(conn: socket.socket) -> None:
    """End this worker when its client dies, as the client's death ends an in-process run.

    A client killed mid-run (SIGKILL) closes its end of ``conn``; with O_ASYNC that sends
    us SIGIO (fcntl(2) F_SETOWN), whose default action terminates: the container's init
    follows (its parent-death signal), a ``-t`` relay stops reading the client's terminal,
    and the next command reconciles the record as after a killed ``pydock``. Disarmed
    before the answer, after which the client exits normally.
    """
    fcntl.fcntl(conn.fileno(), fcntl.F_SETOWN, os.getpid())
    _set_async(conn, True)
    if select.select([conn], [], [], 0)[0]:  # it died before we armed: EOF is readable
        raise Retire()


def _set_async(conn: socket.socket, on: bool) -> None:
    flags = fcntl.fcntl(conn.fileno(), fcntl.F_GETFL)
    fcntl.fcntl(conn.fileno(), fcntl.F_SETFL, flags | os.O_ASYNC if on else flags & ~os.O_ASYNC)


def _serve(conn: socket.socket, prep: prestart.Prepared, base: str) -> None:
    """Run the client's ``pydock`` command line as if we were its process.

    The request is read before any answer: closing a unix socket with unread data resets
    the connection, and the client would lose a ``fallback``.

    A foreground ``run --rm`` is answered once its container has exited and its record,
    name, network and anonymous volumes are gone (``answer_early``); unmounting and
    removing its layer and its cgroup follow, off the client's path.
    """
    got = time.perf_counter_ns()
    msg, fds, _, _ = socket.recv_fds(conn, 1 << 20, 3)
    try:
        uid = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12)
        peer_pid = int.from_bytes(uid[:4], sys.byteorder)
        peer_uid = int.from_bytes(uid[4:8], sys.byteorder)
        fields = msg.split(b"\0")
        if (
            len(fds) != 3
            or fields[0] != MAGIC
            or fields[1] != _ORIGIN
            or peer_uid not in (0, os.getuid())
            or not _same_world(peer_pid)
            or _sources_stamp() != _LOADED  # our code changed on disk (an upgrade)
        ):
            conn.send(b"fallback")
            return
        cwd, umask = fields[2], int(fields[3])
        n = int(fields[4])
        argv = [os.fsdecode(a) for a in fields[5 : 5 + n]]
        m = int(fields[5 + n])
        env = fields[6 + n : 6 + n + m]
        imports_ns = int(fields[6 + n + m])
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
    finally:
        for fd in fds:
            os.close(fd)
    _die_with_client(conn)
    _adopt(peer_pid, prep)
    os.chdir(cwd)
    os.umask(umask)
    # The client's environment, by difference: usually few variables differ, and each
    # change is a putenv/unsetenv.
    wanted = dict(item.partition(b"=")[::2] for item in env)
    for k in [k for k in os.environb if k not in wanted]:
        del os.environb[k]
    for k, v in wanted.items():
        if os.environb.get(k) != v:
            os.environb[k] = v
    argv = _absolute_root(argv)
    sys.stdin = open(0, closefd=False, errors="surrogateescape")  # noqa: SIM115
    # As CPython sets them up: stdout line-buffered on a terminal, stderr always.
    sys.stdout = open(1, "w", buffering=1 if os.isatty(1) else -1, closefd=False)  # noqa: SIM115
    sys.stderr = open(2, "w", buffering=1, closefd=False, errors="backslashreplace")  # noqa: SIM115
    trace.begin(os.environ.get("PYDOCK_TRACE"), [("imports", imports_ns), ("handoff", got)])
    prestart.current = prep
    # The client forwards its signals to us from the moment it handed over; the container
    # must get them even if they arrive before runtime.wait() proxies them (it unblocks).
    signal.pthread_sigmask(signal.SIG_BLOCK, _CLIENT_SIGNALS)
    for sig in _CLIENT_SIGNALS:  # as in a pydock process
        signal.signal(sig, signal.default_int_handler if sig == signal.SIGINT else signal.SIG_DFL)
    for sig in _pending:  # forwarded while we were still taking the request
        signal.raise_signal(sig)
    from ..drivers import state
    from .cli import main

    state.defer_removals()  # a removed layer's files go after the answer

    answered: list[int] = []

    def answer_early(engine, rec: dict, code: int, cgroup: Cgroup) -> None:
        try:
            _journal(base, engine, rec, cgroup)  # first: a worker that dies from here on leaves it
        except (OSError, ValueError):
            with contextlib.suppress(OSError):
                os.unlink(base + ".teardown")
            return  # no journal, no early answer: the run ends as an in-process one
        # What a user can see goes before the answer, as Docker's client waits for the
        # removal: the network's leases and published ports (a next -p of the same port,
        # a network rm), the record and name, --rm's anonymous volumes (finish() does
        # each of them again, as no-ops). Unmount, layer and cgroup follow the answer.
        try:
            engine.release_network(rec)
        except BaseException:
            os.unlink(base + ".teardown")  # the record stays: the run fails as before
            raise
        engine.containers.remove(rec)
        if rec.get("Mounts"):
            from .volumes import remove_anonymous

            remove_anonymous(engine.root, rec, engine.containers.all)
        trace.mark("answered")
        _answer(conn, code)
        answered.append(code)
        sys.stderr = io.StringIO()  # what the teardown reports goes to last-error

    prestart.answer_early = answer_early
    _pyroute2_before = "pyroute2.iproute.linux" in sys.modules
    try:
        code = main(argv, _parser if command_word(argv) == "run" else None)
    except SystemExit as e:  # argparse's --help and friends
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except KeyboardInterrupt:
        code = 130
    prestart.answer_early = None
    if "pyroute2.iproute.linux" in sys.modules and not _pyroute2_before:
        with contextlib.suppress(OSError):  # the next workers of the line import it ahead
            _touch(os.path.join(os.path.dirname(base), _NEEDS_PYROUTE2))
    if not answered:
        _answer(conn, code)
    elif prestart.torn_down:
        os.unlink(base + ".teardown")
    else:  # the journal stays: the next sweep (_live_workers) tries again
        _note_error(_root_of(base), RuntimeError(
            f"removing container {prestart.current.cid if prestart.current else '?'} after "
            f"its run: {sys.stderr.getvalue().strip() or f'exit {code}'}"))  # fmt: skip
    state.run_deferred()
    atexit._run_exitfuncs()


def _absolute_root(argv: list[str]) -> list[str]:
    """``argv`` with its global ``--root`` (and $PYDOCK_ROOT) joined to the client's
    working directory, now ours. The in-process CLI takes a relative root from there, and
    so does this worker, but not the held init, forked from "/": a path derived from the
    root (the network namespace it joins) would reach it relative. Joined, not
    normalized: ``..`` after a symlink means what it meant to the client."""
    cwd = os.getcwd()
    env = os.environ.get("PYDOCK_ROOT")
    if env is not None and not env.startswith("/"):
        os.environ["PYDOCK_ROOT"] = os.path.join(cwd, env)
    out = list(argv)
    i = 0
    while i < len(out):  # as client.root_of reads them: global options, then the command
        arg = out[i]
        if arg == "--root" and i + 1 < len(out):
            out[i + 1] = os.path.join(cwd, out[i + 1])
            i += 1
        elif arg.startswith("--root="):
            out[i] = "--root=" + os.path.join(cwd, arg[7:])
        elif arg in GLOBAL_VALUED:
            i += 1
        elif not arg.startswith("-"):
            break
        i += 1
    return out


def _answer(conn: socket.socket, code: int) -> None:
    """Give the client its exit code (it exits on it)."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    trace.flush()
    # Let go of the client's stdio first: whoever reads its output waits for EOF, which
    # comes only when every copy of the write end is closed, ours included.
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    os.close(null)
    _set_async(conn, False)
    with contextlib.suppress(OSError):
        conn.send(b"exit %d" % code)


def _journal(base: str, engine, rec: dict, cgroup: Cgroup) -> None:
    """``<base>.teardown``: the container whose teardown follows the answer, for
    :func:`_finish_teardown` should this worker die before it is done. Not fsynced: a
    machine crash ends the mount and the cgroup anyway, and leaves at most an unused
    ephemeral layer (the same as a crash in an ordinary ``--rm`` run's teardown).

    It names the container's cgroup as this process names it (its path relative to our
    own cgroups): one under a ``--cgroup-parent`` is in no ``.cgroup`` record, and the
    record is gone with the container's, so nothing else would remove it."""
    import json

    doc = {"root": str(engine.root), "rec": rec, "cgroup": cgroup.path, "own": own_paths()}
    with open(base + ".teardown", "w") as f:
        json.dump(doc, f)


def _finish_teardown(journal: str) -> bool:
    """Finish the teardown a dead worker journaled; False to keep the journal for the
    next sweep (the store is busy or broken: the reason goes to last-error)."""
    import json

    from .engine import Engine

    try:
        with open(journal) as f:
            doc = json.load(f)
        rec = doc["rec"]
        engine = Engine(doc["root"])
        if doc.get("cgroup"):  # first, as after any run: what is left in it is killed
            from .cgroupref import drain

            drain(Cgroup(doc["cgroup"], own=doc.get("own")))
        # unmount, remove its layer, network and record (--rm); each step a no-op when
        # done already (the layer may be gone: a sweep, or a teardown killed after it)
        engine.finish(rec, 0)
    except FileNotFoundError:
        return True
    except Exception as e:  # noqa: BLE001 - a sweep reports, it does not fail its command
        _note_error(_root_of(journal), e)
        return False
    return True


def _root_of(base: str) -> str:
    """The store root of a worker file ``<root>/starters/<key>[.ext]``."""
    return os.path.dirname(os.path.dirname(base))
