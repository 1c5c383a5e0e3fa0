"""Container commands: run, create, start, rm, logs (ps is in cmd_manage)."""

from __future__ import annotations

import argparse
import contextlib
import os

from ..drivers.base import DriverError
from . import trace
from .cliutil import add_command, eprint
from .engine import Engine
from .errors import EngineError, InvalidInput


def _flag_bool(text: str) -> bool:
    """A pflag boolean value (``--sig-proxy=false``): strconv.ParseBool's spellings."""
    if text in ("1", "t", "T", "TRUE", "true", "True"):
        return True
    if text in ("0", "f", "F", "FALSE", "false", "False"):
        return False
    raise argparse.ArgumentTypeError(f'strconv.ParseBool: parsing "{text}": invalid syntax')


def _attach_streams(a: argparse.Namespace) -> dict:
    """Config.AttachStdin/Stdout/Stderr by docker/cli's rule: ``-a`` names the streams
    (stdout and stderr when it is not given), ``-i`` attaches stdin; ``-d`` none."""
    streams = set()
    for v in a.attach:
        if v.lower() not in ("stdin", "stdout", "stderr"):
            raise InvalidInput(f'invalid argument "{v}" for "-a, --attach" flag: valid streams '
                               "are STDIN, STDOUT and STDERR", 125)  # fmt: skip
        streams.add(v.lower())
    detach = getattr(a, "detach", False)
    if detach and a.attach:
        raise InvalidInput("Conflicting options: -a and -d", 125)
    if not a.attach:
        streams = {"stdout", "stderr"}
    if a.interactive:
        streams.add("stdin")
    return {f"Attach{s.title()}": s in streams and not detach for s in ("stdin", "stdout",
            "stderr")}  # fmt: skip


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
    p.add_argument("--device", action="append", default=[])
    p.add_argument("--device-cgroup-rule", action="append", default=[])
    p.add_argument("--cgroupns", help="host or private (default: private on cgroup v2, "
                   "host on v1 and hybrid hosts, as Docker 20.10)")  # fmt: skip
    p.add_argument("--security-opt", action="append", default=[])
    p.add_argument("--read-only", action="store_true")
    p.add_argument("-v", "--volume", action="append", default=[])
    p.add_argument("--mount", action="append", default=[])
    p.add_argument("-l", "--label", action="append", default=[])
    p.add_argument(
        "--pull", default="missing",
        help='Pull image before running ("always"|"missing"|"never") (default "missing")',
    )  # fmt: skip
    # environment, /etc files, mounts, init, limits and namespaces (hostflags.py)
    p.add_argument(
        "--env-file",
        action="append",
        default=[],
        help="read environment variables from a file (NAME=value lines)",
    )
    p.add_argument(
        "--add-host",
        action="append",
        default=[],
        help="add a custom host-to-IP mapping (host:ip, or host:host-gateway)",
    )
    p.add_argument("--dns", action="append", default=[], help="set a custom DNS server")
    p.add_argument(
        "--dns-search",
        action="append",
        default=[],
        help="set a custom DNS search domain ('.' for none)",
    )
    p.add_argument(
        "--dns-option",
        "--dns-opt",
        action="append",
        default=[],
        help="set a DNS option (resolv.conf options)",
    )
    p.add_argument(
        "--tmpfs", action="append", default=[], help="mount a tmpfs directory (/path[:options])"
    )
    p.add_argument(
        "--init",
        action="store_true",
        help="run an init inside the container that forwards signals and reaps processes",
    )
    p.add_argument(
        "--ulimit",
        action="append",
        default=[],
        help="set a ulimit (name=soft[:hard], e.g. nofile=1024:2048)",
    )
    p.add_argument("--cidfile", help="write the container ID to the file")
    p.add_argument(
        "--expose",
        action="append",
        default=[],
        help="expose a port or a range of ports (PORT[/PROTO], START-END)",
    )
    p.add_argument("--shm-size", help="size of /dev/shm (default 64m)")
    p.add_argument(
        "--group-add",
        action="append",
        default=[],
        help="add additional groups to join (name or gid)",
    )
    p.add_argument(
        "--ipc", help="IPC mode: private (default), shareable, host, none or container:NAME"
    )
    p.add_argument("--pid", help="PID namespace to use: host or container:NAME")
    p.add_argument("--uts", help="UTS namespace to use: host")
    p.add_argument(
        "--volumes-from",
        action="append",
        default=[],
        help="mount volumes from the specified container(s) (NAME[:ro|rw])",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="suppress the image fetching output")
    p.add_argument(
        "-a",
        "--attach",
        action="append",
        default=[],
        help="attach to STDIN, STDOUT or STDERR (default: stdout and stderr)",
    )
    p.add_argument(
        "--sig-proxy",
        type=_flag_bool,
        nargs="?",
        const=True,
        default=True,
        help="proxy received signals to the process (default true; not with -t)",
    )
    p.add_argument(
        "--platform",
        help="check that the image is for this platform (os[/arch]; only the host's runs)",
    )
    # health checks (engine/health.py); durations are Go's: 30s, 1m30s, 500ms
    p.add_argument("--health-cmd", help="command to run to check health")
    p.add_argument("--health-interval", help="time between running the check (default 30s)")
    p.add_argument("--health-retries", type=int,
                   help="consecutive failures needed to report unhealthy (default 3)")  # fmt: skip
    p.add_argument("--health-start-period",
                   help="start period for the container to initialize before starting "
                        "health-retries countdown (default 0s)")  # fmt: skip
    p.add_argument("--health-timeout", help="maximum time to allow one check to run (default 30s)")
    p.add_argument("--no-healthcheck", action="store_true",
                   help="disable any container-specified HEALTHCHECK")  # fmt: skip
    p.add_argument("--log-driver", help="logging driver for the container: json-file, local, none")
    p.add_argument("--log-opt", action="append", default=[], help="log driver options")
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
    env = a.env
    if a.env_file:
        from .envfile import read_all

        env = [*read_all(a.env_file), *a.env]  # -e overrides the files, as in Docker
    return RunOptions(
        command=a.command,
        entrypoint=a.entrypoint,
        env=env,
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
    from . import monitor, runpull

    runpull.check_policy(a.pull)
    if a.detach_keys and not a.detach:  # used (and checked, as the daemon's attach does)
        from .attach import parse_detach_keys

        parse_detach_keys(a.detach_keys)
    opts = _run_options(a)
    extra = lifecycle_config(a)
    rec = _create(engine, a, opts, extra, keep_mounted=True)
    if (
        a.detach or a.tty or extra["HostConfig"]["RestartPolicy"]["Name"] != "no"
        or not a.sig_proxy or _probed(rec)
    ):  # fmt: skip
        # Under a monitor: it outlives this command (detach keys, restart policies,
        # --sig-proxy=false: a signal ends this command, not the container, as in Docker),
        # and it runs the health probes.
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
    cfg = rec["Config"]
    echo = tuple(s for s in ("stdout", "stderr") if cfg.get(f"Attach{s.title()}", True))
    return monitor.run_attached(engine, rec, interactive=a.interactive, mounted=True, echo=echo)


def _probed(rec: dict) -> bool:
    """Whether the container has a health check to run (from the flags or its image)."""
    hc = rec["Config"].get("Healthcheck")
    if not hc:
        return False
    from .health import active

    return active(hc)


def _refill_pools(engine: Engine, rec: dict) -> None:
    """The monitor that started the container made its network and exec'd; this
    command forks the namespace pool's refill instead (network/pool.py)."""
    mode = rec["HostConfig"].get("NetworkMode") or ""
    if mode not in ("none", "host") and not mode.startswith("container:"):
        from .network.pool import refill_if_owed

        refill_if_owed(engine.root)


def lifecycle_config(a: argparse.Namespace) -> dict:
    out = _lifecycle_config(a)
    if (
        a.health_cmd or a.health_interval or a.health_timeout or a.health_start_period
        or a.health_retries or a.no_healthcheck
    ):  # fmt: skip
        from .health import from_flags  # only then: run's plain path imports nothing more

        hc = from_flags(a)
        if hc is not None:
            out["Config"]["Healthcheck"] = hc
    if a.log_driver or a.log_opt:
        from . import logconfig

        out["HostConfig"]["LogConfig"] = logconfig.from_flags(a.log_driver, a.log_opt)
    return out


def _lifecycle_config(a: argparse.Namespace) -> dict:
    if a.restart in (None, "no") and not a.stop_signal and a.stop_timeout is None:
        # the plain (benchmarked) run: no need to import the lifecycle modules
        out = {
            "Config": {"Tty": bool(a.tty), "OpenStdin": bool(a.interactive),
                       "StdinOnce": bool(a.interactive) and not getattr(a, "detach", False)},
            "HostConfig": {"RestartPolicy": {"Name": "no", "MaximumRetryCount": 0}},
        }  # fmt: skip
    else:
        from .lifecycle import run_config

        out = run_config(a)
    out["Config"].update(_attach_streams(a))
    return out


def _attached(engine: Engine, rec: dict, sock: int, a: argparse.Namespace) -> int:
    """Relay our stdio to a monitored container until it exits or we detach; for
    ``--rm`` wait until the monitor has removed it, as ``docker run --rm`` does."""
    from .attach import DETACHED, relay
    from .lifecycle import wait_recorded

    rec = engine.containers.load(rec["Id"])  # this run's Pid and monitor
    proxy = getattr(a, "sig_proxy", False) and not a.tty  # Docker: no proxy with a tty
    with _proxied_signals(engine, rec["Id"]) if proxy else contextlib.nullcontext():
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


@contextlib.contextmanager
def _proxied_signals(engine: Engine, cid: str):
    """``--sig-proxy`` for a container under a monitor: each signal this command gets is
    sent to the container's PID 1 (as ``kill -s``), read from its record each time since
    a restart policy gives it a new one. Without a running container it is dropped."""
    import signal

    from .runtime import FORWARDED_SIGNALS

    def forward(sig: int, _frame) -> None:
        try:
            st = engine.containers.load(cid)["State"]
            if st.get("Running") and st.get("Pid", 0) > 0:
                os.kill(st["Pid"], sig)
        except (EngineError, OSError, ValueError):
            pass

    wanted = [s for s in FORWARDED_SIGNALS if s != signal.SIGWINCH]  # a tty's, not proxied
    old = {s: signal.signal(s, forward) for s in wanted}
    try:
        yield
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)


