"""Security flags: capabilities, ``--privileged``, ``--security-opt``, as Docker reads them.

Docker's defaults live in spec.py (capability set, masked and read-only paths, device
rules) and seccomp_default.json; this module computes what a container's flags change.
"""

from __future__ import annotations

import os
import stat

from ..nsutil.caps import CAP_NUMBERS, proc_status_caps
from .errors import InvalidInput

ALL = "ALL"


def normalize_cap(name: str) -> str:
    """``net_admin``, ``NET_ADMIN`` or ``CAP_NET_ADMIN`` -> ``CAP_NET_ADMIN`` (or ALL)."""
    upper = name.strip().upper()
    if upper == ALL:
        return ALL
    full = upper if upper.startswith("CAP_") else "CAP_" + upper
    if full not in CAP_NUMBERS:
        raise InvalidInput(f'unknown capability: "{name}"', 125)
    return full


def capabilities(
    default: list[str], add: list[str], drop: list[str], privileged: bool
) -> list[str]:
    """The container's capability set, by Docker's rules: ``ALL`` in --cap-add starts from
    every capability, ``ALL`` in --cap-drop from none; a capability both added and dropped
    is kept (additions win); --privileged means every capability.

    "Every" is every capability this engine holds itself: capabilities outside its own
    bounding set (a confined session, a container) cannot be granted by anyone, and asking
    the kernel for them would fail the start (capset(2): EPERM).
    """
    everything = list(CAP_NUMBERS)
    if privileged or any(c.strip().upper() == ALL for c in add):
        held = proc_status_caps()["bounding"]
        everything = [c for c in everything if c in held]
    if privileged:
        return everything
    adds = {normalize_cap(c) for c in add}
    drops = {normalize_cap(c) for c in drop}
    if ALL in adds:
        base = everything
    elif ALL in drops:
        base = []
    else:
        base = list(default)
    out = [c for c in base if c not in drops or c in adds]
    out += sorted(c for c in adds - {ALL} if c not in out)
    return out


class SecurityOpts:
    """``--security-opt`` values, parsed (a plain class: the start path avoids dataclasses)."""

    __slots__ = ("no_new_privileges", "seccomp")

    def __init__(self, no_new_privileges: bool = False, seccomp: str = "default") -> None:
        self.no_new_privileges = no_new_privileges
        self.seccomp = seccomp  # "default", "unconfined" or a profile path


def parse_security_opts(values: list[str]) -> SecurityOpts:
    """Docker's grammar: ``no-new-privileges[=true|false]`` (also the old ``:`` form),
    ``seccomp=unconfined|PROFILE.json``; ``apparmor=`` and ``label=`` are accepted and
    have nothing to act on here (this engine applies neither AppArmor nor SELinux)."""
    out = SecurityOpts()
    for value in values:
        key, sep, arg = value.partition("=")
        if not sep and ":" in value:
            key, _, arg = value.partition(":")
            sep = ":"
        if key == "no-new-privileges":
            if not sep:
                out.no_new_privileges = True
            elif arg in ("true", "false"):
                out.no_new_privileges = arg == "true"
            else:
                raise InvalidInput(f"invalid --security-opt 2: {value!r}", 125)
        elif key == "seccomp" and arg:
            out.seccomp = arg if arg == "unconfined" else os.path.abspath(arg)
        elif key in ("apparmor", "label") and arg:
            continue
        else:
            raise InvalidInput(f"invalid --security-opt 1: {value!r}", 125)
    return out


# Directories and files of the host's /dev that --privileged does not copy (kernel-managed
# instances the container gets its own of, or nothing to do with devices).
_SKIP_DIRS = {"pts", "shm", "mqueue", "fd", ".lxc", ".lxd-mounts", ".udev"}
_SKIP_FILES = {"console", "ptmx"}


def host_devices(dev: str = "/dev") -> list[dict]:
    """Every character and block device node under the host's /dev as runtime-spec
    ``linux.devices`` entries: what a --privileged container sees, as with Docker."""
    out: list[dict] = []
    for top, dirs, files in os.walk(dev):
        dirs[:] = [d for d in dirs if d not in _SKIP_DIRS]
        for name in files:
            if top == dev and name in _SKIP_FILES:
                continue
            path = os.path.join(top, name)
            try:
                st = os.lstat(path)
            except OSError:
                continue
            if stat.S_ISCHR(st.st_mode):
                kind = "c"
            elif stat.S_ISBLK(st.st_mode):
                kind = "b"
            else:
                continue
            out.append(
                {
                    "path": path,
                    "type": kind,
                    "major": os.major(st.st_rdev),
                    "minor": os.minor(st.st_rdev),
                    "fileMode": stat.S_IMODE(st.st_mode),
                    "uid": st.st_uid,
                    "gid": st.st_gid,
                }
            )
    return out
