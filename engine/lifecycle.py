"""A container's life after ``create``: start, stop, kill, wait, restart, boot recovery.

Daemonless: each operation is done by the command that asks for it, against the record
on disk and the container's monitor (shim.py / monitor_main.py). A command never writes
the record of a container whose monitor is alive; it signals the container's PID 1 and
leaves a ``stop-request`` file the monitor reads when PID 1 exits (that is how ``stop``
keeps ``--restart always`` from bringing the container straight back). Each check-then-act
holds the container's lock (ContainerStore.lock); none holds it while waiting for an exit.
"""

from __future__ import annotations

import os
import signal
import time

from ..cgroupfs import own_paths
from . import events, shim
from .containers import alive
from .engine import Engine
from .errors import Conflict, EngineError, InvalidInput

DEFAULT_STOP_TIMEOUT = 10  # seconds, Docker's


def parse_signal(text: str) -> int:
    """``SIGTERM``, ``TERM``, ``term`` or ``15`` -> 15 (Docker's --signal/--stop-signal)."""
    t = text.strip()
    if t.isdigit():
        n = int(t)
        if n in {s.value for s in signal.valid_signals() if isinstance(s, signal.Signals)}:
            return n
    else:
        name = t.upper()
        name = name if name.startswith("SIG") else "SIG" + name
        sig = getattr(signal.Signals, name, None) if name.isidentifier() else None
        if sig is not None:
            return int(sig)
    raise InvalidInput(f"Invalid signal: {text}")


def run_config(a) -> dict:
    """The record fields ``run``/``create`` flags add for the lifecycle (Docker's names)."""
    policy = shim.parse_policy(a.restart)
    if a.rm and policy["Name"] != "no":
        raise InvalidInput("Conflicting options: --restart and --rm", 125)
    config = {
        "Tty": bool(a.tty),
        "OpenStdin": bool(a.interactive),
        "StdinOnce": bool(a.interactive) and not getattr(a, "detach", False),
        "AttachStdin": bool(a.interactive) and not getattr(a, "detach", False),
        "AttachStdout": not getattr(a, "detach", False),
        "AttachStderr": not getattr(a, "detach", False),
    }
    if a.stop_signal:
        parse_signal(a.stop_signal)
        config["StopSignal"] = a.stop_signal
    if a.stop_timeout is not None:
        config["StopTimeout"] = a.stop_timeout
    return {"Config": config, "HostConfig": {"RestartPolicy": policy}}


def monitored(rec: dict) -> bool:
    """Whether ``rec`` runs (or waits to restart) under a live monitor."""
    st = rec["State"]
    return st["Status"] in ("running", "restarting") and alive(st.get("Owner"))


def start(engine: Engine, rec: dict, *, attach: bool = False) -> int | None:
    """Start a created or stopped container on its same writable layer, under a monitor.

    Under the container's lock, so of two concurrent ``start``s one launches and the other
    finds it running (the monitor inherits the lock until it runs the container)."""
    with engine.containers.lock(rec["Id"]):
        rec = engine.containers.load(rec["Id"])
        if monitored(rec):
            if attach:
                raise Conflict(f"container {rec['Id'][:12]} is already running")
            return None
        cdir = str(engine.containers.path(rec["Id"]))
        shim.read_stop_request(cdir)  # a stale request must not stop the new run
        rec["HasBeenManuallyStopped"] = False
        rec["MonitorCgroup"] = own_paths()  # the monitor, forked from us, sits here
        engine.containers.save(rec)  # before the cgroup exists (engine/cgroupref.py)
        return shim.launch(engine, rec, mounted=False, attach=attach)


def _wait_gone(engine: Engine, rec: dict, deadline: float) -> bool:
    """Wait until the run of ``rec`` that was current has ended; False at ``deadline``."""
    owner, pid = rec["State"].get("Owner"), rec["State"]["Pid"]
    while time.monotonic() < deadline:
        if not alive(owner):
            return True
        try:
            cur = engine.containers.load(rec["Id"])["State"]
        except EngineError:
            return True  # removed (--rm)
        if cur["Pid"] != pid or cur["Status"] != "running":
            return True
        time.sleep(0.02)
    return False


def wait_recorded(engine: Engine, rec: dict, timeout: float = 30.0) -> None:
    """After an attach saw the exit of the run ``rec`` describes: wait until its monitor
    has recorded it, so the command that returns the exit code leaves the state current."""
    _wait_gone(engine, rec, time.monotonic() + timeout)


