"""/sys/fs/cgroup inside the container and the cgroup namespace, as Docker 20.10 sets
them: the container's own cgroups, read-only (writable with --privileged); a private
cgroup namespace by default on cgroup v2, the host's on v1 and hybrid hosts (there each
hierarchy's directory of the container is bind-mounted, runc's layout); --cgroupns picks.
Written for either kind of host: the expectations follow detect().mode.
"""

from __future__ import annotations

import json

import pytest
from pydock.cgroupfs import detect

MODE = detect().mode


def _sh(pd, *args: str) -> list[str]:
    res = pd("run", "--rm", *args)
    assert res.returncode == 0, res.stderr.decode()
    return res.stdout.decode().splitlines()


def _limit_file() -> str:
    return "memory.max" if MODE == "v2" else "memory/memory.limit_in_bytes"


@pytest.mark.parametrize("ns", [None, "host", "private"])
def test_container_sees_its_own_memory_limit(pd, ns):
    flags = ["--cgroupns", ns] if ns else []
    out = _sh(pd, *flags, "-m", "48m", "busybox", "cat", f"/sys/fs/cgroup/{_limit_file()}")
    assert out == [str(48 << 20)]


def test_default_cgroupns_mode_is_dockers(pd):
    want = "private" if MODE == "v2" else "host"
    cid = pd.out("create", "busybox", "cat", "/proc/self/cgroup").strip()
    assert json.loads(pd.out("inspect", cid))[0]["HostConfig"]["CgroupnsMode"] == want
    pd("rm", cid, check=True)
    lines = _sh(pd, "busybox", "cat", "/proc/self/cgroup")
    paths = {ln.split(":", 2)[2] for ln in lines if ":name=" not in ln}
    if want == "private":
        assert paths == {"/"}  # the namespace is rooted at the container's cgroup
    else:
        assert all("/pydock-" in p for p in paths), lines  # the host's view of its path


def test_cgroupns_private_roots_every_hierarchy_at_the_container(pd):
    lines = _sh(pd, "--cgroupns", "private", "busybox", "cat", "/proc/self/cgroup")
    assert {ln.split(":", 2)[2] for ln in lines} == {"/"}


def test_sys_fs_cgroup_is_read_only_and_shows_only_the_container(pd):
    # a cgroup made under the container's own: refused on the read-only mount
    sub = "/sys/fs/cgroup/pdtest-x" if MODE == "v2" else "/sys/fs/cgroup/pids/pdtest-x"
    out = _sh(pd, "busybox", "sh", "-c",
              f"mkdir {sub} 2>&1; ls /sys/fs/cgroup{'' if MODE == 'v2' else '/pids'}")  # fmt: skip
    assert "Read-only file system" in out[0]
    # the container's own directory: no sibling pydock-* cgroups, no caller's cgroups
    assert not [e for e in out[1:] if e.startswith("pydock-")]


def test_privileged_makes_it_writable(pd):
    sub = "/sys/fs/cgroup/pdtest-x" if MODE == "v2" else "/sys/fs/cgroup/pids/pdtest-x"
    out = _sh(pd, "--privileged", "busybox", "sh", "-c", f"mkdir {sub} && rmdir {sub} && echo w")
    assert out == ["w"]


@pytest.mark.skipif(MODE == "v2", reason="a v1/hybrid layout: one directory per hierarchy")
def test_v1_layout_has_each_hierarchy_and_its_aliases(pd):
    import os

    host = sorted(os.listdir("/sys/fs/cgroup"))
    out = _sh(pd, "busybox", "ls", "/sys/fs/cgroup")
    assert sorted(" ".join(out).split()) == host
