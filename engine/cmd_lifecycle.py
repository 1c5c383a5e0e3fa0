"""Lifecycle commands: stop, kill, restart, wait, attach, exec, system boot|warm|df|prune."""

from __future__ import annotations

import argparse
import os

from .cliutil import add_command, each_container, eprint, outcomes
from .engine import Engine
from .errors import EngineError

#: moby/term's EscapeError text, which docker attach and docker exec print on a detach
DETACH_MESSAGE = "read escape sequence"


def cmd_stop(engine: Engine, a: argparse.Namespace) -> int:
    from . import lifecycle

    sig = lifecycle.parse_signal(a.signal) if a.signal else None  # a bad one: before any stop
    engine.reconcile()
    return each_container(
        a.containers, lambda r: lifecycle.stop(engine, r, a.time, sig), parallel=True
    )


def cmd_kill(engine: Engine, a: argparse.Namespace) -> int:
    from . import lifecycle

    sig = lifecycle.parse_signal(a.signal)
    engine.reconcile()
    return each_container(a.containers, lambda r: lifecycle.kill(engine, r, sig), parallel=True)


def cmd_restart(engine: Engine, a: argparse.Namespace) -> int:
    from . import lifecycle

    engine.reconcile()

    # The stops all at once, then the starts one by one in order (each forks a monitor,
    # see cliutil.outcomes); each container is reported once, after its start.
    def stop(ref: str) -> None:
        lifecycle.stop(engine, ref, a.time)

    stops = iter(list(outcomes(a.containers, stop, parallel=True)))  # no thread left at a fork

    def restart(ref: str) -> None:
        err = next(stops)
        if err is not None:
            raise err
        rec = engine.containers.load(engine.containers.resolve(ref))
        lifecycle.start(engine, rec)
        from . import events

        events.container(engine.root, engine.containers.load(rec["Id"]), "restart")

    return each_container(a.containers, restart)


def cmd_wait(engine: Engine, a: argparse.Namespace) -> int:
    from . import lifecycle

    failed = False
    for ref in a.containers:
        try:
            print(lifecycle.wait(engine, ref), flush=True)
        except EngineError as e:
            eprint(f"Error response from daemon: {e}")
            failed = True
    return 1 if failed else 0


def cmd_attach(engine: Engine, a: argparse.Namespace) -> int:
    import os

    from . import lifecycle, shim
    from .attach import DETACHED, connect, parse_detach_keys, relay
    from .errors import Conflict

    parse_detach_keys(a.detach_keys)  # a bad spec fails before we attach, as the daemon's
    rec = engine.containers.load(engine.containers.resolve(a.container))
    st = rec["State"]
    # docker/cli's inspectContainerAndCheckState, in its order
    if not lifecycle.monitored(rec):
        raise Conflict("You cannot attach to a stopped container, start it first")
    if st.get("Paused"):
        raise Conflict("You cannot attach to a paused container, unpause it first")
    if st["Status"] != "running":
        raise Conflict("You cannot attach to a restarting container, wait until it is running")
    path = os.path.join(engine.containers.path(rec["Id"]), shim.ATTACH_SOCK)
    try:
        sock = connect(path)
    except OSError as e:
        raise EngineError(f"cannot attach to {a.container}: {e.strerror or e}") from None
    tty = bool(rec["Config"].get("Tty"))
    stdin = not a.no_stdin and bool(rec["Config"].get("OpenStdin"))
    code = relay(sock, stdin=stdin, tty=tty, detach_keys=a.detach_keys)
    if code == DETACHED:
        # Docker's attach returns the escape as its error (run -it and start -ai do not)
        eprint(DETACH_MESSAGE)
        return 1
    lifecycle.wait_recorded(engine, rec)
    return code


def cmd_exec(engine: Engine, a: argparse.Namespace) -> int:
    from .attach import DETACHED
    from .container_exec import run_exec
    from .errors import InvalidInput

    if not a.command:
        raise InvalidInput("exec requires at least 2 arguments")
    code = run_exec(
        engine, a.container, a.command, interactive=a.interactive, tty=a.tty, detach=a.detach,
        env=a.env, user=a.user, workdir=a.workdir, detach_keys=a.detach_keys,
    )  # fmt: skip
    if code == DETACHED:
        eprint(DETACH_MESSAGE)  # docker exec, like attach, ends with the escape as its error
        return 1
    return code


