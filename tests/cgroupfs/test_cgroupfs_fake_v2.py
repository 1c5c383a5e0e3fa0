"""The cgroup v2 backend on a FAKE v2 tree (this hybrid host has no v2 controllers).

fake_v2 is a plain directory laid out like a cgroup2 mount. FakeV2Cgroup plays the kernel's
part of mkdir/rmdir: a new directory gets the core files plus the files of the controllers
its parent enables in cgroup.subtree_control, and rmdir refuses while cgroup.procs has
members or child cgroups exist. Interface files start EMPTY, so reading one back shows
exactly what the library wrote (the kernel parses one write; a plain file would keep the
tail of an older, longer value). Everything else is the real library code. Stats tests fill
files with text in the kernel's formats (Documentation/admin-guide/cgroup-v2.rst).
"""

from __future__ import annotations

import errno
import os
import signal
from pathlib import Path

import pytest
from pydock.cgroupfs import (
    Cgroup,
    CgroupError,
    Layout,
    blkio_weight_to_io_weight,
    detect,
    shares_to_weight,
    swap_to_v2,
)

MiB = 1 << 20
CORE = ("cgroup.procs", "cgroup.controllers", "cgroup.subtree_control", "cgroup.events",
        "cgroup.freeze", "cgroup.kill", "cpu.stat")  # fmt: skip
CONTROLLER_FILES = {
    "memory": ("memory.max", "memory.swap.max", "memory.low", "memory.current",
               "memory.peak", "memory.events"),
    "cpu": ("cpu.weight", "cpu.max", "cpu.max.burst", "cpu.idle"),
    "cpuset": ("cpuset.cpus", "cpuset.mems"),
    "pids": ("pids.max", "pids.current"),
    "io": ("io.weight", "io.stat"),
}  # fmt: skip
OWN = "/system.slice/pdtest-own.service"


def fake_v2_mkdir(path: str, mode: int = 0o777) -> None:
    """What the kernel does on mkdir in cgroup2, with plain files."""
    os.mkdir(path, mode)
    enabled = Path(os.path.dirname(path), "cgroup.subtree_control").read_text().split()
    for f in CORE:
        Path(path, f).touch()
    Path(path, "cgroup.controllers").write_text(" ".join(enabled))
    for c in enabled:
        for f in CONTROLLER_FILES[c.lstrip("+")]:
            Path(path, f).touch()


def fake_v2_rmdir(path: str) -> None:
    """The kernel's rmdir rules: EBUSY with members or child cgroups, else gone."""
    busy = Path(path, "cgroup.procs").read_text().split() or any(
        e.is_dir() for e in os.scandir(path)
    )
    if busy:
        raise OSError(errno.EBUSY, os.strerror(errno.EBUSY), path)
    for e in os.scandir(path):
        os.unlink(e.path)
    os.rmdir(path)


def fake_v2_write(path: str, value: str) -> None:
    """The kernel's side of the writes whose outcome is a cgroup v2 rule: subtree_control
    refuses (EBUSY) while the cgroup has members of its own (no internal processes) and
    gives existing children the enabled controllers' files; a pid written to cgroup.procs
    leaves its old cgroup (here: the parent, the only move the library makes)."""
    d, name = os.path.split(path)
    if name == "cgroup.subtree_control":
        if Path(d, "cgroup.procs").read_text().split():
            raise CgroupError(f"cannot write {value!r} to {path}: busy") from OSError(
                errno.EBUSY, os.strerror(errno.EBUSY), path
            )
        on = Path(path).read_text().split() + [v.lstrip("+") for v in value.split()]
        Path(path).write_text(" ".join(dict.fromkeys(on)))
        for child in (e.path for e in os.scandir(d) if e.is_dir()):
            Path(child, "cgroup.controllers").write_text(" ".join(dict.fromkeys(on)))
            for c in on:
                for f in CONTROLLER_FILES[c]:
                    Path(child, f).touch()
    elif name == "cgroup.procs":
        old = Path(os.path.dirname(d), "cgroup.procs")
        if old.exists():
            old.write_text("\n".join(p for p in old.read_text().split() if p != value))
        Path(path).write_text(Path(path).read_text() + value + "\n")
    else:
        Path(path).write_text(value)


