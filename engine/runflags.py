"""The limit, security, volume and label flags of ``run``/``create`` -> RunOptions fields.

Everything is checked here, before the container exists, so a bad value is a one-line
error with exit code 125 and nothing to undo (Docker validates the same way, client and
daemon side, before creating anything).
"""

from __future__ import annotations

import argparse

from .cliutil import eprint
from .errors import InvalidInput


def _labels(values: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in values:
        key, _, value = item.partition("=")
        if not key:
            raise InvalidInput(f"invalid label '{item}': empty name", 125)
        out[key] = value
    return out


def _limits(a: argparse.Namespace) -> dict:
    from . import limits as lim

    out: dict = {}
    memory = lim.parse_bytes(a.memory, "-m, --memory") if a.memory else 0
    swap = lim.parse_bytes(a.memory_swap, "--memory-swap", unlimited=True) if a.memory_swap else 0
    memory, swap = lim.check_memory(memory, swap)
    if memory:
        out.update(Memory=memory, MemorySwap=swap)
    if a.cpus:
        out["NanoCpus"] = lim.parse_cpus(a.cpus)
    if a.cpu_shares:
        out["CpuShares"] = a.cpu_shares
    if a.cpuset_cpus:
        out["CpusetCpus"] = lim.check_cpuset(a.cpuset_cpus)
    if a.pids_limit is not None:
        out["PidsLimit"] = a.pids_limit if a.pids_limit > 0 else -1  # 0 and -1: unlimited
    if a.blkio_weight:
        weight = lim.check_blkio_weight(a.blkio_weight, eprint)
        if weight:
            out["BlkioWeight"] = weight
    return out


def _mounts(a: argparse.Namespace) -> list[dict]:
    from .volumes import check_duplicates, parse_mount_flag, parse_volume_flag

    mounts = [parse_volume_flag(v) for v in a.volume]
    for spec in a.mount:
        mp = parse_mount_flag(spec)
        mp["_flag"] = "mount"
        mounts.append(mp)
    check_duplicates(mounts)
    if a.volumes_from:
        taken = {m["Destination"] for m in mounts}
        mounts += [m for m in _volumes_from(a) if m["Destination"] not in taken]
    return mounts


def _devices(a: argparse.Namespace) -> dict:
    if not a.device and not a.device_cgroup_rule:
        return {}
    from .devices import parse_cgroup_rule, parse_device

    return {
        "devices": [parse_device(v) for v in a.device],
        "device_cgroup_rules": [parse_cgroup_rule(v) for v in a.device_cgroup_rule],
    }


def _cgroupns(value: str | None) -> str | None:
    if value in (None, "host", "private"):
        return value
    raise InvalidInput(f"invalid argument {value!r} for \"--cgroupns\" flag: --cgroupns: "
                       "invalid CGROUP mode (want host or private)", 125)  # fmt: skip


def _volumes_from(a: argparse.Namespace) -> list[dict]:
    """``--volumes-from NAME[:ro|rw]``: the mounts (volumes and binds) of container NAME,
    read-only or read-write as given, else as NAME has them (Docker's rule); a mount of
    this container's own -v/--mount at the same path wins. The record keeps them in
    Mounts, so rm and volume rm count this container as a user of the volumes."""
    from pathlib import Path

    from .containers import ContainerStore

    store = ContainerStore(Path(a.root))
    out: list[dict] = []
    seen: set[str] = set()
    for item in a.volumes_from:
        ref, _, mode = item.partition(":")
        rec = store.load(store.resolve(ref))
        for mp in rec.get("Mounts") or []:
            if mp["Destination"] in seen:
                continue
            seen.add(mp["Destination"])
            copy = {k: v for k, v in mp.items() if not k.startswith("_")}
            if mode:
                copy["RW"] = mode == "rw"
            out.append(copy)
    return out


def _host_flags(a: argparse.Namespace) -> dict:
    if not (
        a.add_host or a.dns or a.dns_search or a.dns_option or a.tmpfs or a.init or a.ulimit
        or a.shm_size or a.group_add or a.ipc or a.pid or a.uts or a.volumes_from
    ):  # fmt: skip
        return {}  # Docker's defaults (spec.HOST_DEFAULTS)
    from .hostflags import host_config

    return host_config(a, a.hostname)


def options(a: argparse.Namespace) -> dict:
    """RunOptions keyword arguments for the flags this module owns."""
    from .security import capabilities, parse_security_opts
    from .spec import DEFAULT_CAPS

    capabilities(DEFAULT_CAPS, a.cap_add, a.cap_drop, a.privileged)  # unknown names fail now
    sec = parse_security_opts(a.security_opt)
    if sec.seccomp not in ("default", "unconfined"):
        from .seccomp import load_profile

        load_profile(sec.seccomp)  # a missing or malformed profile fails now
    return {
        "limits": _limits(a),
        "cap_add": list(a.cap_add),
        "cap_drop": list(a.cap_drop),
        "privileged": a.privileged,
        "security_opt": list(a.security_opt),
        "read_only": a.read_only,
        "binds": list(a.volume),
        "mounts": _mounts(a) if a.volume or a.mount or a.volumes_from else [],
        "labels": _labels(a.label),
        "cgroupns": _cgroupns(a.cgroupns),
        **_devices(a),
        "host": _host_flags(a),
        "expose": _expose(a.expose),
    }


def _expose(values: list[str]) -> dict:
    if not values:
        return {}
    from .hostflags import expose

    return expose(values)