def cmd_system(engine: Engine, a: argparse.Namespace) -> int:
    handler = getattr(a, "system_handler", None)
    if handler is None:
        eprint("Usage: pydock system COMMAND (boot, df, prune, warm)")
        return 1
    return handler(engine, a)


def cmd_system_prune(engine: Engine, a: argparse.Namespace) -> int:
    from . import sysprune

    return sysprune.run(engine, a)


def cmd_system_df(engine: Engine, a: argparse.Namespace) -> int:
    from . import diskusage

    return diskusage.run(engine, a)


def cmd_system_boot(engine: Engine, a: argparse.Namespace) -> int:
    """Run once at host boot (a systemd oneshot unit): apply the restart policies."""
    from . import lifecycle

    for name in lifecycle.boot(engine):
        print(name)
    return 0


def cmd_system_warm(engine: Engine, a: argparse.Namespace) -> int:
    """Fill the start pool now (daemon.json "start-pool", or -n), or empty it (--stop)."""
    from . import prestart, starter

    root = str(engine.root)
    if a.stop:
        print(f"stopped {starter.stop(root)} start worker(s)")
        return 0
    want = a.count if a.count is not None else prestart.pool_size(root)
    if not 0 <= want <= prestart.MAX_POOL:
        eprint(f"pydock: -n must be between 0 and {prestart.MAX_POOL}")
        return 1
    print(f"started {starter.fill(root, want)} start worker(s)")
    err = os.path.join(starter.pool_dir(root), "last-error")
    if os.path.exists(err):
        with open(err) as f:
            eprint(f"pydock: last start worker failure: {f.readline().strip()}")
    return 0


def setup(sub) -> None:
    """Register the lifecycle commands on the ``pydock`` subparsers."""
    for name, fn in (("stop", cmd_stop), ("restart", cmd_restart)):
        p = add_command(sub, name, fn)
        p.add_argument("-t", "--time", type=int, default=None,
                       help="seconds to wait before killing (default: the container's "
                            "--stop-timeout, else 10; -1 waits forever)")  # fmt: skip
        if name == "stop":  # Docker's CLI 23+ (API 1.42); 20.10 has only --stop-signal
            p.add_argument("-s", "--signal", help="signal to send instead of the stop signal")
        p.add_argument("containers", nargs="+")
    k = add_command(sub, "kill", cmd_kill)
    k.add_argument("-s", "--signal", default="KILL")
    k.add_argument("containers", nargs="+")
    w = add_command(sub, "wait", cmd_wait)
    w.add_argument("containers", nargs="+")
    at = add_command(sub, "attach", cmd_attach)
    at.add_argument("--detach-keys")
    at.add_argument("--no-stdin", action="store_true")
    at.add_argument("--sig-proxy", default="true")
    at.add_argument("container")
    ex = add_command(sub, "exec", cmd_exec)
    ex.add_argument("-d", "--detach", action="store_true")
    ex.add_argument("-i", "--interactive", action="store_true")
    ex.add_argument("-t", "--tty", action="store_true")
    ex.add_argument("-u", "--user")
    ex.add_argument("-w", "--workdir")
    ex.add_argument("-e", "--env", action="append", default=[])
    ex.add_argument("--detach-keys")
    ex.add_argument("container")
    ex.add_argument("command", nargs=argparse.REMAINDER)
    sy = add_command(sub, "system", cmd_system)
    # `system` has sub-commands: each sets system_handler.
    ssub = sy.add_subparsers(dest="system_cmd")
    boot = ssub.add_parser("boot", help="start containers whose restart policy applies "
                                        "after an engine or host restart")  # fmt: skip
    boot.set_defaults(system_handler=cmd_system_boot)
    warm = ssub.add_parser("warm", help="start workers that make the next `run`s fast "
                                        "(daemon.json start-pool), or stop them")  # fmt: skip
    warm.add_argument("-n", "--count", type=int, help="workers to keep (default: start-pool)")
    warm.add_argument("--stop", action="store_true", help="stop every start worker")
    warm.set_defaults(system_handler=cmd_system_warm)
    from . import diskusage, sysprune

    pr = ssub.add_parser("prune", help="remove unused data")
    sysprune.add_flags(pr)
    pr.set_defaults(system_handler=cmd_system_prune)
    df = ssub.add_parser("df", help="show pydock disk usage")
    diskusage.add_flags(df)
    df.set_defaults(system_handler=cmd_system_df)
