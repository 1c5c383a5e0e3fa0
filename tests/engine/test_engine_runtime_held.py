"""runtime.start with a start worker's prepared parts: a start that fails before the held
init is handed over (the cgroup's resources cannot be applied) kills and reaps that init,
so the cgroup empties and goes, and the error is the real one, not "still has members".

In-process, as a worker does it: a real cgroup under this process's own, a real held init
(nsutil.spawn.prefork) moved into it, engine.prestart.current pointing at both.
"""

from __future__ import annotations

import os

import pytest
from pydock.cgroupfs import Cgroup, CgroupError
from pydock.engine import prestart, runtime
from pydock.nsutil import spawn


def test_failed_apply_reaps_the_held_init_and_removes_the_cgroup() -> None:
    cid = os.urandom(32).hex()
    cg = Cgroup(f"pdtest-held-{cid[:12]}")
    cg.create()
    held = spawn.prefork()
    cg.attach(held.pid)
    saved = prestart.current
    prestart.current = prestart.Prepared(cid, cg, held)
    spec = {
        "process": {"args": ["true"], "cwd": "/"},
        "root": {"path": "/nonexistent"},
        "linux": {
            "cgroupsPath": cg.path,
            "namespaces": [{"type": t} for t in ("pid", "network", "uts", "ipc", "mount")],
            # raw cgroup v2 files: a hybrid or v1 host cannot apply them (strict: an error)
            "resources": {"unified": {"pids.max": "10"}},
        },
    }
    try:
        with pytest.raises(CgroupError) as err:
            runtime.start(spec, (0, 1, 2))
        assert "still has members" not in str(err.value)
        assert not cg.exists()
        with pytest.raises(ChildProcessError):  # reaped, not left a zombie
            os.waitpid(held.pid, os.WNOHANG)
    finally:
        prestart.current = saved
        held.discard()
        if cg.exists():
            cg.destroy()
