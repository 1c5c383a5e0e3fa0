"""Start workers (engine/starter.py, engine/client.py): a ``run`` served by a pre-started
worker behaves exactly like one the CLI runs itself, and the pool leaves nothing behind.

Each test's store has ``"start-pool": 1``; the fixture stops the workers afterwards and
checks that no worker process, socket or prepared cgroup remains.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import PYDOCK
from pdcli import Pydock
from pydock.cgroupfs import detect, own_paths
from pydock.engine import prestart


def _workers(root: Path) -> list[str]:
    d = root / "starters"
    return sorted(p.name for p in d.iterdir() if p.suffix == ".sock") if d.is_dir() else []


def _wait_idle_worker(root: Path, timeout: float = 20.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        socks = _workers(root)
        if socks:
            return socks[0]
        time.sleep(0.02)
    err = root / "starters" / "last-error"
    raise AssertionError(f"no idle start worker after {timeout}s; last-error: "
                         f"{err.read_text() if err.exists() else '-'}")  # fmt: skip


def _pid(sock_name: str) -> int:
    return int(sock_name.partition("-")[0])


def _own_pydock_cgroups() -> set[str]:
    """pydock-* cgroups in this process's pids cgroup (where workers nest theirs)."""
    own = own_paths()
    base = Path("/sys/fs/cgroup/pids") / own["pids"].lstrip("/")
    return {p.name for p in base.iterdir() if p.name.startswith("pydock-")}


@pytest.fixture
def pooled(scratch: Path) -> Iterator[Pydock]:
    p = Pydock(scratch / "root", "overlay2")
    p("image", "bootstrap", check=True)
    (p.root / "daemon.json").write_text(json.dumps({"start-pool": 1}))
    before = _own_pydock_cgroups()
    assert "started 1" in p.out("system", "warm")
    _wait_idle_worker(p.root)
    try:
        yield p
    finally:
        p.cleanup()
        # A successor in waiting goes on after its predecessor's run (its teardown) ends
        # and follows daemon.json: with no pool there, it leaves without preparing. The
        # stop waits for a served --rm run's teardown, which follows its answer.
        (p.root / "daemon.json").write_text(json.dumps({"start-pool": 0}))
        p("system", "warm", "--stop", check=True)
        assert _workers(p.root) == []
        leftover = [n for n in os.listdir(p.root / "starters") if n != "fill.lock"]
        assert leftover == [], leftover
        deadline = time.monotonic() + 5
        while _own_pydock_cgroups() - before and time.monotonic() < deadline:
            time.sleep(0.02)  # a retiring successor in waiting may still be exiting
        assert _own_pydock_cgroups() - before == set()


def _served(p: Pydock, scratch: Path, *args: str, **kw) -> subprocess.CompletedProcess:
    """Run ``pydock ARGS`` and assert a worker served it (its trace has the hand-off)."""
    trace = scratch / f"trace-{time.monotonic_ns()}.jsonl"
    env = dict(os.environ, PYDOCK_TRACE=str(trace))
    _wait_idle_worker(p.root)
    res = p(*args, env=env, **kw)
    marks = [m[0] for m in json.loads(trace.read_text().splitlines()[-1])["marks"]]
    assert "handoff" in marks, (marks, res.stderr)
    return res


def test_served_run_matches_cli(pooled: Pydock, scratch: Path) -> None:
    res = _served(pooled, scratch, "run", "--rm", "-e", "FOO=bar", "busybox", "sh", "-c",
                  "echo out $FOO $(hostname); echo err >&2; exit 3")  # fmt: skip
    assert res.returncode == 3
    out = res.stdout.decode().split()
    assert out[:2] == ["out", "bar"] and len(out[2]) == 12
    assert res.stderr == b"err\n"
    # stdin, and a relative path resolved against the client's cwd, not the worker's
    import pydock.engine.seccomp as seccomp_mod

    shutil.copy(seccomp_mod.DEFAULT_PROFILE, scratch / "profile.json")
    res = _served(pooled, scratch, "run", "--rm", "-i", "--security-opt",
                  "seccomp=profile.json", "busybox", "sh", "-c", 'cat; echo " done"',
                  input=b"piped", cwd=scratch)  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert res.stdout == b"piped done\n"
    assert pooled.out("ps", "-aq") == ""  # --rm removed both


