"""The ``pydock`` console script: hand a ``run`` to a start worker, else run the CLI here.

A start worker (engine/starter.py) has already paid for the interpreter's imports, the
parser and the container's cgroup; this module is what runs before that is known, so it
imports only builtin C modules (``posix``, ``_socket``, ``_signal``, ``time``), no pydock
package besides this one and nothing that would import ``re`` or ``enum``. Not even
``os``: under pydock's launcher (engine/launcher.py, ``python -IS``) nothing has imported
it yet, and it costs ~1.4 ms (it pulls in ``_collections_abc``, ``posixpath``, ``stat``).
Without a worker, or when the worker answers ``fallback``, the ordinary CLI
(engine/cli.py) runs in this process; after a ``run`` it refills the pool if daemon.json
asks for one.
"""

import posix
import sys
import time

_IMPORTED_NS = time.perf_counter_ns()  # the trace's "imports" mark of a served run

DEFAULT_ROOT = "/var/lib/pydock"

#: global options that take a value (so the command word is found after them)
GLOBAL_VALUED = {"--root", "-s", "--storage-driver", "--storage-opt", "-l", "--log-level"}

#: signals passed on to the worker, which passes them to the container (--sig-proxy)
_FORWARDED = ("SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2", "SIGWINCH")

_FS = (sys.getfilesystemencoding(), sys.getfilesystemencodeerrors())


def _fsencode(name: str) -> bytes:
    """os.fsencode without os."""
    return name.encode(*_FS)


def _getenv(name: str) -> str | None:
    """os.environ.get without os (posix.environ has bytes keys and values)."""
    value = posix.environ.get(name.encode())
    return None if value is None else value.decode(*_FS)


def command_word(argv: list[str]) -> str | None:
    """The subcommand in ``argv``, skipping global options; None if there is none."""
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg in GLOBAL_VALUED:
            skip = True
        elif not arg.startswith("-"):
            return arg
    return None


def root_of(argv: list[str]) -> str:
    """The ``--root`` the CLI will use (the last one given, as argparse takes it)."""
    root = _getenv("PYDOCK_ROOT")
    if root is None:
        root = DEFAULT_ROOT
    it = iter(argv)
    for arg in it:
        if arg == "--root":
            root = next(it, root)
        elif arg.startswith("--root="):
            root = arg[7:]
        elif arg in GLOBAL_VALUED:
            next(it, None)
        elif not arg.startswith("-"):
            break
    return root


def _claim(root: str):
    """Connect to an idle worker of ``root``: (socket, worker pid), or None."""
    d = (root if not root or root.endswith("/") else root + "/") + "starters"  # os.path.join
    try:
        names = posix.listdir(d)
    except OSError:
        return None
    for name in names:
        if not name.endswith(".sock"):
            continue
        key = name[:-5]
        claimed = f"{d}/{key}.claimed"
        import _socket

        s = _socket.socket(_socket.AF_UNIX, _socket.SOCK_SEQPACKET)
        if s.fileno() <= 2:  # our stdio was closed: the socket would be handed over as it
            s.close()
            return None
        try:
            posix.rename(f"{d}/{name}", claimed)  # atomic: one client wins
        except OSError:
            s.close()
            continue
        try:
            s.connect(claimed)
        except OSError:  # a worker that died: its socket is dead
            s.close()
            try:
                posix.unlink(claimed)
            except OSError:
                pass
            continue
        # Who listens (SO_PEERCRED: pid, uid, gid as the kernel sees them from here):
        # root or ourselves only, and its pid in our pid namespace is where signals go
        # (0: not visible from here; the file's name is no proof of either).
        cred = s.getsockopt(_socket.SOL_SOCKET, _socket.SO_PEERCRED, 12)
        pid = int.from_bytes(cred[:4], sys.byteorder)
        if pid <= 0 or int.from_bytes(cred[4:8], sys.byteorder) not in (0, posix.getuid()):
            s.close()
            return None
        return s, pid
    return None


def _request(argv: list[str]) -> bytes:
    umask = posix.umask(0)
    posix.umask(umask)
    env = [k + b"=" + v for k, v in posix.environ.items()]
    cwd = posix.getcwdb()
    # where this module lives, as os.path.dirname(os.path.abspath(__file__)) gives it
    here = _fsencode(__file__)
    origin = (here if here.startswith(b"/") else cwd + b"/" + here).rpartition(b"/")[0]
    fields = [b"pydock-run/1", origin, cwd, b"%d" % umask, b"%d" % len(argv)]
    fields += [_fsencode(a) for a in argv]
    fields += [b"%d" % len(env), *env, b"%d" % _IMPORTED_NS]
    return b"\0".join(fields)


def served(argv: list[str], root: str) -> int | None:
    """Have a start worker run ``argv``; its exit code, or None when no worker did."""
    claim = _claim(root)
    if claim is None:
        return None
    import _signal
    import _socket

    sock, worker = claim
    try:
        fds = b"".join(fd.to_bytes(4, sys.byteorder) for fd in (0, 1, 2))
        sock.sendmsg([_request(argv)], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, fds)])
    except OSError:  # a closed stdio fd, a deleted cwd: the CLI here reports it properly
        sock.close()  # the worker sees an empty request and exits
        return None

    def forward(sig: int, _frame: object) -> None:
        try:
            posix.kill(worker, sig)
        except ProcessLookupError:
            pass

    for name in _FORWARDED:
        _signal.signal(getattr(_signal, name), forward)
    reply = b""
    try:
        reply = sock.recv(64)
    except OSError:
        pass
    if reply.startswith(b"exit "):
        return int(reply[5:])
    if reply == b"fallback":
        for name in _FORWARDED:
            _signal.signal(getattr(_signal, name), _signal.SIG_DFL)
        _signal.signal(_signal.SIGINT, _signal.default_int_handler)
        return None
    posix.write(2, b"pydock: the start worker exited before the command finished\n")
    return 125


def entry() -> None:
    """``pydock``: served by a start worker when one waits, else the CLI in-process."""
    argv = sys.argv[1:]
    run = command_word(argv) == "run" and not _getenv("PYDOCK_NO_START_POOL")
    if run:
        code = served(argv, root_of(argv))
        if code is not None:
            posix._exit(code)
    if sys.flags.no_site:
        # Under the launcher (python -IS): the in-process CLI gets what site gives pip's
        # script, .pth files included (a storage-driver plugin installed editable). ~1 ms,
        # paid only here, not by a served run.
        import site

        site.main()
    from . import cli

    code = cli.finish(cli.main)
    if run and posix.geteuid() == 0:  # only root may fill root's pool (cli.main said so)
        from . import prestart

        root = root_of(argv)
        if prestart.pool_size(root) > 0:
            from . import starter

            starter.fill(root)
    posix._exit(code)
