"""cgroup v2 backend: OCI resources to unified-hierarchy files, and statistics.

Everything lives in one directory. The v1-shaped OCI values are converted the way runc and
crun convert them, so a config means the same thing on either kind of host.
Kernel reference: Documentation/admin-guide/cgroup-v2.rst.
"""

from __future__ import annotations

from . import fsio
from .errors import CgroupError
from .resources import Note, given, other_groups, unknown_keys
from .stats import Stats


def shares_to_weight(shares: int) -> int:
    """cpu.shares [2, 262144] -> cpu.weight [1, 10000], linear, as runc/crun map it."""
    return 1 + ((shares - 2) * 9999) // 262142


def blkio_weight_to_io_weight(weight: int) -> int:
    """blkio.weight [10, 1000] -> io.weight [1, 10000], linear, as runc/crun map it."""
    return 1 + ((weight - 10) * 9999) // 990


def swap_to_v2(swap: int | None, limit: int | None) -> str | None:
    """memory.swap.max from the OCI values, or None to leave it alone.

    runtime-spec's ``swap`` is the v1 memory+swap limit; v2 limits swap on its own, so the
    swap-only figure is swap - limit. -1 is unlimited. An unlimited memory limit with swap
    unset means "unlimited swap too", which is what v1 does with memsw.
    """
    if limit is not None and limit < 0 and not given(swap):
        return "max"
    if not given(swap):
        return None
    if swap < 0:
        return "max"
    if not given(limit) or limit < 0:
        raise CgroupError("memory.swap needs a memory.limit on cgroup v2")
    if swap < limit:
        raise CgroupError(f"memory.swap ({swap}) must be >= memory.limit ({limit})")
    return str(swap - limit)


def _max(v: int) -> str:
    return "max" if v < 0 else str(v)


def _write(d: str, name: str, value: str, controller: str) -> None:
    """Write a controller file; a missing file means the controller is not enabled here."""
    if not fsio.try_write(f"{d}/{name}", value):
        raise CgroupError(
            f"cannot set {name}: the {controller} controller is not enabled for {d} "
            f"(its parent does not delegate it, and cannot while other processes sit in it: "
            f"cgroup v2's no-internal-processes rule; start pydock in a cgroup of its own, "
            f"e.g. systemd-run --scope -p Delegate=yes, or give --cgroup-parent a cgroup "
            f"that delegates it)"
        )


def _memory(d: str, mem: dict, note: Note) -> None:
    limit = mem.get("limit")
    if given(limit):
        _write(d, "memory.max", _max(limit), "memory")
    swap = swap_to_v2(mem.get("swap"), limit)
    if swap is not None:
        _write(d, "memory.swap.max", swap, "memory")
    if given(mem.get("reservation")):
        _write(d, "memory.low", _max(mem["reservation"]), "memory")
    if mem.get("disableOOMKiller"):
        # v2 has no per-cgroup switch to turn the OOM killer off (memory.oom.group is a
        # different thing), so the request cannot be honoured.
        note("memory.disableOOMKiller is not supported on cgroup v2")
    unknown_keys(
        "memory",
        mem,
        ("limit", "swap", "reservation", "disableOOMKiller", "checkBeforeUpdate", "useHierarchy"),
        note,
    )


def _cpu(d: str, cpu: dict, note: Note) -> None:
    if given(cpu.get("shares")):
        _write(d, "cpu.weight", str(shares_to_weight(cpu["shares"])), "cpu")
    quota, period = cpu.get("quota"), cpu.get("period")
    if given(quota) or given(period):
        # "$MAX $PERIOD"; without a period the kernel keeps the current one.
        value = str(quota) if given(quota) and quota > 0 else "max"
        if given(period):
            value += f" {period}"
        _write(d, "cpu.max", value, "cpu")
    if given(cpu.get("burst")):
        _write(d, "cpu.max.burst", str(cpu["burst"]), "cpu")
    if cpu.get("idle") is not None:
        _write(d, "cpu.idle", str(cpu["idle"]), "cpu")
    if cpu.get("cpus"):
        _write(d, "cpuset.cpus", cpu["cpus"], "cpuset")
    if cpu.get("mems"):
        _write(d, "cpuset.mems", cpu["mems"], "cpuset")
    # realtimeRuntime/realtimePeriod have no v2 interface (RT group scheduling is v1-only).
    unknown_keys("cpu", cpu, ("shares", "quota", "period", "burst", "idle", "cpus", "mems"), note)


