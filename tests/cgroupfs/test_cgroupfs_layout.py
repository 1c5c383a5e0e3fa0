"""Layout detection and /proc/<pid>/cgroup parsing, on this host and on sample texts."""

from __future__ import annotations

import os
import subprocess

import pytest
from pydock.cgroupfs import (
    CgroupError,
    Layout,
    describe,
    detect,
    own_paths,
    parse_mountinfo,
    parse_proc_cgroup,
)

HOST_V1 = ("cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids")


def test_detect_reports_hybrid_with_mountpoints(hybrid: Layout) -> None:
    assert hybrid.mode == "hybrid"
    for c in HOST_V1:
        assert hybrid.hierarchies[c] == f"/sys/fs/cgroup/{c}"
    assert hybrid.hierarchies["unified"] == "/sys/fs/cgroup/unified"
    assert hybrid.unified == "/sys/fs/cgroup/unified"
    # name=systemd is a named-only hierarchy: no controller, skipped.
    assert not any("systemd" in k for k in hybrid.hierarchies)
    assert all(r == "/" for r in hybrid.roots.values())


def test_detect_is_cached_for_the_default_mountinfo() -> None:
    assert detect() is detect()


def test_detect_reads_other_mountinfo_files_uncached(scratch) -> None:
    f = scratch / "mountinfo"
    f.write_text("30 20 0:26 / /cg rw - cgroup2 cgroup2 rw,nsdelegate\n")
    first = detect(str(f))
    assert first.mode == "v2" and first.hierarchies == {"unified": "/cg"}
    f.write_text("30 20 0:26 / /other rw - cgroup2 cgroup2 rw\n")
    assert detect(str(f)).hierarchies == {"unified": "/other"}


def test_own_paths_matches_proc_self_cgroup(hybrid: Layout) -> None:
    own = own_paths()
    with open("/proc/self/cgroup") as f:
        lines = f.read().splitlines()
    for line in lines:
        _, ctrls, path = line.split(":", 2)
        for c in ctrls.split(",") if ctrls else ["unified"]:
            if not c.startswith("name="):
                assert own[c] == path
    assert set(hybrid.hierarchies) <= set(own)


def test_own_paths_of_a_child_is_inherited() -> None:
    p = subprocess.Popen(["sleep", "30"])
    try:
        assert own_paths(p.pid) == own_paths()
    finally:
        os.kill(p.pid, 9)
        p.wait()


def test_own_paths_of_missing_pid_is_one_line_error() -> None:
    with pytest.raises(CgroupError, match=r"/proc/999999999/cgroup"):
        own_paths(999999999)


def test_comounted_cpu_cpuacct_get_one_key_each() -> None:
    text = (
        "25 20 0:22 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n"
        "26 20 0:23 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,xattr,name=systemd\n"
        "27 20 0:24 / /sys/fs/cgroup/net_cls,net_prio rw - cgroup cgroup rw,net_cls,net_prio\n"
        "28 20 0:25 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory,clone_children\n"
    )
    lay = parse_mountinfo(text)
    assert lay.mode == "v1"
    assert lay.hierarchies == {
        "cpu": "/sys/fs/cgroup/cpu,cpuacct",
        "cpuacct": "/sys/fs/cgroup/cpu,cpuacct",
        "net_cls": "/sys/fs/cgroup/net_cls,net_prio",
        "net_prio": "/sys/fs/cgroup/net_cls,net_prio",
        "memory": "/sys/fs/cgroup/memory",
    }


def test_bind_of_subcgroup_loses_to_root_mount_and_escapes_are_decoded() -> None:
    text = (
        "30 20 0:26 /sub /mnt/a\\040b rw - cgroup2 cgroup2 rw\n"
        "31 20 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n"
    )
    lay = parse_mountinfo(text)
    assert lay.hierarchies == {"unified": "/sys/fs/cgroup"}
    lay = parse_mountinfo(text.splitlines()[0])
    assert lay.hierarchies == {"unified": "/mnt/a b"} and lay.roots == {"unified": "/sub"}


def test_no_cgroup_mounts_is_an_error() -> None:
    with pytest.raises(CgroupError, match="no cgroup"):
        parse_mountinfo("22 1 8:1 / / rw - ext4 /dev/sda1 rw\n")


def test_parse_proc_cgroup_keys() -> None:
    text = "12:cpu,cpuacct:/a\n1:name=systemd:/user.slice\n0::/b\n"
    assert parse_proc_cgroup(text) == {"cpu": "/a", "cpuacct": "/a", "unified": "/b"}


def test_describe_for_pydock_info(hybrid: Layout) -> None:
    d = dict(describe())
    assert d["Cgroup Driver"] == "cgroupfs"
    assert d["Cgroup Version"] == "1 (hybrid)"
    assert "memory" in d["Cgroup Hierarchies"] and "unified" in d["Cgroup Hierarchies"]
    v2 = parse_mountinfo("30 20 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n")
    assert dict(describe(v2))["Cgroup Version"] == "2"
