"""The guest harness itself: a guest that fails or hangs fails the run with its console's
tail, instead of hanging the host's test session or passing silently."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest
from boot import Guest, GuestError, fetch_kernels

SCRATCH = Path(os.environ.get("PYDOCK_TEST_SCRATCH", "/var/tmp/pydock-tests"))  # conftest's


@pytest.fixture(scope="module")
def kernel():
    return fetch_kernels()[-1]  # the newest line boots fastest


@pytest.fixture
def workdir():
    d = Path(tempfile.mkdtemp(prefix="guest-harness-", dir=SCRATCH))
    yield d
    shutil.rmtree(d, ignore_errors=True)


def test_a_guest_that_powers_off_without_results_fails_with_its_console(kernel, workdir):
    g = Guest(kernel, workdir, ["-q"], worktree=Path("/nonexistent-worktree"))
    g.start()
    with pytest.raises(GuestError) as err:
        g.wait()
    text = str(err.value)
    assert "powered off without writing its results" in text, text
    assert "pydock-guest: 9p mount of the worktree failed" in text, text
    assert g.proc is not None and g.proc.returncode == 0


def test_a_hung_guest_is_killed_at_its_timeout(kernel, workdir):
    g = Guest(kernel, workdir, ["-q"], run_timeout=3)
    g.start()
    with pytest.raises(GuestError, match=r"did not finish within 3s; console tail"):
        g.wait()
    assert g.proc is not None and g.proc.poll() is not None  # QEMU is gone
