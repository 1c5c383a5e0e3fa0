"""Linux capabilities: names, the OCI ``process.capabilities`` sets, and /proc readers.

The spec lists capability *names* per set (bounding, effective, permitted, inheritable,
ambient). Capabilities the running kernel does not know (above
/proc/sys/kernel/cap_last_cap) are skipped rather than fatal, as runc does, so one spec works
on older kernels.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from pydock.nsutil import syscalls as sc

# include/uapi/linux/capability.h
CAP_NUMBERS: dict[str, int] = {
    "CAP_CHOWN": 0,
    "CAP_DAC_OVERRIDE": 1,
    "CAP_DAC_READ_SEARCH": 2,
    "CAP_FOWNER": 3,
    "CAP_FSETID": 4,
    "CAP_KILL": 5,
    "CAP_SETGID": 6,
    "CAP_SETUID": 7,
    "CAP_SETPCAP": 8,
    "CAP_LINUX_IMMUTABLE": 9,
    "CAP_NET_BIND_SERVICE": 10,
    "CAP_NET_BROADCAST": 11,
    "CAP_NET_ADMIN": 12,
    "CAP_NET_RAW": 13,
    "CAP_IPC_LOCK": 14,
    "CAP_IPC_OWNER": 15,
    "CAP_SYS_MODULE": 16,
    "CAP_SYS_RAWIO": 17,
    "CAP_SYS_CHROOT": 18,
    "CAP_SYS_PTRACE": 19,
    "CAP_SYS_PACCT": 20,
    "CAP_SYS_ADMIN": 21,
    "CAP_SYS_BOOT": 22,
    "CAP_SYS_NICE": 23,
    "CAP_SYS_RESOURCE": 24,
    "CAP_SYS_TIME": 25,
    "CAP_SYS_TTY_CONFIG": 26,
    "CAP_MKNOD": 27,
    "CAP_LEASE": 28,
    "CAP_AUDIT_WRITE": 29,
    "CAP_AUDIT_CONTROL": 30,
    "CAP_SETFCAP": 31,
    "CAP_MAC_OVERRIDE": 32,
    "CAP_MAC_ADMIN": 33,
    "CAP_SYSLOG": 34,
    "CAP_WAKE_ALARM": 35,
    "CAP_BLOCK_SUSPEND": 36,
    "CAP_AUDIT_READ": 37,
    "CAP_PERFMON": 38,
    "CAP_BPF": 39,
    "CAP_CHECKPOINT_RESTORE": 40,
}
CAP_NAMES: dict[int, str] = {v: k for k, v in CAP_NUMBERS.items()}

SETS = ("bounding", "effective", "permitted", "inheritable", "ambient")

_last_cap: int | None = None


def last_cap() -> int:
    """Highest capability number the running kernel knows."""
    global _last_cap
    if _last_cap is None:
        try:
            with open("/proc/sys/kernel/cap_last_cap") as f:
                _last_cap = int(f.read())
        except OSError:
            _last_cap = max(CAP_NUMBERS.values())
    return _last_cap


def to_mask(names: Iterable[str]) -> int:
    """Bit mask of capability names ("CAP_X" or "X"); unknown names raise ValueError,
    capabilities newer than the kernel are dropped."""
    mask = 0
    top = last_cap()
    for name in names:
        key = name.upper()
        if not key.startswith("CAP_"):
            key = "CAP_" + key
        if key not in CAP_NUMBERS:
            raise ValueError(f"unknown capability {name!r}")
        num = CAP_NUMBERS[key]
        if num <= top:
            mask |= 1 << num
    return mask


def to_names(mask: int) -> set[str]:
    """Capability names set in ``mask`` (unnamed high bits appear as "CAP_<n>")."""
    return {CAP_NAMES.get(i, f"CAP_{i}") for i in range(mask.bit_length()) if mask >> i & 1}


def all_mask() -> int:
    return (1 << (last_cap() + 1)) - 1


def proc_status_caps(pid: int | str = "self") -> dict[str, set[str]]:
    """Capability sets of a process from /proc/<pid>/status, by OCI set name."""
    with open(f"/proc/{pid}/status") as f:
        return parse_status_caps(f.read())


_STATUS_FIELDS = {
    "CapInh": "inheritable",
    "CapPrm": "permitted",
    "CapEff": "effective",
    "CapBnd": "bounding",
    "CapAmb": "ambient",
}


def parse_status_caps(text: str) -> dict[str, set[str]]:
    """Capability sets from /proc/<pid>/status text (e.g. captured inside a container)."""
    out: dict[str, set[str]] = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key in _STATUS_FIELDS:
            out[_STATUS_FIELDS[key]] = to_names(int(value.strip(), 16))
    return out


def drop_bounding(keep: int) -> None:
    """Drop every capability not in ``keep`` from the bounding set (needs CAP_SETPCAP)."""
    for cap in range(last_cap() + 1):
        if not keep >> cap & 1 and sc.prctl(sc.PR_CAPBSET_READ, cap):
            try:
                sc.prctl(sc.PR_CAPBSET_DROP, cap)
            except OSError as e:
                raise OSError(e.errno, f"drop {CAP_NAMES.get(cap, cap)}: {e.strerror}") from None


def set_keepcaps(on: bool) -> None:
    """PR_SET_KEEPCAPS: keep the permitted set across setuid() away from 0 (capabilities(7))."""
    sc.prctl(sc.lib.PR_SET_KEEPCAPS, 1 if on else 0)


def apply_sets(sets: Mapping[str, Iterable[str]]) -> None:
    """capset effective/permitted/inheritable, then raise the ambient ones.

    Called after the uid change. A capability can only be ambient if it is both permitted and
    inheritable (PR_CAP_AMBIENT in prctl(2)).
    """
    eff = to_mask(sets.get("effective", ()))
    prm = to_mask(sets.get("permitted", ()))
    inh = to_mask(sets.get("inheritable", ()))
    sc.capset(eff, prm, inh)
    sc.prctl(sc.lib.PR_CAP_AMBIENT, sc.lib.PR_CAP_AMBIENT_CLEAR_ALL)
    amb = to_mask(sets.get("ambient", ()))
    for cap in range(amb.bit_length()):
        if amb >> cap & 1:
            try:
                sc.prctl(sc.lib.PR_CAP_AMBIENT, sc.lib.PR_CAP_AMBIENT_RAISE, cap)
            except OSError as e:
                raise OSError(
                    e.errno, f"raise ambient {CAP_NAMES.get(cap, cap)}: {e.strerror}"
                ) from None
