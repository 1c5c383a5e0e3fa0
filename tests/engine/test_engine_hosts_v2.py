"""`pydock` end to end on a pure cgroup v2 host, as a user of a systemd distribution runs it
(the QEMU guests of tests/guests boot Debian's 6.1 and 6.12 kernels this way; skipped on
this hybrid host). The storage driver is the automatic choice, as a new user gets it.

``--privileged`` appears only where the test's point is not the device rules (which need
the eBPF device filter on v2): default runs, the limits read back inside the container and
the caller in a leaf cgroup run without it, as Docker's users do.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import PYDOCK
from netfix import configure, force_clean, free_port, leftovers, state
from pdcli import Pydock
from pydock.cgroupfs import detect

pytestmark = pytest.mark.guest

MiB = 1 << 20
CGROOT = Path("/sys/fs/cgroup")


class AutoPydock(Pydock):
    """The CLI with no --storage-driver: the probe picks, as on a new user's machine."""

    def _args(self, args: tuple[str, ...]) -> list[str]:
        return super()._args(args)[2:]


@pytest.fixture(scope="module", autouse=True)
def _pure_v2() -> None:
    mode = detect().mode
    if mode != "v2":
        pytest.skip(f"these tests describe a pure cgroup v2 host (the guests); this one is {mode}")


@pytest.fixture(scope="module")
def store() -> Iterator[Path]:
    """One store for the module: bootstrapping busybox costs seconds in a guest."""
    scratch = os.environ.get("PYDOCK_TEST_SCRATCH", "/var/tmp/pydock-tests")  # conftest's
    root = Path(tempfile.mkdtemp(prefix="v2-", dir=scratch)) / "root"
    p = AutoPydock(root, "")
    p("image", "bootstrap", check=True)
    try:
        yield root
    finally:
        shutil.rmtree(root.parent, ignore_errors=True)


@pytest.fixture
def pd(store: Path) -> Iterator[AutoPydock]:
    p = AutoPydock(store, "")
    try:
        yield p
    finally:
        p.cleanup()


def cgroup_dir(pid: int) -> Path:
    """The v2 cgroup of ``pid`` as the host sees it ("0::/path" in /proc/PID/cgroup)."""
    text = Path(f"/proc/{pid}/cgroup").read_text()
    return CGROOT / text.strip().split("::", 1)[1].lstrip("/")


def inspect(pd: Pydock, ref: str) -> dict:
    return json.loads(pd.out("inspect", ref))[0]


