"""pydock.cgroupfs: a cgroup manager for cgroup v1, v2 and hybrid hosts.

The standard library only, except v2 device rules: their eBPF program goes through
nsutil's cffi module (bpf(2)), imported only when a v2 cgroup gets device rules.

The engine codes against this surface: detect() the host layout once, build a Cgroup from
the OCI linux.cgroupsPath, create/attach/apply(linux.resources)/stats/freeze/kill/destroy.
"""

from __future__ import annotations

from .cgroup import Cgroup
from .errors import CgroupError
from .layout import Layout, describe, detect, own_paths, parse_mountinfo, parse_proc_cgroup
from .stats import Stats
from .v2 import blkio_weight_to_io_weight, shares_to_weight, swap_to_v2

__all__ = [
    "Cgroup",
    "CgroupError",
    "Layout",
    "Stats",
    "blkio_weight_to_io_weight",
    "describe",
    "detect",
    "own_paths",
    "parse_mountinfo",
    "parse_proc_cgroup",
    "shares_to_weight",
    "swap_to_v2",
]
