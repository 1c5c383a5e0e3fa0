"""-it on a real pty: detach with Ctrl-P Ctrl-Q (or --detach-keys) from run, start, attach
and exec, attach again, exec a second shell, window size passed on."""

from __future__ import annotations

import re

import pytest
from lifecycle_helpers import PtyPydock, inspect, monitor_pid, pid_gone, wait_for
from pydock.engine.attach import parse_detach_keys
from pydock.engine.errors import InvalidInput


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
        att.expect(b"read escape sequence\r\n")  # docker attach: the escape is its error
        assert att.wait() == 1
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
    # Docker's exec start failures are all 126 (moby's ContainerExecStart records 126 for
    # any; not found too), and exec -d's are the daemon's error, exit 1
    for flags in ([], ["-w", "/nonexistent"], ["-w", "/etc/passwd"], ["-u", "nosuchuser"]):
        res = p("exec", *flags, "ex", "no-such-cmd" if not flags else "true")
        assert res.returncode == 126, (flags, res.stderr)
        assert len(res.stderr.decode().strip().splitlines()) == 1
    assert b"unable to find user nosuchuser" in res.stderr
    assert p("exec", "-d", "ex", "no-such-cmd").returncode == 1
    res = p("exec", "-i", "ex", "cat", input=b"through stdin\n")
    assert res.stdout == b"through stdin\n"
    p("exec", "-d", "ex", "sh", "-c", "echo detached > /tmp/d; sleep 30", check=True)
    assert p.out("exec", "ex", "cat", "/tmp/d") == "detached\n"
    p("rm", "-f", "ex", check=True)  # the detached exec dies with the container's pid ns


def test_exec_it_detaches_and_its_shell_runs_on(overlay_pydock):
    p = overlay_pydock
    p("run", "-d", "--name", "host", "busybox", "sleep", "300", check=True)
    ex = PtyPydock(p, "exec", "-it", "host", "sh", "-c", "stty size; exec sh", rows=41, cols=97)
    try:
        ex.expect(b"41 97\r\n")  # the terminal had our size from its start
        ex.expect(b"# ")
        ex.write(b"echo $((6*7)); sleep 1; echo still-here >/tmp/after\r")
        ex.expect(b"42")
        ex.write(b"\x10\x11")  # Ctrl-P Ctrl-Q while the shell is busy
        ex.expect(b"read escape sequence\r\n")  # docker exec returns it as attach does
        assert ex.wait() == 1
    finally:
        ex.close()
    # the detached shell went on with its line, kept by its reaper
    wait_for(lambda: p("exec", "host", "cat", "/tmp/after").stdout == b"still-here\n",
             what="the detached shell's write")  # fmt: skip
    assert p.out("exec", "host", "ps", "-o", "args").split("\n").count("sh") == 1
    ex = PtyPydock(p, "exec", "-it", "--detach-keys", "ctrl-x,y", "host", "sh")
    try:
        ex.expect(b"# ")
        ex.write(b"\x10\x11echo typed-through\r")  # the default keys are plain input now
        ex.expect(b"typed-through\r\n")
        ex.write(b"\x18y")
        assert ex.wait() == 1
    finally:
        ex.close()
    ex = PtyPydock(p, "exec", "-it", "host", "sh", "-c", "exit 6")
    assert ex.wait() == 6  # the exit code still comes back through the reaper
    p("rm", "-f", "host", check=True)


def test_invalid_detach_keys_are_dockers_errors(overlay_pydock):
    p = overlay_pydock
    p("run", "-d", "--name", "keys", "busybox", "sleep", "60", check=True)
    res = p("exec", "-it", "--detach-keys", "ctrl-P", "keys", "true")
    assert res.returncode == 1
    assert res.stderr.decode().strip() == "pydock: Invalid escape keys (ctrl-P) provided"
    res = p("attach", "--detach-keys", "ctrl-", "keys")
    assert res.returncode == 1
    assert res.stderr.decode().strip() == "pydock: Invalid detach keys (ctrl-) provided"
    res = p("run", "-it", "--detach-keys", "x,,y", "busybox", "true")
    assert res.returncode == 125
    assert res.stderr.decode().strip() == "pydock: Invalid detach keys (x,,y) provided"
    assert p.out("ps", "-aq").split() == [inspect(p, "keys")["Id"][:12]]  # nothing made
    p("rm", "-f", "keys", check=True)


def test_run_it_and_start_ai_detach_silently_with_their_keys(overlay_pydock):
    p = overlay_pydock
    run = PtyPydock(p, "run", "-it", "--detach-keys", "ctrl-@,DEL", "--name", "rk", "busybox",
                    "sh")  # fmt: skip
    try:
        run.expect(b"# ")
        run.write(b"\x00\x7f")
        # docker run treats the escape as success, and says nothing
        assert run.wait_output() == (0, b"")
    finally:
        run.close()
    assert inspect(p, "rk")["State"]["Running"]
    p("stop", "-t", "1", "rk", check=True)
    start = PtyPydock(p, "start", "-ai", "--detach-keys", "ctrl-],q", "rk")
    try:
        start.expect(b"# ")
        start.write(b"\x1dq")
        assert start.wait_output() == (0, b"")
    finally:
        start.close()
    assert inspect(p, "rk")["State"]["Running"]
    p("rm", "-f", "rk", check=True)


@pytest.mark.parametrize(
    ("spec", "keys"),
    [(None, b"\x10\x11"), ("", b"\x10\x11"), ("ctrl-@", b"\x00"), ("ctrl-a,x", b"\x01x"),
     ("ctrl-[,ctrl-\\,ctrl-],ctrl-^,ctrl-_", b"\x1b\x1c\x1d\x1e\x1f"), ("DEL", b"\x7f"),
     ("ctrl-z,,", None), (",", None), ("ctrl-P", None), ("ctrl-", None), ("ctrl-ab", None),
     ("é", None), ("del", None), (" x", None)],
)  # fmt: skip
def test_detach_key_grammar_is_moby_terms(spec, keys):
    if keys is None:
        with pytest.raises(InvalidInput, match=r"^Invalid detach keys \(.*\) provided$"):
            parse_detach_keys(spec)
    else:
        assert parse_detach_keys(spec) == keys


def test_attach_refuses_a_paused_container_as_docker(overlay_pydock):
    p = overlay_pydock
    p("run", "-dit", "--name", "pz", "busybox", "sh", check=True)
    p("pause", "pz", check=True)
    res = p("attach", "pz", timeout=30)  # (it hung, attached to the frozen shell)
    assert res.returncode == 1
    assert res.stderr.decode().strip() == (
        "pydock: You cannot attach to a paused container, unpause it first"
    )
    p("unpause", "pz", check=True)
    p("rm", "-f", "pz", check=True)
    res = p("attach", "pz")
    assert res.returncode == 1 and b"No such container: pz" in res.stderr
