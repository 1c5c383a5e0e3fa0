"""Namespace plans, setns joins and loopback, in forked children."""

from __future__ import annotations

import os
import socket

import pytest
from pydock.nsutil import namespaces
from pydock.nsutil import syscalls as sc


def _in_child(fn) -> str:
    """Run ``fn`` in a forked child; return what it returned (a str) or its error."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            out = fn()
        except BaseException as e:
            out = f"ERROR {e!r}"
        try:
            os.write(w, out.encode())
        finally:
            os._exit(0)
    os.close(w)
    try:
        chunks = []
        while chunk := os.read(r, 4096):
            chunks.append(chunk)
    finally:
        os.close(r)
        os.waitpid(pid, 0)
    return b"".join(chunks).decode()


def test_plan_splits_new_and_joined() -> None:
    p = namespaces.plan([{"type": "pid"}, {"type": "network", "path": "/proc/1/ns/net"}])
    assert p.new == {"pid"}
    assert p.join == {"network": "/proc/1/ns/net"}
    assert p.new_flags() == sc.lib.CLONE_NEWPID
    assert p.private("network") and not p.private("uts")


@pytest.mark.parametrize(
    "entries",
    [[{"type": "bogus"}], [{"type": "uts"}, {"type": "uts", "path": "/proc/1/ns/uts"}]],
)
def test_plan_rejects_bad_entries(entries: list[dict]) -> None:
    with pytest.raises(ValueError):
        namespaces.plan(entries)


def test_unshare_then_setns_back() -> None:
    def child() -> str:
        host = os.readlink("/proc/self/ns/uts")
        fd = os.open("/proc/self/ns/uts", os.O_RDONLY)
        sc.unshare(sc.lib.CLONE_NEWUTS)
        sc.sethostname("pdtest-uts")
        inside = os.readlink("/proc/self/ns/uts")
        name_inside = os.uname().nodename
        sc.setns(fd, sc.lib.CLONE_NEWUTS)
        back = os.readlink("/proc/self/ns/uts")
        return f"{host != inside} {name_inside} {host == back}"

    assert _in_child(child) == "True pdtest-uts True"


def test_join_checks_namespace_type() -> None:
    def child() -> str:
        try:
            namespaces.join("uts", "/proc/self/ns/net")
        except OSError as e:
            return f"{e.errno} {e.strerror}"
        return "joined"

    out = _in_child(child)
    assert out.startswith("22 setns /proc/self/ns/net")


def test_loopback_up_in_new_netns() -> None:
    def child() -> str:
        sc.unshare(sc.lib.CLONE_NEWNET)
        names = [name for _, name in socket.if_nameindex()]
        namespaces.loopback_up()
        with socket.socket() as srv:
            srv.bind(("127.0.0.1", 0))
            srv.listen()
            with socket.create_connection(srv.getsockname(), timeout=2):
                pass
        return ",".join(names)

    assert _in_child(child) == "lo"
