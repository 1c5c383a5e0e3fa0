"""``update`` / ``container update``: live limit changes read back from the kernel's cgroup
files on the host, the record (``inspect``) and the bundle a later start uses, and Docker's
refusals with the record left as it was."""

from __future__ import annotations

import json
import time

from helpers import cgroup_dir


def _inspect(pd, ref: str) -> dict:
    return json.loads(pd.out("inspect", ref))[0]


def _bundle_resources(pd, cid: str) -> dict:
    return json.loads((pd.root / "containers" / cid / "config.json").read_text())["linux"][
        "resources"
    ]


def _read(pid: int, controller: str, name: str) -> str:
    return (cgroup_dir(pid, controller) / name).read_text().strip()


def test_update_running_container_changes_cgroup_and_record(overlay_pydock):
    pd = overlay_pydock
    cid = pd.out("run", "-d", "busybox", "sleep", "60").strip()
    res = pd("update", "--memory", "64m", "--memory-swap", "128m", "--cpus", "0.5",
             "--cpu-shares", "512", "--cpuset-cpus", "0", "--pids-limit", "30",
             "--restart", "on-failure:3", cid[:12])  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert res.stdout.decode() == cid[:12] + "\n"  # the ref as typed, as Docker prints it
    info = _inspect(pd, cid)
    pid = info["State"]["Pid"]
    assert int(_read(pid, "memory", "memory.limit_in_bytes")) == 64 << 20
    if (cgroup_dir(pid, "memory") / "memory.memsw.limit_in_bytes").exists():
        assert int(_read(pid, "memory", "memory.memsw.limit_in_bytes")) == 128 << 20
    assert _read(pid, "cpu", "cpu.cfs_quota_us") == "50000"
    assert _read(pid, "cpu", "cpu.shares") == "512"
    assert _read(pid, "cpuset", "cpuset.cpus") == "0"
    assert _read(pid, "pids", "pids.max") == "30"
    hc = info["HostConfig"]
    assert (hc["Memory"], hc["MemorySwap"], hc["NanoCpus"]) == (64 << 20, 128 << 20, 500_000_000)
    assert (hc["CpuShares"], hc["CpusetCpus"], hc["PidsLimit"]) == (512, "0", 30)
    assert hc["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 3}
    assert _bundle_resources(pd, cid)["pids"] == {"limit": 30}
    # a second update changes only what it names; the container lives on
    pd("container", "update", "--pids-limit", "-1", cid, check=True)
    assert _read(pid, "pids", "pids.max") == "max"
    assert _read(pid, "cpu", "cpu.shares") == "512"
    assert _inspect(pd, cid)["State"]["Running"] is True


def test_update_stopped_container_is_kept_by_next_start(overlay_pydock):
    pd = overlay_pydock
    cid = pd.out("create", "busybox", "sleep", "60").strip()
    pd("update", "--pids-limit", "25", "--cpu-shares", "256", cid, check=True)
    assert _inspect(pd, cid)["HostConfig"]["PidsLimit"] == 25
    pd("start", cid, check=True)
    pid = _inspect(pd, cid)["State"]["Pid"]
    assert _read(pid, "pids", "pids.max") == "25"
    assert _read(pid, "cpu", "cpu.shares") == "256"
    pd("stop", "-t", "0", cid, check=True)
    pd("start", cid, check=True)  # and every start after it
    assert _read(_inspect(pd, cid)["State"]["Pid"], "pids", "pids.max") == "25"


def test_memory_below_usage_is_refused_and_nothing_changes(overlay_pydock):
    pd = overlay_pydock
    # 30 MiB in the container's tmpfs /dev/shm is charged to its memory cgroup and cannot
    # be reclaimed below that without swap: the kernel refuses a lower limit (EBUSY)
    fill = "head -c 30m /dev/zero > /dev/shm/x && touch /ready && sleep 60"
    cid = pd.out("run", "-d", "-m", "100m", "busybox", "sh", "-c", fill).strip()
    pd("exec", cid, "sh", "-c", "while [ ! -e /ready ]; do sleep 0.05; done", check=True)
    before = _bundle_resources(pd, cid)
    res = pd("update", "--memory", "8m", "--memory-swap", "8m", cid)
    assert res.returncode == 1
    err = res.stderr.decode()
    assert err.startswith(f"Error response from daemon: Cannot update container {cid}: ")
    assert "Device or resource busy" in err
    assert res.stdout == b""
    info = _inspect(pd, cid)
    assert (info["HostConfig"]["Memory"], info["HostConfig"]["MemorySwap"]) == (
        100 << 20, 200 << 20,
    )  # fmt: skip
    assert _bundle_resources(pd, cid) == before
    pid = info["State"]["Pid"]
    assert int(_read(pid, "memory", "memory.limit_in_bytes")) == 100 << 20
    if (cgroup_dir(pid, "memory") / "memory.memsw.limit_in_bytes").exists():
        assert int(_read(pid, "memory", "memory.memsw.limit_in_bytes")) == 200 << 20


def test_docker_refusals(overlay_pydock):
    pd = overlay_pydock
    cid = pd.out("run", "-d", "busybox", "sleep", "60").strip()
    hc0 = _inspect(pd, cid)["HostConfig"]
    # no swap limit recorded: Docker wants --memory-swap with --memory
    res = pd("update", "--memory", "64m", cid)
    assert res.returncode == 1
    assert res.stderr.decode() == (
        f"Error response from daemon: Cannot update container {cid}: Memory limit should be "
        "smaller than already set memoryswap limit, update the memoryswap at the same time\n"
    )
    res = pd("update", "--memory", "64m", "--memory-swap", "32m", cid)
    assert (res.returncode, res.stderr.decode()) == (
        1, "pydock: Minimum memoryswap limit should be larger than memory limit, see usage\n",
    )  # fmt: skip
    res = pd("update", "--memory", "4m", "--memory-swap", "8m", cid)
    assert (res.returncode, res.stderr.decode()) == (
        1, "pydock: Minimum memory limit allowed is 6MB\n",
    )  # fmt: skip
    res = pd("update", cid)
    assert (res.returncode, res.stderr.decode()) == (
        1, "pydock: you must provide one or more flags when using this command\n",
    )  # fmt: skip
    res = pd("update", "--memory", "-1", cid)  # only --memory-swap takes -1
    assert (res.returncode, res.stderr.decode()) == (
        125, 'pydock: invalid argument "-1" for "--memory" flag: invalid size\n',
    )  # fmt: skip
    res = pd("update", "--cpus", "lots", cid)
    assert res.returncode == 125 and b"failed to parse lots as a rational number" in res.stderr
    res = pd("update", "--cpus", "1000", cid)
    assert res.returncode == 1 and res.stderr.decode().startswith("pydock: Range of CPUs is")
    res = pd("update", "--cpus", "1", "nosuchcontainer", cid)
    assert res.returncode == 1
    assert res.stdout.decode() == cid + "\n"  # the others are still updated
    assert res.stderr.decode() == "Error response from daemon: No such container: nosuchcontainer\n"
    hc = _inspect(pd, cid)["HostConfig"]
    assert hc["NanoCpus"] == 1_000_000_000
    assert {k: v for k, v in hc.items() if k != "NanoCpus"} == {
        k: v for k, v in hc0.items() if k != "NanoCpus"
    }
    res = pd("update")
    assert res.returncode == 1 and b"requires at least 1 argument" in res.stderr


def test_restart_policy_refused_with_auto_remove(overlay_pydock):
    pd = overlay_pydock
    cid = pd.out("create", "--rm", "busybox", "true").strip()
    res = pd("update", "--restart", "always", cid)
    assert res.returncode == 1
    assert res.stderr.decode() == (
        f"Error response from daemon: Cannot update container {cid}: Restart policy cannot be "
        "updated because AutoRemove is enabled for the container\n"
    )
    assert _inspect(pd, cid)["HostConfig"]["RestartPolicy"]["Name"] == "no"


def test_restart_policy_update_reaches_the_running_containers_monitor(overlay_pydock):
    pd = overlay_pydock
    # no policy at run; the update is what makes its monitor restart it (Docker's
    # UpdateMonitor), twice, as on-failure:2 allows
    cid = pd.out("run", "-d", "busybox", "sh", "-c", "sleep 1; exit 3").strip()
    pd("update", "--restart", "on-failure:2", cid, check=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        info = _inspect(pd, cid)
        if info["RestartCount"] == 2 and info["State"]["Status"] == "exited":
            break
        time.sleep(0.2)
    assert (info["RestartCount"], info["State"]["Status"], info["State"]["ExitCode"]) == (
        2, "exited", 3,
    )  # fmt: skip
