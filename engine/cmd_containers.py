"""Container commands: run, create, start, rm, logs (ps is in cmd_manage)."""

from __future__ import annotations

import argparse
import json
import sys

from ..drivers.base import DriverError
from . import trace
from .cliutil import add_command, eprint
from .engine import Engine
from .errors import EngineError, InvalidInput


def _add_create_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--name")
    p.add_argument("-e", "--env", action="append", default=[])
    p.add_argument("-w", "--workdir")
    p.add_argument("-u", "--user")
    p.add_argument("-h", "--hostname")
    p.add_argument("--entrypoint")
    p.add_argument(
        "--network",
        "--net",
        default="bridge",
        help="bridge (default), none (loopback only), host, container:NAME or a user network",
    )
    p.add_argument("-p", "--publish", action="append", default=[])
    p.add_argument("-P", "--publish-all", action="store_true")
    p.add_argument("--cgroup-parent")
    p.add_argument("--rm", action="store_true")
    p.add_argument("-i", "--interactive", action="store_true")
    p.add_argument("-t", "--tty", action="store_true")
    p.add_argument("--restart", default="no", help="no, always, unless-stopped, on-failure[:N]")
    p.add_argument("--stop-signal")
    p.add_argument("--stop-timeout", type=int)
    p.add_argument("--detach-keys")
    # limits, security, volumes and labels (converted and checked in runflags.py)
    p.add_argument("-m", "--memory")
    p.add_argument("--memory-swap")
    p.add_argument("--cpus")
    p.add_argument("-c", "--cpu-shares", type=int, default=0)
    p.add_argument("--cpuset-cpus")
    p.add_argument("--pids-limit", type=int)
    p.add_argument("--blkio-weight", type=int, default=0)
    p.add_argument("--cap-add", action="append", default=[])
    p.add_argument("--cap-drop", action="append", default=[])
    p.add_argument("--privileged", action="store_true")
    p.add_argument("--security-opt", action="append", default=[])
    p.add_argument("--read-only", action="store_true")
    p.add_argument("-v", "--volume", action="append", default=[])
    p.add_argument("--mount", action="append", default=[])
    p.add_argument("-l", "--label", action="append", default=[])
    p.add_argument("image")
    p.add_argument("command", nargs=argparse.REMAINDER)


def _run_options(a: argparse.Namespace):
    from . import runflags
    from .spec import RunOptions, check_workdir_flag

    check_workdir_flag(a.workdir)
    network = a.network
    if network not in ("none", "host"):  # the network package stays off none/host's path
        from pathlib import Path

        from .network.manager import port_bindings, resolve_mode

        network = resolve_mode(Path(a.root), network)
        if (a.publish or a.publish_all) and network.startswith("container:"):
            raise InvalidInput(
                "conflicting options: port publishing and the container type network mode", 125
            )
        if a.hostname and network.startswith("container:"):  # moby validateNetContainerMode
            raise InvalidInput("conflicting options: hostname and the network mode", 125)
        port_bindings(a.publish)  # a bad -p fails here, before anything is made
    elif a.publish and network == "none":
        raise InvalidInput("published ports need a network: --network none has only lo", 125)
    return RunOptions(
        command=a.command,
        entrypoint=a.entrypoint,
        env=a.env,
        workdir=a.workdir,
        user=a.user,
        hostname=a.hostname,
        network=network,
        cgroup_parent=a.cgroup_parent,
        publish=a.publish if network != "host" else [],
        publish_all=a.publish_all and network != "host",
        **runflags.options(a),
    )


def cmd_run(engine: Engine, a: argparse.Namespace) -> int:
    trace.mark("cmd_run")
    from . import monitor

    if a.detach_keys and not a.detach:  # used (and checked, as the daemon's attach does)
        from .attach import parse_detach_keys

        parse_detach_keys(a.detach_keys)
    opts = _run_options(a)
    extra = lifecycle_config(a)
    rec = engine.create(
        a.image, opts, name=a.name, auto_remove=a.rm, progress=eprint, keep_mounted=True,
        extra=extra,
    )  # fmt: skip
    if a.detach or a.tty or extra["HostConfig"]["RestartPolicy"]["Name"] != "no":
        # Under a monitor: it outlives this command (detach keys, restart policies).
        from . import prestart, shim

        prestart.drop()  # a start worker's cgroup: the monitor makes the container's own
        engine.flush_created(rec)  # the monitor reads the bundle from disk
        if a.detach:
            # Docker's client prints the id as the start begins, so a start that fails
            # still names the container it left Created
            print(rec["Id"], flush=True)
        with engine.containers.lock(rec["Id"]):  # as `start` does (lifecycle.start)
            sock = shim.launch(engine, rec, mounted=True, attach=not a.detach)
        _refill_pools(engine, rec)
        if sock is None:
            return 0
        return _attached(engine, rec, sock, a)
    return monitor.run_attached(engine, rec, interactive=a.interactive, mounted=True)


def _refill_pools(engine: Engine, rec: dict) -> None:
    """The monitor that started the container made its network and exec'd; this
    command forks the namespace pool's refill instead (network/pool.py)."""
    mode = rec["HostConfig"].get("NetworkMode") or ""
    if mode not in ("none", "host") and not mode.startswith("container:"):
        from .network.pool import refill_if_owed

        refill_if_owed(engine.root)


