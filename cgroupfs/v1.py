"""cgroup v1 backend: OCI resources to per-controller files, and statistics.

Controller files live in separate hierarchies; ``paths`` maps a controller name to this
cgroup's directory in the hierarchy that carries it (see layout.py for the naming).
Kernel reference: Documentation/admin-guide/cgroup-v1/*.rst.
"""

from __future__ import annotations

import errno

from . import fsio
from .errors import CgroupError
from .resources import Note, device_rule, given, is_all_devices, other_groups, unknown_keys
from .stats import Stats

# memory.limit_in_bytes reads back as PAGE_COUNTER_MAX * PAGE_SIZE when unlimited; anything
# this large is "no limit".
_UNLIMITED = 1 << 62


def _dir(paths: dict[str, str], ctrl: str, what: str) -> str:
    try:
        return paths[ctrl]
    except KeyError:
        raise CgroupError(f"{what}: the {ctrl} controller is not mounted") from None


def _limit(v: int) -> str:
    return "-1" if v < 0 else str(v)


def _write_pair(first: tuple[str, str], second: tuple[str, str]) -> None:
    """Write two files whose values the kernel checks against each other.

    memory.limit_in_bytes must stay <= memory.memsw.limit_in_bytes, and cfs quota/period are
    validated together against the parent; which order works depends on the current values.
    Try the usual order; on EINVAL do the other file first instead of reading both up front.
    """
    try:
        fsio.write(*first)
    except CgroupError as e:
        cause = e.__cause__
        if not (isinstance(cause, OSError) and cause.errno == errno.EINVAL):
            raise
        fsio.write(*second)
        fsio.write(*first)
        return
    fsio.write(*second)


def _memory(paths: dict[str, str], mem: dict, note: Note) -> None:
    d = _dir(paths, "memory", "memory limits")
    limit, swap = mem.get("limit"), mem.get("swap")
    lim = (f"{d}/memory.limit_in_bytes", _limit(limit)) if given(limit) else None
    # runtime-spec: "swap" is the memory+swap limit, which is exactly v1's memsw.
    sw = (f"{d}/memory.memsw.limit_in_bytes", _limit(swap)) if given(swap) else None
    if sw is not None and swap > 0 and given(limit) and limit > 0 and swap < limit:
        raise CgroupError(f"memory.swap ({swap}) must be >= memory.limit ({limit})")
    if sw is not None:
        try:
            if lim:
                _write_pair(lim, sw)
            else:
                fsio.write(*sw)
        except CgroupError as e:
            if not fsio.missing(e, sw[0]):
                raise
            # No memsw files: the kernel runs without swap accounting (swapaccount=0).
            if swap > 0:
                note("memory.swap needs swap accounting (memory.memsw.* is missing)")
    elif lim:
        try:
            fsio.write(*lim)
        except CgroupError as e:
            if isinstance(e.__cause__, OSError) and e.__cause__.errno == errno.EINVAL:
                raise CgroupError(
                    f"{e} (the memory+swap limit is lower: set memory.swap as well)"
                ) from e.__cause__
            raise
    if given(mem.get("reservation")):
        fsio.write(f"{d}/memory.soft_limit_in_bytes", _limit(mem["reservation"]))
    if mem.get("disableOOMKiller"):
        fsio.write(f"{d}/memory.oom_control", "1")
    if mem.get("swappiness") is not None:
        fsio.write(f"{d}/memory.swappiness", str(mem["swappiness"]))
    if given(mem.get("kernelTCP")):
        fsio.write(f"{d}/memory.kmem.tcp.limit_in_bytes", _limit(mem["kernelTCP"]))
    handled = ("limit", "swap", "reservation", "disableOOMKiller", "swappiness", "kernelTCP")
    unknown_keys("memory", mem, (*handled, "checkBeforeUpdate", "useHierarchy"), note)


def _cpu(paths: dict[str, str], cpu: dict, note: Note) -> None:
    if any(given(cpu.get(k)) for k in ("shares", "quota", "period", "burst", "idle")) or any(
        given(cpu.get(k)) for k in ("realtimeRuntime", "realtimePeriod")
    ):
        d = _dir(paths, "cpu", "cpu limits")
        if given(cpu.get("shares")):
            fsio.write(f"{d}/cpu.shares", str(cpu["shares"]))
        quota, period = cpu.get("quota"), cpu.get("period")
        q = (f"{d}/cpu.cfs_quota_us", _limit(quota)) if given(quota) else None
        p = (f"{d}/cpu.cfs_period_us", str(period)) if given(period) else None
        if p and q:
            _write_pair(p, q)
        elif p or q:
            fsio.write(*(p or q))
        if given(cpu.get("burst")):
            fsio.write(f"{d}/cpu.cfs_burst_us", str(cpu["burst"]))
        if cpu.get("idle") is not None:
            fsio.write(f"{d}/cpu.idle", str(cpu["idle"]))
        # Real-time period before runtime: runtime is checked against the period.
        if given(cpu.get("realtimePeriod")):
            fsio.write(f"{d}/cpu.rt_period_us", str(cpu["realtimePeriod"]))
        if given(cpu.get("realtimeRuntime")):
            fsio.write(f"{d}/cpu.rt_runtime_us", str(cpu["realtimeRuntime"]))
    if cpu.get("cpus") or cpu.get("mems"):
        d = _dir(paths, "cpuset", "cpuset")
        if cpu.get("cpus"):
            fsio.write(f"{d}/cpuset.cpus", cpu["cpus"])
        if cpu.get("mems"):
            fsio.write(f"{d}/cpuset.mems", cpu["mems"])
    handled = ("shares", "quota", "period", "burst", "idle", "realtimeRuntime")
    unknown_keys("cpu", cpu, (*handled, "realtimePeriod", "cpus", "mems"), note)


