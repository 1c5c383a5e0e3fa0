"""A cgroup parent for peers (Docker, Podman) that nests under this process's own cgroups.

Docker and Podman take one ``--cgroup-parent`` for every hierarchy, while on a hybrid host
the caller sits at different paths per hierarchy (here: memory in /process_api/<id>, the
others at /). The deepest own path that extends all the others is under the caller's cgroup
in every hierarchy, so it is the parent; the peers then create the intermediate directories
in the shallower hierarchies, and :meth:`PeerCgroupParent.cleanup` removes exactly the
directories that did not exist before (deepest first, only when empty).
"""

from __future__ import annotations

import os
import posixpath


def _cgroup_mounts() -> list[str]:
    """Every cgroup and cgroup2 mount, named v1 hierarchies (name=systemd) included: the
    peers' runtimes create directories in all of them."""
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            if right.split()[0] in ("cgroup", "cgroup2"):
                out.append(left.split()[4])
    return out


def _own_paths() -> list[str]:
    with open("/proc/self/cgroup") as f:
        return [line.rstrip("\n").split(":", 2)[2] for line in f if line.strip()]


class PeerCgroupParent:
    def __init__(self, name: str) -> None:
        paths = sorted(set(_own_paths()), key=len)
        deepest = paths[-1]
        for p in paths:
            if not (deepest == p or deepest.startswith(p.rstrip("/") + "/")):
                own_list = ", ".join(paths)
                raise RuntimeError(
                    f"no one cgroup parent lies under all of this process's ({own_list})"
                )
        self.path = posixpath.join(deepest, name)
        self._mounts = sorted(set(_cgroup_mounts()))
        # per hierarchy: the directories along the path that do not exist yet
        self._new: list[str] = []
        for mnt in self._mounts:
            d = mnt + self.path
            while d != mnt and not os.path.isdir(d):
                self._new.append(d)
                d = posixpath.dirname(d)

    def cleanup(self) -> list[str]:
        """rmdir what the peers made under the parent, then the new parent directories.
        Returns the directories that could not be removed (still in use)."""
        left = []
        for mnt in self._mounts:
            top = mnt + self.path
            if not os.path.isdir(top):
                continue
            for dirpath, _dirs, _files in sorted(os.walk(top), key=lambda t: -len(t[0])):
                try:
                    os.rmdir(dirpath)
                except OSError:
                    left.append(dirpath)
        for d in sorted(self._new, key=len, reverse=True):
            try:
                os.rmdir(d)
            except FileNotFoundError:
                pass
            except OSError:
                left.append(d)
        return left
