"""Docker's device flags end to end: --device, --device-cgroup-rule, --privileged.

The device cgroup is the host's own kind: the v1 devices controller on this hybrid host,
the eBPF filter (cgroupfs/devfilter.py) on a pure v2 one; the same tests cover both. The
device used is a block node with loop0's numbers (b 7:0), made in the test's scratch
directory: not in Docker's default list, and harmless to open read-only. Without a loop
driver its open fails with ENXIO, which is the driver's answer, not the filter's EPERM.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from pydock.cgroupfs import detect

DENIED = "Operation not permitted"


def _open(path: str, mode: str = "<") -> str:
    """Shell text that prints "ok" when ``path`` opens (``<`` read, ``>`` write, in a
    subshell so a failed redirection does not end the script), else busybox's error."""
    return f"( exec 3{mode}{path} ) 2>&1 && echo ok || true; "


@pytest.fixture
def loopdev(scratch: Path) -> str:
    path = scratch / "blk7-0"
    os.mknod(path, stat.S_IFBLK | 0o640, os.makedev(7, 0))
    return str(path)


def _run(pd, *args: str) -> str:
    res = pd("run", "--rm", *args)
    assert res.returncode == 0, res.stderr.decode()
    return res.stdout.decode()


def test_device_flag_makes_the_node_and_allows_it(pd, loopdev):
    # HOST alone: the same path inside (a /dev node of every host), HOST:CONTAINER: moved
    out = _run(pd, "--device", "/dev/full", "--device", f"{loopdev}:/dev/blk", "busybox",
               "sh", "-c", "stat -c '%t:%T %F %a' /dev/blk /dev/full; "
               + _open("/dev/blk"))  # fmt: skip
    blk, full, rest = out.split("\n", 2)
    assert blk == "7:0 block special file 640"  # the host node's numbers and mode
    assert full.startswith("1:7 character special file")
    assert DENIED not in rest
    # without the flag the default rules deny the same node (b *:* m lets it be made)
    out = _run(pd, "busybox", "sh", "-c", "mknod /dev/l b 7 0; " + _open("/dev/l"))
    assert DENIED in out


def test_device_flag_container_path_and_permissions(pd, loopdev):
    out = _run(pd, "--device", f"{loopdev}:/dev/xvda:r", "busybox", "sh", "-c",
               "test -b /dev/xvda && echo blk; " + _open("/dev/xvda") +
               _open("/dev/xvda", ">"))  # fmt: skip
    lines = out.splitlines()
    assert lines[0] == "blk"
    assert DENIED not in lines[1]  # read: allowed
    assert DENIED in lines[2]  # write: not in "r"


def test_device_flag_with_a_directory_maps_every_node_below(pd, scratch):
    d = scratch / "devdir"
    (d / "sub").mkdir(parents=True)
    os.mknod(d / "a", stat.S_IFBLK | 0o600, os.makedev(7, 0))
    os.mknod(d / "sub" / "b", stat.S_IFCHR | 0o600, os.makedev(1, 3))
    (d / "plain").write_text("not a device")
    out = _run(pd, "--device", f"{d}:/dev/mine", "busybox", "sh", "-c",
               "ls /dev/mine /dev/mine/sub; stat -c %t:%T /dev/mine/a /dev/mine/sub/b")  # fmt: skip
    assert "plain" not in out
    assert out.split()[-2:] == ["7:0", "1:3"]


def test_device_cgroup_rule_allows_without_a_node(pd):
    out = _run(pd, "--device-cgroup-rule", "b 7:* r", "busybox", "sh", "-c",
               "mknod /dev/l b 7 0; " + _open("/dev/l") + _open("/dev/l", ">"))  # fmt: skip
    read, write = out.splitlines()
    assert DENIED not in read and DENIED in write


def test_privileged_gets_the_hosts_devices_and_writable_cgroups(pd, loopdev):
    host_nodes = sorted(n for n in os.listdir("/dev")
                        if stat.S_ISBLK(os.lstat(f"/dev/{n}").st_mode))  # fmt: skip
    # a child cgroup of the container's own: at the top on v2, in a hierarchy on v1
    sub = "/sys/fs/cgroup/pdtest-x" if detect().mode == "v2" else "/sys/fs/cgroup/pids/pdtest-x"
    script = "mknod /dev/l b 7 0; " + _open("/dev/l", ">")
    script += f"ls /dev; mkdir {sub} && rmdir {sub} && echo w"
    out = _run(pd, "--privileged", "busybox", "sh", "-c", script)
    assert DENIED not in out
    assert set(host_nodes) <= set(out.split())
    assert out.splitlines()[-1] == "w"


def test_device_flags_recorded_in_inspect(pd, loopdev):
    cid = pd.out("create", "--device", f"{loopdev}:/dev/x:rw", "--device-cgroup-rule",
                 "c 1:3 rwm", "busybox", "true").strip()  # fmt: skip
    hc = json.loads(pd.out("inspect", cid))[0]["HostConfig"]
    assert hc["Devices"] == [
        {"PathOnHost": loopdev, "PathInContainer": "/dev/x", "CgroupPermissions": "rw"}
    ]
    assert hc["DeviceCgroupRules"] == ["c 1:3 rwm"]
    pd("rm", cid, check=True)


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        ("--device", "/dev/pdtest-missing",
         'error gathering device information while adding custom device '
         '"/dev/pdtest-missing": no such file or directory'),
        ("--device", "/etc/hostname",
         'error gathering device information while adding custom device "/etc/hostname": '
         "not a device node"),
        ("--device", "/dev/null:relative", "relative is not an absolute path"),
        ("--device", "/dev/null:/tmp/n", "/tmp/n: the container path of a device must be "
         "under /dev"),
        ("--device", "/dev/null:/dev/n:rwx", "bad mode specified: rwx"),
        ("--device", "/dev/null:/dev/n:rw:x", "bad format for path: /dev/null:/dev/n:rw:x"),
        ("--device", ":/dev/n", "bad format for path: :/dev/n"),
        ("--device-cgroup-rule", "c 1:3",
         "invalid device cgroup format 'c 1:3'"),
        ("--device-cgroup-rule", "x 1:3 rwm", "invalid device cgroup format 'x 1:3 rwm'"),
        ("--cgroupns", "shared", "--cgroupns: invalid CGROUP mode"),
    ],
)  # fmt: skip
def test_bad_device_flags_are_125_before_anything_is_made(pd, flag, value, message):
    res = pd("run", "--rm", flag, value, "busybox", "true")
    err = res.stderr.decode()
    assert res.returncode == 125
    assert message in err and len(err.strip().splitlines()) == 1, err
    assert pd.out("ps", "-aq") == ""