def _pids(d: str, pids: dict, note: Note) -> None:
    if given(pids.get("limit")):
        _write(d, "pids.max", _max(pids["limit"]), "pids")
    unknown_keys("pids", pids, ("limit",), note)


def _io(d: str, bio: dict, note: Note) -> None:
    weight = bio.get("weight")
    # io.bfq.weight takes the blkio scale as is; io.weight (iocost) has its own 1..10000
    # scale. Prefer BFQ like runc: it is the one that acts when BFQ is the scheduler.
    if given(weight) and not fsio.try_write(f"{d}/io.bfq.weight", str(weight)):
        _write(d, "io.weight", f"default {blkio_weight_to_io_weight(weight)}", "io")
    unknown_keys("blockIO", bio, ("weight",), note)


def _devices(d: str, rules: list[dict]) -> None:
    # v2 has no devices files: device access is filtered by a BPF_PROG_TYPE_CGROUP_DEVICE
    # program attached to the cgroup (devfilter.py; imported here, off v1 hosts' path).
    from . import devfilter

    devfilter.apply(d, rules)


def _unified(d: str, files: dict[str, str], note: Note) -> None:
    """runtime-spec linux.resources.unified: raw "file": "value" pairs for v2 hosts."""
    for name, value in files.items():
        # cgroup.* files are the core's (membership, delegation, kill): not resources.
        if "/" in name or name.startswith("cgroup."):
            raise CgroupError(f"unified: refusing to write {name!r}")
        controller = name.partition(".")[0]
        _write(d, name, value, controller)


def apply(d: str, resources: dict, note: Note) -> None:
    """Write OCI ``linux.resources`` into the v2 cgroup directory ``d``."""
    if resources.get("memory"):
        _memory(d, resources["memory"], note)
    if resources.get("cpu"):
        _cpu(d, resources["cpu"], note)
    if resources.get("pids"):
        _pids(d, resources["pids"], note)
    if resources.get("blockIO"):
        _io(d, resources["blockIO"], note)
    if resources.get("devices"):
        _devices(d, resources["devices"])
    if resources.get("unified"):
        _unified(d, resources["unified"], note)
    other_groups(resources, note)


def _io_bytes(text: str | None) -> tuple[int | None, int | None]:
    """Sum rbytes/wbytes over devices in io.stat ("MAJ:MIN rbytes=N wbytes=N rios=N ...")."""
    if text is None:
        return None, None
    rd = wr = 0
    for line in text.splitlines():
        for item in line.split()[1:]:
            key, _, val = item.partition("=")
            if key == "rbytes":
                rd += int(val)
            elif key == "wbytes":
                wr += int(val)
    return rd, wr


def stats(d: str) -> Stats:
    """Statistics of the v2 cgroup directory ``d``; absent controller files give None."""
    s = Stats()
    s.memory_usage = fsio.int_or_none(fsio.read_opt(f"{d}/memory.current"))
    s.memory_limit = fsio.int_or_none(fsio.read_opt(f"{d}/memory.max"))
    # memory.peak exists since 5.19.
    s.memory_max_usage = fsio.int_or_none(fsio.read_opt(f"{d}/memory.peak"))
    events = fsio.read_opt(f"{d}/memory.events")
    s.oom_kills = fsio.keyed(events).get("oom_kill") if events is not None else None
    # cpu.stat's usage_usec is there even without the cpu controller (cgroup-v2.rst).
    usec = fsio.keyed(fsio.read_opt(f"{d}/cpu.stat")).get("usage_usec")
    s.cpu_usage_ns = None if usec is None else usec * 1000
    s.pids_current = fsio.int_or_none(fsio.read_opt(f"{d}/pids.current"))
    s.pids_limit = fsio.int_or_none(fsio.read_opt(f"{d}/pids.max"))
    s.blkio_read_bytes, s.blkio_write_bytes = _io_bytes(fsio.read_opt(f"{d}/io.stat"))
    return s
