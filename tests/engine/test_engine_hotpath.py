"""The start path's rules (ARCHITECTURE.md): ``pydock run`` loads only the standard
library, pydock itself and the compiled cffi module, and starts no subprocess."""

from __future__ import annotations

import json
import subprocess
import sys

from helpers import VENV_BIN

PROBE = """
import json, subprocess_guard, sys
from pydock.engine.cli import main
code = main(sys.argv[1:])
mods = sorted({m.split(".")[0] for m in sys.modules})
print(json.dumps({"code": code, "mods": mods, "spawned": subprocess_guard.spawned}))
"""

# Fails loudly if anything on the path tries to start a program.
GUARD = """
import os
spawned = []
def _no(*a, **k):
    spawned.append(repr(a[:2]))
    raise AssertionError("subprocess on the start path")
os.posix_spawn = os.posix_spawnp = _no
import _posixsubprocess
_posixsubprocess.fork_exec = _no
"""


def test_run_loads_only_stdlib_and_cffi(overlay_pydock, scratch):
    (scratch / "subprocess_guard.py").write_text(GUARD)
    res = subprocess.run(
        [
            str(VENV_BIN / "python"),
            "-c",
            PROBE,
            "--root",
            str(overlay_pydock.root),
            "--storage-driver",
            "overlay2",
            "run",
            "--rm",
            "--network",  # bridge (the default) loads pyroute2; none must stay stdlib-only
            "none",
            "--network",
            "none",
            "busybox",
            "true",
        ],
        capture_output=True,
        cwd=scratch,
        env={"PYTHONPATH": str(scratch), "PATH": "/usr/bin:/bin"},
        timeout=60,
    )
    assert res.returncode == 0, res.stderr
    report = json.loads(res.stdout.decode().strip().splitlines()[-1])
    assert report["code"] == 0 and report["spawned"] == []
    # __main__ is the probe; _distutils_hack is setuptools' .pth hook and sitecustomize
    # Debian python3's own (its apport hook), both loaded by site
    allowed = set(sys.stdlib_module_names) | {
        "pydock",
        "_cffi_backend",
        "subprocess_guard",
        "__main__",
        "_distutils_hack",
        "sitecustomize",
    }
    foreign = [m for m in report["mods"] if m not in allowed and not m.startswith("__editable__")]
    assert foreign == []
    # modules that cost milliseconds to import and that the start path has learned to avoid
    heavy = {"subprocess", "dataclasses", "typing", "inspect", "tarfile", "secrets", "socket",
             "tempfile", "datetime"}  # fmt: skip
    assert sorted(heavy & set(report["mods"])) == []


CLIENT_PROBE = """
import json, os, sys
before = set(sys.modules)
from pydock.engine import client
code = client.served(sys.argv[1:], client.root_of(sys.argv[1:]))
print(json.dumps({"code": code, "mods": sorted(set(sys.modules) - before)}))
"""


def test_served_run_client_loads_only_builtins(overlay_pydock, scratch):
    """With a start worker waiting, the ``pydock`` client itself imports nothing but
    pydock's client module and the C modules it talks through (engine/client.py)."""
    from test_engine_starter import _wait_idle_worker

    root = overlay_pydock.root
    (root / "daemon.json").write_text(json.dumps({"start-pool": 1}))
    try:
        overlay_pydock("system", "warm", check=True)
        _wait_idle_worker(root)
        res = subprocess.run(
            [str(VENV_BIN / "python"), "-c", CLIENT_PROBE, "--root", str(root),
             "--storage-driver", "overlay2", "run", "--rm", "--network", "none", "busybox",
             "true"],
            capture_output=True, timeout=60, cwd=scratch,
        )  # fmt: skip
        assert res.returncode == 0, res.stderr
        report = json.loads(res.stdout.decode().strip().splitlines()[-1])
        assert report["code"] == 0  # served: a worker ran it
        allowed = {"pydock", "pydock.engine", "pydock.engine.client", "_socket", "_signal", "time"}
        assert set(report["mods"]) <= allowed
    finally:
        (root / "daemon.json").write_text(json.dumps({"start-pool": 0}))  # no successor
        overlay_pydock("system", "warm", "--stop", check=True)
