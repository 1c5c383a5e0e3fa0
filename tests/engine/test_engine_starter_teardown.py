"""What a start worker's early answer to ``run --rm`` may leave for later, and what not.

The answer (engine/starter.py ``answer_early``) may come before the unmount and the
removal of the container's layer and cgroup: nobody sees those. It must not come before
what a user sees, as Docker's client waits for the removal: the network's leases and
published ports (a next ``-p`` of the same port, ``network rm``) and ``--rm``'s
anonymous volumes (``volume ls``). Each test holds the lock that step takes while the
container exits: the client must still wait when the lock is released, not have its
answer already. And a journal that cannot be written means no early answer, not a lost
exit code.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import test_engine_starter
from helpers import PYDOCK, mounts_below
from netfix import configure, force_clean, leftovers, state
from pdcli import Pydock
from pydock.engine import prestart
from test_engine_starter import _wait_idle_worker, _workers

pooled = test_engine_starter.pooled  # a store with one start worker (and its leak checks)

#: how long a client that got its answer early would take to exit, at most, under load
ANSWER_WAIT = 3.0


@contextlib.contextmanager
def _held(path: Path) -> Iterator[None]:
    """flock ``path`` exclusively (retrying: the run may hold it shared for a moment)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                assert time.monotonic() < deadline, f"{path} stayed locked"
                time.sleep(0.01)
        yield
    finally:
        os.close(fd)