def lifecycle_config(a: argparse.Namespace) -> dict:
    if a.restart in (None, "no") and not a.stop_signal and a.stop_timeout is None:
        # the plain (benchmarked) run: no need to import the lifecycle modules
        return {
            "Config": {"Tty": bool(a.tty), "OpenStdin": bool(a.interactive),
                       "StdinOnce": bool(a.interactive) and not getattr(a, "detach", False)},
            "HostConfig": {"RestartPolicy": {"Name": "no", "MaximumRetryCount": 0}},
        }  # fmt: skip
    from .lifecycle import run_config

    return run_config(a)


def _attached(engine: Engine, rec: dict, sock: int, a: argparse.Namespace) -> int:
    """Relay our stdio to a monitored container until it exits or we detach; for
    ``--rm`` wait until the monitor has removed it, as ``docker run --rm`` does."""
    from .attach import DETACHED, relay
    from .lifecycle import wait_recorded

    rec = engine.containers.load(rec["Id"])  # this run's Pid and monitor
    code = relay(sock, stdin=bool(a.interactive), tty=bool(a.tty),
                 detach_keys=getattr(a, "detach_keys", None))  # fmt: skip
    if code == DETACHED:
        return 0
    wait_recorded(engine, rec)
    if rec["HostConfig"].get("AutoRemove"):
        from .lifecycle import _wait_owner

        try:
            _wait_owner(engine.containers.load(rec["Id"])["State"].get("Owner"))
        except EngineError:
            pass  # already removed
    return code


def cmd_create(engine: Engine, a: argparse.Namespace) -> int:
    rec = engine.create(
        a.image, _run_options(a), name=a.name, auto_remove=a.rm, progress=eprint,
        extra=lifecycle_config(a),
    )  # fmt: skip
    print(rec["Id"])
    return 0


def cmd_start(engine: Engine, a: argparse.Namespace) -> int:
    from . import lifecycle

    engine.reconcile()
    failed = False
    for ref in a.containers:
        try:
            rec = engine.containers.load(engine.containers.resolve(ref))
            if a.attach:
                from .attach import parse_detach_keys

                parse_detach_keys(a.detach_keys)
                sock = lifecycle.start(engine, rec, attach=True)
                a.tty = rec["Config"].get("Tty")
                return _attached(engine, rec, sock, a)
            lifecycle.start(engine, rec)
            print(ref)
        except EngineError as e:
            eprint(f"Error response from daemon: {e}")
            if a.attach:  # docker start -a returns the start's error alone
                return 1
            failed = True
    if failed:
        eprint("Error: failed to start containers: " + " ".join(a.containers))
    return 1 if failed else 0


# -- containers -----------------------------------------------------------------------------


def cmd_rm(engine: Engine, a: argparse.Namespace) -> int:
    engine.reconcile()
    failed = False
    for ref in a.containers:
        try:
            print(engine.remove(ref, force=a.force))
        except (EngineError, DriverError) as e:
            eprint(f"Error response from daemon: {e}")
            failed = True
    return 1 if failed else 0


def cmd_logs(engine: Engine, a: argparse.Namespace) -> int:
    import time

    from .containers import alive

    rec = engine.containers.load(engine.containers.resolve(a.container))
    try:
        f = open(rec["LogPath"], "rb")  # noqa: SIM115 - followed below
    except FileNotFoundError:
        return 0
    from .logtime import parse_bound

    since = parse_bound(a.since, "since")
    until = parse_bound(a.until, "until")
    with f:
        lines = f.readlines()
        if a.tail not in (None, "all"):
            try:
                n = int(a.tail)
            except ValueError:
                raise InvalidInput(f"invalid value for --tail: {a.tail}") from None
            lines = lines[-n:] if n > 0 else []
        while True:
            for raw in lines:
                if not raw.endswith(b"\n"):
                    f.seek(-len(raw), 1)  # half-written by the monitor: read it next round
                    break
                entry = json.loads(raw)
                stamp = entry["time"]
                if (since and stamp[:29] < since) or (until and stamp[:29] > until):
                    if until and stamp[:29] > until:
                        return 0
                    continue
                out = sys.stdout if entry["stream"] == "stdout" else sys.stderr
                out.write((stamp + " " if a.timestamps else "") + entry["log"])
                out.flush()
            if not a.follow:
                break
            lines = f.readlines()
            if not lines:
                # --follow ends when the container is no longer running (Docker's rule)
                st = engine.containers.load(rec["Id"])["State"]
                if st["Status"] != "running" or not alive(st.get("Owner")):
                    lines = f.readlines()
                    if not lines:
                        break
                time.sleep(0.1)
    return 0


# -- images ---------------------------------------------------------------------------------


def setup(sub) -> None:
    """Register the container commands on the ``pydock`` subparsers."""
    r = add_command(sub, "run", cmd_run)
    r.add_argument("-d", "--detach", action="store_true")
    _add_create_flags(r)
    _add_create_flags(add_command(sub, "create", cmd_create))
    s = add_command(sub, "start", cmd_start)
    s.add_argument("-a", "--attach", action="store_true")
    s.add_argument("-i", "--interactive", action="store_true")
    s.add_argument("--detach-keys")
    s.add_argument("containers", nargs="+")
    rm = add_command(sub, "rm", cmd_rm)
    rm.add_argument("-f", "--force", action="store_true")
    rm.add_argument("containers", nargs="+")
    lg = add_command(sub, "logs", cmd_logs)
    lg.add_argument("-f", "--follow", action="store_true")
    lg.add_argument("-t", "--timestamps", action="store_true")
    lg.add_argument("-n", "--tail")
    lg.add_argument("--since")
    lg.add_argument("--until")
    lg.add_argument("container")