def cmd_create(engine: Engine, a: argparse.Namespace) -> int:
    from . import runpull

    runpull.check_policy(a.pull)
    rec = _create(engine, a, _run_options(a), lifecycle_config(a))
    print(rec["Id"])
    return 0


def _create(engine: Engine, a: argparse.Namespace, opts, extra: dict, *,
            keep_mounted: bool = False) -> dict:  # fmt: skip
    """engine.create with what run and create share: --platform checked first, and
    --cidfile, which must not exist (Docker's check, so two runs never share one) and
    gets the new container's id; the image pulled as ``--pull`` says (:mod:`.runpull`)."""
    from . import runpull

    if a.platform:
        from .platforms import check

        check(engine, a.image, a.platform)
    fd = _cidfile_open(a) if a.cidfile else -1
    try:
        rec = runpull.create(engine, a.image, a.pull, quiet=a.quiet, opts=opts, name=a.name,
                             auto_remove=a.rm, keep_mounted=keep_mounted,
                             extra=extra)  # fmt: skip
    except BaseException:
        if fd >= 0:
            os.close(fd)
            os.unlink(a.cidfile)
        raise
    if fd >= 0:
        os.write(fd, rec["Id"].encode())
        os.close(fd)
    return rec


def _cidfile_open(a: argparse.Namespace) -> int:
    try:
        return os.open(a.cidfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC,
                       0o666 & ~getattr(a, "caller_umask", 0o022))  # fmt: skip
    except FileExistsError:
        raise InvalidInput(
            "Container ID file found, make sure the other container isn't running or "
            f"delete {a.cidfile}",
            125,
        ) from None
    except OSError as e:
        raise InvalidInput(f"failed to create the container ID file: {e.strerror}: "
                           f"{a.cidfile}", 125) from None  # fmt: skip


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
            print(engine.remove(ref, force=a.force, volumes=a.volumes))
        except (EngineError, DriverError) as e:
            eprint(f"Error response from daemon: {e}")
            failed = True
    return 1 if failed else 0


def cmd_logs(engine: Engine, a: argparse.Namespace) -> int:
    from .logread import show

    return show(engine, engine.containers.load(engine.containers.resolve(a.container)), a)


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
    rm.add_argument("-v", "--volumes", action="store_true",
                    help="remove the container's anonymous volumes")  # fmt: skip
    rm.add_argument("containers", nargs="+")
    lg = add_command(sub, "logs", cmd_logs)
    lg.add_argument("-f", "--follow", action="store_true")
    lg.add_argument("-t", "--timestamps", action="store_true")
    lg.add_argument("-n", "--tail")
    lg.add_argument("--since")
    lg.add_argument("--until")
    lg.add_argument("--details", action="store_true", help="show extra details provided to logs")
    lg.add_argument("container")
