"""``update``: change a container's resource limits and restart policy, live when it runs.

Docker's order (daemon/update.go): the flags are checked on their own first
(verifyContainerSettings with update=true), then merged into the container's HostConfig
by container.UpdateContainer's rules, recorded, and only then written to a running
container's cgroup. When the kernel refuses a value (a memory limit below what the
container uses, EBUSY on v1) the record goes back to what it was, as Docker's
``restoreConfig`` does. A stopped, created or restarting container only gets its record
changed; its next start builds the cgroup from the bundle, which is updated alongside.
"""

from __future__ import annotations

import argparse
import contextlib

from .errors import Conflict, EngineError, InvalidInput

#: update flags -> HostConfig keys they set (the rest of HostConfig is never touched)
LIMIT_KEYS = ("Memory", "MemorySwap", "NanoCpus", "CpuShares", "CpusetCpus", "PidsLimit",
              "BlkioWeight")  # fmt: skip


class Request:
    """What one ``update`` command line asks for, checked before any container is read."""

    def __init__(self, limits: dict, restart: dict | None, warnings: list[str]) -> None:
        self.limits = limits
        self.restart = restart
        self.warnings = warnings


def parse(a: argparse.Namespace) -> Request:
    """The flags as Docker's CLI and verifyContainerSettings check them; InvalidInput
    (exit 1) with Docker's message otherwise."""
    from . import limits as lim

    given = [a.memory, a.memory_swap, a.cpus, a.cpu_shares, a.cpuset_cpus, a.pids_limit,
             a.blkio_weight, a.restart]  # fmt: skip
    if all(v is None for v in given):
        raise InvalidInput("you must provide one or more flags when using this command")
    out: dict = {}
    warnings: list[str] = []
    # Malformed values are flag errors (exit 125, as pflag's); what the daemon refuses
    # below exits 1, as docker update's errors do.
    if a.memory is not None:
        if a.memory.strip() == "-1":  # MemBytes: only --memory-swap takes -1
            raise InvalidInput(f'invalid argument "{a.memory}" for "--memory" flag: invalid size',
                               125)  # fmt: skip
        out["Memory"] = lim.parse_bytes(a.memory, "--memory")
    if a.memory_swap is not None:
        out["MemorySwap"] = lim.parse_bytes(a.memory_swap, "--memory-swap")
    try:
        memory, swap = out.get("Memory", 0), out.get("MemorySwap", 0)
        if 0 < memory < lim.MIN_MEMORY:
            raise InvalidInput("Minimum memory limit allowed is 6MB")
        if memory > 0 and swap > 0 and swap < memory:
            raise InvalidInput(
                "Minimum memoryswap limit should be larger than memory limit, see usage"
            )
        if a.cpus is not None:
            out["NanoCpus"] = lim.parse_cpus(a.cpus)
        if a.cpu_shares:
            out["CpuShares"] = a.cpu_shares
        if a.cpuset_cpus:
            out["CpusetCpus"] = lim.check_cpuset(a.cpuset_cpus)
        if a.pids_limit is not None:
            out["PidsLimit"] = a.pids_limit if a.pids_limit > 0 else -1  # as run records it
        if a.blkio_weight:
            # the daemon's warning, printed by update after the containers (no prefix)
            weight = lim.check_blkio_weight(
                a.blkio_weight, lambda w: warnings.append(w.removeprefix("WARNING: "))
            )
            if weight:
                out["BlkioWeight"] = weight
        restart = None
        if a.restart is not None:
            from .shim import parse_policy

            restart = parse_policy(a.restart)
    except EngineError as e:
        if str(e).startswith("invalid argument "):
            raise  # a flag that does not parse (--cpus x): 125
        raise InvalidInput(str(e)) from None  # Docker's update fails with 1, not run's 125
    return Request(out, restart, warnings)


