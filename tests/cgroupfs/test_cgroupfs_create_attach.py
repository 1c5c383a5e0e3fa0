"""Real cgroups on this hybrid host: placement, creation, attach, destroy."""

from __future__ import annotations

import os
import posixpath
import subprocess
from pathlib import Path

import pytest
from pydock.cgroupfs import Cgroup, CgroupError, Layout, own_paths


def test_relative_path_nests_under_own_cgroup_per_hierarchy(hybrid: Layout, make_cgroup, name):
    own = own_paths()
    cg = make_cgroup(f"{name}/c")
    assert own["memory"].startswith("/process_api/")
    assert cg.paths["memory"] == f"/sys/fs/cgroup/memory{own['memory']}/{name}/c"
    for h, mnt in hybrid.hierarchies.items():
        assert cg.paths[h] == posixpath.normpath(f"{mnt}/{own[h]}/{name}/c")
        assert os.path.isdir(cg.paths[h]), h
    if own["cpu"] == "/":
        assert cg.paths["cpu"] == f"/sys/fs/cgroup/cpu/{name}/c"
    # Both levels were created here, parents before children, once per directory.
    assert len(cg.created) == 2 * len(set(cg.paths.values()))
    assert cg.exists()


def test_new_cpuset_gets_parent_cpus_and_mems(hybrid: Layout, make_cgroup):
    cg = make_cgroup()
    parent = posixpath.dirname(posixpath.dirname(cg.paths["cpuset"]))
    for f in ("cpuset.cpus", "cpuset.mems"):
        want = Path(f"{parent}/{f}").read_text().strip()
        assert want
        assert Path(f"{cg.paths['cpuset']}/{f}").read_text().strip() == want
        mid = posixpath.dirname(cg.paths["cpuset"])
        assert Path(f"{mid}/{f}").read_text().strip() == want


def test_attach_sleep_child_everywhere(hybrid: Layout, make_cgroup):
    cg = make_cgroup()
    p = subprocess.Popen(["sleep", "60"])
    try:
        cg.attach(p.pid)
        for d in set(cg.paths.values()):
            assert p.pid in [int(x) for x in Path(f"{d}/cgroup.procs").read_text().split()], d
        assert cg.procs() == [p.pid]
        theirs = own_paths(p.pid)
        for h, mnt in hybrid.hierarchies.items():
            assert f"{mnt}{theirs[h]}" == cg.paths[h].rstrip("/"), h
    finally:
        os.kill(p.pid, 9)
        p.wait()
    assert cg.procs() == []


def test_destroy_removes_every_dir_it_created(hybrid: Layout, name):
    cg = Cgroup(f"{name}/a/b")
    cg.create()
    made = cg.created
    assert made and all(os.path.isdir(d) for d in made)
    cg.destroy()
    assert not any(os.path.exists(d) for d in made)
    assert not cg.exists() and cg.created == ()
    cg.destroy()  # idempotent


def test_destroy_with_live_member_raises(hybrid: Layout, make_cgroup):
    cg = make_cgroup()
    p = subprocess.Popen(["sleep", "60"])
    try:
        cg.attach(p.pid)
        with pytest.raises(CgroupError, match=rf"still has members: {p.pid}$"):
            cg.destroy()
        assert cg.exists()
    finally:
        os.kill(p.pid, 9)
        p.wait()
    cg.destroy()
    assert not cg.exists()


def test_create_is_idempotent_and_destroy_keeps_foreign_parents(hybrid: Layout, make_cgroup, name):
    parent = make_cgroup(f"{name}")
    child = Cgroup(f"{parent.path}/c")
    child.create()
    assert child.created == tuple(dict.fromkeys(child.paths.values()))  # leaves only
    child.create()
    child.destroy()
    assert not child.exists() and parent.exists()


def test_absolute_cgroup_parent_under_own_path(hybrid: Layout, make_cgroup, name):
    own = own_paths()
    path = f"{own['memory']}/{name}/c"  # --cgroup-parent style, from each hierarchy's root
    cg = make_cgroup(path)
    assert cg.paths["memory"] == f"/sys/fs/cgroup/memory{own['memory']}/{name}/c"
    # Other hierarchies have their own cgroup at "/", so the same absolute path is nested
    # under it there too, with the intermediate directories created (and later removed).
    assert cg.paths["cpu"] == f"/sys/fs/cgroup/cpu{own['memory']}/{name}/c"
    assert all(os.path.isdir(d) for d in cg.paths.values())
    made = cg.created
    assert "/sys/fs/cgroup/memory/process_api" not in made
    cg.destroy()
    assert not any(os.path.exists(d) for d in made)
    assert os.path.isdir(f"/sys/fs/cgroup/memory{own['memory']}")


def test_invalid_paths_are_rejected(hybrid: Layout):
    for bad in ("", "/", "a/../../b"):
        with pytest.raises(CgroupError):
            Cgroup(bad)


def test_v2_fd_is_the_unified_dir(hybrid: Layout, make_cgroup):
    cg = make_cgroup()
    fd = cg.v2_fd()
    assert fd is not None
    try:
        st, want = os.fstat(fd), os.stat(cg.paths["unified"])
        assert (st.st_dev, st.st_ino) == (want.st_dev, want.st_ino)
    finally:
        os.close(fd)


def test_destroy_removes_child_cgroups_made_inside_the_leaf(hybrid: Layout, make_cgroup):
    cg = make_cgroup()
    # What a container with its own cgroup namespace may do inside its cgroup.
    inner = [f"{cg.paths['unified']}/inner", f"{cg.paths['memory']}/inner/deeper"]
    for d in inner:
        os.makedirs(d)
    cg.destroy()
    assert not cg.exists()