class FakeV2Cgroup(Cgroup):
    _mkdir = staticmethod(fake_v2_mkdir)
    _rmdir = staticmethod(fake_v2_rmdir)
    _write = staticmethod(fake_v2_write)


@pytest.fixture
def fake_v2(scratch: Path) -> tuple[Layout, Path]:
    """A fake_v2 mount with the test's "own" cgroup delegating ``delegated`` controllers."""
    root = scratch / "fake_v2"
    root.mkdir()
    (root / "cgroup.subtree_control").write_text("cpuset cpu io memory pids")
    own = root / OWN.lstrip("/")
    own.mkdir(parents=True)
    (own / "cgroup.controllers").write_text("cpuset cpu io memory pids")
    (own / "cgroup.subtree_control").write_text("cpuset cpu io memory pids")
    mountinfo = scratch / "fake_v2_mountinfo"
    mountinfo.write_text(f"40 23 0:38 / {root} rw,relatime - cgroup2 cgroup2 rw,nsdelegate\n")
    return detect(str(mountinfo)), root


def fake_v2_cgroup(fake_v2, path: str = "pydock/pdtest-c1") -> FakeV2Cgroup:
    layout, _ = fake_v2
    return FakeV2Cgroup(path, layout, own={"unified": OWN})


def rd(cg: Cgroup, f: str) -> str:
    return Path(cg.paths["unified"], f).read_text()


def test_fake_v2_layout(fake_v2) -> None:
    layout, root = fake_v2
    assert layout.mode == "v2"
    assert layout.hierarchies == {"unified": str(root)}


def test_fake_v2_create_delegates_controllers_in_created_parents_only(fake_v2) -> None:
    _, root = fake_v2
    cg = fake_v2_cgroup(fake_v2)
    assert cg.paths == {"unified": f"{root}{OWN}/pydock/pdtest-c1"}
    cg.create()
    mid = Path(f"{root}{OWN}/pydock")
    assert cg.created == (str(mid), cg.paths["unified"])
    assert (mid / "cgroup.subtree_control").read_text() == "+cpuset +cpu +io +memory +pids"
    # The own cgroup (not ours) and the leaf (holds processes) are left alone.
    assert Path(f"{root}{OWN}/cgroup.subtree_control").read_text() == "cpuset cpu io memory pids"
    assert rd(cg, "cgroup.subtree_control") == ""
    assert os.path.exists(f"{cg.paths['unified']}/memory.max")


def test_fake_v2_partial_delegation_gives_clear_error(fake_v2) -> None:
    _, root = fake_v2
    Path(f"{root}{OWN}/cgroup.subtree_control").write_text("memory pids")
    cg = fake_v2_cgroup(fake_v2)
    cg.create()
    assert Path(f"{root}{OWN}/pydock/cgroup.subtree_control").read_text() == "+memory +pids"
    cg.apply({"pids": {"limit": 7}})
    assert rd(cg, "pids.max") == "7"
    with pytest.raises(CgroupError, match=r"cpu.weight: the cpu controller is not enabled"):
        cg.apply({"cpu": {"shares": 1024}})


def _undelegated_own(root: Path, procs: list[int]) -> Path:
    """The caller's own cgroup as a systemd scope or service leaves it: controllers
    available, none delegated, ``procs`` as members."""
    own = Path(f"{root}{OWN}")
    (own / "cgroup.subtree_control").write_text("")
    (own / "cgroup.procs").write_text("".join(f"{p}\n" for p in procs))
    return own