def merge(rec: dict, req: Request) -> dict:
    """The HostConfig ``rec`` gets (a new dict), by container.UpdateContainer's rules."""
    hc = dict(rec["HostConfig"])
    new = req.limits
    # Docker compares with the recorded swap even when that is 0 (no limit) or -1
    memory = new.get("Memory", 0)
    if memory and memory > (hc.get("MemorySwap") or 0) and not new.get("MemorySwap"):
        raise Conflict(
            "Memory limit should be smaller than already set memoryswap limit, update "
            "the memoryswap at the same time"
        )
    for key, value in new.items():
        if value:
            hc[key] = value
    if req.restart is not None:
        if hc.get("AutoRemove") and req.restart["Name"] != "no":
            raise Conflict(
                "Restart policy cannot be updated because AutoRemove is enabled for the container"
            )
        hc["RestartPolicy"] = req.restart
    return hc


def update(engine, ref: str, req: Request) -> None:  # noqa: ANN001
    """Apply ``req`` to one container; errors read "Cannot update container ID: ..."."""
    from ..cgroupfs import CgroupError
    from . import limits
    from .containers import alive
    from .fsutil import write_json

    cid = engine.containers.resolve(ref)
    with engine.containers.lock(cid):  # not between a start's read of the bundle and its run
        rec = engine.containers.load(cid)
        st = rec["State"]
        if rec.get("Creating") or st.get("Dead"):
            raise EngineError(
                f"Cannot update container {cid}: container is marked for removal and cannot "
                'be "update"'
            )
        try:
            hc = merge(rec, req)
        except EngineError as e:
            raise EngineError(f"Cannot update container {cid}: {e}") from None
        bundle_path = engine.containers.path(cid) / "config.json"
        bundle = engine.bundle(rec)
        old_rec, old_resources = dict(rec), dict(bundle["linux"]["resources"])
        resources = {k: v for k, v in old_resources.items()
                     if k not in ("memory", "cpu", "pids", "blockIO")}  # fmt: skip
        wanted = limits.resources(hc)
        resources.update(wanted)
        rec["HostConfig"] = hc
        bundle["linux"]["resources"] = resources
        write_json(bundle_path, bundle)
        engine.containers.save(rec)
        live = st["Status"] == "running" and not st.get("Restarting") and alive(st.get("Owner"))
        if not live:
            return  # the next start makes its cgroup from the bundle
        # only the groups this command changed: a cgroup is written what was asked
        groups = {k: v for k, v in wanted.items() if _touched(k, req.limits)}
        if not groups:
            return
        cg = None
        try:
            cg = engine.container_cgroup(rec)
            cg.apply(groups)
        except (CgroupError, OSError) as e:
            if cg is not None:  # a pair of files may be half written (memory + memsw)
                old = {k: v for k, v in old_resources.items() if k in groups}
                with contextlib.suppress(CgroupError, OSError):
                    cg.apply(old, strict=False)
            bundle["linux"]["resources"] = old_resources
            write_json(bundle_path, bundle)
            engine.containers.save(old_rec)
            raise EngineError(f"Cannot update container {cid}: {e}") from None


_GROUP_KEYS = {"memory": ("Memory", "MemorySwap"), "cpu": ("NanoCpus", "CpuShares", "CpusetCpus"),
               "pids": ("PidsLimit",), "blockIO": ("BlkioWeight",)}  # fmt: skip


def _touched(group: str, changed: dict) -> bool:
    return any(k in changed for k in _GROUP_KEYS.get(group, ()))


def add_flags(p: argparse.ArgumentParser) -> None:
    """``update``'s flags (Docker's names; a value left out is not changed)."""
    p.add_argument("-m", "--memory", help="memory limit")
    p.add_argument("--memory-swap", help="swap limit equal to memory plus swap: -1 for unlimited")
    p.add_argument("--cpus", help="number of CPUs")
    p.add_argument("-c", "--cpu-shares", type=int, help="CPU shares (relative weight)")
    p.add_argument("--cpuset-cpus", help="CPUs in which to allow execution (0-3, 0,1)")
    p.add_argument("--pids-limit", type=int, help="tune container pids limit (-1 for unlimited)")
    p.add_argument(
        "--blkio-weight",
        type=int,
        help="block IO (relative weight), between 10 and 1000, or 0 to disable",
    )
    p.add_argument("--restart", help="restart policy to apply when a container exits")
    p.add_argument("containers", nargs="+")