def _pids(paths: dict[str, str], pids: dict, note: Note) -> None:
    limit = pids.get("limit")
    if given(limit):
        d = _dir(paths, "pids", "pids limit")
        fsio.write(f"{d}/pids.max", "max" if limit < 0 else str(limit))
    unknown_keys("pids", pids, ("limit",), note)


def _blkio(paths: dict[str, str], bio: dict, note: Note) -> None:
    weight = bio.get("weight")
    if given(weight):
        d = _dir(paths, "blkio", "blkio weight")
        # blkio.weight belongs to CFQ, gone since 5.0; BFQ offers blkio.bfq.weight (same
        # 1..1000 scale). Neither present: no proportional-weight scheduler to configure.
        if not fsio.try_write(f"{d}/blkio.weight", str(weight)) and not fsio.try_write(
            f"{d}/blkio.bfq.weight", str(weight)
        ):
            note("blockIO.weight needs the CFQ or BFQ I/O scheduler (no blkio weight file)")
    unknown_keys("blockIO", bio, ("weight",), note)


def _devices(paths: dict[str, str], rules: list[dict]) -> None:
    d = _dir(paths, "devices", "device rules")
    start = 0
    if rules and not rules[0].get("allow") and is_all_devices(rules[0]):
        # "a" in devices.deny switches the cgroup to default-deny and clears its allow list
        # (cgroup-v1/devices.rst); the allow rules that follow then open single devices.
        fsio.write(f"{d}/devices.deny", "a")
        start = 1
    for rule in rules[start:]:
        target = "devices.allow" if rule.get("allow") else "devices.deny"
        fsio.write(f"{d}/{target}", device_rule(rule))


def apply(paths: dict[str, str], resources: dict, note: Note) -> None:
    """Write OCI ``linux.resources`` into the v1 hierarchies in ``paths``."""
    if resources.get("memory"):
        _memory(paths, resources["memory"], note)
    if resources.get("cpu"):
        _cpu(paths, resources["cpu"], note)
    if resources.get("pids"):
        _pids(paths, resources["pids"], note)
    if resources.get("blockIO"):
        _blkio(paths, resources["blockIO"], note)
    if resources.get("devices"):
        _devices(paths, resources["devices"])
    if resources.get("unified"):
        note("unified (raw cgroup v2 files) needs a cgroup v2 host")
    other_groups(resources, note)


def _capped(v: int | None) -> int | None:
    return None if v is None or v >= _UNLIMITED else v


def _blkio_bytes(d: str) -> tuple[int | None, int | None]:
    # The throttle layer sees every bio whatever the scheduler, so its counters are there on
    # any kernel; lines are "MAJ:MIN Read N" ... and a final "Total N".
    text = fsio.read_opt(f"{d}/blkio.throttle.io_service_bytes_recursive")
    if text is None:
        return None, None
    rd = wr = 0
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 3:
            if parts[1] == "Read":
                rd += int(parts[2])
            elif parts[1] == "Write":
                wr += int(parts[2])
    return rd, wr


def stats(paths: dict[str, str], unified: str | None) -> Stats:
    """Statistics from the v1 hierarchies (cpu usage falls back to unified cpu.stat)."""
    s = Stats()
    if (d := paths.get("memory")) is not None:
        s.memory_usage = fsio.int_or_none(fsio.read_opt(f"{d}/memory.usage_in_bytes"))
        s.memory_limit = _capped(fsio.int_or_none(fsio.read_opt(f"{d}/memory.limit_in_bytes")))
        s.memory_max_usage = fsio.int_or_none(fsio.read_opt(f"{d}/memory.max_usage_in_bytes"))
        # "oom_kill" in memory.oom_control exists since 4.13.
        s.oom_kills = fsio.keyed(fsio.read_opt(f"{d}/memory.oom_control")).get("oom_kill")
    if (d := paths.get("cpuacct")) is not None:
        s.cpu_usage_ns = fsio.int_or_none(fsio.read_opt(f"{d}/cpuacct.usage"))
    elif unified is not None:
        usec = fsio.keyed(fsio.read_opt(f"{unified}/cpu.stat")).get("usage_usec")
        s.cpu_usage_ns = None if usec is None else usec * 1000
    if (d := paths.get("pids")) is not None:
        s.pids_current = fsio.int_or_none(fsio.read_opt(f"{d}/pids.current"))
        s.pids_limit = fsio.int_or_none(fsio.read_opt(f"{d}/pids.max"))
    if (d := paths.get("blkio")) is not None:
        s.blkio_read_bytes, s.blkio_write_bytes = _blkio_bytes(d)
    return s
