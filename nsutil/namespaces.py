"""OCI namespace entries (spec ``linux.namespaces``) to kernel flags, joins and unshares.

An entry ``{"type": "network"}`` asks for a new namespace; ``{"type": "network", "path":
"/proc/123/ns/net"}`` asks to join an existing one (OCI runtime-spec, config-linux.md
"Namespaces"). The pid and time namespaces are special: unshare() only affects the
caller's future children, so the spawner handles them around fork (see spawn.py).
"""

from __future__ import annotations

import _socket  # the C module: socket.py builds enums at import, slow on the start path
import fcntl
import os
import struct

from pydock.nsutil import syscalls as sc

# OCI type name -> (clone flag, name under /proc/<pid>/ns/)
NAMESPACE_TYPES: dict[str, tuple[int, str]] = {
    "pid": (sc.lib.CLONE_NEWPID, "pid"),
    "network": (sc.lib.CLONE_NEWNET, "net"),
    "mount": (sc.lib.CLONE_NEWNS, "mnt"),
    "ipc": (sc.lib.CLONE_NEWIPC, "ipc"),
    "uts": (sc.lib.CLONE_NEWUTS, "uts"),
    "cgroup": (sc.lib.CLONE_NEWCGROUP, "cgroup"),
    "user": (sc.lib.CLONE_NEWUSER, "user"),
    "time": (sc.lib.CLONE_NEWTIME, "time"),
}

# Joining order matters: the user namespace first (it grants the rights for the others),
# mount late so that earlier /proc paths still resolve in the namespace we started in.
JOIN_ORDER = ("user", "ipc", "uts", "network", "pid", "time", "cgroup", "mount")

# uapi/linux/sockios.h and uapi/linux/if.h
SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
IFF_UP = 0x1


class NamespacePlan:
    """What a spec's ``linux.namespaces`` asks for, split by how it must be done.

    (A plain class, not a dataclass: this is on ``pydock run``'s path and dataclasses
    costs milliseconds to import.)
    """

    __slots__ = ("new", "join")

    def __init__(self) -> None:
        self.new: set[str] = set()  # OCI type names to create
        self.join: dict[str, str] = {}  # OCI type name -> ns path

    def new_flags(self, *types: str) -> int:
        """CLONE_NEW* flags of the requested new namespaces among ``types`` (all if none)."""
        flags = 0
        for t in self.new:
            if not types or t in types:
                flags |= NAMESPACE_TYPES[t][0]
        return flags

    def private(self, t: str) -> bool:
        """True if the process gets a namespace of its own or joins one (not the host's)."""
        return t in self.new or t in self.join


def plan(entries: list[dict] | None) -> NamespacePlan:
    """Validate ``linux.namespaces`` and sort it into new and joined namespaces."""
    result = NamespacePlan()
    for entry in entries or []:
        t = entry.get("type")
        if t not in NAMESPACE_TYPES:
            raise ValueError(f"linux.namespaces: unknown namespace type {t!r}")
        if t in result.new or t in result.join:
            raise ValueError(f"linux.namespaces: namespace type {t!r} given twice")
        path = entry.get("path")
        if path:
            result.join[t] = path
        else:
            result.new.add(t)
    return result


def join(t: str, path: str) -> None:
    """setns() into the namespace at ``path``, checking it is of OCI type ``t``."""
    flag = NAMESPACE_TYPES[t][0]
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as e:
        raise OSError(e.errno, f"open namespace {path}: {e.strerror}", path) from None
    try:
        # nstype != 0 makes the kernel refuse a file of another namespace type (EINVAL).
        sc.setns(fd, flag, path)
    finally:
        os.close(fd)


def ns_path(t: str, pid: int | str = "self") -> str:
    """/proc path of process ``pid``'s namespace of OCI type ``t``."""
    return f"/proc/{pid}/ns/{NAMESPACE_TYPES[t][1]}"


def loopback_up() -> None:
    """Set IFF_UP on "lo", as a fresh network namespace has it down.

    Plain ioctls on an AF_INET socket (netdevice(7)); no netlink library needed for one flag.
    """
    s = _socket.socket(_socket.AF_INET, _socket.SOCK_DGRAM)
    try:
        ifreq = struct.pack("16sH14x", b"lo", 0)
        res = fcntl.ioctl(s.fileno(), SIOCGIFFLAGS, ifreq)
        (flags,) = struct.unpack_from("H", res, 16)
        fcntl.ioctl(s.fileno(), SIOCSIFFLAGS, struct.pack("16sH14x", b"lo", flags | IFF_UP))
    except OSError as e:
        raise OSError(e.errno, f"bring up lo: {e.strerror}") from None
    finally:
        s.close()
