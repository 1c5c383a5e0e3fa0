"""One health probe of a running container: ``python -I -m pydock.engine.healthprobe``.

The container's lean monitor (monitor_main.py) starts this program at each health-check
interval and waits for it before it schedules the next, so at most one probe of a
container runs at a time (as moby's health monitor). The probe is an exec in the container
(container_exec.exec_spec: its namespaces, cgroup, user, workdir, env and confinement),
with stdout and stderr on one pipe; its result goes into the record's ``State.Health``
under the container's lock, if the container is still the same run (health.record).
The monitor stays small: the engine is loaded only here, once per probe.

Usage: ``python -I -m pydock.engine.healthprobe root=ROOT cid=ID pid=PID``.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import sys
import time

from . import health
from .containers import alive, now
from .engine import Engine


def _still_running(rec: dict, pid: int) -> bool:
    st = rec["State"]
    return st["Status"] == "running" and st["Pid"] == pid and alive(st.get("Owner"))


def _collect(child: int, out: int, deadline: float) -> tuple[int | None, bytes, bool]:
    """Read the probe's output until it exits or ``deadline``: (its exit code, or None
    at the timeout; the first MAX_OUTPUT bytes; whether more came)."""
    data, truncated = b"", False
    pidfd = os.pidfd_open(child)
    poller = select.poll()
    poller.register(pidfd, select.POLLIN)
    poller.register(out, select.POLLIN)
    exited = False
    try:
        while not exited:
            left = deadline - time.monotonic()
            if left <= 0:
                return None, data, truncated
            for fd, _ in poller.poll(left * 1000):
                if fd == pidfd:
                    exited = True
                    continue
                chunk = os.read(out, 65536)
                if not chunk:
                    poller.unregister(out)
                    continue
                room = health.MAX_OUTPUT - len(data)
                data += chunk[:room]
                truncated = truncated or len(chunk) > room
        # exited: what it wrote before is in the pipe (a child it left may hold it open)
        os.set_blocking(out, False)
        with contextlib.suppress(BlockingIOError, OSError):
            while chunk := os.read(out, 65536):
                room = health.MAX_OUTPUT - len(data)
                data += chunk[:room]
                truncated = truncated or len(chunk) > room
    finally:
        os.close(pidfd)
    _, status = os.waitpid(child, 0)
    code = os.waitstatus_to_exitcode(status)
    return (code if code >= 0 else 128 - code), data, truncated


def probe(engine: Engine, rec: dict) -> dict:
    """Run the container's health check once; Docker's HealthcheckResult."""
    from ..nsutil.spawn import SpawnError, spawn
    from .container_exec import exec_spec

    hc = rec["Config"]["Healthcheck"]
    started = now()
    argv = health.command(hc, rec["Config"].get("Shell"))
    spec = exec_spec(engine, rec, argv, env=[], user=None, workdir=None, tty=False)
    out_r, out_w = os.pipe2(os.O_CLOEXEC)
    null = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
    limit = health.timeout(hc)
    try:
        try:
            child = spawn(spec, on_forked=engine.container_cgroup(rec).attach,
                          stdio=(null, out_w, out_w))  # fmt: skip
        except SpawnError as e:  # moby: an exec that cannot start is ExitCode -1
            return {"Start": started, "End": now(), "ExitCode": -1, "Output": str(e)}
        os.close(out_w)
        out_w = -1
        code, data, truncated = _collect(child, out_r, time.monotonic() + limit / 1e9)
        if code is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signal.SIGKILL)  # our child: the exec'd probe
            os.waitpid(child, 0)
            text = f"Health check exceeded timeout ({health.format_duration(limit)})"
            return {"Start": started, "End": now(), "ExitCode": -1, "Output": text}
        return {"Start": started, "End": now(), "ExitCode": code,
                "Output": health.output_text(data, truncated)}  # fmt: skip
    finally:
        for fd in (out_r, out_w, null):
            if fd >= 0:
                os.close(fd)


def main(argv: list[str]) -> int:
    args = dict(a.split("=", 1) for a in argv)
    engine = Engine(args["root"])
    cid, pid = args["cid"], int(args["pid"])
    rec = engine.containers.load(cid)
    if not _still_running(rec, pid) or rec["State"].get("Paused"):
        return 0  # moby probes only running, unpaused containers
    if not health.active(rec["Config"].get("Healthcheck")):
        return 0
    result = probe(engine, rec)
    with engine.containers.lock(cid):
        rec = engine.containers.load(cid)
        if not _still_running(rec, pid):
            return 0  # it exited meanwhile: its monitor records that, not us
        before = (rec["State"].get("Health") or {}).get("Status")
        health.record(rec, result)
        engine.containers.save(rec)
    after = rec["State"]["Health"]["Status"]
    if after != before:  # moby: an event when the status changes
        from . import events

        events.container(engine.root, rec, f"health_status: {after}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except Exception as e:  # noqa: BLE001 - said to monitor.log (our stderr); next probe tries again
        print(f"pydock health probe: {type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(1)
