"""pydock on the hosts people run: Debian 12's kernels (the 6.1 line and the 6.12 line)
booted with pure cgroup v2 in QEMU guests, each running the guest subset once.

The subset is every test marked ``guest`` in SUBSET's files: the cgroupfs real-kernel tests
in v2 form, the driver conformance suite (each driver the guest kernel serves), fuse-union on
a tmpfs store, and the end to end runs of test_engine_hosts_v2. The host collects the same
selection, so each test the guest ran is one test here, passing, failing (with the guest's
report) or skipping as it did there. One boot per kernel (a module-scoped fixture); a guest
that does not boot or finish in time fails its kernel's tests with the console's tail.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from boot import WORKTREE, Guest, GuestError, Kernel, fetch_kernels
from helpers import VENV_BIN

SUBSET = [
    "tests/cgroupfs/test_cgroupfs_v2_real.py",
    "tests/drivers/test_drivers_conformance.py",
    "tests/fuse_union/test_fuse_union_driver.py",
    "tests/engine/test_engine_hosts_v2.py",
]
GUEST_ARGS = ["-q", "-m", "guest", *SUBSET]
COLLECTED: list[str] = []  # the subset's node ids, collected once per session
# the session's scratch dir, as tests/conftest.py picks it
SCRATCH = Path(os.environ.get("PYDOCK_TEST_SCRATCH", "/var/tmp/pydock-tests"))


def _collect() -> list[str]:
    """The node ids of the subset, as the guest's pytest will name them."""
    proc = subprocess.run(
        [str(VENV_BIN / "pytest"), "--collect-only", "-q", "-p", "no:cacheprovider",
         "-m", "guest", *SUBSET],
        cwd=WORKTREE, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    ids = [line for line in proc.stdout.splitlines() if "::" in line and " " not in line]
    if not ids:
        raise RuntimeError(f"collecting the guest subset failed:\n{proc.stdout}{proc.stderr}")
    return ids


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "guest" not in metafunc.fixturenames:
        return
    try:
        kernels: list[Kernel | str] = list(fetch_kernels())
    except (GuestError, OSError, subprocess.SubprocessError) as e:
        kernels = [f"unavailable: {e}"]
    ids = [k.line if isinstance(k, Kernel) else "no-kernel" for k in kernels]
    metafunc.parametrize("guest", kernels, ids=ids, indirect=True, scope="module")
    if "nodeid" in metafunc.fixturenames:
        if not COLLECTED:
            COLLECTED.extend(_collect())
        metafunc.parametrize("nodeid", COLLECTED)


class GuestRun:
    """What one boot reported: node id -> {"outcome", "text", "seconds"}, and its files."""

    def __init__(self, kernel: Kernel, workdir: Path, seconds: float) -> None:
        self.kernel = kernel
        self.workdir = workdir
        self.seconds = seconds
        res = workdir / "results"
        self.tests: dict[str, dict] = {}
        report = res / "report.jsonl"
        if report.exists():
            for line in report.read_text().splitlines():
                rec = json.loads(line)
                self.tests[rec.pop("nodeid")] = rec
        self.rc = int((res / "rc").read_text())
        self.log = (res / "pytest.log").read_text(errors="replace")
        self.host = dict(line.split("=", 1) for line in (res / "host.txt").read_text().splitlines())


def _hosts_file(run: GuestRun) -> None:
    """Record this kernel's row of the README's host table (dev/hosts-table.py)."""
    counts = {"passed": 0, "failed": 0, "error": 0, "skipped": 0}
    for rec in run.tests.values():
        counts[rec["outcome"]] += 1
    row = {
        "kernel": run.host["release"],
        "cgroup": "v2 (pure, cgroup_no_v1=all)",
        "where": "QEMU guest (TCG), Debian 12 userland",
        **counts,
        "seconds": round(run.seconds),
    }
    out = SCRATCH / "hosts"
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{run.kernel.release}.json").write_text(json.dumps(row) + "\n")


@pytest.fixture(scope="module")
def guest(request: pytest.FixtureRequest):
    kernel = request.param
    if not isinstance(kernel, Kernel):
        pytest.fail(f"no guest kernel: {kernel}", pytrace=False)

    workdir = Path(tempfile.mkdtemp(prefix=f"guest-{kernel.line}-", dir=SCRATCH))
    g = Guest(kernel, workdir, GUEST_ARGS)
    g.start()
    try:
        g.wait()
    except GuestError as e:
        pytest.fail(str(e), pytrace=False)
    run = GuestRun(kernel, workdir, g.seconds)
    _hosts_file(run)
    yield run
    failed = any(r["outcome"] in ("failed", "error") for r in run.tests.values())
    if not failed and run.rc == 0:
        shutil.rmtree(workdir, ignore_errors=True)  # kept for a look when anything failed


def test_guest(guest: GuestRun, nodeid: str) -> None:
    where = f"guest {guest.kernel.release}"
    rec = guest.tests.get(nodeid)
    if rec is None:
        tail = "\n".join(guest.log.splitlines()[-30:])
        pytest.fail(f"{where} did not run {nodeid}; its pytest log ends:\n{tail}", pytrace=False)
    if rec["outcome"] == "skipped":
        pytest.skip(f"in the {where}: {rec['text']}")
    if rec["outcome"] != "passed":
        pytest.fail(f"in the {where} ({rec['outcome']}):\n{rec['text']}", pytrace=False)


def test_guest_session_clean(guest: GuestRun) -> None:
    """The guest's own pytest session ended cleanly: its leak check found nothing left, and
    it ran no test the host did not expect."""
    assert "LEFTOVERS" not in guest.log, guest.log[guest.log.index("LEFTOVERS") :]
    assert set(guest.tests) <= set(COLLECTED), sorted(set(guest.tests) - set(COLLECTED))
    assert guest.rc in (0, 1), f"guest pytest exited {guest.rc}:\n{guest.log[-3000:]}"
