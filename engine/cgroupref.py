"""A container's cgroup found from its record alone, for cleanup after a crash.

The cgroup is made by whoever runs the container (the ``run`` process, a start worker, a
monitor) before the bundle that names it may be on disk, and a process killed then leaves
it behind. So the record says where it will be before anything creates it: its path
follows from the id and ``HostConfig.CgroupParent`` (:func:`cgroups_path`, which the spec
uses too), and a relative path lies under the cgroup of the process that creates it, which
the record names in ``MonitorCgroup`` (written by ``create`` and again by every start
before it launches a monitor). ``rm`` and the recovery of a dead owner's container then
remove it (:func:`remove`), as Docker's daemon removes a dead container's cgroup.
"""

from __future__ import annotations

import os
import signal
import time

from ..cgroupfs import Cgroup, CgroupError


def cgroups_path(parent: str | None, cid: str) -> str:
    """The OCI cgroupsPath of container ``cid``: one flat ``pydock-<id>`` beside the
    caller's other children (no shared parent for concurrent starts and removals to race
    to create and delete), or under the user's ``--cgroup-parent`` as given."""
    leaf = f"pydock-{cid}"
    return f"{parent.rstrip('/')}/{leaf}" if parent else leaf


def of(rec: dict) -> Cgroup:
    """The container's cgroup as the record places it (records without ``MonitorCgroup``,
    from older versions: under the caller's own cgroup)."""
    path = cgroups_path(rec["HostConfig"].get("CgroupParent"), rec["Id"])
    return Cgroup(path, own=rec.get("MonitorCgroup") or None)


def drain(cg: Cgroup, timeout: float = 5.0) -> None:
    """Kill what is left in ``cg`` and remove it, waiting up to ``timeout`` for members
    that are still exiting (an init its parent's death just killed, by PDEATHSIG).

    A cgroup missing some of its hierarchies' directories is the remains of a removal
    that was killed (or is under way elsewhere): rmdir succeeded only where it was empty,
    and a live process sits in every hierarchy, so nothing in it lives: only the rest
    of the directories is removed."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            whole = all(os.path.isdir(d) for d in set(cg.paths.values()))
            if whole and cg.procs():
                cg.kill(signal.SIGKILL)
            cg.destroy()
            return
        except CgroupError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def remove(rec: dict) -> None:
    """Empty and remove the cgroup the record names, if it exists."""
    cg = of(rec)
    if cg.exists():
        drain(cg)