def wait_state(pd: Pydock, ref: str, status: str, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        info = inspect(pd, ref)
        if info["State"]["Status"] == status:
            return info
        time.sleep(0.1)
    raise AssertionError(f"{ref} is {info['State']['Status']}, not {status}")


def io_weight_ok(text: str) -> bool:
    # BFQ takes blkio's scale; io.weight (iocost) its own: 300 -> 2930 (runc's conversion)
    return text.split()[-1] in ("300", "2930")


# flag, value, cgroup file, the expected content (or a check of it)
LIMITS = [
    ("--memory", "64m", "memory.max", str(64 * MiB)),
    ("--cpus", "0.5", "cpu.max", "50000 100000"),
    ("--pids-limit", "42", "pids.max", "42"),
    ("--cpuset-cpus", "1", "cpuset.cpus", "1"),
    ("--blkio-weight", "300", "io.bfq.weight", io_weight_ok),
]


def check(want, got: str) -> bool:
    return want(got) if callable(want) else got == want


def test_default_run(pd):
    res = pd("run", "--rm", "busybox", "echo", "hello")
    assert (res.returncode, res.stdout, res.stderr) == (0, b"hello\n", b"")


def test_info_reports_v2_and_the_chosen_driver(pd):
    info = pd.out("info")
    assert "Cgroup Version: 2" in info
    # overlay2 is the first choice and serves on every kernel the guests boot, by the
    # mount method its probe proved; where that is mount(2), info says why (6.1: the kernel
    # refused a test mount by fsconfig lowerdir+)
    assert "Storage Driver: overlay2" in info, info
    method = re.search(r"Mount method: (.*)", info)
    assert method, info
    assert method[1] == "fsconfig lowerdir+ (new mount API)" or re.fullmatch(
        r"mount\(2\) with short l/ links \(.*lowerdir\+.*\)", method[1]
    ), method[1]


def _limit_flags() -> list[str]:
    return [a for flag, value, *_ in LIMITS for a in (flag, value)]


def _unmet(read) -> list[str]:
    """The limits whose file does not read as wanted; ``read(name)`` reads one file."""
    bad = []
    for flag, value, name, want in LIMITS:
        got = read(name)
        if not check(want, got):
            bad.append(f"{flag} {value}: {name} reads {got!r}")
    return bad


def test_limits_read_back_outside(pd):
    # Every limit in one container (each guest command costs seconds under TCG).
    cid = pd.out("run", "-d", "--privileged", *_limit_flags(), "busybox", "sleep", "300").strip()
    d = cgroup_dir(inspect(pd, cid)["State"]["Pid"])

    def read(name: str) -> str:
        f = d / name
        if name == "io.bfq.weight" and not f.exists():
            f = d / "io.weight"
        return f.read_text().strip()

    assert _unmet(read) == []
    pd.out("rm", "-f", cid)
    assert not d.exists()


def test_limits_read_back_inside(pd):
    # Docker mounts the container's own cgroup (its cgroup namespace root) read-only on
    # /sys/fs/cgroup: the container reads its limits there.
    script = (
        "for f in memory.max cpu.max pids.max cpuset.cpus io.bfq.weight io.weight; do "
        'echo "$f=$(cat /sys/fs/cgroup/$f 2>&1)"; done'
    )
    res = pd("run", "--rm", *_limit_flags(), "busybox", "sh", "-c", script)
    assert res.returncode == 0, res.stderr
    seen = dict(line.split("=", 1) for line in res.stdout.decode().splitlines())
    if "No such file" in seen["io.bfq.weight"]:
        seen["io.bfq.weight"] = seen["io.weight"]
    assert _unmet(seen.__getitem__) == [], seen


def test_cpuset_seen_by_the_scheduler_inside(pd):
    res = pd("run", "--rm", "--privileged", "--cpuset-cpus", "1", "busybox",
             "grep", "Cpus_allowed_list", "/proc/self/status")  # fmt: skip
    assert res.stdout.decode().split() == ["Cpus_allowed_list:", "1"], res.stderr


def test_memory_limit_oom_kills_with_137(pd):
    cid = pd.out("run", "-d", "--privileged", "--memory", "32m", "busybox", "sh", "-c",
                 "exec tail /dev/zero").strip()  # fmt: skip
    info = wait_state(pd, cid, "exited")
    assert info["State"]["ExitCode"] == 137
    assert info["State"]["OOMKilled"] is True
    res = pd("run", "--rm", "--privileged", "--memory", "32m", "busybox", "sh", "-c",
             "exec tail /dev/zero")  # fmt: skip
    assert res.returncode == 137, res.stderr


def test_pids_limit_stops_forks(pd):
    # 20 sleepers under a limit of 8: a fork fails with EAGAIN, which busybox sh reports and
    # exits 2 on (as it does under Docker).
    script = "for i in $(seq 20); do sleep 30 & done; echo never"
    res = pd("run", "--rm", "--privileged", "--pids-limit", "8", "busybox", "sh", "-c", script)
    assert (res.returncode, res.stdout) == (2, b""), res.stderr
    assert b"can't fork: Resource temporarily unavailable" in res.stderr, res.stderr


def test_pause_unpause_freezes_the_cgroup(pd):
    cid = pd.out("run", "-d", "--privileged", "busybox", "sleep", "300").strip()
    d = cgroup_dir(inspect(pd, cid)["State"]["Pid"])
    pd.out("pause", cid)
    assert inspect(pd, cid)["State"]["Status"] == "paused"
    assert "frozen 1" in (d / "cgroup.events").read_text()
    pd.out("unpause", cid)
    assert inspect(pd, cid)["State"]["Status"] == "running"
    assert "frozen 0" in (d / "cgroup.events").read_text()
    pd.out("rm", "-f", cid)


def test_stats_from_v2_files(pd):
    cid = pd.out("run", "-d", "--privileged", "--memory", "64m", "--pids-limit", "20",
                 "busybox", "sleep", "300").strip()  # fmt: skip
    row = json.loads(pd.out("stats", "--no-stream", "--format", "json", cid))
    assert row["MemUsage"].endswith("/ 64MiB"), row
    assert row["PIDs"] == "1", row
    pd.out("rm", "-f", cid)


def test_run_detached_then_stop(pd):
    cid = pd.out("run", "-d", "--privileged", "busybox", "sleep", "300").strip()
    d = cgroup_dir(inspect(pd, cid)["State"]["Pid"])
    assert d.is_dir()
    pd.out("stop", "-t", "1", cid)
    info = inspect(pd, cid)
    assert info["State"]["Status"] == "exited"
    # PID 1 without a SIGTERM handler ignores it: the stop timeout's SIGKILL ends it
    assert info["State"]["ExitCode"] == 137
    assert not d.exists()
    pd.out("rm", cid)


def test_bridge_and_published_port(pd):
    pd.network = None  # pydock's default network: the bridge
    cfg = configure(pd.root)
    port = free_port()
    httpd = "mkdir -p /www && echo hello-v2 > /www/index.html && exec httpd -f -p 8080 -h /www"
    cid = ""
    try:
        cid = pd.out("run", "-d", "--privileged", "-p", f"{port}:8080", "busybox",
                     "sh", "-c", httpd).strip()  # fmt: skip
        import urllib.request

        for _ in range(100):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as r:
                    body = r.read()
                break
            except OSError:
                time.sleep(0.1)
        else:
            raise AssertionError(f"127.0.0.1:{port} never answered")
        assert body == b"hello-v2\n"
        pd.out("rm", "-f", cid)
        assert leftovers(pd.root, [cfg["bridge"]], [cid]) == []
    finally:
        pd.cleanup()
        if leftovers(pd.root, [cfg["bridge"]], list(state(pd.root).get("containers", {}))):
            force_clean(pd.root, [cfg["bridge"]])


def test_caller_in_a_leaf_cgroup_gets_its_limits(pd):
    # A systemd session scope: a leaf cgroup holding the caller, whose parent delegates
    # every controller; the leaf itself cannot (cgroup-v2.rst, "no internal processes").
    own = Path(f"/proc/{os.getpid()}/cgroup").read_text().strip().split("::", 1)[1]
    slice_ = CGROOT / own.lstrip("/") / f"pdtest-{uuid.uuid4().hex[:10]}.slice"
    scope = slice_ / "session-1.scope"
    scope.mkdir(parents=True)
    try:
        (slice_ / "cgroup.subtree_control").write_text("+cpu +cpuset +io +memory +pids")
        script = 'echo $$ > "$1/cgroup.procs" && shift && exec "$@"'
        cmd = [PYDOCK, "--root", str(pd.root), "run", "--rm", "--network", "none",
               "--memory", "64m", "busybox", "cat", "/sys/fs/cgroup/memory.max"]  # fmt: skip
        res = subprocess.run(["sh", "-c", script, "sh", str(scope), *cmd],
                             capture_output=True, timeout=120)  # fmt: skip
        assert (res.returncode, res.stdout) == (0, f"{64 * MiB}\n".encode()), res.stderr
    finally:
        # whatever pydock made under the slice is empty by now (run --rm): deepest first
        for dirpath, _, _ in sorted(os.walk(slice_), key=lambda w: -len(w[0])):
            os.rmdir(dirpath)
