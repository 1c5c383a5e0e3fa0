"""Which cgroup hierarchies this host has, and where the calling process sits in them.

The layout is read from /proc/self/mountinfo once per process (cached): `pydock run` must not
pay for it twice. Hierarchy names used everywhere in this package:

* a v1 controller name ("memory", "cpu", "cpuacct", "cpuset", ...). Co-mounted controllers
  ("cpu,cpuacct" on most systemd hosts) get one key each, pointing at the same mountpoint, so
  callers look up a controller without knowing how the host grouped them;
* "unified" for the cgroup2 mount, both on pure v2 hosts and in hybrid mode.
"""

from __future__ import annotations

import re

from . import fsio
from .errors import CgroupError

UNIFIED = "unified"
DEFAULT_MOUNTINFO = "/proc/self/mountinfo"

# cgroup1_show_options() prints controller names plus these flags; anything else in the super
# options of a "cgroup" mount is a controller (kernel/cgroup/cgroup-v1.c).
_V1_FLAGS = frozenset(
    {"rw", "ro", "noprefix", "xattr", "clone_children", "cpuset_v2_mode", "favordynmods"}
)


class Layout:
    """The cgroup mounts of a host.

    mode: "v1" (only v1 hierarchies), "v2" (only cgroup2) or "hybrid" (v1 controllers plus a
    cgroup2 mount, usually without controllers, that still offers cgroup.freeze/cgroup.kill).
    hierarchies: hierarchy name -> mountpoint. roots: hierarchy name -> the cgroup path that
    is mounted there ("/" unless the mount is a bind of a sub-cgroup, as in some containers).

    A plain immutable-by-convention class rather than a dataclass: it is built on
    ``pydock run``'s path, where importing dataclasses costs milliseconds.
    """

    __slots__ = ("mode", "hierarchies", "roots")

    def __init__(
        self, mode: str, hierarchies: dict[str, str], roots: dict[str, str] | None = None
    ) -> None:
        self.mode = mode
        self.hierarchies = hierarchies
        self.roots = roots if roots is not None else {}

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Layout):
            return NotImplemented
        return (self.mode, self.hierarchies, self.roots) == (
            other.mode, other.hierarchies, other.roots)  # fmt: skip

    def __hash__(self) -> int:
        return hash(self.mode)

    def __repr__(self) -> str:
        return f"Layout(mode={self.mode!r}, hierarchies={self.hierarchies!r}, roots={self.roots!r})"

    @property
    def unified(self) -> str | None:
        """Mountpoint of the cgroup2 hierarchy, if any."""
        return self.hierarchies.get(UNIFIED)

    def root_of(self, name: str) -> str:
        return self.roots.get(name, "/")


_cached: Layout | None = None


def _unescape(s: str) -> str:
    # mountinfo escapes space, tab, newline and backslash as \ooo octal (proc(5)).
    if "\\" not in s:
        return s
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), s)


def parse_mountinfo(text: str) -> Layout:
    """Build a Layout from mountinfo text (split out so a fake mountinfo can be parsed)."""
    hier: dict[str, str] = {}
    roots: dict[str, str] = {}
    has_v1 = False
    for line in text.splitlines():
        fields = line.split()
        try:
            sep = fields.index("-", 6)
        except ValueError:
            continue
        fstype = fields[sep + 1]
        if fstype not in ("cgroup", "cgroup2"):
            continue
        root, mountpoint = _unescape(fields[3]), _unescape(fields[4])
        if fstype == "cgroup2":
            names = [UNIFIED]
        else:
            superopts = fields[sep + 3].split(",") if len(fields) > sep + 3 else []
            # Named-only hierarchies ("name=systemd") carry no controller: nothing to limit or
            # account there, and systemd owns them, so they are skipped on purpose.
            names = [
                o
                for o in superopts
                if o not in _V1_FLAGS and not o.startswith(("name=", "release_agent="))
            ]
            if not names:
                continue
            has_v1 = True
        for n in names:
            # The same hierarchy can be mounted twice (bind mounts); prefer a mount of its
            # root, else keep the first one seen.
            if n not in hier or (roots[n] != "/" and root == "/"):
                hier[n] = mountpoint
                roots[n] = root
    if not hier:
        raise CgroupError("no cgroup filesystem is mounted (see /proc/self/mountinfo)")
    if not has_v1:
        mode = "v2"
    elif UNIFIED in hier:
        mode = "hybrid"
    else:
        mode = "v1"
    return Layout(mode=mode, hierarchies=hier, roots=roots)


def detect(mountinfo: str = DEFAULT_MOUNTINFO) -> Layout:
    """The host's Layout; parsed once per process for the default mountinfo."""
    global _cached
    if mountinfo == DEFAULT_MOUNTINFO and _cached is not None:
        return _cached
    layout = parse_mountinfo(fsio.read(mountinfo, to_eof=True))
    if mountinfo == DEFAULT_MOUNTINFO:
        _cached = layout
    return layout


def parse_proc_cgroup(text: str) -> dict[str, str]:
    """Hierarchy name -> cgroup path from /proc/<pid>/cgroup text (see cgroups(7))."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        hid, _, rest = line.partition(":")
        controllers, _, path = rest.partition(":")
        if not hid:
            continue
        if hid == "0" and controllers == "":
            out[UNIFIED] = path
            continue
        for c in controllers.split(","):
            # name=systemd and other named hierarchies are skipped, as in parse_mountinfo.
            if c and not c.startswith("name="):
                out[c] = path
    return out


def own_paths(pid: int | str = "self") -> dict[str, str]:
    """Where ``pid`` sits in each hierarchy, e.g. {"memory": "/process_api/ab12", "cpu": "/"}."""
    return parse_proc_cgroup(fsio.read(f"/proc/{pid}/cgroup"))


def describe(layout: Layout | None = None) -> list[tuple[str, str]]:
    """Lines for `pydock info`, in Docker's wording ("Cgroup Version: 1" on hybrid hosts too)."""
    lay = layout or detect()
    version = {"v1": "1", "v2": "2", "hybrid": "1 (hybrid)"}[lay.mode]
    names = sorted(lay.hierarchies)
    return [
        ("Cgroup Driver", "cgroupfs"),
        ("Cgroup Version", version),
        ("Cgroup Hierarchies", ", ".join(names)),
    ]
