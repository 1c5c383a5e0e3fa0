"""What the host looks like, for the session-wide leftover check.

A snapshot lists the mounts, pydock-named cgroups, network namespaces and processes that
exist; the difference between the start and the end of a test session is what the tests
leaked. Kept free of pytest so the churn tests can use it too.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")


#: Mount points that appear once per host and stay by design, not by a leak: iproute2's
#: ``ip netns add`` (and pyroute2's netns module, which follows it) bind-mounts
#: /run/netns onto itself, shared, the first time a named namespace is made, so that
#: namespace mounts under it propagate (ip-netns(8)). The namespaces themselves are
#: ``nsfs`` mounts below it and still count.
HOST_WIDE_MOUNTS = frozenset({"/run/netns"})


def _mounts() -> frozenset[str]:
    with open("/proc/self/mountinfo") as f:
        return mounts_of(f.read())


def mounts_of(mountinfo: str) -> frozenset[str]:
    """Each mount of a mountinfo text as "point (fstype)", the host-wide ones left out."""
    out = set()
    for line in mountinfo.splitlines():
        fields = line.split()
        sep = fields.index("-")
        if fields[4] not in HOST_WIDE_MOUNTS:
            out.add(f"{fields[4]} ({fields[sep + 1]})")
    return frozenset(out)


def _cgroups() -> frozenset[str]:
    out = set()
    if not CGROUP_ROOT.is_dir():
        return frozenset()
    for top in CGROUP_ROOT.iterdir():
        for dirpath, dirnames, _ in os.walk(top):
            for d in dirnames:
                if "pydock" in d or "pdtest" in d:
                    out.add(os.path.join(dirpath, d))
    return frozenset(out)


def _netns() -> frozenset[str]:
    try:
        return frozenset(os.listdir("/run/netns"))
    except FileNotFoundError:
        return frozenset()


def _descendants(root: int) -> frozenset[str]:
    """Processes below ``root`` (by parent links), as "pid cmdline" strings."""
    children: dict[int, list[int]] = {}
    names: dict[int, str] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            cmd = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
        children.setdefault(ppid, []).append(int(entry))
        names[int(entry)] = cmd.decode(errors="replace").strip()
    found = set()
    todo = list(children.get(root, []))
    while todo:
        pid = todo.pop()
        found.add(f"{pid} {names.get(pid, '?')}")
        todo.extend(children.get(pid, []))
    return frozenset(found)


@dataclass(frozen=True)
class Snapshot:
    mounts: frozenset[str]
    cgroups: frozenset[str]
    netns: frozenset[str]
    processes: frozenset[str]

    @classmethod
    def take(cls) -> Snapshot:
        return cls(_mounts(), _cgroups(), _netns(), _descendants(os.getpid()))

    def leaked_since(self, before: Snapshot) -> list[str]:
        """One line per thing that exists now and did not exist in ``before``."""
        out = []
        for kind in ("mounts", "cgroups", "netns", "processes"):
            for item in sorted(getattr(self, kind) - getattr(before, kind)):
                out.append(f"{kind}: {item}")
        return out
