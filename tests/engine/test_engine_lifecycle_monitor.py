"""Detached containers under their monitor: start/stop/kill/wait/logs, the percy walkthrough,
and what the monitor leaves behind (nothing)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from helpers import no_mounts_under
from leaks import Snapshot
from lifecycle_helpers import inspect, monitor_pid, pid_gone, wait_for


def _mine(pydock, before: Snapshot, cid: str) -> list[str]:
    after = Snapshot.take()
    return [x for x in after.leaked_since(before) if cid in x or str(pydock.root) in x]


def test_detached_container_outlives_pydock_under_a_lean_monitor(overlay_pydock):
    p = overlay_pydock
    before = Snapshot.take()
    cid = p.out("run", "-d", "--name", "bg", "busybox", "sh", "-c", "echo hello; sleep 60").strip()
    info = inspect(p, "bg")
    assert info["State"]["Running"] and info["State"]["Pid"] > 0
    mon = monitor_pid(p, "bg")
    # the monitor is the container's parent, and is not a pydock CLI any more
    stat = Path(f"/proc/{info['State']['Pid']}/stat").read_text()
    ppid = int(stat.rsplit(")", 1)[1].split()[1])
    assert ppid == mon
    cmdline = Path(f"/proc/{mon}/cmdline").read_bytes().split(b"\0")
    assert b"-S" in cmdline and any(a.endswith(b"monitor_main.py") for a in cmdline)
    status = dict(
        line.split(":", 1) for line in Path(f"/proc/{mon}/status").read_text().splitlines()
    )
    rss_kb = int(status["VmRSS"].split()[0])
    assert rss_kb < 20_000, f"monitor RSS {rss_kb} kB"
    wait_for(lambda: p.out("logs", "bg") == "hello\n", what="the log line")
    assert "bg" in p.out("ps")
    p("stop", "-t", "0", "bg", check=True)
    st = inspect(p, "bg")["State"]
    assert st["Status"] == "exited" and st["ExitCode"] == 137 and not st["Running"]
    assert st["FinishedAt"] > st["StartedAt"]
    assert pid_gone(mon)
    assert p.out("logs", "bg") == "hello\n"  # logs survive the container's exit
    p("rm", "bg", check=True)
    assert _mine(p, before, cid) == [] and no_mounts_under(p.root)


def test_percy_file_survives_stop_and_start_then_rm_removes_it(overlay_pydock):
    p = overlay_pydock
    before = Snapshot.take()
    cid = p.out("run", "-d", "--name", "percy", "busybox", "sleep", "600").strip()
    text = "Sunderland is the greatest football team in the world"
    p("exec", "percy", "sh", "-c", f"echo '{text}' > /tmp/newfile", check=True)
    p("stop", "-t", "1", "percy", check=True)
    assert "percy" not in p.out("ps")
    ps_a = p.out("ps", "-a")
    assert "Exited (137)" in ps_a and "percy" in ps_a
    p("start", "percy", check=True)
    assert inspect(p, "percy")["State"]["Running"]
    assert p.out("exec", "percy", "cat", "/tmp/newfile") == text + "\n"
    p("stop", "-t", "1", "percy", check=True)
    p("rm", "percy", check=True)
    assert p.out("ps", "-aq") == ""
    assert not (p.root / "containers" / cid).exists()
    assert _mine(p, before, cid) == [] and no_mounts_under(p.root)


def test_stop_waits_for_timeout_then_kills_a_process_ignoring_sigterm(overlay_pydock):
    p = overlay_pydock
    # `sleep` as PID 1 has no SIGTERM handler, so the kernel drops SIGTERM (pid_namespaces(7))
    p("run", "-d", "--name", "stubborn", "busybox", "sleep", "600", check=True)
    t0 = time.monotonic()
    p("stop", "-t", "2", "stubborn", check=True)
    assert time.monotonic() - t0 >= 2.0
    assert inspect(p, "stubborn")["State"]["ExitCode"] == 137


def test_stop_returns_early_when_the_process_handles_sigterm(overlay_pydock):
    p = overlay_pydock
    script = "trap 'echo bye; exit 0' TERM; echo ready; while true; do sleep 0.1; done"
    p("run", "-d", "--name", "polite", "busybox", "sh", "-c", script, check=True)
    wait_for(lambda: "ready" in p.out("logs", "polite"), what="the trap")
    t0 = time.monotonic()
    p("stop", "-t", "30", "polite", check=True)
    assert time.monotonic() - t0 < 20  # far below -t: it left on SIGTERM
    st = inspect(p, "polite")["State"]
    assert st["ExitCode"] == 0
    assert p.out("logs", "polite") == "ready\nbye\n"


def test_stop_signal_and_kill_signal(overlay_pydock):
    p = overlay_pydock
    script = "trap 'exit 10' USR1; trap 'exit 20' HUP; echo ready; while true; do sleep 0.1; done"
    p("run", "-d", "--name", "sig", "--stop-signal", "SIGUSR1", "busybox", "sh", "-c", script,
      check=True)  # fmt: skip
    wait_for(lambda: "ready" in p.out("logs", "sig"), what="the traps")
    p("stop", "sig", check=True)
    assert inspect(p, "sig")["State"]["ExitCode"] == 10
    p("start", "sig", check=True)
    wait_for(lambda: p.out("logs", "sig").count("ready") == 2, what="the traps again")
    p("kill", "-s", "HUP", "sig", check=True)
    assert p.out("wait", "sig") == "20\n"
    bad = p("kill", "-s", "NOSUCH", "sig")
    assert bad.returncode != 0 and b"Invalid signal" in bad.stderr


@pytest.mark.parametrize(("script", "code"), [("exit 0", 0), ("exit 3", 3), ("exit 255", 255)])
def test_wait_prints_exit_code(overlay_pydock, script, code):
    p = overlay_pydock
    p("run", "-d", "--name", "ww", "busybox", "sh", "-c", f"sleep 0.3; {script}", check=True)
    res = p("wait", "ww")
    assert res.returncode == 0 and res.stdout.decode() == f"{code}\n"
    assert inspect(p, "ww")["State"]["ExitCode"] == code


def test_logs_follow_ends_when_container_exits_and_filters(overlay_pydock):
    p = overlay_pydock
    p("run", "-d", "--name", "lg", "busybox", "sh", "-c",
      "for i in 1 2 3; do echo line$i; sleep 0.3; done; echo err >&2", check=True)  # fmt: skip
    t0 = time.monotonic()
    res = p("logs", "--follow", "lg", timeout=30)
    assert time.monotonic() - t0 < 25
    assert res.stdout == b"line1\nline2\nline3\n" and res.stderr == b"err\n"
    assert p.out("logs", "--tail", "1", "lg") == ""  # stderr is the last line
    assert p("logs", "--tail", "2", "lg").stdout == b"line3\n"
    stamped = p.out("logs", "-t", "lg").splitlines()
    assert stamped[0].endswith(" line1") and stamped[0][4] == "-" and stamped[0][10] == "T"
    assert p.out("logs", "--since", "1h", "lg").count("line") == 3
    assert p.out("logs", "--until", "1h", "lg") == ""
    second = stamped[1].split()[0]
    assert p.out("logs", "--since", second, "lg") == "line2\nline3\n"
    raw = (p.root / "containers" / inspect(p, "lg")["Id"]).glob("*-json.log")
    entry = json.loads(next(raw).read_text().splitlines()[0])
    assert set(entry) == {"log", "stream", "time"} and entry["stream"] == "stdout"


def test_start_attach_and_restart(overlay_pydock):
    p = overlay_pydock
    p("create", "--name", "sa", "busybox", "sh", "-c", "echo run; exit 4", check=True)
    res = p("start", "-a", "sa")
    assert res.returncode == 4 and res.stdout == b"run\n"
    p("restart", "-t", "1", "sa", check=True)
    assert p.out("wait", "sa") == "4\n"
    assert p.out("logs", "sa") == "run\nrun\n"


def test_rm_force_of_running_container_with_restart_policy(overlay_pydock):
    p = overlay_pydock
    before = Snapshot.take()
    cid = p.out("run", "-d", "--restart", "always", "--name", "rmf", "busybox", "sleep", "60")
    mon = monitor_pid(p, "rmf")
    p("rm", "-f", "rmf", check=True)
    assert pid_gone(mon)
    assert _mine(p, before, cid.strip()) == []


def test_flag_errors(overlay_pydock):
    p = overlay_pydock
    res = p("run", "--rm", "--restart", "always", "busybox", "true")
    assert res.returncode == 125 and b"Conflicting options" in res.stderr
    res = p("run", "--restart", "sometimes", "busybox", "true")
    assert res.returncode == 125 and b"invalid restart policy" in res.stderr
    p("create", "--name", "idle", "busybox", "true", check=True)
    res = p("exec", "idle", "true")
    assert res.returncode == 1 and b"is not running" in res.stderr
    assert p("stop", "idle").returncode == 0  # stopping a stopped container succeeds


def test_attach_socket_exists_when_run_detached_returns(overlay_pydock):
    # an `attach` right after `run -d` used to find no socket ("cannot attach to X: No such
    # file or directory") while the monitor was still exec'ing its lean half
    p = overlay_pydock
    for i in range(3):
        cid = p.out("run", "-dit", "--name", f"sock{i}", "busybox", "sh").strip()
        assert (p.root / "containers" / cid / "attach.sock").is_socket()
