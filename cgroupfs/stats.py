"""The statistics record shared by the v1 and v2 backends (what `pydock stats` shows)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Stats:
    """One sample of a cgroup's counters. None means "not available on this host/controller";
    for the two limits it also means "unlimited"."""

    memory_usage: int | None = None
    memory_limit: int | None = None
    memory_max_usage: int | None = None
    oom_kills: int | None = None
    cpu_usage_ns: int | None = None
    pids_current: int | None = None
    pids_limit: int | None = None
    blkio_read_bytes: int | None = None
    blkio_write_bytes: int | None = None
