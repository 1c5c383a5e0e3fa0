"""Resource-limit flags (``--memory``, ``--cpus``, ...) checked and converted like Docker's.

Values are validated with Docker's rules and messages before anything is created, stored
in the record's HostConfig under Docker's names, and turned into the runtime spec's
``linux.resources`` (config-linux.md "Control groups"), which cgroupfs writes for v1, v2
and hybrid hosts alike.
"""

from __future__ import annotations

import os

from .errors import InvalidInput

CPU_PERIOD = 100_000  # µs; Docker's --cpus is a CFS quota over this period
MIN_MEMORY = 6 * 1024 * 1024  # Docker: "Minimum memory limit allowed is 6MB"

_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}


def _size_parts(text: str) -> tuple[str, str] | None:
    """(number, unit letter) of go-units' ``^(\\d+(\\.\\d+)*) ?([kKmMgGtTpP])?[iI]?[bB]?$``,
    or None when ``text`` does not match (matched by hand: ``re`` is not loaded on the
    start path)."""
    i, n = 0, len(text)
    while True:  # digits, then any number of .digits groups
        j = i
        while j < n and text[j].isascii() and text[j].isdigit():
            j += 1
        if j == i:
            return None
        i = j
        after = text[i + 1 : i + 2]
        if text[i : i + 1] == "." and after.isascii() and after.isdigit():
            i += 1
            continue
        break
    number, rest = text[:i], text[i:]
    rest = rest.removeprefix(" ")
    unit = ""
    if rest[:1].lower() in ("k", "m", "g", "t", "p"):
        unit, rest = rest[0].lower(), rest[1:]
    rest = rest[1:] if rest[:1] in ("i", "I") else rest
    rest = rest[1:] if rest[:1] in ("b", "B") else rest
    return None if rest else (number, unit)


def parse_bytes(value: str, flag: str, *, unlimited: bool = False) -> int:
    """Docker's opts.MemBytes (go-units RAMInBytes): a number with an optional binary unit
    ``k m g t p``, then optional ``i`` and ``b`` ("32m", "32MiB", "1.5g", "512"), with
    Docker's message for anything else. ``unlimited``: opts.MemSwapBytes, where ``-1``
    means no limit; for every other size flag ``-1`` is an invalid size."""
    if unlimited and value == "-1":
        return -1
    matched = _size_parts(value)
    if matched is None:
        raise InvalidInput(
            f'invalid argument "{value}" for "{flag}" flag: invalid size: \'{value}\'', 125
        )
    number, unit = matched
    try:
        amount = float(number)
    except ValueError:  # "1.2.3" matches the pattern; Go's ParseFloat refuses it
        raise InvalidInput(
            f'invalid argument "{value}" for "{flag}" flag: strconv.ParseFloat: parsing '
            f'"{number}": invalid syntax',
            125,
        ) from None
    return int(amount * _UNITS[unit])


def parse_cpus(value: str) -> int:
    """``--cpus 1.5`` -> NanoCpus, validated against this machine's CPU count."""
    try:
        cpus = float(value)
    except ValueError:
        raise InvalidInput(
            f'invalid argument "{value}" for "--cpus" flag: failed to parse {value} as a '
            "rational number",
            125,
        ) from None
    nano = round(cpus * 1e9)
    ncpu = os.cpu_count() or 1
    if nano < 0 or (nano and (nano < 10_000_000 or nano > ncpu * 1_000_000_000)):
        raise InvalidInput(
            f"Range of CPUs is from 0.01 to {ncpu}.00, as there are only {ncpu} CPUs available",
            125,
        )
    return nano


def _cpu_list(text: str) -> set[int]:
    out: set[int] = set()
    for part in text.split(","):
        lo, _, hi = part.strip().partition("-")
        if not lo.isdigit() or (hi and not hi.isdigit()) or (hi and int(hi) < int(lo)):
            raise ValueError(part)
        out.update(range(int(lo), int(hi or lo) + 1))
    return out


def check_cpuset(value: str) -> str:
    """``--cpuset-cpus 0-1,3``: well formed and naming only CPUs that are online."""
    try:
        wanted = _cpu_list(value)
    except ValueError:
        raise InvalidInput(f"Invalid value {value} for cpuset cpus", 125) from None
    try:
        with open("/sys/devices/system/cpu/online") as f:
            online_text = f.read().strip()
        online = _cpu_list(online_text)
    except (OSError, ValueError):
        return value
    missing = sorted(wanted - online)
    if missing:
        raise InvalidInput(
            f"Requested CPUs are not available - requested {value}, available: {online_text}",
            125,
        )
    return value


def check_memory(memory: int, swap: int) -> tuple[int, int]:
    """Docker's memory/swap rules; an unset swap becomes twice the memory, as Docker's
    daemon sets it."""
    if memory and 0 < memory < MIN_MEMORY:
        raise InvalidInput("Minimum memory limit allowed is 6MB", 125)
    if swap and swap != -1:
        if memory <= 0:
            raise InvalidInput(
                "You should always set the Memory limit when using Memoryswap limit, see usage",
                125,
            )
        if swap < memory:
            raise InvalidInput(
                "Minimum memoryswap limit should be larger than memory limit, see usage", 125
            )
    if memory > 0 and not swap:
        swap = 2 * memory
    return memory, swap


def check_blkio_weight(weight: int, warn) -> int:
    """10..1000 or 0; discarded with Docker's warning where no I/O scheduler offers weights."""
    if weight and not 10 <= weight <= 1000:
        raise InvalidInput("Range of blkio weight is from 10 to 1000", 125)
    if weight and not _blkio_weight_supported():
        warn(
            "WARNING: Your kernel does not support Block I/O weight or the cgroup is not "
            "mounted. Weight discarded."
        )
        return 0
    return weight


def _blkio_weight_supported() -> bool:
    v1 = "/sys/fs/cgroup/blkio"
    if any(os.path.exists(f"{v1}/{f}") for f in ("blkio.weight", "blkio.bfq.weight")):
        return True
    try:
        with open("/sys/fs/cgroup/cgroup.controllers") as f:
            return "io" in f.read().split()  # pure v2: io.weight / io.bfq.weight
    except OSError:
        return False


def resources(host_config: dict) -> dict:
    """The runtime spec's ``linux.resources`` groups for Docker's HostConfig limits."""
    out: dict = {}
    memory, swap = host_config.get("Memory") or 0, host_config.get("MemorySwap") or 0
    if memory:
        out["memory"] = {"limit": memory, "swap": swap} if swap else {"limit": memory}
    cpu: dict = {}
    if host_config.get("CpuShares"):
        cpu["shares"] = host_config["CpuShares"]
    if host_config.get("NanoCpus"):
        cpu["period"] = CPU_PERIOD
        cpu["quota"] = host_config["NanoCpus"] * CPU_PERIOD // 1_000_000_000
    if host_config.get("CpusetCpus"):
        cpu["cpus"] = host_config["CpusetCpus"]
    if cpu:
        out["cpu"] = cpu
    if host_config.get("PidsLimit"):
        out["pids"] = {"limit": host_config["PidsLimit"]}
    if host_config.get("BlkioWeight"):
        out["blockIO"] = {"weight": host_config["BlkioWeight"]}
    return out