def test_fake_v2_alone_in_its_cgroup_moves_itself_into_a_leaf_then_delegates(fake_v2) -> None:
    _, root = fake_v2
    own = _undelegated_own(root, [os.getpid()])
    cg = fake_v2_cgroup(fake_v2, "pdtest-c1")
    cg.create()
    leaf = own / "engine.leaf"
    assert (leaf / "cgroup.procs").read_text().split() == [str(os.getpid())]
    assert (own / "cgroup.procs").read_text().split() == []
    assert (own / "cgroup.subtree_control").read_text() == "cpuset cpu io memory pids"
    cg.apply({"memory": {"limit": 64 * MiB}, "pids": {"limit": 9}})
    assert (rd(cg, "memory.max"), rd(cg, "pids.max")) == (str(64 * MiB), "9")
    # from inside the leaf, the caller's cgroup is still the one it was started in
    again = FakeV2Cgroup("pdtest-c1", fake_v2[0], own={"unified": f"{OWN}/engine.leaf"})
    assert again.paths == cg.paths
    cg.destroy()
    assert leaf.is_dir()  # it still holds this process: left, like systemd's init.scope


def test_fake_v2_others_in_the_cgroup_stay_and_a_limit_says_why(fake_v2) -> None:
    _, root = fake_v2
    own = _undelegated_own(root, [1, os.getpid()])  # e.g. the login shell and pydock
    cg = fake_v2_cgroup(fake_v2, "pdtest-c1")
    cg.create()
    assert not (own / "engine.leaf").exists()
    assert (own / "cgroup.procs").read_text().split() == ["1", str(os.getpid())]
    with pytest.raises(CgroupError, match=r"memory.max: .*no-internal-processes rule; start "
                       r"pydock in a cgroup of its own.*--cgroup-parent"):  # fmt: skip
        cg.apply({"memory": {"limit": 64 * MiB}})
    cg.destroy()


def test_fake_v2_an_existing_parent_without_members_is_made_to_delegate(fake_v2) -> None:
    """A --cgroup-parent that exists and has no members of its own: its controllers are
    enabled, as runc enables them along the path."""
    _, root = fake_v2
    parent = root / "pdtest-parent"
    parent.mkdir()
    for f in CORE:
        (parent / f).touch()
    (parent / "cgroup.controllers").write_text("memory pids")
    cg = FakeV2Cgroup("/pdtest-parent/pdtest-c1", fake_v2[0])
    cg.create()
    assert (parent / "cgroup.subtree_control").read_text() == "memory pids"
    cg.apply({"pids": {"limit": 4}})
    assert rd(cg, "pids.max") == "4"
    cg.destroy()


def test_fake_v2_memory_files(fake_v2) -> None:
    cg = fake_v2_cgroup(fake_v2)
    cg.create()
    cg.apply({"memory": {"limit": 256 * MiB, "swap": 384 * MiB, "reservation": 64 * MiB}})
    assert rd(cg, "memory.max") == str(256 * MiB)
    assert rd(cg, "memory.swap.max") == str(128 * MiB)  # swap - limit (runtime-spec on v2)
    assert rd(cg, "memory.low") == str(64 * MiB)


def test_fake_v2_unlimited_memory_unlimits_swap(fake_v2) -> None:
    cg = fake_v2_cgroup(fake_v2)
    cg.create()
    cg.apply({"memory": {"limit": -1}})
    assert (rd(cg, "memory.max"), rd(cg, "memory.swap.max")) == ("max", "max")


def test_swap_conversion() -> None:
    assert swap_to_v2(None, None) is None
    assert swap_to_v2(0, 100) is None
    assert swap_to_v2(300, 100) == "200"
    assert swap_to_v2(100, 100) == "0"
    assert swap_to_v2(-1, 100) == "max"
    assert swap_to_v2(None, -1) == "max"
    with pytest.raises(CgroupError, match="must be >= memory.limit"):
        swap_to_v2(50, 100)
    with pytest.raises(CgroupError, match="needs a memory.limit"):
        swap_to_v2(100, None)


