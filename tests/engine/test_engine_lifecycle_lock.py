"""The per-container lock: concurrent commands on one container take turns."""

from __future__ import annotations

import fcntl
import os
import subprocess
import time

from lifecycle_helpers import inspect, wait_for, wait_status


def _monitors(cid: str) -> list[int]:
    """Live processes running the lean monitor of container ``cid``."""
    out = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                args = f.read().split(b"\0")
        except OSError:
            continue
        if any(a.endswith(b"monitor_main.py") for a in args) and f"cid={cid}".encode() in args:
            out.append(int(pid))
    return out


def test_concurrent_starts_launch_one_monitor(overlay_pydock):
    p = overlay_pydock
    p("create", "--name", "twice", "--network", "none", "busybox", "sleep", "60", check=True)
    cid = inspect(p, "twice")["Id"]
    procs = [p.popen("start", "twice") for _ in range(8)]
    try:
        assert [q.wait(timeout=60) for q in procs] == [0] * 8
    finally:
        for q in procs:
            if q.poll() is None:
                q.kill()  # our own child, by pid
                q.wait()
    assert len(_monitors(cid)) == 1
    assert p.out("top", "twice").count("sleep 60") == 1
    p("rm", "-f", "twice", check=True)
    assert wait_for(lambda: not _monitors(cid), 10, "the monitor to end")


def test_commands_wait_for_the_container_lock(overlay_pydock):
    p = overlay_pydock
    p("run", "-d", "--name", "held", "--network", "none", "busybox", "sleep", "60", check=True)
    cid = inspect(p, "held")["Id"]
    fd = os.open(p.root / "containers" / cid / "lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC)
    procs: list[subprocess.Popen] = []
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        procs = [p.popen("rename", "held", "held2"), p.popen("pause", "held")]
        time.sleep(1.0)
        assert [q.poll() for q in procs] == [None, None]  # both wait for the lock
        assert inspect(p, "held")["Name"] == "/held"
    finally:
        os.close(fd)  # drops the flock
        for q in procs:
            try:
                q.wait(timeout=30)
            finally:
                if q.poll() is None:
                    q.kill()
                    q.wait()
    assert [q.returncode for q in procs] == [0, 0]
    info = inspect(p, "held2")
    assert info["State"]["Paused"] and info["State"]["Running"]
    p("stop", "-t", "1", "held2", check=True)  # thaws the frozen container to kill it
    info = wait_status(p, "held2", "exited")
    assert info["Name"] == "/held2" and not info["State"]["Paused"]
    p("rm", "held2", check=True)
