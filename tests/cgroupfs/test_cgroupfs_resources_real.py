"""OCI resources applied to real v1 cgroups on this hybrid host, checked by reading the
kernel's files back and by watching children hit the limits."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest
from pydock.cgroupfs import CgroupError, Layout

MiB = 1 << 20


def rd(d: str, f: str) -> str:
    return Path(f"{d}/{f}").read_text().strip()


def test_memory_limit_swap_reservation(hybrid: Layout, make_cgroup):
    cg = make_cgroup()
    d = cg.paths["memory"]
    cg.apply({"memory": {"limit": 64 * MiB, "swap": 128 * MiB, "reservation": 32 * MiB}})
    assert rd(d, "memory.limit_in_bytes") == str(64 * MiB)
    # runtime-spec swap = memory+swap, i.e. v1 memsw.
    assert rd(d, "memory.memsw.limit_in_bytes") == str(128 * MiB)
    assert rd(d, "memory.soft_limit_in_bytes") == str(32 * MiB)
    # Shrinking both, then growing both past the old memsw: the write order must adapt.
    cg.apply({"memory": {"limit": 16 * MiB, "swap": 16 * MiB}})
    assert (rd(d, "memory.limit_in_bytes"), rd(d, "memory.memsw.limit_in_bytes")) == (
        str(16 * MiB),
        str(16 * MiB),
    )
    cg.apply({"memory": {"limit": 256 * MiB, "swap": 512 * MiB}})
    assert (rd(d, "memory.limit_in_bytes"), rd(d, "memory.memsw.limit_in_bytes")) == (
        str(256 * MiB),
        str(512 * MiB),
    )
    assert cg.stats().memory_limit == 256 * MiB
    with pytest.raises(CgroupError, match=r"memory.swap .* must be >= memory.limit"):
        cg.apply({"memory": {"limit": 64 * MiB, "swap": 32 * MiB}})
    with pytest.raises(CgroupError, match=r"Invalid argument .*set memory.swap as well\)$"):
        cg.apply({"memory": {"limit": 1024 * MiB}})


def test_cpu_shares_quota_period_and_cpuset(hybrid: Layout, make_cgroup):
    cg = make_cgroup()
    cg.apply({"cpu": {"shares": 512, "quota": 50000, "period": 200000, "cpus": "0", "mems": "0"}})
    assert rd(cg.paths["cpu"], "cpu.shares") == "512"
    assert rd(cg.paths["cpu"], "cpu.cfs_quota_us") == "50000"
    assert rd(cg.paths["cpu"], "cpu.cfs_period_us") == "200000"
    assert rd(cg.paths["cpuset"], "cpuset.cpus") == "0"
    assert rd(cg.paths["cpuset"], "cpuset.mems") == "0"
    cg.apply({"cpu": {"quota": -1}})
    assert rd(cg.paths["cpu"], "cpu.cfs_quota_us") == "-1"


def test_pids_limit_stops_forks(hybrid: Layout, make_cgroup, spawn):
    cg = make_cgroup()
    cg.apply({"pids": {"limit": 5}})
    assert rd(cg.paths["pids"], "pids.max") == "5"
    # The child forks sleepers until fork fails; it counts itself, so 4 fit.
    child = spawn(
        "import os, signal\n"
        "kids = []\n"
        "err = ''\n"
        "for _ in range(20):\n"
        "    try:\n"
        "        pid = os.fork()\n"
        "    except OSError as e:\n"
        "        err = e.__class__.__name__\n"
        "        break\n"
        "    if pid == 0:\n"
        "        signal.pause()\n"
        "        os._exit(0)\n"
        "    kids.append(pid)\n"
        "print(len(kids), err, flush=True)\n"
        "sys.stdin.readline()\n"
        "for k in kids:\n"
        "    os.kill(k, 9)\n"
        "    os.waitpid(k, 0)\n"
    )
    cg.attach(child.pid)
    child.go()
    count, err = child.line().split()
    assert (int(count), err) == (4, "BlockingIOError")
    st = cg.stats()
    assert (st.pids_current, st.pids_limit) == (5, 5)
    child.go()
    assert child.wait() == 0
    assert int(rd(cg.paths["pids"], "pids.events").split()[1]) >= 1  # "max N" fork failures


def test_blkio_weight(hybrid: Layout, make_cgroup):
    cg = make_cgroup()
    d = cg.paths["blkio"]
    files = [f for f in ("blkio.weight", "blkio.bfq.weight") if os.path.exists(f"{d}/{f}")]
    if not files:
        pytest.skip("no CFQ/BFQ blkio weight file on this kernel")
    cg.apply({"blockIO": {"weight": 300}})
    assert rd(d, files[0]).split()[-1] == "300"


def test_device_rules_deny_all_then_allow(hybrid: Layout, make_cgroup, spawn):
    cg = make_cgroup()
    cg.apply(
        {
            "devices": [
                {"allow": False, "access": "rwm"},
                {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
                {"allow": True, "type": "c", "major": 1, "minor": 5, "access": "r"},
            ]
        }
    )
    assert rd(cg.paths["devices"], "devices.list").splitlines() == ["c 1:3 rwm", "c 1:5 r"]
    child = spawn(
        "import os\n"
        "def tryopen(p, fl):\n"
        "    try:\n"
        "        os.close(os.open(p, fl))\n"
        "        return 'ok'\n"
        "    except OSError as e:\n"
        "        return str(e.errno)\n"
        "print(tryopen('/dev/null', os.O_RDWR), tryopen('/dev/zero', os.O_RDONLY),\n"
        "      tryopen('/dev/zero', os.O_WRONLY), tryopen('/dev/full', os.O_RDONLY))\n"
    )
    cg.attach(child.pid)
    child.go()
    assert child.line().split() == ["ok", "ok", str(errno.EPERM), str(errno.EPERM)]
    assert child.wait() == 0


def test_stats_after_allocating(hybrid: Layout, make_cgroup, spawn):
    cg = make_cgroup()
    child = spawn(
        "buf = bytearray(48 << 20)\n"
        "for i in range(0, len(buf), 4096):\n"
        "    buf[i] = 1\n"
        "print('ready', flush=True)\n"
        "sys.stdin.readline()\n"
    )
    cg.attach(child.pid)
    child.go()
    assert child.line() == "ready"
    st = cg.stats()
    assert st.memory_usage is not None and st.memory_usage >= 48 * MiB
    assert st.memory_max_usage is not None and st.memory_max_usage >= st.memory_usage
    assert st.memory_limit is None  # unlimited
    assert st.oom_kills == 0
    assert st.cpu_usage_ns is not None and st.cpu_usage_ns > 1_000_000
    assert st.pids_current == 1 and st.pids_limit is None
    assert st.blkio_read_bytes is not None and st.blkio_write_bytes is not None
    child.go()
    assert child.wait() == 0


def test_memory_limit_oom_kills_and_counts(hybrid: Layout, make_cgroup, spawn):
    cg = make_cgroup()
    cg.apply({"memory": {"limit": 32 * MiB, "swap": 32 * MiB}})  # no swap to escape into
    child = spawn(
        "buf = bytearray(128 << 20)\nfor i in range(0, len(buf), 4096):\n    buf[i] = 1\n"
    )
    cg.attach(child.pid)
    child.go()
    assert child.wait() == -9
    st = cg.stats()
    assert st.oom_kills is not None and st.oom_kills >= 1
    assert st.memory_max_usage is not None and st.memory_max_usage <= 32 * MiB


def test_unsupported_fields_raise_or_warn(hybrid: Layout, make_cgroup):
    cg = make_cgroup()
    res = {"pids": {"limit": 10}, "rdma": {"mlx5_0": {"hcaHandles": 3}}}
    with pytest.raises(CgroupError, match="^rdma is not supported"):
        cg.apply(res)
    assert cg.apply(res, strict=False) == ["rdma is not supported by this cgroup backend"]
    assert rd(cg.paths["pids"], "pids.max") == "10"
    assert cg.apply({"unified": {"memory.high": "1"}}, strict=False) == [
        "unified (raw cgroup v2 files) needs a cgroup v2 host"
    ]
