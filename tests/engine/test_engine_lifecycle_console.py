"""-t gives the container a pty of its own devpts (runc's console socket): `tty` names
/dev/pts/N, stdin is a terminal, the client's window size is set before the process runs,
/dev/console is that pty; the same for `exec -t`."""

from __future__ import annotations

import os

from lifecycle_helpers import PtyPydock, inspect, pid_gone, wait_for

PROBE = (
    "tty; test -t 0 && echo stdin-is-a-tty; stty size; "
    "ls -1 /dev/pts; stat -c 'console=%t:%T' /dev/console; stat -L -c 'fd0=%t:%T' /proc/self/fd/0"
)


def _lines(seen: bytes) -> list[str]:
    return [line.strip() for line in seen.decode(errors="replace").splitlines()]


def _check_probe(lines: list[str], rows: int, cols: int, console: bool = True) -> str:
    tty = next(line for line in lines if line.startswith("/dev/"))
    assert tty.startswith("/dev/pts/"), lines  # the container's devpts, not "not a tty"
    assert "stdin-is-a-tty" in lines
    assert f"{rows} {cols}" in lines  # the client's size, set before the process ran
    if console:  # only the container's init gets /dev/console (runc: not for exec)
        dev = next(line for line in lines if line.startswith("console="))
        fd0 = next(line for line in lines if line.startswith("fd0="))
        assert dev[len("console=") :] == fd0[len("fd0=") :], lines  # /dev/console is our pty
    return tty


def test_run_t_gets_a_pty_of_the_containers_own_devpts(overlay_pydock):
    p = overlay_pydock
    run = PtyPydock(p, "run", "-t", "--rm", "--network", "none", "busybox", "sh", "-c",
                    PROBE + "; echo done", rows=31, cols=97)  # fmt: skip
    try:
        seen = run.expect(b"done")
        assert run.wait() == 0
    finally:
        run.close()
    lines = _lines(seen)
    tty = _check_probe(lines, 31, 97)
    # a new devpts instance: the container's first pty is number 0, whatever the host has
    assert tty == "/dev/pts/0"
    assert "0" in lines and "ptmx" in lines  # `ls /dev/pts`: its own pty and its ptmx


def test_exec_t_gets_a_pty_of_the_container_and_follows_the_window(overlay_pydock):
    p = overlay_pydock
    p("run", "-d", "--name", "con", "--network", "none", "busybox", "sleep", "60", check=True)
    ex = PtyPydock(p, "exec", "-it", "con", "sh", rows=40, cols=120)
    try:
        ex.expect(b"# ")
        ex.write(f"echo begin-$((1+1)); {PROBE}; echo end-$((2+2))\r".encode())
        seen = ex.expect(b"end-4")
        lines = _lines(seen[seen.index(b"begin-2") :])
        assert _check_probe(lines, 40, 120, console=False) == "/dev/pts/0"
        ex.resize(22, 66)  # SIGWINCH in the client -> TIOCSWINSZ on the container's pty
        ex.write(b"sleep 0.3; stty size; echo again-$((3+3))\r")
        seen = ex.expect(b"again-6")
        assert "22 66" in _lines(seen[seen.rindex(b"end-4") :])
        ex.write(b"exit 3\r")
        assert ex.wait() == 3
    finally:
        ex.close()
    assert inspect(p, "con")["State"]["Running"]
    p("rm", "-f", "con", check=True)


def _ppid(pid: int) -> int:
    with open(f"/proc/{pid}/stat", "rb") as f:
        stat = f.read()
    return int(stat[stat.rindex(b")") + 2 :].split()[1])


def _cmdline(pid: int) -> list[str]:
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        return f.read().decode().split("\0")


def test_exec_d_is_reaped_by_a_reaper_that_dies_with_the_container(overlay_pydock):
    p = overlay_pydock
    p("run", "-d", "--name", "exd", "--network", "none", "busybox", "sleep", "60", check=True)
    p("exec", "-d", "exd", "sh", "-c", "echo $$ > /tmp/pid1; exec sleep 51", check=True)
    p("exec", "-dt", "exd", "sh", "-c", "tty > /tmp/tty; exec sleep 52", check=True)
    pid1 = p.out("exec", "exd", "pidof", "sleep")  # in-container pids of the three sleeps
    assert len(pid1.split()) == 3
    host = {}
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                args = _cmdline(int(pid))
            except OSError:
                continue
            if args[:2] == ["sleep", "51"] or args[:2] == ["sleep", "52"]:
                host[args[1]] = int(pid)
    assert set(host) == {"51", "52"}
    reapers = {k: _ppid(v) for k, v in host.items()}
    for reaper in reapers.values():  # each parent is a reaper, not init nor a subreaper
        assert any(a.endswith("exec_reaper.py") for a in _cmdline(reaper))
    assert p.out("exec", "exd", "cat", "/tmp/tty").startswith("/dev/pts/")
    p("rm", "-f", "exd", check=True)
    for pid in (*host.values(), *reapers.values()):
        assert wait_for(lambda pid=pid: pid_gone(pid), 10, f"pid {pid} to end")