def stop(engine: Engine, ref: str, timeout: int | None = None, sig: int | None = None) -> None:
    """Docker's stop: the stop signal to PID 1, ``timeout`` s (default 10) then SIGKILL;
    returns when the monitor has recorded the exit and released the container. ``sig``
    (``stop -s``) replaces the container's stop signal for this stop."""
    cid = engine.containers.resolve(ref)
    with engine.containers.lock(cid):
        rec = engine.containers.load(cid)
        if not monitored(rec):
            return  # stopping a stopped container succeeds, as in Docker
        cfg = rec["Config"]
        if timeout is None:
            timeout = cfg.get("StopTimeout")
        timeout = DEFAULT_STOP_TIMEOUT if timeout is None else int(timeout)
        if sig is None:
            sig = parse_signal(cfg.get("StopSignal") or "SIGTERM")
        shim.request_stop(str(engine.containers.path(rec["Id"])), "cancel")
        owner = rec["State"]["Owner"]
        if rec["State"]["Pid"] > 0:
            events.container(engine.root, rec, "kill", signal=str(sig))
            _signal_pid1(engine, rec, sig)
    if rec["State"]["Pid"] > 0:
        deadline = time.monotonic() + (timeout if timeout >= 0 else float("inf"))  # -1: wait
        if not _wait_gone(engine, rec, deadline):
            with engine.containers.lock(cid):  # a pause now cannot freeze out the SIGKILL
                events.container(engine.root, rec, "kill", signal=str(int(signal.SIGKILL)))
                _signal_pid1(engine, rec, signal.SIGKILL)
    _wait_owner(owner)
    events.container(engine.root, rec, "stop")


def kill(engine: Engine, ref: str, sig: int = signal.SIGKILL) -> None:
    """Docker's kill: ``sig`` to PID 1. Like moby's killWithSignal it marks the container
    manually stopped, and cancels its restart policy unless ``sig`` is neither SIGKILL
    nor the container's stop signal while a custom stop signal is set."""
    cid = engine.containers.resolve(ref)
    with engine.containers.lock(cid):
        rec = engine.containers.load(cid)
        if not monitored(rec):
            raise Conflict(f"Container {rec['Id']} is not running")
        custom = rec["Config"].get("StopSignal")
        cancel = not custom or sig == signal.SIGKILL or parse_signal(custom) == sig
        shim.request_stop(str(engine.containers.path(cid)), "cancel" if cancel else "manual")
        if rec["State"]["Pid"] > 0:
            events.container(engine.root, rec, "kill", signal=str(sig))
            _signal_pid1(engine, rec, sig)


def _signal_pid1(engine: Engine, rec: dict, sig: int) -> None:
    """Signal the container's PID 1, if the record still names the same run."""
    cur = engine.containers.load(rec["Id"])["State"]
    if cur["Pid"] != rec["State"]["Pid"] or not alive(cur.get("Owner")):
        return
    if cur.get("Paused") and sig == signal.SIGKILL:
        try:
            engine.container_cgroup(rec).thaw()  # a v1 freezer holds back even SIGKILL
        except (EngineError, OSError):
            pass
    try:
        os.kill(cur["Pid"], sig)
    except ProcessLookupError:
        pass


def _wait_owner(owner: dict | None, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while alive(owner) and time.monotonic() < deadline:
        time.sleep(0.02)


def wait(engine: Engine, ref: str) -> int:
    """Block until the container is not running; its exit code (Docker's ``wait``)."""
    cid = engine.containers.resolve(ref)
    while True:
        rec = engine.containers.load(cid)
        st = rec["State"]
        # Docker's default condition is "not-running": a created container (one whose
        # start failed, too) answers at once with the code it has
        if st["Status"] in ("exited", "dead", "created"):
            return int(st["ExitCode"])
        if st["Status"] == "restarting":
            return int(st["ExitCode"])
        if st["Status"] == "running" and not alive(st.get("Owner")):
            engine.reconcile()
            continue
        time.sleep(0.05)


def boot(engine: Engine) -> list[str]:
    """What an engine restart does (``pydock system boot``, for a systemd unit): finish
    containers whose monitors are gone, then start those their restart policy brings back
    -- ``always`` even after ``stop``, ``unless-stopped`` unless it was stopped by the user,
    ``on-failure`` if its last exit was non-zero (a stopped or lost one's is) within its
    retry count. Returns the names started. First the full sweep of what killed pydock
    processes left (orphans.sweep_all), which reconciles the records too."""
    from .orphans import sweep_all

    sweep_all(engine)
    started = []
    for rec in engine.containers.all():
        with engine.containers.lock(rec["Id"]):
            rec = engine.containers.load(rec["Id"])
            if _boot_one(engine, rec):
                started.append(rec["Name"].lstrip("/"))
    return started


def _boot_one(engine: Engine, rec: dict) -> bool:
    st = rec["State"]
    if alive(st.get("Owner")) or st["Status"] != "exited":
        return False
    if st.get("StartedAt", "0001-").startswith("0001-"):
        return False  # never started: nothing to bring back
    policy = rec["HostConfig"].get("RestartPolicy") or {}
    manual = bool(rec.get("HasBeenManuallyStopped"))
    if not shim.should_restart(policy, int(st["ExitCode"]), manual, rec.get("RestartCount", 0)):
        return False
    if policy.get("Name") == "always":
        rec["HasBeenManuallyStopped"] = False
    cdir = str(engine.containers.path(rec["Id"]))
    shim.read_stop_request(cdir)
    rec["MonitorCgroup"] = own_paths()  # as in start()
    engine.containers.save(rec)
    shim.launch(engine, rec, mounted=False)
    return True