def test_shares_and_blkio_weight_conversions() -> None:
    # The published points of the runc/crun mapping.
    assert shares_to_weight(2) == 1
    assert shares_to_weight(1024) == 39
    assert shares_to_weight(262144) == 10000
    assert blkio_weight_to_io_weight(10) == 1
    assert blkio_weight_to_io_weight(500) == 4950
    assert blkio_weight_to_io_weight(1000) == 10000


def test_fake_v2_cpu_files(fake_v2) -> None:
    cg = fake_v2_cgroup(fake_v2)
    cg.create()
    cg.apply(
        {"cpu": {"shares": 1024, "quota": 50000, "period": 100000, "cpus": "0-1", "mems": "0"}}
    )
    assert rd(cg, "cpu.weight") == "39"
    assert rd(cg, "cpu.max") == "50000 100000"
    assert rd(cg, "cpuset.cpus") == "0-1"
    assert rd(cg, "cpuset.mems") == "0"


@pytest.mark.parametrize(
    "cpu,want", [({"quota": -1, "period": 100000}, "max 100000"), ({"quota": 20000}, "20000")]
)
def test_fake_v2_cpu_max_forms(fake_v2, cpu, want) -> None:
    cg = fake_v2_cgroup(fake_v2)
    cg.create()
    cg.apply({"cpu": cpu})
    assert rd(cg, "cpu.max") == want


@pytest.mark.parametrize("limit,want", [(100, "100"), (-1, "max")])
def test_fake_v2_pids_max(fake_v2, limit, want) -> None:
    cg = fake_v2_cgroup(fake_v2)
    cg.create()
    cg.apply({"pids": {"limit": limit}})
    assert rd(cg, "pids.max") == want


def test_fake_v2_io_weight_iocost_and_bfq(fake_v2) -> None:
    cg = fake_v2_cgroup(fake_v2)
    cg.create()
    cg.apply({"blockIO": {"weight": 500}})
    assert rd(cg, "io.weight") == "default 4950"
    Path(cg.paths["unified"], "io.bfq.weight").touch()  # the BFQ scheduler is in use
    cg.apply({"blockIO": {"weight": 300}})
    assert rd(cg, "io.bfq.weight") == "300"
    assert rd(cg, "io.weight") == "default 4950"


def test_fake_v2_devices_go_through_bpf_not_files(fake_v2) -> None:
    """v2 device rules are a BPF program attached to the cgroup directory (devfilter.py,
    tested on the real cgroup2 mount in test_cgroupfs_devices_v2.py); a plain directory
    refuses the attach, which is one line naming it, not a file write nor a warning."""
    cg = fake_v2_cgroup(fake_v2)
    cg.create()
    rules = [{"allow": False, "access": "rwm"}, {"allow": True, "type": "c", "major": 1,
             "minor": 3, "access": "rwm"}]  # fmt: skip
    d = cg.paths["unified"]
    with pytest.raises(CgroupError, match=rf"^devices: {d}: bpf BPF_PROG_QUERY: ") as exc:
        cg.apply({"devices": rules}, strict=False)
    assert "\n" not in str(exc.value)


def test_fake_v2_oom_killer_switch_is_reported(fake_v2) -> None:
    cg = fake_v2_cgroup(fake_v2)
    cg.create()
    with pytest.raises(CgroupError, match="disableOOMKiller is not supported on cgroup v2"):
        cg.apply({"memory": {"disableOOMKiller": True}})


def test_fake_v2_unified_map(fake_v2) -> None:
    cg = fake_v2_cgroup(fake_v2)
    cg.create()
    Path(cg.paths["unified"], "memory.high").touch()
    cg.apply({"unified": {"memory.high": "1048576"}})
    assert rd(cg, "memory.high") == "1048576"
    with pytest.raises(CgroupError, match="refusing"):
        cg.apply({"unified": {"cgroup.procs": "1"}})


