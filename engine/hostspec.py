"""The host flags' HostConfig (hostflags.py) -> the runtime spec, as Docker's daemon
writes them into runc's config.json (moby daemon/oci_linux.go).

Namespaces shared with the host are left out of the spec by spec.build; those of another
container (``container:NAME``) are joined at start (nsjoin.py), since its PID 1 is
known only then.
"""

from __future__ import annotations

from .errors import EngineError

#: where the init binary appears in the container (Docker's docker-init path)
INIT_PATH = "/sbin/docker-init"


def apply(doc: dict, hc: dict, rootfs: str) -> None:
    process = doc["process"]
    if hc.get("Ulimits"):
        from .hostflags import rlimits

        process["rlimits"] = rlimits(hc["Ulimits"])
    _shm(doc, hc)
    if hc.get("Tmpfs"):
        from .hostflags import tmpfs_options

        taken = set(hc["Tmpfs"])
        mounts = [m for m in doc["mounts"] if m["destination"] not in taken]
        mounts += [
            {"destination": path, "type": "tmpfs", "source": "tmpfs",
             "options": tmpfs_options(data)}
            for path, data in hc["Tmpfs"].items()
        ]  # fmt: skip
        # parents before children, as Docker sorts every mount by depth
        doc["mounts"] = sorted(mounts, key=lambda m: m["destination"].rstrip("/").count("/"))
    if hc.get("GroupAdd"):
        user = process["user"]
        extra = set(user.get("additionalGids") or [])
        extra.update(_group_ids(rootfs, hc["GroupAdd"]))
        user["additionalGids"] = sorted(extra)
    if hc.get("Init"):
        from .initproc import binary

        doc["mounts"].append({"destination": INIT_PATH, "type": "bind", "source": binary(),
                              "options": ["rbind", "ro", "rprivate"]})  # fmt: skip
        process["args"] = [INIT_PATH, "--", *process["args"]]


def _shm(doc: dict, hc: dict) -> None:
    """/dev/shm: its size (--shm-size, in bytes as Docker writes it), the host's own
    with ``--ipc host`` (bind-mounted, as Docker does), none with ``--ipc none``."""
    mode = hc.get("IpcMode") or "private"
    out = []
    for m in doc["mounts"]:
        if m["destination"] == "/dev/shm":
            if mode == "none":
                continue
            if mode == "host":
                m = {"destination": "/dev/shm", "type": "bind", "source": "/dev/shm",
                     "options": ["rbind", "rprivate"]}  # fmt: skip
            else:
                opts = [o for o in m["options"] if not o.startswith("size=")]
                m = dict(m, options=[*opts, f"size={hc.get('ShmSize') or 67108864}"])
        out.append(m)
    doc["mounts"] = out


def _group_ids(rootfs: str, groups: list[str]) -> list[int]:
    """--group-add names or ids, names looked up in the container's /etc/group (as
    libcontainer's GetAdditionalGroups does; an unknown number is taken as it is)."""
    from .spec import _find, _read_db

    entries = _read_db(rootfs, "group")
    out = []
    for g in groups:
        entry = _find(entries, g)
        if entry is not None and entry[2].isdigit():
            out.append(int(entry[2]))
        elif g.isdigit():
            out.append(int(g))
        else:
            raise EngineError(f"Unable to find group {g}: no matching entries in group file", 125)
    return out