def _exit_under_lock(p: Pydock, scratch: Path, lock: Path, *opts: str) -> tuple[bool, int]:
    """Serve ``run --rm -i OPTS busybox`` whose container exits 3 while ``lock`` is held;
    returns (whether the client had its answer while the lock was held, its exit code)."""
    trace = scratch / f"trace-{time.monotonic_ns()}.jsonl"
    _wait_idle_worker(p.root)
    proc = subprocess.Popen(
        [PYDOCK, "--root", str(p.root), "--storage-driver", p.driver, "run", "--rm", "-i",
         *opts, "busybox", "sh", "-c", "echo up; read x; exit 3"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env=dict(os.environ, PYDOCK_TRACE=str(trace)),
    )  # fmt: skip
    try:
        assert proc.stdout.readline() == b"up\n", proc.stderr.read()
        with _held(lock):
            proc.stdin.write(b"\n")
            proc.stdin.close()
            try:
                proc.wait(timeout=ANSWER_WAIT)
                early = True
            except subprocess.TimeoutExpired:
                early = False
        proc.wait(timeout=60)
    finally:
        if proc.returncode is None:
            proc.kill()
            proc.wait()
    marks = [m[0] for m in json.loads(trace.read_text().splitlines()[-1])["marks"]]
    assert "handoff" in marks, marks  # a worker served it
    return early, proc.returncode


def test_anonymous_volume_is_gone_at_the_answer(pooled: Pydock, scratch: Path) -> None:
    lock = pooled.root / "volumes" / "volumes.lock"
    early, code = _exit_under_lock(pooled, scratch, lock, "--network", "none", "-v", "/data")
    assert code == 3
    assert not early, "answered before --rm's anonymous volume was removed"
    assert pooled.out("volume", "ls", "-q") == ""


@pytest.fixture
def pooled_net(scratch: Path) -> Iterator[tuple[Pydock, dict]]:
    """A store on its own bridge (tests/engine/netfix.py) with one start worker."""
    p = Pydock(scratch / "root", "overlay2", network=None)
    cfg = configure(p.root)
    daemon = json.loads((p.root / "daemon.json").read_text())
    (p.root / "daemon.json").write_text(json.dumps(dict(daemon, **{"start-pool": 1})))
    p("image", "bootstrap", check=True)
    assert "started 1" in p.out("system", "warm")
    try:
        yield p, cfg
    finally:
        prestart.settle_teardowns(str(p.root))
        p.cleanup()
        p("system", "warm", "--stop", check=True)
        assert _workers(p.root) == []
        left = leftovers(p.root, [cfg["bridge"]], list(state(p.root).get("containers", {})))
        if left:
            force_clean(p.root, [cfg["bridge"]])
        assert left == [], f"network leftovers: {left}"


def test_published_port_is_free_at_the_answer(pooled_net, scratch: Path) -> None:
    p, _ = pooled_net
    early, code = _exit_under_lock(p, scratch, p.root / "network" / "lock", "-p", "127.0.0.1::80")
    assert code == 3
    assert not early, "answered before the container's network was released"
    assert state(p.root).get("containers", {}) == {}


def test_unwritable_journal_means_no_early_answer(pooled: Pydock, scratch: Path) -> None:
    """The worker cannot journal its teardown (here its journal's name is taken by a
    directory): the run ends as an in-process one does, exit code and all."""
    key = _wait_idle_worker(pooled.root)[: -len(".sock")]
    journal = pooled.root / "starters" / f"{key}.teardown"
    journal.mkdir()
    try:
        res = test_engine_starter._served(pooled, scratch, "run", "--rm", "busybox", "sh",
                                          "-c", "echo bye; exit 5")  # fmt: skip
        assert (res.returncode, res.stdout) == (5, b"bye\n"), res.stderr
        assert res.stderr == b""
        assert pooled.out("ps", "-aq") == ""
        assert mounts_below(pooled.root) == []
    finally:
        journal.rmdir()
        # a sweep after the worker's exit met the directory as a dead worker's journal
        err = pooled.root / "starters" / "last-error"
        if err.exists():
            assert "Is a directory" in err.read_text().splitlines()[0]
            err.unlink()


def _key(pid: int) -> str:
    """A process's worker key ``<pid>-<start>`` (field 22 of /proc/<pid>/stat)."""
    stat = Path(f"/proc/{pid}/stat").read_bytes()
    return f"{pid}-{stat[stat.rindex(b')') + 2 :].split()[19].decode()}"


def test_stop_waits_for_a_teardown_in_flight(pooled: Pydock) -> None:
    """``system warm --stop`` leaves the store quiet: a teardown that follows an early
    answer is finished (here one journaled by a stand-in worker that is still alive, so
    the test decides when it ends), not left running behind the command's back."""
    cid = pooled.out("create", "--rm", "busybox", "true").strip()
    rec = json.loads((pooled.root / "containers" / cid / "container.json").read_text())
    for f in (pooled.root / "containers" / cid).iterdir():
        f.unlink()
    (pooled.root / "containers" / cid).rmdir()  # unlisted, as the worker had done
    worker = subprocess.Popen(["sleep", "60"])
    try:
        journal = pooled.root / "starters" / f"{_key(worker.pid)}.teardown"
        journal.write_text(json.dumps({"root": str(pooled.root), "rec": rec}))
        stop = subprocess.Popen([PYDOCK, "--root", str(pooled.root), "system", "warm", "--stop"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
        try:
            stop.wait(timeout=ANSWER_WAIT)
        except subprocess.TimeoutExpired:
            pass
        returned_early = stop.returncode is not None
        worker.kill()
        worker.wait()
        _, err = stop.communicate(timeout=60)
        assert stop.returncode == 0, err
        assert not returned_early, "--stop returned with a teardown in flight"
        assert not journal.exists()  # finished by the sweep once its worker was gone
        assert cid not in {n.name for n in (pooled.root / "overlay2").iterdir()}
    finally:
        if worker.returncode is None:
            worker.kill()
            worker.wait()


def test_a_dead_workers_journal_takes_its_cgroup_along(pooled: Pydock) -> None:
    """A worker killed after its answer, before the container's cgroup was removed: the
    journal names that cgroup (one under --cgroup-parent is in no worker record), and the
    sweep kills what is left in it and removes it."""
    from pydock.cgroupfs import Cgroup
    from pydock.engine import starter
    from pydock.engine.engine import Engine

    cid = pooled.out("create", "--rm", "--cgroup-parent", "pdtest-parent", "busybox",
                     "true").strip()  # fmt: skip
    cdir = pooled.root / "containers" / cid
    rec = json.loads((cdir / "container.json").read_text())
    cg = Cgroup(json.loads((cdir / "config.json").read_text())["linux"]["cgroupsPath"])
    for f in cdir.iterdir():
        f.unlink()
    cdir.rmdir()  # unlisted, as the worker had done before its answer
    cg.create()
    left = subprocess.Popen(["sleep", "60"])  # what the container left in its cgroup
    try:
        cg.attach(left.pid)
        # the journal of a worker that no longer runs (a pid that cannot exist, start 1)
        starter._journal(str(pooled.root / "starters" / "4194305-1"), Engine(pooled.root),
                         rec, cg)  # fmt: skip
        pooled("system", "warm", check=True)  # a fill sweeps what dead workers left
        assert left.wait(timeout=10) == -9
        err = pooled.root / "starters" / "last-error"
        assert not err.exists(), err.read_text()
        assert not cg.exists()
        assert not list((pooled.root / "starters").glob("*.teardown"))
    finally:
        if left.returncode is None:
            left.kill()
            left.wait()
        cg.destroy()  # the parent it made (and the leaf, had the sweep not)
