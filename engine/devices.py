"""``--device`` and ``--device-cgroup-rule``, as Docker 20.10 reads them.

``--device HOST[:CONTAINER][:PERMS]`` makes the host's device node (or every node below a
host directory) in the container and allows it in the device cgroup with PERMS (default
"rwm"); ``--device-cgroup-rule 'c 1:3 rwm'`` adds an allow rule without a node. Both come
after Docker's default rules, the devices in flag order and then the rules, as moby's
WithDevices appends them; with ``--privileged`` they change nothing (every device is there
and allowed already).

Syntax is checked as docker-cli's validateDevice and ValidateDeviceCgroupRule check it; the
host side (does the node exist, is it a device) is checked before the container exists, so
a bad flag is exit 125 with the daemon's sentence and nothing to undo.
"""

from __future__ import annotations

import os
import posixpath
import re
import stat

from .errors import InvalidInput

_RULE = re.compile(r"^([acb]) ([0-9]+|\*):([0-9]+|\*) ([rwm]{1,3})$")


def _valid_mode(mode: str) -> bool:
    """rwm letters, each at most once (docker-cli's validDeviceMode)."""
    return bool(mode) and set(mode) <= set("rwm") and len(set(mode)) == len(mode)


def parse_device(value: str) -> dict:
    """One ``--device`` value -> HostConfig.Devices' entry (PathOnHost, PathInContainer,
    CgroupPermissions). A two-part value is HOST:PERMS when the second part is a valid
    mode, else HOST:CONTAINER (as docker-cli decides it)."""
    parts = value.split(":")
    if len(parts) > 3 or not parts[0]:
        raise InvalidInput(f"bad format for path: {value}", 125)
    host, container, mode = parts[0], parts[0], "rwm"
    if len(parts) == 2:
        if _valid_mode(parts[1]):
            mode = parts[1]
        else:
            container = parts[1]
    elif len(parts) == 3:
        container, mode = parts[1], parts[2]
        if not _valid_mode(mode):
            raise InvalidInput(f"bad mode specified: {mode}", 125)
    if not container.startswith("/"):
        raise InvalidInput(f"{container} is not an absolute path", 125)
    mapping = {"PathOnHost": host, "PathInContainer": posixpath.normpath(container),
               "CgroupPermissions": mode}  # fmt: skip
    nodes_for(mapping)  # a missing host node fails now, before anything is made
    if not mapping["PathInContainer"].startswith("/dev/"):
        # Docker (runc) would make the node in the image's writable layer; pydock's runtime
        # makes device nodes only on the container's own /dev (nsutil.rootfs)
        raise InvalidInput(f"{container}: the container path of a device must be under /dev", 125)
    return mapping


def parse_cgroup_rule(value: str) -> str:
    """A ``--device-cgroup-rule`` value, checked; kept as given (HostConfig's form)."""
    if not _RULE.match(value):
        raise InvalidInput(
            f'invalid argument "{value}" for "--device-cgroup-rule" flag: '
            f"invalid device cgroup format '{value}'",
            125,
        )
    return value


def cgroup_rule(value: str) -> dict:
    """A checked ``--device-cgroup-rule`` as an OCI linux.resources.devices entry."""
    m = _RULE.match(value)
    if m is None:
        raise InvalidInput(f"invalid device cgroup format '{value}'", 125)
    kind, major, minor, access = m.groups()
    return {"allow": True, "type": kind, "major": None if major == "*" else int(major),
            "minor": None if minor == "*" else int(minor), "access": access}  # fmt: skip


def _node(path: str, st: os.stat_result, container: str) -> dict:
    return {"path": container, "type": "c" if stat.S_ISCHR(st.st_mode) else "b",
            "major": os.major(st.st_rdev), "minor": os.minor(st.st_rdev),
            "fileMode": stat.S_IMODE(st.st_mode), "uid": st.st_uid, "gid": st.st_gid}  # fmt: skip


def _is_dev(st: os.stat_result) -> bool:
    return stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode)


def nodes_for(mapping: dict) -> list[dict]:
    """linux.devices entries of one --device: the host node (symlinks followed, as Docker
    resolves /dev/disk/by-id/... links), or each node found below a host directory,
    placed at the same relative path below the container path."""
    given = mapping["PathOnHost"]
    where = f'error gathering device information while adding custom device "{given}"'
    try:
        host = os.path.realpath(given, strict=True)
        st = os.stat(host)
    except OSError as e:
        raise InvalidInput(f"{where}: {(e.strerror or str(e)).lower()}", 125) from None
    container = mapping["PathInContainer"]
    if _is_dev(st):
        return [_node(host, st, container)]
    if not stat.S_ISDIR(st.st_mode):
        raise InvalidInput(f"{where}: not a device node", 125)
    out = []
    for top, dirs, files in os.walk(host):
        dirs.sort()
        for name in sorted(files):
            path = os.path.join(top, name)
            try:
                sub = os.lstat(path)
            except OSError:
                continue
            if _is_dev(sub):
                out.append(_node(path, sub, container + path[len(host) :]))
    if not out:  # a directory with no device below it is refused too
        raise InvalidInput(f"{where}: not a device node", 125)
    return out


def spec_devices(mappings: list[dict], rules: list[str]) -> tuple[list[dict], list[dict]]:
    """(linux.devices, linux.resources.devices additions) for the flags."""
    devs: list[dict] = []
    perms: list[dict] = []
    for mapping in mappings:
        for node in nodes_for(mapping):
            devs.append(node)
            perms.append({"allow": True, "type": node["type"], "major": node["major"],
                          "minor": node["minor"],
                          "access": mapping["CgroupPermissions"]})  # fmt: skip
    perms.extend(cgroup_rule(r) for r in rules)
    return devs, perms
