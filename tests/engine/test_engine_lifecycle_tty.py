"""-it on a real pty: detach with Ctrl-P Ctrl-Q (or --detach-keys), attach again, exec a
second shell, window size passed on."""

from __future__ import annotations

import re

from lifecycle_helpers import PtyPydock, inspect, monitor_pid, pid_gone


def test_ctrl_p_ctrl_q_detaches_and_exec_attaches_a_second_shell(overlay_pydock):
    p = overlay_pydock
    run = PtyPydock(p, "run", "-it", "--name", "ub", "busybox", "sh", rows=33, cols=101)
    try:
        run.expect(b"# ")
        run.write(b"stty size; echo $((6*7))\r")
        seen = run.expect(b"42")
        assert b"33 101" in seen  # the client's window size reached the container's pty
        run.write(b"\x10\x11")  # Ctrl-P Ctrl-Q
        assert run.wait() == 0
    finally:
        run.close()
    info = inspect(p, "ub")
    assert info["State"]["Running"] and info["Config"]["Tty"]
    ex = PtyPydock(p, "exec", "-it", "ub", "sh")
    try:
        ex.expect(b"# ")
        # (no $(...): a subshell would be one more sh)
        ex.write(b"ps -o args >/tmp/ps; grep -c '^sh$' /tmp/ps >/tmp/n; echo shells=`cat /tmp/n`\r")
        seen = ex.expect(b"shells=2\r\n")  # PID 1's shell and ours
        ex.write(b"exit 7\r")
        assert ex.wait() == 7
    finally:
        ex.close()
    assert inspect(p, "ub")["State"]["Running"]  # exiting the exec'd shell left PID 1 alone
    mon = monitor_pid(p, "ub")
    p("stop", "-t", "1", "ub", check=True)
    assert pid_gone(mon)
    logs = p.out("logs", "ub")
    assert "42" in logs and seen


def _prompt(att: PtyPydock) -> None:
    """A fresh prompt from the shell: proof that our attach is in place (the shell was
    started before we attached, so its first prompt went to the log only)."""
    for _ in range(50):
        att.write(b"\r")
        try:
            att.expect(b"# ", timeout=0.4)
            return
        except AssertionError:
            continue
    raise AssertionError(f"no prompt through attach; saw {att.seen!r}")


def test_attach_custom_detach_keys_and_exit_through_attach(overlay_pydock):
    p = overlay_pydock
    p("run", "-dit", "--name", "at", "busybox", "sh", check=True)
    att = PtyPydock(p, "attach", "--detach-keys", "ctrl-a,x", "at")
    try:
        _prompt(att)
        att.write(b"echo attached-$((1+1))\r")
        att.expect(b"attached-2")
        att.write(b"\x01x")
        assert att.wait() == 0
    finally:
        att.close()
    assert inspect(p, "at")["State"]["Running"]
    att = PtyPydock(p, "attach", "at")
    try:
        _prompt(att)
        att.write(b"exit 5\r")
        assert att.wait() == 5  # the container's exit code comes back through attach
    finally:
        att.close()
    assert inspect(p, "at")["State"]["ExitCode"] == 5


def test_exec_flags_and_detached_exec(overlay_pydock):
    p = overlay_pydock
    p("run", "-d", "--name", "ex", "busybox", "sleep", "60", check=True)
    out = p.out("exec", "-u", "nobody", "-w", "/tmp", "-e", "X=1", "ex", "sh", "-c",
                "id -u; pwd; echo $X; cat /proc/self/cgroup | head -1; hostname")  # fmt: skip
    uid, cwd, x, cgroup_line, hostname = out.splitlines()
    assert (uid, cwd, x) == ("65534", "/tmp", "1")
    assert re.match(r"\d+:.*:/$", cgroup_line)  # in the container's cgroup (namespace root)
    assert hostname == inspect(p, "ex")["Id"][:12]
    assert p("exec", "ex", "sh", "-c", "exit 9").returncode == 9
    assert p("exec", "ex", "no-such-cmd").returncode == 127
    res = p("exec", "-i", "ex", "cat", input=b"through stdin\n")
    assert res.stdout == b"through stdin\n"
    p("exec", "-d", "ex", "sh", "-c", "echo detached > /tmp/d; sleep 30", check=True)
    assert p.out("exec", "ex", "cat", "/tmp/d") == "detached\n"
    p("rm", "-f", "ex", check=True)  # the detached exec dies with the container's pid ns
