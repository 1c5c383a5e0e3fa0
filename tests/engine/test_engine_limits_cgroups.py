"""Resource limits end to end: flags -> HostConfig -> linux.resources -> the kernel.

The limits are read back from the container's own cgroup files on the host (the kernel's
view), and enforced for real: an allocation past --memory is OOM-killed, a fork bomb
hits --pids-limit while the container lives on.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from helpers import cgroup_dir as _cgroup_dir
from pydock.engine import limits


def _inspect(pydock, ref: str) -> dict:
    return json.loads(pydock.out("inspect", ref))[0]


def _wait_exited(pydock, ref: str, timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        info = _inspect(pydock, ref)
        if not info["State"]["Running"]:
            return info
        time.sleep(0.05)
    raise AssertionError(f"{ref} still running after {timeout}s")


def test_memory_limit_oom_kills_with_137(overlay_pydock):
    # `tail` keeps an endless line from /dev/zero in memory: past 32m the kernel OOM-kills
    # it, and it is PID 1, so the container ends as Docker reports OOM kills.
    res = overlay_pydock("run", "--rm", "--memory", "32m", "busybox", "sh", "-c",
                         "exec tail /dev/zero")  # fmt: skip
    assert res.returncode == 137, res.stderr


def test_oom_killed_recorded_in_inspect(overlay_pydock):
    cid = overlay_pydock.out("run", "-d", "--memory", "16m", "busybox", "sh", "-c",
                             "exec tail /dev/zero").strip()  # fmt: skip
    info = _wait_exited(overlay_pydock, cid)
    assert info["State"]["ExitCode"] == 137
    assert info["State"]["OOMKilled"] is True
    assert info["HostConfig"]["Memory"] == 16 << 20
    overlay_pydock("rm", cid, check=True)


def test_limits_in_cgroup_files_and_inspect(overlay_pydock):
    cid = overlay_pydock.out(
        "run", "-d", "--memory", "64m", "--memory-swap", "128m", "--cpus", "0.5",
        "--cpu-shares", "512", "--cpuset-cpus", "0", "--pids-limit", "50",
        "busybox", "sleep", "60",
    ).strip()  # fmt: skip
    try:
        info = _inspect(overlay_pydock, cid)
        hc = info["HostConfig"]
        assert (hc["Memory"], hc["MemorySwap"]) == (64 << 20, 128 << 20)
        assert (hc["NanoCpus"], hc["CpuShares"], hc["CpusetCpus"]) == (500_000_000, 512, "0")
        assert hc["PidsLimit"] == 50
        pid = info["State"]["Pid"]
        mem = _cgroup_dir(pid, "memory")
        assert int((mem / "memory.limit_in_bytes").read_text()) == 64 << 20
        if (mem / "memory.memsw.limit_in_bytes").exists():
            assert int((mem / "memory.memsw.limit_in_bytes").read_text()) == 128 << 20
        cpu = _cgroup_dir(pid, "cpu")
        assert int((cpu / "cpu.cfs_quota_us").read_text()) == 50_000
        assert int((cpu / "cpu.cfs_period_us").read_text()) == limits.CPU_PERIOD
        assert int((cpu / "cpu.shares").read_text()) == 512
        assert (_cgroup_dir(pid, "cpuset") / "cpuset.cpus").read_text().strip() == "0"
        assert (_cgroup_dir(pid, "pids") / "pids.max").read_text().strip() == "50"
        # the container runs pinned to CPU 0
        status = Path(f"/proc/{pid}/status").read_text()
        assert "Cpus_allowed_list:\t0\n" in status
    finally:
        overlay_pydock("rm", "-f", cid, check=True)


def test_memory_defaults_swap_to_twice_memory(overlay_pydock):
    cid = overlay_pydock.out("create", "--memory", "10m", "busybox", "true").strip()
    hc = _inspect(overlay_pydock, cid)["HostConfig"]
    assert (hc["Memory"], hc["MemorySwap"]) == (10 << 20, 20 << 20)  # Docker's daemon default
    overlay_pydock("rm", cid, check=True)


def test_pids_limit_stops_a_fork_bomb(overlay_pydock):
    # The bomb runs in one background subshell, PID 1's only fork; PID 1 then becomes
    # `sleep` through exec, which needs no fork, so the container outlives the bomb's
    # failed forks. (ash forks every element of `b | b &` from the current shell: run
    # from PID 1 itself, its second fork could meet the limit and end PID 1.)
    cid = overlay_pydock.out("run", "-d", "--pids-limit", "20", "busybox", "sh", "-c",
                             "(b() { b | b & }; b) & exec sleep 300").strip()  # fmt: skip
    try:
        pid = _inspect(overlay_pydock, cid)["State"]["Pid"]
        pids = _cgroup_dir(pid, "pids")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            events = dict(ln.split() for ln in (pids / "pids.events").read_text().splitlines())
            if int(events.get("max", 0)) > 0:
                break
            time.sleep(0.05)
        assert int(events["max"]) > 0  # forks were refused at the limit
        assert int((pids / "pids.current").read_text()) <= 20
        time.sleep(0.3)
        info = _inspect(overlay_pydock, cid)
        assert info["State"]["Running"] is True
        assert Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0] == b"sleep"
    finally:
        overlay_pydock("rm", "-f", cid, check=True)


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--memory", "4m"], "Minimum memory limit allowed is 6MB"),
        (["--memory", "12q"], 'invalid argument "12q" for "-m, --memory" flag'),
        (["--memory-swap", "64m"], "You should always set the Memory limit when using Memoryswap"),
        (["--memory", "64m", "--memory-swap", "32m"], "Minimum memoryswap limit should be larger"),
        (["--cpus", str((os.cpu_count() or 1) + 1)], "Range of CPUs is from 0.01 to"),
        (["--cpus", "lots"], "failed to parse lots as a rational number"),
        (["--cpuset-cpus", "0-x"], "Invalid value 0-x for cpuset cpus"),
        (["--cpuset-cpus", "4096"], "Requested CPUs are not available"),
        (["--blkio-weight", "5"], "Range of blkio weight is from 10 to 1000"),
    ],
)
def test_bad_limits_fail_before_anything_is_made(overlay_pydock, flags, message):
    res = overlay_pydock("run", "--rm", *flags, "busybox", "true")
    assert res.returncode == 125
    assert message in res.stderr.decode()
    assert len(res.stderr.decode().strip().splitlines()) == 1
    assert overlay_pydock.out("ps", "-aq") == ""


def test_blkio_weight_applied_or_discarded_like_docker(overlay_pydock):
    res = overlay_pydock("create", "--blkio-weight", "300", "busybox", "true", check=True)
    cid = res.stdout.decode().strip()
    weight = _inspect(overlay_pydock, cid)["HostConfig"]["BlkioWeight"]
    if limits._blkio_weight_supported():
        assert weight == 300
    else:  # no CFQ/BFQ scheduler: Docker warns and drops the weight
        assert weight == 0
        assert "Block I/O weight" in res.stderr.decode() and "discarded" in res.stderr.decode()
    overlay_pydock("rm", cid, check=True)


@pytest.mark.parametrize(
    ("text", "value"),
    [("512", 512), ("1b", 1), ("6m", 6 << 20), ("6mb", 6 << 20), ("1.5g", 3 << 29),
     ("2K", 2048), ("1t", 1 << 40), ("1MiB", 1 << 20), ("2 g", 2 << 30)],
)  # fmt: skip
def test_parse_bytes_like_docker(text, value):
    assert limits.parse_bytes(text, "--memory") == value


def test_minus_one_is_unlimited_for_memory_swap_only():
    """opts.MemSwapBytes takes -1 (no limit); opts.MemBytes (--memory) refuses it."""
    assert limits.parse_bytes("-1", "--memory-swap", unlimited=True) == -1
    with pytest.raises(limits.InvalidInput, match="invalid size: '-1'"):
        limits.parse_bytes("-1", "-m, --memory")


def test_resources_for_hostconfig():
    res = limits.resources({"Memory": 64 << 20, "MemorySwap": -1, "NanoCpus": 1_500_000_000,
                            "CpuShares": 256, "CpusetCpus": "0-1", "PidsLimit": -1,
                            "BlkioWeight": 500})  # fmt: skip
    assert res == {
        "memory": {"limit": 64 << 20, "swap": -1},
        "cpu": {"shares": 256, "period": 100_000, "quota": 150_000, "cpus": "0-1"},
        "pids": {"limit": -1},
        "blockIO": {"weight": 500},
    }
    assert limits.resources({"Memory": 0, "PidsLimit": None}) == {}


def test_limits_written_on_a_fake_v2_tree(scratch: Path):
    """cgroup v2 by design: the same resources on a FAKE v2 directory (this hybrid host has
    no v2 controllers), read back from the files the backend writes."""
    from pydock.cgroupfs import v2

    fake = scratch / "fake-v2-cgroup"
    fake.mkdir()
    for name in ("memory.max", "memory.swap.max", "cpu.max", "cpu.weight", "cpuset.cpus",
                 "pids.max", "io.weight"):  # fmt: skip
        (fake / name).write_text("")
    notes: list[str] = []
    hc = {"Memory": 64 << 20, "MemorySwap": 128 << 20, "NanoCpus": 500_000_000,
          "CpuShares": 1024, "CpusetCpus": "0", "PidsLimit": 20, "BlkioWeight": 500}  # fmt: skip
    v2.apply(str(fake), limits.resources(hc), notes.append)
    assert notes == []
    assert (fake / "memory.max").read_text() == str(64 << 20)
    assert (fake / "memory.swap.max").read_text() == str(64 << 20)  # v2: swap alone
    assert (fake / "cpu.max").read_text() == "50000 100000"
    assert (fake / "cpu.weight").read_text() == str(v2.shares_to_weight(1024))
    assert (fake / "cpuset.cpus").read_text() == "0"
    assert (fake / "pids.max").read_text() == "20"
    assert (fake / "io.weight").read_text() == f"default {v2.blkio_weight_to_io_weight(500)}"
