"""After a pydock command is killed anywhere, the next one (or ``system boot``) leaves the
store as if it had not run: every file and cgroup belongs to a container, image or layer
the CLI shows (issue 11, part 2).

Each deterministic test builds one crash state the random kills of the issue found, by
killing the real command at that point (crashfix.killed_at) or by laying out what a killed
one leaves, and shows which command cleans it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from crashfix import check_containers, check_images, container_entries, killed_at
from helpers import PYDOCK
from imagetar import Entry, docker_save, layer_tar
from pdcli import Pydock
from pydock.cgroupfs import Cgroup

#: a worker key that cannot be a live process (pid above the kernel's maximum, start 1)
DEAD = "4194305-1"


def _only_container(root: Path) -> str:
    (cid,) = [n for n in container_entries(root) if len(n) == 64]
    return cid


def _listed(p: Pydock) -> set[str]:
    return set(p.out("ps", "-aq", "--no-trunc").split())


@pytest.mark.parametrize(
    "point",
    [
        "pydock.engine.runtime:spawn",  # cgroup made, record still "Creating"
        "pydock.engine.engine:Engine.mark_running",  # record complete ("Created"), init forked
    ],
)
def test_killed_run_rm_leaves_no_record_and_no_cgroup(overlay_pydock: Pydock, point: str):
    p = overlay_pydock
    assert killed_at(p.root, point, "-s", "overlay2", "run", "--rm", "--network", "none",
                     "busybox", "true") == -9  # fmt: skip
    cid = _only_container(p.root)
    cg = Cgroup(f"pydock-{cid}")  # under our cgroup, as the killed child sat in it
    try:
        assert cg.exists()
        assert _listed(p) == set()  # ps -a recovers: a --rm container is removed
        assert not cg.exists()
        assert check_containers(p.root, set()) == []
    finally:
        cg.destroy()


def test_rm_f_removes_the_cgroup_of_a_killed_start(overlay_pydock: Pydock):
    """A plain run killed once its init was forked: the Created record stays (it was
    not --rm), its cgroup does not; rm -f removes the record, name and layer."""
    p = overlay_pydock
    point = "pydock.engine.engine:Engine.mark_running"
    assert killed_at(p.root, point, "-s", "overlay2", "run", "--name", "half", "--network",
                     "none", "busybox", "true") == -9  # fmt: skip
    cid = _only_container(p.root)
    cg = Cgroup(f"pydock-{cid}")
    try:
        assert cg.exists()
        p("rm", "-f", "half", check=True)
        assert not cg.exists()
        assert container_entries(p.root) == []
        assert not (p.root / "names" / "half").exists()
        assert cid not in os.listdir(p.root / "overlay2")
    finally:
        cg.destroy()


def test_a_container_dir_with_only_its_lock_is_swept(overlay_pydock: Pydock):
    """What a removal in place left when killed (versions before the rename): the next
    command that reads the records removes it."""
    p = overlay_pydock
    cid = p.out("create", "--name", "gone", "busybox", "true").strip()
    cdir = p.root / "containers" / cid
    p("rm", "gone", check=True)
    cdir.mkdir()
    (cdir / "lock").touch()
    assert p.out("ps", "-aq") == ""
    assert container_entries(p.root) == []


@pytest.mark.parametrize("stage", ["new", "rm"])
def test_a_killed_add_or_removal_is_swept_and_frees_its_name(overlay_pydock: Pydock, stage):
    """A stage whose owner died (a create killed after it claimed its name), or a
    directory renamed away by a removal killed before it deleted it."""
    p = overlay_pydock
    cid = p.out("create", "--name", "taken", "busybox", "true").strip()
    rec = json.loads((p.root / "containers" / cid / "container.json").read_text())
    p("rm", "taken", check=True)
    name = "/" + {"new": f".new-{cid}-{DEAD}", "rm": f".rm-{cid}"}[stage]
    d = Path(str(p.root / "containers") + name)
    d.mkdir(parents=True)
    (d / "container.json").write_text(json.dumps(rec))
    os.symlink(cid, p.root / "names" / "taken")
    assert p.out("ps", "-aq") == ""
    assert container_entries(p.root) == []
    p("create", "--name", "taken", "busybox", "true", check=True)  # the name is free


def test_killed_load_leaves_nothing_after_the_next_load_or_boot(overlay_pydock, scratch):
    p = overlay_pydock
    layers = [layer_tar([Entry(f"f{i}", os.urandom(64))]) for i in range(2)]
    tar = scratch / "img.tar"
    tar.write_bytes(docker_save(layers, "crash:one"))
    # killed writing the second layer's record: its driver layer and temp file stay
    assert killed_at(p.root, "pydock.engine.images:write_json", "-s", "overlay2", "load",
                     "-i", str(tar), mode="tmp") == -9  # fmt: skip
    assert len(check_images(p.root)) == 2, check_images(p.root)  # precondition
    p("system", "boot", check=True)
    assert check_images(p.root) == []
    assert "crash" not in p.out("images")
    # and a load sweeps too (the state once more)
    killed_at(p.root, "pydock.engine.images:write_json", "-s", "overlay2", "load", "-i",
              str(tar), mode="tmp")  # fmt: skip
    p("load", "-i", str(tar), check=True)
    assert check_images(p.root) == []
    assert "crash" in p.out("images")


def test_a_teardown_journal_whose_layer_is_gone_is_finished(overlay_pydock: Pydock):
    """A dead worker's journal for a container whose layer is already gone (the teardown
    had removed it, or a sweep had): finishing it is a no-op, not LayerNotFound forever."""
    from pydock.engine import starter
    from pydock.engine.engine import Engine

    p = overlay_pydock
    cid = p.out("create", "--rm", "busybox", "true").strip()
    rec = json.loads((p.root / "containers" / cid / "container.json").read_text())
    p("rm", cid, check=True)  # layer, record and name gone
    (p.root / "starters").mkdir(exist_ok=True)
    starter._journal(str(p.root / "starters" / DEAD), Engine(p.root), rec,
                     Cgroup(f"pydock-{cid}"))  # fmt: skip
    p("system", "warm", "--stop", check=True)
    err = p.root / "starters" / "last-error"
    assert not err.exists(), err.read_text()
    assert os.listdir(p.root / "starters") == []


def test_a_dead_workers_busy_cgroup_is_not_forgotten(overlay_pydock: Pydock):
    """A dead worker's prepared cgroup that still has a member when the sweep comes (its
    init exiting): it is emptied and removed, not dropped from the records and left."""
    p = overlay_pydock
    cg = Cgroup(f"pydock-{os.urandom(32).hex()}")
    cg.create()
    left = subprocess.Popen(["sleep", "60"])
    try:
        cg.attach(left.pid)
        d = p.root / "starters"
        d.mkdir(exist_ok=True)
        own = "".join(f"{k}\t{v}\n" for k, v in _own().items())
        (d / f"{DEAD}.cgroup").write_text(cg.path + "\n" + own)
        p("system", "warm", "--stop", check=True)
        assert left.wait(timeout=10) == -signal.SIGKILL
        assert not cg.exists()
        assert os.listdir(d) == []
    finally:
        if left.returncode is None:
            left.kill()
            left.wait()
        cg.destroy()


def _own() -> dict[str, str]:
    from pydock.cgroupfs import own_paths

    return own_paths()


def test_fuse_union_removes_its_server_logs(scratch: Path):
    p = Pydock(scratch / "root", "fuse-union")
    p("image", "bootstrap", check=True)
    try:
        runtime = p.root / "overlay2" / ".fuse-union"
        runtime.mkdir(parents=True, exist_ok=True)
        stale = runtime / f"{'ab' * 32}.log"  # a layer that no longer exists
        stale.write_text("old\n")
        p("run", "--rm", "busybox", "true", check=True)
        assert not stale.exists()
        assert [n for n in os.listdir(runtime) if n.endswith(".log")] == []
    finally:
        p.cleanup()


# -- random kills ------------------------------------------------------------------------


class _Jail:
    """A cgroup of our own that the killed commands run in, so that every container
    cgroup they make is below it (other sessions' containers are elsewhere)."""

    def __init__(self) -> None:
        self.cg = Cgroup(f"pdtest-crash-{os.urandom(6).hex()}")
        self.cg.create()

    def enter(self) -> None:  # preexec_fn: moves the child, before it execs pydock
        self.cg.attach(os.getpid())

    def children(self) -> set[str]:
        out = set()
        for d in set(self.cg.paths.values()):
            out |= {e.name for e in os.scandir(d) if e.is_dir()}
        return out


def _popen(p: Pydock, jail: _Jail, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [PYDOCK, "--root", str(p.root), *p._args(args)], preexec_fn=jail.enter,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env=dict(os.environ, PYDOCK_NO_START_POOL="1"),
    )  # fmt: skip


def test_random_kills_leave_nothing_behind(overlay_pydock: Pydock, scratch: Path):
    """20 commands SIGKILLed at random moments (run --rm, run -d, rm -f, load); after
    each, ``ps -a`` recovers the containers; after all, ``system boot`` the rest."""
    import random

    p = overlay_pydock
    rng = random.Random(int.from_bytes(os.urandom(4), "little"))
    jail = _Jail()
    log = []
    try:
        for trial in range(20):
            kind = ("run --rm", "run -d", "rm -f", "load")[trial % 4]
            # up to a little more than the command takes here (65-130 ms, ~30 of them
            # Python's start-up)
            if kind == "run --rm":
                args = ("run", "--rm", "--network", "none", "busybox", "sleep", "0.05")
            elif kind == "run -d":
                args = ("run", "-d", "--network", "none", "busybox", "sleep", "30")
            elif kind == "rm -f":
                p("run", "-d", "--network", "none", "busybox", "sleep", "30", check=True)
                args = ("rm", "-f", *sorted(_listed(p)))
            else:
                tar = scratch / f"img{trial}.tar"
                layers = [layer_tar([Entry(f"f{i}", os.urandom(1 << 18))]) for i in range(3)]
                tar.write_bytes(docker_save(layers, f"crash:{trial}"))
                args = ("load", "-i", str(tar))
            most = {"run --rm": 0.15, "run -d": 0.1, "rm -f": 0.15, "load": 0.09}[kind]
            delay = rng.uniform(0.02, most)
            proc = _popen(p, jail, *args)
            time.sleep(delay)
            proc.kill()  # our child, by pid
            proc.wait()
            log.append(f"{kind} killed after {delay * 1000:.0f} ms")
            listed = _listed(p)  # the next command
            assert check_containers(p.root, listed) == [], log
            running = {
                f"pydock-{cid}"
                for cid in listed
                if json.loads((p.root / "containers" / cid / "container.json").read_text())[
                    "State"]["Status"] == "running"
            }  # fmt: skip
            assert jail.children() <= running, log
        p("system", "boot", check=True)
        assert check_containers(p.root, _listed(p)) == [], log
        assert check_images(p.root) == [], log
        p.cleanup()
        assert jail.children() == set(), log
    finally:
        p.cleanup()
        jail.cg.destroy()


def test_a_half_removed_cgroup_is_removed(overlay_pydock: Pydock):
    """A run killed while it removed its container's cgroup, one hierarchy at a time
    (found by the random kills): the next command removes the rest."""
    p = overlay_pydock
    point = "pydock.engine.engine:Engine.mark_running"
    assert killed_at(p.root, point, "-s", "overlay2", "run", "--rm", "--network", "none",
                     "busybox", "true") == -9  # fmt: skip
    cg = Cgroup(f"pydock-{_only_container(p.root)}")
    try:
        deadline = time.monotonic() + 10
        while cg.procs() and time.monotonic() < deadline:  # its init, killed by PDEATHSIG
            time.sleep(0.01)
        # the removal got this far: the directory whose cgroup.procs is read went first
        os.rmdir(cg.paths.get("unified") or sorted(set(cg.paths.values()))[0])
        assert cg.exists()
        assert _listed(p) == set()
        assert not cg.exists()
    finally:
        cg.destroy()
