"""pydock's launcher (engine/launcher.py): the ``pydock`` command run by ``python -IS``.

It must behave as pip's console script does (the CLI in-process, a ``run`` handed to a
start worker), load nothing before the hand-off but builtin modules, and take no code from
the working directory. It needs a regular install: an editable one (a developer's .venv)
is refused, and these tests skip there; CI's .venv is regular.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest
import test_engine_starter
from helpers import VENV_BIN
from pydock.engine import launcher
from test_engine_starter import _wait_idle_worker

try:
    SEARCH = launcher.search_path()
except ValueError as e:
    pytest.skip(f"needs a regular install of pydock ({e})", allow_module_level=True)

PYTHON = str(VENV_BIN / "python")
pooled = test_engine_starter.pooled  # a store with one start worker (and its leak checks)


@pytest.fixture
def pydock_launcher(scratch: Path) -> str:
    path = scratch / "bin" / "pydock"
    path.parent.mkdir()
    launcher.install(str(path), PYTHON)
    return str(path)


def test_launcher_is_a_python_IS_script(pydock_launcher: str) -> None:
    text = Path(pydock_launcher).read_text()
    assert text.splitlines()[0] == f"#!{PYTHON} -IS"
    assert os.stat(pydock_launcher).st_mode & 0o777 == 0o755
    res = subprocess.run([pydock_launcher, "--version"], capture_output=True, timeout=60)
    assert res.returncode == 0 and res.stdout.startswith(b"pydock version "), res.stderr


def test_cli_in_process_and_bad_input(pydock_launcher: str, overlay_pydock) -> None:
    base = [pydock_launcher, "--root", str(overlay_pydock.root), "--storage-driver", "overlay2"]
    env = dict(os.environ, PYDOCK_NO_START_POOL="1")
    res = subprocess.run([*base, "run", "--rm", "--network", "none", "busybox", "echo", "hi"],
                         capture_output=True, timeout=60, env=env)  # fmt: skip
    assert (res.returncode, res.stdout) == (0, b"hi\n"), res.stderr
    res = subprocess.run([*base, "run", "--no-such-flag", "busybox"], capture_output=True,
                         timeout=60, env=env)  # fmt: skip
    assert res.returncode == 125
    assert res.stderr.decode().startswith("pydock: ") and b"Traceback" not in res.stderr


def test_working_directory_cannot_shadow_pydock(pydock_launcher: str, scratch: Path) -> None:
    # -I: a pydock/ package (or an os.py) where the command runs is not imported as root
    trap = scratch / "cwd"
    (trap / "pydock" / "engine").mkdir(parents=True)
    for init in (trap / "pydock" / "__init__.py", trap / "pydock" / "engine" / "__init__.py"):
        init.write_text("raise SystemExit('imported from the working directory')\n")
    (trap / "os.py").write_text("raise SystemExit('imported from the working directory')\n")
    env = dict(os.environ, PYTHONPATH=str(trap))
    res = subprocess.run([pydock_launcher, "--version"], capture_output=True, timeout=60,
                         cwd=trap, env=env)  # fmt: skip
    assert res.returncode == 0 and res.stdout.startswith(b"pydock version "), res.stderr


CLIENT_PROBE = """
import json, sys
sys.path += {search!r}
before = set(sys.modules)
from pydock.engine import client
print(json.dumps(sorted(set(sys.modules) - before)))
"""


def test_client_loads_only_builtins_without_site() -> None:
    probe = CLIENT_PROBE.format(search=SEARCH)
    res = subprocess.run([PYTHON, "-IS", "-c", probe], capture_output=True, timeout=60)
    assert res.returncode == 0, res.stderr
    loaded = set(json.loads(res.stdout))
    assert loaded <= {"pydock", "pydock.engine", "pydock.engine.client", "_socket", "_signal"}
    assert "os" not in loaded


def test_run_is_served_through_the_launcher(pydock_launcher: str, pooled, scratch: Path) -> None:
    trace = scratch / f"trace-{time.monotonic_ns()}.jsonl"
    env = dict(os.environ, PYDOCK_TRACE=str(trace))
    _wait_idle_worker(pooled.root)
    res = subprocess.run(
        [pydock_launcher, "--root", str(pooled.root), "--storage-driver", "overlay2", "run",
         "--rm", "--network", "none", "busybox", "sh", "-c", "echo served; exit 4"],
        capture_output=True, timeout=60, env=env,
    )  # fmt: skip
    assert (res.returncode, res.stdout) == (4, b"served\n"), res.stderr
    marks = [m[0] for m in json.loads(trace.read_text().splitlines()[-1])["marks"]]
    assert "handoff" in marks, marks  # a worker ran it
