"""Real cgroups on a pure cgroup v2 host (the QEMU guests of tests/guests; skipped on this
hybrid host): the v2 forms of the placement, resource, statistics, freezer and kill tests
that test_cgroupfs_create_attach/resources_real/freeze_kill_real run on v1."""

from __future__ import annotations

import os
import posixpath
import select
import signal
import subprocess
from pathlib import Path

import pytest
from pydock.cgroupfs import Cgroup, CgroupError, Layout, own_paths
from test_cgroupfs_freeze_kill_real import PARENT_OF_TICKER, TICKER, gone, state, ticks

pytestmark = pytest.mark.guest

MiB = 1 << 20

# Forks sleepers until fork fails, prints how many it made and why it stopped, waits for a
# line, then reaps them (the pids test of test_cgroupfs_resources_real).
FORKER = (
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


def first_tick(child, timeout: float = 30) -> bool:
    """True once the ticker wrote its first byte: a guest under TCG starts it slowly, so
    the first window of ticks() cannot be the one that proves it runs."""
    return bool(select.select([child.proc.stdout.fileno()], [], [], timeout)[0])


def rd(d: str, f: str) -> str:
    return Path(f"{d}/{f}").read_text().strip()


def test_detect_reports_v2_with_one_hierarchy(v2: Layout):
    assert v2.mode == "v2"
    assert v2.hierarchies == {"unified": "/sys/fs/cgroup"}
    assert v2.roots == {"unified": "/"}
    assert set(own_paths()) == {"unified"}


def test_create_delegates_controllers_to_the_leaf(v2: Layout, make_cgroup, name):
    own = own_paths()["unified"]
    cg = make_cgroup(f"{name}/c")
    leaf = cg.paths["unified"]
    assert leaf == posixpath.normpath(f"/sys/fs/cgroup/{own}/{name}/c")
    mid = posixpath.dirname(leaf)
    assert cg.created == (mid, leaf)
    # The intermediate cgroup made here delegates what its parent offers (cgroup-v2.rst
    # "Controlling Controllers"); the leaf delegates nothing, it holds the processes.
    offered = set(rd(posixpath.dirname(mid), "cgroup.subtree_control").split())
    assert {"cpu", "cpuset", "io", "memory", "pids"} <= offered
    assert set(rd(mid, "cgroup.subtree_control").split()) == offered
    assert set(rd(leaf, "cgroup.controllers").split()) == offered
    assert rd(leaf, "cgroup.subtree_control") == ""


def test_attach_destroy_and_live_member(v2: Layout, make_cgroup):
    cg = make_cgroup()
    p = subprocess.Popen(["sleep", "60"])
    try:
        cg.attach(p.pid)
        assert cg.procs() == [p.pid]
        assert own_paths(p.pid)["unified"] == cg.paths["unified"].removeprefix("/sys/fs/cgroup")
        with pytest.raises(CgroupError, match=rf"still has members: {p.pid}$"):
            cg.destroy()
    finally:
        os.kill(p.pid, 9)
        p.wait()
    made = cg.created
    cg.destroy()
    assert not any(os.path.exists(d) for d in made)
    assert not cg.exists()


def test_destroy_removes_child_cgroups_made_inside_the_leaf(v2: Layout, make_cgroup):
    cg = make_cgroup()
    os.makedirs(f"{cg.paths['unified']}/inner/deeper")  # as a container with a cgroupns may
    cg.destroy()
    assert not cg.exists()


def test_memory_limit_swap_and_reservation(v2: Layout, make_cgroup):
    cg = make_cgroup()
    d = cg.paths["unified"]
    cg.apply({"memory": {"limit": 64 * MiB, "swap": 128 * MiB, "reservation": 32 * MiB}})
    assert rd(d, "memory.max") == str(64 * MiB)
    # runtime-spec swap is v1's memory+swap; v2's memory.swap.max is the swap alone.
    assert rd(d, "memory.swap.max") == str(64 * MiB)
    assert rd(d, "memory.low") == str(32 * MiB)
    cg.apply({"memory": {"limit": -1}})
    assert (rd(d, "memory.max"), rd(d, "memory.swap.max")) == ("max", "max")
    assert cg.stats().memory_limit is None
    cg.apply({"memory": {"limit": 256 * MiB, "swap": 256 * MiB}})
    assert (rd(d, "memory.max"), rd(d, "memory.swap.max")) == (str(256 * MiB), "0")
    assert cg.stats().memory_limit == 256 * MiB
    with pytest.raises(CgroupError, match=r"memory.swap .* must be >= memory.limit"):
        cg.apply({"memory": {"limit": 64 * MiB, "swap": 32 * MiB}})


def test_cpu_weight_max_and_cpuset(v2: Layout, make_cgroup):
    cg = make_cgroup()
    d = cg.paths["unified"]
    cg.apply({"cpu": {"shares": 512, "quota": 50000, "period": 200000, "cpus": "0", "mems": "0"}})
    assert rd(d, "cpu.weight") == "20"  # runc's conversion of 512 shares
    assert rd(d, "cpu.max") == "50000 200000"
    assert rd(d, "cpuset.cpus") == "0"
    assert rd(d, "cpuset.cpus.effective") == "0"
    assert rd(d, "cpuset.mems") == "0"
    cg.apply({"cpu": {"quota": -1}})
    assert rd(d, "cpu.max") == "max 200000"


def test_io_weight(v2: Layout, make_cgroup):
    cg = make_cgroup()
    d = cg.paths["unified"]
    cg.apply({"blockIO": {"weight": 300}})
    if os.path.exists(f"{d}/io.bfq.weight"):
        assert rd(d, "io.bfq.weight").split()[-1] == "300"
    else:
        assert rd(d, "io.weight") == "default 2930"  # blkio 300 on io.weight's scale


def test_pids_limit_stops_forks(v2: Layout, make_cgroup, spawn):
    cg = make_cgroup()
    cg.apply({"pids": {"limit": 5}})
    assert rd(cg.paths["unified"], "pids.max") == "5"
    child = spawn(FORKER)
    cg.attach(child.pid)
    child.go()
    count, err = child.line().split()
    assert (int(count), err) == (4, "BlockingIOError")
    st = cg.stats()
    assert (st.pids_current, st.pids_limit) == (5, 5)
    child.go()
    assert child.wait() == 0
    assert int(rd(cg.paths["unified"], "pids.events").split()[1]) >= 1


def test_stats_after_allocating(v2: Layout, make_cgroup, spawn):
    cg = make_cgroup()
    child = spawn(
        "import os\n"
        "buf = bytearray(48 << 20)\n"
        "for i in range(0, len(buf), 4096):\n"
        "    buf[i] = 1\n"
        "with open('/var/tmp/pdt-guest-io', 'wb') as f:\n"
        "    f.write(b'x' * (1 << 20))\n"
        "    os.fsync(f.fileno())\n"
        "print('ready', flush=True)\n"
        "sys.stdin.readline()\n"
    )
    cg.attach(child.pid)
    child.go()
    assert child.line() == "ready"
    st = cg.stats()
    assert st.memory_usage is not None and st.memory_usage >= 48 * MiB
    assert st.memory_max_usage is not None and st.memory_max_usage >= st.memory_usage
    assert st.memory_limit is None
    assert st.oom_kills == 0
    assert st.cpu_usage_ns is not None and st.cpu_usage_ns > 1_000_000
    assert st.pids_current == 1 and st.pids_limit is None
    assert st.blkio_read_bytes is not None and st.blkio_write_bytes is not None
    child.go()
    assert child.wait() == 0
    os.unlink("/var/tmp/pdt-guest-io")


def test_memory_limit_oom_kills_and_counts(v2: Layout, make_cgroup, spawn):
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


def test_unified_raw_files(v2: Layout, make_cgroup):
    cg = make_cgroup()
    cg.apply({"unified": {"memory.high": str(96 * MiB), "pids.max": "7"}})
    assert rd(cg.paths["unified"], "memory.high") == str(96 * MiB)
    assert rd(cg.paths["unified"], "pids.max") == "7"
    with pytest.raises(CgroupError, match="refusing to write 'cgroup.procs'"):
        cg.apply({"unified": {"cgroup.procs": "1"}})


def test_freeze_and_thaw(v2: Layout, make_cgroup, spawn):
    cg = make_cgroup()
    child = spawn(TICKER)
    cg.attach(child.pid)
    child.go()
    assert first_tick(child)
    assert ticks(child, 0.2) > 0
    assert not cg.frozen()
    cg.freeze()
    assert cg.frozen()
    assert "frozen 1" in rd(cg.paths["unified"], "cgroup.events")
    ticks(child, 0.05)
    assert ticks(child, 0.3) == 0
    assert state(child.pid) in ("S", "D")
    cg.thaw()
    assert not cg.frozen()
    assert first_tick(child)


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_kill_reaches_grandchildren(sig, v2: Layout, make_cgroup, spawn):
    cg = make_cgroup()
    child = spawn(PARENT_OF_TICKER)
    cg.attach(child.pid)
    child.go()
    grandchild = int(child.line())
    assert sorted(cg.procs()) == sorted([child.pid, grandchild])
    cg.kill(sig)
    assert child.wait(10) == -sig
    assert gone(grandchild)
    assert not cg.frozen()
    cg.destroy()
    assert not cg.exists()


def test_absolute_cgroup_parent(v2: Layout, name):
    own = own_paths()["unified"].rstrip("/")
    cg = Cgroup(f"{own}/{name}/c")  # --cgroup-parent style: from the hierarchy's root
    cg.create()
    try:
        assert cg.paths["unified"] == f"/sys/fs/cgroup{own}/{name}/c"
        cg.apply({"memory": {"limit": 64 * MiB}})
        assert rd(cg.paths["unified"], "memory.max") == str(64 * MiB)
    finally:
        cg.destroy()
    assert not cg.exists()