def test_served_errors_use_docker_codes(pooled: Pydock, scratch: Path) -> None:
    res = _served(pooled, scratch, "run", "--rm", "busybox", "/no/such/cmd")
    assert res.returncode == 127
    assert res.stderr.decode().startswith("pydock: ")
    res = _served(pooled, scratch, "run", "--rm", "--no-such-flag", "busybox", "true")
    assert res.returncode == 125
    assert len(res.stderr.decode().strip().splitlines()) == 1


def test_container_runs_in_the_prepared_cgroup(pooled: Pydock, scratch: Path) -> None:
    """The container's id is the prepared one and its PID 1 the held init, in the
    prepared cgroup (it needed no cgroup attach at start)."""
    sock = _wait_idle_worker(pooled.root)
    record = (pooled.root / "starters" / sock.replace(".sock", ".cgroup")).read_text()
    prepared = record.split("\n", 1)[0]  # "pydock-<container id>"
    assert prepared in _own_pydock_cgroups()
    res = _served(pooled, scratch, "run", "--rm", "busybox", "sh", "-c",
                  "hostname; cat /proc/self/cgroup; echo $$")  # fmt: skip
    lines = res.stdout.decode().split()
    host, pid1 = lines[0], lines[-1]
    assert pid1 == "1"
    cg_lines = [ln for ln in lines if ln.count(":") >= 2 and ":name=" not in ln]
    if detect().mode == "v2":  # Docker's default there: a private cgroup namespace
        assert cg_lines == ["0::/"]
    else:  # the host's (v1/hybrid default): the prepared cgroup in every hierarchy
        assert cg_lines and all(ln.endswith(f"/{prepared}") for ln in cg_lines)
    assert prepared == f"pydock-{host}" or prepared.startswith(f"pydock-{host}")
    prestart.settle_teardowns(str(pooled.root))  # the teardown follows the answer
    assert prepared not in _own_pydock_cgroups()  # removed with the container


def test_detached_and_other_cgroup_parent(pooled: Pydock, scratch: Path) -> None:
    """A monitored run (-d) and one with --cgroup-parent cannot use the prepared cgroup:
    the worker drops it and the container gets its own, removed with it."""
    cid = _served(pooled, scratch, "run", "-d", "busybox", "sleep", "30").stdout.decode().strip()
    assert len(cid) == 64
    # The prepared id, its cgroup dropped by the worker and made again by the monitor.
    assert f"pydock-{cid}" in _own_pydock_cgroups()
    assert pooled.out("inspect", "-f", "{{.State.Status}}", cid).strip() == "running"
    top = pooled.out("top", cid)
    assert "sleep" in top
    pooled("rm", "-f", cid, check=True)
    assert f"pydock-{cid}" not in _own_pydock_cgroups()
    res = _served(pooled, scratch, "run", "--rm", "--cgroup-parent", "pdtest-starter", "busybox",
                  "cat", "/proc/self/cgroup")  # fmt: skip
    assert res.returncode == 0, res.stderr
    prestart.settle_teardowns(str(pooled.root))  # the cgroup goes after the answer
    own = own_paths()["pids"].rstrip("/")
    pids_own = Path("/sys/fs/cgroup/pids") / own.lstrip("/")
    if (pids_own / "pdtest-starter").exists():
        assert not list((pids_own / "pdtest-starter").glob("pydock-*"))
        (pids_own / "pdtest-starter").rmdir()


def test_host_network_discards_the_held_init(pooled: Pydock, scratch: Path) -> None:
    res = _served(pooled, scratch, "run", "--rm", "--network", "host", "busybox", "true")
    assert res.returncode == 0, res.stderr


