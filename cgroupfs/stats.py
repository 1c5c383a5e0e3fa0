"""The statistics record shared by the v1 and v2 backends (what `pydock stats` shows)."""

from __future__ import annotations


class Stats:
    """One sample of a cgroup's counters. None means "not available on this host/controller";
    for the two limits it also means "unlimited". (Not a dataclass: it is imported on the
    start path, where importing dataclasses costs milliseconds.)"""

    __slots__ = (
        "memory_usage",
        "memory_limit",
        "memory_max_usage",
        "oom_kills",
        "cpu_usage_ns",
        "pids_current",
        "pids_limit",
        "blkio_read_bytes",
        "blkio_write_bytes",
    )

    def __init__(self, **values: int | None) -> None:
        for name in self.__slots__:
            setattr(self, name, values.pop(name, None))
        if values:
            raise TypeError(f"unknown Stats fields: {', '.join(values)}")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Stats):
            return NotImplemented
        return all(getattr(self, n) == getattr(other, n) for n in self.__slots__)

    def __repr__(self) -> str:
        return "Stats(" + ", ".join(f"{n}={getattr(self, n)!r}" for n in self.__slots__) + ")"
