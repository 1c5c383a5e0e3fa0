"""spawn() with process.terminal and a console socket: the pty comes from the container's
own devpts instance and its master arrives over the socket (runc's --console-socket)."""

from __future__ import annotations

import _socket
import os
from pathlib import Path

import pytest
from nsutil_helpers import docker_like_spec
from pydock.nsutil.console import receive_master
from pydock.nsutil.spawn import SpawnError, spawn


def _read_all(master: int) -> str:
    out = b""
    while True:
        try:
            data = os.read(master, 4096)
        except OSError:  # EIO: the container's side of the pty is closed
            break
        if not data:
            break
        out += data
    return out.decode(errors="replace").replace("\r\n", "\n")


def test_terminal_is_a_pty_of_the_containers_devpts(rootfs: Path, scratch: Path) -> None:
    for applet in ("stty", "tty", "stat"):
        os.symlink("busybox", rootfs / "bin" / applet)
    script = (
        "tty; [ -t 0 ] && echo stdin=tty; stty size; ls /dev/pts; "
        "echo console=$(stat -c %t:%T /dev/console) fd0=$(stat -L -c %t:%T /proc/self/fd/0); "
        "echo owner=$(stat -c %u /proc/self/fd/0)"
    )
    spec = docker_like_spec(rootfs, ["/bin/sh", "-c", script], terminal=True,
                            consoleSize={"height": 12, "width": 34},
                            user={"uid": 1000, "gid": 1000})  # fmt: skip
    a, b = _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_STREAM | _socket.SOCK_CLOEXEC)
    mine, theirs = a.detach(), b.detach()
    null = os.open("/dev/null", os.O_RDWR | os.O_CLOEXEC)
    try:
        pid = spawn(spec, stdio=(null, null, null), console_socket=theirs)
        os.close(theirs)
        theirs = -1
        master = receive_master(mine)
        try:
            out = _read_all(master)
        finally:
            os.close(master)
        _, status = os.waitpid(pid, 0)
    finally:
        for fd in (mine, theirs, null):
            if fd >= 0:
                os.close(fd)
    assert os.waitstatus_to_exitcode(status) == 0, out
    lines = out.split("\n")
    assert lines[0] == "/dev/pts/0"  # a fresh devpts instance: its first pty
    assert "stdin=tty" in lines and "12 34" in lines
    assert "0" in lines[3].split() and "ptmx" in lines[3].split()
    kv = dict(w.split("=", 1) for line in lines for w in line.split() if "=" in w)
    assert kv["console"] == kv["fd0"]  # /dev/console is the container's pty
    assert kv["owner"] == "1000"  # the process's user owns its terminal


def test_terminal_without_devpts_fails_cleanly(rootfs: Path) -> None:
    spec = docker_like_spec(rootfs, ["/bin/true"], terminal=True)
    spec["mounts"] = [m for m in spec["mounts"] if m["destination"] != "/dev/pts"]
    a, b = _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_STREAM | _socket.SOCK_CLOEXEC)
    mine, theirs = a.detach(), b.detach()
    null = os.open("/dev/null", os.O_RDWR | os.O_CLOEXEC)
    try:
        with pytest.raises(SpawnError) as err:
            spawn(spec, stdio=(null, null, null), console_socket=theirs)
        assert err.value.stage == "terminal" and err.value.exit_code == 125
    finally:
        for fd in (mine, theirs, null):
            os.close(fd)