def test_signals_reach_the_container(pooled: Pydock, scratch: Path) -> None:
    _wait_idle_worker(pooled.root)
    proc = subprocess.Popen(
        [PYDOCK, "--root", str(pooled.root), "--storage-driver", "overlay2", "run", "--rm",
         "--network", "none", "busybox", "sh", "-c", "trap 'exit 7' TERM; echo up; "
         "while :; do sleep 0.05; done"],
        stdout=subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdout is not None
    assert proc.stdout.readline() == b"up\n"
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 7


def test_dead_worker_and_stale_code_fall_back(pooled: Pydock, scratch: Path) -> None:
    # A worker killed outright: the next run finds its dead socket and runs in-process.
    sock = _wait_idle_worker(pooled.root)
    os.kill(_pid(sock), signal.SIGKILL)
    deadline = time.monotonic() + 5
    while (pooled.root / "starters" / sock).exists() and os.path.exists(f"/proc/{_pid(sock)}"):
        assert time.monotonic() < deadline
        time.sleep(0.01)
    res = pooled("run", "--rm", "busybox", "echo", "ok")
    assert res.returncode == 0 and res.stdout == b"ok\n", res.stderr
    # That run refilled the pool; the fill also removed the dead worker's cgroup.
    sock = _wait_idle_worker(pooled.root)
    # Code that changed on disk (an upgrade): the worker declines, the CLI runs the command.
    import pydock.engine.cli as cli_mod

    path = cli_mod.__file__
    st = os.stat(path)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    try:
        res = pooled("run", "--rm", "busybox", "echo", "fresh")
    finally:
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert res.returncode == 0 and res.stdout == b"fresh\n", res.stderr


def test_no_pool_without_config(overlay_pydock: Pydock) -> None:
    overlay_pydock("run", "--rm", "busybox", "true", check=True)
    assert _workers(overlay_pydock.root) == []
    assert not (overlay_pydock.root / "starters").exists()


def test_served_run_has_the_clients_environment(scratch: Path) -> None:
    """The worker takes the client's environment exactly: variables the worker's creator
    had but the client lacks are gone (here PYDOCK_STORAGE_DRIVER picks the driver)."""
    p = Pydock(scratch / "root", "overlay2")
    p("image", "bootstrap", check=True)
    (p.root / "daemon.json").write_text(json.dumps({"start-pool": 1}))
    base = {k: v for k, v in os.environ.items() if k != "PYDOCK_STORAGE_DRIVER"}
    try:
        creator_env = dict(base, PYDOCK_STORAGE_DRIVER="vfs")
        subprocess.run([PYDOCK, "--root", str(p.root), "system", "warm"], check=True,
                       env=creator_env, capture_output=True)  # fmt: skip
        for env, want in ((base, "overlay2"), (dict(base, PYDOCK_STORAGE_DRIVER="vfs"), "vfs")):
            _wait_idle_worker(p.root)
            trace = scratch / f"t-{want}.jsonl"
            res = subprocess.run(
                [PYDOCK, "--root", str(p.root), "run", "--network", "none", "--name", want,
                 "busybox", "true"],
                env=dict(env, PYDOCK_TRACE=str(trace)), capture_output=True, timeout=60,
            )  # fmt: skip
            assert res.returncode == 0, res.stderr
            assert "handoff" in trace.read_text()
            assert p.out("inspect", "-f", "{{.Driver}}", want).strip() == want
    finally:
        p.cleanup()
        p("system", "warm", "--stop", check=True)


def test_served_container_starts_with_clean_signal_state(pooled: Pydock, scratch: Path) -> None:
    """The worker blocks and handles signals of its own; its container inherits none of
    that (signal(7): the mask and ignored dispositions survive execve)."""
    res = _served(pooled, scratch, "run", "--rm", "busybox", "grep", "-E", "^Sig(Blk|Ign|Cgt)",
                  "/proc/self/status")  # fmt: skip
    assert res.returncode == 0, res.stderr
    masks = dict(line.split(":\t") for line in res.stdout.decode().splitlines())
    assert masks == {"SigBlk": "0" * 16, "SigIgn": "0" * 16, "SigCgt": "0" * 16}


WARM_PROBE = """
import json, sys
from pydock.engine import starter
starter._warm_pyroute2(sys.argv[1])
print(json.dumps("pyroute2.iproute.linux" in sys.modules))
"""


def test_pyroute2_is_imported_ahead_only_where_runs_need_it(scratch: Path) -> None:
    """Workers import pyroute2 (~25 MB that every process of the line would carry) only
    once a served run of the root set up a bridge without a namespace pool."""
    import sys

    root = scratch / "root"
    (root / "starters").mkdir(parents=True)

    def warmed() -> bool:
        res = subprocess.run([sys.executable, "-c", WARM_PROBE, str(root)],
                             capture_output=True, timeout=60)  # fmt: skip
        assert res.returncode == 0, res.stderr
        return json.loads(res.stdout)

    assert warmed() is False  # no hint yet
    (root / "starters" / "needs-pyroute2").touch()
    assert warmed() is True
    (root / "daemon.json").write_text(json.dumps({"netns-pool": 2}))
    assert warmed() is False  # pooled namespaces: bridge runs need no pyroute2
