"""Restart policies as docker-intro.md tells them: neversaydie, and the engine-restart
example (always / unless-stopped) with ``pydock system boot`` standing in for the daemon."""

from __future__ import annotations

import os
import signal

from lifecycle_helpers import PtyPydock, inspect, monitor_pid, pid_gone, wait_for
from pydock.engine.shim import next_backoff, parse_policy, should_restart


def test_policy_rules_and_backoff():
    always, unless = parse_policy("always"), parse_policy("unless-stopped")
    on3, on = parse_policy("on-failure:3"), parse_policy("on-failure")
    assert should_restart(always, 0, manual=True, restart_count=9)
    assert should_restart(unless, 0, manual=False, restart_count=0)
    assert not should_restart(unless, 1, manual=True, restart_count=0)
    assert should_restart(on3, 1, manual=False, restart_count=2)
    assert not should_restart(on3, 1, manual=False, restart_count=3)
    assert not should_restart(on, 0, manual=False, restart_count=0)
    assert should_restart(on, 143, manual=True, restart_count=50)  # no maximum
    assert not should_restart(parse_policy("no"), 1, manual=False, restart_count=0)
    steps = [next_backoff(0, 0)]
    for _ in range(12):
        steps.append(next_backoff(steps[-1], 500))
    assert steps[:4] == [100, 200, 400, 800] and steps[-1] == 60_000
    assert next_backoff(6400, 10_000) == 100  # reset after 10 s up


def test_neversaydie_restarts_after_exit_with_growing_restart_count(overlay_pydock):
    p = overlay_pydock
    t = PtyPydock(p, "run", "-it", "--name", "neversaydie", "--restart", "always", "busybox", "sh")
    try:
        t.expect(b"# ")
        t.write(b"exit\r")
        assert t.wait() == 0  # the attached client ends with the run it attached to
    finally:
        t.close()
    first = inspect(p, "neversaydie")
    cid = first["Id"]
    info = wait_for(
        lambda: (
            (i := inspect(p, "neversaydie"))["State"]["Status"] == "running"
            and i["RestartCount"] >= 1
            and i
        ),
        what="the restart",
    )
    assert info["Id"] == cid  # the same container, not a new one
    assert info["State"]["StartedAt"] > info["Created"]
    # once more, from outside: PID 1 killed by us (not by `pydock kill`, which cancels)
    os.kill(info["State"]["Pid"], signal.SIGKILL)
    wait_for(
        lambda: (
            inspect(p, "neversaydie")["RestartCount"] >= 2
            and inspect(p, "neversaydie")["State"]["Running"]
        ),
        what="the second restart",
    )
    mon = monitor_pid(p, "neversaydie")
    p("stop", "-t", "1", "neversaydie", check=True)  # stop wins over the policy
    st = inspect(p, "neversaydie")["State"]
    assert st["Status"] == "exited" and not st["Restarting"] and pid_gone(mon)


def test_on_failure_retries_up_to_n(overlay_pydock):
    p = overlay_pydock
    p("run", "-d", "--name", "flaky", "--restart", "on-failure:2", "busybox", "sh", "-c",
      "echo try; exit 3", check=True)  # fmt: skip
    wait_for(lambda: p.out("logs", "flaky").count("try") == 3, what="three tries")
    wait_for(lambda: inspect(p, "flaky")["State"]["Status"] == "exited", what="the end")
    info = inspect(p, "flaky")
    assert info["RestartCount"] == 2 and info["State"]["ExitCode"] == 3
    p("run", "-d", "--name", "fine", "--restart", "on-failure", "busybox", "true", check=True)
    assert p.out("wait", "fine") == "0\n"
    wait_for(lambda: inspect(p, "fine")["State"]["Status"] == "exited", what="fine's end")
    assert inspect(p, "fine")["RestartCount"] == 0


def test_engine_restart_brings_back_always_not_stopped_unless_stopped(overlay_pydock):
    p = overlay_pydock
    for name in ("always", "unless-stopped"):
        p("run", "-d", "--name", name, "--restart", name, "busybox", "sleep", "600", check=True)
    p("stop", "-t", "0", "always", "unless-stopped", check=True)
    assert p.out("ps", "-q") == ""
    # the "daemon restart"
    assert set(p.out("system", "boot").split()) == {"always"}
    assert inspect(p, "always")["State"]["Running"]
    assert inspect(p, "unless-stopped")["State"]["Status"] == "exited"
    p("stop", "-t", "0", "always", check=True)


def test_crash_of_monitors_then_boot_restores_running_containers(overlay_pydock):
    p = overlay_pydock
    names = ("c-always", "c-unless", "c-no")
    for name, policy in zip(names, ("always", "unless-stopped", "no"), strict=True):
        p("run", "-d", "--name", name, "--restart", policy, "busybox", "sleep", "600", check=True)
    mons = [monitor_pid(p, n) for n in names]
    for pid in mons:  # a crash: every monitor this test started dies at once
        os.kill(pid, signal.SIGKILL)
    wait_for(lambda: all(pid_gone(m) for m in mons), what="the monitors to die")
    started = set(p.out("system", "boot").split())
    assert started == {"c-always", "c-unless"}  # neither was stopped by the user
    assert inspect(p, "c-always")["State"]["Running"]
    assert inspect(p, "c-unless")["State"]["Running"]
    lost = inspect(p, "c-no")["State"]
    assert lost["Status"] == "exited" and lost["ExitCode"] == 255
    p("rm", "-f", *names, check=True)
