"""``export``: a container's filesystem as one flat tar (what ``import`` takes back).

Docker tars the container's layer mount (daemon/export.go), not the view from inside the
container: what is mounted there at run time (/proc, /sys, the /dev tmpfs, volumes, the
bind-mounted /etc/hosts, /etc/hostname, /etc/resolv.conf) never reaches the archive.
pydock's runtime also leaves the empty files and directories it had to create as mount
points in the writable layer; those stubs are left out too when the image did not have
them, so an export of an untouched container holds exactly the image's files.

The tree is read through the driver's mount (``Driver.get``) with cpfs's descriptor-
relative walk: a running container cannot redirect it outside its root. Hard links stay
hard links, as Docker's archive package writes them.
"""

from __future__ import annotations

import contextlib
import os
import stat
import sys

from .errors import Conflict, EngineError

#: bind-mounted from the container's directory (network/etcfiles.py), not from the bundle
_ETC_STUBS = ("/etc/hosts", "/etc/hostname", "/etc/resolv.conf")


def runtime_stubs(engine, rec: dict, rootfs: str) -> set[str]:  # noqa: ANN001
    """Paths (relative, no leading '/') the runtime created as mount points: added by the
    writable layer, empty, and the target of a mount the user did not ask for; plus added
    directories holding nothing else."""
    from ..drivers.base import ChangeKind

    user = {m.get("Destination") for m in rec.get("Mounts") or []}
    try:
        mounts = engine.bundle(rec).get("mounts") or []
    except OSError:
        mounts = []
    targets = {m["destination"] for m in mounts if m["destination"] not in user}
    targets.update(p for p in _ETC_STUBS if p not in user)
    driver = engine.driver(rec["Driver"])
    added = {c.path for c in driver.changes(rec["Id"]) if c.kind == ChangeKind.ADD}
    stubs: set[str] = set()
    for path in sorted(added & targets, key=len, reverse=True):
        if _empty(os.path.join(rootfs, path.lstrip("/"))):
            stubs.add(path.lstrip("/"))
    # parents made only to hold stubs (an image without /etc), deepest first
    for path in sorted(added, key=len, reverse=True):
        rel = path.lstrip("/")
        full = os.path.join(rootfs, rel)
        if rel in stubs or not os.path.isdir(full) or os.path.islink(full):
            continue
        with contextlib.suppress(OSError):
            names = os.listdir(full)
            if names and all(f"{rel}/{n}" in stubs for n in names):
                stubs.add(rel)
    return stubs


def _empty(path: str) -> bool:
    try:
        st = os.lstat(path)
    except OSError:
        return False
    if stat.S_ISREG(st.st_mode):
        return st.st_size == 0
    if stat.S_ISDIR(st.st_mode):
        return not os.listdir(path)
    return False


def export(engine, ref: str, output: str | None, output_mode: int = 0o600) -> None:  # noqa: ANN001
    """Write the tar of container ``ref`` to ``output`` (made whole, then renamed into
    place, as the docker CLI's CopyToFile does) or to stdout."""
    from . import cpfs

    cid = engine.containers.resolve(ref)
    rec = engine.containers.load(cid)
    if rec["State"].get("Dead"):
        raise Conflict(f"You cannot export container {cid} which is Dead")
    driver = engine.driver(rec["Driver"])
    if rec.get("Creating") or not driver.exists(cid):
        raise Conflict(f"You cannot export container {cid} which is being removed")
    tmp = None
    rootfs = driver.get(cid)  # mounts a stopped container; one more reference if running
    try:
        skip = runtime_stubs(engine, rec, rootfs)
        if output:
            tmp = f"{output}.tmp-{os.getpid()}"
            out = open(tmp, "wb")  # noqa: SIM115 - closed below, renamed on success
            os.fchmod(out.fileno(), output_mode)
        else:
            out = sys.stdout.buffer
        try:
            with cpfs.Root(rootfs) as croot:
                cpfs.write_tree_tar(croot, out, skip=skip)
            out.flush()
        finally:
            if tmp is not None:
                out.close()
        if tmp is not None:
            os.rename(tmp, output)
            tmp = None
    except OSError as e:
        raise EngineError(f"exporting {ref}: {e.strerror or e}") from None
    finally:
        if tmp is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        driver.put(cid)
