"""``--ipc container:NAME`` and ``--pid container:NAME``: join another container's
namespace at start, when its PID 1 is known (the record keeps the mode as given, as
Docker's HostConfig does). The donor must be running; for IPC it must have been made
``--ipc shareable`` (or ``host``), Docker 20.10's rule.

Deliberately different from Docker: the joiner shares the donor's IPC namespace (SysV
IPC, POSIX message queues) but not its /dev/shm, unless the donor has the host's. Docker
keeps a shareable container's /dev/shm as a host-side mount to bind into joiners; a bind
of the donor's own (/proc/PID/root/dev/shm) is refused by the kernel (EINVAL: a mount of
another mount namespace), and a host-side mount per shareable container is state to undo
after every crash.
"""

from __future__ import annotations

from .containers import alive
from .errors import Conflict, EngineError

_KINDS = (("IpcMode", "ipc", "IPC"), ("PidMode", "pid", "PID"))


def join(engine, rec: dict, bundle: dict) -> dict:
    """``bundle`` with the donors' namespaces (and /dev/shm) in place of new ones."""
    hc = rec["HostConfig"]
    linux = bundle["linux"]
    for key, kind, what in _KINDS:
        mode = hc.get(key) or ""
        if not mode.startswith("container:"):
            continue
        ref = mode.partition(":")[2]
        donor = engine.containers.load(engine.containers.resolve(ref))
        st = donor["State"]
        if donor["Id"] == rec["Id"]:
            raise EngineError(f"cannot join own {what} namespace", 125)
        if st["Status"] != "running" or not alive(st.get("Owner")) or st["Pid"] <= 0:
            raise Conflict(f"cannot join {what} of a non running container: {ref}", 125)
        dmode = donor["HostConfig"].get(key) or ""
        if kind == "ipc" and dmode not in ("shareable", "host"):
            raise Conflict(
                "non-shareable IPC (hint: use IpcMode:shareable for the donor container)", 125
            )
        others = [n for n in linux["namespaces"] if n["type"] != kind]
        if dmode == "host":
            linux["namespaces"] = others  # the donor has the host's: so does this one
        else:
            ns = "ipc" if kind == "ipc" else "pid"
            linux["namespaces"] = [*others, {"type": kind, "path": f"/proc/{st['Pid']}/ns/{ns}"}]
        if kind == "ipc" and dmode == "host":  # the host's /dev/shm, as the donor has it
            bundle["mounts"] = [m for m in bundle["mounts"] if m["destination"] != "/dev/shm"]
            shm = {"destination": "/dev/shm", "type": "bind", "source": "/dev/shm",
                   "options": ["rbind", "rprivate"]}  # fmt: skip
            bundle["mounts"].append(shm)
    return bundle
