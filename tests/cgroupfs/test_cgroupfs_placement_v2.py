"""Placement on a real cgroup v2 host with controllers: a pydock process alone in a leaf
cgroup (a service, a CI job) still gives containers their limits.

It needs a pure v2 host whose controllers the test's cgroup can delegate (the QEMU guests
of the test suite); this hybrid host's controllers are v1's, so it skips here. The
fake-tree tests in test_cgroupfs_fake_v2.py cover the same decisions everywhere.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from pydock.cgroupfs import Layout, detect

CHILD = """
import json, os
from pydock.cgroupfs import Cgroup
cg = Cgroup("pdtest-inner")
cg.create()
cg.apply({"pids": {"limit": 5}})
out = {"pids.max": open(cg.paths["unified"] + "/pids.max").read().strip(),
       "own": open("/proc/self/cgroup").read().strip().split("::")[-1],
       "inner": cg.paths["unified"]}
cg.destroy()
print(json.dumps(out), flush=True)
"""


@pytest.fixture(scope="module")
def v2_with_controllers() -> Layout:
    lay = detect()
    if lay.mode != "v2":
        pytest.skip(f"needs a pure cgroup v2 host with controllers; this one is {lay.mode}")
    own = Path("/proc/self/cgroup").read_text().strip().split("::")[-1]
    avail = Path(f"{lay.unified}{own}/cgroup.controllers").read_text().split()
    if "pids" not in avail:
        pytest.skip("the pids controller is not available to this process's cgroup")
    return lay


def test_alone_in_a_leaf_it_moves_itself_and_limits_work(v2_with_controllers, make_cgroup,
                                                         spawn):  # fmt: skip
    leaf = make_cgroup()  # <own>/pdtest-x/c: its parent delegates (we made it), it does not
    d = leaf.paths["unified"]
    assert "pids" not in Path(f"{d}/cgroup.subtree_control").read_text().split()
    child = spawn("import sys\n" + CHILD)
    leaf.attach(child.pid)  # the child is now the only process of its cgroup
    child.go()
    out = json.loads(child.line())
    assert child.wait() == 0
    assert out["pids.max"] == "5"
    assert out["own"].endswith("/engine.leaf")  # its own PID moved one level down
    assert out["inner"] == f"{d}/pdtest-inner"  # containers still beside that leaf
    assert "pids" in Path(f"{d}/cgroup.subtree_control").read_text().split()
    assert os.path.isdir(f"{d}/engine.leaf")  # removed with the test's cgroup