def test_fake_v2_stats_parsing(fake_v2) -> None:
    cg = fake_v2_cgroup(fake_v2)
    cg.create()
    d = Path(cg.paths["unified"])
    (d / "memory.current").write_text("52428800\n")
    (d / "memory.max").write_text("max\n")
    (d / "memory.peak").write_text("60000000\n")
    (d / "memory.events").write_text("low 0\nhigh 0\nmax 12\noom 3\noom_kill 2\noom_group_kill 0\n")
    (d / "cpu.stat").write_text("usage_usec 1234567\nuser_usec 1000000\nsystem_usec 234567\n")
    (d / "pids.current").write_text("4\n")
    (d / "pids.max").write_text("100\n")
    (d / "io.stat").write_text(
        "8:0 rbytes=4096 wbytes=8192 rios=1 wios=2 dbytes=0 dios=0\n"
        "253:1 rbytes=100 wbytes=0 rios=1 wios=0 dbytes=0 dios=0\n"
    )
    st = cg.stats()
    assert (st.memory_usage, st.memory_limit, st.memory_max_usage) == (52428800, None, 60000000)
    assert st.oom_kills == 2
    assert st.cpu_usage_ns == 1234567000
    assert (st.pids_current, st.pids_limit) == (4, 100)
    assert (st.blkio_read_bytes, st.blkio_write_bytes) == (4196, 8192)


def test_fake_v2_stats_without_controllers(fake_v2) -> None:
    _, root = fake_v2
    Path(f"{root}{OWN}/cgroup.subtree_control").write_text("")
    cg = fake_v2_cgroup(fake_v2)
    cg.create()
    Path(cg.paths["unified"], "cpu.stat").write_text("usage_usec 5\n")
    st = cg.stats()
    assert st.cpu_usage_ns == 5000
    assert st.memory_usage is st.oom_kills is st.pids_current is st.blkio_read_bytes is None


def test_fake_v2_attach_procs_destroy(fake_v2) -> None:
    _, root = fake_v2
    cg = fake_v2_cgroup(fake_v2)
    cg.create()
    cg.attach(os.getpid())
    assert rd(cg, "cgroup.procs") == str(os.getpid())
    assert cg.procs() == [os.getpid()]
    with pytest.raises(CgroupError, match=f"still has members: {os.getpid()}$"):
        cg.destroy()
    Path(cg.paths["unified"], "cgroup.procs").write_text("")  # the member "left"
    cg.destroy()
    assert not os.path.exists(f"{root}{OWN}/pydock")
    assert os.path.isdir(f"{root}{OWN}")


def test_fake_v2_freeze_waits_for_frozen_event(fake_v2) -> None:
    cg = fake_v2_cgroup(fake_v2)
    cg.create()
    events = Path(cg.paths["unified"], "cgroup.events")
    events.write_text("populated 1\nfrozen 0\n")
    with pytest.raises(CgroupError, match="did not freeze within 0.1s"):
        cg.freeze(timeout=0.1)
    assert rd(cg, "cgroup.freeze") == "0"  # gave up: thawed again
    events.write_text("populated 1\nfrozen 1\n")  # as the kernel reports once all stopped
    cg.freeze()
    assert rd(cg, "cgroup.freeze") == "1" and cg.frozen()
    cg.thaw()
    assert rd(cg, "cgroup.freeze") == "0"


def test_fake_v2_kill_uses_cgroup_kill(fake_v2) -> None:
    cg = fake_v2_cgroup(fake_v2)
    cg.create()
    cg.kill(signal.SIGKILL)
    assert rd(cg, "cgroup.kill") == "1"


def test_fake_v2_absolute_path_and_fd(fake_v2) -> None:
    layout, root = fake_v2
    cg = FakeV2Cgroup(f"{OWN}/pdtest-parent/c", layout)
    assert cg.paths == {"unified": f"{root}{OWN}/pdtest-parent/c"}
    cg.create()
    fd = cg.v2_fd()
    assert fd is not None
    try:
        assert os.fstat(fd).st_ino == os.stat(cg.paths["unified"]).st_ino
    finally:
        os.close(fd)
    cg.destroy()
    assert not os.path.exists(f"{root}{OWN}/pdtest-parent")
